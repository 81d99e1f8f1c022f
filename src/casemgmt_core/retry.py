"""Retries for a unit of work that lost an optimistic-concurrency race.

:meth:`CaseManager.handle <casemgmt_core.CaseManager.handle>` commits only if no one else has
committed the case since it was loaded; otherwise the store raises
:class:`~casemgmt_core.ConcurrencyConflict` and nothing is written. :func:`retry_on_conflict`
calls a function again on that error, and only on that error. The function must load the case
and decide again on each call, as ``handle`` does: a retried call that no longer applies to the
newer case is refused like any other (``TransitionRefused``, ``UnknownCommand``), not retried.

Between attempts it waits a random time ("full jitter") up to ``base_delay * 2 ** (n - 1)``
seconds after the ``n``-th conflict, and never more than ``max_delay``, so that writers who
collided do not collide again in step.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._validation import check_instance, shown
from .errors import ConcurrencyConflict, InvalidData

__all__ = ["MAX_ATTEMPTS", "MAX_DELAY", "retry_on_conflict", "retry_on_conflict_async"]

T = TypeVar("T")

_log = logging.getLogger("casemgmt_core.retry")

#: Most attempts a retry may be given (the first call included).
MAX_ATTEMPTS = 100
#: Longest wait between two attempts, in seconds (``base_delay`` and ``max_delay``).
MAX_DELAY = 60.0


def _invalid(message: str, field: str, allowed: str, value: object) -> InvalidData:
    return InvalidData(message, field=field, allowed=allowed, value=shown(value))


def _seconds(value: object, field: str) -> float:
    allowed = f"a number of seconds from 0 to {MAX_DELAY:g}"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _invalid(f"must be a number, not {type(value).__name__}", field, allowed, value)
    # Compared before converting: a huge int cannot become a float, and NaN fails both tests.
    if not 0 <= value <= MAX_DELAY:
        raise _invalid("is out of range" if value == value else "is not a number", field, allowed, value)
    return float(value)


def _checked(
    fn: object, attempts: object, base_delay: object, max_delay: object, sleep: object, rng: object
) -> Callable[[], float]:
    """Check the arguments (before anything is called); return the random draw to use."""
    if not callable(fn):
        raise _invalid(f"must be callable, not {type(fn).__name__}", "fn", "a function of no arguments", fn)
    allowed = f"a whole number from 1 to {MAX_ATTEMPTS}"
    if not isinstance(attempts, int) or isinstance(attempts, bool):
        raise _invalid(
            f"must be a whole number, not {type(attempts).__name__}", "attempts", allowed, attempts
        )
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise _invalid("is out of range", "attempts", allowed, attempts)
    base, cap = _seconds(base_delay, "base_delay"), _seconds(max_delay, "max_delay")
    if base > cap:
        raise _invalid(f"is more than max_delay ({cap:g})", "base_delay", "at most max_delay", base_delay)
    if not callable(sleep):
        raise _invalid(
            f"must be callable, not {type(sleep).__name__}", "sleep", "a function of seconds", sleep
        )
    check_instance(rng, random.Random, "rng", nullable=True)
    return rng.random if isinstance(rng, random.Random) else random.random


def _delay(conflicts: int, base_delay: float, max_delay: float, draw: Callable[[], float]) -> float:
    """The wait after the ``conflicts``-th conflict: random, below the capped exponential ceiling."""
    ceiling = min(max_delay, base_delay * 2.0 ** (conflicts - 1))
    return draw() * ceiling if ceiling > 0 else 0.0


def _retrying(conflict: ConcurrencyConflict, attempt: int, attempts: int, delay: float) -> None:
    _log.debug(
        "case %s: concurrency conflict on attempt %d of %d; retrying in %.3f s",
        conflict.case_id,
        attempt,
        attempts,
        delay,
    )


def retry_on_conflict(
    fn: Callable[[], T],
    /,
    *,
    attempts: int = 3,
    base_delay: float = 0.01,
    max_delay: float = 0.2,
    sleep: Callable[[float], object] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Return ``fn()``, calling it again each time it raises
    :class:`~casemgmt_core.ConcurrencyConflict`, up to ``attempts`` calls in all.

    ``fn`` takes no arguments (pass ``lambda: manager.handle(case_id, command, actor=actor)``)
    and must reload the case on each call. The last conflict is re-raised as it is; any other
    exception propagates at once. ``attempts`` is a whole number from 1 to 100
    (:data:`MAX_ATTEMPTS`); ``base_delay`` and ``max_delay`` are seconds from 0 to 60
    (:data:`MAX_DELAY`), ``base_delay`` at most ``max_delay`` (``base_delay=0``: no waiting).
    ``sleep`` waits, and ``rng`` (a :class:`random.Random`) draws the jitter; pass them to make
    the waits deterministic. Invalid arguments raise :class:`~casemgmt_core.InvalidData` before
    ``fn`` is called.
    """
    draw = _checked(fn, attempts, base_delay, max_delay, sleep, rng)
    attempt = 1
    while True:
        try:
            result = fn()
        except ConcurrencyConflict as conflict:
            if attempt >= attempts:
                raise
            delay = _delay(attempt, base_delay, max_delay, draw)
            _retrying(conflict, attempt, attempts, delay)
        else:
            if inspect.iscoroutine(result):
                result.close()  # never started: nothing ran
                raise InvalidData(
                    "returned a coroutine, which this function cannot await",
                    field="fn",
                    allowed="a blocking function (use retry_on_conflict_async for a coroutine function)",
                )
            return result
        # Outside the handler, so that an error of sleep() is not chained to the conflict.
        if delay > 0:
            sleep(delay)
        attempt += 1


async def retry_on_conflict_async(
    fn: Callable[[], Awaitable[T]],
    /,
    *,
    attempts: int = 3,
    base_delay: float = 0.01,
    max_delay: float = 0.2,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """:func:`retry_on_conflict` for asyncio: awaits ``fn()`` (e.g.
    ``lambda: manager.handle(...)`` of an :class:`~casemgmt_core.AsyncCaseManager`) and waits
    between attempts with ``await sleep(seconds)`` (default :func:`asyncio.sleep`).
    """
    draw = _checked(fn, attempts, base_delay, max_delay, sleep, rng)
    attempt = 1
    while True:
        try:
            awaitable = fn()
            if not inspect.isawaitable(awaitable):
                raise InvalidData(
                    f"returned {type(awaitable).__name__}, not an awaitable",
                    field="fn",
                    allowed="a coroutine function (use retry_on_conflict for a blocking one)",
                )
            return await awaitable
        except ConcurrencyConflict as conflict:
            if attempt >= attempts:
                raise
            delay = _delay(attempt, base_delay, max_delay, draw)
            _retrying(conflict, attempt, attempts, delay)
        if delay > 0:
            await sleep(delay)
        attempt += 1
