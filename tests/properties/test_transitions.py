"""Stateful property tests of ``CaseManager``, and the scripted tour that feeds the coverage gate.

The state machine drives the service with random households (adults, minors with or without a
recorded guardian, regions), referrals, consents from right and wrong givers, abuse reports and
statutory overrides, another agency's records (an :class:`InMemoryRegistry` it mutates), actors
of every role (one in no access rule), an advancing clock and command sequences: some that push
a case forward, some chosen among the events of its stage, some anything at all. After every
step the invariants in :class:`~tests.properties.harness.Harness` hold. It runs against the
in-memory store, SQLite and PostgreSQL.

The tour walks every transition of the reference model (:mod:`tests.properties.reference`) and
provokes every guard outcome on purpose, so that the coverage gate does not depend on luck.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from casemgmt_core import commands as c
from casemgmt_core.adapters.memory import InMemoryStore
from casemgmt_core.adapters.postgresql import PostgresStore
from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.errors import CaseManagementError, TransitionRefused
from casemgmt_core.model import (
    Actor,
    Agency,
    Case,
    CaseConference,
    ClosureReason,
    Consent,
    ConsentGiver,
    ConsentScope,
    CrisisFactor,
    Goal,
    Household,
    JournalKind,
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
from casemgmt_core.ports import CaseStore

from . import reference
from .builders import (
    POLICIES,
    PROVIDERS,
    ROLES,
    SERVICES,
    T0,
    Draw,
    Maker,
    chance,
    choose,
    households,
    referrals,
    role_for,
)
from .harness import Harness

# -- the state machine ------------------------------------------------------------------------


def forward(m: Maker, case: Case) -> list[c.Command]:
    """Commands that take ``case`` on to a next stage by the ordinary path (one branch drawn)."""
    draw, state = m.draw, case.state.value
    svc, data = ConsentScope.SERVICE_PROVISION, ConsentScope.PERSONAL_DATA
    if state == "referred":
        return [choose(draw, [c.StartIntake()] * 5 + [c.HandOver(Agency("other-centre"))])]
    if state == "intake":
        factors = draw(st.lists(st.sampled_from(list(CrisisFactor)), min_size=1, max_size=3, unique=True))
        return [
            *(c.RecordCrisisFactor(f) for f in factors),
            c.RecordConsent(m.consent(case, svc)),
            c.RecordConsent(m.consent(case, data)),
            c.CompleteIntake(),
        ]
    if state == "screening":
        exits = [c.Redirect("job_placement"), c.ReferToCounselling(), c.Decline("refused")]
        return [choose(draw, [c.Select()] * 9 + exits)]
    if state == "assessment":
        need = m.new("N")
        return [
            c.RecordNeed(Need(need, NeedDomain.HEALTH)),
            c.RecordStrength(Strength("kin")),
            c.CompleteAssessment(),
        ]
    if state == "planning":
        needs = [n.need_id for n in case.needs]
        return [c.SetGoal(Goal(m.new("G"), "stable income", needs[:1])), c.ApprovePlan()]
    if state == "service":
        provider = choose(draw, PROVIDERS)
        share = m.consent(case, ConsentScope.SHARING)
        share = Consent(
            share.consent_id, share.scope, share.given_by, share.giver, share.subject_id, m.now, provider.id
        )
        item = m.service_item(case, case.needs[0].need_id if case.needs else "N-none")
        item = ServiceItem(item.item_id, item.need_id, item.service, provider, item.resource, item.start)
        options = [
            [c.RecordConsent(share), c.LinkService(item)],
            [c.StartReassessment("review")],
            [c.Close(ClosureReason.GOALS_MET)],
            [c.DeclareCrisis("eviction")],
        ]
        return choose(draw, options)
    if state == "reassessment":
        return [choose(draw, [c.ResumeService(), c.RevisePlan(), c.Close(ClosureReason.SELF_RELIANT)])]
    if state == "crisis":
        return [
            choose(
                draw, [c.ResolveCrisis("calm"), c.ResolveCrisis("calm"), c.Close(ClosureReason.UNREACHABLE)]
            )
        ]
    if state == "closed":
        return [choose(draw, [c.StartAftercare("fragile"), c.Reopen("recurrence")])]
    if state == "aftercare":
        return [choose(draw, [c.CompleteAftercare(), c.Reopen("recurrence")])]
    return []


class CaseManagementMachine(RuleBasedStateMachine):
    """Random households and commands against one store; subclasses choose the store."""

    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.h: Harness | None = None
        self.ids = itertools.count(1)

    def open_store(self) -> CaseStore:
        return InMemoryStore()

    def close_store(self, store: CaseStore) -> None:
        store.close()  # type: ignore[attr-defined]

    def teardown(self) -> None:
        if self.h is not None:
            self.close_store(self.h.store)

    @property
    def harness(self) -> Harness:
        assert self.h is not None
        return self.h

    def has_cases(self) -> bool:
        return self.h is not None and bool(self.h.cases)

    def maker(self, draw: Draw) -> Maker:
        return Maker(draw, self.harness.now, self.ids)

    def actor(self, draw: Draw, event: str) -> Actor:
        role = choose(draw, ROLES) if chance(draw, 8) else role_for(event)
        return Actor(f"{role}-1", role)

    def pick_case(self, draw: Draw) -> tuple[str, Case]:
        case_id = choose(draw, self.harness.cases)
        return case_id, self.harness.store.load(case_id)

    @initialize(policy=st.sampled_from(sorted(POLICIES)), first=households("H1"), data=st.data())
    def start(self, policy: str, first: Household, data: st.DataObject) -> None:
        """Every run starts with a programme and one referred household (so that case rules run)."""
        self.h = Harness(
            self.open_store(),
            POLICIES[policy],
            source=f"machine:{self.backend}",
            prefix=uuid.uuid4().hex[:8] + "-",
        )
        self.h.open(first, Referral(ReferralChannel.WALK_IN, self.h.now), Actor("caseworker-1", "caseworker"))

    @rule(household=households(), data=st.data())
    def refer(self, household: Household, data: st.DataObject) -> None:
        referral = data.draw(referrals(self.harness.now))
        self.harness.open(household, referral, self.actor(data.draw, "open"))

    @rule(days=st.sampled_from([0.5, 1, 7, 30, 120, 400]))
    def time_passes(self, days: float) -> None:
        self.harness.advance(days)

    @rule(household=st.sampled_from(["H2", "H3"]), managed=st.booleans())
    def another_agency(self, household: str, managed: bool) -> None:
        hid = self.harness.prefix + household
        if managed:
            self.harness.registry.add_managed(hid, Agency("dream-start", "드림스타트"))
        else:
            self.harness.registry.managed.pop(hid, None)

    @precondition(has_cases)
    @rule(data=st.data())
    def provider_elsewhere(self, data: st.DataObject) -> None:
        _, case = self.pick_case(data.draw)
        if case.needs:
            need = choose(data.draw, case.needs)
            self.harness.registry.add_service(
                case.household_id, need.need_id, choose(data.draw, SERVICES), choose(data.draw, PROVIDERS)
            )

    @precondition(has_cases)
    @rule(data=st.data(), stages=st.integers(1, 8))
    def push_forward(self, data: st.DataObject, stages: int) -> None:
        """Take a case through up to ``stages`` stages by the ordinary path, stopping at a refusal."""
        case_id, case = self.pick_case(data.draw)
        for _ in range(stages):
            for command in forward(self.maker(data.draw), case):
                role = role_for(command.event)
                outcome = self.harness.run(case_id, command, Actor(f"{role}-1", role))
                if not isinstance(outcome, Case):
                    return
                case = outcome

    @precondition(has_cases)
    @rule(data=st.data())
    def stage_event(self, data: st.DataObject) -> None:
        case_id, case = self.pick_case(data.draw)
        events = sorted(e for (s, e) in reference._BY_KEY if s == case.state.value)
        if not events:
            events = sorted(c.COMMAND_TYPES.keys() - {"open"})
        event = choose(data.draw, events)
        command = self.maker(data.draw).build(event, case, valid=not chance(data.draw, 6))
        if command is not None:
            self.harness.run(case_id, command, self.actor(data.draw, event))

    @precondition(has_cases)
    @rule(data=st.data())
    def anything(self, data: st.DataObject) -> None:
        case_id, case = self.pick_case(data.draw)
        event = choose(data.draw, sorted(c.COMMAND_TYPES.keys() - {"open"}))
        command = self.maker(data.draw).build(event, case, valid=chance(data.draw, 2))
        if command is not None:
            self.harness.run(case_id, command, Actor("x-1", choose(data.draw, ROLES)))

    @precondition(has_cases)
    @rule(data=st.data(), ground=st.sampled_from(StatutoryGround), file=st.booleans())
    def abuse_reported(self, data: st.DataObject, ground: StatutoryGround, file: bool) -> None:
        case_id, _ = self.pick_case(data.draw)
        worker = Actor("caseworker-1", "caseworker")
        outcome = self.harness.run(case_id, c.InvokeStatutoryOverride(ground), worker)
        if file and not isinstance(outcome, Exception):
            self.harness.run(case_id, c.FileMandatoryReport(ground, f"REF-{next(self.ids)}"), worker)

    @rule(up=st.booleans())
    def receiver(self, up: bool) -> None:
        """The authorities' receiver goes down or comes back; the outbox is then relayed."""
        self.harness.receiver.up = up
        self.harness.manager.deliver_pending(limit=1000)

    @invariant()
    def invariants_hold(self) -> None:
        if self.h is not None:
            self.h.check()


