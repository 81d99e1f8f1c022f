"""Policy as data: TOML loading with defaults, every problem reported, and what is due when."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.policy import StatutorySubject

from .support import T0, reach

ROOT = Path(__file__).resolve().parents[1]
S = cm.CaseState


def test_defaults_follow_the_sources() -> None:
    p = cm.load_policy("")
    assert p == cm.DEFAULT_POLICY
    limits = p.time_limits
    assert limits.service_item_max == cm.Duration(months=6)  # six months, then the family takes over
    assert limits.case_max == cm.Duration(months=12)  # a year per episode
    assert limits.aftercare == cm.Duration(months=6)
    assert limits.no_contact == cm.Duration(days=30)
    assert limits.approval == cm.Duration(days=7)
    assert (limits.service_extension, limits.max_service_extensions) == (cm.Duration(months=6), 1)
    assert (limits.case_extension, limits.max_case_extensions) == (cm.Duration(months=6), 2)
    assert p.time_zone == "Asia/Seoul"
    assert p.approvals == {}  # nothing needs an approval unless the programme says so
    assert p.episodes.aftercare_after == {
        cm.ClosureReason.GOALS_MET,
        cm.ClosureReason.SELF_RELIANT,
        cm.ClosureReason.MAXIMUM_DURATION,
    }
    assert p.episodes.reconfirm_consents == frozenset(cm.ConsentScope)
    assert p.statutory_rule(cm.StatutoryGround.CHILD_ABUSE) is not None
    assert p.statutory_rule(cm.StatutoryGround.ELDER_ABUSE) is None


def test_limits_are_written_in_days_words_or_iso_8601_and_the_old_names_still_load() -> None:
    p = cm.load_policy(
        """
[time_limits]
assessment = 10
plan = "2 weeks"
service_item_max = "P6M"
case_max = "1 year"
aftercare = "P1M15D"
no_contact_days = 20
reassessment_interval_days = 60
"""
    )
    limits = p.time_limits
    assert limits.assessment == cm.Duration(days=10)
    assert limits.plan == cm.Duration(days=14)
    assert limits.service_item_max == cm.Duration(months=6)
    assert limits.case_max == cm.Duration(months=12)
    assert limits.aftercare == cm.Duration(months=1, days=15)
    assert limits.no_contact == cm.Duration(days=20)  # a name of version 0.1, in whole days
    assert limits.reassessment_interval == cm.Duration(days=60)


def test_deadlines_fall_on_calendar_dates_in_the_programme_s_time_zone() -> None:
    kst = dt.timezone(dt.timedelta(hours=9))
    six_months = cm.DEFAULT_POLICY.time_limits.service_item_max
    deadline = cm.DEFAULT_POLICY.deadline
    assert deadline(dt.datetime(2026, 1, 15, 10, tzinfo=kst), six_months) == dt.datetime(
        2026, 7, 15, 10, tzinfo=kst
    )  # 181 days
    assert deadline(dt.datetime(2026, 3, 1, 10, tzinfo=kst), six_months) == dt.datetime(
        2026, 9, 1, 10, tzinfo=kst
    )  # 184 days
    assert deadline(dt.datetime(2026, 8, 31, 10, tzinfo=kst), six_months) == dt.datetime(
        2027, 2, 28, 10, tzinfo=kst
    )  # no 31 February: the month's last day
    # 20:00 UTC on 30 March is already 31 March in Seoul; a month later is 30 April there
    start = dt.datetime(2026, 3, 30, 20, tzinfo=dt.UTC)
    month = cm.Duration(months=1)
    assert cm.DEFAULT_POLICY.deadline(start, month) == dt.datetime(2026, 4, 29, 20, tzinfo=dt.UTC)
    utc = cm.load_policy('time_zone = "UTC"')
    assert utc.deadline(start, month) == dt.datetime(2026, 4, 30, 20, tzinfo=dt.UTC)


def test_approvals_and_episodes_load_from_their_tables() -> None:
    p = cm.load_policy(
        """
[approvals.plan]
by_conference = true

