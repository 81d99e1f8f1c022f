"""Errors of the notification channels."""

from __future__ import annotations

from ..errors import CaseManagementError

__all__ = ["DeliveryFailed"]


class DeliveryFailed(CaseManagementError):
    """A channel could not deliver a notification; the outbox keeps it for another attempt.

    ``retryable`` is false where trying again soon cannot help (no address for the recipient, the
    receiver rejected the request as malformed): the relay then waits its longest delay.
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
        self.notification_id = notification_id
        self.channel = channel
        self.reason = reason
        self.retryable = retryable
        self.status = status
        super().__init__(f"notification {notification_id!r} not delivered by {channel}: {reason}")
