"""Lifecycle completeness through ``CaseManager`` on SQLite and PostgreSQL, each rule both ways.

Binding limits and extensions, a reason for every screening exit, approvals, clean episodes,
closure that ends what is running, plans that change, transfers and referrals to other agencies,
and no-contact. Every refusal is checked for its guard and reason (or the field of the invalid
data), for being recorded in ``CaseManager.refusals``, and for leaving the stored case and its
history as they were. The clock is the test's: nothing depends on when the tests run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from attrs import evolve

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.adapters.postgresql import PostgresStore

from .storage.conftest import postgres_conninfo, postgres_url  # noqa: F401  (the storage tests' server)
from .support import PROVIDER, SUPERVISOR, T0, WORKER, consent, household, referral

S = cm.CaseState
Scope = cm.ConsentScope
Step = cm.ApprovalStep
Why = cm.ScreeningReason
SEOUL = ZoneInfo("Asia/Seoul")
POLICY = cm.DEFAULT_POLICY
SUPERVISOR_2 = cm.Actor("lead-2", "supervisor")
SIX_MONTHS = cm.Duration(6, 0)
DAY = dt.timedelta(days=1)
C = TypeVar("C", bound=c.Command)


# -- stores, a clock, and a manager with helpers --------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[cm.CaseStore]:
    """An empty store of each durable kind (PostgreSQL: a fresh schema for the test)."""
    opened: cm.SQLiteStore | PostgresStore
    if request.param == "sqlite":
        opened = cm.SQLiteStore(str(tmp_path / "cases.db"), synchronous="NORMAL")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_conninfo"))
    yield opened
    opened.close()


class Clock:
    """Stands still until the test moves it."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, days: float) -> dt.datetime:
        self.now += dt.timedelta(days=days)
        return self.now


class World:
    """A :class:`CaseManager` over the test's store, its clock, notifier and committed decisions."""

    def __init__(
        self, store: cm.CaseStore, policy: cm.Policy, registry: cm.InMemoryRegistry | None = None
    ) -> None:
        self.clock = Clock()
        self.notifier = cm.RecordingNotifier()
        self.decisions: list[cm.Decision] = []
        self.m = cm.CaseManager(
            store,
            policy=policy,
            notifier=self.notifier,
            registry=registry,
            clock=self.clock,
            observe=self.decisions.append,
        )

    @property
    def now(self) -> dt.datetime:
        return self.clock.now

    def open(self, case_id: str = "C1", household_id: str = "H1") -> cm.Case:
        return self.m.open_case(household(household_id), referral(self.now), actor=WORKER, case_id=case_id)

    def do(self, case_id: str, command: c.Command, *, actor: cm.Actor = WORKER, days: float = 0) -> cm.Case:
        self.clock.advance(days)
        case = self.m.handle(case_id, command, actor=actor)
        assert self.m.get(case_id) == case
        return case

    def last(self, case_id: str, kind: type[C]) -> C:
        """The payload of the case's last event, which must be a ``kind`` command."""
        payload = self.m.history(case_id)[-1].payload
        assert isinstance(payload, kind), payload
        return payload

    def verdict(self, guard: str) -> str:
        """The reason the guard gave for the last accepted command."""
        [reason] = [v.reason for v in self.decisions[-1].verdicts if v.guard == guard]
        return reason.value

    @contextlib.contextmanager
    def unchanged(self, case_id: str, code: str, event: str, actor: cm.Actor) -> Iterator[None]:
        """The block is refused: recorded once with ``code``, and the case and history unchanged."""
        before, history = self.m.get(case_id), list(self.m.history(case_id))
        refusals = len(self.m.refusals(case_id))
        yield
        assert self.m.get(case_id) == before
        assert list(self.m.history(case_id)) == history
        assert len(self.m.refusals(case_id)) == refusals + 1
        last = self.m.refusals(case_id)[-1]
        assert (last.code, last.event, last.actor_id, last.role, last.at) == (
            code,
            event,
            actor.id,
            actor.role,
            self.now,
        )

    def refused(
        self,
        case_id: str,
        command: c.Command,
        guard: str,
        reason: str,
        *,
        actor: cm.Actor = WORKER,
        days: float = 0,
    ) -> cm.TransitionRefused:
        self.clock.advance(days)
        with (
            self.unchanged(case_id, "transition_refused", command.event, actor),
            pytest.raises(cm.TransitionRefused) as info,
        ):
            self.m.handle(case_id, command, actor=actor)
        assert (info.value.guard, info.value.reason) == (guard, reason), info.value
        last = self.m.refusals(case_id)[-1]
        assert (last.guard, last.reason) == (guard, reason)
        return info.value

    def invalid(
        self, case_id: str, command: c.Command, field: str, *, actor: cm.Actor = WORKER
    ) -> cm.InvalidData:
        with (
            self.unchanged(case_id, "invalid_data", command.event, actor),
            pytest.raises(cm.InvalidData) as info,
        ):
            self.m.handle(case_id, command, actor=actor)
        assert info.value.field == field, info.value
        return info.value

    def denied(self, case_id: str, command: c.Command, actor: cm.Actor) -> cm.AuthorizationDenied:
        with (
            self.unchanged(case_id, "authorization_denied", command.event, actor),
            pytest.raises(cm.AuthorizationDenied) as info,
        ):
            self.m.handle(case_id, command, actor=actor)
        return info.value

    # -- the ordinary path --------------------------------------------------------------------

    def consent(
        self, case_id: str, scope: cm.ConsentScope, consent_id: str, agency: str | None = None
    ) -> None:
        self.do(case_id, c.RecordConsent(consent(scope, consent_id, agency, at=self.now)))

    def to_screening(
        self, case_id: str = "C1", *, factors: int = 2, consents: bool = True, counselling_only: bool = False
    ) -> cm.Case:
        self.do(case_id, c.StartIntake())
        for factor in (cm.CrisisFactor.JOB_LOSS, cm.CrisisFactor.DEBT)[:factors]:
            self.do(case_id, c.RecordCrisisFactor(factor))
        if counselling_only:
            self.do(case_id, c.RecordIntakeFindings(counselling_only=True))
        if consents:
            self.consent(case_id, Scope.SERVICE_PROVISION, "service_provision")
            self.consent(case_id, Scope.PERSONAL_DATA, "personal_data")
        return self.do(case_id, c.CompleteIntake())

    def to_planning(self, case_id: str = "C1") -> cm.Case:
        self.to_screening(case_id)
        self.do(case_id, c.Select())
        self.do(case_id, c.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT)))
        return self.do(case_id, c.CompleteAssessment())

    def to_service(self, case_id: str = "C1") -> cm.Case:
        """Planned and in service, with service item S1 (job placement for need N1) from now."""
        self.to_planning(case_id)
        self.do(case_id, c.SetGoal(cm.Goal("G1", "back in work", ["N1"])))
        if Step.PLAN in self.m.policy.approvals:
            self.approved(case_id, "plan-1", Step.PLAN)
        self.do(case_id, c.ApprovePlan(), actor=SUPERVISOR)
        self.consent(case_id, Scope.SHARING, "share-provider", PROVIDER.id)
        return self.do(case_id, c.LinkService(item("S1", self.now)))

    def approved(self, case_id: str, approval_id: str, step: cm.ApprovalStep, subject: str = "") -> cm.Case:
        """Requested by the caseworker, approved by a supervisor."""
        self.do(case_id, c.RequestApproval(approval_id, step, subject, comment="please approve"))
        return self.do(case_id, c.Approve(approval_id, comment="agreed"), actor=SUPERVISOR)

    def due_of(
        self, kind: cm.DueKind, case_id: str = "C1", now: dt.datetime | None = None
    ) -> list[cm.DueItem]:
        return [d for d in self.m.due(now or self.now) if d.kind is kind and d.case_id == case_id]


