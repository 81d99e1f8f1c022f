"""retry_on_conflict: a unit of work that lost an optimistic-concurrency race is decided again."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.adapters.async_sql import AsyncSQLStore
from casemgmt_core.retry import MAX_ATTEMPTS, MAX_DELAY

from .support import TEAM, WORKER, household, referral
from .test_service import Clock, opened

S = cm.CaseState


class Interloper:
    """Replaces ``store.commit``: before each of our commits while ``when()`` is true, ``write()``
    runs first, as another writer committing between our load and our commit. ``writes`` counts
    them (a manager may commit more than once in one call, e.g. after deciding on a cached case)."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        store: Any,
        write: Callable[[], object],
        when: Callable[[], bool],
    ) -> None:
        self.commit = store.commit
        self.write = write
        self.when = when
        self.writes = 0
        self.writing = False  # the other writer's own commit, through the same store object
        monkeypatch.setattr(store, "commit", self)

    def _first(self) -> bool:
        if self.writing or not self.when():
            return False
        self.writes += 1
        return True

    def __call__(self, commit: cm.Commit) -> None:
        if self._first():
            self.writing = True
            try:
                self.write()
            finally:
                self.writing = False
        self.commit(commit)


class AsyncInterloper(Interloper):
    async def __call__(self, commit: cm.Commit) -> None:  # type: ignore[override]
        if self._first():
            self.writing = True
            try:
                await self.write()  # type: ignore[misc]
            finally:
                self.writing = False
        await self.commit(commit)


@pytest.fixture
def other_store(embedded_store: cm.CaseStore) -> Iterator[cm.CaseStore]:
    """Another writer's store of the same cases: for SQLite, a store of its own on the same file."""
    if not isinstance(embedded_store, cm.SQLiteStore):
        yield embedded_store
        return
    other = cm.SQLiteStore(embedded_store.path)
    yield other
    other.close()


Writers = tuple[cm.CaseManager, cm.CaseManager]


@pytest.fixture
def writers(embedded_store: cm.CaseStore, other_store: cm.CaseStore) -> Writers:
    """Our manager and another writer's, on the same cases; the case C1 is opened."""
    ours = cm.CaseManager(embedded_store, clock=Clock())
    opened(ours)
    return ours, cm.CaseManager(other_store, clock=Clock())


