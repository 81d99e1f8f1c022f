"""A service item at its limit is extended only after the household is reassessed.

Tutoring by a neighbour runs at most six months, then the family takes it over. Near the end the
son still needs it: the extension is refused until a reassessment is completed, then accepted
once, for at most the policy's longest extension. Ending the job placement and linking the same
service again within its six months counts as an extension too, and waits for the same
reassessment.

Run it: ``python examples/extension_after_reassessment.py`` (in memory) or pass a store, e.g.
``python examples/extension_after_reassessment.py sqlite:///cases.db``.
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
    decisions: list[cm.Decision] = []
    manager = cm.CaseManager(store or cm.InMemoryStore(), clock=clock, observe=decisions.append)
    worker = cm.Actor("kim.caseworker", "caseworker", frozenset({"team-east"}))
    lead = cm.Actor("lee.supervisor", "supervisor", frozenset({"team-east"}))
    tutor = cm.Agency("neighbour-park", "retired teacher next door")
    job_centre = cm.Agency("job-centre-gangnam", "Employment centre")

    household = cm.Household(
        "HH-2026-0231",
        [
            cm.Member("mother", dt.date(1987, 5, 14), relation="mother"),
            cm.Member("son", dt.date(2016, 9, 2), relation="son", guardian_id="mother"),
        ],
        region="11680-101",
    )
    school = cm.Agency("school-gangnam-07", "Gangnam Elementary")
    case = manager.open_case(
        household,
        cm.Referral(cm.ReferralChannel.SCHOOL, clock(), school, "falling behind in reading"),
        actor=worker,
        case_id="C-0231",
    )

    def do(command: cm.Command, actor: cm.Actor = worker) -> cm.Case:
        return manager.handle(case.case_id, command, actor=actor)

    def refused(command: cm.Command) -> cm.TransitionRefused:
        try:
            do(command)
        except cm.TransitionRefused as refusal:
            return refusal
        raise AssertionError(f"{command.event} should have been refused")

    def consent(scope: cm.ConsentScope, agency: cm.Agency | None = None) -> cm.Command:
        consent_id = f"{scope.value}-{agency.id}" if agency else scope.value
        given = cm.Consent(
            consent_id,
            scope,
            "mother",
            cm.ConsentGiver.PERSON,
            "mother",
            clock(),
            agency.id if agency else None,
        )
        return cm.RecordConsent(given)

    do(cm.AssignCaseworker(worker.id, team_id="team-east"))
    do(cm.StartIntake())
    do(cm.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS))
    do(cm.RecordCrisisFactor(cm.CrisisFactor.CARE_GAP))
    for command in (
        consent(cm.ConsentScope.SERVICE_PROVISION),
        consent(cm.ConsentScope.PERSONAL_DATA),
        consent(cm.ConsentScope.SHARING, tutor),
        consent(cm.ConsentScope.SHARING, job_centre),
    ):
        do(command)
    do(cm.CompleteIntake())
    do(cm.Select())
    do(cm.RecordNeed(cm.Need("N1", cm.NeedDomain.EDUCATION, "after-school learning")))
    do(cm.RecordNeed(cm.Need("N2", cm.NeedDomain.EMPLOYMENT, "re-employment")))
    do(cm.CompleteAssessment())
    do(cm.SetGoal(cm.Goal("G1", "son reads at grade level", ["N1"])))
    do(cm.SetGoal(cm.Goal("G2", "mother back in work", ["N2"])))
    do(cm.ApprovePlan(), actor=lead)

    # Tutoring runs six calendar months in the programme's time zone: 2 March to 2 September.
    tutoring = cm.ServiceItem("S1", "N1", "tutoring", tutor, cm.ResourceKind.INFORMAL, clock())
    placement = cm.ServiceItem("S2", "N2", "job_placement", job_centre, cm.ResourceKind.FORMAL, clock())
    do(cm.LinkService(tutoring))
    case = do(cm.LinkService(placement))
    first_limit = dt.datetime(2026, 9, 2, 9, 30, tzinfo=KST)
    linked = case.service_item("S1")
    assert linked is not None
    assert linked.time_limit == first_limit

    # A month on the placement falls through. Linking the same service for the same need again,
    # within the six months of the first placement, is an extension in all but name.
    clock.advance(30)
    do(cm.EndService("S2", "the employer withdrew the opening"))
    again = cm.ServiceItem("S3", "N2", "job_placement", job_centre, cm.ResourceKind.FORMAL, clock())
    refusal = refused(cm.LinkService(again))
    assert (refusal.guard, refusal.reason) == ("relink_justified", "relink_within_limit")

    # Near the tutoring's limit, the son still needs it; it is listed as due, and cannot be
    # extended yet: nobody has reassessed the household since it started.
    clock.advance(150)
    due = [i for i in manager.due() if i.kind is cm.DueKind.SERVICE_ITEM_LIMIT]
    assert [(i.subject, i.due_at, i.overdue) for i in due] == [("S1", first_limit, False)]
    refusal = refused(cm.ExtendService("S1", "the son still needs help with reading"))
    assert (refusal.guard, refusal.reason) == ("extension_justified", "not_reassessed")

    # The reassessment: needs looked at again with the family, the plan stands.
    do(cm.StartReassessment("tutoring reaches its limit; the placement fell through"))
    do(cm.RecordJournal(cm.JournalKind.CHANGED_NEED, "reading improves, not yet at grade level", "son"))
    do(cm.ResumeService())

    case = do(cm.ExtendService("S1", "reading improves, not yet at grade level"))
    item = case.service_item("S1")
    assert item is not None
    assert (item.time_limit, item.extensions) == (dt.datetime(2027, 3, 2, 9, 30, tzinfo=KST), 1)
    assert cm.Reason.REASSESSED in [v.reason for v in decisions[-1].verdicts]

    # One extension is all the default policy allows.
    refusal = refused(cm.ExtendService("S1", "once more"))
    assert (refusal.guard, refusal.reason) == ("extension_within_policy", "too_many_extensions")

    # The same reassessment justifies the new placement.
    case = do(cm.LinkService(again))
    relink = next(v for v in decisions[-1].verdicts if v.guard == "relink_justified")
    assert relink.reason is cm.Reason.REASSESSED
    assert [s.item_id for s in case.service_items if s.active] == ["S1", "S3"]

    assert manager.replay(case.case_id) == case
    assert [r.reason for r in manager.refusals(case.case_id)] == [
        "relink_within_limit",
        "not_reassessed",
        "too_many_extensions",
    ]
    return case


if __name__ == "__main__":
    store = cm.open_store(sys.argv[1]) if len(sys.argv) > 1 else None
    case = run(store)
    print(f"case {case.case_id}: {cm.label('state', case.state)} ({case.version} events)")
    for item in case.service_items:
        limit = f"{item.time_limit:%Y-%m-%d}" if item.time_limit else "-"
        ended = f", ended {item.ended_at:%Y-%m-%d}" if item.ended_at else ""
        print(f"case {case.case_id}: {item.item_id} {item.service} until {limit}{ended}")
