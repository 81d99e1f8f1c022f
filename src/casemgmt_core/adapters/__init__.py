"""Adapters for the ports: storage, notification channels, registries.

:func:`open_store` picks a store by URL. The helpers below are shared by the bundled stores and
meant for anyone writing another one: :func:`prepare_commit` validates and serialises a
:class:`~casemgmt_core.ports.Commit`, :func:`chain_hash` links an event to the one before it,
and :func:`check_chain` verifies one case's chain as stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs

from attrs import frozen

from ..engine import replay
from ..errors import InvalidData, StorageError
from ..events import Event
from ..lifecycle import LIVE_STATES
from ..model import Case
from ..ports import BrokenLink, CaseQuery, ChainProblem, Commit, Refusal
from ..serialization import case_to_dict, dumps, event_from_dict, event_to_dict, notification_to_dict

if TYPE_CHECKING:
    from ..ports import CaseStore

__all__ = [
    "GENESIS",
    "ChainLink",
    "PreparedCommit",
    "PreparedEvent",
    "PreparedNotification",
    "chain_hash",
    "check_chain",
    "check_limit",
    "check_query",
    "check_refusal",
    "event_json",
    "load_stored",
    "open_store",
    "prepare_commit",
    "require_aware",
    "serialise",
    "unknown_notification",
]

T = TypeVar("T")

#: The "previous hash" of a case's first event.
GENESIS = "0" * 64

SCHEMES = "memory://, sqlite:///RELATIVE.db, sqlite:////ABSOLUTE.db, sqlite:///:memory:, postgresql://…"


def open_store(url: str) -> CaseStore:
    """A store chosen by URL.

    ``memory://``; ``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``
    (optional ``?synchronous=NORMAL&busy_timeout_ms=10000``); ``postgresql://…`` or
    ``postgres://…`` (a libpq URL, needs ``casemgmt-core[postgresql]``).
    """
    scheme, sep, rest = url.partition("://") if isinstance(url, str) else ("", "", "")
    if scheme == "memory" and sep and rest == "":
        from .memory import InMemoryStore

        return InMemoryStore()
    if scheme == "sqlite" and sep and rest.startswith("/"):
        from .sqlite import SQLiteStore

        path, _, query = rest[1:].partition("?")
        if not path:
            raise InvalidData("a SQLite URL needs a file path", field="url", allowed=SCHEMES)
        return SQLiteStore(path, **_sqlite_options(query))
    if scheme in ("postgresql", "postgres") and sep:
        try:
            from .postgresql import PostgresStore
        except ImportError as exc:
            raise StorageError(
                f"PostgreSQL needs psycopg 3: pip install 'casemgmt-core[postgresql]' ({exc})"
            ) from None
        return PostgresStore(url)
    # The URL may hold a password: name only its scheme.
    shown = f"scheme {scheme!r}" if sep else "no scheme"
    raise InvalidData(f"cannot open a store for a URL with {shown}", field="url", allowed=SCHEMES)


def _sqlite_options(query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        value = values[-1]
        if key == "synchronous":
            options[key] = value
        elif key == "busy_timeout_ms":
            if not value.isdigit():
                raise InvalidData(f"must be a whole number of milliseconds, not {value!r}", field=key)
            options[key] = int(value)
        else:
            raise InvalidData(
                f"unknown SQLite URL option {key!r}", field="url", allowed="synchronous, busy_timeout_ms"
            )
    return options


# -- serialising a commit -------------------------------------------------------------------


def require_aware(value: dt.datetime, name: str) -> dt.datetime:
    """``value`` in UTC; a naive (or non-datetime) value is :class:`InvalidData`."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidData(f"must be a timezone-aware datetime, not {value!r}", field=name)
    return value.astimezone(dt.UTC)


def event_json(event: Event) -> str:
    """The canonical JSON of an event: what is stored and what the hash chain hashes."""
    return dumps(event_to_dict(event))


def chain_hash(previous: str, event_text: str) -> str:
    """The hash of an event: SHA-256 over the previous event's hash and the event's canonical JSON."""
    return hashlib.sha256(f"{previous}\n{event_text}".encode()).hexdigest()


