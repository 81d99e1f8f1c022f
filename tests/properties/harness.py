"""A ``CaseManager`` under test with everything it meets (store, registry, clock, roles), and the
invariants the property tests check after every step."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from casemgmt_core import commands as c
from casemgmt_core.access import AccessDecision, Purpose, TeamAccess
from casemgmt_core.adapters.memory import InMemoryRegistry
from casemgmt_core.engine import Decision, apply, replay
from casemgmt_core.errors import CaseManagementError, CaseNotFound, DuplicateCase, TransitionRefused
from casemgmt_core.events import Event
from casemgmt_core.lifecycle import FINAL_STATES, LIVE_STATES
from casemgmt_core.model import (
    Actor,
    ApprovalStatus,
    ApprovalStep,
    Case,
    CaseState,
    ClosureReason,
    Consent,
    ConsentGiver,
    ConsentScope,
    EpisodeRef,
    Household,
    Referral,
)
from casemgmt_core.notifications import mandatory_report_notification_ids
from casemgmt_core.policy import Policy
from casemgmt_core.ports import CaseStore, Notification
from casemgmt_core.service import CaseManager

from . import reference
from .builders import T0
from .coverage import RECORDED, Coverage

#: Events that assess, plan or link a service, and the consent scope each needs.
NEEDS_CONSENT = {
    "select": ConsentScope.SERVICE_PROVISION,
    "approve_plan": ConsentScope.SERVICE_PROVISION,
    "resume_service": ConsentScope.SERVICE_PROVISION,
    "set_goal": ConsentScope.SERVICE_PROVISION,
    "complete_assessment": ConsentScope.PERSONAL_DATA,
    "record_need": ConsentScope.PERSONAL_DATA,
    "record_strength": ConsentScope.PERSONAL_DATA,
    "link_service": ConsentScope.SHARING,
    "refer_out": ConsentScope.SHARING,
    "revise_goal": ConsentScope.SERVICE_PROVISION,
}
#: What a closed case still accepts: reopening, after-care, and the approvals after-care may need.
AFTER_CLOSURE = frozenset({"reopen", "start_aftercare", "request_approval", "approve", "reject"})
#: Steps taken with an approval where the policy asks for one (``link_service``: a relink).
APPROVED_STEPS = {
    "approve_plan": ApprovalStep.PLAN,
    "close": ApprovalStep.CLOSURE,
    "extend_case": ApprovalStep.CASE_EXTENSION,
    "start_aftercare": ApprovalStep.AFTERCARE,
    "extend_service": ApprovalStep.SERVICE_EXTENSION,
    "link_service": ApprovalStep.SERVICE_EXTENSION,
}

Outcome = Case | CaseManagementError


class ByRole:
    """The default rule without caseloads: the machine's reference model knows which role may
    take which transition, not who is on which case (that is ``tests/test_access.py``'s)."""

    def __init__(self, policy: Policy) -> None:
        self.rule = TeamAccess(policy.access)

    def authorize(self, actor: Actor, action: str, case: Case | None, purpose: Purpose) -> AccessDecision:
        return self.rule.authorize(actor, action, None, purpose)


class Receiver:
    """The authorities' and providers' end of the notifications: up, or down (sending fails and
    the notification stays in the outbox)."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if not self.up:
            raise ConnectionError("the receiver is down")
        self.sent.append(notification)


class Harness:
    """Runs commands through a :class:`CaseManager` and checks the invariants.

    ``prefix`` keeps the case and household ids of one run apart from another's in a shared
    store. Coverage is recorded in ``coverage`` under ``source``.
    """

    def __init__(
        self,
        store: CaseStore,
        policy: Policy,
        *,
        source: str,
        prefix: str = "",
        coverage: Coverage = RECORDED,
    ) -> None:
        self.store = store
        self.policy = policy
        self.source = source
        self.prefix = prefix
        self.coverage = coverage
        self.registry = InMemoryRegistry()
        self.receiver = Receiver()
        self.now = T0
        self.cases: list[str] = []
        self.households: dict[str, Household] = {}
        self._replayed: dict[str, Case] = {}
        self._opened = 0
        self._household_of: dict[str, str] = {}
        self.manager = CaseManager(
            store,
            policy=policy,
            registry=self.registry,
            notifier=self.receiver,
            clock=lambda: self.now,
            observe=self._observed,
            access=ByRole(policy),
        )

    # -- driving --------------------------------------------------------------------------------

    def _observed(self, decision: Decision) -> None:
        self.coverage.accepted(self.source, decision)

    def advance(self, days: float) -> None:
        self.now += dt.timedelta(days=days)

    def household(self, household: Household) -> Household:
        """The run's household with this id (the first one drawn for it), id prefixed."""
        hid = self.prefix + household.household_id
        known = self.households.get(hid)
        if known is None:
            known = Household(hid, household.members, household.region, household.low_income)
            self.households[hid] = known
        return known

    def open(self, household: Household, referral: Referral, actor: Actor) -> Outcome:
        household = self.household(household)
        self._opened += 1
        case_id = f"{self.prefix}C{self._opened}"
        live_before = self.store.active_case_for_household(household.household_id)
        hid = household.household_id
        earlier = [self.store.load(x) for x in self.cases if self._household_of[x] == hid]
        died = [x.case_id for x in earlier if _closed_by_death(x)]
        try:
            case = self.manager.open_case(household, referral, actor=actor, case_id=case_id)
        except CaseManagementError as caught:
            error = caught
        else:
            error = None
        if error is not None:
            self._refused(error)
            try:
                self.store.load(case_id)
            except CaseNotFound:
                pass
            else:
                raise AssertionError(f"refused opening {case_id} stored a case") from error
            assert self.store.active_case_for_household(household.household_id) == live_before
            last = self.store.refusals(case_id)[-1]
            assert (last.event, last.code) == ("open", error.code)
            if isinstance(error, DuplicateCase):
                assert live_before is not None
            return error
        assert not died, f"{household.household_id} got a new case after {died} closed on a death"
        assert live_before is None, f"{household.household_id} got a second live case"
        assert case.case_id == case_id
        assert case.version in (1, 2)
        assert case.episode == 1
        # The household's episode before this one is the one that started last (any of them,
        # where several started at the same moment).
        last = max((x.episode_started_at for x in earlier), default=None)
        expected = [EpisodeRef(x.case_id, x.episode) for x in earlier if x.episode_started_at == last]
        if expected:
            assert case.previous_episode in expected, f"{case_id} links to {case.previous_episode}"
        else:
            assert case.previous_episode is None, f"{case_id} links to {case.previous_episode}"
        self.cases.append(case_id)
        self._household_of[case_id] = household.household_id
        return case

    def run(self, case_id: str, command: c.Command, actor: Actor) -> Outcome:
        """Handle ``command``; on refusal check that nothing changed and the refusal was recorded."""
        before = self.store.load(case_id)
        history = tuple(self.store.events(case_id))
        refusals = len(self.store.refusals(case_id))
        try:
            after = self.manager.handle(case_id, command, actor=actor)
        except CaseManagementError as caught:
            error = caught
        else:
            error = None
        if error is not None:
            self._refused(error)
            assert self.store.load(case_id) == before, "a refused command changed the case"
            assert tuple(self.store.events(case_id)) == history, "a refused command changed the history"
            recorded = self.store.refusals(case_id)
            assert len(recorded) == refusals + 1, "the refusal was not recorded"
            assert (recorded[-1].event, recorded[-1].code) == (command.event, error.code)
            if isinstance(error, TransitionRefused):
                assert (recorded[-1].guard, recorded[-1].reason) == (error.guard, error.reason)
            return error
        assert after == self.store.load(case_id)
        assert after.version > before.version
        return after

    def _refused(self, error: CaseManagementError) -> None:
        if isinstance(error, TransitionRefused):
            self.coverage.refused(self.source, error)

    # -- invariants -----------------------------------------------------------------------------

    def check(self) -> None:
        """Every invariant, over every case of this run."""
        live: Counter[str] = Counter()
        for case_id in self.cases:
            case = self.store.load(case_id)
            events = self.store.events(case_id)
            self._check_history(case, events)
            self._check_case(case)
            if case.state in LIVE_STATES:
                live[case.household_id] += 1
                assert self.store.active_case_for_household(case.household_id) == case_id
            report = self.store.verify(case_id)
            assert report.ok, f"hash chain broken: {report.first}"
        double = [h for h, n in live.items() if n > 1]
        assert not double, f"households with two live cases: {double}"

    def _check_history(self, case: Case, events: Sequence[Event]) -> None:
        versions = [e.version for e in events]
        assert versions == list(range(1, len(events) + 1)), f"versions not contiguous: {versions}"
        assert case.version == len(events)
        assert replay(events) == case, "replaying the event log does not give the stored case"
        state = self._replayed.get(case.case_id)
        for event in events[state.version if state is not None else 0 :]:
            if state is not None:
                self._check_step(state, event)
            state = apply(state, event)
            assert (event.episode, event.previous_episode) == (state.episode, state.previous_episode), (
                f"{event.event_id} is not marked with its episode"
            )
            self._check_case(state)
        assert state == case
        self._replayed[case.case_id] = case

    def _check_step(self, before: Case, event: Event) -> None:
        assert event.source is before.state
        assert before.state not in FINAL_STATES, f"{event.event} accepted in final state {before.state}"
        if before.state is CaseState.CLOSED:
            assert event.event in AFTER_CLOSURE, f"closed case accepted {event.event}"
        scope = NEEDS_CONSENT.get(event.event)
        if scope is not None and not _consented(before, event, scope):
            override = before.statutory_override
            assert override is not None, f"{event.event} without consent or statutory basis"
            assert override.in_force(event.occurred_at), f"{event.event} under a lapsed override"
            assert event.legal_basis == override.legal_basis, f"{event.event}: statutory basis not recorded"
        if event.event == "file_report":
            assert isinstance(event.payload, c.FileMandatoryReport)
            delivered = event.payload.delivered_at
            assert delivered is not None, "filed before delivery"
            assert delivered <= event.occurred_at, "filed before delivery"
        if event.event == "confirm_override":
            assert before.statutory_override is not None
            assert event.actor_id != before.statutory_override.actor_id, "confirmed by the invoker"
        after = apply(before, event)
        if event.event == "invoke_override":
            assert event.legal_basis, "an override event must carry its legal basis"
            (report,) = [r for r in after.mandatory_reports if r.event_id == event.event_id]
            outbox = mandatory_report_notification_ids(report)
            assert outbox, "an override must trigger the mandatory report"
            for notification_id in outbox:  # in the outbox: pending, or delivered (raises if absent)
                self.store.notification_delivered_at(notification_id)
        if after.state is CaseState.CLOSED and before.state is not CaseState.CLOSED:
            assert after.closure is not None, f"closed by {event.event} without a closure"
            outcome = f"case closed: {after.closure.reason.value}"
            for s in before.service_items:
                ended = after.service_item(s.item_id)
                assert ended is not None, f"closing lost {s.item_id}"
                if s.active:
                    assert (ended.ended_at, ended.outcome) == (event.occurred_at, outcome), ended
        self._check_episode(before, event, after)
        if event.event in reference.LIMITED and before.state.value in reference.ACTIVE:
            limit = reference.case_limit(before, self.policy)
            assert event.occurred_at <= limit, f"{event.event} accepted past the case limit {limit}"
        self._check_approval_used(before, event, after)
        if event.event in ("approve", "reject"):
            payload = event.payload
            assert isinstance(payload, c.Approve | c.Reject)
            asked = before.approval(payload.approval_id)
            assert asked is not None, "decided an unknown approval"
            assert asked.status is ApprovalStatus.PENDING, "decided twice"
            assert event.actor_id != asked.requested_by, "decided by the person who asked"
            rule = self.policy.approvals.get(asked.step)
            assert event.role in (rule.approved_by if rule is not None else {"supervisor"})
            if rule is not None and rule.by_conference:
                held = [x.conference_id for x in before.conferences if x.held]
                assert payload.conference_id in held, "decided without the conference"

    def _check_episode(self, before: Case, event: Event, after: Case) -> None:
        """A reopening starts a new episode with an empty working set; every other event stays in
        the episode it happens in."""
        if event.event != "reopen":
            assert (event.episode, event.previous_episode) == (before.episode, before.previous_episode)
            return
        assert event.episode == before.episode + 1
        assert event.previous_episode == EpisodeRef(before.case_id, before.episode)
        working = {
            "needs": after.needs,
            "goals": after.goals,
            "service_items": after.service_items,
            "strengths": after.strengths,
            "conferences": after.conferences,
            "approvals": after.approvals,
        }
        kept = [name for name, items in working.items() if items]
        assert not kept, f"a reopened episode carries over {kept}"
        assert after.aftercare is None, "a reopened episode carries the after-care over"
        assert after.closure is None, "a reopened episode is still closed"
        assert not after.crisis_factors, "a reopened episode carries the crisis factors over"
        lapse = self.policy.episodes.reconfirm_consents
        assert after.consents == tuple(x for x in before.consents if x.scope not in lapse), (
            "consents to re-confirm carried over, or others were lost"
        )

    def _check_approval_used(self, before: Case, event: Event, after: Case) -> None:
        """A step the policy asks an approval for used one: approved for that step (and service
        item), and used up by it."""
        step = APPROVED_STEPS.get(event.event)
        if step is None:
            return
        payload = event.payload
        used: str | None = getattr(payload, "approval_id", None)
        subject = ""
        if isinstance(payload, c.ExtendService):
            subject = payload.item_id
        elif isinstance(payload, c.LinkService):
            earlier = reference.relinked(before, payload.item, self.policy)
            if earlier is None:
                assert used is None, "a first link used an approval"
                return
            subject = earlier[0].item_id
        if step in self.policy.approvals:
            assert used is not None, f"{event.event} without the approval the policy asks for"
        if used is None:
            return
        asked = before.approval(used)
        assert asked is not None, f"{event.event} names an unknown approval"
        assert (asked.step, asked.subject, asked.status) == (step, subject, ApprovalStatus.APPROVED), asked
        now = after.approval(used)
        assert now is not None, "the approval is gone"
        assert now.status is ApprovalStatus.USED, "the approval was not used up"

    def _check_case(self, case: Case) -> None:
        override = case.statutory_override
        if override is not None:
            assert override.legal_basis.strip(), "override without a legal basis"
            assert override.actor_id, "override without an actor"
            reports = [r for r in case.mandatory_reports if r.ground is override.ground]
            assert reports, "override without a mandatory report"
            assert all(r.authority for r in reports), "mandatory report without an authority"
            rule = self.policy.statutory[override.ground]
            assert override.legal_basis == rule.legal_basis, "override basis not the policy's"
        for report in case.mandatory_reports:
            assert report.authority == self.policy.statutory[report.ground].authority
            assert (report.reference is None) or report.delivered_at is not None, "filed undelivered"
        for consent in case.consents:
            assert _valid_giver(case, consent, self.policy), (
                f"consent {consent.consent_id} from a wrong giver"
            )
        running = Counter((s.need_id, s.service) for s in case.service_items if s.active)
        twice = [k for k, n in running.items() if n > 1]
        assert not twice, f"service linked twice for the same need: {twice}"
        if case.state is CaseState.CLOSED:
            assert case.closure is not None, "closed without a closure"
            still = [s.item_id for s in case.service_items if s.active]
            assert not still, f"closed with service items running: {still}"
            assert case.aftercare is None or case.aftercare.ended_at is not None, "closed in after-care"
        for a in case.approvals:
            assert a.decided_by is None or a.decided_by != a.requested_by, f"{a.approval_id} self-approved"
            decided = a.status is not ApprovalStatus.PENDING
            assert decided == (a.decided_by is not None), f"{a.approval_id}: {a.status} by {a.decided_by}"
        assert case.plan_version >= (1 if case.plan_approved_at is not None else 0)


def _closed_by_death(case: Case) -> bool:
    return case.closure is not None and case.closure.reason is ClosureReason.DEATH


def _consented(case: Case, event: Event, scope: ConsentScope) -> bool:
    payload = event.payload
    if isinstance(payload, c.LinkService):
        agency: str | None = payload.item.provider.id
    elif isinstance(payload, c.ReferOut):
        agency = payload.agency.id
    else:
        agency = None
    return any(
        x.scope is scope and x.active and (agency is None or x.agency_id == agency) for x in case.consents
    )


def _valid_giver(case: Case, consent: Consent, policy: Policy) -> bool:
    subject = case.household.member(consent.subject_id)
    giver = case.household.member(consent.given_by)
    if subject is None or giver is None:
        return False
    minor = subject.age_on(consent.given_at.date()) < policy.eligibility.age_of_majority
    if consent.giver is ConsentGiver.PERSON:
        return consent.given_by == consent.subject_id and not minor
    return minor and subject.guardian_id == consent.given_by
