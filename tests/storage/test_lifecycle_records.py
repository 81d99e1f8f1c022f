"""What the lifecycle records besides the stage (screening results, plan versions, extensions,
approvals, transfers, referrals to other agencies, episodes) is stored whole by every store: read
back by a new connection, it equals the case its events replay to, and the chain verifies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.adapters.postgresql import PostgresStore
from casemgmt_core.adapters.sql import SQLStore

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
WORKER = cm.Actor("worker-1", "caseworker", frozenset({"team-1"}))
#: Supervises both teams the case passes through.
SUPERVISOR = cm.Actor("lead-1", "supervisor", frozenset({"team-1", "team-2"}))
#: Takes the case over.
TAKER = cm.Actor("worker-2", "caseworker", frozenset({"team-2"}))
PROVIDER = cm.Agency("provider-1", "Job centre")
MH_CENTRE = cm.Agency("mh-centre", "Mental health welfare centre")
#: Extending a case needs a supervisor's approval here; nothing else does.
POLICY = attrs.evolve(cm.DEFAULT_POLICY, approvals={cm.ApprovalStep.CASE_EXTENSION: cm.ApprovalRule()})

Opener = Callable[[], cm.CaseStore]


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
def open_again(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same store (for the SQL stores: a new connection each time)."""
    opened: list[cm.CaseStore] = []
    if request.param == "memory":
        memory = cm.InMemoryStore()
        opened.append(memory)
        yield lambda: memory
        return
    if request.param == "sqlite":
        path = str(tmp_path / "cases.db")

        def connect() -> cm.CaseStore:
            opened.append(cm.SQLiteStore(path))
            return opened[-1]

    elif request.param == "postgresql":
        conninfo = request.getfixturevalue("postgres_conninfo")

        def connect() -> cm.CaseStore:
            opened.append(PostgresStore(conninfo))
            return opened[-1]

    else:
        url = request.getfixturevalue("mariadb_database")

        def connect() -> cm.CaseStore:
            opened.append(SQLStore(url))
            return opened[-1]

    yield connect
    for store in opened:
        store.close()  # type: ignore[attr-defined]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


def _consent(scope: cm.ConsentScope, agency: str | None = None) -> c.RecordConsent:
    consent_id = f"{scope.value}-{agency}" if agency else scope.value
    return c.RecordConsent(
        cm.Consent(consent_id, scope, "parent", cm.ConsentGiver.PERSON, "parent", T0, agency)
    )


def _household() -> cm.Household:
    return cm.Household(
        "H1",
        [
            cm.Member("parent", dt.date(1985, 4, 1), relation="mother"),
            cm.Member("child", dt.date(2017, 6, 1), relation="son", guardian_id="parent"),
        ],
        region="R1",
    )


def _lived(m: cm.CaseManager, clock: Clock) -> None:
    """One case through two episodes, using every kind of record the lifecycle keeps."""
    m.open_case(_household(), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=WORKER, case_id="C1")
    steps: list[tuple[c.Command, cm.Actor]] = [
        (c.AssignCaseworker("worker-1", team_id="team-1"), WORKER),
        (c.StartIntake(), WORKER),
        (c.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS), WORKER),
        (c.RecordCrisisFactor(cm.CrisisFactor.DEBT), WORKER),
        (_consent(cm.ConsentScope.SERVICE_PROVISION), WORKER),
        (_consent(cm.ConsentScope.PERSONAL_DATA), WORKER),
        (_consent(cm.ConsentScope.SHARING, PROVIDER.id), WORKER),
        (_consent(cm.ConsentScope.SHARING, MH_CENTRE.id), WORKER),
        (c.CompleteIntake(), WORKER),
        (c.Select(), WORKER),
        (c.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT)), WORKER),
        (c.CompleteAssessment(), WORKER),
        (c.SetGoal(cm.Goal("G1", "back in work", ["N1"])), WORKER),
        (c.SetGoal(cm.Goal("G2", "a driving licence", ["N1"])), WORKER),
        (c.ReviseGoal("G1", "part-time work first", "the mother's health", ["N1"]), WORKER),
        (c.DropGoal("G2", "not affordable this year"), WORKER),
        (c.ApprovePlan(), SUPERVISOR),
        (
            c.LinkService(cm.ServiceItem("S1", "N1", "job_placement", PROVIDER, cm.ResourceKind.FORMAL, T0)),
            WORKER,
        ),
        (c.StartReassessment("the first term ends"), WORKER),
        (c.ResumeService(), WORKER),
        (c.ExtendService("S1", "one more term before the family takes over"), WORKER),
        (c.RequestApproval("A1", cm.ApprovalStep.CASE_EXTENSION, comment="court hearing"), WORKER),
        (c.Reject("A1", "reassess the household first"), SUPERVISOR),
        (c.RequestApproval("A2", cm.ApprovalStep.CASE_EXTENSION, comment="reassessed"), WORKER),
        (c.Approve("A2", "agreed"), SUPERVISOR),
        (c.ExtendCase("the court hearing is in spring"), SUPERVISOR),
        (c.TransferCase("prefers morning visits", caseworker_id="worker-2", team_id="team-2"), WORKER),
        (c.ReferOut(MH_CENTRE, "long-term support"), TAKER),
        (c.ReferralDeclined("no capacity until spring"), TAKER),
        (c.Close(cm.ClosureReason.GOALS_MET), TAKER),
        (c.StartAftercare("check in after the first term"), TAKER),
        (c.Reopen("lost the job again"), SUPERVISOR),
        (c.RecordCrisisFactor(cm.CrisisFactor.HOUSING), TAKER),
    ]
    for command, actor in steps:
        m.handle("C1", command, actor=actor)


