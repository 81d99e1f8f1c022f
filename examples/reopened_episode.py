"""A recurrence: a closed case is reopened as a second episode that starts clean.

The first episode plans, revises its plan (one goal revised, one dropped, one added) and closes
with the family self-reliant; after-care follows. When the mother falls ill again, a supervisor
reopens the case. The second episode starts at intake with nothing carried over: no needs, goals
or services, and the household's consents are asked for again. The history keeps both episodes,
and every approved plan is a version.

Run it: ``python examples/reopened_episode.py`` (a private SQLite database in memory) or pass a
store, e.g. ``python examples/reopened_episode.py sqlite:///cases.db``.
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
    clock = Clock(dt.datetime(2025, 9, 1, 10, 0, tzinfo=KST))
    store = store or cm.open_store("sqlite:///:memory:")
    notifier = cm.RecordingNotifier()
    manager = cm.CaseManager(store, notifier=notifier, clock=clock)
    worker = cm.Actor("park.caseworker", "caseworker", frozenset({"team-east"}))
    lead = cm.Actor("lee.supervisor", "supervisor", frozenset({"team-east"}))
    food_bank = cm.Agency("food-bank-gangnam", "Gangnam food bank")

    household = cm.Household(
        "HH-2025-0877",
        [
            cm.Member("mother", dt.date(1984, 2, 20), relation="mother"),
            cm.Member("daughter", dt.date(2015, 6, 11), relation="daughter", guardian_id="mother"),
        ],
        region="11680-102",
        low_income=True,
    )
    case = manager.open_case(
        household,
        cm.Referral(cm.ReferralChannel.NEIGHBOUR, clock(), referrer_note="mother in hospital, child alone"),
        actor=worker,
        case_id="C-0877",
    )

    def do(command: cm.Command, actor: cm.Actor = worker) -> cm.Case:
        return manager.handle(case.case_id, command, actor=actor)

    def refused(command: cm.Command, actor: cm.Actor = worker) -> cm.TransitionRefused:
        try:
            do(command, actor)
        except cm.TransitionRefused as refusal:
            return refusal
        raise AssertionError(f"{command.event} should have been refused")

    def consents(episode: int) -> list[cm.Command]:
        """The household's consents, asked for at the start of each episode."""
        scopes = [
            (cm.ConsentScope.SERVICE_PROVISION, None),
            (cm.ConsentScope.PERSONAL_DATA, None),
            (cm.ConsentScope.SHARING, food_bank.id),
        ]
        return [
            cm.RecordConsent(
                cm.Consent(
                    f"{scope.value}-{episode}",
                    scope,
                    "mother",
                    cm.ConsentGiver.PERSON,
                    "mother",
                    clock(),
                    agency,
                )
            )
            for scope, agency in scopes
        ]

    # -- episode 1 ---------------------------------------------------------------------------
    do(cm.AssignCaseworker(worker.id, team_id="team-east"))
    do(cm.StartIntake())
    do(cm.RecordCrisisFactor(cm.CrisisFactor.ILLNESS))
    do(cm.RecordCrisisFactor(cm.CrisisFactor.CARE_GAP))
    for command in consents(1):
        do(command)
    do(cm.CompleteIntake())
    do(cm.Select())
    do(cm.RecordNeed(cm.Need("N1", cm.NeedDomain.HEALTH, "the mother's treatment")))
    do(cm.RecordNeed(cm.Need("N2", cm.NeedDomain.WELFARE, "food and care while she is treated")))
    do(cm.CompleteAssessment())
    do(cm.SetGoal(cm.Goal("G1", "the mother completes her treatment", ["N1"])))
    do(cm.SetGoal(cm.Goal("G2", "a relative looks after the daughter", ["N2"])))
    do(cm.ApprovePlan(), actor=lead)
    do(cm.LinkService(cm.ServiceItem("S1", "N2", "food_parcels", food_bank, cm.ResourceKind.FORMAL, clock())))

    clock.advance(60)
    do(cm.StartReassessment("no relative can take the daughter in"))
    do(cm.RevisePlan())
    do(cm.ReviseGoal("G1", "the mother completes treatment and follow-up", "follow-up was prescribed"))
    do(cm.DropGoal("G2", "no relative is able to help"))
    do(cm.SetGoal(cm.Goal("G3", "after-school care for the daughter", ["N2"])))
    do(cm.ApprovePlan(), actor=lead)

    clock.advance(90)
    do(cm.AchieveGoal("G1"))
    do(cm.AchieveGoal("G3"))
    closed = do(cm.Close(cm.ClosureReason.SELF_RELIANT))
    parcels = closed.service_item("S1")
    assert parcels is not None
    assert parcels.outcome == "case closed: self_reliant"  # closing ends what runs
    do(cm.StartAftercare("check in through the winter"), actor=lead)

    # -- the recurrence: episode 2 -----------------------------------------------------------
    clock.advance(60)
    try:
        do(cm.Reopen("the mother is in hospital again"))
    except cm.AuthorizationDenied as denied:
        assert denied.allowed_roles == ("supervisor",)
    else:
        raise AssertionError("reopening is a supervisor's decision")
    case = do(cm.Reopen("the mother is in hospital again"), actor=lead)
    assert (case.state, case.episode) == (cm.CaseState.INTAKE, 2)
    assert case.previous_episode == cm.EpisodeRef(case.case_id, 1)
    assert not (case.needs or case.goals or case.service_items or case.consents)  # a clean working set
    assert case.crisis_factors == frozenset() and case.aftercare is None and case.screening is None
    reopen = manager.history(case.case_id)[-1].payload
    assert isinstance(reopen, cm.Reopen)
    assert reopen.lapsed_consents == ("service_provision-1", "personal_data-1", "sharing-1")

    # Intake again: the old crisis factors and consents do not count.
    assert refused(cm.CompleteIntake()).reason == "no_crisis_factors"
    do(cm.RecordCrisisFactor(cm.CrisisFactor.ILLNESS))
    do(cm.RecordCrisisFactor(cm.CrisisFactor.DEBT))
    do(cm.CompleteIntake())
    refusal = refused(cm.Select())  # the consents of episode 1 lapsed: they are asked for again
    assert (refusal.guard, refusal.reason) == ("service_consent", "consent_missing")
    for command in consents(2):
        do(command)
    do(cm.Select())
    assert refused(cm.CompleteAssessment()).reason == "no_needs_recorded"
    do(cm.RecordNeed(cm.Need("N1", cm.NeedDomain.WELFARE, "hospital bills")))
    do(cm.CompleteAssessment())
    do(cm.SetGoal(cm.Goal("G1", "the hospital bills are covered", ["N1"])))
    final = do(cm.ApprovePlan(), actor=lead)

    # The history keeps both episodes; every event says which one it belongs to.
    history = manager.history(final.case_id)
    assert {e.episode for e in history} == {1, 2}
    assert all(e.previous_episode == cm.EpisodeRef(final.case_id, 1) for e in history if e.episode == 2)
    assert [e.event for e in history if e.event in ("close", "reopen")] == ["close", "reopen"]

    versions = cm.plan_versions(history)
    assert [(v.version, v.episode) for v in versions] == [(1, 1), (2, 1), (3, 2)]
    assert (versions[1].added, versions[1].revised, versions[1].dropped) == (("G3",), ("G1",), ("G2",))
    assert versions[2].added == ("G1",)  # a new episode plans from scratch

    assert final.state is cm.CaseState.SERVICE and final.plan_version == 3
    assert manager.replay(final.case_id) == final
    assert store.verify(final.case_id).ok
    return final


def show(case_id: str, history: list[cm.Event]) -> None:
    for episode in sorted({e.episode for e in history}):
        events = [e for e in history if e.episode == episode]
        first, last = events[0], events[-1]
        print(
            f"case {case_id} episode {episode}: {first.occurred_at:%Y-%m-%d} to {last.occurred_at:%Y-%m-%d}, "
            f"{len(events)} events, {cm.label('state', last.target)}"
        )
    for v in cm.plan_versions(history):
        goals = ", ".join(g.goal_id for g in v.goals)
        print(
            f"case {case_id} plan v{v.version} (episode {v.episode}, {v.approved_at:%Y-%m-%d}): {goals}; "
            f"added {list(v.added)}, revised {list(v.revised)}, dropped {list(v.dropped)}"
        )


if __name__ == "__main__":
    store = cm.open_store(sys.argv[1]) if len(sys.argv) > 1 else cm.open_store("sqlite:///:memory:")
    case = run(store)
    print(f"case {case.case_id}: {cm.label('state', case.state)}, episode {case.episode}")
    show(case.case_id, list(store.events(case.case_id)))
