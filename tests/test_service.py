"""CaseManager: one unit of work per command; authorisation raises; every refusal is recorded."""

from __future__ import annotations

import datetime as dt

import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c

from .support import PROVIDER, SUPERVISOR, T0, WORKER, consent, household, referral

S = cm.CaseState


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


class FlakyNotifier:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[cm.Notification] = []

    def send(self, notification: cm.Notification) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("channel down")
        self.sent.append(notification)


def manager(**kwargs: object) -> cm.CaseManager:
    return cm.CaseManager(cm.InMemoryStore(), clock=Clock(), **kwargs)  # type: ignore[arg-type]


def opened(m: cm.CaseManager, case_id: str = "C1", household_id: str = "H1") -> cm.Case:
    return m.open_case(household(household_id), referral(), actor=WORKER, case_id=case_id)


def test_unauthorised_actor_raises_and_the_denial_is_recorded() -> None:
    m = manager()
    case = opened(m)
    visitor = cm.Actor("v1", "volunteer")
    with pytest.raises(cm.AuthorizationDenied) as info:
        m.handle(case.case_id, c.StartIntake(), actor=visitor, correlation_id="req-9")
    assert info.value.role == "volunteer"
    assert "caseworker" in info.value.allowed_roles
    [refusal] = m.refusals(case.case_id)
    assert (refusal.code, refusal.actor_id, refusal.event, refusal.correlation_id) == (
        "authorization_denied",
        "v1",
        "start_intake",
        "req-9",
    )
    assert m.get(case.case_id) == case


def test_supervisor_only_events_are_denied_to_caseworkers() -> None:
    m = manager()
    case = opened(m)
    for command in (
        c.StartIntake(),
        c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS),
        c.CompleteIntake(),
        c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION)),
        c.RecordConsent(consent(cm.ConsentScope.PERSONAL_DATA)),
        c.Select(),
        c.RecordNeed(cm.Need("N1", cm.NeedDomain.HEALTH)),
        c.CompleteAssessment(),
        c.SetGoal(cm.Goal("G1", "health")),
    ):
        m.handle(case.case_id, command, actor=WORKER)
    with pytest.raises(cm.AuthorizationDenied):
        m.handle(case.case_id, c.ApprovePlan(), actor=WORKER)
    assert m.handle(case.case_id, c.ApprovePlan(), actor=SUPERVISOR).state is S.SERVICE


def test_guard_refusal_is_recorded_and_changes_nothing() -> None:
    m = manager()
    case = opened(m)
    m.handle(case.case_id, c.StartIntake(), actor=WORKER)
    before = m.get(case.case_id)
    history = list(m.history(case.case_id))
    with pytest.raises(cm.TransitionRefused):
        m.handle(case.case_id, c.CompleteIntake(), actor=WORKER)
    with pytest.raises(cm.UnknownCommand):
        m.handle(case.case_id, c.ApprovePlan(), actor=SUPERVISOR)
    with pytest.raises(cm.InvalidData):
        m.handle(case.case_id, c.WithdrawConsent("nothing"), actor=WORKER)
    assert m.get(case.case_id) == before
    assert list(m.history(case.case_id)) == history
    refusals = m.refusals(case.case_id)
    assert [(r.code, r.guard, r.reason) for r in refusals] == [
        ("transition_refused", "crisis_factors_recorded", "no_crisis_factors"),
        ("unknown_command", None, None),
        ("invalid_data", None, None),
    ]


def test_a_household_has_one_live_case() -> None:
    m = manager()
    opened(m, "C1")
    with pytest.raises(cm.DuplicateCase) as info:
        opened(m, "C2")
    assert info.value.existing_case_id == "C1"
    assert m.refusals("C2")[0].code == "duplicate_case"
    with pytest.raises(cm.CaseNotFound):
        m.get("C2")


