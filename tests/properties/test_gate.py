"""The coverage gate bites: a transition or guard outcome that no test exercised fails the run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.errors import TransitionRefused
from casemgmt_core.guards import GUARDS
from casemgmt_core.lifecycle import LIMITED_EVENTS, TABLE, transition_triples

from . import conftest as gate
from . import reference
from .builders import T0
from .coverage import Coverage, missing, table

WORKER = cm.Actor("w", "caseworker")


def _recorded() -> Coverage:
    """Opening, starting intake, and one refusal by ``crisis_factors_recorded``, from real decisions."""
    household = cm.Household("H", (cm.Member("a", T0.date().replace(year=1980)),), "R1")
    cov = Coverage()
    opened = cm.decide(
        None,
        c.OpenCase("C", household, cm.Referral(cm.ReferralChannel.WALK_IN, T0)),
        cm.DEFAULT_POLICY,
        T0,
        actor=WORKER,
    )
    cov.accepted("synthetic", opened)
    intake = cm.decide(opened.case, c.StartIntake(), cm.DEFAULT_POLICY, T0, actor=WORKER)
    cov.accepted("synthetic", intake)
    with pytest.raises(TransitionRefused) as refused:
        cm.decide(intake.case, c.CompleteIntake(), cm.DEFAULT_POLICY, T0, actor=WORKER)
    cov.refused("synthetic", refused.value)
    return cov


DEFINED = {(None, "open", "referred"), ("referred", "start_intake", "intake")}
OUTCOMES = {("crisis_factors_recorded", "no_crisis_factors")}


def test_a_fully_exercised_definition_passes() -> None:
    gap = missing(_recorded(), DEFINED, OUTCOMES)
    assert not gap
    assert table(_recorded(), DEFINED, OUTCOMES)[-1] == "2/2 transitions and 1/1 guard outcomes exercised"


def test_a_transition_nobody_exercised_is_reported() -> None:
    added = ("intake", "fast_track", "planning")
    gap = missing(_recorded(), {*DEFINED, added}, OUTCOMES)
    assert gap.triples == (added,)
    assert "intake --fast_track--> planning" in gap.describe()
    lines = table(_recorded(), {*DEFINED, added}, OUTCOMES)
    assert any("fast_track" in line and line.endswith("<-- MISSING") for line in lines)


def test_a_guard_outcome_nobody_exercised_is_reported() -> None:
    added = ("crisis_factors_recorded", "crisis_factors_recorded")
    gap = missing(_recorded(), DEFINED, {*OUTCOMES, added})
    assert gap.outcomes == (added,)
    assert gap.triples == ()


def test_the_library_definition_is_what_the_gate_checks_by_default() -> None:
    gap = missing(Coverage())
    assert (None, "open", "referred") in gap.triples
    assert ("reopenable", "closed_by_death") in gap.outcomes
    assert len(gap.triples) == len(transition_triples())


def test_the_reference_model_has_the_library_s_transitions_and_guards() -> None:
    """The tour walks the reference model's transitions: they are the library's, no more."""
    assert reference.triples() == transition_triples()
    assert set(reference.RULES) == set(GUARDS)
    assert reference.LIMITED == LIMITED_EVENTS
    library = {(s.value, t.event): t.guard_names for (s, e), ts in TABLE.items() for t in ts}
    model = {key: move.guards for key, move in reference._BY_KEY.items()}
    assert model == library


class _Item:
    def __init__(self, *sources: str) -> None:
        self.sources = sources

    def iter_markers(self, name: str) -> list[Any]:
        return [SimpleNamespace(args=(s,)) for s in self.sources] if name == "coverage_source" else []


def _session(*items: _Item) -> Any:
    config = SimpleNamespace(stash=pytest.Stash())
    return SimpleNamespace(items=list(items), config=config, exitstatus=pytest.ExitCode.OK)


def test_the_plugin_fails_an_armed_run_with_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = _recorded()
    monkeypatch.setattr(gate, "RECORDED", recorded)
    monkeypatch.setattr(gate, "missing", lambda cov: missing(cov, {*DEFINED, ("a", "b", "c")}, OUTCOMES))
    session = _session(_Item("tour"), _Item("machine:memory"))
    gate.pytest_collection_finish(session)
    assert session.config.stash[gate._ARMED]
    assert not recorded.triples  # collection starts the run's record afresh
    monkeypatch.setattr(gate, "RECORDED", _recorded())
    gate.pytest_sessionfinish(session, 0)
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert "a --b--> c" in session.config.stash[gate._GAP]


def test_the_plugin_passes_an_armed_run_without_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "RECORDED", Coverage())
    monkeypatch.setattr(gate, "missing", lambda cov: missing(_recorded(), DEFINED, OUTCOMES))
    session = _session(_Item("tour"), _Item("machine:memory"))
    gate.pytest_collection_finish(session)
    gate.pytest_sessionfinish(session, 0)
    assert session.exitstatus == pytest.ExitCode.OK


def test_the_plugin_stays_unarmed_unless_every_required_source_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "RECORDED", Coverage())
    session = _session(_Item("tour"))  # e.g. pytest -k tour: the state machine did not run
    gate.pytest_collection_finish(session)
    gate.pytest_sessionfinish(session, 0)
    assert not session.config.stash[gate._ARMED]
    assert session.exitstatus == pytest.ExitCode.OK
