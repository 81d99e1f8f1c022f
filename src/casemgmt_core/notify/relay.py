"""The outbox relay: delivers the store's outbox at least once, with retries and backoff.

A notification is committed to the outbox with the events that caused it. The relay sends it and
only then marks it delivered; a relay stopped in between (a crash, a kill) sends it again after
restarting, with the same idempotency key, and the receiver drops the repeat. So no effect is
lost and none is applied twice at a receiver that dedupes (see :mod:`.receiver`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from attrs import Attribute, field, frozen

from .._validation import shown
from ..errors import InvalidData
from ..ports import CaseStore, Notifier, PendingNotification
from ..service import utc_now
from . import _checks as check
from .errors import DeliveryFailed

__all__ = ["MAX_BATCH", "MAX_DELAY", "MAX_FACTOR", "Backoff", "OutboxRelay", "RelayReport"]

_log = logging.getLogger("casemgmt_core.notify.relay")

#: Largest batch a relay takes from the outbox at once (the most a bundled store returns).
MAX_BATCH = 10_000
#: Longest delay a :class:`Backoff` may give: far more than any sensible retry, and short
#: enough that a retry time always fits a ``datetime``.
MAX_DELAY = dt.timedelta(days=30)
#: Largest growth factor of a :class:`Backoff`.
MAX_FACTOR = 1000.0


def _delay(instance: object, attribute: Attribute[Any], value: object) -> None:
    check.duration(value, f"Backoff.{attribute.name}", MAX_DELAY)


def _factor(instance: object, attribute: Attribute[Any], value: object) -> None:
    check.number(value, "Backoff.factor", 1, MAX_FACTOR)


def _jitter(instance: object, attribute: Attribute[Any], value: object) -> None:
    check.number(value, "Backoff.jitter", 0, 1)


@frozen
class Backoff:
    """Exponential backoff: ``initial * factor ** (attempts - 1)``, at most ``maximum``.

    ``initial`` and ``maximum`` are timedeltas longer than zero and at most :data:`MAX_DELAY`,
    ``initial`` no longer than ``maximum``; ``factor`` is a number from 1 to :data:`MAX_FACTOR`.
    ``jitter`` (0 to 1) shortens each delay by a random fraction up to it, so that many
    notifications failing together do not all come back at the same moment.
    """

    initial: dt.timedelta = field(default=dt.timedelta(seconds=5), validator=_delay)
    factor: float = field(default=2.0, validator=_factor)
    maximum: dt.timedelta = field(default=dt.timedelta(hours=1), validator=_delay)
    jitter: float = field(default=0.0, validator=_jitter)

    def __attrs_post_init__(self) -> None:
        if self.initial > self.maximum:
            raise InvalidData(
                f"{self.initial} is longer than the maximum, {self.maximum}",
                field="Backoff.initial",
                allowed="at most Backoff.maximum",
                value=shown(self.initial),
            )

    def delay(self, attempts: int, rng: random.Random | None = None) -> dt.timedelta:
        """The wait after the ``attempts``-th failed attempt (1 for the first; 0 counts as 1)."""
        exponent = max(check.whole(attempts, "Backoff.delay.attempts", 0) - 1, 0)
        check.instance(rng, random.Random, "Backoff.delay.rng", nullable=True)
        # Compare in seconds before multiplying out, so a long outage cannot overflow timedelta.
        seconds = self.initial.total_seconds()
        cap = self.maximum.total_seconds()
        wait = min(seconds * self.factor**exponent, cap) if exponent < 64 else cap
        if self.jitter:
            wait *= 1 - (rng or random).random() * self.jitter
        return dt.timedelta(seconds=wait)


def _ids(instance: object, attribute: Attribute[Any], value: object) -> None:
    # Only types: the ids come from the outbox, which has its own rules for them.
    if type(value) is not tuple or not all(type(item) is str for item in value):
        name = f"RelayReport.{attribute.name}"
        raise check.invalid("must be a tuple of strings", name, "a tuple of notification ids", value)


def _flag(instance: object, attribute: Attribute[Any], value: object) -> None:
    check.flag(value, f"RelayReport.{attribute.name}")


@frozen
class RelayReport:
    """What one :meth:`OutboxRelay.run_once` did: the ids of the notifications delivered and failed."""

    delivered: tuple[str, ...] = field(default=(), validator=_ids)
    failed: tuple[str, ...] = field(default=(), validator=_ids)
    full_batch: bool = field(default=False, validator=_flag)
    """The batch was full: more notifications may be due now."""


class OutboxRelay:
    """Takes due notifications from ``store``'s outbox and hands them to ``notifier``.

    A successful send is marked delivered; a failed one is counted and held back with
    :meth:`~casemgmt_core.ports.CaseStore.mark_failed` until its backoff has passed (the longest
    delay where :class:`DeliveryFailed` says retrying soon cannot help). A notification is never
    given up: after a long outage it is still delivered.

    ``store`` needs ``pending_notifications``, ``mark_delivered`` and ``mark_failed`` (a
    :class:`~casemgmt_core.ports.CaseStore`), ``notifier`` a ``send`` method; ``batch_size`` is a
    whole number from 1 to :data:`MAX_BATCH`.
    """

    def __init__(
        self,
        store: CaseStore,
        notifier: Notifier,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        batch_size: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        name = "OutboxRelay."
        self.store: CaseStore = check.having(
            store, name + "store", ("pending_notifications", "mark_delivered", "mark_failed"), "CaseStore"
        )
        self.notifier: Notifier = check.having(notifier, name + "notifier", ("send",), "Notifier")
        check.instance(backoff, Backoff, name + "backoff", nullable=True)
        self.backoff = backoff or Backoff()
        self.clock: Callable[[], dt.datetime] = check.function(clock, name + "clock")
        self.batch_size = check.whole(batch_size, name + "batch_size", 1, MAX_BATCH)
        check.instance(rng, random.Random, name + "rng", nullable=True)
        self._rng = rng or random.Random()

    def run_once(self, now: dt.datetime | None = None) -> RelayReport:
        """Try every notification due at ``now`` (default: the clock), up to one batch."""
        now = check.now(now, self.clock, "OutboxRelay.run_once.now", "OutboxRelay.clock()")
        pending = self.store.pending_notifications(now=now, limit=self.batch_size)
        delivered: list[str] = []
        failed: list[str] = []
        for entry in pending:
            nid = entry.notification.notification_id
            try:
                self.notifier.send(entry.notification)
            except Exception as exc:
                self._failed(entry, exc, now)
                failed.append(nid)
                continue
            # A stop here, before the mark, means one more send later: at least once, by design.
            self.store.mark_delivered(nid, now)
            delivered.append(nid)
        return RelayReport(tuple(delivered), tuple(failed), len(pending) >= self.batch_size)

    def run(self, stop: threading.Event, *, interval: float = 1.0) -> None:
        """Relay until ``stop`` is set, polling every ``interval`` seconds (at once while batches
        are full). A send in progress is finished first; each channel bounds its own wait."""
        check.loop(stop, interval, "OutboxRelay.run")
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception:
                # The store is unreachable or failing: keep the loop alive and try again later.
                _log.exception("outbox relay: the store failed; retrying in %s s", interval)
                report = RelayReport()
            if not report.full_batch:
                stop.wait(interval)

    def _failed(self, entry: PendingNotification, exc: Exception, now: dt.datetime) -> None:
        attempts = entry.attempts + 1
        if isinstance(exc, DeliveryFailed):
            reason = str(exc)
            delay = self.backoff.delay(attempts, self._rng) if exc.retryable else self.backoff.maximum
        else:
            # Only the type: the message of an unknown error may quote what it was sending.
            reason = f"{type(exc).__name__} from {type(self.notifier).__name__}"
            delay = self.backoff.delay(attempts, self._rng)
        retry_at = now + delay
        self.store.mark_failed(entry.notification.notification_id, error=reason[:500], retry_at=retry_at)
        _log.warning(
            "notification %s: attempt %d failed, next at %s: %s",
            entry.notification.notification_id,
            attempts,
            retry_at.isoformat(),
            reason,
        )
