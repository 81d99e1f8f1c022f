"""Adapters for the ports: storage, notification channels, registries.

:func:`open_store` picks a store by URL. The helpers below are shared by the bundled stores and
meant for anyone writing another one: :func:`prepare_commit` validates and serialises a
:class:`~casemgmt_core.ports.Commit` (and :func:`prepare_notifications`, :func:`prepare_refusal`
the outbox rows and refusals written on their own), refusing whatever would not load back as
itself; :func:`load_stored` loads a row strictly; :func:`chain_hash` links an event to the one
before it, and :func:`check_chain` verifies one case's chain as stored, reporting rather than
raising whatever a row holds. The ``check_*`` functions check the arguments of the store methods;
:func:`encode_cursor` and :func:`decode_cursor` make and read the keyset page cursors of
:meth:`~casemgmt_core.ports.CaseStore.find` and :meth:`~casemgmt_core.ports.CaseStore.due`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs

import attrs
from attrs import frozen

from .._validation import check_identifier
from ..engine import replay
from ..errors import InvalidData, StorageError
from ..events import Event
from ..lifecycle import LIVE_STATES
from ..model import Case
from ..ports import (
    MAX_CURSOR,
    BrokenLink,
    CaseQuery,
    ChainProblem,
    Commit,
    DueQuery,
    Notification,
    Refusal,
)
from ..schedule import Deadline, DueKind
from ..serialization import (
    CheckedCase,
    case_from_dict,
    checked_case,
    checked_dumps,
    dumps,
    event_from_dict,
    event_to_dict,
    loads,
)

if TYPE_CHECKING:
    from ..ports import CaseStore

__all__ = [
    "GENESIS",
    "MAX_CURSOR_PART",
    "MAX_ERROR",
    "MAX_NOTIFICATION_ID",
    "MAX_PENDING",
    "MAX_VERSION",
    "ChainLink",
    "PreparedCommit",
    "PreparedEvent",
    "PreparedNotification",
    "chain_hash",
    "check_chain",
    "check_due_query",
    "check_error",
    "check_id",
    "check_limit",
    "check_notification_id",
    "check_query",
    "check_refusal",
    "check_version",
    "cursor_time",
    "decode_cursor",
    "due_order",
    "encode_cursor",
    "event_json",
    "load_stored",
    "open_store",
    "prepare_commit",
    "prepare_deadlines",
    "prepare_notifications",
    "prepare_refusal",
    "require_aware",
    "serialise",
    "unknown_notification",
]

T = TypeVar("T")

#: The "previous hash" of a case's first event.
GENESIS = "0" * 64

SCHEMES = (
    "memory://, sqlite:///RELATIVE.db, sqlite:////ABSOLUTE.db, sqlite:///:memory:, postgresql://…, "
    "mysql://… or mariadb://… (MariaDB/MySQL through PyMySQL), or any SQLAlchemy URL (dialect+driver://…)"
)


def open_store(
    url: str,
    *,
    tenant: str = "default",
    table_prefix: str = "casemgmt_",
    schema: str | None = None,
    create_tables: bool = True,
) -> CaseStore:
    """A store chosen by URL.

    ``memory://``; ``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``
    (optional ``?synchronous=NORMAL&busy_timeout_ms=10000``); ``postgresql://…`` or
    ``postgres://…`` (a libpq URL, needs ``casemgmt-core[postgresql]``); ``mysql://…`` or
    ``mariadb://…`` (needs ``casemgmt-core[mariadb]``); any other SQLAlchemy URL with its driver,
    e.g. ``postgresql+psycopg://…``. The keyword arguments are
    :class:`~casemgmt_core.adapters.sql.SQLStore`'s (the memory store takes only ``tenant``).
    """
    scheme, sep, rest = url.partition("://") if isinstance(url, str) else ("", "", "")
    if scheme == "memory" and sep and rest == "":
        from .memory import InMemoryStore

        return InMemoryStore().for_tenant(tenant)
    options: dict[str, Any] = {"tenant": tenant, "table_prefix": table_prefix, "create_tables": create_tables}
    if scheme == "sqlite" and sep and rest.startswith("/"):
        from .sqlite import SQLiteStore

        path, _, query = rest[1:].partition("?")
        if not path:
            raise InvalidData("a SQLite URL needs a file path", field="url", allowed=SCHEMES)
        if schema is not None:
            raise InvalidData("SQLite has no schemas", field="schema", allowed="None")
        return SQLiteStore(path, **_sqlite_options(query), **options)
    if scheme in ("postgresql", "postgres") and sep:
        try:
            from .postgresql import PostgresStore
        except ImportError as exc:
            raise StorageError(
                f"PostgreSQL needs psycopg 3: pip install 'casemgmt-core[postgresql]' ({exc})"
            ) from None
        return PostgresStore(url, schema=schema, **options)
    if sep and scheme and scheme.split("+")[0] in ("mysql", "mariadb", "postgresql", "oracle", "mssql"):
        from .sql import SQLStore

        return SQLStore(url, schema=schema, **options)
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


# -- checking input --------------------------------------------------------------------------

#: Longest notification id (they embed recipients and deadlines, so longer than other ids).
MAX_NOTIFICATION_ID = 4096
#: Largest event version and ``after_version`` (a store keeps versions as 32-bit integers).
MAX_VERSION = 2**31 - 1
#: Most rows one ``pending_notifications`` call returns.
MAX_PENDING = 10_000
#: Longest delivery error kept by ``mark_failed``.
MAX_ERROR = 4096


def require_aware(value: dt.datetime, name: str) -> dt.datetime:
    """``value`` in UTC; a naive (or non-datetime) value is :class:`InvalidData`."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        shown = value.isoformat() if isinstance(value, dt.datetime) else type(value).__name__
        raise InvalidData(f"must be a timezone-aware datetime, not {shown}", field=name)
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidData(f"cannot be expressed in UTC: {exc}", field=name) from None