def test_every_record_of_the_lifecycle_is_stored_whole(open_again: Opener) -> None:
    clock = Clock()
    _lived(cm.CaseManager(open_again(), policy=POLICY, clock=clock), clock)

    store = open_again()
    manager = cm.CaseManager(store, policy=POLICY, clock=clock)
    case = store.load("C1")
    assert case == manager.replay("C1")
    assert store.verify().ok
    # the second episode: a clean working set, linked to the first
    assert (case.state, case.episode, case.previous_episode) == (
        cm.CaseState.INTAKE,
        2,
        cm.EpisodeRef("C1", 1),
    )
    assert case.crisis_factors == {cm.CrisisFactor.HOUSING}
    assert (case.needs, case.goals, case.service_items, case.approvals) == ((), (), (), ())
    assert (case.caseworker_id, case.team_id) == ("worker-2", "team-2")
    assert case.plan_version == 1  # counted over the case's life

    events = list(store.events("C1"))
    assert [e.episode for e in events] == [1] * (len(events) - 2) + [2, 2]
    assert {e.previous_episode for e in events} == {None, cm.EpisodeRef("C1", 1)}
    [plan] = cm.plan_versions(events)
    assert (plan.version, plan.episode, [g.goal_id for g in plan.goals]) == (1, 1, ["G1"])
    assert plan.goals[0].description == "part-time work first"

    # the first episode as it ended, replayed from the stored events
    ended = cm.replay(events[:-2])
    assert ended.state is cm.CaseState.AFTERCARE
    assert ended.screening is not None
    assert (ended.screening.decision, ended.screening.reason) == (
        cm.EligibilityDecision.INTEGRATED_CASE_MANAGEMENT,
        cm.ScreeningReason.ELIGIBLE,
    )
    [item] = ended.service_items
    assert (item.extensions, item.outcome) == (1, "case closed: goals_met")
    assert item.ended_at is not None
    assert [(a.approval_id, a.status) for a in ended.approvals] == [
        ("A1", cm.ApprovalStatus.REJECTED),
        ("A2", cm.ApprovalStatus.USED),
    ]
    assert ended.case_extensions == 1
    assert ended.case_limit_extended_to is not None
    assert ended.referral_out is None  # declined, then closed
    extension = next(e for e in events if e.event == "extend_case")
    assert isinstance(extension.payload, c.ExtendCase)
    assert extension.payload.approval_id == "A2"


def test_a_re_referred_household_s_new_case_is_stored_with_its_link(open_again: Opener) -> None:
    clock = Clock()
    manager = cm.CaseManager(open_again(), clock=clock)
    manager.open_case(_household(), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=WORKER, case_id="C1")
    manager.handle("C1", c.StartIntake(), actor=WORKER)
    manager.handle("C1", c.Decline("does not want it", cm.ScreeningReason.HOUSEHOLD_DECLINED), actor=WORKER)
    manager.open_case(_household(), cm.Referral(cm.ReferralChannel.PHONE, T0), actor=WORKER, case_id="C2")

    store = open_again()
    again = store.load("C2")
    assert again.previous_episode == cm.EpisodeRef("C1", 1)
    assert [e.previous_episode for e in store.events("C2")] == [cm.EpisodeRef("C1", 1)]
    declined = store.load("C1")
    assert declined.screening is not None
    assert declined.screening.reason is cm.ScreeningReason.HOUSEHOLD_DECLINED
    assert store.verify().ok