def _budget(divisor: int) -> settings:
    base = settings.default
    return settings(base, max_examples=max(5, base.max_examples // divisor), deadline=None)


@pytest.mark.coverage_source("machine:memory")
def test_machine_in_memory() -> None:
    run_state_machine_as_test(CaseManagementMachine, settings=_budget(1))


@pytest.mark.coverage_source("machine:sqlite")
def test_machine_sqlite(tmp_path: Path) -> None:
    class SQLiteMachine(CaseManagementMachine):
        backend = "sqlite"

        def open_store(self) -> CaseStore:
            return SQLiteStore(tmp_path / f"{uuid.uuid4().hex}.db", synchronous="NORMAL")

    run_state_machine_as_test(SQLiteMachine, settings=_budget(4))


@pytest.fixture
def postgres_store(postgres_conninfo: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_conninfo)
    yield store
    store.close()


@pytest.mark.coverage_source("machine:postgresql")
def test_machine_postgresql(postgres_store: PostgresStore) -> None:
    class PostgresMachine(CaseManagementMachine):
        """One schema for the whole test; each run keeps to its own id prefix."""

        backend = "postgresql"

        def open_store(self) -> CaseStore:
            return postgres_store

        def close_store(self, store: CaseStore) -> None:
            pass

    run_state_machine_as_test(PostgresMachine, settings=_budget(6))


# -- the scripted tour --------------------------------------------------------------------------

WORKER = Actor("caseworker-1", "caseworker")
LEAD = Actor("supervisor-1", "supervisor")
FAMILY = Household(
    "H",
    (
        Member("a0", dt.date(1984, 4, 1), relation="mother"),
        Member("m0", dt.date(2016, 6, 1), relation="son", guardian_id="a0"),
    ),
    "R1",
)


def _consent(consent_id: str, scope: ConsentScope, agency: str | None = None) -> Consent:
    return Consent(consent_id, scope, "a0", ConsentGiver.PERSON, "a0", T0, agency)


def _item(item_id: str, service: str, provider: Agency, days: int | None = None) -> ServiceItem:
    limit = None if days is None else T0 + dt.timedelta(days=days)
    return ServiceItem(item_id, "N1", service, provider, ResourceKind.FORMAL, T0, limit)


TO_INTAKE: list[c.Command] = [c.StartIntake()]
INTAKE_DONE: list[c.Command] = [
    *TO_INTAKE,
    c.RecordCrisisFactor(CrisisFactor.JOB_LOSS),
    c.RecordCrisisFactor(CrisisFactor.DEBT),
]
TO_SCREENING: list[c.Command] = [
    *INTAKE_DONE,
    c.RecordConsent(_consent("svc", ConsentScope.SERVICE_PROVISION)),
    c.RecordConsent(_consent("data", ConsentScope.PERSONAL_DATA)),
    c.CompleteIntake(),
]
TO_ASSESSMENT: list[c.Command] = [*TO_SCREENING, c.Select()]
TO_PLANNING: list[c.Command] = [
    *TO_ASSESSMENT,
    c.RecordNeed(Need("N1", NeedDomain.EMPLOYMENT)),
    c.CompleteAssessment(),
]
TO_SERVICE: list[c.Command] = [
    *TO_PLANNING,
    c.SetGoal(Goal("G1", "back in work", ("N1",))),
    c.ApprovePlan(),
    c.RecordConsent(_consent("share-job", ConsentScope.SHARING, "p-job")),
    c.LinkService(_item("S1", "job_placement", PROVIDERS[0])),
]
TO_REASSESSMENT: list[c.Command] = [*TO_SERVICE, c.StartReassessment("goals changed")]
TO_CRISIS: list[c.Command] = [*TO_SERVICE, c.DeclareCrisis("eviction notice")]
TO_CLOSED: list[c.Command] = [*TO_SERVICE, c.Close(ClosureReason.GOALS_MET)]
TO_AFTERCARE: list[c.Command] = [*TO_CLOSED, c.StartAftercare("fragile after closure")]
PATHS: dict[str, list[c.Command]] = {
    "referred": [],
    "intake": TO_INTAKE,
    "screening": TO_SCREENING,
    "assessment": TO_ASSESSMENT,
    "planning": TO_PLANNING,
    "service": TO_SERVICE,
    "reassessment": TO_REASSESSMENT,
    "crisis": TO_CRISIS,
    "closed": TO_CLOSED,
    "aftercare": TO_AFTERCARE,
}


class Tour:
    """One case in a fresh in-memory store, driven step by step with the invariants checked."""

    def __init__(self, *, policy: str = "default", household: Household = FAMILY) -> None:
        self.h = Harness(InMemoryStore(), POLICIES[policy], source="tour")
        opened = self.h.open(household, Referral(ReferralChannel.WALK_IN, T0), WORKER)
        assert isinstance(opened, Case), opened
        self.case_id = opened.case_id
        self.h.check()

    @property
    def case(self) -> Case:
        return self.h.store.load(self.case_id)

    def outcome(self, command: c.Command) -> Case | CaseManagementError:
        actor = LEAD if command.event in ("approve_plan", "reopen", "confirm_override") else WORKER
        result = self.h.run(self.case_id, command, actor)
        self.h.check()
        return result

    def go(self, *commands: c.Command) -> Case:
        for command in commands:
            result = self.outcome(command)
            assert isinstance(result, Case), f"{command.event} in {self.case.state}: {result}"
        return self.case

    def refuse(self, command: c.Command, guard: str, reason: str) -> None:
        result = self.outcome(command)
        assert isinstance(result, TransitionRefused), f"{command.event} was not refused: {result}"
        assert (result.guard, result.reason) == (guard, reason)


Recipe = Callable[[Tour], c.Command]


def _then(*setup: c.Command, command: c.Command) -> Recipe:
    def make(t: Tour) -> c.Command:
        t.go(*setup)
        return command

    return make


def _close(t: Tour) -> c.Command:
    ok = t.case.state.value in ("service", "reassessment")
    return c.Close(ClosureReason.GOALS_MET if ok else ClosureReason.UNREACHABLE)


def _end(t: Tour) -> c.Command:
    if t.case.service_item("S1") is None:
        t.go(
            c.RecordConsent(_consent("share-school", ConsentScope.SHARING, "p-school")),
            c.LinkService(_item("S9", "tutoring", PROVIDERS[2])),
        )
        return c.EndService("S9", "done")
    return c.EndService("S1", "done")


RECIPES: dict[str, Recipe] = {
    "start_intake": lambda t: c.StartIntake(),
    "hand_over": lambda t: c.HandOver(Agency("child-protection", "아동보호전문기관")),
    "complete_intake": _then(c.RecordCrisisFactor(CrisisFactor.ILLNESS), command=c.CompleteIntake()),
    "select": lambda t: c.Select(),
    "redirect": lambda t: c.Redirect("emergency_livelihood"),
    "refer_to_counselling": lambda t: c.ReferToCounselling(),
    "decline": lambda t: c.Decline("the household refused"),
    "complete_assessment": _then(c.RecordNeed(Need("N1", NeedDomain.HEALTH)), command=c.CompleteAssessment()),
    "approve_plan": _then(c.SetGoal(Goal("G9", "work")), command=c.ApprovePlan()),
    "start_reassessment": lambda t: c.StartReassessment("needs changed"),
    "revise_plan": lambda t: c.RevisePlan(),
    "resume_service": lambda t: c.ResumeService(),
    "declare_crisis": lambda t: c.DeclareCrisis("hospitalised"),
    "close": _close,
    "start_aftercare": lambda t: c.StartAftercare("fragile after closure"),
    "complete_aftercare": lambda t: c.CompleteAftercare(),
    "reopen": lambda t: c.Reopen("the crisis came back"),
    "assign": lambda t: c.AssignCaseworker("worker-2"),
    "record_crisis_factor": lambda t: c.RecordCrisisFactor(CrisisFactor.ISOLATION),
    "record_intake_findings": lambda t: c.RecordIntakeFindings(wanted_change="stable housing"),
    "record_consent": lambda t: c.RecordConsent(_consent("share-x", ConsentScope.SHARING, "x")),
    "invoke_override": lambda t: c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE),
    "confirm_override": _then(
        c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE), command=c.ConfirmStatutoryOverride()
    ),
    "file_report": _then(
        c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE),
        command=c.FileMandatoryReport(StatutoryGround.CHILD_ABUSE, "POL-2026-1"),
    ),
    "record_need": lambda t: c.RecordNeed(Need("N9", NeedDomain.LEGAL)),
    "record_strength": lambda t: c.RecordStrength(Strength("a helpful neighbour")),
    "set_goal": lambda t: c.SetGoal(Goal("G9", "pay off the debt")),
    "achieve_goal": lambda t: c.AchieveGoal("G1"),
    "schedule_conference": lambda t: c.ScheduleConference(CaseConference("CC9", T0, ("lead-1",))),
    "hold_conference": _then(
        c.ScheduleConference(CaseConference("CC9", T0, ("lead-1",), ("school-7",))),
        command=c.HoldConference("CC9", "tutoring agreed with the school"),
    ),
    "link_service": _then(
        c.RecordConsent(_consent("share-school", ConsentScope.SHARING, "p-school")),
        command=c.LinkService(_item("S9", "tutoring", PROVIDERS[2])),
    ),
    "end_service": _end,
    "record_journal": lambda t: c.RecordJournal(JournalKind.NEW_FINDING, "new debts found"),
}


