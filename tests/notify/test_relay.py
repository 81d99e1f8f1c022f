"""The outbox relay: at least once, retries with backoff, restart without a duplicate effect."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading

import pytest

import casemgmt_core as cm
from casemgmt_core.notify import (
    Backoff,
    DeliveryFailed,
    LocalWebhookReceiver,
    OutboxRelay,
    RelayReport,
    WebhookNotifier,
)
from casemgmt_core.ports import PendingNotification

from .conftest import SECRET, T0, Clock, open_case

S = dt.timedelta(seconds=1)
NO_JITTER = Backoff(initial=5 * S, factor=2, maximum=60 * S)


def setup(
    receiver: LocalWebhookReceiver, store: cm.InMemoryStore | None = None
) -> tuple[cm.CaseManager, OutboxRelay]:
    clock = Clock()
    manager = cm.CaseManager(store or cm.InMemoryStore(), clock=clock)
    relay = OutboxRelay(
        manager.store, WebhookNotifier(receiver.url, SECRET, timeout=5), backoff=NO_JITTER, clock=clock
    )
    return manager, relay


def test_delivers_the_outbox_once_and_marks_it(receiver: LocalWebhookReceiver) -> None:
    manager, relay = setup(receiver)
    open_case(manager)
    assert [p.notification.notification_id for p in manager.store.pending_notifications()] == [
        "C1/2:assignment:worker-1"
    ]
    report = relay.run_once(T0)
    assert report.delivered == ("C1/2:assignment:worker-1",)
    assert report.failed == ()
    assert manager.store.pending_notifications() == ()
    assert relay.run_once(T0 + S).delivered == ()
    assert receiver.requests == 1
    assert receiver.ledger.effects["C1/2:assignment:worker-1"]["recipient"] == "worker-1"


def test_retries_with_exponential_backoff(receiver: LocalWebhookReceiver) -> None:
    manager, relay = setup(receiver)
    open_case(manager)
    receiver.fail_next(2, status=503)

    assert relay.run_once(T0).failed == ("C1/2:assignment:worker-1",)
    [row] = manager.store.pending_notifications()
    assert (row.attempts, row.next_attempt_at) == (1, T0 + 5 * S)
    assert row.last_error is not None
    assert "HTTP status 503" in row.last_error

    assert relay.run_once(T0 + 4 * S) == RelayReport()  # nothing due yet
    assert receiver.requests == 1

    relay.run_once(T0 + 5 * S)
    [row] = manager.store.pending_notifications()
    assert (row.attempts, row.next_attempt_at) == (2, T0 + 15 * S)

    assert relay.run_once(T0 + 15 * S).delivered == ("C1/2:assignment:worker-1",)
    assert receiver.requests == 3
    assert len(receiver.ledger.effects) == 1


def test_a_failure_that_retrying_cannot_fix_waits_the_longest_delay(receiver: LocalWebhookReceiver) -> None:
    manager = cm.CaseManager(cm.InMemoryStore(), clock=Clock())
    open_case(manager)
    relay = OutboxRelay(manager.store, WebhookNotifier(receiver.url, b"not-the-secret"), backoff=NO_JITTER)
    relay.run_once(T0)
    [row] = manager.store.pending_notifications()
    assert row.next_attempt_at == T0 + 60 * S
    assert row.last_error is not None
    assert "HTTP status 401" in row.last_error


def test_an_unknown_error_is_recorded_by_type_only(caplog: pytest.LogCaptureFixture) -> None:
    class Leaky:
        def send(self, notification: cm.Notification) -> None:
            raise ValueError("홍길동, born 1987-05-14")

    manager = cm.CaseManager(cm.InMemoryStore(), clock=Clock())
    open_case(manager)
    caplog.set_level(logging.WARNING)
    OutboxRelay(manager.store, Leaky(), backoff=NO_JITTER).run_once(T0)
    [row] = manager.store.pending_notifications()
    assert row.last_error == "ValueError from Leaky"
    assert "attempt 1 failed" in caplog.text
    assert "홍길동" not in caplog.text
    assert "1987" not in caplog.text


class CrashingStore(cm.InMemoryStore):
    """Stands for a relay process that dies right after a send, before recording the delivery."""

    crash_on_mark = True

    def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        if self.crash_on_mark:
            raise SystemExit("relay killed")
        super().mark_delivered(notification_id, at)


def test_a_restart_after_send_before_mark_applies_the_effect_once(receiver: LocalWebhookReceiver) -> None:
    store = CrashingStore()
    manager, relay = setup(receiver, store)
    open_case(manager)
    with pytest.raises(SystemExit):
        relay.run_once(T0)
    assert receiver.requests == 1
    assert len(store.pending_notifications()) == 1  # not marked: it will be sent again

    store.crash_on_mark = False
    restarted = OutboxRelay(store, WebhookNotifier(receiver.url, SECRET), backoff=NO_JITTER)
    assert restarted.run_once(T0 + S).delivered == ("C1/2:assignment:worker-1",)
    assert receiver.requests == 2
    assert list(receiver.ledger.effects) == ["C1/2:assignment:worker-1"]
    assert receiver.ledger.duplicates == 1
    assert store.pending_notifications() == ()


def test_the_loop_delivers_until_stopped(receiver: LocalWebhookReceiver) -> None:
    store = cm.InMemoryStore()
    manager = cm.CaseManager(store)
    relay = OutboxRelay(store, WebhookNotifier(receiver.url, SECRET, timeout=5), backoff=NO_JITTER)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"interval": 0.02})
    thread.start()
    try:
        open_case(manager, "C1")
        open_case(manager, "C2")
        assert receiver.wait_for_requests(2, timeout=5)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert set(receiver.ledger.effects) == {"C1/2:assignment:worker-1", "C2/2:assignment:worker-1"}


def test_the_loop_survives_a_failing_store(
    receiver: LocalWebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(cm.InMemoryStore):
        failures = 2

        def pending_notifications(
            self, *, now: dt.datetime | None = None, limit: int = 100
        ) -> tuple[PendingNotification, ...]:
            if self.failures:
                self.failures -= 1
                raise cm.StorageError("database is locked")
            return tuple(super().pending_notifications(now=now, limit=limit))

    store = Flaky()
    open_case(cm.CaseManager(store))
    relay = OutboxRelay(store, WebhookNotifier(receiver.url, SECRET, timeout=5))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"interval": 0.02})
    thread.start()
    try:
        assert receiver.wait_for_requests(1, timeout=5)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert store.failures == 0
    assert caplog.text.count("the store failed") == 2


def test_a_full_batch_is_reported_and_the_rest_follows(receiver: LocalWebhookReceiver) -> None:
    store = cm.InMemoryStore()
    manager = cm.CaseManager(store, clock=Clock())
    open_case(manager, "C1")
    open_case(manager, "C2")
    relay = OutboxRelay(store, WebhookNotifier(receiver.url, SECRET), batch_size=1)
    first = relay.run_once(T0)
    assert first.full_batch
    assert first.delivered == ("C1/2:assignment:worker-1",)
    assert relay.run_once(T0).delivered == ("C2/2:assignment:worker-1",)


def test_backoff_grows_exponentially_up_to_the_maximum() -> None:
    b = Backoff(initial=2 * S, factor=3, maximum=60 * S)
    assert [b.delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [2, 6, 18, 54, 60]
    assert b.delay(10_000) == 60 * S  # a long outage neither overflows nor exceeds the cap


def test_backoff_jitter_only_shortens_and_stays_within_its_fraction() -> None:
    b = Backoff(initial=10 * S, factor=2, maximum=100 * S, jitter=0.5)
    rng = random.Random(7)
    delays = [b.delay(2, rng).total_seconds() for _ in range(200)]
    assert all(10 <= d <= 20 for d in delays)
    assert len(set(delays)) > 100


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"initial": dt.timedelta(0)}, "initial"), ({"factor": 0.5}, "factor"), ({"jitter": 2.0}, "jitter")],
)
def test_backoff_rejects_nonsense(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(cm.InvalidData, match=field):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_delivery_failed_is_a_library_error() -> None:
    error = DeliveryFailed(notification_id="n1", channel="webhook", reason="HTTP status 500", status=500)
    assert isinstance(error, cm.CaseManagementError)
    assert str(error) == "notification 'n1' not delivered by webhook: HTTP status 500"