[approvals.closure]
approved_by = ["supervisor", "team_lead"]

[episodes]
aftercare_after = ["goals_met"]
reconfirm_consents = ["sharing"]

[access]
supervisor = ["*"]
team_lead = ["approve", "reject"]
"""
    )
    assert p.approvals == {
        cm.ApprovalStep.PLAN: cm.ApprovalRule(frozenset({"supervisor"}), by_conference=True),
        cm.ApprovalStep.CLOSURE: cm.ApprovalRule(frozenset({"supervisor", "team_lead"})),
    }
    assert p.approval_rule(cm.ApprovalStep.CASE_EXTENSION) is None
    assert p.episodes.aftercare_after == {cm.ClosureReason.GOALS_MET}
    assert p.episodes.reconfirm_consents == {cm.ConsentScope.SHARING}


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
    assert p.time_zone == "Asia/Seoul"
    limits = p.time_limits
    assert all(
        isinstance(getattr(limits, a.name), cm.Duration)
        for a in attrs.fields(cm.TimeLimits)
        if a.type in ("Duration", cm.Duration)
    )
    assert limits.no_contact == cm.Duration(days=30)  # given under its version 0.1 name
    assert cm.ApprovalStep.CLOSURE in p.approvals


@pytest.mark.parametrize(
    ("text", "fragment", "field"),
    [
        ("[time_limits]\ncase_max = 0", "is out of range, got 0", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '6 moons'", "is not a duration", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max_dayz = 3", "unknown key", "policy.time_limits.case_max_dayz"),
        (
            "[eligibility]\nmin_crisis_factors = 'two'",
            "must be a whole number",
            "policy.eligibility.min_crisis_factors",
        ),
        ("[eligibility]\ntarget_child_age = [13, 6]", "youngest", "policy.eligibility.target_child_age"),
        (
            "[statutory.child_abuse]\nenabled = false",
            "cannot be disabled",
            "policy.statutory.child_abuse.enabled",
        ),
        ("[statutory.abduction]\nenabled = true", "unknown ground", "policy.statutory.abduction"),
        (
            "[statutory.elder_abuse]\nenabled = true\nauthority = ''",
            "needs a legal_basis and an authority",
            "policy.statutory.elder_abuse.authority",
        ),
        ("[access]\ncaseworker = ['fly']", "unknown events 'fly'", "policy.access.caseworker"),
        (
            "[approvals.closure]\napproved_by = ['team_lead']",
            "the access table does not allow to approve",
            "policy.approvals.closure.approved_by",
        ),
        ("programme = ", "not valid TOML", "policy"),
    ],
)
def test_invalid_policies_say_what_is_wrong_and_where(text: str, fragment: str, field: str) -> None:
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy(text)
    assert fragment in str(info.value)
    assert info.value.field == field
    assert isinstance(info.value, cm.CaseManagementError)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy("[time_limits]\nplan = 'x'\nassessment = 'y'")
    assert len(info.value.problems) == 2


def test_every_failing_bound_is_reported_not_only_the_first() -> None:
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy(
            "[time_limits]\nplan = 0\ncase_max = 'P0D'\nmax_case_extensions = 101\nreminder_lead_days = 'x'"
        )
    assert set(info.value.fields) == {
        "policy.time_limits.plan",
        "policy.time_limits.case_max",
        "policy.time_limits.max_case_extensions",
        "policy.time_limits.reminder_lead_days",
    }
    assert len(info.value.problems) == 4


def test_a_limit_under_its_old_name_is_reported_under_the_name_written() -> None:
    """A policy of version 0.1 names ``case_max_days``: a problem with it must point there (the
    file has no ``case_max`` to change), and every problem is reported at once, as for any key."""
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy("[time_limits]\ncase_max_days = 0\nplan_days = 'x'\nassessment_days = 'y'")
    assert set(info.value.fields) == {
        "policy.time_limits.case_max_days",
        "policy.time_limits.plan_days",
        "policy.time_limits.assessment_days",
    }
    assert len(info.value.problems) == 3


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
    assert (cm.DueKind.NO_CONTACT, "unreachable", True) in kinds  # a candidate for closure
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


def test_statutory_rules_say_whom_they_protect_and_who_invokes_and_confirms() -> None:
    rules = cm.DEFAULT_POLICY.statutory
    G = cm.StatutoryGround
    assert rules[G.CHILD_ABUSE].applies_to is StatutorySubject.MINOR
    assert rules[G.ELDER_ABUSE].applies_to is StatutorySubject.ELDER
    assert rules[G.DOMESTIC_VIOLENCE].applies_to is StatutorySubject.ANY
    for rule in rules.values():
        assert rule.invoked_by == frozenset({"intake_officer", "caseworker", "supervisor"})
        assert rule.confirmation_within_hours is None
        assert rule.confirmed_by == frozenset({"supervisor"})
    assert cm.DEFAULT_POLICY.eligibility.elder_age == 65


def test_the_new_statutory_keys_load_over_the_grounds_defaults() -> None:
    p = cm.load_policy(
        """
