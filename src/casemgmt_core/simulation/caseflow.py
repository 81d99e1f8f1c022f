"""The caseflow model: households move through the real lifecycle, one command at a time.

Every step of a simulated case is a command decided by :func:`casemgmt_core.decide` under the
scenario's policy, so the guards (consent, the statutory override, duplicate service,
eligibility, reports filed, closure reasons) decide exactly as in production. Where a guard
refuses, the model takes the way out the refusal names: ``select`` refused for lack of consent
leads to ``decline``, refused as information-only to ``redirect``; ``decline`` refused under a
statutory duty leads to ``hand_over``. Refusals are counted by guard and reason.

A case holds a slot of a caseworker's caseload from assignment to its exit from active work
(closure or a screening exit); after-care does not hold a slot. A recurrence re-refers the
household: it waits for a caseworker, and is reopened by a supervisor on assignment.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from attrs import define

from .. import commands as c
from ..engine import decide
from ..errors import TransitionRefused
from ..guards import NO_FACTS, Facts, Reason
from ..lifecycle import FINAL_STATES
from ..model import (
    REFERRING_BODY_CHANNELS,
    Actor,
    Agency,
    Case,
    CaseState,
    ClosureReason,
    Consent,
    ConsentGiver,
    ConsentScope,
    CrisisFactor,
    Goal,
    Household,
    Member,
    Need,
    NeedDomain,
    Referral,
    ReferralChannel,
    ResourceKind,
    ServiceItem,
    StatutoryGround,
    Strength,
)
from ..ports import CaseStore, Commit
from .distributions import Distribution, Sampler, categorical, sampler, uniforms
from .kernel import EventLoop, Pool
from .scenario import Scenario, ScenarioError

__all__ = ["ACTORS", "ReplicationResult", "SimulationFlowError", "check_access", "run_replication"]

S = CaseState
INTAKE_OFFICER = Actor("intake-1", "intake_officer")
SUPERVISOR = Actor("supervisor-1", "supervisor")
_WORKER_ROLE = "caseworker"
OTHER_AGENCY = Agency("other-agency", "agency already managing the household")
AUTHORITY = Agency("statutory-authority", "competent authority under the statutory duty")

#: The events each simulated role issues; the scenario's policy must allow them.
ACTORS: dict[str, frozenset[str]] = {
    INTAKE_OFFICER.role: frozenset({"open"}),
    SUPERVISOR.role: frozenset({"approve_plan", "reopen"}),
    _WORKER_ROLE: frozenset(c.COMMAND_TYPES) - {"open", "approve_plan", "reopen", "confirm_override"},
}

_DOMAIN = {
    CrisisFactor.JOB_LOSS: NeedDomain.EMPLOYMENT,
    CrisisFactor.ILLNESS: NeedDomain.HEALTH,
    CrisisFactor.DEATH: NeedDomain.COUNSELLING,
    CrisisFactor.DIVORCE: NeedDomain.LEGAL,
    CrisisFactor.DOMESTIC_VIOLENCE: NeedDomain.LEGAL,
    CrisisFactor.CHILD_ABUSE: NeedDomain.COUNSELLING,
    CrisisFactor.ELDER_ABUSE: NeedDomain.WELFARE,
    CrisisFactor.HOUSING: NeedDomain.HOUSING,
    CrisisFactor.DEBT: NeedDomain.WELFARE,
    CrisisFactor.MENTAL_ILLNESS: NeedDomain.HEALTH,
    CrisisFactor.ISOLATION: NeedDomain.COUNSELLING,
    CrisisFactor.CARE_GAP: NeedDomain.EDUCATION,
}
_PROVIDERS = {d: Agency(f"provider-{d.value}", f"{d.value} provider") for d in NeedDomain}

#: Which exit the model takes when ``select`` is refused for this reason.
_EXIT_FOR: dict[str, Callable[[], c.Command]] = {
    Reason.OUT_OF_JURISDICTION.value: lambda: c.Decline("outside the jurisdiction"),
    Reason.INFORMATION_ONLY.value: lambda: c.Redirect("information"),
    Reason.NOT_COMPLEX.value: lambda: c.Redirect("single service"),
    Reason.TARGET_RULE_UNMET.value: lambda: c.Redirect("programme target rule"),
    Reason.COUNSELLING_ONLY.value: c.ReferToCounselling,
    Reason.CONSENT_MISSING.value: lambda: c.Decline("no consent and no statutory basis"),
    Reason.MANAGED_ELSEWHERE.value: lambda: c.HandOver(OTHER_AGENCY),
}
_FINAL = frozenset(FINAL_STATES)
# Plain strings for the log: an enum's ``.value`` is a descriptor call, and the log is hot.
_VALUE: dict[CaseState | None, str] = {None: "", **{s: str(s.value) for s in CaseState}}
_NAN = math.nan


class SimulationFlowError(RuntimeError):
    """The model issued a command the rules refused and has no way out for (a bug in the model)."""


def check_access(scenario: Scenario) -> None:
    """Raise :class:`ScenarioError` if the scenario's policy denies a role an event the model issues."""
    access = scenario.policy.access
    denied = sorted(
        f"role {role!r} may not {event!r}"
        for role, events in ACTORS.items()
        for event in events
        if not access.allows(role, event)
    )
    if denied:
        raise ScenarioError(
            [f"policy.access: the simulation needs {d}" for d in denied], source=scenario.name
        )


