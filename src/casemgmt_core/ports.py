"""Ports: the small interfaces through which the engine meets the outside world.

Storage (:class:`CaseStore`), notification channels (:class:`Notifier`) and other agencies'
records (:class:`DuplicateRegistry`) are protocols; adapters live in :mod:`casemgmt_core.adapters`
and an embedding system may supply its own. Every store must pass the shared contract suite in
:mod:`casemgmt_core.testing`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from attrs import Attribute, field, frozen

from ._validation import check_identifier, enum_member, integer, optional
from .errors import InvalidData
from .events import Event
from .model import Agency, Case, CaseState, Household, Need
from .schedule import Deadline, DueItem

__all__ = [
    "BrokenLink",
    "CaseQuery",
    "CaseStore",
    "DEFAULT_TENANT",
    "DuePage",
    "DueQuery",
    "ChainProblem",
    "ChainReport",
    "Commit",
    "DuplicateRegistry",
    "NoRegistry",
    "Notification",
    "NotificationKind",
    "Notifier",
    "Page",
    "PendingNotification",
    "Refusal",
]


class NotificationKind(StrEnum):
    ASSIGNMENT = "assignment"
    MANDATORY_REPORT = "mandatory_report"
    HAND_OVER = "hand_over"
    SERVICE_REFERRAL = "service_referral"
    CONFERENCE_SCHEDULED = "conference_scheduled"
    REMINDER = "reminder"
    TRANSFER = "transfer"
    """To the caseworker (or team) giving up a case and to the one taking it."""
    AGENCY_REFERRAL = "agency_referral"
    """To an agency the case is referred to after intake."""


@frozen
class Notification:
    """A message to one recipient about one event. ``notification_id`` is its idempotency key."""

    notification_id: str
    kind: NotificationKind
    case_id: str
    event_id: str
    recipient: str
    created_at: dt.datetime
    data: Mapping[str, str] = field(factory=dict)
    """Only what the recipient needs; never names, birth dates or free text about the household."""


@frozen
class Refusal:
    """A refused or unauthorised command, kept for audit. It changes no case."""

    case_id: str
    event: str
    actor_id: str
    role: str
    at: dt.datetime
    code: str
    """The error's code, e.g. ``transition_refused`` or ``authorization_denied``."""
    message: str
    guard: str | None = None
    reason: str | None = None
    correlation_id: str | None = None


@frozen
class PendingNotification:
    """An outbox row not yet delivered: the notification and how delivery has gone so far."""

    notification: Notification
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None


@frozen
class Commit:
    """One unit of work: the case after its new events, the events, and the notifications to send.

    ``expected_version`` is the version the decision was based on (0 for a new case): a store
    that holds another version raises :class:`~casemgmt_core.ConcurrencyConflict`.
    """

    case: Case
    events: tuple[Event, ...]
    notifications: tuple[Notification, ...]
    expected_version: int
    next_deadline: dt.datetime | None = None
    """The case's earliest deadline under the policy (see :func:`~casemgmt_core.due`), stored
    so that ``CaseQuery(due_before=...)`` finds cases with something due."""
    deadlines: tuple[Deadline, ...] = ()
    """Every pending deadline of the case under the policy (see
    :func:`~casemgmt_core.schedule.deadlines`): they replace the ones stored before, and
    :meth:`CaseStore.due` answers from them without loading cases."""


