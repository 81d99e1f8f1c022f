"""In-memory adapters: for tests, simulation and examples. Nothing survives the process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from attrs import evolve

from ..errors import CaseNotFound, ConcurrencyConflict, DuplicateCase
from ..events import Event
from ..lifecycle import LIVE_STATES
from ..model import Agency, Case, Household, Need
from ..ports import (
    BrokenLink,
    CaseQuery,
    ChainReport,
    Commit,
    Notification,
    Page,
    PendingNotification,
    Refusal,
)
from . import (
    GENESIS,
    _chain_of,
    check_chain,
    check_error,
    check_id,
    check_limit,
    check_notification_id,
    check_query,
    check_version,
    prepare_commit,
    prepare_notifications,
    prepare_refusal,
    require_aware,
    unknown_notification,
)

__all__ = ["InMemoryRegistry", "InMemoryStore", "RecordingNotifier"]


class InMemoryStore:
    """A :class:`~casemgmt_core.ports.CaseStore` in dictionaries, with the same guarantees of
    atomicity, optimistic concurrency and hash-chained events as the durable stores (within
    one process)."""

    def __init__(self) -> None:
        self._cases: dict[str, Case] = {}
        self._events: dict[str, list[Event]] = {}
        self._hashes: dict[str, list[tuple[int, str, str]]] = {}
        """``(version, previous, hash)`` of each event, in step with ``_events``: what a database
        row would hold besides the event."""
        self._live_by_household: dict[str, str] = {}
        self._deadlines: dict[str, dt.datetime | None] = {}
        self._refusals: dict[str, list[Refusal]] = {}
        self._outbox: dict[str, PendingNotification] = {}
        self._delivered: dict[str, dt.datetime] = {}

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
        self._deadlines[case.case_id] = commit.next_deadline
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

    def find(self, query: CaseQuery) -> Page:
        check_query(query)
        matches = [
            c
            for c in self._cases.values()
            if (query.state is None or c.state is query.state)
            and (query.caseworker_id is None or c.caseworker_id == query.caseworker_id)
            and (query.household_id is None or c.household_id == query.household_id)
            and (query.due_before is None or _due_by(self._deadlines.get(c.case_id), query.due_before))
        ]
        matches.sort(key=lambda c: c.case_id)
        page = matches[query.offset : query.offset + query.limit]
        more = query.offset + query.limit < len(matches)
        return Page(tuple(page), query.offset + query.limit if more else None)

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


def _due_by(deadline: dt.datetime | None, limit: dt.datetime) -> bool:
    return deadline is not None and deadline <= limit


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
