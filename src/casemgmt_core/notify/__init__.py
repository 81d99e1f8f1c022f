"""Notification channels, routing, the outbox relay, reminders and data minimisation.

Every channel implements :class:`~casemgmt_core.ports.Notifier` and renders only the fields its
:class:`Allowlist` admits. :class:`OutboxRelay` delivers the store's outbox at least once;
:class:`ReminderScheduler` adds reminders of what is due. See ``docs/notifications.md``.
"""

from .channels import CallbackNotifier, LoggingNotifier, RecordingNotifier
from .email import EmailNotifier, message_id
from .errors import DeliveryFailed
from .receiver import IdempotentReceiver, LocalWebhookReceiver
from .relay import Backoff, OutboxRelay, RelayReport
from .reminders import ReminderScheduler, ReminderStatus, reminder_for
from .rendering import ENVELOPE_FIELDS, LOG_FIELDS, STANDARD_FIELDS, Allowlist, Rendered, idempotency_key
from .router import Route, Router
from .webhook import SIGNATURE_HEADER, WebhookNotifier, encode_body, sign, verify_signature

__all__ = [
    "ENVELOPE_FIELDS",
    "LOG_FIELDS",
    "SIGNATURE_HEADER",
    "STANDARD_FIELDS",
    "Allowlist",
    "Backoff",
    "CallbackNotifier",
    "DeliveryFailed",
    "EmailNotifier",
    "IdempotentReceiver",
    "LocalWebhookReceiver",
    "LoggingNotifier",
    "OutboxRelay",
    "RecordingNotifier",
    "RelayReport",
    "ReminderScheduler",
    "ReminderStatus",
    "Rendered",
    "Route",
    "Router",
    "WebhookNotifier",
    "encode_body",
    "idempotency_key",
    "message_id",
    "reminder_for",
    "sign",
    "verify_signature",
]