@pytest.fixture
def world(store: cm.CaseStore) -> Callable[..., World]:
    """Makes managers over the test's store: ``world(policy, registry=...)``."""

    def make(policy: cm.Policy = POLICY, *, registry: cm.InMemoryRegistry | None = None) -> World:
        return World(store, policy, registry)

    return make


def item(
    item_id: str,
    start: dt.datetime,
    service: str = "job_placement",
    *,
    need_id: str = "N1",
    time_limit: dt.datetime | None = None,
) -> cm.ServiceItem:
    return cm.ServiceItem(item_id, need_id, service, PROVIDER, cm.ResourceKind.FORMAL, start, time_limit)


def item_of(case: cm.Case, item_id: str) -> cm.ServiceItem:
    found = case.service_item(item_id)
    assert found is not None, f"no service item {item_id}"
    return found


def limit_of(case: cm.Case, item_id: str) -> dt.datetime:
    limit = item_of(case, item_id).time_limit
    assert limit is not None, f"no limit for {item_id}"
    return limit


def approval_of(case: cm.Case, approval_id: str) -> cm.Approval:
    found = case.approval(approval_id)
    assert found is not None, f"no approval {approval_id}"
    return found


def goal_of(case: cm.Case, goal_id: str) -> cm.Goal:
    found = case.goal(goal_id)
    assert found is not None, f"no goal {goal_id}"
    return found


def limits(**changes: Any) -> cm.Policy:
    return evolve(POLICY, time_limits=evolve(POLICY.time_limits, **changes))


# -- 1. binding limits: service items -------------------------------------------------------


def test_a_service_item_is_extended_only_after_a_reassessment_since_it_started(
    world: Callable[..., World],
) -> None:
    w = world()
    w.open()
    w.to_service()
    started = item_of(w.m.get("C1"), "S1")
    assert started.time_limit == SIX_MONTHS.after(started.start, SEOUL)
    w.refused(
        "C1",
        c.ExtendService("S1", "the family is not ready"),
        "extension_justified",
        "not_reassessed",
        days=150,
    )

    w.do("C1", c.StartReassessment("term review"), days=1)
    w.do("C1", c.ResumeService(), days=1)
    case = w.do("C1", c.ExtendService("S1", "the family is not ready"))
    assert w.verdict("extension_justified") == "reassessed"
    extended = item_of(case, "S1")
    assert (extended.extensions, extended.time_limit) == (1, SIX_MONTHS.after(started.time_limit, SEOUL))
    assert w.last("C1", c.ExtendService).until == extended.time_limit

    # The policy allows one extension of an item by default.
    w.refused("C1", c.ExtendService("S1", "once more"), "extension_within_policy", "too_many_extensions")
    w.invalid("C1", c.ExtendService("S9", "no such item"), "item_id")


def test_an_extension_is_bounded_by_the_policys_number_and_length(world: Callable[..., World]) -> None:
    w = world(limits(max_service_extensions=2, service_extension="3 months"))
    w.open()
    w.to_service()
    w.do("C1", c.StartReassessment("review"), days=20)
    w.do("C1", c.ResumeService(), days=1)
    limit = limit_of(w.m.get("C1"), "S1")
    longest = cm.Duration(3, 0).after(limit, SEOUL)

    w.refused(
        "C1",
        c.ExtendService("S1", "a year more", until=longest + dt.timedelta(minutes=1)),
        "extension_within_policy",
        "extension_too_long",
    )
    w.invalid("C1", c.ExtendService("S1", "not later", until=limit), "until")
    w.invalid("C1", c.ExtendService("S1", "  "), "reason")
    first = item_of(w.do("C1", c.ExtendService("S1", "three months", until=longest), days=1), "S1")
    assert (first.extensions, first.time_limit, first.extended_at) == (1, longest, w.now)
    # Each extension needs a reassessment completed since the item's current period began.
    w.refused("C1", c.ExtendService("S1", "three more"), "extension_justified", "not_reassessed", days=60)
    w.do("C1", c.StartReassessment("second review"), days=1)
    w.do("C1", c.ResumeService(), days=1)
    second = item_of(w.do("C1", c.ExtendService("S1", "three more")), "S1")
    assert (second.extensions, second.time_limit) == (2, cm.Duration(3, 0).after(longest, SEOUL))
    w.refused("C1", c.ExtendService("S1", "a third time"), "extension_within_policy", "too_many_extensions")


