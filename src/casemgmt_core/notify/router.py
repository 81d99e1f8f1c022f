"""Routing: which channel(s) carry which notification, by kind and recipient."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from attrs import field, frozen

from ..ports import Notification, NotificationKind, Notifier
from .errors import DeliveryFailed

__all__ = ["Route", "Router"]


def _kinds(value: Iterable[NotificationKind] | None) -> frozenset[NotificationKind] | None:
    return None if value is None else frozenset(NotificationKind(k) for k in value)


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@frozen
class Route:
    """Send notifications of ``kinds`` to ``recipients`` through ``channel``; ``None`` matches any."""

    channel: Notifier
    kinds: frozenset[NotificationKind] | None = field(default=None, converter=_kinds)
    recipients: frozenset[str] | None = field(default=None, converter=_names)
    name: str = ""
    """How errors name the channel; defaults to the channel's class name."""

    def matches(self, notification: Notification) -> bool:
        return (self.kinds is None or notification.kind in self.kinds) and (
            self.recipients is None or notification.recipient in self.recipients
        )

    @property
    def label(self) -> str:
        return self.name or type(self.channel).__name__


class Router:
    """A :class:`~casemgmt_core.ports.Notifier` that sends each notification through every
    matching route (a channel listed in several matching routes is used once).

    A notification no route matches raises :class:`DeliveryFailed` (not retryable): it stays in
    the outbox until a route is added, rather than being dropped without a trace. If some channels
    fail, the others have still been tried; the error names the failed ones, and the retry sends
    to all of them again with the same idempotency key, which the receivers drop as a repeat.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)

    def channels_for(self, notification: Notification) -> list[Route]:
        """The matching routes, one per channel, in the order given."""
        out: list[Route] = []
        seen: set[int] = set()
        for route in self.routes:
            if route.matches(notification) and id(route.channel) not in seen:
                seen.add(id(route.channel))
                out.append(route)
        return out

    def send(self, notification: Notification) -> None:
        routes = self.channels_for(notification)
        if not routes:
            raise DeliveryFailed(
                notification_id=notification.notification_id,
                channel="router",
                reason=f"no route for kind {notification.kind.value!r} to {notification.recipient!r}",
                retryable=False,
            )
        failures: list[tuple[str, Exception]] = []
        for route in routes:
            try:
                route.channel.send(notification)
            except Exception as exc:
                failures.append((route.label, exc))
        if failures:
            retryable = any(not isinstance(e, DeliveryFailed) or e.retryable for _, e in failures)
            detail = "; ".join(f"{label}: {_reason(e)}" for label, e in failures)
            raise DeliveryFailed(
                notification_id=notification.notification_id,
                channel="router",
                reason=f"{len(failures)} of {len(routes)} channels failed ({detail})",
                retryable=retryable,
            ) from failures[0][1]


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, DeliveryFailed) else type(exc).__name__
