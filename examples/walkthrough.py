"""A household from referral to after-care: consent given, services linked, closure for self-reliance.

Run it: ``python examples/walkthrough.py`` (in memory) or pass a store, e.g.
``python examples/walkthrough.py sqlite:///cases.db``. It prints the case's history in Korean.
"""

from __future__ import annotations

import datetime as dt
import sys

import casemgmt_core as cm

KST = dt.timezone(dt.timedelta(hours=9))


class Clock:
    """A clock the example moves forward by hand, so the story has realistic dates."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += dt.timedelta(days=days)


def run(store: cm.CaseStore | None = None) -> cm.Case:
    clock = Clock(dt.datetime(2026, 3, 2, 9, 30, tzinfo=KST))
    notifier = cm.RecordingNotifier()
    manager = cm.CaseManager(store or cm.InMemoryStore(), notifier=notifier, clock=clock)
    worker = cm.Actor("kim.caseworker", "caseworker", frozenset({"team-east"}))
    lead = cm.Actor("lee.supervisor", "supervisor", frozenset({"team-east"}))

    household = cm.Household(
        "HH-2026-0117",
        [
            cm.Member("mother", dt.date(1987, 5, 14), relation="mother"),
            cm.Member("son", dt.date(2016, 9, 2), relation="son", guardian_id="mother"),
        ],
        region="11680-101",
        low_income=True,
    )
    school = cm.Agency("school-gangnam-07", "Gangnam Elementary")
    case = manager.open_case(
        household,
        cm.Referral(cm.ReferralChannel.SCHOOL, clock(), school, "absences since the winter"),
        actor=worker,
        case_id="C-0117",
    )

    def do(command: cm.Command, actor: cm.Actor = worker, note: str = "") -> cm.Case:
        return manager.handle(case.case_id, command, actor=actor, note=note)

    do(cm.AssignCaseworker(worker.id, team_id="team-east"))
    do(cm.StartIntake())
    for factor in (cm.CrisisFactor.JOB_LOSS, cm.CrisisFactor.DEBT, cm.CrisisFactor.CARE_GAP):
        do(cm.RecordCrisisFactor(factor))
    do(cm.RecordIntakeFindings(wanted_change="stable income and after-school care"))
    for scope in (cm.ConsentScope.SERVICE_PROVISION, cm.ConsentScope.PERSONAL_DATA):
        do(
            cm.RecordConsent(
                cm.Consent(f"{scope.value}-1", scope, "mother", cm.ConsentGiver.PERSON, "mother", clock())
            )
        )
    do(cm.CompleteIntake())
    do(cm.Select(), note="job loss, debt and a care gap together")

    clock.advance(7)
    do(cm.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT, "re-employment")))
    do(cm.RecordNeed(cm.Need("N2", cm.NeedDomain.EDUCATION, "after-school learning")))
    do(cm.RecordStrength(cm.Strength("mother is a trained cook", "mother")))
    do(cm.CompleteAssessment())

    clock.advance(5)
    do(cm.SetGoal(cm.Goal("G1", "mother back in work within 6 months", ["N1"])))
    do(cm.SetGoal(cm.Goal("G2", "son keeps up at school", ["N2"])))
    do(cm.ScheduleConference(cm.CaseConference("CC1", clock(), ["lee.supervisor"], ["school-gangnam-07"])))
    do(cm.ApprovePlan("CC1"), actor=lead)

    job_centre = cm.Agency("job-centre-gangnam", "Employment centre")
    tutor = cm.Agency("neighbour-park", "retired teacher next door")
    for agency in (job_centre, tutor):
        do(
            cm.RecordConsent(
                cm.Consent(
                    f"share-{agency.id}",
                    cm.ConsentScope.SHARING,
                    "mother",
                    cm.ConsentGiver.PERSON,
                    "mother",
                    clock(),
                    agency.id,
                )
            )
        )
    do(
        cm.LinkService(
            cm.ServiceItem("S1", "N1", "job_placement", job_centre, cm.ResourceKind.FORMAL, clock())
        )
    )
    do(cm.LinkService(cm.ServiceItem("S2", "N2", "tutoring", tutor, cm.ResourceKind.INFORMAL, clock())))

    clock.advance(90)
    do(cm.RecordJournal(cm.JournalKind.OBSERVED_CHANGE, "mother started work at a school canteen", "mother"))
    do(cm.AchieveGoal("G1"))
    do(cm.EndService("S1", "employed"))
    clock.advance(90)
    do(cm.EndService("S2", "mother takes over homework time"))
    do(cm.AchieveGoal("G2"))
    do(cm.Close(cm.ClosureReason.SELF_RELIANT), note="the family manages by itself")
    do(cm.StartAftercare("check in after the first school term"), actor=lead)
    clock.advance(120)
    final = do(cm.CompleteAftercare())

    assert final.state is cm.CaseState.CLOSED
    assert final.closure is not None
    assert final.closure.reason is cm.ClosureReason.SELF_RELIANT
    assert manager.replay(final.case_id) == final
    assert [n.kind for n in notifier.sent] == [
        cm.NotificationKind.ASSIGNMENT,
        cm.NotificationKind.CONFERENCE_SCHEDULED,
        cm.NotificationKind.CONFERENCE_SCHEDULED,
        cm.NotificationKind.SERVICE_REFERRAL,
    ]
    return final


def show(manager_history: list[cm.Event]) -> None:
    for e in manager_history:
        stage = cm.label("state", e.target)
        print(f"{e.version:>3} {e.occurred_at:%Y-%m-%d} {cm.label('event', e.event):<16} -> {stage}")


if __name__ == "__main__":
    store = cm.open_store(sys.argv[1]) if len(sys.argv) > 1 else None
    case = run(store)
    print(f"case {case.case_id}: {cm.label('state', case.state)} ({case.version} events)")
