"""A ``CaseManager`` under test with everything it meets (store, registry, clock, roles), and the
invariants the property tests check after every step."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from casemgmt_core import commands as c
from casemgmt_core.adapters.memory import InMemoryRegistry
from casemgmt_core.engine import Decision, apply, replay
from casemgmt_core.errors import CaseManagementError, CaseNotFound, DuplicateCase, TransitionRefused
from casemgmt_core.events import Event
from casemgmt_core.lifecycle import FINAL_STATES, LIVE_STATES
from casemgmt_core.model import (
    Actor,
    Case,
    CaseState,
    Consent,
    ConsentGiver,
    ConsentScope,
    Household,
    Referral,
)
from casemgmt_core.notifications import mandatory_report_notification_ids
from casemgmt_core.policy import Policy
from casemgmt_core.ports import CaseStore, Notification
from casemgmt_core.service import CaseManager

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
}
#: What a closed case still accepts.
AFTER_CLOSURE = frozenset({"reopen", "start_aftercare"})

Outcome = Case | CaseManagementError


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
        self.manager = CaseManager(
            store,
            policy=policy,
            registry=self.registry,
            notifier=self.receiver,
            clock=lambda: self.now,
            observe=self._observed,
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
        assert live_before is None, f"{household.household_id} got a second live case"
        assert case.case_id == case_id
        assert case.version in (1, 2)
        self.cases.append(case_id)
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
        if event.event == "invoke_override":
            assert event.legal_basis, "an override event must carry its legal basis"
            after = apply(before, event)
            (report,) = [r for r in after.mandatory_reports if r.event_id == event.event_id]
            outbox = mandatory_report_notification_ids(report)
            assert outbox, "an override must trigger the mandatory report"
            for notification_id in outbox:  # in the outbox: pending, or delivered (raises if absent)
                self.store.notification_delivered_at(notification_id)

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


def _consented(case: Case, event: Event, scope: ConsentScope) -> bool:
    agency = event.payload.item.provider.id if isinstance(event.payload, c.LinkService) else None
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
