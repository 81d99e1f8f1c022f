"""Data minimisation: what a channel may render of a notification.

A notification's envelope (its id, kind, case id, event id, recipient and time) is made of
identifiers and is always rendered. Of ``Notification.data`` a channel renders only the keys in
its :class:`Allowlist`; everything else is dropped before any text is built, so a value that
should never have been put into ``data`` still cannot reach a message body, a header or a log.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from attrs import field, frozen

from ..ports import Notification
from . import _checks as check

__all__ = [
    "ENVELOPE_FIELDS",
    "LOG_FIELDS",
    "STANDARD_FIELDS",
    "Allowlist",
    "Rendered",
    "idempotency_key",
]

Rendered = dict[str, str]
"""A minimised notification: field name to text."""

ENVELOPE_FIELDS: tuple[str, ...] = (
    "notification_id",
    "kind",
    "case_id",
    "event_id",
    "recipient",
    "created_at",
)

STANDARD_FIELDS: frozenset[str] = frozenset(
    {
        # set by casemgmt_core.notifications for case events
        "event",
        "ground",
        "legal_basis",
        "due_at",
        "service",
        "item_id",
        "scheduled_for",
        "side",
        # set by casemgmt_core.notify.reminders
        "due_kind",
        "subject",
        "status",
    }
)
"""Every ``data`` key the library itself produces: identifiers, codes, times and legal citations."""

LOG_FIELDS: frozenset[str] = frozenset({"event", "ground", "due_kind", "status"})
"""The default for logs, which are read by more people than any recipient: codes only."""


def _fields(value: Iterable[str]) -> frozenset[str]:
    return check.names(value, "Allowlist.fields")


@frozen
class Allowlist:
    """The ``data`` keys a channel may render: a collection of names (not a single string)."""

    fields: frozenset[str] = field(default=STANDARD_FIELDS, converter=_fields)

    def render(self, notification: Notification) -> Rendered:
        """The envelope and the allowed ``data`` keys (sorted); every other key is dropped."""
        n = check.notification(notification, "notification")
        out: Rendered = {
            "notification_id": n.notification_id,
            "kind": n.kind.value,
            "case_id": n.case_id,
            "event_id": n.event_id,
            "recipient": n.recipient,
            "created_at": n.created_at.isoformat(),
        }
        # Only allowed keys are sorted: they are strings, whatever else the data holds.
        for key in sorted(k for k in n.data if k in self.fields and k not in out):
            out[key] = _text(n.data[key], key)
        return out


def _text(value: object, key: str) -> str:
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        # e.g. an int too long to write out: refused here rather than failing inside a channel.
        raise check.invalid(
            "cannot be written as text", f"Notification.data[{key!r}]", "a string", value
        ) from None


def idempotency_key(notification: Notification) -> str:
    """The notification id, percent-encoded to ASCII so it fits an HTTP or mail header.

    Ids made of letters, digits and ``-._~:/`` are unchanged.
    """
    return quote(check.notification(notification, "notification").notification_id, safe="-._~:/")
