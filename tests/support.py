"""Test helpers: households, actors, and a driver that takes a case to any state through ``decide``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import attrs

import casemgmt_core as cm
from casemgmt_core import commands as c

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TEAM = "team-1"
WORKER = cm.Actor("worker-1", "caseworker", frozenset({TEAM}))
SUPERVISOR = cm.Actor("lead-1", "supervisor", frozenset({TEAM}))
POLICY = cm.DEFAULT_POLICY


def confirming_policy(hours: int = 24, policy: cm.Policy = POLICY) -> cm.Policy:
    """``policy`` with the child-abuse override to be confirmed by a supervisor within ``hours``."""
    ground = cm.StatutoryGround.CHILD_ABUSE
    rule = attrs.evolve(policy.statutory[ground], confirmation_within_hours=hours)
    return attrs.evolve(policy, statutory={**policy.statutory, ground: rule})


PROVIDER = cm.Agency("provider-1", "Job centre")


def household(household_id: str = "H1", *, region: str = "R1") -> cm.Household:
    return cm.Household(
        household_id,
        [
            cm.Member("parent", dt.date(1985, 4, 1), relation="mother"),
            cm.Member("child", dt.date(2017, 6, 1), relation="son", guardian_id="parent"),
        ],
        region=region,
    )


def referral(at: dt.datetime = T0) -> cm.Referral:
    return cm.Referral(cm.ReferralChannel.WALK_IN, at)


def consent(
    scope: cm.ConsentScope, consent_id: str | None = None, agency_id: str | None = None, at: dt.datetime = T0
) -> cm.Consent:
    return cm.Consent(
        consent_id or scope.value, scope, "parent", cm.ConsentGiver.PERSON, "parent", at, agency_id
    )


class Driver:
    """Applies commands with ``decide`` and keeps the case and its events (no store, no clock)."""

    def __init__(
        self,
        case_id: str = "C1",
        *,
        policy: cm.Policy = POLICY,
        hh: cm.Household | None = None,
        now: dt.datetime = T0,
    ) -> None:
        self.policy = policy
        self.now = now
        decision = cm.decide(
            None, c.OpenCase(case_id, hh or household(), referral(now)), policy, now, actor=WORKER
        )
        self.case = decision.case
        self.events = list(decision.events)

    def do(
        self, command: c.Command, *, actor: cm.Actor = WORKER, facts: cm.Facts | None = None, days: float = 0
    ) -> cm.Case:
        self.now += dt.timedelta(days=days)
        if facts is None and isinstance(command, c.FileMandatoryReport):
            # As if the outbox had delivered the report (CaseManager asks the store for this).
            facts = cm.Facts(report_delivered_at=self.now)
        decision = cm.decide(
            self.case, command, self.policy, self.now, actor=actor, facts=facts or cm.Facts()
        )
        self.case = decision.case
        self.events.extend(decision.events)
        return self.case

    def run(self, commands: Iterable[c.Command]) -> cm.Case:
        for command in commands:
            self.do(command)
        return self.case


def to_screening(d: Driver, *, consents: bool = True) -> cm.Case:
    d.run(
        [
            c.StartIntake(),
            c.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS),
            c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        ]
    )
    if consents:
        d.run(
            [
                c.RecordConsent(consent(cm.ConsentScope.SERVICE_PROVISION)),
                c.RecordConsent(consent(cm.ConsentScope.PERSONAL_DATA)),
            ]
        )
    return d.do(c.CompleteIntake())


def to_planning(d: Driver) -> cm.Case:
    to_screening(d)
    d.run([c.Select(), c.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT))])
    return d.do(c.CompleteAssessment())


def to_service(d: Driver) -> cm.Case:
    to_planning(d)
    d.do(c.SetGoal(cm.Goal("G1", "back in work", ["N1"])))
    d.do(c.ApprovePlan(), actor=SUPERVISOR)
    d.do(c.RecordConsent(consent(cm.ConsentScope.SHARING, "share-provider", PROVIDER.id)))
    return d.do(
        c.LinkService(cm.ServiceItem("S1", "N1", "job_placement", PROVIDER, cm.ResourceKind.FORMAL, d.now))
    )


def reach(state: cm.CaseState, case_id: str = "C1") -> Driver:
    """A driver whose case is in ``state``, reached by the ordinary path."""
    S = cm.CaseState
    d = Driver(case_id)
    if state is S.REFERRED:
        return d
    if state is S.INTAKE:
        d.do(c.StartIntake())
    elif state is S.SCREENING:
        to_screening(d)
    elif state is S.ASSESSMENT:
        to_screening(d)
        d.do(c.Select())
    elif state is S.PLANNING:
        to_planning(d)
    elif state is S.SERVICE:
        to_service(d)
    elif state is S.REASSESSMENT:
        to_service(d)
        d.do(c.StartReassessment("goals changed"))
    elif state is S.CRISIS:
        to_service(d)
        d.do(c.DeclareCrisis("eviction notice"))
    elif state is S.CLOSED:
        to_service(d)
        d.do(c.Close(cm.ClosureReason.GOALS_MET))
    elif state is S.AFTERCARE:
        to_service(d)
        d.run([c.Close(cm.ClosureReason.GOALS_MET), c.StartAftercare("check after a term")])
    elif state is S.REDIRECTED:
        # An eligible household leaves screening only with a reason: here, information suffices.
        to_screening(d)
        d.do(c.RecordIntakeFindings(information_only=True))
        d.do(c.Redirect("emergency_livelihood"))
    elif state is S.GENERAL_COUNSELLING:
        to_screening(d)
        d.do(c.RecordIntakeFindings(counselling_only=True))
        d.do(c.ReferToCounselling())
    elif state is S.DECLINED:
        to_screening(d)
        d.do(c.Decline("does not want case management", cm.ScreeningReason.HOUSEHOLD_DECLINED))
    elif state is S.HANDED_OVER:
        d.do(c.HandOver(cm.Agency("other-centre")))
    assert d.case.state is state, (d.case.state, state)
    return d
