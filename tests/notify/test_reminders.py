"""Reminders of what is due or overdue: deterministic ids, enqueued idempotently."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

import casemgmt_core as cm
from casemgmt_core.notify import OutboxRelay, RecordingNotifier, ReminderScheduler, reminder_for

from .conftest import SUPERVISOR, T0, WORKER, Clock, open_case

D = dt.timedelta(days=1)
K = cm.DueKind
POLICY = cm.load_policy(
    {
        "time_limits": {
            "assessment_days": 10,
            "plan_days": 10,
            "service_item_max_days": 60,
            "case_max_days": 120,
            "reassessment_interval_days": 90,
            "no_contact_days": 20,
            "reminder_lead_days": 3,
        },
        "statutory": {"elder_abuse": {"enabled": True, "report_within_hours": 24}},
    }
)


def consent(scope: cm.ConsentScope, agency: str | None = None, at: dt.datetime = T0) -> cm.RecordConsent:
    return cm.RecordConsent(
        cm.Consent(f"{scope.value}-{agency}", scope, "parent", cm.ConsentGiver.PERSON, "parent", at, agency)
    )


def selected(manager: cm.CaseManager, case_id: str = "C1", *, assign: str | None = "worker-1") -> None:
    """Open a case and take it to assessment (the assessment clock starts)."""
    open_case(manager, case_id, assign=assign)
    for command in (
        cm.StartIntake(),
        cm.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS),
        cm.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        consent(cm.ConsentScope.SERVICE_PROVISION, at=manager.clock()),
        consent(cm.ConsentScope.PERSONAL_DATA, at=manager.clock()),
        cm.CompleteIntake(),
        cm.Select(),
    ):
        manager.handle(case_id, command, actor=WORKER)


def in_service(manager: cm.CaseManager, item_days: int) -> None:
    selected(manager)
    provider = cm.Agency("provider-1")
    for command, actor in (
        (cm.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT)), WORKER),
        (cm.CompleteAssessment(), WORKER),
        (cm.SetGoal(cm.Goal("G1", "work", ["N1"])), WORKER),
        (cm.ApprovePlan(), SUPERVISOR),
        (consent(cm.ConsentScope.SHARING, provider.id), WORKER),
        (
            cm.LinkService(
                cm.ServiceItem(
                    "S1",
                    "N1",
                    "job_placement",
                    provider,
                    cm.ResourceKind.FORMAL,
                    manager.clock(),
                    manager.clock() + item_days * D,
                )
            ),
            WORKER,
        ),
    ):
        manager.handle("C1", command, actor=actor)


def reminders(scheduler: ReminderScheduler, at: dt.datetime) -> list[tuple[str, str, str, str]]:
    return [(n.data["due_kind"], n.data["subject"], n.data["status"], n.recipient) for n in scheduler.due(at)]


def test_nearing_then_overdue_assessment_and_nothing_twice() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    selected(manager)
    scheduler = ReminderScheduler(manager, kinds=[K.ASSESSMENT])

    assert scheduler.enqueue(T0 + 6 * D) == 0  # deadline T0+10d, lead 3 days: not yet
    assert scheduler.enqueue(T0 + 7 * D) == 1
    assert scheduler.enqueue(T0 + 7 * D) == 0
    assert scheduler.enqueue(T0 + 9 * D) == 0  # still the same "due soon" reminder
    assert scheduler.enqueue(T0 + 11 * D) == 1  # now overdue: a new reminder
    assert scheduler.enqueue(T0 + 12 * D) == 0

    rows = [
        p.notification
        for p in manager.store.pending_notifications()
        if p.notification.kind.value == "reminder"
    ]
    deadline = (T0 + 10 * D).isoformat()
    assert [n.notification_id for n in rows] == [
        f"reminder:C1:assessment::{deadline}:due_soon:worker-1",
        f"reminder:C1:assessment::{deadline}:overdue:worker-1",
    ]
    assert rows[0].data == {
        "case_id": "C1",
        "due_kind": "assessment",
        "subject": "",
        "due_at": deadline,
        "status": "due_soon",
    }


def test_delivered_reminders_are_not_sent_again() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    selected(manager)
    scheduler = ReminderScheduler(manager, kinds=[K.ASSESSMENT])
    sink = RecordingNotifier()
    relay = OutboxRelay(manager.store, sink)
    for day in (7, 8, 9, 11, 12):
        scheduler.enqueue(T0 + day * D)
        relay.run_once(T0 + day * D)
    sent = [n.data["status"] for n in sink.sent if n.kind is cm.NotificationKind.REMINDER]
    assert sent == ["due_soon", "overdue"]


def test_service_item_case_duration_and_no_contact_reminders() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    in_service(manager, item_days=30)
    scheduler = ReminderScheduler(manager, escalate_overdue_to="supervisors")

    assert reminders(scheduler, T0 + 16 * D) == []
    # no contact for the policy's period: a candidate for closure as unreachable
    assert reminders(scheduler, T0 + 17 * D) == [("no_contact", "unreachable", "due_soon", "worker-1")]
    assert reminders(scheduler, T0 + 28 * D) == [
        ("no_contact", "unreachable", "overdue", "worker-1"),
        ("no_contact", "unreachable", "overdue", "supervisors"),
        ("service_item_limit", "S1", "due_soon", "worker-1"),
    ]
    later = reminders(scheduler, T0 + 118 * D)
    assert ("service_item_limit", "S1", "overdue", "worker-1") in later
    assert ("case_max_duration", "", "due_soon", "worker-1") in later


def test_a_new_contact_moves_the_deadline_and_gives_a_new_reminder() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    selected(manager)
    scheduler = ReminderScheduler(manager, kinds=[K.NO_CONTACT])
    assert scheduler.enqueue(T0 + 21 * D) == 1
    clock.advance(days=22)
    manager.handle("C1", cm.RecordJournal(cm.JournalKind.CONTACT, "home visit"), actor=WORKER)
    assert scheduler.enqueue(T0 + 22 * D) == 0  # next deadline is 20 days after the contact
    assert scheduler.enqueue(T0 + 40 * D) == 1
    ids = [p.notification.notification_id for p in manager.store.pending_notifications()]
    assert f"reminder:C1:no_contact:unreachable:{(T0 + 42 * D).isoformat()}:due_soon:worker-1" in ids


def test_mandatory_report_overdue_is_escalated_until_filed() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    open_case(manager, elder=True)
    manager.handle("C1", cm.StartIntake(), actor=WORKER)
    manager.handle("C1", cm.InvokeStatutoryOverride(cm.StatutoryGround.ELDER_ABUSE), actor=WORKER)
    scheduler = ReminderScheduler(manager, kinds=[K.MANDATORY_REPORT], escalate_overdue_to="supervisors")

    assert reminders(scheduler, T0 + dt.timedelta(hours=1)) == [
        ("mandatory_report", "elder_abuse", "due_soon", "worker-1")
    ]
    assert reminders(scheduler, T0 + dt.timedelta(hours=25)) == [
        ("mandatory_report", "elder_abuse", "overdue", "worker-1"),
        ("mandatory_report", "elder_abuse", "overdue", "supervisors"),
    ]
    # Filed: delivered to the authority, and its reference recorded.
    OutboxRelay(manager.store, RecordingNotifier(), clock=clock).run_once(T0 + dt.timedelta(hours=25))
    manager.handle("C1", cm.FileMandatoryReport(cm.StatutoryGround.ELDER_ABUSE, "REF-1"), actor=WORKER)
    assert reminders(scheduler, T0 + dt.timedelta(hours=26)) == []


def test_overdue_statutory_deadlines_always_reach_the_supervising_role() -> None:
    """Without any escalation configured: a report not delivered in time, and an override not
    confirmed in time, go to the supervising role; other overdue deadlines do not."""
    clock = Clock()
    ground = cm.StatutoryGround.CHILD_ABUSE
    rule = attrs.evolve(POLICY.statutory[ground], confirmation_within_hours=24, report_within_hours=24)
    policy = attrs.evolve(POLICY, statutory={**POLICY.statutory, ground: rule})
    manager = cm.CaseManager(cm.InMemoryStore(), policy=policy, clock=clock)  # no notifier: undelivered
    open_case(manager)
    manager.handle("C1", cm.StartIntake(), actor=WORKER)
    manager.handle("C1", cm.InvokeStatutoryOverride(ground), actor=WORKER)
    scheduler = ReminderScheduler(manager, kinds=[K.MANDATORY_REPORT, K.OVERRIDE_CONFIRMATION, K.NO_CONTACT])
    assert reminders(scheduler, T0 + dt.timedelta(hours=1)) == [
        ("mandatory_report", "child_abuse", "due_soon", "worker-1"),
        ("override_confirmation", "child_abuse", "due_soon", "worker-1"),
    ]
    late = reminders(scheduler, T0 + dt.timedelta(days=40))
    assert ("mandatory_report", "child_abuse", "overdue", "supervisors") in late
    assert ("override_confirmation", "child_abuse", "overdue", "supervisors") in late
    assert ("no_contact", "unreachable", "overdue", "worker-1") in late
    assert ("no_contact", "unreachable", "overdue", "supervisors") not in late
    with pytest.raises(cm.InvalidData):
        ReminderScheduler(manager, escalate_statutory_to="lead\nteam")


def test_unassigned_cases_remind_the_fallback_and_many_cases_are_paged() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    for i in range(3):
        selected(manager, f"C{i}", assign=None if i == 1 else "worker-1")
    scheduler = ReminderScheduler(manager, kinds=[K.ASSESSMENT], unassigned_to="intake-team", page_size=2)
    got = {(n.case_id, n.recipient) for n in scheduler.due(T0 + 8 * D)}
    assert got == {("C0", "worker-1"), ("C1", "intake-team"), ("C2", "worker-1")}


def test_custom_recipients_and_the_pure_function() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    selected(manager)
    scheduler = ReminderScheduler(manager, kinds=[K.ASSESSMENT], recipients=lambda case, item: ["a", "b"])
    before = manager.store.pending_notifications()
    [first, second] = scheduler.due(T0 + 8 * D)
    assert manager.store.pending_notifications() == before  # due() only computes
    assert (first.recipient, second.recipient) == ("a", "b")
    case = manager.get("C1")
    [item] = [i for i in cm.due(case, POLICY, T0 + 8 * D) if i.kind is K.ASSESSMENT]
    again = reminder_for(case, item, "a", T0 + 9 * D)
    assert again.notification_id == first.notification_id  # the id does not depend on when it is computed
    assert again.event_id == f"C1/{case.version}"


def test_a_pending_approval_is_due_and_reminds_whoever_decides_it() -> None:
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), policy=POLICY, clock=clock)
    selected(manager)
    clock.advance(days=1)
    manager.handle(
        "C1", cm.RequestApproval("A1", cm.ApprovalStep.CLOSURE, comment="moving away"), actor=WORKER
    )
    deadline = T0 + 8 * D  # requested a day in, and an approval may stay pending 7 days
    [item] = [i for i in manager.due(T0 + 6 * D) if i.kind is K.APPROVAL]
    assert (item.case_id, item.subject, item.due_at, item.overdue) == ("C1", "A1", deadline, False)
    assert not [i for i in manager.due(T0 + 4 * D) if i.kind is K.APPROVAL]  # lead time: 3 days

    scheduler = ReminderScheduler(manager, kinds=[K.APPROVAL])
    assert reminders(scheduler, T0 + 4 * D) == []
    assert reminders(scheduler, T0 + 6 * D) == [("approval", "A1", "due_soon", "supervisors")]
    assert scheduler.enqueue(T0 + 9 * D) == 1
    [reminder] = [
        p.notification
        for p in manager.store.pending_notifications()
        if p.notification.kind is cm.NotificationKind.REMINDER
    ]
    assert reminder.notification_id == f"reminder:C1:approval:A1:{deadline.isoformat()}:overdue:supervisors"
    assert "moving away" not in repr(reminder.data)  # the request's comment stays in the case
    team = ReminderScheduler(manager, kinds=[K.APPROVAL], approvals_to="team-leads")
    assert reminders(team, T0 + 9 * D) == [("approval", "A1", "overdue", "team-leads")]

    manager.handle("C1", cm.Approve("A1", "agreed"), actor=SUPERVISOR)
    assert reminders(scheduler, T0 + 9 * D) == []
    assert not [i for i in manager.due(T0 + 9 * D) if i.kind is K.APPROVAL]


def test_deadlines_in_months_remind_on_their_calendar_date() -> None:
    policy = cm.load_policy({"time_limits": {"assessment": "1 month", "reminder_lead_days": 3}})
    for start, deadline in (
        (T0, dt.datetime(2026, 2, 5, 9, 0, tzinfo=dt.UTC)),  # 31 days
        (dt.datetime(2026, 2, 5, 9, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)),  # 28
    ):
        clock = Clock(start)
        manager = cm.CaseManager(cm.InMemoryStore(), policy=policy, clock=clock)
        selected(manager)
        scheduler = ReminderScheduler(manager, kinds=[K.ASSESSMENT])
        assert reminders(scheduler, deadline - 3 * D - dt.timedelta(minutes=1)) == []
        [soon] = scheduler.due(deadline - 3 * D)
        assert soon.data["due_at"] == deadline.isoformat()
        assert [n.data["status"] for n in scheduler.due(deadline + dt.timedelta(minutes=1))] == ["overdue"]
