"""Simple channels: Python ``logging`` and a callback (plus the recording notifier for tests)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from ..adapters.memory import RecordingNotifier
from ..ports import Notification
from . import _checks as check
from .errors import DeliveryFailed
from .rendering import LOG_FIELDS, STANDARD_FIELDS, Allowlist, Rendered

__all__ = ["CallbackNotifier", "LoggingNotifier", "RecordingNotifier"]


class LoggingNotifier:
    """Writes each notification as one log record of its minimised fields.

    The record's message holds only the rendered fields, and ``record.notification`` holds them as
    a dict for structured log handlers. ``fields`` defaults to :data:`LOG_FIELDS` (codes only);
    ``level`` is a ``logging`` level, a whole number from 1 to 100.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        level: int = logging.INFO,
        fields: Iterable[str] = LOG_FIELDS,
    ) -> None:
        check.instance(logger, logging.Logger, "LoggingNotifier.logger", nullable=True)
        self.logger = logger or logging.getLogger("casemgmt_core.notify")
        self.level = check.whole(level, "LoggingNotifier.level", 1, 100)
        self.allowlist = Allowlist(fields)

    def send(self, notification: Notification) -> None:
        rendered = self.allowlist.render(notification)
        text = " ".join(f"{k}={v}" for k, v in rendered.items())
        self.logger.log(self.level, "notification %s", text, extra={"notification": rendered})


class CallbackNotifier:
    """Hands each minimised notification to ``callback`` (e.g. to put it on a message queue).

    The callback receives the rendered fields, never the :class:`Notification` itself, so the
    allowlist holds here as in every other channel. An exception from the callback becomes
    :class:`DeliveryFailed` and the notification stays in the outbox.
    """

    def __init__(self, callback: Callable[[Rendered], object], *, fields: Iterable[str] = STANDARD_FIELDS):
        self.callback: Callable[[Rendered], object] = check.function(callback, "CallbackNotifier.callback")
        self.allowlist = Allowlist(fields)

    def send(self, notification: Notification) -> None:
        check.notification(notification, "notification")
        try:
            self.callback(self.allowlist.render(notification))
        except Exception as exc:
            raise DeliveryFailed(
                notification_id=notification.notification_id,
                channel="callback",
                reason=f"the callback raised {type(exc).__name__}",
            ) from exc
