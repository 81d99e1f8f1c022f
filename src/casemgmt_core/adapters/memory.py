"""In-memory adapters: for tests, simulation and examples. Nothing survives the process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from attrs import evolve

from ..errors import CaseNotFound, ConcurrencyConflict, DuplicateCase
from ..events import Event
from ..lifecycle import LIVE_STATES
from ..model import Agency, Case, CaseState, Household, Need
from ..ports import (
    DEFAULT_TENANT,
    BrokenLink,
    CaseQuery,
    ChainReport,
    Commit,
    DuePage,
    DueQuery,
    Notification,
    Page,
    PendingNotification,
    Refusal,
)
from ..schedule import Deadline
from . import (
    GENESIS,
    _chain_of,
    check_chain,
    check_due_query,
    check_error,
    check_id,
    check_limit,
    check_notification_id,
    check_query,
    check_version,
    cursor_time,
    decode_cursor,
    due_order,
    encode_cursor,
    prepare_commit,
    prepare_notifications,
    prepare_refusal,
    require_aware,
    unknown_notification,
)

__all__ = ["InMemoryRegistry", "InMemoryStore", "RecordingNotifier"]


class _Tenant:
    """What one tenant has stored: the tables of a durable store, as dictionaries."""

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self.events: dict[str, list[Event]] = {}
        self.hashes: dict[str, list[tuple[int, str, str]]] = {}
        self.live_by_household: dict[str, str] = {}
        self.next_deadline: dict[str, dt.datetime | None] = {}
        self.deadlines: dict[str, tuple[Deadline, ...]] = {}
        self.refusals: dict[str, list[Refusal]] = {}
        self.outbox: dict[str, PendingNotification] = {}
        self.delivered: dict[str, dt.datetime] = {}


class _Storage:
    """Everything an :class:`InMemoryStore` and the stores of its other tenants hold."""

    def __init__(self) -> None:
        self.tenants: dict[str, _Tenant] = {}

    def tenant(self, tenant_id: str) -> _Tenant:
        return self.tenants.setdefault(tenant_id, _Tenant())


class InMemoryStore:
    """A :class:`~casemgmt_core.ports.CaseStore` in dictionaries, with the same guarantees of
    atomicity, optimistic concurrency and hash-chained events as the durable stores (within
    one process), and the same answers: the same pages, cursors and tenancy.

    ``tenant`` is the tenant this store object reads and writes; :meth:`for_tenant` gives a store
    of another tenant over the same dictionaries.
    """

    tenant_id: str

    def __init__(self, tenant: str = DEFAULT_TENANT, *, _storage: _Storage | None = None) -> None:
        self.tenant_id = check_id(tenant, "tenant_id")
        self._storage = _Storage() if _storage is None else _storage
        state = self._storage.tenant(self.tenant_id)
        # The tenant's dictionaries, shared with every store object of the same tenant: they are
        # changed in place, never replaced.
        self._cases = state.cases
        self._events = state.events
        self._hashes = state.hashes
        """``(version, previous, hash)`` of each event, in step with ``_events``: what a database
        row would hold besides the event."""
        self._live_by_household = state.live_by_household
        self._next_deadline = state.next_deadline
        self._deadlines = state.deadlines
        self._refusals = state.refusals
        self._outbox = state.outbox
        self._delivered = state.delivered

    def for_tenant(self, tenant_id: str) -> InMemoryStore:
        """A store of ``tenant_id`` over the same storage; an id that is not an identifier is
        :class:`~casemgmt_core.InvalidData`."""
        return InMemoryStore(check_id(tenant_id, "tenant_id"), _storage=self._storage)

    def __repr__(self) -> str:
        return f"InMemoryStore(tenant={self.tenant_id!r})"

    def commit(self, commit: Commit) -> None:
        # The same validation and serialisation as the durable stores (the case, events and
        # notifications written out and loaded back), so that this store accepts exactly the
        # commits they accept, and the hash chain is the same. Objects are kept, not the text.
        prepared = prepare_commit(commit)
        case = commit.case
        current = self._cases.get(case.case_id)
        actual = current.version if current is not None else 0
        if actual != commit.expected_version:
            raise ConcurrencyConflict(
                case_id=case.case_id,
                expected_version=commit.expected_version,
                actual_version=actual if current is not None else None,
            )
        household = case.household_id
        live = self._live_by_household.get(household)
        if case.state in LIVE_STATES and live is not None and live != case.case_id:
            raise DuplicateCase(household_id=household, existing_case_id=live)
        # Checks are done: from here on nothing can fail, so the commit is all-or-nothing.
        self._cases[case.case_id] = case
        self._next_deadline[case.case_id] = prepared.next_deadline
        self._deadlines[case.case_id] = prepared.deadlines
        self._events.setdefault(case.case_id, []).extend(commit.events)
        chain = self._hashes.setdefault(case.case_id, [])
        hashes = prepared.hashes(chain[-1][2] if chain else GENESIS)
        chain.extend((e.version, prev, h) for e, (prev, h) in zip(commit.events, hashes, strict=True))
        if case.state in LIVE_STATES:
            self._live_by_household[household] = case.case_id
        elif live == case.case_id:
            del self._live_by_household[household]
        self._enqueue(commit.notifications)

    def load(self, case_id: str) -> Case:
        check_id(case_id, "case_id")
        try:
            return self._cases[case_id]
        except KeyError:
            raise CaseNotFound(case_id) from None

    def events(self, case_id: str, *, after_version: int = 0) -> Sequence[Event]:
        check_id(case_id, "case_id")
        check_version(after_version, "after_version")
        if case_id not in self._cases:
            raise CaseNotFound(case_id)
        return tuple(e for e in self._events[case_id] if e.version > after_version)

    def active_case_for_household(self, household_id: str) -> str | None:
        check_id(household_id, "household_id")
        return self._live_by_household.get(household_id)

    def _selected(
        self, state: CaseState | None, caseworker_id: str | None, household_id: str | None
    ) -> list[Case]:
        return [
            c
            for c in self._cases.values()
            if (state is None or c.state is state)
            and (caseworker_id is None or c.caseworker_id == caseworker_id)
            and (household_id is None or c.household_id == household_id)
        ]

    def find(self, query: CaseQuery) -> Page:
        check_query(query)
        cases = self._selected(query.state, query.caseworker_id, query.household_id)
        limit = query.limit
        if query.due_before is None:
            after = None if query.after is None else decode_cursor(query.after, 1, "CaseQuery.after")[0]
            keyed = sorted((c.case_id, c) for c in cases if after is None or c.case_id > after)
            page = [c for _, c in keyed[:limit]]
            more = len(keyed) > limit
            return Page(tuple(page), encode_cursor(page[-1].case_id) if more else None)
        due_before = require_aware(query.due_before, "CaseQuery.due_before")
        start: tuple[dt.datetime, str] | None = None
        if query.after is not None:
            when, case_id = decode_cursor(query.after, 2, "CaseQuery.after")
            start = (cursor_time(when, "CaseQuery.after"), case_id)
        due: list[tuple[tuple[dt.datetime, str], Case]] = []
        for c in cases:
            deadline = self._next_deadline.get(c.case_id)
            if deadline is not None and deadline <= due_before:
                key = (deadline, c.case_id)
                if start is None or key > start:
                    due.append((key, c))
        due.sort(key=lambda pair: pair[0])
        page = [c for _, c in due[:limit]]
        if len(due) <= limit:
            return Page(tuple(page), None)
        last, last_id = due[limit - 1][0]
        return Page(tuple(page), encode_cursor(last.isoformat(), last_id))

    def due(self, query: DueQuery) -> DuePage:
        check_due_query(query)
        now = require_aware(query.now, "DueQuery.now")
        start: tuple[dt.datetime, str, str, str] | None = None
        if query.after is not None:
            when, case_id, kind, subject = decode_cursor(query.after, 4, "DueQuery.after")
            start = (cursor_time(when, "DueQuery.after"), case_id, kind, subject)
        listed = sorted(
            (
                d
                for c in self._selected(query.state, query.caseworker_id, query.household_id)
                for d in self._deadlines.get(c.case_id, ())
                if d.listed_from <= now and (start is None or due_order(d) > start)
            ),
            key=due_order,
        )
        page = listed[: query.limit]
        items = tuple(d.item(now) for d in page)
        if len(listed) <= query.limit:
            return DuePage(items, None)
        last = page[-1]
        return DuePage(
            items, encode_cursor(last.listed_from.isoformat(), last.case_id, last.kind.value, last.subject)
        )

    def record_refusal(self, refusal: Refusal) -> None:
        prepare_refusal(refusal)
        self._refusals.setdefault(refusal.case_id, []).append(refusal)

    def refusals(self, case_id: str) -> Sequence[Refusal]:
        check_id(case_id, "case_id")
        return tuple(self._refusals.get(case_id, ()))

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        prepare_notifications(notifications, "notifications")
        return self._enqueue(notifications)

    def _enqueue(self, notifications: Sequence[Notification]) -> int:
        new = 0
        for n in notifications:
            if n.notification_id not in self._outbox:
                self._outbox[n.notification_id] = PendingNotification(n)
                new += 1
        return new

    def pending_notifications(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> Sequence[PendingNotification]:
        check_limit(limit)
        if now is not None:
            now = require_aware(now, "now")
        pending = [
            p
            for k, p in self._outbox.items()
            if k not in self._delivered
            and (now is None or p.next_attempt_at is None or p.next_attempt_at <= now)
        ]
        return tuple(pending[:limit])

    def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        check_notification_id(notification_id)
        when = require_aware(at, "at")
        self._known(notification_id)
        self._delivered.setdefault(notification_id, when)

    def mark_failed(self, notification_id: str, *, error: str, retry_at: dt.datetime) -> None:
        check_notification_id(notification_id)
        check_error(error)
        when = require_aware(retry_at, "retry_at")
        entry = self._known(notification_id)
        if notification_id not in self._delivered:
            self._outbox[notification_id] = evolve(
                entry, attempts=entry.attempts + 1, last_error=error, next_attempt_at=when
            )

    def notification_delivered_at(self, notification_id: str) -> dt.datetime | None:
        check_notification_id(notification_id)
        self._known(notification_id)
        return self._delivered.get(notification_id)

    def _known(self, notification_id: str) -> PendingNotification:
        try:
            return self._outbox[notification_id]
        except KeyError:
            raise unknown_notification(notification_id) from None

    def verify(self, case_id: str | None = None) -> ChainReport:
        if case_id is not None:
            check_id(case_id, "case_id")
        if case_id is not None and case_id not in self._cases and case_id not in self._events:
            raise CaseNotFound(case_id)
        ids = sorted(set(self._cases) | set(self._events)) if case_id is None else [case_id]
        broken: list[BrokenLink] = []
        total = 0
        for cid in ids:
            case = self._cases.get(cid)
            chain = self._hashes.get(cid, [])
            link, checked = check_chain(
                cid,
                _chain_of(self._events.get(cid, []), chain),
                case_version=case.version if case is not None else None,
                head=chain[-1][2] if chain else GENESIS,
                stored_case=case,
            )
            total += checked
            if link is not None:
                broken.append(link)
        return ChainReport(len(ids), total, tuple(broken))

    def close(self) -> None:
        """Nothing to release; here so that every bundled store can be closed alike."""


class RecordingNotifier:
    """A notifier that keeps what it is sent, for tests and examples."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


class InMemoryRegistry:
    """A :class:`~casemgmt_core.ports.DuplicateRegistry` filled by hand."""

    def __init__(self) -> None:
        self.managed: dict[str, Agency] = {}
        self.services: dict[tuple[str, str, str], Agency] = {}

    def add_managed(self, household_id: str, agency: Agency) -> None:
        self.managed[household_id] = agency

    def add_service(self, household_id: str, need_id: str, service: str, provider: Agency) -> None:
        self.services[(household_id, need_id, service)] = provider

    def managing_agency(self, household: Household) -> Agency | None:
        return self.managed.get(household.household_id)

    def service_provider(self, household: Household, need: Need, service: str) -> Agency | None:
        return self.services.get((household.household_id, need.need_id, service))