class Calls:
    """``fn`` counting its calls and keeping the conflicts it raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.count = 0
        self.conflicts: list[cm.ConcurrencyConflict] = []

    def __call__(self) -> Any:
        self.count += 1
        try:
            return self.fn()
        except cm.ConcurrencyConflict as conflict:
            self.conflicts.append(conflict)
            raise


def conflicting(times: int, result: object = "done") -> Calls:
    """A function that conflicts ``times`` times (a new error each time), then returns ``result``."""

    def fn() -> object:
        if len(calls.conflicts) < times:
            raise cm.ConcurrencyConflict(
                case_id="C1", expected_version=calls.count, actual_version=calls.count + 1
            )
        return result

    calls = Calls(fn)
    return calls


class Top(random.Random):
    """Draws just below 1: every wait is at its ceiling."""

    def random(self) -> float:
        return 1 - 2**-53


# -- a real second writer -------------------------------------------------------------------------


def test_a_conflicting_command_is_decided_again_on_the_newer_case(
    embedded_store: cm.CaseStore, writers: Writers, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = writers
    calls = Calls(lambda: ours.handle("C1", c.StartIntake(), actor=WORKER))
    # The other writer gets in before every commit of our first call, none of the second.
    other = Interloper(
        monkeypatch,
        embedded_store,
        lambda: theirs.handle("C1", c.AssignCaseworker("w2", team_id=TEAM), actor=WORKER),
        lambda: calls.count == 1,
    )
    sleeps: list[float] = []

    case = cm.retry_on_conflict(calls, sleep=sleeps.append, rng=random.Random(1))

    assert calls.count == 2
    assert other.writes >= 1
    [conflict] = calls.conflicts
    assert (conflict.case_id, conflict.actual_version) == ("C1", 1 + other.writes)
    assert conflict.expected_version == other.writes
    assert len(sleeps) == 1
    assert (case.version, case.state, case.caseworker_id) == (2 + other.writes, S.INTAKE, "w2")
    assert [e.event for e in ours.history("C1")] == ["open"] + ["assign"] * other.writes + ["start_intake"]
    assert [e.version for e in ours.history("C1")] == list(range(1, case.version + 1))
    assert ours.get("C1") == case == theirs.get("C1")


def test_a_command_that_loses_every_race_raises_the_last_conflict(
    embedded_store: cm.CaseStore, writers: Writers, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = writers
    names = iter(f"w{n}" for n in range(100))
    other = Interloper(
        monkeypatch,
        embedded_store,
        lambda: theirs.handle("C1", c.AssignCaseworker(next(names), team_id=TEAM), actor=WORKER),
        lambda: True,
    )
    calls = Calls(lambda: ours.handle("C1", c.StartIntake(), actor=WORKER))
    sleeps: list[float] = []

    with pytest.raises(cm.ConcurrencyConflict) as info:
        cm.retry_on_conflict(calls, attempts=4, sleep=sleeps.append)

    assert calls.count == 4
    assert len(calls.conflicts) == 4
    assert info.value is calls.conflicts[-1]
    assert other.writes >= 4
    assert info.value.actual_version == 1 + other.writes  # the newest version: the last conflict
    assert info.value.expected_version == other.writes
    assert len(sleeps) == 3
    case = ours.get("C1")
    last = f"w{other.writes - 1}"
    assert (case.version, case.state, case.caseworker_id) == (1 + other.writes, S.REFERRED, last)


def test_a_command_refused_on_the_newer_case_is_not_retried(
    embedded_store: cm.CaseStore, writers: Writers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer starts the intake first: our StartIntake, decided again, no longer applies.
    ours, theirs = writers
    calls = Calls(lambda: ours.handle("C1", c.StartIntake(), actor=WORKER))
    other = Interloper(
        monkeypatch,
        embedded_store,
        lambda: theirs.handle("C1", c.StartIntake(), actor=WORKER),
        lambda: other.writes == 0,
    )

    with pytest.raises(cm.UnknownCommand):
        cm.retry_on_conflict(calls, attempts=5, sleep=lambda _: None)

    assert other.writes == 1
    # The refusal ended the retries: every call before it conflicted, and it came once.
    assert calls.count == len(calls.conflicts) + 1 <= 2
    assert [e.event for e in ours.history("C1")] == ["open", "start_intake"]
    assert [r.code for r in ours.refusals("C1")] == ["unknown_command"]


# -- what is retried, and how often ---------------------------------------------------------------


@pytest.mark.parametrize("attempts", [1, 2, 5, MAX_ATTEMPTS])
def test_exhaustion_reraises_the_last_conflict_unchanged_after_exactly_attempts_calls(attempts: int) -> None:
    calls = conflicting(attempts)
    sleeps: list[float] = []
    with pytest.raises(cm.ConcurrencyConflict) as info:
        cm.retry_on_conflict(calls, attempts=attempts, sleep=sleeps.append)
    assert calls.count == attempts
    assert info.value is calls.conflicts[-1]
    assert info.value.expected_version == attempts  # the last one raised, not the first
    assert len(sleeps) == attempts - 1  # no wait after the last attempt


def test_a_call_that_succeeds_after_conflicts_returns_its_result() -> None:
    calls = conflicting(2, result=42)
    assert cm.retry_on_conflict(calls, sleep=lambda _: None) == 42
    assert calls.count == 3


def test_a_first_success_does_not_wait() -> None:
    sleeps: list[float] = []
    assert cm.retry_on_conflict(lambda: "once", sleep=sleeps.append) == "once"
    assert sleeps == []


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        cm.StorageError("store unavailable"),  # the base class of ConcurrencyConflict
        cm.DuplicateCase(household_id="H1", existing_case_id="C0"),
        KeyboardInterrupt(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_other_errors_propagate_at_once(error: BaseException) -> None:
    def fn() -> None:
        raise error

    calls = Calls(fn)
    sleeps: list[float] = []
    with pytest.raises(type(error)) as info:
        cm.retry_on_conflict(calls, sleep=sleeps.append)
    assert info.value is error
    assert (calls.count, sleeps) == (1, [])


def test_an_error_after_a_conflict_stops_the_retries() -> None:
    def fn() -> None:
        if not calls.conflicts:
            raise cm.ConcurrencyConflict(case_id="C1", expected_version=1, actual_version=2)
        raise ValueError("decided otherwise")

    calls = Calls(fn)
    with pytest.raises(ValueError, match="decided otherwise"):
        cm.retry_on_conflict(calls, attempts=5, sleep=lambda _: None)
    assert calls.count == 2


def test_a_guard_refusal_is_not_retried() -> None:
    m = cm.CaseManager(cm.InMemoryStore(), clock=Clock())
    opened(m)
    m.handle("C1", c.StartIntake(), actor=WORKER)
    calls = Calls(lambda: m.handle("C1", c.CompleteIntake(), actor=WORKER))  # no crisis factors yet
    with pytest.raises(cm.TransitionRefused):
        cm.retry_on_conflict(calls, sleep=lambda _: None)
    assert calls.count == 1
    assert [r.code for r in m.refusals("C1")] == ["transition_refused"]


# -- backoff --------------------------------------------------------------------------------------


def test_waits_follow_the_jittered_exponential_schedule() -> None:
    sleeps: list[float] = []
    with pytest.raises(cm.ConcurrencyConflict):
        cm.retry_on_conflict(
            conflicting(8),
            attempts=8,
            base_delay=0.01,
            max_delay=0.2,
            sleep=sleeps.append,
            rng=random.Random(7),
        )
    draws = random.Random(7)
    ceilings = [0.01, 0.02, 0.04, 0.08, 0.16, 0.2, 0.2]
    assert sleeps == pytest.approx([ceiling * draws.random() for ceiling in ceilings])


def test_waits_reach_but_never_pass_their_ceiling() -> None:
    sleeps: list[float] = []
    with pytest.raises(cm.ConcurrencyConflict):
        cm.retry_on_conflict(
            conflicting(6), attempts=6, base_delay=0.5, max_delay=3, sleep=sleeps.append, rng=Top()
        )
    assert sleeps == pytest.approx([0.5, 1, 2, 3, 3])
    assert all(s <= 3 for s in sleeps)


def test_waits_are_bounded_by_max_delay_over_the_most_attempts() -> None:
    sleeps: list[float] = []
    with pytest.raises(cm.ConcurrencyConflict):
        cm.retry_on_conflict(conflicting(MAX_ATTEMPTS), attempts=MAX_ATTEMPTS, sleep=sleeps.append)
    assert len(sleeps) == MAX_ATTEMPTS - 1
    assert all(0 <= s <= 0.2 for s in sleeps)  # the default max_delay
    assert max(sleeps) > 0.01  # the ceiling grew past the default base_delay


def test_the_schedule_is_the_same_for_the_same_seed() -> None:
    def waits() -> list[float]:
        sleeps: list[float] = []
        with pytest.raises(cm.ConcurrencyConflict):
            cm.retry_on_conflict(conflicting(5), attempts=5, sleep=sleeps.append, rng=random.Random(3))
        return sleeps

    assert waits() == waits()


def test_a_zero_base_delay_retries_without_waiting() -> None:
    sleeps: list[float] = []
    calls = conflicting(3)
    assert cm.retry_on_conflict(calls, attempts=4, base_delay=0, max_delay=0, sleep=sleeps.append) == "done"
    assert (calls.count, sleeps) == (4, [])


def test_the_default_waits_are_short() -> None:
    started = time.monotonic()
    assert cm.retry_on_conflict(conflicting(2)) == "done"  # time.sleep, at most 0.01 + 0.02 s
    assert time.monotonic() - started < 1.0


# -- arguments ------------------------------------------------------------------------------------

INVALID: list[tuple[dict[str, object], str]] = [
    ({"attempts": 0}, "attempts"),
    ({"attempts": MAX_ATTEMPTS + 1}, "attempts"),
    ({"attempts": -1}, "attempts"),
    ({"attempts": True}, "attempts"),
    ({"attempts": 3.0}, "attempts"),
    ({"attempts": "3"}, "attempts"),
    ({"attempts": None}, "attempts"),
    ({"base_delay": -0.001}, "base_delay"),
    ({"base_delay": math.nan}, "base_delay"),
    ({"base_delay": math.inf}, "base_delay"),
    ({"base_delay": True}, "base_delay"),
    ({"base_delay": "0.01"}, "base_delay"),
    ({"base_delay": 10**400}, "base_delay"),
    ({"max_delay": -1}, "max_delay"),
    ({"max_delay": math.nan}, "max_delay"),
    ({"max_delay": -math.inf}, "max_delay"),
    ({"max_delay": MAX_DELAY + 1}, "max_delay"),
    ({"max_delay": None}, "max_delay"),
    ({"base_delay": 0.5, "max_delay": 0.2}, "base_delay"),
    ({"sleep": None}, "sleep"),
    ({"sleep": 0.1}, "sleep"),
    ({"rng": 42}, "rng"),
    ({"rng": random}, "rng"),  # the module, not a random.Random
]
INVALID_IDS = [",".join(f"{k}={v!r:.12}" for k, v in kwargs.items()) for kwargs, _ in INVALID]


@pytest.mark.parametrize(("kwargs", "field"), INVALID, ids=INVALID_IDS)
def test_invalid_arguments_are_refused_before_anything_is_called(kwargs: dict[str, Any], field: str) -> None:
    calls = Calls(lambda: None)
    with pytest.raises(cm.InvalidData) as info:
        cm.retry_on_conflict(calls, **kwargs)
    assert (info.value.field, calls.count) == (field, 0)
    assert info.value.allowed
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("kwargs", "field"), INVALID, ids=INVALID_IDS)
def test_invalid_arguments_are_refused_by_the_async_variant_too(kwargs: dict[str, Any], field: str) -> None:
    async def fn() -> None:
        raise AssertionError("called")

    with pytest.raises(cm.InvalidData) as info:
        asyncio.run(cm.retry_on_conflict_async(fn, **kwargs))
    assert info.value.field == field


@pytest.mark.parametrize("fn", [None, 42, "C1"])
def test_fn_must_be_callable(fn: object) -> None:
    with pytest.raises(cm.InvalidData) as info:
        cm.retry_on_conflict(fn)  # type: ignore[arg-type]
    assert info.value.field == "fn"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 1},
        {"attempts": MAX_ATTEMPTS},
        {"base_delay": 0, "max_delay": 0},
        {"base_delay": 1, "max_delay": MAX_DELAY},
        {"base_delay": 0.2, "max_delay": 0.2},
    ],
    ids=repr,
)
def test_arguments_at_their_bounds_are_accepted(kwargs: dict[str, Any]) -> None:
    assert cm.retry_on_conflict(lambda: "ok", **kwargs) == "ok"


def test_a_coroutine_function_is_refused_by_the_blocking_variant() -> None:
    async def fn() -> str:
        raise AssertionError("started")

    with pytest.raises(cm.InvalidData) as info:
        cm.retry_on_conflict(fn)  # type: ignore[unused-coroutine]
    assert info.value.field == "fn"
    assert "retry_on_conflict_async" in str(info.value)


# -- asyncio --------------------------------------------------------------------------------------


def test_async_a_conflicting_command_is_decided_again(monkeypatch: pytest.MonkeyPatch) -> None:
    store = cm.InMemoryStore()
    theirs = cm.CaseManager(store, clock=Clock())

    async def main() -> cm.Case:
        ours = cm.AsyncCaseManager(store, clock=Clock())
        await ours.open_case(household(), referral(), actor=WORKER, case_id="C1")
        calls = Calls(lambda: ours.handle("C1", c.StartIntake(), actor=WORKER))
        write = lambda: theirs.handle("C1", c.AssignCaseworker("w2", team_id=TEAM), actor=WORKER)  # noqa: E731
        Interloper(monkeypatch, store, write, lambda: calls.count == 1)
        case: cm.Case = await cm.retry_on_conflict_async(calls)
        assert calls.count == 2
        return case

    case = asyncio.run(main())
    assert (case.version, case.state, case.caseworker_id) == (3, S.INTAKE, "w2")
    assert [e.event for e in theirs.history("C1")] == ["open", "assign", "start_intake"]


def test_async_a_conflicting_command_is_decided_again_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> tuple[cm.Case, list[str], int, int]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'async.db'}"
        async with await AsyncSQLStore.open(url) as store, await AsyncSQLStore.open(url) as other:
            ours = cm.AsyncCaseManager(store, clock=Clock())
            theirs = cm.AsyncCaseManager(other, clock=Clock())
            await ours.open_case(household(), referral(), actor=WORKER, case_id="C1")
            write: Callable[[], Awaitable[cm.Case]] = lambda: theirs.handle(  # noqa: E731
                "C1", c.AssignCaseworker("w2", team_id=TEAM), actor=WORKER
            )
            calls = Calls(lambda: ours.handle("C1", c.StartIntake(), actor=WORKER))
            interloper = AsyncInterloper(monkeypatch, store, write, lambda: calls.count == 1)
            case = await cm.retry_on_conflict_async(calls)
            return case, [e.event for e in await theirs.history("C1")], calls.count, interloper.writes

    case, events, count, writes = asyncio.run(main())
    assert count == 2
    assert writes >= 1
    assert (case.version, case.state, case.caseworker_id) == (2 + writes, S.INTAKE, "w2")
    assert events == ["open"] + ["assign"] * writes + ["start_intake"]


def test_async_exhaustion_and_schedule() -> None:
    sleeps: list[float] = []
    conflicts: list[cm.ConcurrencyConflict] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def fn() -> None:
        conflicts.append(cm.ConcurrencyConflict(case_id="C1", expected_version=1, actual_version=2))
        raise conflicts[-1]

    with pytest.raises(cm.ConcurrencyConflict) as info:
        asyncio.run(cm.retry_on_conflict_async(fn, attempts=4, sleep=sleep, rng=Top()))
    assert len(conflicts) == 4
    assert info.value is conflicts[-1]
    assert sleeps == pytest.approx([0.01, 0.02, 0.04])


def test_async_other_errors_propagate_at_once() -> None:
    count = 0

    async def fn() -> None:
        nonlocal count
        count += 1
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        asyncio.run(cm.retry_on_conflict_async(fn, sleep=asyncio.sleep))
    assert count == 1


def test_async_a_guard_refusal_is_not_retried() -> None:
    async def main() -> int:
        m = cm.AsyncCaseManager(cm.InMemoryStore(), clock=Clock())
        await m.open_case(household(), referral(), actor=WORKER, case_id="C1")
        await m.handle("C1", c.StartIntake(), actor=WORKER)
        calls = Calls(lambda: m.handle("C1", c.CompleteIntake(), actor=WORKER))
        with pytest.raises(cm.TransitionRefused):
            await cm.retry_on_conflict_async(calls)
        return calls.count

    assert asyncio.run(main()) == 1


def test_async_a_blocking_function_is_refused() -> None:
    calls = Calls(lambda: "not awaitable")
    with pytest.raises(cm.InvalidData) as info:
        asyncio.run(cm.retry_on_conflict_async(calls))
    assert info.value.field == "fn"
    assert calls.count == 1
