"""A relay process for the crash test: ``python relay_worker.py DB URL SECRET [--hang-after-send]``.

With ``--hang-after-send`` it prints ``sent <id>`` once the receiver has answered and then waits
(to be killed) before the relay could mark the notification delivered.
"""

from __future__ import annotations

import sys
import time

from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.notify import OutboxRelay, WebhookNotifier
from casemgmt_core.ports import Notification


class HangAfterSend:
    def __init__(self, inner: WebhookNotifier) -> None:
        self.inner = inner

    def send(self, notification: Notification) -> None:
        self.inner.send(notification)
        print("sent", notification.notification_id, flush=True)
        time.sleep(60)  # killed long before this ends


def main(argv: list[str]) -> int:
    db, url, secret, *flags = argv
    store = SQLiteStore(db)
    webhook = WebhookNotifier(url, secret.encode(), timeout=5)
    notifier = HangAfterSend(webhook) if "--hang-after-send" in flags else webhook
    report = OutboxRelay(store, notifier).run_once()
    print("delivered", len(report.delivered), "failed", len(report.failed), flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
