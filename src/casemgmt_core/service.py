"""The service layer: :class:`CaseManager` loads, authorises, decides, stores and notifies.

Each call is one unit of work. The case, its new events and the notifications they trigger are
committed together (the notifications go to the store's outbox); only then are notifications
handed to the notifier, and a notification that fails stays in the outbox for
:meth:`CaseManager.deliver_pending`. Every refusal (an unauthorised actor, a guard, a command
that does not apply, invalid data) is recorded for audit before it is raised, and changes nothing.

:class:`AsyncCaseManager` is the same unit of work for asyncio hosts: each step is written once,
as a generator that yields the port calls it needs (:class:`_Call`), and the two managers differ
only in how they make those calls (directly, or awaited).
"""

from __future__ import annotations

import datetime as dt
import inspect
import uuid
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from attrs import field, frozen

from . import commands as c
from ._validation import aware_datetime_value, check_identifier, check_instance
from .access import AccessDecision, AccessRule, Purpose, TeamAccess, actions_taken
from .engine import Decision, decide, journal, replay
from .errors import (
    AuthorizationDenied,
    CaseManagementError,
    CaseNotFound,
    ConcurrencyConflict,
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
    DueQuery,
    DuplicateRegistry,
    NoRegistry,
    Notification,
    Notifier,
    Page,
    Refusal,
)
from .schedule import DueItem, deadlines

__all__ = ["AsyncCaseManager", "CaseManager", "utc_now"]

T = TypeVar("T")


def _check_actor(actor: object) -> None:
    check_instance(actor, Actor, "actor")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@frozen
class _Call:
    """One call a unit of work needs of a port: ``port`` is ``store``, ``registry`` or ``notifier``."""

    port: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(factory=dict)


def _store(method: str, *args: Any, **kwargs: Any) -> _Call:
    return _Call("store", method, args, kwargs)


#: A unit of work: yields the port calls it needs, is sent their results (or thrown their errors).
Flow = Generator[_Call, Any, T]


class _Stale(Exception):
    """A command decided on a remembered case met a refusal or a conflict: decide it on the loaded case."""