def _tour_one(source: str, event: str, dest: str) -> None:
    if event == "resolve_crisis":
        t = Tour()
        t.go(*PATHS[dest], c.DeclareCrisis("sudden hospitalisation"))
        command: c.Command = c.ResolveCrisis("stable again")
    elif event == "withdraw_consent":
        t = Tour()
        t.go(*PATHS[source])
        if dest == source:
            t.go(c.RecordConsent(_consent("data-late", ConsentScope.PERSONAL_DATA)))
            command = c.WithdrawConsent("data-late")
        else:
            if t.case.consents == ():
                t.go(c.RecordConsent(_consent("svc", ConsentScope.SERVICE_PROVISION)))
            command = c.WithdrawConsent("svc")
    else:
        t = Tour(policy="supervised" if event == "confirm_override" else "default")
        t.go(*PATHS[source])
        command = RECIPES[event](t)
    assert t.case.state.value == source
    before = t.case.version
    after = t.go(command)
    last = t.h.store.events(t.case_id)[-1]
    assert (last.source.value if last.source else None, last.event, last.target.value) == (
        source,
        event,
        dest,
    )
    assert (after.state.value, after.version) == (dest, before + 1)


def _moves() -> list[tuple[str, str, str]]:
    return sorted((s, e, d) for (s, e, d) in reference.triples() if s is not None)


