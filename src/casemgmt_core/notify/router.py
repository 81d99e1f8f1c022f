"""Routing: which channel(s) carry which notification, by kind and recipient."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from attrs import Attribute, field, frozen

from ..ports import Notification, NotificationKind, Notifier
from . import _checks as check
from .errors import DeliveryFailed

__all__ = ["Route", "Router"]


def _kinds(value: Iterable[NotificationKind] | None) -> frozenset[NotificationKind] | None:
    return None if value is None else check.members(value, NotificationKind, "Route.kinds")


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else check.names(value, "Route.recipients")


def _channel(instance: object, attribute: Attribute[Any], value: object) -> None:
    check.having(value, "Route.channel", ("send",), "Notifier")


def _label(instance: object, attribute: Attribute[Any], value: object) -> None:
    check.line(value, "Route.name", limit=200)


@frozen
class Route:
    """Send notifications of ``kinds`` to ``recipients`` through ``channel``; ``None`` matches any.

    ``kinds`` holds :class:`~casemgmt_core.NotificationKind` members (not their string values),
    ``recipients`` recipient ids (a collection, not a single string).
    """

    channel: Notifier = field(validator=_channel)
    kinds: frozenset[NotificationKind] | None = field(default=None, converter=_kinds)
    recipients: frozenset[str] | None = field(default=None, converter=_names)
    name: str = field(default="", validator=_label)
    """How errors name the channel; defaults to the channel's class name."""

    def matches(self, notification: Notification) -> bool:
        check.notification(notification, "notification")
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
        if not isinstance(routes, list | tuple):
            raise check.invalid(
                f"must be a list or tuple of routes, not {type(routes).__name__}",
                "Router.routes",
                "a list of Route",
                routes,
            )
        for route in routes:
            check.instance(route, Route, "Router.routes")
        self.routes: tuple[Route, ...] = tuple(routes)

    def channels_for(self, notification: Notification) -> list[Route]:
        """The matching routes, one per channel, in the order given."""
        check.notification(notification, "notification")
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
