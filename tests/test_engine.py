"""The functional core: decide is pure, apply replays, bad input is refused with a typed error."""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import Callable

import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c

from .support import POLICY, SUPERVISOR, T0, WORKER, Driver, household, reach, referral

S = cm.CaseState


def test_decide_is_pure() -> None:
    d = reach(S.SCREENING)
    frozen_case = pickle.dumps(d.case)
    first = cm.decide(d.case, c.Select(), POLICY, d.now, actor=WORKER)
    second = cm.decide(d.case, c.Select(), POLICY, d.now, actor=WORKER)
    assert first == second
    assert pickle.dumps(d.case) == frozen_case


def test_replay_of_the_events_equals_the_case() -> None:
    d = reach(S.AFTERCARE)
    assert cm.replay(d.events) == d.case
    assert [e.version for e in d.events] == list(range(1, d.case.version + 1))


def test_event_carries_who_when_why() -> None:
    d = reach(S.SCREENING)
    decision = cm.decide(
        d.case, c.Select(), POLICY, d.now, actor=WORKER, note="three crises at once", correlation_id="req-42"
    )
    [event] = decision.events
    assert (event.actor_id, event.role, event.occurred_at) == ("worker-1", "caseworker", d.now)
    assert (event.note, event.correlation_id) == ("three crises at once", "req-42")
    assert event.event_id == f"C1/{d.case.version + 1}"
    assert event.legal_basis is None


def test_apply_refuses_an_event_out_of_order() -> None:
    d = reach(S.INTAKE)
    with pytest.raises(cm.InvalidData, match="does not follow"):
        cm.apply(d.case, d.events[-1])
    with pytest.raises(cm.InvalidData, match="no events"):
        cm.replay([])
    with pytest.raises(cm.InvalidData, match="before the case was opened"):
        cm.apply(None, d.events[1])


def test_naive_datetimes_are_refused() -> None:
    d = reach(S.INTAKE)
    with pytest.raises(cm.InvalidData) as info:
        cm.decide(d.case, c.StartIntake(), POLICY, dt.datetime(2026, 1, 1), actor=WORKER)
    assert info.value.field == "now"
    with pytest.raises(cm.InvalidData, match="timezone-aware") as built:
        cm.Consent(
            "x",
            cm.ConsentScope.SERVICE_PROVISION,
            "parent",
            cm.ConsentGiver.PERSON,
            "parent",
            dt.datetime(2026, 1, 1),
        )
    assert built.value.field == "Consent.given_at"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (
            c.LinkService(cm.ServiceItem("S9", "N-missing", "x", cm.Agency("p"), cm.ResourceKind.FORMAL, T0)),
            "item.need_id",
        ),
        (c.EndService("nope"), "item_id"),
        (c.AchieveGoal("nope"), "goal_id"),
        (c.WithdrawConsent("nope"), "consent_id"),
        (c.RecordJournal(cm.JournalKind.CONTACT, "   "), "text"),
        (c.RecordJournal(cm.JournalKind.CONTACT, "visit", member_id="stranger"), "member_id"),
        (c.SetGoal(cm.Goal("G1", "duplicate id")), "goal.goal_id"),
        (c.ApprovePlan(conference_id="CC-missing"), "conference_id"),
        (c.HoldConference("CC-missing", "nothing"), "conference_id"),
        (c.ReviseGoal("nope", "another wording", "asked by the family"), "goal_id"),
        (c.ReviseGoal("G1", "another wording", "asked by the family", ["N-missing"]), "need_ids"),
        (c.ReviseGoal("G1", "another wording", "  "), "reason"),
        (c.DropGoal("nope", "not wanted"), "goal_id"),
        (c.DropGoal("G1", ""), "reason"),
        (c.ExtendService("nope", "one more term"), "item_id"),
        (c.ExtendService("S1", " "), "reason"),
        (c.ExtendService("S1", "one more term", approval_id="A-missing"), "approval_id"),
        (c.ExtendCase("more time", approval_id="A-missing"), "approval_id"),
        (c.Close(cm.ClosureReason.GOALS_MET, approval_id="A-missing"), "approval_id"),
        (c.RequestApproval("A1", cm.ApprovalStep.SERVICE_EXTENSION, "S-missing"), "subject"),
        (c.RequestApproval("A1", cm.ApprovalStep.CLOSURE, "S1"), "subject"),
        (c.Approve("A1", conference_id="CC-missing"), "conference_id"),
        (c.Reject("A1", "   "), "comment"),
        (c.TransferCase("moving teams"), "caseworker_id"),
        (c.TransferCase(" ", caseworker_id="worker-2"), "note"),
        (c.ReferralDeclined(""), "reason"),
    ],
)
def test_references_to_missing_things_are_invalid_data(command: c.Command, field: str) -> None:
    d = reach(S.SERVICE)
    if isinstance(command, (c.SetGoal, c.ApprovePlan, c.ReviseGoal, c.DropGoal)):
        d.do(c.StartReassessment())
        d.do(c.RevisePlan())
    before = d.case
    with pytest.raises(cm.InvalidData) as info:
        d.do(command)
    assert info.value.field == field
    assert d.case is before