[eligibility]
elder_age = 60

[statutory.elder_abuse]
enabled = true
applies_to = "any"
invoked_by = ["caseworker"]
confirmation_within_hours = 48
confirmed_by = ["supervisor", "team_lead"]
"""
    )
    rule = p.statutory[cm.StatutoryGround.ELDER_ABUSE]
    assert rule.applies_to is StatutorySubject.ANY
    assert rule.invoked_by == frozenset({"caseworker"})
    assert rule.confirmation_within_hours == 48
    assert rule.confirmed_by == frozenset({"supervisor", "team_lead"})
    assert rule.legal_basis == cm.DEFAULT_POLICY.statutory[cm.StatutoryGround.ELDER_ABUSE].legal_basis
    assert p.statutory[cm.StatutoryGround.CHILD_ABUSE].applies_to is StatutorySubject.MINOR
    assert p.eligibility.elder_age == 60


def test_confirming_an_override_is_for_supervisors_by_default() -> None:
    access = cm.DEFAULT_POLICY.access
    assert not access.allows("caseworker", "confirm_override")
    assert not access.allows("intake_officer", "confirm_override")
    assert access.allows("supervisor", "confirm_override") == ("confirm_override" in c.COMMAND_TYPES)


def test_rules_built_in_python_are_checked_too() -> None:
    with pytest.raises(cm.InvalidData, match=r"StatutoryRule\.invoked_by"):
        cm.StatutoryRule(invoked_by=frozenset())
    with pytest.raises(cm.InvalidData, match=r"StatutoryRule\.applies_to"):
        cm.StatutoryRule(applies_to="minor")  # type: ignore[arg-type]
    with pytest.raises(cm.InvalidData, match=r"TimeLimits\.case_max\b"):
        cm.TimeLimits(case_max=True)
    with pytest.raises(cm.InvalidData, match=r"TimeLimits\.approval\b"):
        cm.TimeLimits(approval="6 moons")
    with pytest.raises(cm.InvalidData, match=r"TimeLimits\.max_case_extensions"):
        cm.TimeLimits(max_case_extensions=101)
    with pytest.raises(cm.InvalidData, match=r"Policy\.time_zone"):
        cm.Policy(time_zone="Mars/Olympus_Mons")
    with pytest.raises(cm.InvalidData, match=r"Policy\.approvals"):
        cm.Policy(approvals={"closure": cm.ApprovalRule()})  # type: ignore[dict-item]
    with pytest.raises(cm.InvalidData, match=r"ApprovalRule\.approved_by"):
        cm.ApprovalRule(approved_by=frozenset())
    with pytest.raises(cm.InvalidData, match=r"Episodes\.aftercare_after"):
        cm.Episodes(aftercare_after=frozenset({"goals_met"}))
    assert cm.TimeLimits(case_max="P2Y").case_max == cm.Duration(months=24)
    with pytest.raises(cm.InvalidData, match=r"Eligibility\.jurisdiction"):
        cm.Eligibility(jurisdiction="R1")
    assert cm.StatutoryRule(invoked_by={"caseworker"}).invoked_by == frozenset({"caseworker"})