class _Manager:
    """What both managers share: configuration and every unit of work, as a :data:`Flow`."""

    def __init__(
        self,
        store: Any,
        *,
        policy: Policy = DEFAULT_POLICY,
        notifier: Any = None,
        registry: Any = None,
        clock: Callable[[], dt.datetime] = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        observe: Callable[[Decision], None] | None = None,
        access: AccessRule | None = None,
    ) -> None:
        check_instance(store, CaseStore, "store")
        check_instance(policy, Policy, "policy")
        if access is not None and not callable(getattr(access, "authorize", None)):
            raise InvalidData("must have an authorize(actor, action, case, purpose) method", field="access")
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
        self.registry = registry or NoRegistry()
        self.clock = clock
        self.new_id = new_id
        self.observe = observe
        self.access: AccessRule = TeamAccess(policy.access) if access is None else access

    def _port(self, call: _Call) -> Callable[..., Any]:
        target = {"store": self.store, "registry": self.registry, "notifier": self.notifier}[call.port]
        fn: Callable[..., Any] = getattr(target, call.method)
        return fn

    # -- units of work ------------------------------------------------------------------------

    def _open_case(
        self,
        household: Household,
        referral: Referral,
        actor: Actor,
        case_id: str | None,
        note: str,
        correlation_id: str | None,
    ) -> Flow[Case]:
        _check_actor(actor)
        command = c.OpenCase(self.new_id() if case_id is None else case_id, household, referral)
        now = self._now()
        yield from self._authorize(command.case_id, None, command, actor, now, correlation_id)
        existing = yield _store("active_case_for_household", household.household_id)
        if existing is not None:
            error = DuplicateCase(household_id=household.household_id, existing_case_id=existing)
            yield from self._refuse(command.case_id, command, actor, now, correlation_id, error)
            raise error
        facts = Facts(
            managed_elsewhere_by=(yield _Call("registry", "managing_agency", (household,))),
            previous_case=(yield from self._latest_case(household.household_id)),
        )
        decision = yield from self._decide(None, command, actor, now, facts, note, correlation_id)
        yield from self._authorize_taken(
            command.case_id, decision.case, decision, command, actor, now, correlation_id
        )
        return (yield from self._commit(decision, 0, command, actor, now, correlation_id))

    def _handle(
        self, case_id: str, command: c.Command, actor: Actor, note: str, correlation_id: str | None
    ) -> Flow[Case]:
        check_identifier(case_id, "case_id")
        _check_actor(actor)
        if not isinstance(command, c.Command) or isinstance(command, c.OpenCase):
            raise InvalidData(
                f"must be a command on an existing case, not {type(command).__name__}",
                field="command",
                allowed="a Command other than OpenCase (use open_case)",
            )
        # Decided before anything is loaded: a role that may not take the action learns nothing
        # of the case, not even whether it exists.
        yield from self._authorize(case_id, None, command, actor, self._now(), correlation_id)
        if callable(getattr(self.store, "cached_case", None)):
            remembered = yield _store("cached_case", case_id)
            if remembered is not None:
                try:
                    return (
                        yield from self._decide_and_commit(
                            remembered, command, actor, note, correlation_id, True
                        )
                    )
                except _Stale:
                    pass
        case = yield _store("load", case_id)
        return (yield from self._decide_and_commit(case, command, actor, note, correlation_id, False))

    def _decide_and_commit(
        self,
        case: Case,
        command: c.Command,
        actor: Actor,
        note: str,
        correlation_id: str | None,
        remembered: bool,
    ) -> Flow[Case]:
        """Authorise, decide and commit ``command`` on ``case``.

        A ``remembered`` case is the one the store last wrote or read, not loaded for this call,
        and may be behind the database. Whatever would refuse the command on it (the actor, a
        guard, invalid data, any error while deciding, a conflict at commit) is therefore not the
        verdict: it raises :class:`_Stale`, and the command is decided again on the case as
        loaded, whose refusal is the one recorded. A commit that succeeds was decided on the stored
        case: the store commits only on the version (and chain head) the case was at.
        """
        now = self._now()
        yield from self._authorize(
            case.case_id, case, command, actor, now, correlation_id, stale_ok=remembered
        )
        facts = yield from self._facts(case, command)
        decision = yield from self._decide(
            case, command, actor, now, facts, note, correlation_id, stale_ok=remembered
        )
        yield from self._authorize_taken(
            case.case_id, case, decision, command, actor, now, correlation_id, stale_ok=remembered
        )
        return (
            yield from self._commit(
                decision, case.version, command, actor, now, correlation_id, stale_ok=remembered
            )
        )

    def _deliver_pending(self, limit: int) -> Flow[int]:
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise InvalidData("must be a whole number from 1 to 1000", field="limit", value=repr(limit)[:40])
        if self.notifier is None:
            return 0
        pending = yield _store("pending_notifications", now=self._now(), limit=limit)
        return (yield from self._deliver([p.notification for p in pending]))

    def _due(self, now: dt.datetime | None, query: CaseQuery | None) -> Flow[list[DueItem]]:
        now = self._now() if now is None else aware_datetime_value(now, "now")
        check_instance(query, CaseQuery, "query", nullable=True)
        q = query or CaseQuery()
        items: list[DueItem] = []
        after: str | None = None
        while True:
            page = yield _store(
                "due",
                DueQuery(
                    now,
                    state=q.state,
                    caseworker_id=q.caseworker_id,
                    household_id=q.household_id,
                    limit=5000,
                    after=after,
                ),
            )
            items.extend(page.items)
            if page.next_after is None:
                break
            after = page.next_after
        # The order DueItem defines, by a tuple key: attrs' ordering costs 50x more per comparison.
        items.sort(key=lambda i: (i.due_at, i.case_id, i.kind, i.subject, i.overdue))
        return items

    def _now(self) -> dt.datetime:
        return aware_datetime_value(self.clock(), "clock()")

    def _latest_case(self, household_id: str) -> Flow[Case | None]:
        """The household's case closed on the client's death if there is one (it bars a new case),
        else its case whose latest episode started last."""
        latest: Case | None = None
        after: str | None = None
        while True:
            page: Page = yield _store("find", CaseQuery(household_id=household_id, limit=1000, after=after))
            for case in page.items:
                if case.closure is not None and case.closure.reason is ClosureReason.DEATH:
                    return case
                key = (case.episode_started_at, case.case_id)
                if latest is None or key > (latest.episode_started_at, latest.case_id):
                    latest = case
            if page.next_after is None:
                return latest
            after = page.next_after

    def _facts(self, case: Case, command: c.Command) -> Flow[Facts]:
        if isinstance(command, c.Select | c.HandOver):
            return Facts(managed_elsewhere_by=(yield _Call("registry", "managing_agency", (case.household,))))
        if isinstance(command, c.LinkService):
            need = case.need(command.item.need_id)
            if need is not None:
                provider = yield _Call(
                    "registry", "service_provider", (case.household, need, command.item.service)
                )
                if provider is not None and provider.id != command.item.provider.id:
                    return Facts(service_linked_elsewhere_by=provider)
        if isinstance(command, c.FileMandatoryReport):
            report = next(
                (r for r in case.mandatory_reports if r.ground is command.ground and not r.filed), None
            )
            if report is not None:
                delivered = yield from self._delivered_at(mandatory_report_notification_ids(report))
                return Facts(report_delivered_at=delivered)
        return NO_FACTS

    def _delivered_at(self, notification_ids: Sequence[str]) -> Flow[dt.datetime | None]:
        """When the last of these outbox notifications was delivered; ``None`` while any is not."""
        times = []
        for notification_id in notification_ids:
            try:
                at = yield _store("notification_delivered_at", notification_id)
            except InvalidData:  # never enqueued: not delivered
                return None
            if at is None:
                return None
            times.append(at)
        return max(times, default=None)

    def _authorize(
        self,
        case_id: str,
        case: Case | None,
        command: c.Command,
        actor: Actor,
        now: dt.datetime,
        correlation_id: str | None,
        *,
        stale_ok: bool = False,
    ) -> Flow[None]:
        """Ask the access rule; a denial is recorded, then raised.

        Without a case (before it is loaded, or a new one) the denial is
        :class:`~casemgmt_core.AuthorizationDenied`, which says nothing about any case. A denial
        given the case is raised as :class:`~casemgmt_core.CaseNotFound`, the very answer an
        unknown id gets, so that a caller cannot probe which cases exist; the refusal record
        keeps the rule's reason for the audit.
        """
        decision = self._ask(actor, command.event, case)
        if not decision.allowed:
            if stale_ok:
                raise _Stale
            error = self._denied(case_id, command.event, actor, decision)
            yield from self._refuse(case_id, command, actor, now, correlation_id, error)
            if case is not None:
                raise CaseNotFound(case_id) from None
            raise error

    def _ask(self, actor: Actor, action: str, case: Case | None) -> AccessDecision:
        answer = self.access.authorize(actor, action, case, Purpose.CASE_WORK)
        if type(answer) is not AccessDecision:
            raise InvalidData(
                f"the access rule answered a {type(answer).__name__}, not an AccessDecision",
                field="access",
            )
        return answer

    def _denied(self, case_id: str, event: str, actor: Actor, answer: AccessDecision) -> AuthorizationDenied:
        return AuthorizationDenied(
            case_id=case_id,
            event=event,
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=self.policy.access.roles_allowed(event),
            reason=answer.reason,
        )

    def _authorize_taken(
        self,
        case_id: str,
        case: Case,
        decision: Decision,
        command: c.Command,
        actor: Actor,
        now: dt.datetime,
        correlation_id: str | None,
        *,
        stale_ok: bool = False,
    ) -> Flow[None]:
        """The transitions the engine takes on the actor's behalf (a hand-over on opening, a
        closure on the withdrawal of consent: :func:`~casemgmt_core.access.actions_taken`) need
        the actor's permission as if asked for; refused, the refusal is recorded."""
        taken = dict.fromkeys(action for e in decision.events for action in actions_taken(e))
        for event in (action for action in taken if action != command.event):
            answer = self._ask(actor, event, case)
            if answer.allowed:
                continue
            if stale_ok:
                raise _Stale
            error = self._denied(case_id, event, actor, answer)
            yield from self._refuse(case_id, command, actor, now, correlation_id, error)
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
        *,
        stale_ok: bool = False,
    ) -> Flow[Decision]:
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
        except Exception as error:
            if stale_ok:  # whatever the loaded case says is the verdict
                raise _Stale from None
            if not isinstance(error, CaseManagementError):
                raise
            case_id = case.case_id if case is not None else getattr(command, "case_id", "")
            yield from self._refuse(case_id, command, actor, now, correlation_id, error)
            raise

    def _refuse(
        self,
        case_id: str,
        command: c.Command,
        actor: Actor,
        now: dt.datetime,
        correlation_id: str | None,
        error: CaseManagementError,
    ) -> Flow[None]:
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
            yield _store("record_refusal", refusal)
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
        *,
        stale_ok: bool = False,
    ) -> Flow[Case]:
        notes = notifications_for(decision.events)
        pending = deadlines(decision.case, self.policy)
        deadline = min((d.due_at for d in pending), default=None)
        commit = Commit(decision.case, decision.events, notes, expected_version, deadline, pending)
        try:
            yield _store("commit", commit)
        except (ConcurrencyConflict, DuplicateCase) as error:
            if stale_ok:
                raise _Stale from None
            if not isinstance(error, DuplicateCase):
                raise
            # Any step that makes a case live (reopen, after-care, or a race between two openings)
            # meets the store's one-live-case-per-household rule here: a refusal like any other.
            yield from self._refuse(decision.case.case_id, command, actor, now, correlation_id, error)
            raise
        if self.observe is not None:
            self.observe(decision)
        if self.notifier is not None and notes:
            yield from self._deliver(notes)
        return decision.case

    def _deliver(self, notes: Sequence[Notification]) -> Flow[int]:
        delivered = 0
        for n in notes:
            try:
                yield _Call("notifier", "send", (n,))
            except Exception:
                continue
            yield _store("mark_delivered", n.notification_id, self.clock())
            delivered += 1
        return delivered