@pytest.mark.coverage_source("tour")
def test_tour_walks_every_transition_of_the_reference_model() -> None:
    """Opening, then each (source, event, destination) of the reference model, each from a fresh case."""
    Tour()
    for source, event, dest in _moves():
        try:
            _tour_one(source, event, dest)
        except AssertionError as error:
            raise AssertionError(f"{source} --{event}--> {dest}: {error}") from error


def _override_instead_of_consent() -> None:
    """A statutory override allows what consent would: each consent guard says so."""
    t = Tour()
    t.go(
        *INTAKE_DONE,
        c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE),
        c.FileMandatoryReport(StatutoryGround.CHILD_ABUSE, "POL-1"),
        c.CompleteIntake(),
        c.Select(),
        c.RecordNeed(Need("N1", NeedDomain.HEALTH)),
        c.CompleteAssessment(),
        c.SetGoal(Goal("G1", "safety plan", ("N1",))),
        c.ApprovePlan(),
        c.LinkService(_item("S1", "counselling", PROVIDERS[1])),
    )
    history = t.h.store.events(t.case_id)
    basis = t.case.statutory_override.legal_basis  # type: ignore[union-attr]
    assert all(
        e.legal_basis == basis for e in history if e.event in ("select", "link_service", "approve_plan")
    )