def _optional_id(instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None:
        check_identifier(value, f"{type(instance).__name__}.{attribute.name}")


def _optional_aware(instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is None:
        return
    problem = None
    if not isinstance(value, dt.datetime):
        problem = f"must be a timezone-aware datetime, not {type(value).__name__}"
    elif value.tzinfo is None or value.utcoffset() is None:
        problem = "must be timezone-aware"
    else:
        try:
            value.astimezone(dt.UTC)  # stores compare deadlines in UTC
        except OverflowError:
            problem = "cannot be expressed in UTC"
    if problem is not None:
        raise InvalidData(
            problem,
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed="a timezone-aware datetime, or None",
        )


#: The tenant of a store that was given none: a single centre or programme.
DEFAULT_TENANT = "default"

#: Longest page cursor (:attr:`CaseQuery.after`, :attr:`DueQuery.after`).
MAX_CURSOR = 2048


def _optional_cursor(instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is None:
        return
    if type(value) is not str or not 0 < len(value) <= MAX_CURSOR or not value.isascii():
        raise InvalidData(
            "is not a page cursor",
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed="None, or the next_after of the page before",
        )


def _required_aware(instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is None:
        raise InvalidData(
            "is required",
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed="a timezone-aware datetime",
        )
    _optional_aware(instance, attribute, value)


@frozen
class CaseQuery:
    """Which cases :meth:`CaseStore.find` returns, a page at a time. Checked when built: a field
    of the wrong type or out of range is :class:`~casemgmt_core.InvalidData`.

    Pages are keyset pages: pass the previous page's :attr:`Page.next_after` as ``after``. Cases
    come in case id order (code point order); with ``due_before``, in order of their earliest
    deadline, then case id. Every page costs the same, wherever it is.
    """

    state: CaseState | None = field(default=None, validator=optional(enum_member(CaseState)))
    caseworker_id: str | None = field(default=None, validator=_optional_id)
    household_id: str | None = field(default=None, validator=_optional_id)
    due_before: dt.datetime | None = field(default=None, validator=_optional_aware)
    """Only cases whose earliest deadline is at or before this time."""
    limit: int = field(default=50, validator=integer(1, 1000))
    after: str | None = field(default=None, validator=_optional_cursor, repr=False)
    """The cursor of the page before (its :attr:`Page.next_after`); ``None`` for the first page."""


@frozen
class Page:
    items: tuple[Case, ...]
    next_after: str | None
    """Pass as ``after`` for the next page; ``None`` on the last page."""


@frozen
class DueQuery:
    """Which deadlines :meth:`CaseStore.due` returns: those listed by ``now`` (see
    :class:`~casemgmt_core.schedule.Deadline`), of the cases the other fields select, a keyset
    page at a time in order of :attr:`~casemgmt_core.schedule.Deadline.listed_from`."""

    now: dt.datetime = field(validator=_required_aware)
    state: CaseState | None = field(default=None, validator=optional(enum_member(CaseState)))
    caseworker_id: str | None = field(default=None, validator=_optional_id)
    household_id: str | None = field(default=None, validator=_optional_id)
    limit: int = field(default=1000, validator=integer(1, 10_000))
    after: str | None = field(default=None, validator=_optional_cursor, repr=False)


@frozen
class DuePage:
    items: tuple[DueItem, ...]
    """Each item's ``overdue`` says whether ``now`` is past it."""
    next_after: str | None


class ChainProblem(StrEnum):
    """What is wrong at a broken link of a case's hash chain."""

    MISSING = "missing"
    """A version is absent: an event row was deleted (or the case row claims more events)."""
    REORDERED = "reordered"
    """The event stored at this version says it is another version or belongs to another case."""
    UNLINKED = "unlinked"
    """The row's link to the previous event's hash does not match that hash."""
    ALTERED = "altered"
    """The event's content no longer hashes to the hash recorded when it was committed."""
    UNREADABLE = "unreadable"
    """The stored event cannot be loaded at all."""
    SNAPSHOT = "snapshot"
    """The stored case disagrees with its events (version, chain head, or replayed content)."""
    ORPHANED = "orphaned"
    """Events are stored for a case that has no case record."""


@frozen
class BrokenLink:
    """The first place where one case's audit chain does not hold."""

    case_id: str
    version: int
    problem: ChainProblem
    detail: str

    def __str__(self) -> str:
        return f"case {self.case_id}, version {self.version}: {self.problem.value}: {self.detail}"


@frozen
class ChainReport:
    """What :meth:`CaseStore.verify` found: one :class:`BrokenLink` per broken case (its first),
    in case id order."""

    cases_checked: int
    events_checked: int
    broken: tuple[BrokenLink, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.broken

    @property
    def first(self) -> BrokenLink | None:
        return self.broken[0] if self.broken else None


@runtime_checkable
class CaseStore(Protocol):
    """Durable storage of cases, their events, refusals and the notification outbox.

    ``commit`` is atomic: the case, its events and its outbox rows are all written, or none.
    Each case's events form a hash chain (see :func:`casemgmt_core.adapters.chain_hash`) that
    :meth:`verify` checks. Datetimes given to a store must be timezone-aware; bad input (of any
    method) raises :class:`~casemgmt_core.InvalidData` and changes nothing, and so does a commit
    holding a value that would not read back as itself; a backend failure, or a stored row that
    no longer loads, raises :class:`~casemgmt_core.StorageError`.
    """

    tenant_id: str
    """The tenant (centre or programme) whose rows this store object reads and writes."""

    def for_tenant(self, tenant_id: str) -> CaseStore:
        """The same storage, seen by another tenant: nothing one tenant stored is visible to
        (or changed by) another, by any method."""
        ...

    def commit(self, commit: Commit) -> None: ...

    def load(self, case_id: str) -> Case:
        """The stored case; raises :class:`~casemgmt_core.CaseNotFound`."""
        ...

    def events(self, case_id: str, *, after_version: int = 0) -> Sequence[Event]: ...

    def active_case_for_household(self, household_id: str) -> str | None: ...

    def find(self, query: CaseQuery) -> Page: ...

    def due(self, query: DueQuery) -> DuePage:
        """The stored deadlines (see :attr:`Commit.deadlines`) listed by ``query.now``."""
        ...

    def record_refusal(self, refusal: Refusal) -> None: ...

    def refusals(self, case_id: str) -> Sequence[Refusal]: ...

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        """Add notifications to the outbox outside a case commit (reminders), skipping any whose
        id is already there, delivered or not. Returns how many were new."""
        ...

    def pending_notifications(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> Sequence[PendingNotification]:
        """Undelivered notifications, oldest first; with ``now``, only those due for an attempt."""
        ...

    def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        """Record delivery; marking twice keeps the first time. An id that was never enqueued
        raises :class:`~casemgmt_core.InvalidData`."""
        ...

    def mark_failed(self, notification_id: str, *, error: str, retry_at: dt.datetime) -> None:
        """Count a failed attempt and hold the notification back until ``retry_at``.

        A notification already delivered stays delivered (a late report of a failure is ignored);
        an id that was never enqueued raises :class:`~casemgmt_core.InvalidData`.
        """
        ...

    def notification_delivered_at(self, notification_id: str) -> dt.datetime | None:
        """When the notification was first marked delivered (aware, in UTC); ``None`` while it is
        pending. An id that was never enqueued raises :class:`~casemgmt_core.InvalidData`."""
        ...

    def verify(self, case_id: str | None = None) -> ChainReport:
        """Check the hash chain of one case (``CaseNotFound`` if it has neither case nor events)
        or of every case, and report the first broken link of each broken case."""
        ...


class Notifier(Protocol):
    """A notification channel. ``send`` raises on failure; the outbox keeps the message for a retry."""

    def send(self, notification: Notification) -> None: ...


class DuplicateRegistry(Protocol):
    """Other agencies' records, to avoid duplicate case management and duplicate services."""

    def managing_agency(self, household: Household) -> Agency | None:
        """The agency already running similar case management for the household, if any."""
        ...

    def service_provider(self, household: Household, need: Need, service: str) -> Agency | None:
        """The provider already delivering ``service`` for this need of the household, if any."""
        ...


class NoRegistry:
    """A registry that knows of no other agency (the default when none is configured)."""

    def managing_agency(self, household: Household) -> Agency | None:
        return None

    def service_provider(self, household: Household, need: Need, service: str) -> Agency | None:
        return None