def test_sharing_consent_must_name_one_agency() -> None:
    d = reach(S.INTAKE)
    bad = cm.Consent("s", cm.ConsentScope.SHARING, "parent", cm.ConsentGiver.PERSON, "parent", T0)
    with pytest.raises(cm.InvalidData, match="names exactly one agency"):
        d.do(c.RecordConsent(bad))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: (cm.Household("H1", []), referral()), "household.members"),
        (lambda: (cm.Household("", household().members), referral()), "Household.household_id"),
        (
            lambda: (cm.Household("H1", [*household().members, household().members[0]]), referral()),
            "household.members.member_id",
        ),
        (
            lambda: (
                cm.Household("H1", [cm.Member("a", dt.date(2015, 1, 1), guardian_id="ghost")]),
                referral(),
            ),
            "household.members.guardian_id",
        ),
        (lambda: (household(), cm.Referral(cm.ReferralChannel.SCHOOL, T0)), "referral.referring_agency"),
        (
            lambda: (household(), cm.Referral(cm.ReferralChannel.WALK_IN, dt.datetime(2026, 1, 1))),
            "Referral.received_at",
        ),
    ],
)
def test_opening_with_bad_data_is_refused(
    build: Callable[[], tuple[cm.Household, cm.Referral]], field: str
) -> None:
    def attempt() -> None:
        hh, ref = build()
        cm.decide(None, c.OpenCase("C1", hh, ref), POLICY, T0, actor=WORKER)

    with pytest.raises(cm.InvalidData) as info:
        attempt()
    assert info.value.field == field


def test_open_against_an_existing_case_is_an_unknown_command() -> None:
    d = Driver()
    with pytest.raises(cm.UnknownCommand):
        d.do(c.OpenCase("C1", household(), referral()))


def test_a_duplicate_registry_hit_at_opening_hands_over() -> None:
    other = cm.Agency("dong-centre-3", "Another centre")
    decision = cm.decide(
        None,
        c.OpenCase("C1", household(), referral()),
        POLICY,
        T0,
        actor=WORKER,
        facts=cm.Facts(managed_elsewhere_by=other),
    )
    assert [e.event for e in decision.events] == ["open", "hand_over"]
    assert decision.case.state is S.HANDED_OVER
    assert decision.case.handed_over_to == other
    assert "dong-centre-3" in decision.events[-1].note


def test_derived_values_are_recorded_in_the_event() -> None:
    d = reach(S.PLANNING)
    d.do(c.RecordConsent(consent_for("p")))
    d.do(
        c.LinkService(cm.ServiceItem("S9", "N1", "tutoring", cm.Agency("p"), cm.ResourceKind.INFORMAL, d.now))
    )
    item = d.case.service_item("S9")
    assert item is not None
    # six calendar months on the programme's calendar: 5 January to 5 July (181 days)
    assert item.time_limit == dt.datetime(2026, 7, 5, 9, 0, tzinfo=dt.UTC)
    assert item.time_limit == POLICY.deadline(d.now, POLICY.time_limits.service_item_max)
    payload = d.events[-1].payload
    assert isinstance(payload, c.LinkService)
    assert payload.item.time_limit == item.time_limit