def _managed_elsewhere() -> None:
    t = Tour()
    t.go(*TO_SCREENING)
    t.h.registry.add_managed(t.case.household_id, Agency("dream-start", "드림스타트"))
    t.refuse(c.Select(), "not_managed_elsewhere", "managed_elsewhere")
    t.go(c.HandOver(Agency("dream-start")))


def _service_twice() -> None:
    t = Tour()
    t.go(*TO_SERVICE)
    t.refuse(
        c.LinkService(_item("S2", "job_placement", PROVIDERS[0])),
        "service_not_duplicated",
        "service_already_linked",
    )
    t.go(c.RecordConsent(_consent("share-health", ConsentScope.SHARING, "p-health")))
    t.h.registry.add_service(t.case.household_id, "N1", "tutoring", PROVIDERS[2])
    t.refuse(
        c.LinkService(_item("S3", "tutoring", PROVIDERS[1])),
        "service_not_duplicated",
        "service_already_linked",
    )
    t.refuse(
        c.LinkService(_item("S4", "job_coaching", PROVIDERS[1], 400)),
        "within_time_limit",
        "time_limit_exceeds_policy",
    )
    t.refuse(c.LinkService(_item("S5", "rent", Agency("p-housing"))), "sharing_consent", "consent_missing")


def _closed_by(reason: ClosureReason) -> Tour:
    t = Tour()
    t.go(*TO_SERVICE, c.Close(reason))
    return t


