"""Policy as data: TOML loading with defaults, every problem reported, and what is due when."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c

from .support import T0, reach

ROOT = Path(__file__).resolve().parents[1]
S = cm.CaseState


def test_defaults_follow_the_sources() -> None:
    p = cm.load_policy("")
    assert p == cm.DEFAULT_POLICY
    assert p.time_limits.service_item_max_days == 183
    assert p.time_limits.case_max_days == 365
    assert p.statutory_rule(cm.StatutoryGround.CHILD_ABUSE) is not None
    assert p.statutory_rule(cm.StatutoryGround.ELDER_ABUSE) is None


def test_the_example_policy_loads() -> None:
    p = cm.load_policy(ROOT / "examples" / "policy.toml")
    assert p.eligibility.target_child_age == (6, 13)
    assert p.eligibility.jurisdiction == frozenset({"11680-101", "11680-102"})
    assert p.statutory_rule(cm.StatutoryGround.ELDER_ABUSE) is not None
    dv = p.statutory_rule(cm.StatutoryGround.DOMESTIC_VIOLENCE)
    assert dv is not None
    assert dv.authority == "police-112"
    assert dv.legal_basis  # kept from the defaults
    assert p.access.allows("supervisor", "reopen")
    assert not p.access.allows("caseworker", "approve_plan")
    assert not p.access.allows("visitor", "open")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[time_limits]\ncase_max_days = 0", "case_max_days must be more than 0"),
        ("[time_limits]\ncase_max_dayz = 3", "case_max_dayz"),
        ("[eligibility]\nmin_crisis_factors = 'two'", "policy.eligibility.min_crisis_factors"),
        ("[eligibility]\ntarget_child_age = [13, 6]", "youngest <= oldest"),
        ("[statutory.child_abuse]\nenabled = false", "cannot be disabled"),
        ("[statutory.abduction]\nenabled = true", "unknown ground 'abduction'"),
        ("[statutory.elder_abuse]\nenabled = true\nauthority = ''", "needs a legal_basis and an authority"),
        ("[access]\ncaseworker = ['fly']", "unknown events ['fly']"),
        ("programme = ", "not valid TOML"),
    ],
)
def test_invalid_policies_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, cm.CaseManagementError)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy("[time_limits]\nplan_days = 'x'\nassessment_days = 'y'")
    assert len(info.value.problems) == 2


def test_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(cm.PolicyError, match="cannot read"):
        cm.load_policy(tmp_path / "missing.toml")


def test_due_lists_deadlines_within_the_lead_time() -> None:
    d = reach(S.ASSESSMENT)
    entered = d.case.state_entered_at
    policy = cm.load_policy("[time_limits]\nreminder_lead_days = 13")
    assert [i.kind for i in cm.due(d.case, policy, entered)] == []
    soon = cm.due(d.case, policy, entered + dt.timedelta(days=1))  # 13 days before the deadline
    assert [(i.kind, i.overdue) for i in soon] == [(cm.DueKind.ASSESSMENT, False)]
    assert soon[0].due_at == entered + dt.timedelta(days=14)
    late = cm.due(d.case, policy, entered + dt.timedelta(days=15))
    assert (cm.DueKind.ASSESSMENT, True) in [(i.kind, i.overdue) for i in late]


def test_due_reports_service_item_limits_case_maximum_and_no_contact() -> None:
    d = reach(S.SERVICE)
    start = d.case.service_items[0].start
    later = cm.due(d.case, cm.DEFAULT_POLICY, start + dt.timedelta(days=200))
    kinds = {(i.kind, i.subject, i.overdue) for i in later}
    assert (cm.DueKind.SERVICE_ITEM_LIMIT, "S1", True) in kinds
    assert (cm.DueKind.NO_CONTACT, "", True) in kinds
    assert (cm.DueKind.REASSESSMENT, "", True) in kinds
    assert not any(k == cm.DueKind.CASE_MAX_DURATION for k, _, _ in kinds)
    year = cm.due(d.case, cm.DEFAULT_POLICY, d.case.episode_started_at + dt.timedelta(days=366))
    assert (cm.DueKind.CASE_MAX_DURATION, "", True) in {(i.kind, i.subject, i.overdue) for i in year}


def test_mandatory_report_is_due_until_filed() -> None:
    d = reach(S.INTAKE)
    d.do(c.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE))
    items = cm.due(d.case, cm.DEFAULT_POLICY, d.now + dt.timedelta(hours=1))
    first = items[0]
    assert (first.kind, first.subject, first.overdue) == (cm.DueKind.MANDATORY_REPORT, "child_abuse", True)
    d.do(c.FileMandatoryReport(cm.StatutoryGround.CHILD_ABUSE, "REF-7"))
    assert not [i for i in cm.due(d.case, cm.DEFAULT_POLICY, d.now) if i.kind is cm.DueKind.MANDATORY_REPORT]


def test_closed_cases_have_nothing_due() -> None:
    d = reach(S.CLOSED)
    assert cm.due(d.case, cm.DEFAULT_POLICY, T0 + dt.timedelta(days=1000)) == []
