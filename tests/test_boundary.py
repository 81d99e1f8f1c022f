"""Trust at the boundary: what a careless or hostile caller tries gets a typed error, and the
stored record is exactly as it was (every event of every case, compared before and after)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c

from .support import SUPERVISOR, T0, WORKER, confirming_policy, consent, household, referral

S = cm.CaseState
CHILD = cm.StatutoryGround.CHILD_ABUSE


@pytest.fixture
def store(embedded_store: cm.CaseStore) -> cm.CaseStore:
    """Each embedded store, empty."""
    return embedded_store


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def manager(store: cm.CaseStore, **kwargs: Any) -> tuple[cm.CaseManager, Clock]:
    clock = Clock()
    return cm.CaseManager(store, clock=clock, **kwargs), clock


def snapshot(store: cm.CaseStore, case_ids: list[str]) -> dict[str, Any]:
    """Everything the store holds about these cases, except the refusals (audit rows it adds)."""
    out: dict[str, Any] = {}
    for case_id in case_ids:
        try:
            out[case_id] = (store.load(case_id), tuple(store.events(case_id)))
        except cm.CaseNotFound:
            out[case_id] = None
    out["outbox"] = tuple(store.pending_notifications(limit=1000))
    return out


def opened(m: cm.CaseManager, hh: cm.Household | None = None, case_id: str = "C1") -> cm.Case:
    return m.open_case(hh or household(), referral(), actor=WORKER, case_id=case_id)


def in_intake(m: cm.CaseManager, hh: cm.Household | None = None) -> cm.Case:
    opened(m, hh)
    return m.handle("C1", c.StartIntake(), actor=WORKER)


def assert_unchanged(store: cm.CaseStore, before: dict[str, Any], case_ids: list[str]) -> None:
    assert snapshot(store, case_ids) == before
    assert store.verify().ok


# -- the statutory override, locked down -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"legal_basis": "anything"}, "legal_basis"),
        ({"authority": "my-friend"}, "authority"),
        ({"legal_basis": "anything", "authority": "my-friend"}, "legal_basis"),
        ({"report_due_at": T0 + dt.timedelta(days=365)}, "report_due_at"),
        ({"confirm_by": T0 + dt.timedelta(days=365)}, "confirm_by"),
    ],
)
def test_a_forged_legal_basis_or_authority_is_refused(
    store: cm.CaseStore, kwargs: dict[str, Any], field: str
) -> None:
    m, _ = manager(store)
    in_intake(m)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.InvalidData) as info:
        m.handle("C1", c.InvokeStatutoryOverride(CHILD, **kwargs), actor=WORKER)
    assert info.value.field == field
    assert_unchanged(store, before, ["C1"])


def test_the_policy_s_basis_and_authority_are_recorded_and_notified(store: cm.CaseStore) -> None:
    m, _ = manager(store)
    in_intake(m)
    rule = cm.DEFAULT_POLICY.statutory[CHILD]
    case = m.handle("C1", c.InvokeStatutoryOverride(CHILD, legal_basis=rule.legal_basis), actor=WORKER)
    assert case.statutory_override is not None
    assert case.statutory_override.legal_basis == rule.legal_basis
    assert [r.authority for r in case.mandatory_reports] == [rule.authority]
    recipients = {p.notification.recipient for p in store.pending_notifications()}
    assert recipients == {a.strip() for a in rule.authority.split(";")}


def test_a_report_filed_before_delivery_is_refused_and_the_case_cannot_close(store: cm.CaseStore) -> None:
    m, _ = manager(store)  # no notifier: the report stays in the outbox
    in_intake(m)
    m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=WORKER)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.FileMandatoryReport(CHILD, "x"), actor=WORKER)
    assert (info.value.guard, info.value.reason) == ("report_delivered", "report_not_delivered")
    with pytest.raises(cm.TransitionRefused) as closing:
        m.handle("C1", c.HandOver(cm.Agency("elsewhere")), actor=WORKER)
    assert closing.value.reason == "mandatory_report_pending"
    assert_unchanged(store, before, ["C1"])


def test_a_caller_cannot_claim_delivery(store: cm.CaseStore) -> None:
    m, _ = manager(store)
    in_intake(m)
    m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=WORKER)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.InvalidData) as info:
        m.handle("C1", c.FileMandatoryReport(CHILD, "x", delivered_at=T0), actor=WORKER)
    assert info.value.field == "delivered_at"
    assert_unchanged(store, before, ["C1"])


def test_a_report_counts_as_filed_once_every_authority_confirmed_delivery(store: cm.CaseStore) -> None:
    m, clock = manager(store)
    in_intake(m)
    m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=WORKER)
    pending = [p.notification for p in store.pending_notifications()]
    assert len(pending) == 2  # the default policy names two authorities
    store.mark_delivered(pending[0].notification_id, T0)
    with pytest.raises(cm.TransitionRefused):
        m.handle("C1", c.FileMandatoryReport(CHILD, "POL-1"), actor=WORKER)
    clock.now = T0 + dt.timedelta(hours=1)
    store.mark_delivered(pending[1].notification_id, clock.now)
    case = m.handle("C1", c.FileMandatoryReport(CHILD, "POL-1"), actor=WORKER)
    (report,) = case.mandatory_reports
    assert report.filed
    assert report.reference == "POL-1"
    assert report.delivered_at == clock.now
    assert not [d for d in m.due(clock.now) if d.kind is cm.DueKind.MANDATORY_REPORT]


def test_child_abuse_needs_a_child(store: cm.CaseStore) -> None:
    m, _ = manager(store)
    adults = cm.Household("H1", [cm.Member("parent", dt.date(1985, 4, 1))])
    in_intake(m, adults)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=WORKER)
    assert (info.value.guard, info.value.reason) == ("statutory_subject", "no_statutory_subject")
    assert_unchanged(store, before, ["C1"])


def test_the_member_named_must_be_one_the_ground_protects(store: cm.CaseStore) -> None:
    m, _ = manager(store)
    in_intake(m)
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.InvokeStatutoryOverride(CHILD, member_id="parent"), actor=WORKER)
    assert info.value.reason == "no_statutory_subject"
    with pytest.raises(cm.InvalidData) as missing:
        m.handle("C1", c.InvokeStatutoryOverride(CHILD, member_id="ghost"), actor=WORKER)
    assert missing.value.field == "member_id"
    case = m.handle("C1", c.InvokeStatutoryOverride(CHILD, member_id="child"), actor=WORKER)
    assert case.statutory_override is not None


def test_a_role_with_no_business_lifting_consent_is_refused(store: cm.CaseStore) -> None:
    roles = {**cm.DEFAULT_POLICY.access.roles, "volunteer": frozenset({"invoke_override"})}
    policy = attrs.evolve(cm.DEFAULT_POLICY, access=cm.AccessRules(roles))
    m, _ = manager(store, policy=policy)
    in_intake(m)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=cm.Actor("v-1", "volunteer"))
    assert (info.value.guard, info.value.reason) == ("statutory_actor", "role_may_not_invoke")
    assert_unchanged(store, before, ["C1"])


def test_a_second_person_confirms_or_the_override_lapses(store: cm.CaseStore) -> None:
    m, clock = manager(store, policy=confirming_policy(hours=24))
    in_intake(m)
    case = m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=SUPERVISOR)
    override = case.statutory_override
    assert override is not None
    assert override.confirm_by == T0 + dt.timedelta(hours=24)
    due = [d for d in m.due(T0) if d.kind is cm.DueKind.OVERRIDE_CONFIRMATION]
    assert [(d.due_at, d.overdue) for d in due] == [(override.confirm_by, False)]
    # the invoker cannot confirm; nor can a role the policy does not name
    with pytest.raises(cm.TransitionRefused) as same:
        m.handle("C1", c.ConfirmStatutoryOverride(), actor=SUPERVISOR)
    assert same.value.reason == "same_person"
    with pytest.raises(cm.AuthorizationDenied):  # the access table: supervisors only
        m.handle("C1", c.ConfirmStatutoryOverride(), actor=WORKER)
    # unconfirmed past the deadline: lapsed, consent is needed again, the confirmation is overdue
    clock.now = T0 + dt.timedelta(hours=25)
    assert [d.overdue for d in m.due(clock.now) if d.kind is cm.DueKind.OVERRIDE_CONFIRMATION] == [True]
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.TransitionRefused) as lapsed:
        m.handle("C1", c.ConfirmStatutoryOverride(), actor=cm.Actor("lead-2", "supervisor"))
    assert lapsed.value.reason == "override_lapsed"
    assert_unchanged(store, before, ["C1"])


def test_only_the_roles_the_rule_names_may_confirm(store: cm.CaseStore) -> None:
    policy = confirming_policy(hours=24)
    roles = {**policy.access.roles, "caseworker": policy.access.roles["caseworker"] | {"confirm_override"}}
    m, _ = manager(store, policy=attrs.evolve(policy, access=cm.AccessRules(roles)))
    in_intake(m)
    m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=SUPERVISOR)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.ConfirmStatutoryOverride(), actor=WORKER)
    assert (info.value.guard, info.value.reason) == ("statutory_actor", "role_may_not_confirm")
    assert_unchanged(store, before, ["C1"])


def test_a_confirmed_override_keeps_lifting_consent(store: cm.CaseStore) -> None:
    m, clock = manager(store, policy=confirming_policy(hours=24))
    in_intake(m)
    m.handle("C1", c.InvokeStatutoryOverride(CHILD), actor=WORKER)
    case = m.handle("C1", c.ConfirmStatutoryOverride(), actor=SUPERVISOR)
    override = case.statutory_override
    assert override is not None
    assert override.confirmed_by == SUPERVISOR.id
    clock.now = T0 + dt.timedelta(days=3)
    assert override.in_force(clock.now)
    assert not [d for d in m.due(clock.now) if d.kind is cm.DueKind.OVERRIDE_CONFIRMATION]


# -- what decide derives, and what only a second person decides, is not the caller's ------------


def _planning(m: cm.CaseManager) -> None:
    for command in (
        c.StartIntake(),
        c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS),
        c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION)),
        c.RecordConsent(consent(cm.ConsentScope.PERSONAL_DATA)),
        c.CompleteIntake(),
        c.Select(),
        c.RecordNeed(cm.Need("N1", cm.NeedDomain.HEALTH)),
        c.CompleteAssessment(),
        c.SetGoal(cm.Goal("G1", "steady treatment", ["N1"])),
    ):
        m.handle("C1", command, actor=WORKER)


@pytest.mark.parametrize(
    ("command", "actor", "field"),
    [
        (c.ApprovePlan(version=7), SUPERVISOR, "version"),
        (c.ApprovePlan(goals=[cm.Goal("G9", "a goal never set")]), SUPERVISOR, "goals"),
        (c.ApprovePlan(approval_id="A-forged"), SUPERVISOR, "approval_id"),
        (c.Close(cm.ClosureReason.MOVED_AWAY, approval_id="A-forged"), WORKER, "approval_id"),
        (c.ExtendCase("more time", approval_id="A-forged"), SUPERVISOR, "approval_id"),
        (c.ExtendCase("more time", until=T0 - dt.timedelta(days=1)), SUPERVISOR, "until"),
        (
            c.TransferCase("handing over", caseworker_id="w-2", from_caseworker_id="w-9"),
            WORKER,
            "from_caseworker_id",
        ),
        (c.TransferCase("handing over", team_id="t-2", from_team_id="t-9"), WORKER, "from_team_id"),
        (c.RequestApproval("A1", cm.ApprovalStep.CLOSURE, subject="S1"), WORKER, "subject"),
        (c.RequestApproval("A1", cm.ApprovalStep.SERVICE_EXTENSION, subject="S-none"), WORKER, "subject"),
    ],
    ids=lambda x: getattr(x, "event", None) or str(x)[:20],
)
def test_what_decide_derives_cannot_be_forged(
    store: cm.CaseStore, command: c.Command, actor: cm.Actor, field: str
) -> None:
    m, _ = manager(store)
    opened(m)
    _planning(m)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.InvalidData) as info:
        m.handle("C1", command, actor=actor)
    assert info.value.field == field
    assert_unchanged(store, before, ["C1"])
    assert m.refusals("C1")[-1].code == "invalid_data"


def test_a_reopening_cannot_choose_which_consents_lapse(store: cm.CaseStore) -> None:
    m, _ = manager(store)
    opened(m)
    _planning(m)
    m.handle("C1", c.Close(cm.ClosureReason.MOVED_AWAY), actor=WORKER)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.InvalidData) as info:
        m.handle("C1", c.Reopen("back in the district", lapsed_consents=["sharing"]), actor=SUPERVISOR)
    assert info.value.field == "lapsed_consents"
    assert_unchanged(store, before, ["C1"])


def test_an_opening_cannot_claim_an_earlier_episode() -> None:
    """The link to the household's last episode is found in the store (``Facts.previous_case``),
    never taken from the caller."""
    with pytest.raises(cm.InvalidData) as info:
        cm.decide(
            None,
            c.OpenCase("C1", household(), referral(), previous_episode=cm.EpisodeRef("C-other", 3)),
            cm.DEFAULT_POLICY,
            T0,
            actor=WORKER,
        )
    assert info.value.field == "previous_episode"


@pytest.mark.parametrize(
    ("reason", "field"),
    [
        (cm.ScreeningReason.ELIGIBLE, "reason"),  # the reason for selecting, not for an exit
        (cm.ScreeningReason.NOT_COMPLEX, "reason"),  # two crisis factors: it does not hold
        (cm.ScreeningReason.NO_CONSENT, "reason"),  # consent was given
        (None, "reason"),  # an eligible household leaves only for a reason given
    ],
)
def test_a_screening_exit_records_only_a_reason_that_holds(
    store: cm.CaseStore, reason: cm.ScreeningReason | None, field: str
) -> None:
    m, _ = manager(store)
    opened(m)
    for command in (
        c.StartIntake(),
        c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS),
        c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION)),
        c.CompleteIntake(),
    ):
        m.handle("C1", command, actor=WORKER)
    before = snapshot(store, ["C1"])
    for exit_command in (
        c.Redirect("emergency_livelihood", reason),
        c.ReferToCounselling(reason),
        c.Decline("not now", reason),
    ):
        with pytest.raises(cm.InvalidData) as info:
            m.handle("C1", exit_command, actor=WORKER)
        assert info.value.field == field
    assert_unchanged(store, before, ["C1"])
    declined = m.handle("C1", c.Decline("not now", cm.ScreeningReason.HOUSEHOLD_DECLINED), actor=WORKER)
    assert declined.screening is not None
    assert declined.screening.reason is cm.ScreeningReason.HOUSEHOLD_DECLINED


def test_an_approval_is_decided_by_another_person_in_a_role_the_policy_names(store: cm.CaseStore) -> None:
    policy = attrs.evolve(
        cm.DEFAULT_POLICY,
        approvals={
            cm.ApprovalStep.CLOSURE: cm.ApprovalRule(frozenset({"team_lead"})),
            cm.ApprovalStep.PLAN: cm.ApprovalRule(by_conference=True),
        },
    )
    m, _ = manager(store, policy=policy)
    opened(m)
    _planning(m)
    m.handle("C1", c.RequestApproval("A1", cm.ApprovalStep.CLOSURE), actor=WORKER)
    m.handle("C1", c.RequestApproval("A2", cm.ApprovalStep.PLAN), actor=WORKER)
    before = snapshot(store, ["C1"])
    refusals = []
    for command, actor in (
        (c.Approve("A1"), SUPERVISOR),  # a supervisor, but closures are the team lead's here
        (c.Approve("A2"), SUPERVISOR),  # plans are decided by a case conference
        (c.Approve("A2", conference_id="CC-never-held"), SUPERVISOR),
    ):
        with pytest.raises((cm.TransitionRefused, cm.InvalidData)) as info:
            m.handle("C1", command, actor=actor)
        refusals.append(getattr(info.value, "reason", None) or getattr(info.value, "field", None))
    assert refusals == ["role_may_not_approve", "conference_required", "conference_id"]
    with pytest.raises(cm.InvalidData) as twice:
        m.handle("C1", c.RequestApproval("A3", cm.ApprovalStep.CLOSURE), actor=WORKER)
    assert twice.value.field == "step"  # one pending request per step and subject
    with pytest.raises(cm.InvalidData) as reused:
        m.handle("C1", c.RequestApproval("A1", cm.ApprovalStep.AFTERCARE), actor=WORKER)
    assert reused.value.field == "approval_id"
    with pytest.raises(cm.TransitionRefused) as closing:
        m.handle("C1", c.Close(cm.ClosureReason.MOVED_AWAY), actor=WORKER)
    assert (closing.value.guard, closing.value.reason) == ("approval", "approval_pending")
    assert "'A1'" in closing.value.message
    assert_unchanged(store, before, ["C1"])


# -- values that could not be read back are refused when built --------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: c.RecordCrisisFactor("job_loss"), "RecordCrisisFactor.factor"),  # type: ignore[arg-type]
        (lambda: c.RecordJournal("contact", "visited"), "RecordJournal.kind"),  # type: ignore[arg-type]
        (lambda: cm.Need("N1", "health"), "Need.domain"),  # type: ignore[arg-type]
        (lambda: c.Close("goals_met"), "Close.reason"),  # type: ignore[arg-type]
        (lambda: cm.Member("m", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)), "Member.birth_date"),
        (lambda: cm.Member("m", "2000-01-01"), "Member.birth_date"),  # type: ignore[arg-type]
        (lambda: cm.Household("H", "ab"), "Household.members"),  # type: ignore[arg-type]
        (
            lambda: cm.Household("H", [cm.Member("m", dt.date(2000, 1, 1))], low_income=1),
            "Household.low_income",
        ),  # type: ignore[arg-type]
        (lambda: cm.Referral(cm.ReferralChannel.WALK_IN, dt.datetime(2026, 1, 1)), "Referral.received_at"),
        (lambda: c.RecordIntakeFindings(information_only="false"), "RecordIntakeFindings.information_only"),  # type: ignore[arg-type]
        (lambda: cm.Goal("G", "x", need_ids="N1"), "Goal.need_ids"),  # type: ignore[arg-type]
        (lambda: cm.CaseQuery(limit=2**63), "CaseQuery.limit"),
        (lambda: c.Redirect("x", reason="other"), "Redirect.reason"),  # type: ignore[arg-type]
        (lambda: c.HandOver(cm.Agency("a"), reason="managed_elsewhere"), "HandOver.reason"),  # type: ignore[arg-type]
        (lambda: c.RequestApproval("A1", "closure"), "RequestApproval.step"),  # type: ignore[arg-type]
        (lambda: c.RequestApproval("A1", cm.ApprovalStep.CLOSURE, "a\nb"), "RequestApproval.subject"),
        (lambda: c.ExtendService("S1", "term", until=dt.datetime(2026, 9, 1)), "ExtendService.until"),
        (lambda: c.ExtendCase("more", until="2027-01-01"), "ExtendCase.until"),  # type: ignore[arg-type]
        (lambda: c.ReviseGoal("G1", "x", "y", need_ids="N1"), "ReviseGoal.need_ids"),
        (lambda: c.Reopen("again", lapsed_consents="sharing"), "Reopen.lapsed_consents"),
        (lambda: c.ApprovePlan(version=0), "ApprovePlan.version"),
        (lambda: c.ApprovePlan(version=True), "ApprovePlan.version"),
        (lambda: c.ReferOut("mh-centre"), "ReferOut.agency"),  # type: ignore[arg-type]
        (lambda: cm.EpisodeRef("C1", 0), "EpisodeRef.episode"),
        (lambda: cm.Goal("G", "x", revision=-1), "Goal.revision"),
        (
            lambda: cm.ServiceItem(
                "S", "N", "x", cm.Agency("p"), cm.ResourceKind.FORMAL, T0, extensions=True
            ),
            "ServiceItem.extensions",
        ),
        (lambda: cm.Approval("A", cm.ApprovalStep.PLAN, "w", T0, status="approved"), "Approval.status"),  # type: ignore[arg-type]
    ],
)
def test_a_value_of_the_wrong_type_is_refused_when_built(build: Callable[[], object], field: str) -> None:
    with pytest.raises(cm.InvalidData) as info:
        build()
    assert info.value.field == field
    assert info.value.allowed


BAD_IDS = ["", " ", "a\nb", "C1\r\nX-Injected: 1", "a\x00b", "evil\u202etxt", "x" * 129, " padded"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_identifiers_are_refused_when_they_could_not_be_shown_or_matched(bad: str) -> None:
    for build in (
        lambda: cm.Actor(bad, "caseworker"),
        lambda: cm.Actor("kim", bad),
        lambda: c.OpenCase(bad, household(), referral()),
        lambda: cm.Member(bad, dt.date(2000, 1, 1)),
        lambda: c.AssignCaseworker(bad),
        lambda: c.TransferCase("note", caseworker_id=bad),
        lambda: c.TransferCase("note", team_id=bad),
        lambda: c.RequestApproval(bad, cm.ApprovalStep.CLOSURE),
        lambda: c.Approve(bad),
        lambda: c.Reject("A1", "no", conference_id=bad),
        lambda: c.ExtendService(bad, "one more term"),
        lambda: c.DropGoal(bad, "not wanted"),
        lambda: cm.EpisodeRef(bad, 1),
    ):
        with pytest.raises(cm.InvalidData):
            build()


@pytest.mark.parametrize("bad", ["a\x00b", "bell\x07", "evil\u202eoverride", "iso\u2066late", "esc\x1b[31m"])
def test_text_with_control_or_direction_characters_is_refused(bad: str) -> None:
    with pytest.raises(cm.InvalidData) as info:
        c.RecordJournal(cm.JournalKind.CONTACT, bad)
    assert info.value.value == cm.REDACTED  # journal text is personal: never echoed


def test_free_text_keeps_line_breaks_and_hangul() -> None:
    entry = c.RecordJournal(cm.JournalKind.CONTACT, "가정 방문.\n\t어머니와 상담함.")
    assert "\n" in entry.text


def test_a_huge_journal_entry_is_refused() -> None:
    with pytest.raises(cm.InvalidData) as info:
        c.RecordJournal(cm.JournalKind.CONTACT, "x" * (16 * 1024 * 1024))
    assert info.value.field == "RecordJournal.text"


# -- nonsense that depends on the case or the clock --------------------------------------------


def _member(mid: str, born: dt.date, guardian: str | None = None) -> cm.Member:
    return cm.Member(mid, born, guardian_id=guardian)


@pytest.mark.parametrize(
    ("members", "field"),
    [
        ([_member("a", dt.date(2090, 1, 1))], "household.members.birth_date"),
        (
            [_member("a", dt.date(2023, 1, 1)), _member("c", dt.date(2020, 1, 1), "a")],
            "household.members.guardian_id",
        ),
        ([_member("a", dt.date(1980, 1, 1), "a")], "household.members.guardian_id"),
        (
            [
                _member("a", dt.date(1980, 1, 1), "b"),
                _member("b", dt.date(1981, 1, 1), "a"),
            ],
            "household.members.guardian_id",
        ),
        (
            [
                _member("a", dt.date(1980, 1, 1), "b"),
                _member("b", dt.date(1981, 1, 1), "c"),
                _member("c", dt.date(1982, 1, 1), "a"),
            ],
            "household.members.guardian_id",
        ),
    ],
)
def test_an_impossible_household_is_refused(
    store: cm.CaseStore, members: list[cm.Member], field: str
) -> None:
    m, _ = manager(store)
    with pytest.raises(cm.InvalidData) as info:
        m.open_case(cm.Household("H1", members), referral(), actor=WORKER, case_id="C1")
    assert info.value.field == field
    assert snapshot(store, ["C1"]) == {"C1": None, "outbox": ()}


def test_a_referral_from_the_future_is_refused(store: cm.CaseStore) -> None:
    m, _ = manager(store)
    with pytest.raises(cm.InvalidData) as info:
        m.open_case(household(), referral(dt.datetime(2099, 1, 1, tzinfo=dt.UTC)), actor=WORKER, case_id="C1")
    assert info.value.field == "referral.received_at"
    assert snapshot(store, ["C1"]) == {"C1": None, "outbox": ()}


def test_consent_dated_in_the_future_cannot_make_a_minor_an_adult(store: cm.CaseStore) -> None:
    m, _ = manager(store)
    in_intake(m)
    before = snapshot(store, ["C1"])
    adult_later = cm.Consent(
        "k",
        cm.ConsentScope.SERVICE_PROVISION,
        "child",
        cm.ConsentGiver.PERSON,
        "child",
        dt.datetime(2040, 1, 1, tzinfo=dt.UTC),
    )
    with pytest.raises(cm.InvalidData) as info:
        m.handle("C1", c.RecordConsent(adult_later), actor=WORKER)
    assert info.value.field == "consent.given_at"
    before_referral = consent(cm.ConsentScope.SERVICE_PROVISION, at=T0 - dt.timedelta(days=30))
    with pytest.raises(cm.InvalidData) as early:
        m.handle("C1", c.RecordConsent(before_referral), actor=WORKER)
    assert early.value.field == "consent.given_at"
    assert_unchanged(store, before, ["C1"])


def test_aftercare_cannot_end_before_it_starts() -> None:
    with pytest.raises(cm.InvalidData) as info:
        cm.AftercarePlan("fragile", T0, T0 - dt.timedelta(days=1))
    assert info.value.field == "AftercarePlan.until"
    from .support import reach

    d = reach(S.CLOSED)
    with pytest.raises(cm.InvalidData) as command:
        d.do(c.StartAftercare("fragile", until=d.now - dt.timedelta(days=1)))
    assert command.value.field == "until"


# -- the public entry points refuse what is not theirs, with typed errors ----------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.handle(123, c.StartIntake(), actor=WORKER),
        lambda m: m.handle("C1", "start_intake", actor=WORKER),
        lambda m: m.handle("C1", c.StartIntake(), actor="kim"),
        lambda m: m.handle("C1", c.StartIntake(), actor=WORKER, note="\x00"),
        lambda m: m.handle("C1", c.StartIntake(), actor=WORKER, correlation_id="a\nb"),
        lambda m: m.handle("C1", c.OpenCase("C2", household(), referral()), actor=WORKER),
        lambda m: m.get(None),
        lambda m: m.history(["C1"]),
        lambda m: m.find("state=intake"),
        lambda m: m.due("2026-01-01"),
        lambda m: m.due(dt.datetime(2026, 1, 1)),
        lambda m: m.deliver_pending(limit=2**63),
        lambda m: m.deliver_pending(limit=True),
        lambda m: m.open_case("H1", referral(), actor=WORKER),
        lambda m: m.open_case(household(), referral(), actor=WORKER, case_id=""),
    ],
)
def test_public_calls_with_wrong_values_raise_invalid_data(
    store: cm.CaseStore, call: Callable[[cm.CaseManager], object]
) -> None:
    m, _ = manager(store)
    opened(m)
    before = snapshot(store, ["C1"])
    with pytest.raises(cm.InvalidData):
        call(m)
    assert_unchanged(store, before, ["C1"])


def test_decide_refuses_what_is_not_its_own() -> None:
    case = cm.decide(
        None, c.OpenCase("C1", household(), referral()), cm.DEFAULT_POLICY, T0, actor=WORKER
    ).case
    for kwargs in (
        {"now": dt.datetime.max.replace(tzinfo=dt.UTC)},
        {"now": dt.datetime(2026, 1, 1)},
        {"now": "2026-01-01"},
        {"actor": "kim"},
        {"policy": {}},
        {"facts": None},
        {"note": "x" * 100_000},
    ):
        args: dict[str, Any] = {"now": T0, "actor": WORKER, "policy": cm.DEFAULT_POLICY, **kwargs}
        policy, now = args.pop("policy"), args.pop("now")
        with pytest.raises(cm.InvalidData):
            cm.decide(case, c.StartIntake(), policy, now, **args)
    with pytest.raises(cm.InvalidData):
        cm.decide(case, "start_intake", cm.DEFAULT_POLICY, T0, actor=WORKER)  # type: ignore[arg-type]
    with pytest.raises(cm.InvalidData):
        cm.decide({"state": "intake"}, c.StartIntake(), cm.DEFAULT_POLICY, T0, actor=WORKER)  # type: ignore[arg-type]


def test_the_manager_refuses_a_clock_that_is_not_aware(store: cm.CaseStore) -> None:
    m = cm.CaseManager(store, clock=lambda: dt.datetime(2026, 1, 1))
    with pytest.raises(cm.InvalidData) as info:
        m.open_case(household(), referral(), actor=WORKER, case_id="C1")
    assert info.value.field == "clock()"
    assert snapshot(store, ["C1"]) == {"C1": None, "outbox": ()}
    with pytest.raises(cm.InvalidData):
        cm.CaseManager("sqlite:///x.db")  # type: ignore[arg-type]
