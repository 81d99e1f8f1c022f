"""A webhook from the engine to a partner's receiver, through the outbox relay, on this machine.

Run it: ``python examples/webhook_receiver.py``. It starts a receiver on 127.0.0.1 (a free port),
opens a case, and lets the relay deliver the notifications: one delivery fails on purpose and is
retried after its backoff; a relay that restarts re-sends, and the receiver keeps one effect per
idempotency key. It exits 0 after checking all of that; every network wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import logging

import casemgmt_core as cm
from casemgmt_core.notify import (
    Backoff,
    LocalWebhookReceiver,
    LoggingNotifier,
    OutboxRelay,
    Route,
    Router,
    WebhookNotifier,
)

SECRET = b"shared-secret-from-your-vault"
K = cm.NotificationKind


def main() -> None:
    now = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    store = cm.InMemoryStore()
    # No notifier on the manager: notifications wait in the outbox for the relay.
    manager = cm.CaseManager(store, clock=lambda: now)
    worker = cm.Actor("kim.caseworker", "caseworker")

    with LocalWebhookReceiver(SECRET) as receiver:
        router = Router(
            [
                Route(WebhookNotifier(receiver.url, SECRET, timeout=5), kinds=[K.ASSIGNMENT], name="partner"),
                Route(LoggingNotifier()),
            ]
        )
        backoff = Backoff(initial=dt.timedelta(seconds=30), maximum=dt.timedelta(minutes=30))
        relay = OutboxRelay(store, router, backoff=backoff)

        household = cm.Household("HH-1", [cm.Member("mother", dt.date(1987, 5, 14))], region="11680")
        referral = cm.Referral(cm.ReferralChannel.WALK_IN, now)
        manager.open_case(household, referral, actor=worker, case_id="C-1")
        manager.handle("C-1", cm.AssignCaseworker(worker.id), actor=worker)

        receiver.fail_next(1)  # the partner is briefly down
        first = relay.run_once(now)
        assert first.failed == ("C-1/2:assignment:kim.caseworker",), first
        [row] = store.pending_notifications()
        assert row.next_attempt_at == now + dt.timedelta(seconds=30)

        second = relay.run_once(now + dt.timedelta(seconds=30))
        assert second.delivered == ("C-1/2:assignment:kim.caseworker",), second

        # A relay that crashed before marking would send the same notification again:
        WebhookNotifier(receiver.url, SECRET, timeout=5).send(row.notification)

        effects = receiver.ledger.effects
        assert list(effects) == ["C-1/2:assignment:kim.caseworker"]
        assert effects["C-1/2:assignment:kim.caseworker"]["recipient"] == "kim.caseworker"
        assert receiver.ledger.duplicates == 1
        assert store.pending_notifications() == ()
        print(f"receiver at {receiver.url}: {receiver.requests} requests, {len(effects)} effect(s)")
        for key, payload in effects.items():
            print(f"  {key}: {payload['kind']} for {payload['recipient']} (case {payload['case_id']})")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