def test_reopen_is_refused_while_another_case_is_live() -> None:
    m = manager()
    opened(m, "C1")
    _to_planning(m, "C1")
    m.handle("C1", c.Close(cm.ClosureReason.UNREACHABLE), actor=WORKER)
    opened(m, "C2")  # closed cases are not live: the household may be referred again
    with pytest.raises(cm.DuplicateCase) as info:
        m.handle("C1", c.Reopen("the family came back"), actor=SUPERVISOR)
    assert info.value.existing_case_id == "C2"
    assert m.get("C1").state is S.CLOSED
    assert m.refusals("C1")[-1].code == "duplicate_case"


def test_registry_hit_hands_over_at_opening() -> None:
    registry = cm.InMemoryRegistry()
    other = cm.Agency("welfare-centre-2", "Neighbouring centre")
    registry.add_managed("H1", other)
    notifier = cm.RecordingNotifier()
    m = manager(registry=registry, notifier=notifier)
    case = opened(m)
    assert case.state is S.HANDED_OVER
    assert [e.event for e in m.history("C1")] == ["open", "hand_over"]
    assert [(n.kind, n.recipient) for n in notifier.sent] == [(cm.NotificationKind.HAND_OVER, other.id)]
    # Handed over, the household has no live case here: a later referral may open one.
    registry.managed.clear()
    assert opened(m, "C2").state is S.REFERRED


def _to_planning(m: cm.CaseManager, case_id: str) -> None:
    for command in (
        c.StartIntake(),
        c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS),
        c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION)),
        c.RecordConsent(consent(cm.ConsentScope.PERSONAL_DATA)),
        c.RecordConsent(consent(cm.ConsentScope.SHARING, "share", PROVIDER.id)),
        c.CompleteIntake(),
        c.Select(),
        c.RecordNeed(cm.Need("N1", cm.NeedDomain.HEALTH)),
        c.CompleteAssessment(),
    ):
        m.handle(case_id, command, actor=WORKER)


def test_registry_duplicate_service_blocks_linking() -> None:
    registry = cm.InMemoryRegistry()
    m = manager(registry=registry)
    opened(m)
    _to_planning(m, "C1")
    registry.add_service("H1", "N1", "home_nursing", cm.Agency("public-health-centre"))
    item = cm.ServiceItem("S1", "N1", "home_nursing", PROVIDER, cm.ResourceKind.FORMAL, T0)
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.LinkService(item), actor=WORKER)
    assert info.value.reason == "service_already_linked"
    assert "public-health-centre" in info.value.message


def test_registry_says_managed_elsewhere_at_selection() -> None:
    registry = cm.InMemoryRegistry()
    m = manager(registry=registry)
    opened(m)
    for command in (
        c.StartIntake(),
        c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS),
        c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION)),
        c.CompleteIntake(),
    ):
        m.handle("C1", command, actor=WORKER)
    registry.add_managed("H1", cm.Agency("other"))
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.Select(), actor=WORKER)
    assert info.value.reason == "managed_elsewhere"
    assert m.handle("C1", c.HandOver(cm.Agency("other")), actor=WORKER).state is S.HANDED_OVER


def test_notifications_go_to_the_outbox_and_failed_ones_are_retried() -> None:
    notifier = FlakyNotifier(failures=1)
    m = manager(notifier=notifier)
    opened(m)
    m.handle("C1", c.AssignCaseworker("worker-7"), actor=WORKER)
    assert notifier.sent == []
    [pending] = m.store.pending_notifications()
    assert pending.notification.recipient == "worker-7"
    assert m.deliver_pending() == 1
    assert [n.recipient for n in notifier.sent] == ["worker-7"]
    assert m.store.pending_notifications() == ()


def test_statutory_override_notifies_the_authority_at_once() -> None:
    notifier = cm.RecordingNotifier()
    m = manager(notifier=notifier)
    opened(m)
    m.handle("C1", c.StartIntake(), actor=WORKER)
    m.handle("C1", c.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE), actor=WORKER)
    assert {n.kind for n in notifier.sent} == {cm.NotificationKind.MANDATORY_REPORT}
    assert {n.data["ground"] for n in notifier.sent} == {"child_abuse"}
    assert "police-112" in {n.recipient for n in notifier.sent}