@define
class ReplicationResult:
    """What one replication produced, as plain columns (cheap to send between processes).

    Times are days from the scenario's start; ``nan`` marks what had not happened by the horizon.
    """

    index: int
    horizon: float
    warmup: float
    log: dict[str, list[Any]]
    cases: dict[str, list[Any]]
    visits: dict[str, list[Any]]
    waits: dict[str, list[Any]]
    holds: dict[str, list[Any]]
    episodes: dict[str, list[Any]]
    caseload: dict[str, list[Any]]
    refusals: dict[tuple[str, str, str], int]
    decisions: int = 0
    transitions: int = 0
    wall_seconds: float = 0.0


def _columns(*names: str) -> dict[str, list[Any]]:
    return {n: [] for n in names}


class _Sim:
    """One simulated household's case and what the model knows about it."""

    __slots__ = (
        "arrived",
        "case",
        "channel",
        "consent",
        "counselling_only",
        "done",
        "episode_row",
        "factors",
        "first_wait",
        "ground",
        "hold_row",
        "id",
        "info_only",
        "left",
        "seq",
        "shared",
        "state_t",
        "wait_row",
        "worker",
    )

    def __init__(self, case_id: str, channel: ReferralChannel, arrived: float) -> None:
        self.id = case_id
        self.channel = channel
        self.arrived = arrived
        self.case: Case | None = None
        self.consent = True
        self.ground: StatutoryGround | None = None
        self.info_only = False
        self.counselling_only = False
        self.factors: list[CrisisFactor] = []
        self.worker = -1
        self.state_t = arrived
        self.seq = 0
        self.shared: set[str] = set()
        self.left = 0.0
        self.done: Callable[[_Sim], None] = _noop
        self.first_wait = _NAN
        self.wait_row = -1
        self.hold_row = -1
        self.episode_row = -1

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"


def _noop(sim: _Sim) -> None:
    return None


_DURATIONS = (
    "intake",
    "screening",
    "assessment",
    "planning",
    "service_cycle",
    "reassessment",
    "crisis",
    "recurrence",
)
#: One independent random stream per purpose, spawned in this order from the replication's seed:
#: changing one assumption then leaves the draws of the others as they were.
_STREAMS = ("arrivals", "channel", "household", "factors", "outcome", "hazard", *_DURATIONS)