def check_id(value: object, name: str) -> str:
    """``value`` if it is an identifier (a case, household or caseworker id), else :class:`InvalidData`."""
    return check_identifier(value, name)


def check_notification_id(value: object, name: str = "notification_id") -> str:
    return check_identifier(value, name, limit=MAX_NOTIFICATION_ID)


def check_version(value: object, name: str) -> int:
    """A whole number from 0 to :data:`MAX_VERSION` (``True`` is not a number here)."""
    if type(value) is not int or not 0 <= value <= MAX_VERSION:
        shown = repr(value)[:40] if type(value) in (int, str, bool, float) else type(value).__name__
        raise InvalidData(f"must be a whole number from 0 to {MAX_VERSION}, not {shown}", field=name)
    return value


def check_limit(limit: object, *, high: int = MAX_PENDING) -> int:
    if type(limit) is not int or not 1 <= limit <= high:
        shown = repr(limit)[:40] if type(limit) in (int, str, bool, float) else type(limit).__name__
        raise InvalidData(f"must be a whole number from 1 to {high}, not {shown}", field="limit")
    return limit


def check_error(value: object) -> str:
    """A delivery error as ``mark_failed`` keeps it: text every store can hold."""
    if type(value) is not str:
        raise InvalidData(f"must be a string, not {type(value).__name__}", field="error")
    if len(value) > MAX_ERROR:
        raise InvalidData(f"is {len(value)} characters long, more than {MAX_ERROR}", field="error")
    # PostgreSQL text holds no NUL and no store holds a lone surrogate.
    if "\x00" in value or not (value.isascii() or _utf8(value)):
        raise InvalidData("holds a NUL character or a lone surrogate", field="error")
    return value


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_query(query: CaseQuery) -> None:
    """Reject a query no store can answer sensibly (its fields are checked again, in case they
    were changed after it was built)."""
    if not isinstance(query, CaseQuery):
        raise InvalidData(f"expected a CaseQuery, not {type(query).__name__}", field="query")
    attrs.validate(query)


def check_due_query(query: DueQuery) -> None:
    """Reject a :class:`DueQuery` no store can answer, as :func:`check_query` does a case query."""
    if not isinstance(query, DueQuery):
        raise InvalidData(f"expected a DueQuery, not {type(query).__name__}", field="query")
    attrs.validate(query)
    if query.now is None:
        raise InvalidData("is required", field="DueQuery.now", allowed="a timezone-aware datetime")


def check_refusal(refusal: Refusal) -> None:
    if not isinstance(refusal, Refusal):
        raise InvalidData(f"expected a Refusal, not {type(refusal).__name__}", field="refusal")
    check_id(refusal.case_id, "refusal.case_id")
    require_aware(refusal.at, "refusal.at")


def unknown_notification(notification_id: str) -> InvalidData:
    return InvalidData(f"no notification {notification_id!r} in the outbox", field="notification_id")


# -- page cursors ----------------------------------------------------------------------------

#: Longest part of a page cursor (an ISO time, a case id, a deadline's kind or subject).
MAX_CURSOR_PART = 200

_NOT_A_CURSOR = "the next_after of the page before"


def _not_a_cursor(field: str) -> InvalidData:
    return InvalidData("is not a page cursor", field=field, allowed=_NOT_A_CURSOR)