def test_queries_page_through_cases_and_due_items() -> None:
    m = manager()
    for i in range(5):
        opened(m, f"C{i}", f"H{i}")
        m.handle(f"C{i}", c.StartIntake(), actor=WORKER)
    m.handle("C3", c.AssignCaseworker("w-3"), actor=WORKER)
    page = m.find(cm.CaseQuery(state=S.INTAKE, limit=2))
    assert [x.case_id for x in page.items] == ["C0", "C1"]
    assert page.next_after is not None
    middle = m.find(cm.CaseQuery(state=S.INTAKE, limit=2, after=page.next_after))
    assert [x.case_id for x in middle.items] == ["C2", "C3"]
    last = m.find(cm.CaseQuery(state=S.INTAKE, limit=2, after=middle.next_after))
    assert ([x.case_id for x in last.items], last.next_after) == (["C4"], None)
    assert [x.case_id for x in m.find(cm.CaseQuery(caseworker_id="w-3")).items] == ["C3"]
    assert [x.case_id for x in m.find(cm.CaseQuery(household_id="H2")).items] == ["C2"]
    later = T0 + dt.timedelta(days=40)
    overdue = m.due(later, query=cm.CaseQuery(limit=2))
    assert sorted({i.case_id for i in overdue}) == [f"C{i}" for i in range(5)]
    assert all(i.kind is cm.DueKind.NO_CONTACT and i.overdue for i in overdue)
    assert m.due(T0) == []


def test_replay_from_the_store_equals_the_stored_case() -> None:
    m = manager()
    opened(m)
    _to_planning(m, "C1")
    assert m.replay("C1") == m.get("C1")


def test_stale_versions_conflict() -> None:
    m = manager()
    case = opened(m)
    decision = cm.decide(case, c.StartIntake(), m.policy, T0, actor=WORKER)
    m.handle("C1", c.AssignCaseworker("w"), actor=WORKER)
    with pytest.raises(cm.ConcurrencyConflict) as info:
        m.store.commit(cm.Commit(decision.case, decision.events, (), expected_version=1))
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)


def test_the_journal_is_read_from_the_events() -> None:
    m = manager()
    opened(m)
    m.handle("C1", c.StartIntake(), actor=WORKER)
    m.handle("C1", c.RecordJournal(cm.JournalKind.NEW_FINDING, "rent arrears of 4 months"), actor=WORKER)
    m.handle("C1", c.RecordJournal(cm.JournalKind.CONTACT, "phone call", "parent"), actor=WORKER)
    entries = m.journal("C1")
    assert [(e.kind, e.text, e.member_id, e.author_id) for e in entries] == [
        (cm.JournalKind.NEW_FINDING, "rent arrears of 4 months", None, "worker-1"),
        (cm.JournalKind.CONTACT, "phone call", "parent", "worker-1"),
    ]
    case = m.get("C1")
    assert case.journal_size == 2
    assert case.last_contact_at == entries[1].recorded_at


def test_observer_sees_each_committed_decision_with_its_verdicts() -> None:
    seen: list[cm.Decision] = []
    m = manager(observe=seen.append)
    opened(m)
    m.handle("C1", c.StartIntake(), actor=WORKER)
    with pytest.raises(cm.TransitionRefused):
        m.handle("C1", c.CompleteIntake(), actor=WORKER)
    m.handle("C1", c.RecordCrisisFactor(cm.CrisisFactor.DEBT), actor=WORKER)
    m.handle("C1", c.CompleteIntake(), actor=WORKER)
    assert [d.events[-1].event for d in seen] == [
        "open",
        "start_intake",
        "record_crisis_factor",
        "complete_intake",
    ]
    # completing intake is work the episode's time limit binds: that guard is checked first
    assert [(v.guard, v.reason) for v in seen[-1].verdicts] == [
        ("within_case_limit", cm.Reason.WITHIN_CASE_LIMIT),
        ("crisis_factors_recorded", cm.Reason.CRISIS_FACTORS_RECORDED),
    ]


