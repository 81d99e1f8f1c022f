"""The service layer: :class:`CaseManager` loads, authorises, decides, stores and notifies.

Each call is one unit of work. The case, its new events and the notifications they trigger are
committed together (the notifications go to the store's outbox); only then are notifications
handed to the notifier, and a notification that fails stays in the outbox for
:meth:`CaseManager.deliver_pending`. Every refusal (an unauthorised actor, a guard, a command
that does not apply, invalid data) is recorded for audit before it is raised, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence

from attrs import evolve

from . import commands as c
from ._validation import aware_datetime_value, check_identifier, check_instance
from .engine import Decision, decide, journal, replay
from .errors import (
    AuthorizationDenied,
    CaseManagementError,
    DuplicateCase,
    InvalidData,
    StorageError,
)
from .events import Event
from .guards import NO_FACTS, Facts
from .model import Actor, Case, ClosureReason, Household, JournalEntry, Referral
from .notifications import mandatory_report_notification_ids, notifications_for
from .policy import DEFAULT_POLICY, Policy
from .ports import (
    CaseQuery,
    CaseStore,
    Commit,
    DuplicateRegistry,
    NoRegistry,
    Notification,
    Notifier,
    Page,
    Refusal,
)
from .schedule import DueItem, due, next_deadline

__all__ = ["CaseManager", "utc_now"]


def _check_actor(actor: object) -> None:
    check_instance(actor, Actor, "actor")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CaseManager:
    """The engine as an embedding system uses it.

    ``store`` is required; ``notifier`` and ``registry`` default to none; ``clock`` returns
    timezone-aware datetimes (default: UTC now); ``new_id`` names new cases; ``observe`` is
    called with every committed :class:`~casemgmt_core.Decision` (events and the guards' verdicts),
    e.g. for metrics or test coverage.
    """

    def __init__(
        self,
        store: CaseStore,
        *,
        policy: Policy = DEFAULT_POLICY,
        notifier: Notifier | None = None,
        registry: DuplicateRegistry | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        observe: Callable[[Decision], None] | None = None,
    ) -> None:
        check_instance(store, CaseStore, "store")
        check_instance(policy, Policy, "policy")
        if notifier is not None and not callable(getattr(notifier, "send", None)):
            raise InvalidData("must have a send(notification) method", field="notifier")
        if registry is not None and not (
            callable(getattr(registry, "managing_agency", None))
            and callable(getattr(registry, "service_provider", None))
        ):
            raise InvalidData("must be a DuplicateRegistry", field="registry")
        for name, fn in (("clock", clock), ("new_id", new_id), ("observe", observe)):
            if fn is not None and not callable(fn):
                raise InvalidData(f"must be callable, not {type(fn).__name__}", field=name)
        self.store = store
        self.policy = policy
        self.notifier = notifier
        self.registry: DuplicateRegistry = registry or NoRegistry()
        self.clock = clock
        self.new_id = new_id
        self.observe = observe

    # -- commands ---------------------------------------------------------------------------

    def open_case(
        self,
        household: Household,
        referral: Referral,
        *,
        actor: Actor,
        case_id: str | None = None,
        note: str = "",
        correlation_id: str | None = None,
    ) -> Case:
        """Open a case for a referred household.

        If another agency already manages the household (the registry says so) the case is
        recorded and handed over at once. If this store already holds a live case for the
        household, :class:`~casemgmt_core.DuplicateCase` is raised.
        """
        _check_actor(actor)
        command = c.OpenCase(self.new_id() if case_id is None else case_id, household, referral)
        now = self._now()
        self._authorize(command.case_id, command, actor, now, correlation_id)
        existing = self.store.active_case_for_household(household.household_id)
        if existing is not None:
            error = DuplicateCase(household_id=household.household_id, existing_case_id=existing)
            self._refuse(command.case_id, command, actor, now, correlation_id, error)
            raise error
        facts = Facts(
            managed_elsewhere_by=self.registry.managing_agency(household),
            previous_case=self._latest_case(household.household_id),
        )
        decision = self._decide(None, command, actor, now, facts, note, correlation_id)
        return self._commit(decision, 0, command, actor, now, correlation_id)

    def handle(
        self,
        case_id: str,
        command: c.Command,
        *,
        actor: Actor,
        note: str = "",
        correlation_id: str | None = None,
    ) -> Case:
        """Apply ``command`` to the case; return the case after it. Raises and records on refusal."""
        check_identifier(case_id, "case_id")
        _check_actor(actor)
        if not isinstance(command, c.Command) or isinstance(command, c.OpenCase):
            raise InvalidData(
                f"must be a command on an existing case, not {type(command).__name__}",
                field="command",
                allowed="a Command other than OpenCase (use open_case)",
            )
        case = self.store.load(case_id)
        now = self._now()
        self._authorize(case_id, command, actor, now, correlation_id)
        facts = self._facts(case, command)
        decision = self._decide(case, command, actor, now, facts, note, correlation_id)
        return self._commit(decision, case.version, command, actor, now, correlation_id)

    def deliver_pending(self, *, limit: int = 100) -> int:
        """Hand notifications still in the outbox to the notifier; return how many were delivered."""
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise InvalidData("must be a whole number from 1 to 1000", field="limit", value=repr(limit)[:40])
        if self.notifier is None:
            return 0
        pending = self.store.pending_notifications(now=self._now(), limit=limit)
        return self._deliver([p.notification for p in pending])

    # -- queries ----------------------------------------------------------------------------

    def get(self, case_id: str) -> Case:
        return self.store.load(check_identifier(case_id, "case_id"))

    def history(self, case_id: str) -> Sequence[Event]:
        return self.store.events(check_identifier(case_id, "case_id"))

    def journal(self, case_id: str) -> list[JournalEntry]:
        """The case's journal entries, oldest first."""
        return journal(self.store.events(check_identifier(case_id, "case_id")))

    def refusals(self, case_id: str) -> Sequence[Refusal]:
        return self.store.refusals(check_identifier(case_id, "case_id"))

    def find(self, query: CaseQuery) -> Page:
        check_instance(query, CaseQuery, "query")
        return self.store.find(query)

    def due(self, now: dt.datetime | None = None, *, query: CaseQuery | None = None) -> list[DueItem]:
        """What is due or overdue (within the reminder lead time) across the cases ``query``
        selects (default: all), read page by page from the cases that have a deadline by then."""
        now = self._now() if now is None else aware_datetime_value(now, "now")
        check_instance(query, CaseQuery, "query", nullable=True)
        horizon = now + dt.timedelta(days=self.policy.time_limits.reminder_lead_days)
        query = evolve(query or CaseQuery(limit=500), due_before=horizon)
        items: list[DueItem] = []
        offset: int | None = query.offset
        while offset is not None:
            page = self.store.find(evolve(query, offset=offset))
            items.extend(due(page.items, self.policy, now))
            offset = page.next_offset
        items.sort()
        return items

    def replay(self, case_id: str) -> Case:
        """Rebuild the case from its events (compare with :meth:`get` to verify the record)."""
        return replay(self.store.events(check_identifier(case_id, "case_id")))

    # -- the unit of work -------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return aware_datetime_value(self.clock(), "clock()")

    def _latest_case(self, household_id: str) -> Case | None:
        """The household's case closed on the client's death if there is one (it bars a new case),
        else its case whose latest episode started last."""
        latest: Case | None = None
        offset: int | None = 0
        while offset is not None:
            page = self.store.find(CaseQuery(household_id=household_id, limit=1000, offset=offset))
            for case in page.items:
                if case.closure is not None and case.closure.reason is ClosureReason.DEATH:
                    return case
                key = (case.episode_started_at, case.case_id)
                if latest is None or key > (latest.episode_started_at, latest.case_id):
                    latest = case
            offset = page.next_offset
        return latest

    def _facts(self, case: Case, command: c.Command) -> Facts:
        if isinstance(command, c.Select | c.HandOver):
            return Facts(managed_elsewhere_by=self.registry.managing_agency(case.household))
        if isinstance(command, c.LinkService):
            need = case.need(command.item.need_id)
            if need is not None:
                provider = self.registry.service_provider(case.household, need, command.item.service)
                if provider is not None and provider.id != command.item.provider.id:
                    return Facts(service_linked_elsewhere_by=provider)
        if isinstance(command, c.FileMandatoryReport):
            report = next(
                (r for r in case.mandatory_reports if r.ground is command.ground and not r.filed), None
            )
            if report is not None:
                return Facts(
                    report_delivered_at=self._delivered_at(mandatory_report_notification_ids(report))
                )
        return NO_FACTS

    def _delivered_at(self, notification_ids: Sequence[str]) -> dt.datetime | None:
        """When the last of these outbox notifications was delivered; ``None`` while any is not."""
        times = []
        for notification_id in notification_ids:
            try:
                at = self.store.notification_delivered_at(notification_id)
            except InvalidData:  # never enqueued: not delivered
                return None
            if at is None:
                return None
            times.append(at)
        return max(times, default=None)

    def _authorize(
        self, case_id: str, command: c.Command, actor: Actor, now: dt.datetime, correlation_id: str | None
    ) -> None:
        if not self.policy.access.allows(actor.role, command.event):
            error = AuthorizationDenied(
                case_id=case_id,
                event=command.event,
                actor_id=actor.id,
                role=actor.role,
                allowed_roles=self.policy.access.roles_allowed(command.event),
            )
            self._refuse(case_id, command, actor, now, correlation_id, error)
            raise error

    def _decide(
        self,
        case: Case | None,
        command: c.Command,
        actor: Actor,
        now: dt.datetime,
        facts: Facts,
        note: str,
        correlation_id: str | None,
    ) -> Decision:
        try:
            return decide(
                case,
                command,
                self.policy,
                now,
                actor=actor,
                facts=facts,
                note=note,
                correlation_id=correlation_id,
            )
        except CaseManagementError as error:
            case_id = case.case_id if case is not None else getattr(command, "case_id", "")
            self._refuse(case_id, command, actor, now, correlation_id, error)
            raise

    def _refuse(
        self,
        case_id: str,
        command: c.Command,
        actor: Actor,
        now: dt.datetime,
        correlation_id: str | None,
        error: CaseManagementError,
    ) -> None:
        refusal = Refusal(
            case_id,
            command.event,
            actor.id,
            actor.role,
            now,
            error.code,
            str(error),
            getattr(error, "guard", None),
            getattr(error, "reason", None),
            correlation_id,
        )
        try:
            self.store.record_refusal(refusal)
        except StorageError as storage_error:
            # The refusal itself must reach the caller; the audit failure is chained to it.
            raise error from storage_error

    def _commit(
        self,
        decision: Decision,
        expected_version: int,
        command: c.Command,
        actor: Actor,
        now: dt.datetime,
        correlation_id: str | None,
    ) -> Case:
        notes = notifications_for(decision.events)
        deadline = next_deadline(decision.case, self.policy)
        try:
            self.store.commit(Commit(decision.case, decision.events, notes, expected_version, deadline))
        except DuplicateCase as error:
            # Any step that makes a case live (reopen, after-care, or a race between two openings)
            # meets the store's one-live-case-per-household rule here: a refusal like any other.
            self._refuse(decision.case.case_id, command, actor, now, correlation_id, error)
            raise
        if self.observe is not None:
            self.observe(decision)
        if self.notifier is not None and notes:
            self._deliver(notes)
        return decision.case

    def _deliver(self, notes: Sequence[Notification]) -> int:
        assert self.notifier is not None
        delivered = 0
        for n in notes:
            try:
                self.notifier.send(n)
            except Exception:
                continue
            self.store.mark_delivered(n.notification_id, self.clock())
            delivered += 1
        return delivered