def test_derived_values_of_the_lifecycle_steps_are_recorded_in_their_events() -> None:
    d = reach(S.PLANNING)
    d.do(c.SetGoal(cm.Goal("G1", "back in work", ["N1"])))
    d.do(c.ApprovePlan(), actor=SUPERVISOR)
    approved = d.events[-1].payload
    assert isinstance(approved, c.ApprovePlan)
    assert (approved.version, approved.goals) == (1, (cm.Goal("G1", "back in work", ("N1",)),))
    assert d.case.plan_version == 1

    d.do(c.AssignCaseworker("worker-1"))
    d.do(c.TransferCase("prefers morning visits", caseworker_id="worker-2", team_id="team-b"))
    transfer = d.events[-1].payload
    assert isinstance(transfer, c.TransferCase)
    assert (transfer.from_caseworker_id, transfer.from_team_id) == ("worker-1", None)
    assert (d.case.caseworker_id, d.case.team_id) == ("worker-2", "team-b")

    d.do(c.ExtendCase("the household needs more time"), actor=SUPERVISOR)
    extended = d.events[-1].payload
    assert isinstance(extended, c.ExtendCase)
    # the year from 5 January 2026, then six more calendar months
    assert extended.until == dt.datetime(2027, 7, 5, 9, 0, tzinfo=dt.UTC)
    assert (d.case.case_limit_extended_to, d.case.case_extensions) == (extended.until, 1)

    d.do(c.Close(cm.ClosureReason.MAXIMUM_DURATION))
    d.do(c.StartAftercare("check in after the winter"))
    aftercare = d.events[-1].payload
    assert isinstance(aftercare, c.StartAftercare)
    assert aftercare.until == dt.datetime(2026, 7, 5, 9, 0, tzinfo=dt.UTC)

    d.do(c.Reopen("lost the job again"), actor=SUPERVISOR)
    reopened = d.events[-1].payload
    assert isinstance(reopened, c.Reopen)
    assert set(reopened.lapsed_consents) == {"service_provision", "personal_data"}
    assert cm.replay(d.events) == d.case


def test_an_exit_records_the_reason_the_eligibility_rules_find() -> None:
    d = Driver()
    d.run([c.StartIntake(), c.RecordCrisisFactor(cm.CrisisFactor.DEBT), c.CompleteIntake()])
    d.do(c.Redirect("debt_counselling"))
    payload = d.events[-1].payload
    assert isinstance(payload, c.Redirect)
    assert payload.reason is cm.ScreeningReason.NOT_COMPLEX  # one crisis factor, two needed
    assert d.case.screening == cm.ScreeningResult(
        cm.EligibilityDecision.SINGLE_SERVICE,
        cm.ScreeningReason.NOT_COMPLEX,
        d.now,
        service="debt_counselling",
    )


def consent_for(agency: str) -> cm.Consent:
    return cm.Consent(
        f"share-{agency}", cm.ConsentScope.SHARING, "parent", cm.ConsentGiver.PERSON, "parent", T0, agency
    )


def test_a_dropped_goal_cannot_be_achieved() -> None:
    d = reach(cm.CaseState.PLANNING)
    d.run([c.SetGoal(cm.Goal("G1", "back in work", ["N1"])), c.SetGoal(cm.Goal("G2", "debts", ["N1"]))])
    d.do(c.DropGoal("G2", "paid off by a relative"))
    d.do(c.ApprovePlan(), actor=SUPERVISOR)
    with pytest.raises(cm.InvalidData) as info:
        d.do(c.AchieveGoal("G2"))
    assert (info.value.field, info.value.allowed) == ("goal_id", "G1")
    assert d.do(c.AchieveGoal("G1")).goal("G1").achieved_at == d.now  # type: ignore[union-attr]


def test_a_closed_case_is_due_only_for_its_pending_aftercare_approvals() -> None:
    d = reach(cm.CaseState.SERVICE)
    d.do(c.RequestApproval("A-close", cm.ApprovalStep.CLOSURE))
    d.do(c.Close(cm.ClosureReason.GOALS_MET), actor=SUPERVISOR)  # the default needs no approval
    d.do(c.RequestApproval("A-after", cm.ApprovalStep.AFTERCARE))
    later = d.now + dt.timedelta(days=400)
    pending = [(i.kind, i.subject) for i in cm.due(d.case, POLICY, later)]
    assert pending == [(cm.DueKind.APPROVAL, "A-after")]