def test_after_care_is_refused_and_recorded_while_another_case_is_live() -> None:
    m = manager()
    opened(m, "C1")
    _to_planning(m, "C1")
    m.handle("C1", c.Close(cm.ClosureReason.MAXIMUM_DURATION), actor=WORKER)
    assert m.get("C1").state is S.CLOSED
    opened(m, "C2")
    with pytest.raises(cm.DuplicateCase):
        m.handle("C1", c.StartAftercare("check in later"), actor=WORKER)
    assert m.get("C1").state is S.CLOSED
    assert m.refusals("C1")[-1].code == "duplicate_case"


def test_after_care_does_not_follow_a_withdrawal_of_consent() -> None:
    m = manager()
    opened(m, "C1")
    m.handle("C1", c.StartIntake(), actor=WORKER)
    m.handle("C1", c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION)), actor=WORKER)
    closed = m.handle("C1", c.WithdrawConsent("service_provision"), actor=WORKER)
    assert closed.state is S.CLOSED
    assert closed.closure is not None
    assert closed.closure.reason is cm.ClosureReason.CONSENT_WITHDRAWN
    with pytest.raises(cm.TransitionRefused) as info:
        m.handle("C1", c.StartAftercare("check in later"), actor=WORKER)
    assert (info.value.guard, info.value.reason) == ("aftercare_justified", "aftercare_not_applicable")
    assert m.get("C1") == closed
    assert (m.refusals("C1")[-1].guard, m.refusals("C1")[-1].reason) == (
        "aftercare_justified",
        "aftercare_not_applicable",
    )


@pytest.mark.parametrize(
    "command",
    [
        c.ExtendCase("the household needs more time"),
        c.Approve("A1", "agreed"),
        c.Reject("A1", "reassess first"),
        c.Reopen("the crisis came back"),
    ],
    ids=lambda x: x.event,
)
def test_decisions_a_caseworker_is_checked_by_are_for_supervisors(command: c.Command) -> None:
    m = manager()
    opened(m)
    before = m.get("C1")
    with pytest.raises(cm.AuthorizationDenied) as info:
        m.handle("C1", command, actor=WORKER)
    assert info.value.allowed_roles == ("supervisor",)
    assert m.get("C1") == before
    assert m.refusals("C1")[-1].code == "authorization_denied"


def test_an_approval_is_requested_by_a_caseworker_and_decided_by_a_supervisor() -> None:
    notifier = cm.RecordingNotifier()
    m = manager(notifier=notifier)
    opened(m)
    _to_planning(m, "C1")
    m.handle("C1", c.RequestApproval("A1", cm.ApprovalStep.CLOSURE, comment="goals met early"), actor=WORKER)
    [due] = [i for i in m.due(T0 + dt.timedelta(days=30)) if i.kind is cm.DueKind.APPROVAL]
    assert (due.case_id, due.subject, due.overdue) == ("C1", "A1", True)
    with pytest.raises(cm.TransitionRefused) as same:
        m.handle("C1", c.Approve("A1"), actor=cm.Actor("worker-1", "supervisor"))
    assert (same.value.guard, same.value.reason) == ("approval_actor", "same_person")
    case = m.handle("C1", c.Approve("A1", "agreed"), actor=SUPERVISOR)
    approval = case.approval("A1")
    assert approval is not None
    assert (approval.status, approval.decided_by, approval.decision_comment) == (
        cm.ApprovalStatus.APPROVED,
        SUPERVISOR.id,
        "agreed",
    )
    assert not [i for i in m.due(T0 + dt.timedelta(days=30)) if i.kind is cm.DueKind.APPROVAL]
    assert m.replay("C1") == m.get("C1")
