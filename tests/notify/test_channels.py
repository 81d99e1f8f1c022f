"""The logging and callback channels, the allowlist, and the router."""

from __future__ import annotations

import logging

import pytest

import casemgmt_core as cm
from casemgmt_core.notify import (
    Allowlist,
    CallbackNotifier,
    DeliveryFailed,
    LoggingNotifier,
    RecordingNotifier,
    Route,
    Router,
    idempotency_key,
)

from .conftest import note

K = cm.NotificationKind


def test_allowlist_renders_the_envelope_and_only_allowed_data() -> None:
    n = note(event="assign", name="홍길동", ground="child_abuse")
    rendered = Allowlist({"event"}).render(n)
    assert rendered == {
        "notification_id": "C1/2:assignment:worker-1",
        "kind": "assignment",
        "case_id": "C1",
        "event_id": "C1/2",
        "recipient": "worker-1",
        "created_at": "2026-01-05T09:00:00+00:00",
        "event": "assign",
    }


def test_data_cannot_overwrite_the_envelope() -> None:
    n = note(recipient="worker-1", event="assign")
    forged = cm.Notification(
        n.notification_id,
        n.kind,
        "C1",
        n.event_id,
        "worker-1",
        n.created_at,
        {"recipient": "someone-else", "event": "assign"},
    )
    assert Allowlist({"recipient", "event"}).render(forged)["recipient"] == "worker-1"


def test_idempotency_key_is_the_id_made_ascii() -> None:
    assert idempotency_key(note("C1/2:assignment:worker-1")) == "C1/2:assignment:worker-1"
    key = idempotency_key(note("C1/3:mandatory_report:노인보호전문기관", recipient="노인보호전문기관"))
    assert key.isascii()
    assert key.startswith("C1/3:mandatory_report:%EB%85%B8")


def test_logging_notifier_logs_codes_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="casemgmt_core.notify")
    n = note(event="assign", service="tutoring", note="father hits the child")
    LoggingNotifier().send(n)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "notification_id=C1/2:assignment:worker-1" in message
    assert "event=assign" in message
    assert "tutoring" not in message  # allowed for recipients, not in the default log allowlist
    assert "father" not in message
    assert record.notification["kind"] == "assignment"  # type: ignore[attr-defined]


def test_logging_notifier_fields_and_level_are_configurable(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("app.notices")
    caplog.set_level(logging.DEBUG, logger="app.notices")
    LoggingNotifier(logger, level=logging.WARNING, fields={"service"}).send(note(service="tutoring"))
    [record] = caplog.records
    assert record.name == "app.notices"
    assert record.levelno == logging.WARNING
    assert "service=tutoring" in record.getMessage()


def test_callback_receives_the_minimised_fields() -> None:
    got: list[dict[str, str]] = []
    CallbackNotifier(got.append, fields={"event"}).send(note(event="assign", secret="x"))
    assert got == [Allowlist({"event"}).render(note(event="assign"))]
    assert "secret" not in got[0]


def test_callback_failure_is_a_delivery_failure() -> None:
    def broken(_: object) -> None:
        raise ConnectionError("queue down")

    with pytest.raises(DeliveryFailed, match="callback raised ConnectionError") as info:
        CallbackNotifier(broken).send(note())
    assert isinstance(info.value, cm.CaseManagementError)
    assert info.value.code == "delivery_failed"
    assert info.value.notification_id == "C1/2:assignment:worker-1"


def test_router_sends_by_kind_and_recipient() -> None:
    staff, authority, everything = RecordingNotifier(), RecordingNotifier(), RecordingNotifier()
    router = Router(
        [
            Route(staff, kinds=[K.ASSIGNMENT, K.REMINDER, K.CONFERENCE_SCHEDULED]),
            Route(authority, kinds=[K.MANDATORY_REPORT], recipients=["police-112"]),
            Route(everything),
        ]
    )
    assign = note()
    report = note("C1/3:mandatory_report:police-112", kind=K.MANDATORY_REPORT, recipient="police-112")
    other_authority = note("C1/3:mandatory_report:x", kind=K.MANDATORY_REPORT, recipient="x")
    for n in (assign, report, other_authority):
        router.send(n)
    assert staff.sent == [assign]
    assert authority.sent == [report]
    assert everything.sent == [assign, report, other_authority]


def test_router_uses_a_channel_once_even_if_several_routes_match() -> None:
    channel = RecordingNotifier()
    Router([Route(channel, kinds=[K.ASSIGNMENT]), Route(channel, recipients=["worker-1"])]).send(note())
    assert len(channel.sent) == 1


def test_router_without_a_route_keeps_the_notification() -> None:
    router = Router([Route(RecordingNotifier(), kinds=[K.REMINDER])])
    with pytest.raises(DeliveryFailed, match="no route for kind 'assignment' to 'worker-1'") as info:
        router.send(note())
    assert info.value.retryable is False


def test_router_tries_every_channel_and_names_the_failed_ones() -> None:
    def down(_: object) -> None:
        raise OSError("down")

    ok = RecordingNotifier()
    router = Router([Route(CallbackNotifier(down), name="queue"), Route(ok)])
    with pytest.raises(
        DeliveryFailed, match=r"1 of 2 channels failed \(queue: the callback raised OSError\)"
    ):
        router.send(note())
    assert ok.sent == [note()]
