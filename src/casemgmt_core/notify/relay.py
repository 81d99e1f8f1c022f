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

from attrs import field, frozen

from ..errors import InvalidData
from ..ports import CaseStore, Notifier, PendingNotification
from ..service import utc_now
from .errors import DeliveryFailed

__all__ = ["Backoff", "OutboxRelay", "RelayReport"]

_log = logging.getLogger("casemgmt_core.notify.relay")


def _positive_delta(_: object, attribute: object, value: dt.timedelta) -> None:
    if value <= dt.timedelta(0):
        raise InvalidData(f"must be longer than zero, got {value}", field=getattr(attribute, "name", None))


@frozen
class Backoff:
    """Exponential backoff: ``initial * factor ** (attempts - 1)``, at most ``maximum``.

    ``jitter`` (0 to 1) shortens each delay by a random fraction up to it, so that many
    notifications failing together do not all come back at the same moment.
    """

    initial: dt.timedelta = field(default=dt.timedelta(seconds=5), validator=_positive_delta)
    factor: float = 2.0
    maximum: dt.timedelta = field(default=dt.timedelta(hours=1), validator=_positive_delta)
    jitter: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.factor < 1:
            raise InvalidData(f"must be 1 or more, got {self.factor}", field="factor")
        if not 0 <= self.jitter <= 1:
            raise InvalidData(f"must be between 0 and 1, got {self.jitter}", field="jitter")

    def delay(self, attempts: int, rng: random.Random | None = None) -> dt.timedelta:
        """The wait after the ``attempts``-th failed attempt (1 for the first)."""
        exponent = max(attempts - 1, 0)
        # Compare in seconds before multiplying out, so a long outage cannot overflow timedelta.
        seconds = self.initial.total_seconds()
        cap = self.maximum.total_seconds()
        wait = min(seconds * self.factor**exponent, cap) if exponent < 64 else cap
        if self.jitter:
            wait *= 1 - (rng or random).random() * self.jitter
        return dt.timedelta(seconds=wait)


@frozen
class RelayReport:
    """What one :meth:`OutboxRelay.run_once` did."""

    delivered: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    full_batch: bool = False
    """The batch was full: more notifications may be due now."""


class OutboxRelay:
    """Takes due notifications from ``store``'s outbox and hands them to ``notifier``.

    A successful send is marked delivered; a failed one is counted and held back with
    :meth:`~casemgmt_core.ports.CaseStore.mark_failed` until its backoff has passed (the longest
    delay where :class:`DeliveryFailed` says retrying soon cannot help). A notification is never
    given up: after a long outage it is still delivered.
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
        if batch_size <= 0:
            raise InvalidData(f"must be more than 0, got {batch_size}", field="batch_size")
        self.store = store
        self.notifier = notifier
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.batch_size = batch_size
        self._rng = rng or random.Random()

    def run_once(self, now: dt.datetime | None = None) -> RelayReport:
        """Try every notification due at ``now`` (default: the clock), up to one batch."""
        now = now or self.clock()
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
