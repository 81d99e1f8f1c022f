"""Errors of the notification channels."""

from __future__ import annotations

from ..errors import CaseManagementError
from . import _checks as check

__all__ = ["DeliveryFailed"]


class DeliveryFailed(CaseManagementError):
    """A channel could not deliver a notification; the outbox keeps it for another attempt.

    ``retryable`` is false where trying again soon cannot help (no address for the recipient, the
    receiver rejected the request as malformed): the relay then waits its longest delay.
    ``status`` is the HTTP status received, if any. Arguments of the wrong type are refused as
    :class:`~casemgmt_core.InvalidData`.
    """

    code = "delivery_failed"

    def __init__(
        self,
        *,
        notification_id: str,
        channel: str,
        reason: str,
        retryable: bool = True,
        status: int | None = None,
    ) -> None:
        for name, value in (("notification_id", notification_id), ("channel", channel), ("reason", reason)):
            if type(value) is not str:
                raise check.invalid(
                    f"must be a string, not {type(value).__name__}", f"DeliveryFailed.{name}", "str", value
                )
        self.notification_id = notification_id
        self.channel = channel
        self.reason = reason
        self.retryable = check.flag(retryable, "DeliveryFailed.retryable")
        self.status = None if status is None else check.whole(status, "DeliveryFailed.status", 100, 599)
        super().__init__(f"notification {notification_id!r} not delivered by {channel}: {reason}")
