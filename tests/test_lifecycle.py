"""Every state and every transition of the lifecycle: defined, drawn, and exercised."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.lifecycle import (
    ACTIVE_STATES,
    DEFINITION,
    EVENTS,
    LIMITED_EVENTS,
    TABLE,
    build_machine,
    transition_triples,
)

from .support import SUPERVISOR, WORKER, Driver, confirming_policy, consent, reach

S = cm.CaseState
ROOT = Path(__file__).resolve().parents[1]


def _link(d: Driver) -> c.Command:
    d.do(c.RecordConsent(consent(cm.ConsentScope.SHARING, "share-p9", "p9")))
    return c.LinkService(
        cm.ServiceItem("S9", "N1", "tutoring", cm.Agency("p9"), cm.ResourceKind.INFORMAL, d.now)
    )


def _end(d: Driver) -> c.Command:
    if d.case.service_item("S1") is not None:
        return c.EndService("S1", "done")
    d.do(_link(d))
    return c.EndService("S9", "done")


def _withdraw_service(d: Driver) -> c.Command:
    if not d.case.active_consents(cm.ConsentScope.SERVICE_PROVISION):
        d.do(c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION, "svc-late")))
    return c.WithdrawConsent(d.case.active_consents(cm.ConsentScope.SERVICE_PROVISION)[0].consent_id)


def _withdraw_data(d: Driver) -> c.Command:
    d.do(c.RecordConsent(consent(cm.ConsentScope.PERSONAL_DATA, "data-late")))
    return c.WithdrawConsent("data-late")


def _file(d: Driver) -> c.Command:
    d.do(c.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE))
    return c.FileMandatoryReport(cm.StatutoryGround.CHILD_ABUSE, "POL-2026-1")


def _confirm(d: Driver) -> c.Command:
    d.policy = confirming_policy()
    d.do(c.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE))
    return c.ConfirmStatutoryOverride()


def _close(d: Driver) -> c.Command:
    ok = d.case.state in (S.SERVICE, S.REASSESSMENT)
    return c.Close(cm.ClosureReason.GOALS_MET if ok else cm.ClosureReason.UNREACHABLE)


def _goal(d: Driver) -> str:
    if d.case.goal("G1") is None:
        d.do(c.SetGoal(cm.Goal("G1", "back in work", ["N1"])))
    return "G1"


def _running_item(d: Driver) -> str:
    running = [s.item_id for s in d.case.service_items if s.active]
    if running:
        return running[0]
    d.do(_link(d))
    return "S9"


def _extend_service(d: Driver) -> c.Command:
    # An approval justifies an extension in every state (a reassessment only after service began).
    item = _running_item(d)
    d.do(c.RequestApproval("A-ext", cm.ApprovalStep.SERVICE_EXTENSION, item, "another term"))
    d.do(c.Approve("A-ext", "agreed"), actor=SUPERVISOR)
    return c.ExtendService(item, "the family is not ready to take it over")


def _request(d: Driver) -> c.Command:
    step = cm.ApprovalStep.AFTERCARE if d.case.state is S.CLOSED else cm.ApprovalStep.CLOSURE
    return c.RequestApproval("A1", step, comment="please decide this week")


def _requested(then: c.Command) -> Callable[[Driver], c.Command]:
    def make(d: Driver) -> c.Command:
        d.do(_request(d))
        return then

    return make


MH_CENTRE = cm.Agency("mh-centre", "Mental health welfare centre")


def _refer_out(d: Driver) -> c.Command:
    d.do(c.RecordConsent(consent(cm.ConsentScope.SHARING, "share-mh", MH_CENTRE.id)))
    return c.ReferOut(MH_CENTRE, "long-term psychiatric support")


def _referred_out(then: c.Command) -> Callable[[Driver], c.Command]:
    def make(d: Driver) -> c.Command:
        d.do(_refer_out(d))
        return then

    return make


def _with(pre: c.Command, then: c.Command) -> Callable[[Driver], c.Command]:
    def make(d: Driver) -> c.Command:
        d.do(pre)
        return then

    return make


def _const(command: c.Command) -> Callable[[Driver], c.Command]:
    return lambda d: command


# For each event: how to make it acceptable in any of its source states (setup, then the command).
RECIPES: dict[str, Callable[[Driver], c.Command]] = {
    "start_intake": _const(c.StartIntake()),
    "hand_over": _const(c.HandOver(cm.Agency("child-protection", "아동보호전문기관"))),
    "complete_intake": _with(c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS), c.CompleteIntake()),
    "select": _const(c.Select()),
    # An eligible household leaves screening only for a reason that holds, or one it states.
    "redirect": _with(c.RecordIntakeFindings(information_only=True), c.Redirect("emergency_livelihood")),
    "refer_to_counselling": _with(c.RecordIntakeFindings(counselling_only=True), c.ReferToCounselling()),
    "decline": _const(c.Decline("the household refused", cm.ScreeningReason.HOUSEHOLD_DECLINED)),
    "complete_assessment": _with(c.RecordNeed(cm.Need("N1", cm.NeedDomain.HEALTH)), c.CompleteAssessment()),
    "approve_plan": _with(c.SetGoal(cm.Goal("G1", "work")), c.ApprovePlan()),
    "start_reassessment": _const(c.StartReassessment("needs changed")),
    "revise_plan": _const(c.RevisePlan()),
    "resume_service": _const(c.ResumeService()),
    "declare_crisis": _const(c.DeclareCrisis("eviction")),
    "close": _close,
    "start_aftercare": _const(c.StartAftercare("fragile after closure")),
    "complete_aftercare": _const(c.CompleteAftercare()),
    "reopen": _const(c.Reopen("the crisis came back")),
    "assign": _const(c.AssignCaseworker("worker-2")),
    "record_crisis_factor": _const(c.RecordCrisisFactor(cm.CrisisFactor.ISOLATION)),
    "record_intake_findings": _const(c.RecordIntakeFindings(wanted_change="stable housing")),
    "record_consent": _const(c.RecordConsent(consent(cm.ConsentScope.SHARING, "share-x", "x"))),
    "invoke_override": _const(c.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE)),
    "file_report": _file,
    "confirm_override": _confirm,
    "record_need": _const(c.RecordNeed(cm.Need("N9", cm.NeedDomain.LEGAL))),
    "record_strength": _const(c.RecordStrength(cm.Strength("a helpful neighbour"))),
    "set_goal": _const(c.SetGoal(cm.Goal("G9", "pay off the debt"))),
    "achieve_goal": _const(c.AchieveGoal("G1")),
    "schedule_conference": lambda d: c.ScheduleConference(cm.CaseConference("CC9", d.now, ["lead-1"])),
    "hold_conference": lambda d: _with(
        c.ScheduleConference(cm.CaseConference("CC8", d.now, ["lead-1"])),
        c.HoldConference("CC8", "plan agreed with the family"),
    )(d),
    "link_service": _link,
    "end_service": _end,
    "record_journal": _const(c.RecordJournal(cm.JournalKind.NEW_FINDING, "new debts found")),
    "revise_goal": lambda d: c.ReviseGoal(_goal(d), "part-time work first", "a smaller first step", ["N1"]),
    "drop_goal": lambda d: c.DropGoal(_goal(d), "the family chose another way"),
    "extend_service": _extend_service,
    "extend_case": _const(c.ExtendCase("the household needs more time")),
    "request_approval": _request,
    "approve": _requested(c.Approve("A1", "agreed")),
    "reject": _requested(c.Reject("A1", "reassess the household first")),
    "transfer": _const(c.TransferCase("prefers morning visits", caseworker_id="worker-2")),
    "refer_out": _refer_out,
    "referral_accepted": _referred_out(c.ReferralAccepted("MH-2026-7")),
    "referral_declined": _referred_out(c.ReferralDeclined("no capacity until spring")),
}

#: Events only a supervisor may issue under the default access rules.
SUPERVISOR_EVENTS = frozenset(
    {"approve_plan", "reopen", "confirm_override", "extend_case", "approve", "reject"}
)


def _driver_for(source: S, event: str, dest: S) -> Driver:
    if event == "resolve_crisis":
        d = reach(dest)
        d.do(c.DeclareCrisis("sudden hospitalisation"))
        return d
    if event == "withdraw_consent" and source is S.CRISIS:
        return reach(S.CRISIS)
    return reach(source)


def _triples() -> list[tuple[str, str, str]]:
    return sorted(t for t in transition_triples() if t[0] is not None)  # type: ignore[misc]


def test_recipes_cover_every_event() -> None:
    assert set(RECIPES) | {"open", "resolve_crisis", "withdraw_consent"} == set(EVENTS)


@pytest.mark.parametrize(("source", "event", "dest"), _triples(), ids=["-".join(t) for t in _triples()])
def test_every_transition_is_accepted_and_lands_where_defined(source: str, event: str, dest: str) -> None:
    d = _driver_for(S(source), event, S(dest))
    assert d.case.state is S(source)
    if event == "resolve_crisis":
        command: c.Command = c.ResolveCrisis("stable again")
    elif event == "withdraw_consent":
        command = _withdraw_service(d) if dest == "closed" and source != dest else _withdraw_data(d)
    else:
        command = RECIPES[event](d)
    before = d.case
    actor = SUPERVISOR if event in SUPERVISOR_EVENTS else WORKER
    after = d.do(command, actor=actor)
    assert after.state is S(dest)
    assert after.version == before.version + 1
    assert d.events[-1].event == event
    assert (d.events[-1].source, d.events[-1].target) == (S(source), S(dest))
    assert cm.replay(d.events) == after


def test_open_creates_a_case_in_the_initial_state() -> None:
    d = Driver()
    assert d.case.state is S.REFERRED
    assert d.case.version == 1
    assert [e.event for e in d.events] == ["open"]
    assert (None, "open", "referred") in transition_triples()


def test_every_state_of_the_domain_exists_and_is_reachable() -> None:
    reached = {S.REFERRED} | {S(t[2]) for t in transition_triples()}
    assert reached == set(S)
    assert set(S) == {
        S.REFERRED,
        S.INTAKE,
        S.SCREENING,
        S.ASSESSMENT,
        S.PLANNING,
        S.SERVICE,
        S.REASSESSMENT,
        S.CRISIS,
        S.CLOSED,
        S.AFTERCARE,
        S.REDIRECTED,
        S.GENERAL_COUNSELLING,
        S.DECLINED,
        S.HANDED_OVER,
    }


def test_the_domain_cycle_and_exits_are_in_the_definition() -> None:
    moves = {(s, e, d) for s, e, d in transition_triples() if s != d}
    expected = {
        ("referred", "start_intake", "intake"),
        ("intake", "complete_intake", "screening"),
        ("screening", "select", "assessment"),
        ("assessment", "complete_assessment", "planning"),
        ("planning", "approve_plan", "service"),
        ("service", "start_reassessment", "reassessment"),
        ("reassessment", "revise_plan", "planning"),
        ("reassessment", "resume_service", "service"),
        ("service", "close", "closed"),
        ("closed", "start_aftercare", "aftercare"),
        ("aftercare", "reopen", "intake"),
        ("closed", "reopen", "intake"),
        ("screening", "redirect", "redirected"),
        ("screening", "refer_to_counselling", "general_counselling"),
        ("screening", "decline", "declined"),
        ("referred", "hand_over", "handed_over"),
        ("service", "referral_accepted", "closed"),
        ("crisis", "referral_accepted", "closed"),
    }
    expected |= {(s.value, "declare_crisis", "crisis") for s in ACTIVE_STATES}
    expected |= {("crisis", "resolve_crisis", s.value) for s in ACTIVE_STATES}
    assert expected <= moves


def test_final_states_accept_nothing() -> None:
    for state in (S.REDIRECTED, S.GENERAL_COUNSELLING, S.DECLINED, S.HANDED_OVER):
        assert cm.allowed_events(state) == ()


def test_closed_cases_accept_only_reopen_aftercare_and_approval_decisions() -> None:
    # An approval may be asked for and decided after closure: after-care may need one.
    assert set(cm.allowed_events(S.CLOSED)) == {
        "reopen",
        "start_aftercare",
        "request_approval",
        "approve",
        "reject",
    }


def test_records_that_keep_the_stage_are_where_the_practice_needs_them() -> None:
    assert {"transfer", "request_approval", "approve", "reject"} <= set(cm.allowed_events(S.AFTERCARE))
    assert "extend_case" in cm.allowed_events(S.CRISIS)
    assert "extend_case" not in cm.allowed_events(S.AFTERCARE)
    assert "refer_out" not in cm.allowed_events(S.INTAKE)  # only after intake: hand_over before
    assert {"revise_goal", "drop_goal"} <= set(cm.allowed_events(S.PLANNING))
    assert "revise_goal" not in cm.allowed_events(S.SERVICE)


def test_limited_events_check_the_case_limit_first_and_only_they() -> None:
    for t in DEFINITION:
        if t.event in LIMITED_EVENTS:
            assert t.guards[0] == "within_case_limit", t.event
        else:
            assert "within_case_limit" not in t.guards, t.event
    # closure, crisis intervention and the extension itself stay possible past the limit
    assert not {"close", "declare_crisis", "extend_case", "withdraw_consent"} & LIMITED_EVENTS


def test_unknown_command_lists_what_is_allowed() -> None:
    d = reach(S.INTAKE)
    with pytest.raises(cm.UnknownCommand) as info:
        d.do(c.ApprovePlan())
    assert info.value.state == "intake"
    assert info.value.event == "approve_plan"
    assert "complete_intake" in info.value.allowed
    assert "approve_plan" not in info.value.allowed
    assert "allowed here" in str(info.value)


def test_the_machine_validates_the_definition() -> None:
    machine = build_machine()
    assert set(machine.states) == {s.value for s in S}
    assert set(machine.events) == set(EVENTS) - {"open"}
    assert len(DEFINITION) > 0
    assert all(key[1] in machine.events for key in TABLE)


def test_mermaid_and_dot_draw_every_state_and_move() -> None:
    mermaid = cm.to_mermaid()
    dot = cm.to_dot()
    for state in S:
        assert f'state "{state.value}" as {state.value}' in mermaid
        assert f"{state.value} [label=" in dot
    for source, event, dest in transition_triples():
        if source is None or source == dest:
            continue
        assert f"{source} --> {dest}:" in mermaid
        assert event in mermaid
        assert f"{source} -> {dest}" in dot
    assert "[*] --> referred" in mermaid


def test_diagram_with_records_shows_internal_events() -> None:
    assert "service --> service: " in cm.to_mermaid(include_records=True)
    assert "service --> service: " not in cm.to_mermaid()


def test_committed_diagram_is_up_to_date() -> None:
    from casemgmt_core.diagram import lifecycle_page

    regenerate = "run: python -m casemgmt_core.diagram docs/"
    assert (ROOT / "docs" / "lifecycle.md").read_text(encoding="utf-8") == lifecycle_page(), regenerate
    assert (ROOT / "docs" / "lifecycle.dot").read_text(encoding="utf-8") == cm.to_dot(), regenerate


def test_crisis_resumes_the_stage_it_interrupted() -> None:
    for state in ACTIVE_STATES:
        d = reach(state)
        d.do(c.DeclareCrisis("fire"))
        assert d.case.resume_state is state
        resumed = d.do(c.ResolveCrisis())
        assert resumed.state is state
        assert resumed.resume_state is None


def test_reopen_starts_a_new_episode() -> None:
    d = reach(S.CLOSED)
    closed = d.case
    reopened = d.do(c.Reopen("lost the job again"), actor=SUPERVISOR, days=200)
    assert reopened.state is S.INTAKE
    assert reopened.episode == 2
    assert reopened.closure is None
    assert reopened.episode_started_at == d.now
    assert reopened.opened_at < reopened.episode_started_at
    assert reopened.previous_episode == cm.EpisodeRef("C1", 1)
    assert (d.events[-1].episode, d.events[-1].previous_episode) == (2, cm.EpisodeRef("C1", 1))
    assert all(e.episode == 1 for e in d.events[:-1])
    # the old episode's work stays in its history, not in the new working set
    assert closed.needs
    assert closed.goals
    assert closed.service_items
    assert (reopened.needs, reopened.goals, reopened.service_items) == ((), (), ())
    assert reopened.crisis_factors == frozenset()
    assert reopened.consents == ()  # by default every consent is asked for again


def test_time_advances_state_entered_at_only_on_moves() -> None:
    d = reach(S.SERVICE)
    entered = d.case.state_entered_at
    d.do(c.RecordJournal(cm.JournalKind.CONTACT, "home visit"), days=3)
    assert d.case.state_entered_at == entered
    assert d.case.last_contact_at == d.now
    d.do(c.StartReassessment(), days=1)
    assert d.case.state_entered_at == d.now
    assert d.case.state_entered_at - entered == dt.timedelta(days=4)