def encode_cursor(*parts: str) -> str:
    """The page cursor of a keyset position: URL-safe base64 of the JSON list of ``parts``.

    A case cursor is ``[case_id]``, or ``[next_deadline, case_id]`` with ``due_before``; a due
    cursor is ``[listed_from, case_id, kind, subject]``; times as ``isoformat()`` in UTC.
    """
    text = json.dumps(list(parts), ensure_ascii=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii")


def decode_cursor(token: str, parts: int, field: str) -> tuple[str, ...]:
    """The ``parts`` strings of a cursor made by :func:`encode_cursor`.

    Anything else (not base64, not JSON, not a list of exactly ``parts`` printable strings of at
    most :data:`MAX_CURSOR_PART` characters, or not written as :func:`encode_cursor` writes it)
    is :class:`InvalidData` naming ``field``.
    """
    if type(token) is not str or not token.isascii() or not 0 < len(token) <= MAX_CURSOR:
        raise _not_a_cursor(field)
    try:
        values = json.loads(base64.b64decode(token, altchars=b"-_", validate=True).decode("ascii"))
    except (binascii.Error, ValueError, RecursionError):
        raise _not_a_cursor(field) from None
    if (
        type(values) is not list
        or len(values) != parts
        or not all(type(v) is str and len(v) <= MAX_CURSOR_PART and v.isprintable() for v in values)
        or encode_cursor(*values) != token
    ):
        raise _not_a_cursor(field)
    return tuple(values)


def cursor_time(text: str, field: str) -> dt.datetime:
    """A time part of a cursor: the ``isoformat()`` of a UTC datetime, and nothing else."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise _not_a_cursor(field) from None
    if value.utcoffset() != dt.timedelta(0) or value.isoformat() != text:
        raise _not_a_cursor(field)
    return value.replace(tzinfo=dt.UTC)


# -- serialising a commit -------------------------------------------------------------------


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
    deadlines: tuple[Deadline, ...] = ()
    """The case's pending deadlines, times in UTC, one per ``(kind, subject)``, in due order."""
    checked: CheckedCase | None = attrs.field(default=None, eq=False, repr=False)
    """The case as checked, for :func:`prepare_commit`'s ``previous`` at the case's next commit."""

    def hashes(self, previous: str) -> list[tuple[str, str]]:
        """``(previous, hash)`` of each event, chained on from the stored head ``previous``."""
        out = []
        for e in self.events:
            current = chain_hash(previous, e.text)
            out.append((previous, current))
            previous = current
        return out


def prepare_commit(
    commit: Commit, *, with_case: bool = True, previous: CheckedCase | None = None
) -> PreparedCommit:
    """Validate ``commit`` and serialise it; raises :class:`InvalidData` saying what is wrong.

    Every event, the case and every notification is written out and loaded back with the loader
    that will read it (:func:`~casemgmt_core.serialization.checked_dumps`): what would not read
    back as itself is refused here, before a store writes anything. The case is always checked;
    ``with_case=False`` only leaves its text out of the result. ``previous`` is the ``checked`` of
    the case's commit before (a store may keep it): the case's fields that are the very objects
    it holds are not checked again (:func:`~casemgmt_core.serialization.checked_case`).
    """
    if not isinstance(commit, Commit):
        raise InvalidData(f"expected a Commit, not {type(commit).__name__}", field="commit")
    case = commit.case
    if not isinstance(case, Case):
        raise InvalidData(f"expected a Case, not {type(case).__name__}", field="commit.case")
    check_id(case.case_id, "commit.case.case_id")
    check_version(commit.expected_version, "commit.expected_version")
    events, notifications = commit.events, commit.notifications
    if type(events) not in (tuple, list) or not all(isinstance(e, Event) for e in events):
        raise InvalidData("must be a tuple of events", field="commit.events")
    if type(notifications) not in (tuple, list):
        raise InvalidData("must be a tuple of notifications", field="commit.notifications")
    if not events:
        raise InvalidData("a commit records at least one event", field="commit.events")
    versions = [e.version for e in events]
    first = commit.expected_version + 1
    if versions != list(range(first, first + len(versions))) or case.version != versions[-1]:
        raise InvalidData(
            f"event versions {[repr(v)[:20] for v in versions][:20]} must continue version "
            f"{commit.expected_version} without gaps and end at the case's version {repr(case.version)[:20]}",
            field="commit.events",
        )
    if any(e.case_id != case.case_id for e in events):
        raise InvalidData(f"every event must belong to case {case.case_id!r}", field="commit.events")
    deadline = None if commit.next_deadline is None else require_aware(commit.next_deadline, "next_deadline")
    prepared = []
    for i, e in enumerate(events):
        text = checked_dumps(e, Event, f"commit.events[{i}]")
        # Once the event is known to load back, its time is an aware datetime.
        prepared.append(PreparedEvent(e.version, e.event, require_aware(e.occurred_at, "occurred_at"), text))
    if previous is not None and not isinstance(previous, CheckedCase):
        raise InvalidData(f"expected a CheckedCase, not {type(previous).__name__}", field="previous")
    checked = checked_case(case, "commit.case", previous)
    notes = prepare_notifications(notifications, "commit.notifications")
    pending = prepare_deadlines(commit.deadlines, case.case_id, "commit.deadlines")
    return PreparedCommit(
        case.case_id,
        case.household_id,
        case.state.value,
        case.state in LIVE_STATES,
        case.caseworker_id,
        deadline,
        commit.expected_version,
        case.version,
        checked.text if with_case else "",
        tuple(prepared),
        notes,
        pending,
        checked,
    )


def prepare_deadlines(deadlines: Sequence[Deadline], case_id: str, what: str) -> tuple[Deadline, ...]:
    """The deadlines of case ``case_id`` as a store keeps them; raises :class:`InvalidData`.

    Each must be a :class:`~casemgmt_core.schedule.Deadline` of that case with aware times, a
    :class:`~casemgmt_core.schedule.DueKind` and a subject that is an identifier or ``""``. Times
    are given in UTC; of deadlines with the same kind and subject (two unfiled reports on one
    ground), the earliest is kept. Sorted in the order :meth:`CaseStore.due` lists them.
    """
    if type(deadlines) not in (tuple, list):
        raise InvalidData(f"must be a tuple of deadlines, not {type(deadlines).__name__}", field=what)
    kept: dict[tuple[str, str], Deadline] = {}
    for i, d in enumerate(deadlines):
        where = f"{what}[{i}]"
        if not isinstance(d, Deadline):
            raise InvalidData(f"expected a Deadline, not {type(d).__name__}", field=where)
        if d.case_id != case_id:
            raise InvalidData(
                f"must belong to case {case_id!r}", field=f"{where}.case_id", value=repr(d.case_id)[:140]
            )
        if not isinstance(d.kind, DueKind):
            raise InvalidData(
                f"must be a DueKind, not {type(d.kind).__name__}",
                field=f"{where}.kind",
                allowed=", ".join(k.value for k in DueKind),
            )
        if d.subject != "":
            check_identifier(d.subject, f"{where}.subject")
        listed_from = require_aware(d.listed_from, f"{where}.listed_from")
        due_at = require_aware(d.due_at, f"{where}.due_at")
        key = (d.kind.value, d.subject)
        if key not in kept or (due_at, listed_from) < (kept[key].due_at, kept[key].listed_from):
            kept[key] = Deadline(listed_from, due_at, case_id, d.kind, d.subject)
    return tuple(sorted(kept.values(), key=due_order))


def due_order(deadline: Deadline) -> tuple[dt.datetime, str, str, str]:
    """The key :meth:`CaseStore.due` sorts by: ``(listed_from, case_id, kind, subject)``."""
    return deadline.listed_from, deadline.case_id, deadline.kind.value, deadline.subject


def prepare_notifications(
    notifications: Sequence[Notification], what: str
) -> tuple[PreparedNotification, ...]:
    """Outbox rows for ``notifications``, each checked as :func:`prepare_commit` checks events."""
    if type(notifications) not in (tuple, list):
        raise InvalidData(
            f"must be a list or tuple of notifications, not {type(notifications).__name__}", field=what
        )
    out = []
    for i, n in enumerate(notifications):
        where = f"{what}[{i}]"
        if not isinstance(n, Notification):
            raise InvalidData(f"expected a Notification, not {type(n).__name__}", field=where)
        text = checked_dumps(n, Notification, where)
        check_notification_id(n.notification_id, f"{where}.notification_id")
        check_id(n.case_id, f"{where}.case_id")
        out.append(
            PreparedNotification(
                n.notification_id, n.case_id, require_aware(n.created_at, f"{where}.created_at"), text
            )
        )
    return tuple(out)


def prepare_refusal(refusal: Refusal) -> str:
    """The JSON a store keeps for ``refusal``, checked as :func:`prepare_commit` checks events."""
    check_refusal(refusal)
    return checked_dumps(refusal, Refusal, "refusal")


def serialise(to_dict: Callable[[T], Any], value: T, what: str) -> str:
    """``value`` as canonical JSON; what cannot be serialised is :class:`InvalidData`.

    It does not check that the text loads back: stores use :func:`prepare_commit`,
    :func:`prepare_notifications` and :func:`prepare_refusal`, which do.
    """
    try:
        return dumps(to_dict(value))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, InvalidData):
            raise
        raise InvalidData(f"cannot be serialised: {exc}", field=what) from None