def _refusals() -> Iterator[None]:
    """Each refusal reason of each guard, provoked on purpose."""
    t = Tour()
    t.go(*TO_INTAKE)
    t.refuse(c.CompleteIntake(), "crisis_factors_recorded", "no_crisis_factors")
    minor_as_person = Consent("k-m0", ConsentScope.SERVICE_PROVISION, "m0", ConsentGiver.PERSON, "m0", T0)
    t.refuse(c.RecordConsent(minor_as_person), "valid_consent_giver", "consent_giver_invalid")
    t.refuse(c.InvokeStatutoryOverride(StatutoryGround.ELDER_ABUSE), "ground_enabled", "ground_not_enabled")
    t.refuse(
        c.FileMandatoryReport(StatutoryGround.CHILD_ABUSE, "POL-9"), "report_pending", "no_pending_report"
    )
    t.go(c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE))
    t.refuse(c.HandOver(Agency("child-protection")), "reports_filed", "mandatory_report_pending")
    t.refuse(c.ConfirmStatutoryOverride(), "override_awaiting_confirmation", "no_override_to_confirm")
    yield

    # the report is filed only after delivery; the override only where the ground protects someone
    t = Tour()
    t.h.receiver.up = False
    t.go(*TO_INTAKE, c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE))
    t.refuse(
        c.FileMandatoryReport(StatutoryGround.CHILD_ABUSE, "POL-8"),
        "report_delivered",
        "report_not_delivered",
    )
    t.h.receiver.up = True
    t.h.manager.deliver_pending()
    t.go(c.FileMandatoryReport(StatutoryGround.CHILD_ABUSE, "POL-8"))
    t = Tour(household=Household("H7", FAMILY.members[:1], "R1"))
    t.go(*TO_INTAKE)
    t.refuse(
        c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE), "statutory_subject", "no_statutory_subject"
    )
    t = Tour(policy="supervised")
    t.go(*TO_INTAKE, c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE))
    t.h.advance(2)
    t.refuse(c.ConfirmStatutoryOverride(), "override_awaiting_confirmation", "override_lapsed")
    yield

    t = Tour()
    t.go(*INTAKE_DONE, c.CompleteIntake())
    t.refuse(c.Select(), "service_consent", "consent_missing")
    t.go(
        c.InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE),
        c.FileMandatoryReport(StatutoryGround.CHILD_ABUSE, "P"),
    )
    t.refuse(c.Redirect("emergency_livelihood"), "no_statutory_duty", "statutory_duty_active")
    yield

    t = Tour()
    t.go(*INTAKE_DONE, c.RecordConsent(_consent("svc", ConsentScope.SERVICE_PROVISION)), c.CompleteIntake())
    t.go(c.Select())
    t.refuse(c.RecordNeed(Need("N1", NeedDomain.HEALTH)), "data_consent", "consent_missing")
    t.go(c.RecordConsent(_consent("data", ConsentScope.PERSONAL_DATA)))
    t.refuse(c.CompleteAssessment(), "needs_recorded", "no_needs_recorded")
    t.go(c.RecordNeed(Need("N1", NeedDomain.HEALTH)), c.CompleteAssessment())
    t.refuse(c.ApprovePlan(), "plan_has_goals", "no_goals")
    t.refuse(c.Close(ClosureReason.GOALS_MET), "closure_reason_fits", "closure_reason_not_allowed")
    yield

    for findings, reason in (
        (c.RecordIntakeFindings(information_only=True), "information_only"),
        (c.RecordIntakeFindings(counselling_only=True), "counselling_only"),
    ):
        t = Tour()
        t.go(*TO_SCREENING, findings)
        t.refuse(c.Select(), "eligibility", reason)
    t = Tour()
    t.go(*TO_INTAKE, c.RecordCrisisFactor(CrisisFactor.DEBT), c.CompleteIntake())
    t.refuse(c.Select(), "eligibility", "not_complex")
    t = Tour(policy="district", household=Household("H9", FAMILY.members, "R9"))
    t.go(*TO_SCREENING)
    t.refuse(c.Select(), "eligibility", "out_of_jurisdiction")
    t = Tour(policy="child-network", household=Household("H8", FAMILY.members[:1], "R1"))
    t.go(*TO_SCREENING)
    t.refuse(c.Select(), "eligibility", "target_rule_unmet")
    yield

    _managed_elsewhere()
    _service_twice()
    yield

    t = _closed_by(ClosureReason.GOALS_MET)
    t.refuse(c.StartAftercare("  "), "aftercare_justified", "aftercare_not_justified")
    t = _closed_by(ClosureReason.MOVED_AWAY)
    t.refuse(c.StartAftercare("check in"), "aftercare_justified", "aftercare_not_applicable")
    t = _closed_by(ClosureReason.DEATH)
    t.refuse(c.Reopen("the family asked"), "reopenable", "closed_by_death")
    t = Tour()
    t.go(*TO_SERVICE)
    t.refuse(c.Close(ClosureReason.CONSENT_WITHDRAWN), "closure_reason_fits", "closure_reason_not_allowed")
    yield

    _override_instead_of_consent()
    yield