class _Model:
    def __init__(
        self, scenario: Scenario, seed: np.random.SeedSequence, index: int, store: CaseStore | None
    ) -> None:
        self.sc = scenario
        self.policy = scenario.policy
        self.index = index
        self.store = store
        self.start = scenario.start
        self.loop = EventLoop()
        rng = {
            name: np.random.default_rng(s)
            for name, s in zip(_STREAMS, seed.spawn(len(_STREAMS)), strict=True)
        }
        d = scenario.durations
        self.dur: dict[str, Sampler] = {name: sampler(getattr(d, name), rng[name]) for name in _DURATIONS}
        self.u_household = uniforms(rng["household"])
        self.u_outcome = uniforms(rng["outcome"])
        hz = rng["hazard"]
        rates = scenario.rates
        self.crisis_gap = _hazard(rates.crisis_per_day, hz)
        self.withdraw_gap = _hazard(rates.consent_withdrawal_per_day, hz)
        a = scenario.arrivals
        self.channels = list(a.rates_per_day)
        self.total_rate = sum(a.rates_per_day.values())
        self.interarrival = (
            sampler(Distribution.exponential(1 / self.total_rate), rng["arrivals"])
            if a.process == "poisson"
            else _noop_sampler
        )
        self.pick_channel = (
            categorical(list(a.rates_per_day.values()), uniforms(rng["channel"]))
            if a.process == "poisson"
            else _no_channel
        )
        h = scenario.households
        u_factor = uniforms(rng["factors"])
        self.factor_names = list(h.crisis_factor_weights)
        self.pick_count = categorical(h.crisis_factor_counts, u_factor)
        self.pick_factor = categorical(list(h.crisis_factor_weights.values()), u_factor)
        o = scenario.outcomes
        self.dropout_reasons = list(o.dropout_reasons)
        self.pick_dropout = categorical(list(o.dropout_reasons.values()), self.u_outcome)
        jurisdiction = sorted(self.policy.eligibility.jurisdiction)
        self.home_region = jurisdiction[0] if jurisdiction else "local"
        self.workers = [Actor(f"cw-{i + 1:02d}", _WORKER_ROLE) for i in range(scenario.staff.caseworkers)]
        self.urgent_queue = scenario.staff.queue == "statutory_first"
        self.pool = Pool(
            self.loop, scenario.staff.caseworkers, scenario.staff.caseload_cap, self._grant, self._load
        )
        self.sims: list[_Sim] = []
        self.refusals: Counter[tuple[str, str, str]] = Counter()
        self.decisions = 0
        self.transitions = 0
        self.log = _columns("case", "event", "time", "resource", "source", "target", "episode")
        self.visits = _columns("case", "state", "entered", "left")
        self.waits = _columns("case", "entered", "left")
        self.holds = _columns("case", "worker", "assigned", "released")
        self.episodes = _columns("case", "episode", "start", "end")
        self.caseload = _columns("time", "held", "waiting")
        self.caseload["time"].append(0.0)
        self.caseload["held"].append(0)
        self.caseload["waiting"].append(0)

    # -- running ---------------------------------------------------------------------------

    def run(self) -> ReplicationResult:
        began = time.perf_counter()
        a = self.sc.arrivals
        if a.process == "poisson":
            self.loop.at(self.interarrival(), self._poisson_arrival)
        else:
            for day, channel in a.table:
                if day <= self.sc.horizon_days:
                    self.loop.at(day, self._table_arrival, channel)
        self.loop.run(self.sc.horizon_days)
        return self._result(time.perf_counter() - began)

    def _poisson_arrival(self, _: object) -> None:
        self._arrive(self.channels[self.pick_channel()])
        self.loop.after(self.interarrival(), self._poisson_arrival)

    def _table_arrival(self, channel: ReferralChannel) -> None:
        self._arrive(channel)

    def _load(self, now: float, held: int, waiting: int) -> None:
        cl = self.caseload
        cl["time"].append(now)
        cl["held"].append(held)
        cl["waiting"].append(waiting)

    # -- deciding --------------------------------------------------------------------------

    def _do(self, sim: _Sim, command: c.Command, actor: Actor, facts: Facts = NO_FACTS) -> str | None:
        """Decide ``command``; on refusal count it and return its reason (nothing changes)."""
        now = self.loop.now
        at = self.start + dt.timedelta(days=now)
        try:
            decision = decide(sim.case, command, self.policy, at, actor=actor, facts=facts)
        except TransitionRefused as refused:
            self.refusals[(refused.event, refused.guard, refused.reason)] += 1
            return refused.reason
        self.decisions += 1
        case = decision.case
        expected = 0 if sim.case is None else sim.case.version
        log = self.log
        case_id = sim.id
        for e in decision.events:
            source, target = e.source, e.target
            log["case"].append(case_id)
            log["event"].append(e.event)
            log["time"].append(now)
            log["resource"].append(e.actor_id)
            log["source"].append(_VALUE[source])
            log["target"].append(_VALUE[target])
            log["episode"].append(case.episode)
            if source is not target:
                self.transitions += 1
                if source is not None:
                    v = self.visits
                    v["case"].append(case_id)
                    v["state"].append(_VALUE[source])
                    v["entered"].append(sim.state_t)
                    v["left"].append(now)
                sim.state_t = now
        sim.case = decision.case
        if self.store is not None:
            self.store.commit(Commit(decision.case, decision.events, (), expected, None))
        return None

    def _must(self, sim: _Sim, command: c.Command, actor: Actor, facts: Facts = NO_FACTS) -> None:
        reason = self._do(sim, command, actor, facts)
        if reason is not None:
            assert sim.case is not None
            raise SimulationFlowError(
                f"case {sim.id}: {command.event!r} refused in {sim.case.state.value!r} ({reason})"
            )

    def _worker(self, sim: _Sim) -> Actor:
        return self.workers[sim.worker]

    def _state(self, sim: _Sim) -> CaseState:
        assert sim.case is not None
        return sim.case.state

    # -- referral and the queue ------------------------------------------------------------

    def _arrive(self, channel: ReferralChannel) -> None:
        now = self.loop.now
        sim = _Sim(f"r{self.index:02d}-{len(self.sims) + 1:06d}", channel, now)
        self.sims.append(sim)
        h, u = self.sc.households, self.u_household
        sim.consent = u() < h.p_consent
        has_child = u() < h.p_child
        if has_child and u() < h.p_child_abuse:
            sim.ground = StatutoryGround.CHILD_ABUSE
        elif u() < h.p_elder_abuse:
            sim.ground = StatutoryGround.ELDER_ABUSE
        elif u() < h.p_domestic_violence:
            sim.ground = StatutoryGround.DOMESTIC_VIOLENCE
        sim.info_only = u() < h.p_information_only
        sim.counselling_only = not sim.info_only and u() < h.p_counselling_only
        outside = u() < h.p_out_of_jurisdiction
        elsewhere = u() < h.p_managed_elsewhere
        n = self.pick_count() + 1
        factors: list[CrisisFactor] = []
        for _ in range(4 * n):
            if len(factors) >= min(n, len(self.factor_names)):
                break
            f = self.factor_names[self.pick_factor()]
            if f not in factors:
                factors.append(f)
        sim.factors = factors
        household = self._household(sim.id, has_child, sim.ground, outside)
        at = self.start + dt.timedelta(days=now)
        agency = Agency(f"{channel.value}-referrer") if channel in REFERRING_BODY_CHANNELS else None
        facts = Facts(managed_elsewhere_by=OTHER_AGENCY) if elsewhere else NO_FACTS
        self._do(sim, c.OpenCase(sim.id, household, Referral(channel, at, agency)), INTAKE_OFFICER, facts)
        self._episode_start(sim)
        if self._state(sim) in _FINAL:
            self._episode_end(sim)
            return
        self._request(sim)

    def _household(
        self, case_id: str, has_child: bool, ground: StatutoryGround | None, outside: bool
    ) -> Household:
        year = self.start.year
        members = [Member("adult", dt.date(year - 40, 3, 1), relation="parent")]
        if has_child:
            members.append(Member("child", dt.date(year - 10, 6, 1), relation="child", guardian_id="adult"))
        if ground is StatutoryGround.ELDER_ABUSE:
            members.append(Member("elder", dt.date(year - 80, 1, 1), relation="grandparent"))
        region = "outside" if outside else self.home_region
        return Household(f"H-{case_id}", tuple(members), region=region)

    def _request(self, sim: _Sim) -> None:
        w = self.waits
        sim.wait_row = len(w["case"])
        w["case"].append(sim.id)
        w["entered"].append(self.loop.now)
        w["left"].append(_NAN)
        self.pool.request(sim, urgent=self.urgent_queue and sim.ground is not None)

    def _grant(self, sim: _Sim, worker: int) -> None:
        now = self.loop.now
        self.waits["left"][sim.wait_row] = now
        if math.isnan(sim.first_wait):
            sim.first_wait = now - sim.arrived
        sim.worker = worker
        h = self.holds
        sim.hold_row = len(h["case"])
        h["case"].append(sim.id)
        h["worker"].append(self.workers[worker].id)
        h["assigned"].append(now)
        h["released"].append(_NAN)
        # Decided one step later: the pool is still handing out slots while this runs.
        self.loop.after(0.0, self._start_work, sim)

    def _release(self, sim: _Sim) -> None:
        self.holds["released"][sim.hold_row] = self.loop.now
        worker, sim.worker = sim.worker, -1
        self.pool.release(worker)

    def _episode_start(self, sim: _Sim) -> None:
        e = self.episodes
        sim.episode_row = len(e["case"])
        e["case"].append(sim.id)
        e["episode"].append(sim.case.episode if sim.case is not None else 1)
        e["start"].append(self.loop.now)
        e["end"].append(_NAN)

    def _episode_end(self, sim: _Sim) -> None:
        self.episodes["end"][sim.episode_row] = self.loop.now

    # -- intake and screening --------------------------------------------------------------

    def _start_work(self, sim: _Sim) -> None:
        worker = self._worker(sim)
        reopening = self._state(sim) in (S.CLOSED, S.AFTERCARE)
        if reopening:
            if self._do(sim, c.Reopen("recurrence"), SUPERVISOR) is not None:
                self._release(sim)
                return
            self._episode_start(sim)
        self._must(sim, c.AssignCaseworker(worker.id), worker)
        if self._state(sim) is S.REFERRED:
            self._must(sim, c.StartIntake(), worker)
        for f in sim.factors:
            self._must(sim, c.RecordCrisisFactor(f), worker)
        self._must(sim, c.RecordIntakeFindings(sim.info_only, sim.counselling_only), worker)
        assert sim.case is not None
        episode = sim.case.episode
        if sim.consent:
            at = self.start + dt.timedelta(days=self.loop.now)
            for scope in (ConsentScope.SERVICE_PROVISION, ConsentScope.PERSONAL_DATA):
                consent = Consent(
                    f"{scope.value}-{episode}", scope, "adult", ConsentGiver.PERSON, "adult", at
                )
                self._must(sim, c.RecordConsent(consent), worker)
        if (
            sim.ground is not None
            and not reopening
            and self._do(sim, c.InvokeStatutoryOverride(sim.ground), worker) is None
        ):
            # The model delivers the report at once: the outbox's confirmation is a fact here.
            delivered = Facts(report_delivered_at=self.start + dt.timedelta(days=self.loop.now))
            self._must(sim, c.FileMandatoryReport(sim.ground, f"{sim.id}-report"), worker, delivered)
        self._stage(sim, self.dur["intake"](), self._end_intake)

    def _end_intake(self, sim: _Sim) -> None:
        self._must(sim, c.CompleteIntake(), self._worker(sim))
        self._stage(sim, self.dur["screening"](), self._screen)

    def _screen(self, sim: _Sim) -> None:
        worker = self._worker(sim)
        reason = self._do(sim, c.Select(), worker)
        if reason is None:
            self._stage(sim, self.dur["assessment"](), self._end_assessment)
            return
        exit_for = _EXIT_FOR.get(reason)
        if exit_for is None:
            raise SimulationFlowError(f"case {sim.id}: no exit for a select refused as {reason!r}")
        refused = self._do(sim, exit_for(), worker)
        if refused == Reason.STATUTORY_DUTY_ACTIVE.value:
            refused = self._do(sim, c.HandOver(AUTHORITY), worker)
        if refused is not None:
            raise SimulationFlowError(f"case {sim.id}: the screening exit was refused ({refused})")
        self._finish(sim)

    # -- assessment, planning, service, reassessment -----------------------------------------

    def _end_assessment(self, sim: _Sim) -> None:
        worker = self._worker(sim)
        assert sim.case is not None
        known = {n.domain for n in sim.case.needs}
        for f in sim.factors:
            domain = _DOMAIN[f]
            if domain not in known:
                known.add(domain)
                self._must(sim, c.RecordNeed(Need(sim.next_id("N"), domain)), worker)
        if not sim.case.needs:
            self._must(sim, c.RecordNeed(Need(sim.next_id("N"), NeedDomain.WELFARE)), worker)
        self._must(sim, c.RecordStrength(Strength("family support", "adult")), worker)
        self._must(sim, c.CompleteAssessment(), worker)
        self._stage(sim, self.dur["planning"](), self._end_planning)

    def _end_planning(self, sim: _Sim) -> None:
        worker = self._worker(sim)
        case = sim.case
        assert case is not None
        open_needs = {n for g in case.goals if g.achieved_at is None for n in g.need_ids}
        for need in case.needs:
            if need.need_id not in open_needs:
                need_ids = (need.need_id,)
                goal = Goal(sim.next_id("G"), f"{need.domain.value} need met", need_ids)
                self._must(sim, c.SetGoal(goal), worker)
        self._must(sim, c.ApprovePlan(), SUPERVISOR)
        at = self.start + dt.timedelta(days=self.loop.now)
        assert sim.case is not None
        served = {s.need_id for s in sim.case.service_items if s.active}
        for need in sim.case.needs:
            if need.need_id in served:
                continue
            provider = _PROVIDERS[need.domain]
            if sim.consent and provider.id not in sim.shared and self._consent_active(sim):
                sim.shared.add(provider.id)
                share = Consent(
                    sim.next_id("share-"),
                    ConsentScope.SHARING,
                    "adult",
                    ConsentGiver.PERSON,
                    "adult",
                    at,
                    provider.id,
                )
                self._must(sim, c.RecordConsent(share), worker)
            item = ServiceItem(
                sim.next_id("S"), need.need_id, need.domain.value, provider, ResourceKind.FORMAL, at
            )
            self._do(sim, c.LinkService(item), worker)
        self._stage(sim, self.dur["service_cycle"](), self._review)

    def _consent_active(self, sim: _Sim) -> bool:
        assert sim.case is not None
        return bool(sim.case.active_consents(ConsentScope.SERVICE_PROVISION))

    def _review(self, sim: _Sim) -> None:
        """The end of a service cycle: close, or reassess."""
        worker = self._worker(sim)
        case = sim.case
        assert case is not None
        now = self.loop.now
        at = self.start + dt.timedelta(days=now)
        for item in case.service_items:
            if item.active and item.time_limit is not None and item.time_limit <= at:
                self._must(sim, c.EndService(item.item_id, "time limit reached"), worker)
        o, u = self.sc.outcomes, self.u_outcome
        over = now - self.episodes["start"][sim.episode_row] > self.policy.time_limits.case_max_days
        if o.close_at_case_limit and over:
            self._close(sim, ClosureReason.MAXIMUM_DURATION)
        elif u() < o.p_goals_met_per_cycle:
            case = sim.case
            assert case is not None
            for item in case.service_items:
                if item.active:
                    self._must(sim, c.EndService(item.item_id, "goal met"), worker)
            for goal in case.goals:
                if goal.achieved_at is None:
                    self._must(sim, c.AchieveGoal(goal.goal_id), worker)
            self._close(
                sim, ClosureReason.SELF_RELIANT if u() < o.p_self_reliant else ClosureReason.GOALS_MET
            )
        elif u() < o.p_dropout_per_cycle:
            self._close(sim, self.dropout_reasons[self.pick_dropout()])
        else:
            self._must(sim, c.StartReassessment("scheduled review"), worker)
            self._stage(sim, self.dur["reassessment"](), self._end_reassessment)

    def _end_reassessment(self, sim: _Sim) -> None:
        worker = self._worker(sim)
        if self.u_outcome() < self.sc.outcomes.p_revise_plan:
            self._must(sim, c.RevisePlan(), worker)
            self._stage(sim, self.dur["planning"](), self._end_planning)
        else:
            self._must(sim, c.ResumeService(), worker)
            self._stage(sim, self.dur["service_cycle"](), self._review)

    # -- stages with crises and withdrawals of consent ---------------------------------------

    def _stage(self, sim: _Sim, duration: float, done: Callable[[_Sim], None]) -> None:
        """Spend ``duration`` in the current stage, unless a crisis or a withdrawal comes first."""
        crisis = self.crisis_gap()
        withdraw = self.withdraw_gap() if sim.consent and self._consent_active(sim) else math.inf
        sim.done = done
        if duration <= crisis and duration <= withdraw:
            sim.left = 0.0
            self.loop.after(duration, done, sim)
        elif crisis <= withdraw:
            sim.left = duration - crisis
            self.loop.after(crisis, self._crisis, sim)
        else:
            sim.left = duration - withdraw
            self.loop.after(withdraw, self._withdraw, sim)

    def _crisis(self, sim: _Sim) -> None:
        self._must(sim, c.DeclareCrisis("unforeseen crisis"), self._worker(sim))
        self.loop.after(self.dur["crisis"](), self._resolve, sim)

    def _resolve(self, sim: _Sim) -> None:
        self._must(sim, c.ResolveCrisis("stabilised"), self._worker(sim))
        self._stage(sim, sim.left, sim.done)

    def _withdraw(self, sim: _Sim) -> None:
        assert sim.case is not None
        consent = sim.case.active_consents(ConsentScope.SERVICE_PROVISION)[0]
        self._must(sim, c.WithdrawConsent(consent.consent_id), self._worker(sim))
        if self._state(sim) is S.CLOSED:
            self._finish(sim)
        else:
            # A statutory duty keeps the case open without consent.
            self._stage(sim, sim.left, sim.done)

    # -- closure, after-care, recurrence -------------------------------------------------------

    def _close(self, sim: _Sim, reason: ClosureReason) -> None:
        self._must(sim, c.Close(reason), self._worker(sim))
        self._finish(sim)

    def _finish(self, sim: _Sim) -> None:
        """The case leaves active work: free the caseworker, then after-care and recurrence."""
        worker = self._worker(sim)
        self._release(sim)
        self._episode_end(sim)
        case = sim.case
        assert case is not None
        if case.state is not S.CLOSED or case.closure is None:
            return
        o, u = self.sc.outcomes, self.u_outcome
        recur = self.dur["recurrence"]() if u() < o.p_recurrence else math.inf
        aftercare = math.inf
        if case.closure.reason is not ClosureReason.CONSENT_WITHDRAWN and u() < o.p_aftercare:
            start = c.StartAftercare("judged necessary at closure")
            if self._do(sim, start, worker) is None:
                aftercare = float(self.policy.time_limits.aftercare_days)
        if recur < aftercare:
            self.loop.after(recur, self._recur, sim)
        elif aftercare < math.inf:
            self.loop.after(aftercare, self._end_aftercare, (sim, recur - aftercare))

    def _end_aftercare(self, arg: tuple[_Sim, float]) -> None:
        sim, recur_after = arg
        if self._state(sim) is S.AFTERCARE:
            self._must(sim, c.CompleteAftercare(), SUPERVISOR)
        if recur_after < math.inf:
            self.loop.after(recur_after, self._recur, sim)

    def _recur(self, sim: _Sim) -> None:
        if self._state(sim) in (S.CLOSED, S.AFTERCARE):
            self._request(sim)

    # -- results ---------------------------------------------------------------------------

    def _result(self, wall: float) -> ReplicationResult:
        horizon = self.sc.horizon_days
        cases = _columns(
            "case",
            "channel",
            "arrived",
            "first_wait",
            "state",
            "closure_reason",
            "episodes",
            "statutory_ground",
            "mandatory_reports",
        )
        for sim in self.sims:
            case = sim.case
            assert case is not None
            cases["case"].append(sim.id)
            cases["channel"].append(sim.channel.value)
            cases["arrived"].append(sim.arrived)
            cases["first_wait"].append(sim.first_wait)
            cases["state"].append(case.state.value)
            cases["closure_reason"].append(case.closure.reason.value if case.closure is not None else "")
            cases["episodes"].append(case.episode)
            cases["statutory_ground"].append(
                case.statutory_override.ground.value if case.statutory_override is not None else ""
            )
            cases["mandatory_reports"].append(len(case.mandatory_reports))
            if case.state not in _FINAL:
                v = self.visits
                v["case"].append(sim.id)
                v["state"].append(case.state.value)
                v["entered"].append(sim.state_t)
                v["left"].append(_NAN)
        return ReplicationResult(
            index=self.index,
            horizon=horizon,
            warmup=self.sc.warmup_days,
            log=self.log,
            cases=cases,
            visits=self.visits,
            waits=self.waits,
            holds=self.holds,
            episodes=self.episodes,
            caseload=self.caseload,
            refusals=dict(self.refusals),
            decisions=self.decisions,
            transitions=self.transitions,
            wall_seconds=wall,
        )


def _hazard(rate: float, rng: np.random.Generator) -> Sampler:
    if rate <= 0:
        return lambda: math.inf
    return sampler(Distribution.exponential(1 / rate), rng)


def _no_channel() -> int:
    raise AssertionError("arrivals from a table carry their channel")


def _noop_sampler() -> float:
    return math.inf


def run_replication(
    scenario: Scenario,
    seed: np.random.SeedSequence | int,
    index: int = 0,
    *,
    store: CaseStore | None = None,
) -> ReplicationResult:
    """Run one replication of ``scenario`` with its own random streams from ``seed``.

    With ``store`` (e.g. an :class:`~casemgmt_core.InMemoryStore`), every decision is also
    committed there, so the simulated cases can be loaded and replayed like production ones.
    """
    check_access(scenario)
    if not isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed)
    return _Model(scenario, seed, index, store).run()