def load_stored(from_dict: Callable[[Any], T], text: str, what: str) -> T:
    """An object from its stored JSON; a row that no longer loads is a :class:`StorageError`."""
    try:
        return from_dict(loads(text))
    except (InvalidData, ValueError, TypeError, RecursionError) as exc:
        raise StorageError(f"the stored {what} cannot be loaded: {_short(exc)}") from None


def _short(exc: BaseException, limit: int = 500) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- verifying a chain ----------------------------------------------------------------------


@frozen
class ChainLink:
    """One stored event as the chain check sees it (as read from storage: any value at all)."""

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
    many events were checked.

    It never raises on what storage holds: whatever cannot be loaded, hashed or replayed is
    reported as a broken link (``UNREADABLE`` for an event, ``SNAPSHOT`` for the case record).
    """
    previous, expected, checked = GENESIS, 1, 0
    events: list[Event] = []

    def broken(version: int, problem: ChainProblem, detail: str) -> tuple[BrokenLink, int]:
        return BrokenLink(case_id, version, problem, detail), checked

    for link in links:
        checked += 1
        version = link.version
        if case_version is None:
            where = version if type(version) is int else expected
            return broken(where, ChainProblem.ORPHANED, "events are stored but the case record is not")
        if type(version) is not int:
            return broken(expected, ChainProblem.UNREADABLE, "its stored version is not a whole number")
        if version != expected:
            if version > expected:
                return broken(
                    expected,
                    ChainProblem.MISSING,
                    f"version {expected} is missing; the next stored event is version {version}",
                )
            return broken(version, ChainProblem.REORDERED, f"version {version} is stored twice")
        # Whatever the row holds (nesting, sizes, types, text that is not Unicode), loading it
        # must end in a report, not an exception.
        try:
            event = event_from_dict(loads(link.text))
        except Exception as exc:  # reported, see above
            return broken(version, ChainProblem.UNREADABLE, f"the event cannot be loaded: {_short(exc)}")
        if event.version != version or event.case_id != case_id:
            return broken(
                version,
                ChainProblem.REORDERED,
                f"the event stored here is version {event.version} of case {event.case_id!r}",
            )
        if link.previous != previous:
            return broken(
                version, ChainProblem.UNLINKED, f"its link does not match the hash of version {version - 1}"
            )
        try:
            altered = chain_hash(previous, link.text) != link.hash
        except Exception as exc:  # text that cannot be encoded is reported
            return broken(version, ChainProblem.UNREADABLE, f"the event cannot be hashed: {_short(exc)}")
        if altered:
            return broken(
                version, ChainProblem.ALTERED, "its content does not match the hash recorded at commit"
            )
        previous = link.hash
        events.append(event)
        expected += 1
    last = expected - 1
    if case_version is None:
        return None, checked
    if type(case_version) is not int:
        return broken(max(last, 1), ChainProblem.SNAPSHOT, "the case record's version is not a whole number")
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
    try:
        if isinstance(stored_case, Case):
            # An object kept by a store is held to what its text would have to be.
            checked_dumps(stored_case, Case, "case")
        else:
            stored_case = case_from_dict(loads(stored_case))
    except Exception as exc:  # reported: the record is what it is
        return broken(last, ChainProblem.SNAPSHOT, f"the case record cannot be loaded: {_short(exc)}")
    try:
        same = replay(events) == stored_case
    except Exception as exc:  # events that load but do not replay are reported
        return broken(last, ChainProblem.SNAPSHOT, f"the events do not replay: {_short(exc)}")
    if not same:
        return broken(last, ChainProblem.SNAPSHOT, "the case record differs from the replay of its events")
    return None, checked


def _chain_of(events: Sequence[Event], rows: Sequence[tuple[int, str, str]]) -> list[ChainLink]:
    """Links of events held as objects beside ``(version, previous, hash)`` rows, for stores that
    keep objects rather than table rows."""
    links = []
    for e, (version, previous, current) in zip(events, rows, strict=False):
        try:
            text = event_json(e)
        except Exception:  # an object changed behind the store's back
            text = ""  # does not load: reported as unreadable
        links.append(ChainLink(version, text, previous, current))
    return links