@frozen
class PreparedEvent:
    version: int
    event: str
    occurred_at: dt.datetime
    """In UTC."""
    text: str


@frozen
class PreparedNotification:
    notification_id: str
    case_id: str
    created_at: dt.datetime
    """In UTC."""
    text: str


@frozen
class PreparedCommit:
    """A validated commit, serialised: what a store writes in one transaction."""

    case_id: str
    household_id: str
    state: str
    live: bool
    caseworker_id: str | None
    next_deadline: dt.datetime | None
    """In UTC."""
    expected_version: int
    version: int
    case_text: str
    events: tuple[PreparedEvent, ...]
    notifications: tuple[PreparedNotification, ...]

    def hashes(self, previous: str) -> list[tuple[str, str]]:
        """``(previous, hash)`` of each event, chained on from the stored head ``previous``."""
        out = []
        for e in self.events:
            current = chain_hash(previous, e.text)
            out.append((previous, current))
            previous = current
        return out


def prepare_commit(commit: Commit, *, with_case: bool = True) -> PreparedCommit:
    """Validate ``commit`` and serialise it (the case too, unless not ``with_case``); raises
    :class:`InvalidData` saying what is wrong."""
    if not isinstance(commit, Commit):
        raise InvalidData(f"expected a Commit, not {type(commit).__name__}", field="commit")
    case = commit.case
    if not isinstance(case, Case) or not case.case_id:
        raise InvalidData("must be a case with an id", field="commit.case")
    if not isinstance(commit.expected_version, int) or commit.expected_version < 0:
        raise InvalidData("must be a whole number, 0 for a new case", field="commit.expected_version")
    if not commit.events:
        raise InvalidData("a commit records at least one event", field="commit.events")
    versions = [e.version for e in commit.events]
    first = commit.expected_version + 1
    if versions != list(range(first, first + len(versions))) or case.version != versions[-1]:
        raise InvalidData(
            f"event versions {versions} must continue version {commit.expected_version} without gaps "
            f"and end at the case's version {case.version}",
            field="commit.events",
        )
    if any(e.case_id != case.case_id for e in commit.events):
        raise InvalidData(f"every event must belong to case {case.case_id!r}", field="commit.events")
    deadline = None if commit.next_deadline is None else require_aware(commit.next_deadline, "next_deadline")
    try:
        events = tuple(
            PreparedEvent(
                e.version, e.event, require_aware(e.occurred_at, "event.occurred_at"), event_json(e)
            )
            for e in commit.events
        )
        notes = tuple(
            PreparedNotification(
                n.notification_id,
                n.case_id,
                require_aware(n.created_at, "notification.created_at"),
                dumps(notification_to_dict(n)),
            )
            for n in commit.notifications
        )
        case_text = dumps(case_to_dict(case)) if with_case else ""
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, InvalidData):
            raise
        raise InvalidData(f"cannot be serialised: {exc}", field="commit") from None
    return PreparedCommit(
        case.case_id,
        case.household_id,
        case.state.value,
        case.state in LIVE_STATES,
        case.caseworker_id,
        deadline,
        commit.expected_version,
        case.version,
        case_text,
        events,
        notes,
    )


def check_query(query: CaseQuery) -> None:
    """Reject a query no store can answer sensibly ."""
    if not isinstance(query, CaseQuery):
        raise InvalidData(f"expected a CaseQuery, not {type(query).__name__}", field="query")
    check_limit(query.limit)
    if not isinstance(query.offset, int) or query.offset < 0:
        raise InvalidData(f"must be 0 or more, not {query.offset!r}", field="query.offset")
    if query.due_before is not None:
        require_aware(query.due_before, "query.due_before")


def check_refusal(refusal: Refusal) -> None:
    if not isinstance(refusal, Refusal):
        raise InvalidData(f"expected a Refusal, not {type(refusal).__name__}", field="refusal")
    require_aware(refusal.at, "refusal.at")


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidData(f"must be a whole number of 1 or more, not {limit!r}", field="limit")


def serialise(to_dict: Callable[[T], Any], value: T, what: str) -> str:
    """``value`` as canonical JSON; what cannot be serialised is :class:`InvalidData`."""
    try:
        return dumps(to_dict(value))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidData(f"cannot be serialised: {exc}", field=what) from None