class CaseManager(_Manager):
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
        access: AccessRule | None = None,
    ) -> None:
        super().__init__(
            store,
            policy=policy,
            notifier=notifier,
            registry=registry,
            clock=clock,
            new_id=new_id,
            observe=observe,
            access=access,
        )
        self.store: CaseStore = store

    def _run(self, flow: Flow[T]) -> T:
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                call = flow.send(result) if error is None else flow.throw(error)
            except StopIteration as done:
                value: T = done.value
                return value
            result, error = None, None
            try:
                result = self._port(call)(*call.args, **call.kwargs)
            except Exception as exc:
                error = exc

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
        return self._run(self._open_case(household, referral, actor, case_id, note, correlation_id))

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
        return self._run(self._handle(case_id, command, actor, note, correlation_id))

    def deliver_pending(self, *, limit: int = 100) -> int:
        """Hand notifications still in the outbox to the notifier; return how many were delivered."""
        return self._run(self._deliver_pending(limit))

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
        selects by state, caseworker or household (default: all), sorted by deadline.

        It reads the deadlines stored with each commit, page by page, without loading cases: its
        cost grows with what is due, not with how many cases there are.
        """
        return self._run(self._due(now, query))

    def replay(self, case_id: str) -> Case:
        """Rebuild the case from its events (compare with :meth:`get` to verify the record)."""
        return replay(self.store.events(check_identifier(case_id, "case_id")))


class AsyncCaseManager(_Manager):
    """:class:`CaseManager` for asyncio hosts: the same units of work, with every call to the
    store awaited (an :class:`~casemgmt_core.adapters.async_sql.AsyncSQLStore`), and the notifier's
    ``send`` and the registry's methods awaited when they are coroutines. The rules (``decide``)
    are the same pure code. A blocking SQL store is refused: it would stall the event loop.
    """

    def __init__(
        self,
        store: Any,
        *,
        policy: Policy = DEFAULT_POLICY,
        notifier: Any = None,
        registry: Any = None,
        clock: Callable[[], dt.datetime] = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        observe: Callable[[Decision], None] | None = None,
        access: AccessRule | None = None,
    ) -> None:
        from .adapters.sql import SQLStore

        if isinstance(store, SQLStore):
            raise InvalidData(
                "a blocking SQL store would stall the event loop",
                field="store",
                allowed="an AsyncSQLStore (casemgmt_core.adapters.async_sql), or an in-memory store",
            )
        super().__init__(
            store,
            policy=policy,
            notifier=notifier,
            registry=registry,
            clock=clock,
            new_id=new_id,
            observe=observe,
            access=access,
        )

    async def _run(self, flow: Flow[T]) -> T:
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                call = flow.send(result) if error is None else flow.throw(error)
            except StopIteration as done:
                value: T = done.value
                return value
            result, error = None, None
            try:
                result = self._port(call)(*call.args, **call.kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                error = exc

    async def open_case(
        self,
        household: Household,
        referral: Referral,
        *,
        actor: Actor,
        case_id: str | None = None,
        note: str = "",
        correlation_id: str | None = None,
    ) -> Case:
        """See :meth:`CaseManager.open_case`."""
        return await self._run(self._open_case(household, referral, actor, case_id, note, correlation_id))

    async def handle(
        self,
        case_id: str,
        command: c.Command,
        *,
        actor: Actor,
        note: str = "",
        correlation_id: str | None = None,
    ) -> Case:
        """See :meth:`CaseManager.handle`."""
        return await self._run(self._handle(case_id, command, actor, note, correlation_id))

    async def deliver_pending(self, *, limit: int = 100) -> int:
        return await self._run(self._deliver_pending(limit))

    async def get(self, case_id: str) -> Case:
        return await self._run(self._one("load", check_identifier(case_id, "case_id")))

    async def history(self, case_id: str) -> Sequence[Event]:
        return await self._run(self._one("events", check_identifier(case_id, "case_id")))

    async def journal(self, case_id: str) -> list[JournalEntry]:
        return journal(await self.history(case_id))

    async def refusals(self, case_id: str) -> Sequence[Refusal]:
        return await self._run(self._one("refusals", check_identifier(case_id, "case_id")))

    async def find(self, query: CaseQuery) -> Page:
        check_instance(query, CaseQuery, "query")
        return await self._run(self._one("find", query))

    async def due(self, now: dt.datetime | None = None, *, query: CaseQuery | None = None) -> list[DueItem]:
        """See :meth:`CaseManager.due`."""
        return await self._run(self._due(now, query))

    async def replay(self, case_id: str) -> Case:
        return replay(await self.history(case_id))

    @staticmethod
    def _one(method: str, *args: Any) -> Flow[Any]:
        return (yield _store(method, *args))
