"""The caseflow model: households move through the real lifecycle, one command at a time.

Every step of a simulated case is a command decided by :func:`casemgmt_core.decide` under the
scenario's policy, so the guards (consent, the statutory override, duplicate service,
eligibility, reports filed, closure reasons, time limits, approvals) decide exactly as in
production. Where a guard refuses, the model takes the way out the refusal names: ``select``
refused for lack of consent leads to ``decline``, refused as information-only to ``redirect``;
``decline`` refused under a statutory duty leads to ``hand_over``; an extension refused as
beyond the policy leads to closure (``maximum_duration``) or to the end of the service item.
Refusals are counted by guard and reason.

Time limits bind as in production. At the episode's time limit (``case_max`` from its start,
on the programme's calendar) a case in active work is extended by a supervisor (``extend_case``)
with the scenario's ``p_extend_case_at_limit``, else closed for ``maximum_duration``; a crisis
under way is seen through first. A service item past its limit is extended after a completed
reassessment (``extend_service``) with ``p_extend_service_at_limit``, else ended. Where the
policy requires an approval for a step, the caseworker requests it and a supervisor (or the
approving role; a case conference where the policy says so) approves it before the step.

A case holds a slot of a caseworker's caseload from assignment to its exit from active work
(closure or a screening exit); after-care does not hold a slot. A recurrence re-refers the
household: it waits for a caseworker, and is reopened by a supervisor on assignment; the new
episode starts with an empty working set, so consents, crisis factors, needs and goals are
recorded again.
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
from ..guards import APPROVAL_STEPS, NO_FACTS, Facts, Reason, case_time_limit
from ..lifecycle import ACTIVE_STATES, FINAL_STATES, allowed_events
from ..model import (
    REFERRING_BODY_CHANNELS,
    Actor,
    Agency,
    ApprovalStep,
    Case,
    CaseConference,
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
    ScreeningReason,
    ServiceItem,
    StatutoryGround,
    Strength,
)
from ..policy import ApprovalRule, Policy
from ..ports import CaseStore, Commit
from .distributions import Distribution, Sampler, categorical, sampler, uniforms
from .kernel import EventLoop, Pool
from .scenario import Scenario, ScenarioError

__all__ = [
    "ACTORS",
    "ReplicationResult",
    "SimulationFlowError",
    "check_access",
    "needed_events",
    "run_replication",
]

S = CaseState
INTAKE_OFFICER = Actor("intake-1", "intake_officer")
SUPERVISOR = Actor("supervisor-1", "supervisor")
_WORKER_ROLE = "caseworker"
OTHER_AGENCY = Agency("other-agency", "agency already managing the household")
AUTHORITY = Agency("statutory-authority", "competent authority under the statutory duty")

#: The events each simulated role issues; the scenario's policy must allow them. Where the
#: policy requires approvals, the caseworker also requests them (``request_approval``, and
#: ``schedule_conference`` / ``hold_conference`` for a conference's approval) and the approving
#: role approves (``approve``): see :func:`check_access`.
ACTORS: dict[str, frozenset[str]] = {
    INTAKE_OFFICER.role: frozenset({"open"}),
    SUPERVISOR.role: frozenset({"approve_plan", "reopen", "extend_case", "complete_aftercare"}),
    _WORKER_ROLE: frozenset(
        {
            "assign",
            "start_intake",
            "record_crisis_factor",
            "record_intake_findings",
            "record_consent",
            "invoke_override",
            "file_report",
            "complete_intake",
            "select",
            "redirect",
            "refer_to_counselling",
            "decline",
            "hand_over",
            "record_need",
            "record_strength",
            "complete_assessment",
            "set_goal",
            "link_service",
            "end_service",
            "extend_service",
            "achieve_goal",
            "start_reassessment",
            "revise_plan",
            "resume_service",
            "declare_crisis",
            "resolve_crisis",
            "withdraw_consent",
            "close",
            "start_aftercare",
        }
    ),
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
    # The reason each exit records is the one the eligibility rules find (decide fills it in).
    Reason.OUT_OF_JURISDICTION.value: lambda: c.Decline("outside the jurisdiction"),
    Reason.INFORMATION_ONLY.value: lambda: c.Redirect("information"),
    Reason.NOT_COMPLEX.value: lambda: c.Redirect("single service"),
    Reason.TARGET_RULE_UNMET.value: lambda: c.Redirect("programme target rule"),
    Reason.COUNSELLING_ONLY.value: c.ReferToCounselling,
    Reason.CONSENT_MISSING.value: lambda: c.Decline("no consent and no statutory basis"),
    Reason.MANAGED_ELSEWHERE.value: lambda: c.HandOver(OTHER_AGENCY),
}
_FINAL = frozenset(FINAL_STATES)
#: Where the episode's time limit binds (crisis intervention is seen through first).
_LIMITED = frozenset(ACTIVE_STATES)
#: Where a case cannot be closed: a case at its limit there leaves screening instead.
_BEFORE_SELECTION = frozenset((CaseState.INTAKE, CaseState.SCREENING))
_DAY = dt.timedelta(days=1)
# Plain strings for the log: an enum's ``.value`` is a descriptor call, and the log is hot.
_VALUE: dict[CaseState | None, str] = {None: "", **{s: str(s.value) for s in CaseState}}
_NAN = math.nan


class SimulationFlowError(RuntimeError):
    """The model issued a command the rules refused and has no way out for (a bug in the model)."""


def _approver(rule: ApprovalRule) -> Actor:
    """Who approves under ``rule``: the supervisor where the rule allows, else its first role."""
    if SUPERVISOR.role in rule.approved_by:
        return SUPERVISOR
    return Actor("approver-1", min(rule.approved_by))


def needed_events(policy: Policy) -> dict[str, frozenset[str]]:
    """The events each role issues in a simulation under ``policy`` (:data:`ACTORS`, and what
    the approvals the policy requires take)."""
    needed = {role: set(events) for role, events in ACTORS.items()}
    for rule in policy.approvals.values():
        needed[_WORKER_ROLE].add("request_approval")
        needed.setdefault(_approver(rule).role, set()).add("approve")
        if rule.by_conference:
            needed[_WORKER_ROLE] |= {"schedule_conference", "hold_conference"}
    return {role: frozenset(events) for role, events in needed.items()}


def check_access(scenario: Scenario) -> None:
    """Raise :class:`ScenarioError` if the scenario's policy denies a role an event the model issues."""
    access = scenario.policy.access
    denied = sorted(
        f"role {role!r} may not {event!r}"
        for role, events in needed_events(scenario.policy).items()
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
    ``episodes`` has one row per episode: ``start``, ``end``, ``limit`` (the policy's time
    limit, ``case_max`` from the start on the programme's calendar), ``extended_to`` (the limit
    after the extensions), ``extensions`` and ``closure_reason`` (empty unless closed).
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
        "gen",
        "ground",
        "hold_row",
        "id",
        "info_only",
        "left",
        "limit_day",
        "seq",
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
        self.left = 0.0
        self.gen = 0
        """Counts the steps of active work scheduled: a step runs only if it is the latest."""
        self.limit_day = math.inf
        """The episode's time limit, in days from the scenario's start."""
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
_STREAMS = ("arrivals", "channel", "household", "factors", "outcome", "hazard", *_DURATIONS, "limits")


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
        self.u_limits = uniforms(rng["limits"])
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
        self.episodes = _columns(
            "case", "episode", "start", "end", "limit", "extended_to", "extensions", "closure_reason"
        )
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
        at = self.start + now * _DAY
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

    def _approved(self, sim: _Sim, command: c.Command, actor: Actor, requester: Actor) -> str | None:
        """Decide ``command``, first obtaining the approval the policy requires for its step:
        ``requester`` asks, the approving role approves. Where the policy has a case conference
        decide, one is held for it, or, where the case's stage holds none (after closure), the
        latest one held is cited. Returns the first refusal's reason, or None."""
        step = APPROVAL_STEPS[command.event]
        rule = self.policy.approval_rule(step)
        if rule is None:
            return self._do(sim, command, actor)
        subject = getattr(command, "item_id", "") if step is ApprovalStep.SERVICE_EXTENSION else ""
        approval_id = sim.next_id("A")
        request = c.RequestApproval(approval_id, step, subject, "as the model's rules decide")
        refused = self._do(sim, request, requester)
        conference_id = None
        if refused is None and rule.by_conference:
            conference_id, refused = self._conference(sim, f"{step.value} approved", requester)
        if refused is None:
            refused = self._do(sim, c.Approve(approval_id, conference_id=conference_id), _approver(rule))
        if refused is not None:
            return refused
        return self._do(sim, command, actor)

    def _conference(self, sim: _Sim, decisions: str, worker: Actor) -> tuple[str | None, str | None]:
        """``(conference id, refusal)``: a case conference held now, or the latest one held."""
        case = sim.case
        assert case is not None
        if "schedule_conference" not in allowed_events(case.state):
            held = [x.conference_id for x in case.conferences if x.held]
            return (held[-1] if held else None), None
        conference_id = sim.next_id("C")
        conference = CaseConference(conference_id, self._at(), (worker.id,))
        refused = self._do(sim, c.ScheduleConference(conference), worker)
        if refused is None:
            refused = self._do(sim, c.HoldConference(conference_id, decisions), worker)
        return conference_id, refused

    def _at(self) -> dt.datetime:
        return self.start + self.loop.now * _DAY

    def _days(self, at: dt.datetime) -> float:
        """``at`` in days from the scenario's start."""
        return (at - self.start) / _DAY

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
        at = self._at()
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
        case = sim.case
        assert case is not None
        e = self.episodes
        sim.episode_row = len(e["case"])
        e["case"].append(sim.id)
        e["episode"].append(case.episode)
        e["start"].append(self.loop.now)
        e["end"].append(_NAN)
        limit = self._days(case_time_limit(case, self.policy))
        e["limit"].append(limit)
        e["extended_to"].append(limit)
        e["extensions"].append(0)
        e["closure_reason"].append("")
        if case.state not in _FINAL:
            self._watch_limit(sim)

    def _episode_end(self, sim: _Sim) -> None:
        case = sim.case
        assert case is not None
        row = sim.episode_row
        self.episodes["end"][row] = self.loop.now
        if case.closure is not None:
            self.episodes["closure_reason"][row] = case.closure.reason.value

    # -- time limits ---------------------------------------------------------------------------

    def _watch_limit(self, sim: _Sim) -> None:
        """Look at the case again at its episode's time limit (as the case holds it now)."""
        case = sim.case
        assert case is not None
        sim.limit_day = self._days(case_time_limit(case, self.policy))
        self.loop.at(sim.limit_day, self._on_limit, (sim, case.episode, sim.limit_day))

    def _on_limit(self, arg: tuple[_Sim, int, float]) -> None:
        sim, episode, day = arg
        case = sim.case
        assert case is not None
        # A case waiting for a caseworker is seen to when work starts, one in crisis intervention
        # when the crisis is resolved; a case that left active work, or was extended, is done.
        if case.episode == episode and day == sim.limit_day and case.state in _LIMITED:
            self._at_limit(sim)

    def _at_limit(self, sim: _Sim) -> bool:
        """The episode reached its time limit in active work: a supervisor extends it (with the
        scenario's probability, as far as the engine allows), or it ends: closed for
        ``maximum_duration``, or, not yet selected, declined. Returns whether the case goes on."""
        worker = self._worker(sim)
        if self.u_limits() < self.sc.outcomes.p_extend_case_at_limit:
            extend = c.ExtendCase("the family still needs integrated case management")
            if self._approved(sim, extend, SUPERVISOR, worker) is None:
                self._watch_limit(sim)
                case = sim.case
                assert case is not None
                self.episodes["extended_to"][sim.episode_row] = sim.limit_day
                self.episodes["extensions"][sim.episode_row] = case.case_extensions
                return True
        sim.gen += 1  # the step under way is not taken
        if self._state(sim) in _BEFORE_SELECTION:
            grounds = "the episode reached its time limit before screening ended"
            self._exit(sim, c.Decline(grounds, ScreeningReason.OTHER), worker)
        else:
            self._close(sim, ClosureReason.MAXIMUM_DURATION)
        return False

    def _limit_reached(self, sim: _Sim) -> bool:
        return self.loop.now >= sim.limit_day

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
        if sim.consent:
            # A new episode asks again for the consents the policy has lapse on reopening.
            for scope in (ConsentScope.SERVICE_PROVISION, ConsentScope.PERSONAL_DATA):
                self._consent(sim, scope, worker)
        if (
            sim.ground is not None
            and not reopening
            and self._do(sim, c.InvokeStatutoryOverride(sim.ground), worker) is None
        ):
            # The model delivers the report at once: the outbox's confirmation is a fact here.
            delivered = Facts(report_delivered_at=self._at())
            self._must(sim, c.FileMandatoryReport(sim.ground, f"{sim.id}-report"), worker, delivered)
        if self._limit_reached(sim) and not self._at_limit(sim):
            return  # the wait for a caseworker took the whole episode
        self._stage(sim, self.dur["intake"](), self._end_intake)

    def _consent(self, sim: _Sim, scope: ConsentScope, worker: Actor, agency: Agency | None = None) -> None:
        """Record the household's consent of ``scope`` (for ``agency``), unless one is in force."""
        case = sim.case
        assert case is not None
        agency_id = agency.id if agency is not None else None
        if any(x.agency_id == agency_id for x in case.active_consents(scope)):
            return
        consent_id = sim.next_id(f"{scope.value}-{case.episode}-")
        consent = Consent(consent_id, scope, "adult", ConsentGiver.PERSON, "adult", self._at(), agency_id)
        self._must(sim, c.RecordConsent(consent), worker)

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
        self._exit(sim, exit_for(), worker)

    def _exit(self, sim: _Sim, command: c.Command, worker: Actor) -> None:
        """Leave before selection by ``command``; under a statutory duty, by a hand-over to the
        competent authority."""
        refused = self._do(sim, command, worker)
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
        open_needs = {n for g in case.current_goals if g.open for n in g.need_ids}
        for need in case.needs:
            if need.need_id not in open_needs:
                need_ids = (need.need_id,)
                goal = Goal(sim.next_id("G"), f"{need.domain.value} need met", need_ids)
                self._must(sim, c.SetGoal(goal), worker)
        if self._approved(sim, c.ApprovePlan(), SUPERVISOR, worker) is not None:
            raise SimulationFlowError(f"case {sim.id}: the plan's approval was refused")
        at = self._at()
        assert sim.case is not None
        served = {s.need_id for s in sim.case.service_items if s.active}
        for need in sim.case.needs:
            if need.need_id in served:
                continue
            provider = _PROVIDERS[need.domain]
            if sim.consent and self._consent_active(sim):
                self._consent(sim, ConsentScope.SHARING, worker, provider)
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
        o, u = self.sc.outcomes, self.u_outcome
        if u() < o.p_goals_met_per_cycle:
            case = sim.case
            assert case is not None
            for item in case.service_items:
                if item.active:
                    self._must(sim, c.EndService(item.item_id, "goal met"), worker)
            for goal in case.current_goals:
                if goal.open:
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
        revise = self.u_outcome() < self.sc.outcomes.p_revise_plan
        self._must(sim, c.RevisePlan() if revise else c.ResumeService(), worker)
        self._service_limits(sim, worker)
        if revise:
            self._stage(sim, self.dur["planning"](), self._end_planning)
        else:
            self._stage(sim, self.dur["service_cycle"](), self._review)

    def _service_limits(self, sim: _Sim, worker: Actor) -> None:
        """After a reassessment, each service item past its time limit is extended (with the
        scenario's probability, as far as the engine allows) or ended: the family takes over."""
        case = sim.case
        assert case is not None
        at = self._at()
        p = self.sc.outcomes.p_extend_service_at_limit
        for item in case.service_items:
            if not item.active or item.time_limit is None or item.time_limit > at:
                continue
            if self.u_limits() < p:
                extend = c.ExtendService(item.item_id, "reassessed: the need is not met yet")
                if self._approved(sim, extend, worker, worker) is None:
                    continue
            self._must(sim, c.EndService(item.item_id, "time limit reached"), worker)

    # -- stages with crises and withdrawals of consent ---------------------------------------

    def _later(self, sim: _Sim, delay: float, step: Callable[[_Sim], None]) -> None:
        """Take ``step`` after ``delay``, unless another step of active work is scheduled first."""
        sim.gen += 1
        self.loop.after(delay, self._step, (sim, sim.gen, step))

    def _step(self, arg: tuple[_Sim, int, Callable[[_Sim], None]]) -> None:
        sim, gen, step = arg
        if gen == sim.gen:
            step(sim)

    def _stage(self, sim: _Sim, duration: float, done: Callable[[_Sim], None]) -> None:
        """Spend ``duration`` in the current stage, unless a crisis or a withdrawal comes first."""
        crisis = self.crisis_gap()
        withdraw = self.withdraw_gap() if sim.consent and self._consent_active(sim) else math.inf
        sim.done = done
        if duration <= crisis and duration <= withdraw:
            sim.left = 0.0
            self._later(sim, duration, done)
        elif crisis <= withdraw:
            sim.left = duration - crisis
            self._later(sim, crisis, self._crisis)
        else:
            sim.left = duration - withdraw
            self._later(sim, withdraw, self._withdraw)

    def _crisis(self, sim: _Sim) -> None:
        self._must(sim, c.DeclareCrisis("unforeseen crisis"), self._worker(sim))
        self._later(sim, self.dur["crisis"](), self._resolve)

    def _resolve(self, sim: _Sim) -> None:
        self._must(sim, c.ResolveCrisis("stabilised"), self._worker(sim))
        if self._limit_reached(sim) and not self._at_limit(sim):
            return  # the time limit passed during the crisis intervention
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
        worker = self._worker(sim)
        refused = self._approved(sim, c.Close(reason), worker, worker)
        if refused is not None:
            raise SimulationFlowError(f"case {sim.id}: closing for {reason.value!r} was refused ({refused})")
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
        reason = case.closure.reason
        o, u = self.sc.outcomes, self.u_outcome
        recurs = u() < o.p_recurrence
        # A case closed on the client's death is not reopened (the rules refuse it).
        recur = self.dur["recurrence"]() if recurs and reason is not ClosureReason.DEATH else math.inf
        aftercare = math.inf
        # After-care only follows the closures the policy names (goals met, ... by default).
        if reason in self.policy.episodes.aftercare_after and u() < o.p_aftercare:
            start = c.StartAftercare("judged necessary at closure")
            if self._approved(sim, start, worker, worker) is None:
                plan = sim.case.aftercare if sim.case is not None else None
                assert plan is not None
                aftercare = self._days(plan.until) - self.loop.now
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