def load_stored(from_dict: Callable[[Any], T], text: str, what: str) -> T:
    """An object from its stored JSON; a row that no longer loads is a :class:`StorageError`."""
    try:
        return from_dict(json.loads(text))
    except (ValueError, InvalidData) as exc:
        raise StorageError(f"the stored {what} cannot be loaded: {exc}") from None


def unknown_notification(notification_id: str) -> InvalidData:
    return InvalidData(f"no notification {notification_id!r} in the outbox", field="notification_id")


# -- verifying a chain ----------------------------------------------------------------------


@frozen
class ChainLink:
    """One stored event as the chain check sees it."""

    version: int
    """Where the store keeps it (its version column, or its position)."""
    text: str
    previous: str
    hash: str


def check_chain(
    case_id: str,
    links: Iterable[ChainLink],
    *,
    case_version: int | None,
    head: str | None,
    stored_case: Case | str | None,
) -> tuple[BrokenLink | None, int]:
    """Check one case's events (in stored version order) against each other and against the
    stored case (``case_version``, its chain ``head`` and the case itself, as an object or its JSON;
    all ``None`` when there is no case record). Returns the first broken link, if any, and how
    many events were checked."""
    previous, expected, checked = GENESIS, 1, 0
    events: list[Event] = []

    def broken(version: int, problem: ChainProblem, detail: str) -> tuple[BrokenLink, int]:
        return BrokenLink(case_id, version, problem, detail), checked

    for link in links:
        checked += 1
        if case_version is None:
            return broken(link.version, ChainProblem.ORPHANED, "events are stored but the case record is not")
        if link.version != expected:
            if link.version > expected:
                return broken(
                    expected,
                    ChainProblem.MISSING,
                    f"version {expected} is missing; the next stored event is version {link.version}",
                )
            return broken(link.version, ChainProblem.REORDERED, f"version {link.version} is stored twice")
        try:
            event = event_from_dict(json.loads(link.text))
        except (ValueError, InvalidData) as exc:
            return broken(link.version, ChainProblem.UNREADABLE, f"the event cannot be loaded: {exc}")
        if event.version != link.version or event.case_id != case_id:
            return broken(
                link.version,
                ChainProblem.REORDERED,
                f"the event stored here is version {event.version} of case {event.case_id!r}",
            )
        if link.previous != previous:
            return broken(
                link.version,
                ChainProblem.UNLINKED,
                f"its link does not match the hash of version {link.version - 1}",
            )
        if chain_hash(previous, link.text) != link.hash:
            return broken(
                link.version, ChainProblem.ALTERED, "its content does not match the hash recorded at commit"
            )
        previous = link.hash
        events.append(event)
        expected += 1
    last = expected - 1
    if case_version is None:
        return None, checked
    if case_version > last:
        return broken(
            last + 1,
            ChainProblem.MISSING,
            f"the case is at version {case_version} but its events stop at {last}",
        )
    if case_version < last:
        return broken(
            case_version + 1,
            ChainProblem.SNAPSHOT,
            f"the case record is at version {case_version} but events go on to {last}",
        )
    if head != previous:
        return broken(
            last, ChainProblem.SNAPSHOT, "the case record's chain head is not its last event's hash"
        )
    if isinstance(stored_case, str):
        from ..serialization import case_from_dict

        try:
            stored_case = case_from_dict(json.loads(stored_case))
        except (ValueError, InvalidData) as exc:
            return broken(last, ChainProblem.SNAPSHOT, f"the case record cannot be loaded: {exc}")
    try:
        replayed = replay(events)
    except InvalidData as exc:
        return broken(last, ChainProblem.SNAPSHOT, f"the events do not replay: {exc}")
    if replayed != stored_case:
        return broken(last, ChainProblem.SNAPSHOT, "the case record differs from the replay of its events")
    return None, checked


def _chain_of(events: Sequence[Event], rows: Sequence[tuple[int, str, str]]) -> list[ChainLink]:
    """Links of events held as objects beside ``(version, previous, hash)`` rows, for stores that
    keep objects rather than table rows."""
    return [
        ChainLink(version, event_json(e), previous, current)
        for e, (version, previous, current) in zip(events, rows, strict=False)
    ]