def test_relinking_a_service_within_its_window_needs_a_reassessment(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.do("C1", c.EndService("S1", "provider closed for the summer"), days=30)
    refusal = w.refused("C1", c.LinkService(item("S2", w.now)), "relink_justified", "relink_within_limit")
    assert "S1" in refusal.message

    # Another service for the same need, or the same service for another need, is no relink.
    w.do("C1", c.LinkService(item("S3", w.now, "tutoring")))
    assert w.verdict("relink_justified") == "not_relinked"
    w.do("C1", c.RecordNeed(cm.Need("N2", cm.NeedDomain.HOUSING)))
    w.do("C1", c.LinkService(item("S4", w.now, need_id="N2")))
    assert w.verdict("relink_justified") == "not_relinked"

    w.do("C1", c.StartReassessment("summer over"), days=1)
    w.do("C1", c.ResumeService(), days=1)
    case = w.do("C1", c.LinkService(item("S2", w.now)))
    assert w.verdict("relink_justified") == "reassessed"
    assert (item_of(case, "S2").active, item_of(case, "S2").extensions) == (True, 1)


def test_relinking_within_the_window_with_an_approval_uses_it(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.do("C1", c.EndService("S1", "paused"), days=10)
    w.do("C1", c.RequestApproval("X1", Step.SERVICE_EXTENSION, "S1", "two more months of placement"))
    refusal = w.refused("C1", c.LinkService(item("S2", w.now)), "relink_justified", "relink_within_limit")
    assert "X1" in refusal.message  # the pending approval is named
    w.do("C1", c.Approve("X1", comment="agreed"), actor=SUPERVISOR)

    case = w.do("C1", c.LinkService(item("S2", w.now)), days=1)
    assert w.verdict("relink_justified") == "approved"
    assert approval_of(case, "X1").status is cm.ApprovalStatus.USED
    assert w.last("C1", c.LinkService).approval_id == "X1"

    # S2 continues S1: the relink is S1's one extension, to S1's limit plus one extension's length.
    s2 = item_of(case, "S2")
    assert (s2.extensions, s2.time_limit) == (1, SIX_MONTHS.after(limit_of(case, "S1"), SEOUL))
    w.do("C1", c.EndService("S2", "paused again"), days=5)
    w.refused("C1", c.LinkService(item("S5", w.now)), "relink_justified", "too_many_extensions")


def test_relinking_after_the_window_is_a_new_item(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    window = limit_of(w.m.get("C1"), "S1")
    w.do("C1", c.EndService("S1", "family took it over"), days=10)
    w.clock.now = window - dt.timedelta(minutes=1)
    w.refused("C1", c.LinkService(item("S2", w.now)), "relink_justified", "relink_within_limit")
    w.clock.now = window
    w.do("C1", c.LinkService(item("S2", w.now)))
    assert w.verdict("relink_justified") == "not_relinked"


def test_where_the_policy_asks_for_approvals_a_reassessment_does_not_extend(
    world: Callable[..., World],
) -> None:
    w = world(evolve(POLICY, approvals={Step.SERVICE_EXTENSION: cm.ApprovalRule()}))
    w.open()
    w.to_service()
    w.do("C1", c.StartReassessment("review"), days=30)
    w.do("C1", c.ResumeService(), days=1)
    extend = c.ExtendService("S1", "the family needs more time")
    w.refused("C1", extend, "extension_justified", "approval_missing")
    w.invalid("C1", c.RequestApproval("X0", Step.SERVICE_EXTENSION), "subject")  # which item?
    w.invalid("C1", c.RequestApproval("X0", Step.SERVICE_EXTENSION, "S9"), "subject")
    w.invalid("C1", c.RequestApproval("X0", Step.CLOSURE, "S1"), "subject")

    w.do("C1", c.RequestApproval("X1", Step.SERVICE_EXTENSION, "S1", "three more months"))
    assert "X1" in w.refused("C1", extend, "extension_justified", "approval_pending").message
    w.do("C1", c.Reject("X1", comment="reassess the child's needs first"), actor=SUPERVISOR)
    w.refused("C1", extend, "extension_justified", "approval_rejected")
    w.approved("C1", "X2", Step.SERVICE_EXTENSION, "S1")
    case = w.do("C1", extend)
    assert w.verdict("extension_justified") == "approved"
    assert item_of(case, "S1").extensions == 1
    assert approval_of(case, "X2").status is cm.ApprovalStatus.USED
    assert w.last("C1", c.ExtendService).approval_id == "X2"


# -- 1. binding limits: the case ------------------------------------------------------------


def test_past_the_case_limit_only_closure_crisis_and_a_supervisors_extension(
    world: Callable[..., World],
) -> None:
    w = world()
    w.open()
    w.to_service()
    opened = w.m.get("C1").episode_started_at
    limit = cm.Duration(12, 0).after(opened, SEOUL)
    assert [d.due_at for d in w.due_of(cm.DueKind.CASE_MAX_DURATION, now=limit)] == [limit]

    w.clock.now = limit  # at the limit the work goes on
    w.do("C1", c.RecordJournal(cm.JournalKind.CONTACT, "annual review"))
    w.clock.now = limit + dt.timedelta(minutes=1)
    for command in (c.StartReassessment("annual"), c.LinkService(item("S2", w.now, "tutoring"))):
        refusal = w.refused("C1", command, "within_case_limit", "case_limit_reached")
        assert limit.isoformat() in refusal.message
    assert [d.overdue for d in w.due_of(cm.DueKind.CASE_MAX_DURATION)] == [True]

    w.do("C1", c.DeclareCrisis("eviction notice"))
    w.do("C1", c.ResolveCrisis("rehoused"), days=2)
    denied = w.denied("C1", c.ExtendCase("rehoused; work continues"), WORKER)
    assert denied.allowed_roles == ("supervisor",)
    case = w.do("C1", c.ExtendCase("rehoused; work continues"), actor=SUPERVISOR)
    assert (case.case_limit_extended_to, case.case_extensions) == (SIX_MONTHS.after(w.now, SEOUL), 1)
    assert w.due_of(cm.DueKind.CASE_MAX_DURATION) == []
    [extended] = w.due_of(cm.DueKind.CASE_MAX_DURATION, now=case.case_limit_extended_to)
    assert (extended.due_at, extended.overdue) == (case.case_limit_extended_to, False)

    assert w.do("C1", c.StartReassessment("after the crisis")).state is S.REASSESSMENT
    assert w.verdict("within_case_limit") == "within_case_limit"


def test_a_case_past_its_limit_closes_for_maximum_duration(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.clock.now = cm.Duration(12, 0).after(w.m.get("C1").episode_started_at, SEOUL) + DAY
    w.refused("C1", c.LinkService(item("S2", w.now, "tutoring")), "within_case_limit", "case_limit_reached")
    case = w.do("C1", c.Close(cm.ClosureReason.MAXIMUM_DURATION))
    assert case.state is S.CLOSED
    assert case.closure == cm.Closure(cm.ClosureReason.MAXIMUM_DURATION, w.now)
    s1 = item_of(case, "S1")
    assert (s1.ended_at, s1.outcome) == (w.now, "case closed: maximum_duration")


def test_case_extensions_are_bounded_by_the_policy(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    limit = cm.Duration(12, 0).after(w.m.get("C1").episode_started_at, SEOUL)
    longest = SIX_MONTHS.after(limit, SEOUL)
    w.refused(
        "C1",
        c.ExtendCase("a long one", until=longest + dt.timedelta(minutes=1)),
        "extension_within_policy",
        "extension_too_long",
        actor=SUPERVISOR,
    )
    w.invalid("C1", c.ExtendCase("earlier", until=limit), "until", actor=SUPERVISOR)
    w.invalid("C1", c.ExtendCase(" "), "reason", actor=SUPERVISOR)
    assert (
        w.do("C1", c.ExtendCase("six months", until=longest), actor=SUPERVISOR).case_limit_extended_to
        == longest
    )
    case = w.do("C1", c.ExtendCase("six more"), actor=SUPERVISOR)
    assert (case.case_limit_extended_to, case.case_extensions) == (SIX_MONTHS.after(longest, SEOUL), 2)
    w.refused(
        "C1", c.ExtendCase("a third"), "extension_within_policy", "too_many_extensions", actor=SUPERVISOR
    )


# -- 1. limits on the programme's calendar ------------------------------------------------


def test_six_months_end_on_the_same_day_or_the_last_day_of_the_month(world: Callable[..., World]) -> None:
    w = world(limits(service_item_max="6 months"))
    w.open()
    w.to_planning()
    w.consent("C1", Scope.SHARING, "share-provider", PROVIDER.id)
    january = dt.datetime(2026, 1, 15, 10, 0, tzinfo=SEOUL)
    august = dt.datetime(2026, 8, 31, 10, 0, tzinfo=SEOUL)

    w.do("C1", c.LinkService(item("S1", january, "tutoring")))
    w.do("C1", c.LinkService(item("S2", august, "job_placement")))
    stored = w.m.get("C1")
    assert item_of(stored, "S1").time_limit == dt.datetime(2026, 7, 15, 10, 0, tzinfo=SEOUL)
    assert item_of(stored, "S2").time_limit == dt.datetime(2027, 2, 28, 10, 0, tzinfo=SEOUL)

    # The limit is the most a caller may ask for: up to it, and not a minute more.
    w.do(
        "C1",
        c.LinkService(
            item("S3", january, "housing_support", time_limit=dt.datetime(2026, 7, 15, 10, 0, tzinfo=SEOUL))
        ),
    )
    w.refused(
        "C1",
        c.LinkService(
            item("S4", august, "debt_advice", time_limit=dt.datetime(2027, 2, 28, 10, 1, tzinfo=SEOUL))
        ),
        "within_time_limit",
        "time_limit_exceeds_policy",
    )


def test_the_policys_time_zone_decides_the_calendar(world: Callable[..., World]) -> None:
    start = dt.datetime(2026, 2, 28, 20, 0, tzinfo=dt.UTC)  # already 1 March in Seoul
    limits_by_zone: dict[str, dt.datetime] = {}
    for case_id, zone in (("C1", "Asia/Seoul"), ("C2", "UTC")):
        w = world(evolve(POLICY, time_zone=zone))
        w.open(case_id, f"H-{case_id}")
        w.to_planning(case_id)
        w.consent(case_id, Scope.SHARING, "share-provider", PROVIDER.id)
        w.do(case_id, c.LinkService(item("S1", start)))
        limits_by_zone[zone] = limit_of(w.m.get(case_id), "S1")
    assert limits_by_zone["Asia/Seoul"] == dt.datetime(2026, 9, 1, 5, 0, tzinfo=SEOUL)
    assert limits_by_zone["UTC"] == dt.datetime(2026, 8, 28, 20, 0, tzinfo=dt.UTC)


# -- 2. a reason for every exit -------------------------------------------------------------


def test_a_household_that_is_not_complex_is_redirected_with_that_reason(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_screening(factors=1)
    case = w.do("C1", c.Redirect("emergency_livelihood"))
    assert case.state is S.REDIRECTED
    assert case.eligibility is cm.EligibilityDecision.SINGLE_SERVICE
    assert case.screening == cm.ScreeningResult(
        cm.EligibilityDecision.SINGLE_SERVICE, Why.NOT_COMPLEX, w.now, service="emergency_livelihood"
    )
    history = w.m.history("C1")
    assert "select" not in [e.event for e in history]
    assert w.last("C1", c.Redirect).reason is Why.NOT_COMPLEX
    assert list(w.m.refusals("C1")) == []


def test_counselling_only_is_referred_to_counselling_with_that_reason(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_screening(counselling_only=True)
    # A reason the rules can check must hold: this household does not need information only.
    refused = w.invalid("C1", c.Redirect("info_desk", reason=Why.INFORMATION_ONLY), "reason")
    assert refused.value == "information_only"
    case = w.do("C1", c.ReferToCounselling())
    assert (case.state, case.eligibility) == (
        S.GENERAL_COUNSELLING,
        cm.EligibilityDecision.GENERAL_COUNSELLING,
    )
    assert w.m.get("C1").screening == cm.ScreeningResult(
        cm.EligibilityDecision.GENERAL_COUNSELLING, Why.COUNSELLING_ONLY, w.now
    )


def test_an_eligible_household_leaves_screening_only_with_a_reason(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_screening()
    for command in (
        c.Redirect("emergency_livelihood"),
        c.ReferToCounselling(),
        c.Decline("does not want it"),
    ):
        w.invalid("C1", command, "reason")
    assert w.invalid("C1", c.Redirect("x", reason=Why.NOT_COMPLEX), "reason").value == "not_complex"
    w.invalid("C1", c.Decline("x", reason=Why.NO_CONSENT), "reason")
    w.invalid("C1", c.Decline("x", reason=Why.ELIGIBLE), "reason")
    assert [r.code for r in w.m.refusals("C1")] == ["invalid_data"] * 6

    case = w.do("C1", c.Decline("the family does not want case management", reason=Why.HOUSEHOLD_DECLINED))
    assert case.state is S.DECLINED
    assert w.m.get("C1").screening == cm.ScreeningResult(
        cm.EligibilityDecision.NOT_ELIGIBLE, Why.HOUSEHOLD_DECLINED, w.now
    )


def test_selection_records_the_household_as_eligible(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_screening()
    assert w.m.get("C1").screening is None
    case = w.do("C1", c.Select())
    assert case.screening == cm.ScreeningResult(
        cm.EligibilityDecision.INTEGRATED_CASE_MANAGEMENT, Why.ELIGIBLE, w.now
    )


def test_a_hand_over_records_whether_the_agency_manages_or_is_competent(world: Callable[..., World]) -> None:
    registry = cm.InMemoryRegistry()
    w = world(registry=registry)
    protection = cm.Agency("child-protection", "Child protection agency")
    w.open("C1", "H1")
    w.invalid("C1", c.HandOver(protection, reason=Why.ELIGIBLE), "reason")
    case = w.do("C1", c.HandOver(protection))
    assert case.screening == cm.ScreeningResult(
        cm.EligibilityDecision.HANDED_OVER, Why.COMPETENT_AGENCY, w.now, agency_id="child-protection"
    )
    assert case.handed_over_to == protection

    other = cm.Agency("welfare-centre-2")
    w.open("C2", "H2")
    w.to_screening("C2")
    registry.add_managed("H2", other)
    w.refused("C2", c.Select(), "not_managed_elsewhere", "managed_elsewhere")
    case = w.do("C2", c.HandOver(other))
    assert w.m.get("C2").screening == cm.ScreeningResult(
        cm.EligibilityDecision.HANDED_OVER, Why.MANAGED_ELSEWHERE, w.now, agency_id="welfare-centre-2"
    )


def test_a_hand_over_to_another_agency_than_the_managing_one_is_not_managed_elsewhere(
    world: Callable[..., World],
) -> None:
    """The registry says another centre manages the household, but the case goes to child
    protection: the record must not say it went where the household is managed."""
    registry = cm.InMemoryRegistry()
    w = world(registry=registry)
    w.open()
    w.do("C1", c.StartIntake())
    registry.add_managed("H1", cm.Agency("welfare-centre-2"))
    case = w.do("C1", c.HandOver(cm.Agency("child-protection")))
    assert case.screening is not None
    assert (case.screening.reason, case.screening.agency_id) == (Why.COMPETENT_AGENCY, "child-protection")


# -- 3. approvals ---------------------------------------------------------------------------

APPROVING = evolve(
    POLICY,
    approvals={
        step: cm.ApprovalRule() for step in (Step.PLAN, Step.CLOSURE, Step.AFTERCARE, Step.CASE_EXTENSION)
    },
)


def test_a_plan_waits_for_its_approval(world: Callable[..., World]) -> None:
    w = world(APPROVING)
    w.open()
    w.to_planning()
    w.do("C1", c.SetGoal(cm.Goal("G1", "back in work", ["N1"])))
    w.refused("C1", c.ApprovePlan(), "approval", "approval_missing", actor=SUPERVISOR)

    w.do("C1", c.RequestApproval("AP1", Step.PLAN, comment="agreed with the family"))
    requested_at = w.now
    pending = w.refused("C1", c.ApprovePlan(), "approval", "approval_pending", actor=SUPERVISOR)
    assert "AP1" in pending.message
    [due] = w.due_of(cm.DueKind.APPROVAL)
    assert (due.subject, due.due_at, due.overdue) == ("AP1", requested_at + 7 * DAY, False)
    assert [d.overdue for d in w.due_of(cm.DueKind.APPROVAL, now=requested_at + 8 * DAY)] == [True]

    w.invalid("C1", c.Reject("AP1", comment=" "), "comment", actor=SUPERVISOR)
    w.denied("C1", c.Reject("AP1", comment="no"), WORKER)
    w.do("C1", c.Reject("AP1", comment="add a goal for the child"), actor=SUPERVISOR, days=1)
    assert w.due_of(cm.DueKind.APPROVAL) == []
    rejected = w.refused("C1", c.ApprovePlan(), "approval", "approval_rejected", actor=SUPERVISOR)
    assert "AP1" in rejected.message
    w.refused("C1", c.Approve("AP1"), "approval_pending", "no_pending_approval", actor=SUPERVISOR)

    w.invalid("C1", c.RequestApproval("AP1", Step.PLAN), "approval_id")  # ids are not reused
    w.do("C1", c.RequestApproval("AP2", Step.PLAN, comment="goal for the child added"))
    w.invalid("C1", c.RequestApproval("AP3", Step.PLAN), "step")  # one pending request per step
    w.do("C1", c.Approve("AP2", comment="fine"), actor=SUPERVISOR)
    case = w.do("C1", c.ApprovePlan(), actor=SUPERVISOR)
    assert case.state is S.SERVICE
    assert w.verdict("approval") == "approved"
    assert w.last("C1", c.ApprovePlan).approval_id == "AP2"
    statuses = {a.approval_id: (a.status, a.decided_by, a.decision_comment) for a in case.approvals}
    assert statuses == {
        "AP1": (cm.ApprovalStatus.REJECTED, "lead-1", "add a goal for the child"),
        "AP2": (cm.ApprovalStatus.USED, "lead-1", "fine"),
    }


def test_an_approval_allows_its_step_once(world: Callable[..., World]) -> None:
    w = world(APPROVING)
    w.open()
    w.to_service()
    w.refused("C1", c.ExtendCase("more time"), "approval", "approval_missing", actor=SUPERVISOR)
    w.do(
        "C1",
        c.RequestApproval("EX1", Step.CASE_EXTENSION, comment="rehousing takes longer"),
        actor=SUPERVISOR,
    )
    w.refused("C1", c.Approve("EX1"), "approval_actor", "same_person", actor=SUPERVISOR)
    w.do("C1", c.Approve("EX1", comment="agreed"), actor=SUPERVISOR_2)
    w.invalid("C1", c.ExtendCase("more time", approval_id="plan-1"), "approval_id", actor=SUPERVISOR)
    case = w.do("C1", c.ExtendCase("more time"), actor=SUPERVISOR)
    assert approval_of(case, "EX1").status is cm.ApprovalStatus.USED
    w.refused("C1", c.ExtendCase("more again"), "approval", "approval_missing", actor=SUPERVISOR)

    w.refused("C1", c.Close(cm.ClosureReason.GOALS_MET), "approval", "approval_missing")
    w.approved("C1", "CL1", Step.CLOSURE)
    case = w.do("C1", c.Close(cm.ClosureReason.GOALS_MET))
    assert case.state is S.CLOSED
    assert approval_of(case, "CL1").status is cm.ApprovalStatus.USED
    # After-care is a step of its own: the closure's approval does not allow it.
    w.refused("C1", c.StartAftercare("check after a term"), "approval", "approval_missing")
    w.approved("C1", "AC1", Step.AFTERCARE)
    assert w.do("C1", c.StartAftercare("check after a term")).state is S.AFTERCARE


def test_who_may_decide_an_approval(world: Callable[..., World]) -> None:
    director, director_2 = cm.Actor("dir-1", "director"), cm.Actor("dir-2", "director")
    policy = evolve(
        POLICY,
        approvals={
            Step.CLOSURE: cm.ApprovalRule(approved_by=frozenset({"director"})),
            Step.PLAN: cm.ApprovalRule(by_conference=True),
        },
        access=cm.AccessRules({**POLICY.access.roles, "director": frozenset(c.COMMAND_TYPES)}),
    )
    w = world(policy)
    w.open()
    w.to_planning()
    w.do("C1", c.SetGoal(cm.Goal("G1", "back in work", ["N1"])))
    w.do("C1", c.RequestApproval("P1", Step.PLAN))
    w.denied("C1", c.Approve("P1"), WORKER)
    w.refused("C1", c.Approve("P1"), "approval_actor", "conference_required", actor=SUPERVISOR)
    w.invalid("C1", c.Approve("P1", conference_id="CF1"), "conference_id", actor=SUPERVISOR)
    conference = cm.CaseConference("CF1", w.now + DAY, participants=("worker-1", "lead-1"))
    w.do("C1", c.ScheduleConference(conference))
    w.invalid("C1", c.Approve("P1", conference_id="CF1"), "conference_id", actor=SUPERVISOR)  # not held yet
    w.do("C1", c.HoldConference("CF1", "plan agreed"), days=1)
    case = w.do("C1", c.Approve("P1", conference_id="CF1"), actor=SUPERVISOR)
    assert approval_of(case, "P1").conference_id == "CF1"
    w.do("C1", c.ApprovePlan(), actor=SUPERVISOR)

    w.do("C1", c.RequestApproval("CL1", Step.CLOSURE), actor=director)
    w.refused("C1", c.Approve("CL1"), "approval_actor", "role_may_not_approve", actor=SUPERVISOR)
    w.refused("C1", c.Approve("CL1"), "approval_actor", "same_person", actor=director)
    w.do("C1", c.Approve("CL1"), actor=director_2)
    closed = w.do("C1", c.Close(cm.ClosureReason.GOALS_MET))
    assert closed.closure == cm.Closure(cm.ClosureReason.GOALS_MET, w.now)


# -- 4. episodes ----------------------------------------------------------------------------


def test_reopening_starts_a_clean_episode(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.do("C1", c.Close(cm.ClosureReason.GOALS_MET), days=30)
    w.do("C1", c.StartAftercare("check after a term"))
    first = list(w.m.history("C1"))

    case = w.do("C1", c.Reopen("rent arrears again"), actor=SUPERVISOR, days=60)
    assert (case.state, case.episode, case.previous_episode) == (S.INTAKE, 2, cm.EpisodeRef("C1", 1))
    assert case.episode_started_at == w.now
    assert (case.needs, case.goals, case.service_items, case.approvals, case.consents) == ((), (), (), (), ())
    assert (case.aftercare, case.closure, case.screening, case.crisis_factors) == (
        None,
        None,
        None,
        frozenset(),
    )
    lapsed = w.last("C1", c.Reopen).lapsed_consents
    assert set(lapsed) == {"service_provision", "personal_data", "share-provider"}
    assert all((e.episode, e.previous_episode) == (1, None) for e in first)
    assert {"record_need", "set_goal", "link_service", "start_aftercare"} <= {e.event for e in first}

    for factor in (cm.CrisisFactor.JOB_LOSS, cm.CrisisFactor.HOUSING):
        w.do("C1", c.RecordCrisisFactor(factor))
    w.do("C1", c.CompleteIntake())
    w.refused("C1", c.Select(), "service_consent", "consent_missing")
    w.consent("C1", Scope.SERVICE_PROVISION, "service-2")
    w.do("C1", c.Select())
    w.refused("C1", c.CompleteAssessment(), "data_consent", "consent_missing")
    w.consent("C1", Scope.PERSONAL_DATA, "data-2")
    w.refused("C1", c.CompleteAssessment(), "needs_recorded", "no_needs_recorded")
    w.do("C1", c.RecordNeed(cm.Need("N1", cm.NeedDomain.HOUSING)))
    assert w.do("C1", c.CompleteAssessment()).state is S.PLANNING

    second = w.m.history("C1")[len(first) :]
    assert len(second) > 5
    assert all((e.episode, e.previous_episode) == (2, cm.EpisodeRef("C1", 1)) for e in second)
    assert w.m.replay("C1") == w.m.get("C1")


def test_a_policy_may_carry_consents_over_into_a_new_episode(world: Callable[..., World]) -> None:
    policy = evolve(POLICY, episodes=cm.Episodes(reconfirm_consents=frozenset({Scope.PERSONAL_DATA})))
    w = world(policy)
    w.open()
    w.to_service()
    w.do("C1", c.Close(cm.ClosureReason.UNREACHABLE), days=30)
    case = w.do("C1", c.Reopen("came back"), actor=SUPERVISOR, days=30)
    assert {x.consent_id for x in case.consents} == {"service_provision", "share-provider"}
    w.do("C1", c.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS))
    w.do("C1", c.RecordCrisisFactor(cm.CrisisFactor.DEBT))
    w.do("C1", c.CompleteIntake())
    w.do("C1", c.Select())
    assert w.verdict("service_consent") == "consent_given"
    w.refused("C1", c.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT)), "data_consent", "consent_missing")


def test_with_no_consents_to_reconfirm_all_carry_over(world: Callable[..., World]) -> None:
    w = world(evolve(POLICY, episodes=cm.Episodes(reconfirm_consents=frozenset())))
    w.open()
    w.to_planning()
    w.do("C1", c.Close(cm.ClosureReason.MOVED_AWAY), days=10)
    case = w.do("C1", c.Reopen("moved back"), actor=SUPERVISOR, days=10)
    assert [x.consent_id for x in case.consents if x.active] == ["service_provision", "personal_data"]
    assert w.last("C1", c.Reopen).lapsed_consents == ()


def test_a_household_closed_by_death_is_not_reopened_or_referred_again(world: Callable[..., World]) -> None:
    w = world()
    w.open("C1", "H1")
    w.to_service("C1")
    w.do("C1", c.Close(cm.ClosureReason.DEATH), days=10)
    w.refused("C1", c.Reopen("a relative asks for help"), "reopenable", "closed_by_death", actor=SUPERVISOR)

    w.clock.advance(30)
    with pytest.raises(cm.TransitionRefused) as info:
        w.open("C2", "H1")
    assert (info.value.guard, info.value.reason) == ("reopenable", "closed_by_death")
    [refusal] = w.m.refusals("C2")
    assert (refusal.code, refusal.event, refusal.guard, refusal.reason) == (
        "transition_refused",
        "open",
        "reopenable",
        "closed_by_death",
    )
    with pytest.raises(cm.CaseNotFound):
        w.m.get("C2")

    survivors = w.open("C3", "H1-survivors")
    assert (survivors.state, survivors.previous_episode) == (S.REFERRED, None)


def test_a_re_referred_household_links_its_new_case_to_the_last_episode(world: Callable[..., World]) -> None:
    w = world()
    w.open("C1", "H1")
    w.to_planning("C1")
    w.do("C1", c.Close(cm.ClosureReason.UNREACHABLE), days=5)
    w.do("C1", c.Reopen("came back"), actor=SUPERVISOR, days=5)
    w.do("C1", c.RecordCrisisFactor(cm.CrisisFactor.DEBT))
    w.do("C1", c.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS))
    w.do("C1", c.CompleteIntake())
    w.do("C1", c.Decline("does not want it now", reason=Why.HOUSEHOLD_DECLINED))

    case = w.open("C2", "H1")
    assert (case.episode, case.previous_episode) == (1, cm.EpisodeRef("C1", 2))
    [opened] = w.m.history("C2")
    assert (opened.episode, opened.previous_episode) == (1, cm.EpisodeRef("C1", 2))
    fresh = w.open("C3", "H3")
    assert fresh.previous_episode is None


def test_the_households_latest_episode_counts_even_in_an_older_case(world: Callable[..., World]) -> None:
    """C1 is older than C2 but was reopened after it: its episode 2 is the household's latest."""
    w = world()
    w.open("C1", "H1")
    w.to_planning("C1")
    w.do("C1", c.Close(cm.ClosureReason.MOVED_AWAY), days=5)
    w.open("C2", "H1")
    w.to_planning("C2")
    w.do("C2", c.Close(cm.ClosureReason.UNREACHABLE), days=5)
    w.do("C1", c.Reopen("moved back"), actor=SUPERVISOR, days=5)
    w.do("C1", c.RecordCrisisFactor(cm.CrisisFactor.DEBT))
    w.do("C1", c.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS))
    w.do("C1", c.CompleteIntake())
    w.consent("C1", Scope.SERVICE_PROVISION, "service-2")
    w.do("C1", c.Select())
    w.do("C1", c.Close(cm.ClosureReason.DEATH), days=5)

    with pytest.raises(cm.TransitionRefused) as info:
        w.open("C3", "H1")
    assert (info.value.guard, info.value.reason) == ("reopenable", "closed_by_death")


# -- 5. closure ends what is running --------------------------------------------------------


def test_closing_ends_every_running_service_item_with_its_reason(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.do("C1", c.LinkService(item("S2", w.now, "tutoring")))
    w.do("C1", c.EndService("S2", "the family took it over"), days=20)
    ended_s2 = w.now
    case = w.do("C1", c.Close(cm.ClosureReason.GOALS_MET), days=10)
    outcomes = {s.item_id: (s.ended_at, s.outcome) for s in case.service_items}
    assert outcomes == {
        "S1": (w.now, "case closed: goals_met"),
        "S2": (ended_s2, "the family took it over"),
    }
    far = w.now + 400 * DAY
    assert w.due_of(cm.DueKind.SERVICE_ITEM_LIMIT, now=far) == []
    case = w.do("C1", c.StartAftercare("check in after a term"))
    assert case.state is S.AFTERCARE
    assert w.verdict("aftercare_justified") == "aftercare_justified"


def test_withdrawing_the_last_service_consent_closes_and_ends_items(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.consent("C1", Scope.SERVICE_PROVISION, "service-renewed")
    case = w.do("C1", c.WithdrawConsent("service_provision"), days=3)
    assert case.state is S.SERVICE
    assert item_of(case, "S1").active

    case = w.do("C1", c.WithdrawConsent("service-renewed"), days=3)
    assert case.state is S.CLOSED
    assert case.closure == cm.Closure(cm.ClosureReason.CONSENT_WITHDRAWN, w.now)
    s1 = item_of(case, "S1")
    assert (s1.ended_at, s1.outcome) == (w.now, "case closed: consent_withdrawn")
    w.refused(
        "C1", c.StartAftercare("keep an eye on them"), "aftercare_justified", "aftercare_not_applicable"
    )


def test_withdrawal_during_aftercare_ends_it(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.do("C1", c.Close(cm.ClosureReason.SELF_RELIANT), days=10)
    w.do("C1", c.StartAftercare("check after a term"))
    case = w.do("C1", c.WithdrawConsent("service_provision"), days=10)
    assert case.state is S.CLOSED
    assert case.aftercare is not None
    assert case.aftercare.ended_at == w.now
    assert case.closure == cm.Closure(cm.ClosureReason.CONSENT_WITHDRAWN, w.now)


def test_aftercare_follows_the_policys_closure_reasons(world: Callable[..., World]) -> None:
    w = world()
    w.open("C1", "H1")
    w.to_service("C1")
    w.do("C1", c.Close(cm.ClosureReason.UNREACHABLE))
    w.refused("C1", c.StartAftercare("try again later"), "aftercare_justified", "aftercare_not_applicable")

    w2 = world(
        evolve(POLICY, episodes=cm.Episodes(aftercare_after=frozenset({cm.ClosureReason.UNREACHABLE})))
    )
    w2.open("C2", "H2")
    w2.to_service("C2")
    w2.do("C2", c.Close(cm.ClosureReason.UNREACHABLE))
    assert w2.do("C2", c.StartAftercare("try again later")).state is S.AFTERCARE
    w2.open("C3", "H3")
    w2.to_service("C3")
    w2.do("C3", c.Close(cm.ClosureReason.GOALS_MET))
    w2.refused("C3", c.StartAftercare("check in"), "aftercare_justified", "aftercare_not_applicable")


# -- 6. plans that change -------------------------------------------------------------------


def test_goals_are_revised_and_dropped_and_each_approved_plan_is_a_version(
    world: Callable[..., World],
) -> None:
    w = world()
    w.open()
    w.to_planning()
    w.do("C1", c.RecordNeed(cm.Need("N2", cm.NeedDomain.HEALTH)))
    w.do("C1", c.SetGoal(cm.Goal("G1", "full-time work", ["N1"])))
    w.do("C1", c.SetGoal(cm.Goal("G2", "a driving licence", ["N1"])))
    w.invalid("C1", c.ApprovePlan(version=1), "version", actor=SUPERVISOR)
    assert w.do("C1", c.ApprovePlan(), actor=SUPERVISOR).plan_version == 1
    with w.unchanged("C1", "unknown_command", "drop_goal", WORKER), pytest.raises(cm.UnknownCommand):
        w.m.handle("C1", c.DropGoal("G2", "not now"), actor=WORKER)  # not while in service

    w.do("C1", c.StartReassessment("health changed"), days=40)
    w.invalid("C1", c.ReviseGoal("G1", "part-time work", reason=" "), "reason")
    w.invalid("C1", c.ReviseGoal("G9", "part-time work", "health"), "goal_id")
    w.invalid("C1", c.ReviseGoal("G1", "part-time work", "health", need_ids=("N9",)), "need_ids")
    case = w.do("C1", c.ReviseGoal("G1", "part-time work", "health limits the hours", need_ids=("N1", "N2")))
    assert (goal_of(case, "G1").description, goal_of(case, "G1").revision) == ("part-time work", 1)
    w.invalid("C1", c.DropGoal("G2", ""), "reason")
    case = w.do("C1", c.DropGoal("G2", "the family chose another route"))
    g2 = goal_of(case, "G2")
    assert (g2.dropped_at, g2.drop_reason) == (w.now, "the family chose another route")
    assert [g.goal_id for g in case.current_goals] == ["G1"]
    w.invalid("C1", c.DropGoal("G2", "again"), "goal_id")
    w.invalid("C1", c.ReviseGoal("G2", "licence later", "changed mind"), "goal_id")
    w.do("C1", c.SetGoal(cm.Goal("G3", "treatment for the back", ["N2"])))
    w.do("C1", c.RevisePlan())
    assert w.do("C1", c.ApprovePlan(), actor=SUPERVISOR).plan_version == 2

    versions = cm.plan_versions(w.m.history("C1"))
    assert [(v.version, v.episode, v.added, v.revised, v.dropped) for v in versions] == [
        (1, 1, ("G1", "G2"), (), ()),
        (2, 1, ("G3",), ("G1",), ("G2",)),
    ]
    assert [(g.goal_id, g.description) for g in versions[1].goals] == [
        ("G1", "part-time work"),
        ("G3", "treatment for the back"),
    ]
    assert (versions[1].approved_at, versions[1].approved_by) == (w.now, "lead-1")


def test_a_plan_with_every_goal_dropped_is_not_approved(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_planning()
    w.do("C1", c.SetGoal(cm.Goal("G1", "back in work", ["N1"])))
    w.do("C1", c.DropGoal("G1", "the employer closed"))
    w.refused("C1", c.ApprovePlan(), "plan_has_goals", "no_goals", actor=SUPERVISOR)
    w.do("C1", c.SetGoal(cm.Goal("G2", "retraining", ["N1"])))
    assert w.do("C1", c.ApprovePlan(), actor=SUPERVISOR).state is S.SERVICE
    [version] = cm.plan_versions(w.m.history("C1"))
    assert [g.goal_id for g in version.goals] == ["G2"]


# -- 7. transfers and referrals to other agencies ------------------------------------------


def test_a_transfer_tells_both_sides_without_the_note(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.do("C1", c.AssignCaseworker("worker-1"))
    w.do("C1", c.StartIntake())
    note = "father works nights; visit after six, a dog in the yard"
    w.invalid("C1", c.TransferCase(note), "caseworker_id")
    w.invalid("C1", c.TransferCase(note, caseworker_id="worker-1"), "caseworker_id")
    w.invalid("C1", c.TransferCase(" ", caseworker_id="worker-2"), "note")
    w.invalid(
        "C1", c.TransferCase(note, caseworker_id="worker-2", from_caseworker_id="x"), "from_caseworker_id"
    )

    sent_before = len(w.notifier.sent)
    case = w.do("C1", c.TransferCase(note, caseworker_id="worker-2", team_id="team-east"))
    assert (case.caseworker_id, case.team_id) == ("worker-2", "team-east")
    payload = w.last("C1", c.TransferCase)
    assert (payload.from_caseworker_id, payload.from_team_id, payload.note) == ("worker-1", None, note)
    sent = w.notifier.sent[sent_before:]
    assert {(n.kind, n.recipient, n.data["side"]) for n in sent} == {
        (cm.NotificationKind.TRANSFER, "worker-1", "from"),
        (cm.NotificationKind.TRANSFER, "worker-2", "to"),
    }
    for n in sent:
        assert "dog" not in repr(n)
        assert "nights" not in repr(n)
        assert w.m.store.notification_delivered_at(n.notification_id) == w.now  # through the outbox

    # worker-1 is off the case now; the caseworker who took it hands it on.
    with pytest.raises(cm.CaseNotFound):
        w.m.handle("C1", c.TransferCase("back to me", caseworker_id="worker-1"), actor=WORKER)
    sent_before = len(w.notifier.sent)
    taker = cm.Actor("worker-2", "caseworker")
    case = w.do("C1", c.TransferCase("to the night team", team_id="team-night"), actor=taker)
    assert case.team_id == "team-night"
    assert {(n.recipient, n.data["side"]) for n in w.notifier.sent[sent_before:]} == {
        ("worker-2", "from"),
        ("team-night", "to"),
    }


def test_a_referral_to_another_agency_is_accepted_or_declined(world: Callable[..., World]) -> None:
    centre = cm.Agency("mental-health-centre", "Mental health centre")
    w = world()
    w.open()
    w.to_service()
    w.refused("C1", c.ReferOut(centre, "needs specialist care"), "sharing_consent", "consent_missing")
    w.consent("C1", Scope.SHARING, "share-mhc", centre.id)
    case = w.do("C1", c.ReferOut(centre, "needs specialist care"))
    assert (case.state, case.referral_out) == (S.SERVICE, cm.AgencyReferral(centre, w.now))
    [told] = w.notifier.sent[-1:]
    assert (told.kind, told.recipient) == (cm.NotificationKind.AGENCY_REFERRAL, centre.id)
    assert "specialist" not in repr(told)  # the note stays in the case's history
    assert [d.subject for d in w.due_of(cm.DueKind.AGENCY_REFERRAL)] == [centre.id]
    w.refused("C1", c.ReferOut(centre), "no_referral_pending", "referral_already_pending")

    w.invalid("C1", c.ReferralDeclined(" "), "reason")
    case = w.do("C1", c.ReferralDeclined("no capacity this quarter"), days=7)
    assert (case.state, case.referral_out, case.closure) == (S.SERVICE, None, None)
    assert item_of(case, "S1").active
    w.refused("C1", c.ReferralDeclined("again"), "referral_pending", "no_pending_referral")
    w.refused("C1", c.ReferralAccepted("MHC-1"), "referral_pending", "no_pending_referral")

    w.do("C1", c.ReferOut(centre, "asked again"), days=30)
    case = w.do("C1", c.ReferralAccepted("MHC-2026-0042"), days=3)
    assert case.state is S.CLOSED
    assert case.closure == cm.Closure(cm.ClosureReason.TRANSFERRED, w.now)
    assert (case.handed_over_to, case.referral_out) == (centre, None)
    s1 = item_of(case, "S1")
    assert (s1.ended_at, s1.outcome) == (w.now, "case closed: transferred")


# -- 8. no contact --------------------------------------------------------------------------


def test_a_case_without_contact_is_listed_as_unreachable(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    deadline = T0 + 30 * DAY
    [early] = w.due_of(cm.DueKind.NO_CONTACT, now=T0 + 29 * DAY)
    assert (early.subject, early.due_at, early.overdue) == ("unreachable", deadline, False)

    w.clock.now = T0 + 31 * DAY
    assert [(d.subject, d.overdue) for d in w.due_of(cm.DueKind.NO_CONTACT)] == [("unreachable", True)]
    w.do("C1", c.RecordJournal(cm.JournalKind.NEW_FINDING, "rent arrears of four months"))
    assert [d.due_at for d in w.due_of(cm.DueKind.NO_CONTACT)] == [deadline]  # a note is no contact

    w.do("C1", c.RecordJournal(cm.JournalKind.CONTACT, "home visit", "parent"))
    assert w.due_of(cm.DueKind.NO_CONTACT) == []
    [later] = w.due_of(cm.DueKind.NO_CONTACT, now=w.now + 29 * DAY)
    assert (later.due_at, later.overdue) == (w.now + 30 * DAY, False)

    w.clock.now += 31 * DAY
    assert [d.overdue for d in w.due_of(cm.DueKind.NO_CONTACT)] == [True]
    w.do("C1", c.Close(cm.ClosureReason.UNREACHABLE))
    assert w.due_of(cm.DueKind.NO_CONTACT, now=w.now + 400 * DAY) == []


def test_a_reopened_episode_counts_no_contact_from_its_start(world: Callable[..., World]) -> None:
    w = world()
    w.open()
    w.to_service()
    w.do("C1", c.RecordJournal(cm.JournalKind.CONTACT, "phone call"), days=1)
    w.do("C1", c.Close(cm.ClosureReason.GOALS_MET), days=20)
    w.do("C1", c.Reopen("the household asked for help again"), actor=SUPERVISOR, days=100)
    assert w.due_of(cm.DueKind.NO_CONTACT) == []
    [due] = w.due_of(cm.DueKind.NO_CONTACT, now=w.now + 29 * DAY)
    assert due.due_at == w.now + 30 * DAY
