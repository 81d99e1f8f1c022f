"""A relay process killed (SIGKILL) after sending and before marking: the restart sends again with the
same idempotency key and the receiver records the effect exactly once. Durable store: SQLite."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from pathlib import Path

import casemgmt_core as cm
from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.notify import LocalWebhookReceiver

from .conftest import SECRET, open_case

WORKER = Path(__file__).with_name("relay_worker.py")
ID = "C1/2:assignment:worker-1"


def pending_ids(db: Path) -> list[str]:
    store = SQLiteStore(db)
    try:
        return [p.notification.notification_id for p in store.pending_notifications()]
    finally:
        store.close()


def test_kill_after_send_before_mark_then_restart(tmp_path: Path, receiver: LocalWebhookReceiver) -> None:
    db = tmp_path / "cases.db"
    store = SQLiteStore(db)
    open_case(cm.CaseManager(store))
    store.close()
    assert pending_ids(db) == [ID]

    command = [sys.executable, str(WORKER), str(db), receiver.url, SECRET.decode()]
    relay = subprocess.Popen([*command, "--hang-after-send"], stdout=subprocess.PIPE, text=True)
    try:
        assert relay.stdout is not None
        ready, _, _ = select.select([relay.stdout], [], [], 20)
        assert ready, "the relay process did not send within 20 s"
        assert relay.stdout.readline().split() == ["sent", ID]
    finally:
        relay.send_signal(signal.SIGKILL)
        relay.wait(timeout=10)
        if relay.stdout is not None:
            relay.stdout.close()
    assert relay.returncode == -signal.SIGKILL
    assert list(receiver.ledger.effects) == [ID]
    assert pending_ids(db) == [ID]  # the kill came before the mark

    restarted = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.split() == ["delivered", "1", "failed", "0"]

    assert receiver.requests == 2  # sent twice ...
    assert list(receiver.ledger.effects) == [ID]  # ... recorded once
    assert receiver.ledger.duplicates == 1
    assert pending_ids(db) == []
