"""The coverage gate's bookkeeping: which transitions and guard outcomes the property tests exercised.

Every accepted command reaches :meth:`Coverage.accepted` through ``CaseManager(observe=...)``
(its events give ``(source, event, destination)`` triples, its verdicts the allowing guard
outcomes); every refusal by a guard reaches :meth:`Coverage.refused`. :func:`missing` compares
what was recorded with a definition (by default the library's own: ``transition_triples()`` and
``GUARD_REASONS``), and :func:`table` renders the result for the end of the test run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from attrs import define, field, frozen

from casemgmt_core.engine import Decision
from casemgmt_core.errors import TransitionRefused
from casemgmt_core.guards import GUARD_REASONS
from casemgmt_core.lifecycle import transition_triples

Triple = tuple[str | None, str, str]
Outcome = tuple[str, str]

#: The test that must have run for the gate to judge the run: the scripted tour (deterministic)
#: and the in-memory state machine (random exploration).
REQUIRED_SOURCES = frozenset({"tour", "machine:memory"})


@define
class Coverage:
    """Counts of triples and guard outcomes, by the test (``source``) that exercised them."""

    triples: Counter[tuple[str, Triple]] = field(factory=Counter)
    outcomes: Counter[tuple[str, Outcome]] = field(factory=Counter)
    sources: set[str] = field(factory=set)

    def accepted(self, source: str, decision: Decision) -> None:
        self.sources.add(source)
        for event in decision.events:
            triple = (
                event.source.value if event.source is not None else None,
                event.event,
                event.target.value,
            )
            self.triples[(source, triple)] += 1
        for verdict in decision.verdicts:
            self.outcomes[(source, (verdict.guard, verdict.reason.value))] += 1

    def refused(self, source: str, error: TransitionRefused) -> None:
        self.sources.add(source)
        self.outcomes[(source, (error.guard, error.reason))] += 1

    def seen_triples(self) -> set[Triple]:
        return {t for (_, t) in self.triples}

    def seen_outcomes(self) -> set[Outcome]:
        return {o for (_, o) in self.outcomes}

    def clear(self) -> None:
        self.triples.clear()
        self.outcomes.clear()
        self.sources.clear()


#: What this test run exercised (filled by the property tests, read by the pytest plugin).
RECORDED = Coverage()


def defined_outcomes(reasons: Mapping[str, Iterable[object]] = GUARD_REASONS) -> frozenset[Outcome]:
    return frozenset((guard, str(reason)) for guard, rs in reasons.items() for reason in rs)


@frozen
class Gap:
    triples: tuple[Triple, ...]
    outcomes: tuple[Outcome, ...]

    def __bool__(self) -> bool:
        return bool(self.triples or self.outcomes)

    def describe(self) -> str:
        lines = [f"transition never exercised: {_show(t)}" for t in self.triples]
        lines += [f"guard outcome never exercised: {g} -> {r}" for g, r in self.outcomes]
        return "\n".join(lines)


def _key(t: Triple) -> tuple[str, str, str]:
    return (t[0] or "", t[1], t[2])


def _show(t: Triple) -> str:
    return f"{t[0] or '(none)'} --{t[1]}--> {t[2]}"


def missing(
    recorded: Coverage,
    triples: Iterable[Triple] | None = None,
    outcomes: Iterable[Outcome] | None = None,
) -> Gap:
    """What the definition has and ``recorded`` never saw (default: the library's definition)."""
    want_triples = set(transition_triples() if triples is None else triples)
    want_outcomes = set(defined_outcomes() if outcomes is None else outcomes)
    return Gap(
        tuple(sorted(want_triples - recorded.seen_triples(), key=_key)),
        tuple(sorted(want_outcomes - recorded.seen_outcomes())),
    )


def table(
    recorded: Coverage,
    triples: Iterable[Triple] | None = None,
    outcomes: Iterable[Outcome] | None = None,
) -> list[str]:
    """The coverage table: each defined triple and guard outcome, with how often each source hit it."""
    want_triples = sorted(set(transition_triples() if triples is None else triples), key=_key)
    want_outcomes = sorted(set(defined_outcomes() if outcomes is None else outcomes))
    sources = sorted(recorded.sources)
    width = max([len(_show(t)) for t in want_triples] + [len(f"{g} -> {r}") for g, r in want_outcomes] + [10])
    head = "".ljust(width) + "".join(f"  {s:>16}" for s in sources)
    lines = ["transitions (source --event--> destination)", head]
    for t in want_triples:
        counts = [recorded.triples[(s, t)] for s in sources]
        mark = "" if any(counts) else "  <-- MISSING"
        lines.append(_show(t).ljust(width) + "".join(f"  {n:>16}" for n in counts) + mark)
    lines += ["", "guard outcomes (guard -> reason)", head]
    for g, r in want_outcomes:
        counts = [recorded.outcomes[(s, (g, r))] for s in sources]
        mark = "" if any(counts) else "  <-- MISSING"
        lines.append(f"{g} -> {r}".ljust(width) + "".join(f"  {n:>16}" for n in counts) + mark)
    gap = missing(recorded, want_triples, want_outcomes)
    lines += [
        "",
        f"{len(want_triples) - len(gap.triples)}/{len(want_triples)} transitions and "
        f"{len(want_outcomes) - len(gap.outcomes)}/{len(want_outcomes)} guard outcomes exercised",
    ]
    return lines