@pytest.mark.coverage_source("tour")
def test_tour_provokes_every_guard_outcome() -> None:
    """Each refusal reason, and the statutory override allowing in place of each consent."""
    for _ in _refusals():
        pass


_EXITS: dict[str, c.Command] = {
    "redirected": c.Redirect("emergency_livelihood"),
    "general_counselling": c.ReferToCounselling(),
    "declined": c.Decline("no complex crisis"),
    "handed_over": c.HandOver(Agency("other-centre")),
}


@pytest.mark.coverage_source("tour")
@settings(max_examples=max(3, settings.default.max_examples // 8))
@given(data=st.data(), closure=st.sampled_from(ClosureReason), valid=st.booleans())
def test_closed_and_final_cases_refuse_everything_else(
    data: st.DataObject, closure: ClosureReason, valid: bool
) -> None:
    """A closed case accepts only reopening and after-care; a final stage accepts nothing."""
    t = Tour()
    t.go(*TO_SERVICE)
    if closure is not ClosureReason.CONSENT_WITHDRAWN:
        t.go(c.Close(closure))
    else:
        t.go(c.WithdrawConsent("svc"))
    maker = Maker(data.draw, T0, itertools.count(1))
    for event in sorted(c.COMMAND_TYPES.keys() - {"open", "reopen", "start_aftercare"}):
        command = maker.build(event, t.case, valid=valid)
        if command is not None:
            assert isinstance(t.outcome(command), CaseManagementError), f"closed case accepted {event}"
    final = data.draw(st.sampled_from(sorted(_EXITS)))
    t = Tour()
    t.go(*TO_SCREENING, _EXITS[final])
    assert t.case.state.value == final
    for event in sorted(c.COMMAND_TYPES.keys() - {"open"}):
        command = maker.build(event, t.case, valid=valid)
        if command is not None:
            assert isinstance(t.outcome(command), CaseManagementError), f"{final} accepted {event}"
