"""The SQL store: every :class:`~casemgmt_core.ports.CaseStore` query written once, in SQLAlchemy Core.

:class:`SQLStore` runs on any database SQLAlchemy speaks to and is tested on SQLite (the embedded
default), PostgreSQL and MariaDB. It takes a URL, the host's own :class:`~sqlalchemy.engine.Engine`
(its pool, its settings) or the host's :class:`~sqlalchemy.engine.Connection`, to write in the
host's transaction (:meth:`SQLStore.using`). Tables carry a prefix and may live in a schema of
their own; :mod:`casemgmt_core.adapters.migrations` creates and upgrades them, or only checks them
(``create_tables=False``) where a DBA applies the DDL. Every row belongs to a tenant
(:meth:`SQLStore.for_tenant`), and no query reads past its tenant.

Every write is one transaction (or one savepoint in the host's): the case row is locked
(``SELECT … FOR UPDATE`` where the database has it; SQLite's ``BEGIN IMMEDIATE`` takes the
database's write lock) before its version is compared, so concurrent writers of one case queue
and all but the first get :class:`~casemgmt_core.ConcurrencyConflict`. The database itself
enforces one live case per household and tenant and one row per event version. Driver errors
become :class:`~casemgmt_core.StorageError`, whose message holds no statement parameters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sqlite3
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, Self, TypeVar

import attrs
from attrs import define
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    create_engine,
    event,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    union,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import NullType

from .._validation import check_identifier, shown
from ..errors import (
    CaseManagementError,
    CaseNotFound,
    ConcurrencyConflict,
    DuplicateCase,
    InvalidData,
    StorageError,
)
from ..events import Event
from ..model import Case
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
from ..schedule import DueItem, DueKind
from ..serialization import case_from_dict, event_from_dict, notification_from_dict, refusal_from_dict
from . import (
    GENESIS,
    ChainLink,
    PreparedCommit,
    PreparedNotification,
    check_chain,
    check_error,
    check_id,
    check_limit,
    check_notification_id,
    check_query,
    check_version,
    decode_cursor,
    encode_cursor,
    load_stored,
    prepare_commit,
    prepare_notifications,
    prepare_refusal,
    require_aware,
    unknown_notification,
)
from ._driver import CaseCache, Known, Rows, Run, WriteStatements, run_on_cursor
from ._schema import DEFAULT_PREFIX, StoreTables, store_tables, utc_from_stored

__all__ = ["SQLStore", "Steps", "sqlite_engine"]

T = TypeVar("T")

#: One store operation, written once for both the blocking and the asyncio store: a generator
#: that yields each statement to run and is sent back its (buffered) result. A statement is a
#: SQLAlchemy one (sent its ``Result``) or a write-path :class:`~casemgmt_core.adapters._driver.Run`
#: (sent its :class:`~casemgmt_core.adapters._driver.Rows`).
Steps = Generator[Executable | Run, Any, T]

#: How many cases a store remembers as it last wrote them (see :class:`SQLStore`).
DEFAULT_CACHE_SIZE = 1000

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _notification_key(notification_id: str) -> str:
    return hashlib.sha256(notification_id.encode()).hexdigest()


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _from_iso(text: str, field: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        raise InvalidData("is not a page cursor", field=field, allowed="the next_after of the page before")
    return value


def _lenient_text(raw: bytes) -> str:
    # Bytes that are not UTF-8 (written by another program) become lone surrogates, which the
    # loader refuses: the row is reported rather than the whole read failing.
    return raw.decode("utf-8", "surrogateescape")


def sqlite_engine(
    path: str | os.PathLike[str], *, synchronous: str = "FULL", busy_timeout_ms: int = 5000
) -> Engine:
    """An engine for a SQLite file set up as the store needs it (and as a host may use it for its
    own tables too): WAL mode, ``synchronous`` as given, transactions begun by SQLAlchemy (a
    deferred ``BEGIN`` for reads, ``BEGIN IMMEDIATE`` for the store's writes, so writers queue on
    the database lock for up to ``busy_timeout_ms`` instead of failing half-way).

    ``path`` is a file path (created if missing) or ``":memory:"`` (one connection, shared).
    """
    mode = synchronous.upper() if isinstance(synchronous, str) else ""
    if mode not in SYNCHRONOUS:
        raise InvalidData(
            f"unknown setting {synchronous!r}", field="synchronous", allowed=", ".join(SYNCHRONOUS)
        )
    if type(busy_timeout_ms) is not int or busy_timeout_ms < 0:
        raise InvalidData(f"must be 0 or more milliseconds, not {busy_timeout_ms!r}", field="busy_timeout_ms")
    try:
        where = os.fspath(path)
    except TypeError:
        raise InvalidData("must be a file path or ':memory:'", field="path") from None
    if not isinstance(where, str) or not where or "\x00" in where:
        raise InvalidData("must be a file path or ':memory:'", field="path")
    memory = where == ":memory:"
    options: dict[str, Any] = {
        "connect_args": {"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        "hide_parameters": True,
    }
    if memory:
        options["poolclass"] = StaticPool
    engine = create_engine("sqlite://" if memory else "sqlite:///" + where, **options)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event starts transactions
        dbapi_connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        journal = dbapi_connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if journal != "wal" and not memory:
            raise sqlite3.OperationalError(f"WAL mode is not available (journal mode is {journal})")
        dbapi_connection.execute(f"PRAGMA synchronous = {mode}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("casemgmt_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@define
class _Shared:
    """What every tenant's view of one store shares: the engine, the tables, whether it is open,
    the write path's compiled statements and the cases it last wrote."""

    engine: Engine | None
    owns_engine: bool
    tables: StoreTables
    dialect: str
    lock: contextlib.AbstractContextManager[Any]
    statements: WriteStatements
    cache: CaseCache
    closed: bool = False
    where: str = ""
    driver_errors: tuple[type[BaseException], ...] = ()
    """The DBAPI's own error classes (raised by the write path, which runs on the driver)."""


def _check_cache_size(size: object) -> int:
    if type(size) is not int or not 0 <= size <= 1_000_000:
        raise InvalidData(
            f"must be a whole number from 0 to 1000000, not {shown(size, limit=40)}", field="cache_size"
        )
    return size


def _driver_errors(dialect: Any) -> tuple[type[BaseException], ...]:
    dbapi = getattr(dialect, "loaded_dbapi", None) or getattr(dialect, "dbapi", None)
    error = getattr(dbapi, "Error", None)
    return (error,) if isinstance(error, type) and issubclass(error, BaseException) else ()


class _Operations:
    """Each store operation as :data:`Steps`: the statements it runs, whichever way they are run.

    :class:`SQLStore` runs them on a connection, :class:`~casemgmt_core.adapters.async_sql.AsyncSQLStore`
    awaits them on an asyncio connection: one copy of every query for both.
    """

    tenant_id: str
    _shared: _Shared

    @property
    def tables(self) -> StoreTables:
        return self._shared.tables

    def _where(self, table: Any) -> Any:
        return table.c.tenant_id == self.tenant_id

    _connection: Any

    def _known(self, commit: object) -> tuple[tuple[str, str], Known | None]:
        """The cache key of the commit's case and what the store last knew of it."""
        case_id = getattr(getattr(commit, "case", None), "case_id", None)
        key = (self.tenant_id, case_id if type(case_id) is str else "")
        return key, self._shared.cache.get(key)

    def _remember(self, key: tuple[str, str], known: Known) -> None:
        # Inside the host's transaction, what is written may yet be rolled back: forget it.
        if self._connection is None:
            self._shared.cache.put(key, known)
        else:
            self._shared.cache.drop(key)

    def _explain(self, c: PreparedCommit) -> Steps[CaseManagementError | None]:
        cases = self.tables.cases
        if c.live:
            existing = (
                yield select(cases.c.case_id).where(
                    self._where(cases), cases.c.live_household_id == c.household_id
                )
            ).scalar()
            if existing is not None and existing != c.case_id:
                return DuplicateCase(household_id=c.household_id, existing_case_id=existing)
        version = (
            yield select(cases.c.version).where(self._where(cases), cases.c.case_id == c.case_id)
        ).scalar()
        if version != (c.expected_version or None):
            return ConcurrencyConflict(
                case_id=c.case_id, expected_version=c.expected_version, actual_version=version
            )
        return None

    def _commit(self, c: PreparedCommit, known: Known | None) -> Steps[str]:
        """Write the prepared commit; returns the case's new chain head.

        A new case is inserted (its key, unique, says whether another writer got there first).
        Where ``known`` says at which version and head this store last left the case, the case
        row is updated on condition that it is still there; otherwise (or if it is not) the row
        is read and locked first. The database's own constraints hold one live case per
        household and one row per event version; what they refuse, :meth:`_explain` explains.
        """
        s = self._shared.statements
        key = {"k_tenant": self.tenant_id, "k_case": c.case_id}
        hashes: list[tuple[str, str]] | None = None
        same_deadlines = False
        if c.expected_version == 0:
            hashes = c.hashes(GENESIS)
            yield Run.one(
                s.case_insert, tenant_id=self.tenant_id, case_id=c.case_id, **_case_values(c, hashes[-1][1])
            )
        else:
            if known is not None and known.version == c.expected_version:
                hashes = c.hashes(known.head)
                updated: Rows = yield Run.one(
                    s.case_update_if,
                    **key,
                    k_version=known.version,
                    k_head=known.head,
                    **_prefixed(_case_values(c, hashes[-1][1])),
                )
                if updated.rowcount == 1:
                    # The rows are as this store left them: deadlines that did not change stay.
                    same_deadlines = known.deadlines == c.deadlines
                else:
                    hashes = None
            if hashes is None:
                row = (yield Run.one(s.head, **key)).first()
                # The row at the expected version but with another head than this store left it
                # at (a host transaction rolled back, a database restored) was never the case
                # the commit was decided on.
                left = known.head if known is not None and known.version == c.expected_version else None
                if row is None or row[0] != c.expected_version or left not in (None, row[1]):
                    raise ConcurrencyConflict(
                        case_id=c.case_id,
                        expected_version=c.expected_version,
                        actual_version=None if row is None else row[0],
                    )
                hashes = c.hashes(row[1])
                yield Run.one(s.case_update, **key, **_prefixed(_case_values(c, hashes[-1][1])))
        yield Run.each(
            s.event_insert,
            [
                {
                    "tenant_id": self.tenant_id,
                    "case_id": c.case_id,
                    "version": e.version,
                    "event": e.event,
                    "occurred_at": e.occurred_at,
                    "data": e.text,
                    "prev_hash": prev,
                    "hash": current,
                }
                for e, (prev, current) in zip(c.events, hashes, strict=True)
            ],
        )
        if not same_deadlines:
            if c.expected_version != 0:
                yield Run.one(s.deadline_delete, **key)
            if c.deadlines:
                yield Run.each(
                    s.deadline_insert,
                    [
                        {
                            "tenant_id": self.tenant_id,
                            "case_id": c.case_id,
                            "kind": d.kind.value,
                            "subject": d.subject,
                            "listed_from": d.listed_from,
                            "due_at": d.due_at,
                        }
                        for d in c.deadlines
                    ],
                )
        yield from self._insert_outbox(c.notifications)
        return hashes[-1][1]

    def _load(self, case_id: str) -> Steps[Known]:
        check_id(case_id, "case_id")
        row = (yield Run.one(self._shared.statements.load, k_tenant=self.tenant_id, k_case=case_id)).first()
        if row is None:
            raise CaseNotFound(case_id)
        version, head, text = row
        return Known(version, head, _case(case_id, text), None)

    def _events(self, case_id: str, after_version: int) -> Steps[tuple[Event, ...]]:
        check_id(case_id, "case_id")
        check_version(after_version, "after_version")
        cases, events = self.tables.cases, self.tables.events
        exists = (yield select(literal(1)).where(self._where(cases), cases.c.case_id == case_id)).first()
        if exists is None:
            raise CaseNotFound(case_id)
        rows = (
            yield select(events.c.version, events.c.data)
            .where(self._where(events), events.c.case_id == case_id, events.c.version > after_version)
            .order_by(events.c.version)
        ).all()
        return tuple(_event(case_id, version, text) for version, text in rows)

    def _active_case(self, household_id: str) -> Steps[str | None]:
        check_id(household_id, "household_id")
        cases = self.tables.cases
        found = (
            yield select(cases.c.case_id).where(self._where(cases), cases.c.live_household_id == household_id)
        ).scalar()
        return None if found is None else str(found)

    def _find(self, query: CaseQuery) -> Steps[Page]:
        check_query(query)
        cases = self.tables.cases
        stmt: Select[Any] = select(cases.c.case_id, cases.c.data, cases.c.next_deadline).where(
            self._where(cases)
        )
        if query.state is not None:
            stmt = stmt.where(cases.c.state == query.state.value)
        if query.caseworker_id is not None:
            stmt = stmt.where(cases.c.caseworker_id == query.caseworker_id)
        if query.household_id is not None:
            stmt = stmt.where(cases.c.household_id == query.household_id)
        by_deadline = query.due_before is not None
        if by_deadline:
            stmt = stmt.where(cases.c.next_deadline.is_not(None), cases.c.next_deadline <= query.due_before)
            stmt = stmt.order_by(cases.c.next_deadline, cases.c.case_id)
        else:
            stmt = stmt.order_by(cases.c.case_id)
        if query.after is not None:
            if by_deadline:
                at_text, after_id = decode_cursor(query.after, 2, "CaseQuery.after")
                at = _from_iso(at_text, "CaseQuery.after")
                # The redundant lower bound lets the database seek in the (deadline, id) index.
                stmt = stmt.where(
                    cases.c.next_deadline >= at,
                    or_(cases.c.next_deadline > at, cases.c.case_id > after_id),
                )
            else:
                (after_id,) = decode_cursor(query.after, 1, "CaseQuery.after")
                stmt = stmt.where(cases.c.case_id > after_id)
        # One row more than asked tells whether there is a next page.
        rows = (yield stmt.limit(query.limit + 1)).all()
        page = rows[: query.limit]
        items = tuple(_case(case_id, text) for case_id, text, _ in page)
        cursor = None
        if len(rows) > query.limit:
            last_id, _, last_deadline = page[-1]
            cursor = encode_cursor(_iso(last_deadline), last_id) if by_deadline else encode_cursor(last_id)
        return Page(items, cursor)

    def _due(self, query: DueQuery) -> Steps[DuePage]:
        if not isinstance(query, DueQuery):
            raise InvalidData(f"expected a DueQuery, not {type(query).__name__}", field="query")
        attrs.validate(query)
        now = query.now
        d, cases = self.tables.deadlines, self.tables.cases
        # listed_from only as the driver reads it: only the last row's is needed (for the cursor).
        listed_from = type_coerce(d.c.listed_from, NullType())
        stmt: Select[Any] = select(listed_from, d.c.case_id, d.c.kind, d.c.subject, d.c.due_at).where(
            self._where(d), d.c.listed_from <= now
        )
        if query.state is not None or query.caseworker_id is not None or query.household_id is not None:
            stmt = stmt.join(cases, and_(cases.c.tenant_id == d.c.tenant_id, cases.c.case_id == d.c.case_id))
            if query.state is not None:
                stmt = stmt.where(cases.c.state == query.state.value)
            if query.caseworker_id is not None:
                stmt = stmt.where(cases.c.caseworker_id == query.caseworker_id)
            if query.household_id is not None:
                stmt = stmt.where(cases.c.household_id == query.household_id)
        if query.after is not None:
            at_text, case_id, kind, subject = decode_cursor(query.after, 4, "DueQuery.after")
            at = _from_iso(at_text, "DueQuery.after")
            later_in_case = or_(d.c.kind > kind, and_(d.c.kind == kind, d.c.subject > subject))
            stmt = stmt.where(
                d.c.listed_from >= at,
                or_(d.c.listed_from > at, d.c.case_id > case_id, and_(d.c.case_id == case_id, later_in_case)),
            )
        stmt = stmt.order_by(d.c.listed_from, d.c.case_id, d.c.kind, d.c.subject).limit(query.limit + 1)
        rows = (yield stmt).all()
        page = rows[: query.limit]
        items = []
        for _, case_id, kind, subject, due_at in page:
            due_kind = _DUE_KINDS.get(kind)
            if due_kind is None:
                raise StorageError(f"a stored deadline of case {case_id!r} has an unknown kind")
            items.append(DueItem(due_at, case_id, due_kind, subject, now > due_at))
        cursor = None
        if len(rows) > query.limit:
            listed, case_id, kind, subject, _ = page[-1]
            last_listed = utc_from_stored(listed)
            assert last_listed is not None  # the column is NOT NULL
            cursor = encode_cursor(_iso(last_listed), case_id, kind, subject)
        return DuePage(tuple(items), cursor)

    # -- refusals ---------------------------------------------------------------------------------

    def _record_refusal(self, refusal: Refusal) -> Steps[None]:
        text = prepare_refusal(refusal)
        yield insert(self.tables.refusals).values(
            tenant_id=self.tenant_id, case_id=refusal.case_id, at=refusal.at, data=text
        )

    def _refusals(self, case_id: str) -> Steps[tuple[Refusal, ...]]:
        check_id(case_id, "case_id")
        r = self.tables.refusals
        rows = (yield select(r.c.data).where(self._where(r), r.c.case_id == case_id).order_by(r.c.seq)).all()
        what = f"refusal of case {case_id!r}"
        return tuple(load_stored(refusal_from_dict, text, what) for (text,) in rows)

    # -- outbox -----------------------------------------------------------------------------------

    def _insert_outbox(self, rows: Sequence[PreparedNotification]) -> Steps[int]:
        """Insert outbox rows, skipping ids already there; how many were new."""
        s = self._shared.statements
        present: set[str] = set()
        new = []
        for n in rows:
            key = _notification_key(n.notification_id)
            if key in present:
                continue
            present.add(key)
            found = (yield Run.one(s.outbox_key, k_tenant=self.tenant_id, k_key=key)).first()
            if found is None:
                new.append(
                    {
                        "tenant_id": self.tenant_id,
                        "notification_key": key,
                        "notification_id": n.notification_id,
                        "case_id": n.case_id,
                        "created_at": n.created_at,
                        "data": n.text,
                        "attempts": 0,
                    }
                )
        if new:
            yield Run.each(s.outbox_insert, new)
        return len(new)

    def _pending(self, now: dt.datetime | None, limit: int) -> Steps[tuple[PendingNotification, ...]]:
        check_limit(limit)
        when = None if now is None else require_aware(now, "now")
        o = self.tables.outbox
        stmt = select(o.c.data, o.c.attempts, o.c.last_error, o.c.next_attempt_at).where(
            self._where(o), o.c.delivered_at.is_(None)
        )
        if when is not None:
            stmt = stmt.where(or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= when))
        rows = (yield stmt.order_by(o.c.seq).limit(limit)).all()
        return tuple(
            PendingNotification(
                load_stored(notification_from_dict, text, "outbox notification"), attempts, error, retry
            )
            for text, attempts, error, retry in rows
        )

    def _outbox_row(self, notification_id: str) -> Any:
        o = self.tables.outbox
        return and_(self._where(o), o.c.notification_key == _notification_key(notification_id))

    def _mark_delivered(self, notification_id: str, at: dt.datetime) -> Steps[None]:
        check_notification_id(notification_id)
        when = require_aware(at, "at")
        o = self.tables.outbox
        found = (
            yield select(o.c.delivered_at).where(self._outbox_row(notification_id)).with_for_update()
        ).first()
        if found is None:
            raise unknown_notification(notification_id)
        if found[0] is None:
            yield o.update().where(self._outbox_row(notification_id)).values(delivered_at=when)

    def _mark_failed(self, notification_id: str, error: str, retry_at: dt.datetime) -> Steps[None]:
        check_notification_id(notification_id)
        check_error(error)
        when = require_aware(retry_at, "retry_at")
        o = self.tables.outbox
        found = (
            yield select(o.c.delivered_at).where(self._outbox_row(notification_id)).with_for_update()
        ).first()
        if found is None:
            raise unknown_notification(notification_id)
        if found[0] is None:
            yield (
                o.update()
                .where(self._outbox_row(notification_id))
                .values(attempts=o.c.attempts + 1, last_error=error, next_attempt_at=when)
            )

    def _delivered_at(self, notification_id: str) -> Steps[dt.datetime | None]:
        check_notification_id(notification_id)
        o = self.tables.outbox
        row = (yield select(o.c.delivered_at).where(self._outbox_row(notification_id))).first()
        if row is None:
            raise unknown_notification(notification_id)
        value: dt.datetime | None = row[0]
        return value

    # -- audit ------------------------------------------------------------------------------------

    def _verify(self, case_id: str | None) -> Steps[ChainReport]:
        if case_id is not None:
            check_id(case_id, "case_id")
        cases, events = self.tables.cases, self.tables.events
        broken: list[BrokenLink] = []
        checked_cases = checked_events = 0
        if case_id is None:
            found = yield union(
                select(cases.c.case_id).where(self._where(cases)),
                select(events.c.case_id).where(self._where(events)),
            )
            # Sorted here: code point order, whatever the database's collation.
            ids = sorted(found.scalars())
        else:
            ids = [case_id]
        for cid in ids:
            row = (
                yield select(cases.c.version, cases.c.head_hash, cases.c.data).where(
                    self._where(cases), cases.c.case_id == cid
                )
            ).first()
            links = [
                ChainLink(*r)
                for r in (
                    yield select(events.c.version, events.c.data, events.c.prev_hash, events.c.hash)
                    .where(self._where(events), events.c.case_id == cid)
                    .order_by(events.c.version)
                ).all()
            ]
            if row is None and not links:
                raise CaseNotFound(cid)
            link, checked = check_chain(
                cid,
                links,
                case_version=row[0] if row else None,
                head=row[1] if row else None,
                stored_case=row[2] if row else None,
            )
            checked_cases += 1
            checked_events += checked
            if link is not None:
                broken.append(link)
        return ChainReport(checked_cases, checked_events, tuple(broken))


class SQLStore(_Operations):
    """A :class:`~casemgmt_core.ports.CaseStore` in SQL tables, through SQLAlchemy Core.

    ``bind`` is a database URL (``sqlite:///cases.db``, ``postgresql+psycopg://…``,
    ``mysql+pymysql://…``; the store then owns its engine and pool), the host's ``Engine`` (the
    store uses its pool and never disposes it) or the host's ``Connection`` (as :meth:`using`).
    ``tenant`` is the centre or programme whose rows this object reads and writes;
    ``table_prefix`` and ``schema`` place the tables; ``create_tables=False`` runs no DDL and only
    checks that the tables are at this version's revision (see ``casemgmt db``).

    The store remembers the last ``cache_size`` cases it wrote or read, with the version and
    chain head it left them at: the next commit of such a case updates its row on condition that
    it is still there (one statement fewer than reading it first), re-checks only the parts of
    the case that changed, and :meth:`cached_case` offers it to :class:`~casemgmt_core.CaseManager`
    to decide on without loading it again. The database stays the truth: where another writer
    got there first, the row is read and the commit refused as a conflict. ``cache_size=0``
    remembers nothing.
    """

    def __init__(
        self,
        bind: str | Engine | Connection,
        *,
        tenant: str = DEFAULT_TENANT,
        table_prefix: str = DEFAULT_PREFIX,
        schema: str | None = None,
        create_tables: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.tenant_id = check_identifier(tenant, "tenant")
        if type(create_tables) is not bool:
            raise InvalidData("must be True or False", field="create_tables")
        cache = CaseCache(_check_cache_size(cache_size))
        tables = store_tables(table_prefix, schema)
        connection: Connection | None = None
        if isinstance(bind, Connection):
            engine, owns, connection = bind.engine, False, bind
            if bind.dialect.name == "sqlite":
                _check_sqlite_transactions(bind)
        elif isinstance(bind, Engine):
            engine, owns = bind, False
        elif isinstance(bind, str):
            engine, owns = _engine_for_url(bind), True
        else:
            raise InvalidData(
                f"cannot store in a {type(bind).__name__}",
                field="bind",
                allowed="a database URL, a SQLAlchemy Engine or a SQLAlchemy Connection",
            )
        memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
        shown = engine.url.render_as_string(hide_password=True)
        self._shared = _Shared(
            engine,
            owns,
            tables,
            engine.dialect.name,
            threading.RLock() if memory else contextlib.nullcontext(),
            WriteStatements.build(tables, engine.dialect),
            cache,
            where=shown,
            driver_errors=_driver_errors(engine.dialect),
        )
        self._connection = connection
        try:
            self._prepare(create_tables)
        except BaseException:
            if owns:
                engine.dispose()
            raise

    def _prepare(self, create: bool) -> None:
        from .migrations import ensure_schema

        with self._translate():
            if self._connection is not None:
                with self._connection.begin_nested():
                    ensure_schema(self._connection, self._shared.tables, create=create)
                return
            assert self._shared.engine is not None
            with self._shared.lock, self._shared.engine.connect() as conn:
                conn = conn.execution_options(casemgmt_write=True)
                with conn.begin():
                    ensure_schema(conn, self._shared.tables, create=create)

    def _view(self, shared: _Shared, tenant_id: str, connection: Connection | None) -> Self:
        view = type(self).__new__(type(self))
        view.__dict__.update(self.__dict__)  # a subclass's settings (a SQLite store's path) too
        view._shared = shared
        view.tenant_id = tenant_id
        view._connection = connection
        return view

    # -- tenants, host transactions, lifetime ----------------------------------------------------

    @property
    def engine(self) -> Engine | None:
        return self._shared.engine

    def for_tenant(self, tenant_id: str) -> Self:
        """The same storage, for another tenant: it sees nothing this tenant stored, nor this it."""
        return self._view(self._shared, check_identifier(tenant_id, "tenant_id"), self._connection)

    def using(self, connection: Connection) -> Self:
        """This store inside the host's transaction on ``connection``: its writes go into a
        savepoint of that transaction and commit or roll back with the host's own rows; it never
        commits. The connection must reach the same database (and tables) as this store."""
        if not isinstance(connection, Connection):
            raise InvalidData(
                f"expected a SQLAlchemy Connection, not {type(connection).__name__}", field="connection"
            )
        if connection.dialect.name != self._shared.dialect:
            raise InvalidData(
                f"the connection is to {connection.dialect.name}, the store to {self._shared.dialect}",
                field="connection",
            )
        if self._shared.dialect == "sqlite":
            _check_sqlite_transactions(connection)
        return self._view(self._shared, self.tenant_id, connection)

    def close(self) -> None:
        """Release the store's pool (a host's engine is left alone); no view of it can be used afterwards."""
        shared = self._shared
        with shared.lock:
            if shared.closed:
                return
            shared.closed = True
            if shared.owns_engine and shared.engine is not None:
                shared.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._shared.where!r}, tenant={self.tenant_id!r})"

    # -- plumbing ---------------------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        # The DBAPI error's own words: SQLAlchemy's text would add the statement's parameters,
        # which hold personal data.
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip().splitlines()
        return f"{self._shared.dialect}: {type(orig).__name__}: {' '.join(text)[:1000]}"

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except CaseManagementError:
            raise
        except (sa_exc.SQLAlchemyError, sqlite3.Error, *self._shared.driver_errors) as exc:  # type: ignore[misc]
            raise StorageError(self._describe(exc)) from getattr(exc, "orig", exc)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            # A stored value the column type cannot read (a timestamp that is not one).
            raise StorageError(f"a stored value cannot be read: {str(exc)[:300]}") from None

    def _open(self) -> Engine:
        if self._shared.closed:
            raise StorageError(f"the store for {self._shared.where!r} is closed")
        assert self._shared.engine is not None
        return self._shared.engine

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reads, one snapshot across the statements of the block."""
        engine = self._open()
        with self._translate():
            if self._connection is not None:
                yield self._connection
                return
            with self._shared.lock, engine.connect() as conn:
                if self._shared.dialect == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                elif self._shared.dialect in ("mysql", "mariadb") and self._shared.owns_engine:
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (a savepoint in the host's): committed if the block ends normally."""
        engine = self._open()
        with self._translate():
            if self._connection is not None:
                with self._connection.begin_nested():
                    yield self._connection
                return
            with self._shared.lock, engine.connect() as conn:
                conn = conn.execution_options(casemgmt_write=True)
                if self._shared.dialect in ("mysql", "mariadb"):
                    # InnoDB's REPEATABLE READ takes gap locks on the case row that is not there
                    # yet, and two openings deadlock; the row lock is all a write needs.
                    conn = conn.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    yield conn

    def _run(self, steps: Steps[T], *, write: bool = False, audit: bool = False) -> T:
        """Run one operation's statements in one transaction (see :data:`Steps`)."""
        scope = self._write() if write else self._audit() if audit else self._read()
        with scope as conn:
            return _drive(conn, steps)

    def _run_driver(self, steps: Steps[T], *, write: bool) -> T:
        """Run an operation made only of :class:`~casemgmt_core.adapters._driver.Run` statements
        (the write path) on the pool's DBAPI connection, in a transaction of its own; in the
        host's transaction (:meth:`using`), through its connection like any other operation."""
        if self._connection is not None:
            return self._run(steps, write=write)
        engine = self._open()
        dialect = self._shared.dialect
        with self._translate(), self._shared.lock:
            raw = engine.raw_connection()
            cursor = None
            try:
                cursor = raw.cursor()
                if dialect == "sqlite":
                    # Outside a transaction the driver would begin a deferred one itself; a
                    # write takes the database's write lock first, so writers queue, not fail.
                    cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                elif write and dialect in ("mysql", "mariadb"):
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")  # see _write
                result: Any = None
                try:
                    while True:
                        run = steps.send(result)
                        assert isinstance(run, Run), "a driver operation yields only Run statements"
                        result = run_on_cursor(cursor, run)
                except StopIteration as done:
                    value: T = done.value
                if write:
                    if dialect == "sqlite":
                        cursor.execute("COMMIT")
                    else:
                        raw.commit()
                else:
                    raw.rollback()
                return value
            except BaseException as exc:
                self._abandon(raw, cursor, exc)
                raise
            finally:
                if cursor is not None:
                    with contextlib.suppress(Exception):
                        cursor.close()
                raw.close()

    def _abandon(self, raw: Any, cursor: Any, exc: BaseException) -> None:
        """Roll back a failed driver transaction; a connection the database dropped is not
        returned to the pool."""
        engine = self._shared.engine
        assert engine is not None
        if isinstance(exc, (*self._shared.driver_errors, sqlite3.Error)) and engine.dialect.is_disconnect(
            exc,  # type: ignore[arg-type]  # a DBAPI error, as the dialect expects
            raw.dbapi_connection,
            cursor,
        ):
            raw.invalidate(exc)
            return
        try:
            raw.rollback()
        except Exception:  # the connection is unusable: do not pool it
            raw.invalidate()

    # -- cases and events ---------------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        key, known = self._known(commit)
        c = prepare_commit(commit, previous=None if known is None else known.checked)
        try:
            head = self._run_driver(self._commit(c, known), write=True)
        except StorageError as exc:
            self._shared.cache.drop(key)
            # A constraint the database enforced that the checks in _commit could not see coming
            # (another writer got there first), or a deadlock: say what it means.
            try:
                explained = self._run(self._explain(c))
            except StorageError:
                raise exc from None
            raise (explained or exc) from exc
        except BaseException:
            self._shared.cache.drop(key)
            raise
        self._remember(key, Known(c.version, head, commit.case, c.checked, c.deadlines))

    def load(self, case_id: str) -> Case:
        known = self._run_driver(self._load(case_id), write=False)
        self._remember((self.tenant_id, case_id), known)
        return known.case

    def cached_case(self, case_id: str) -> Case | None:
        """The case as this store last wrote or read it in this process, if it still remembers
        it; ``None`` otherwise. It may be behind the database (another process may have written
        since): use it only to decide on, and commit with its version as the expected one, so
        that a stale case meets :class:`~casemgmt_core.ConcurrencyConflict`."""
        check_id(case_id, "case_id")
        known = self._shared.cache.get((self.tenant_id, case_id))
        return None if known is None else known.case

    def events(self, case_id: str, *, after_version: int = 0) -> Sequence[Event]:
        return self._run(self._events(case_id, after_version))

    def active_case_for_household(self, household_id: str) -> str | None:
        return self._run(self._active_case(household_id))

    def find(self, query: CaseQuery) -> Page:
        return self._run(self._find(query))

    def due(self, query: DueQuery) -> DuePage:
        return self._run(self._due(query))

    def record_refusal(self, refusal: Refusal) -> None:
        self._run(self._record_refusal(refusal), write=True)

    def refusals(self, case_id: str) -> Sequence[Refusal]:
        return self._run(self._refusals(case_id))

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        rows = prepare_notifications(notifications, "notifications")
        return self._run_driver(self._insert_outbox(rows), write=True)

    def pending_notifications(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> Sequence[PendingNotification]:
        return self._run(self._pending(now, limit))

    def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        self._run(self._mark_delivered(notification_id, at), write=True)

    def mark_failed(self, notification_id: str, *, error: str, retry_at: dt.datetime) -> None:
        self._run(self._mark_failed(notification_id, error, retry_at), write=True)

    def notification_delivered_at(self, notification_id: str) -> dt.datetime | None:
        return self._run(self._delivered_at(notification_id))

    def verify(self, case_id: str | None = None) -> ChainReport:
        return self._run(self._verify(case_id), audit=True)

    @contextlib.contextmanager
    def _audit(self) -> Iterator[Connection]:
        """A connection for :meth:`verify`, which must read any row, readable or not."""
        with self._read() as conn:
            raw = conn.connection.dbapi_connection if self._shared.dialect == "sqlite" else None
            if not isinstance(raw, sqlite3.Connection):
                yield conn
                return
            raw.text_factory = _lenient_text
            try:
                yield conn
            finally:
                raw.text_factory = str


_SQLITE_SETUP = (
    "an engine from casemgmt_core.adapters.sql.sqlite_engine(path), or one set up as it is "
    "(the driver's isolation_level None and BEGIN emitted on SQLAlchemy's begin event)"
)


def _check_sqlite_transactions(connection: Connection) -> None:
    """Refuse a host's SQLite connection whose transactions the driver runs by itself.

    pysqlite's own transaction handling (its default) begins a transaction only before the first
    change and knows nothing of savepoints: the store's savepoint would not nest in the host's
    transaction, and the host's rows and the case would not commit or roll back together.
    """
    dbapi = connection.connection.driver_connection
    legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", None)
    driver_managed = getattr(dbapi, "isolation_level", None) is not None or (
        legacy is not None and getattr(dbapi, "autocommit", legacy) != legacy
    )
    # SQLAlchemy has begun a transaction that the database does not know of: no BEGIN was sent.
    unbegun = connection.in_transaction() and not getattr(dbapi, "in_transaction", True)
    if driver_managed or unbegun:
        raise InvalidData(
            "the SQLite connection's transactions are run by the driver, so the store's writes "
            "would not commit or roll back with the host's",
            field="connection",
            allowed=_SQLITE_SETUP,
        )


def _drive(conn: Connection, steps: Steps[T]) -> T:
    """Run ``steps`` on a SQLAlchemy connection (a driver :class:`Run` as its driver SQL)."""
    result: Any = None
    try:
        while True:
            statement = steps.send(result)
            if isinstance(statement, Run):
                found = conn.exec_driver_sql(statement.statement.sql, statement.parameters)
                result = Rows([tuple(r) for r in found] if found.returns_rows else [], found.rowcount)
            else:
                result = conn.execute(statement)
    except StopIteration as done:
        value: T = done.value
        return value


_DUE_KINDS = {kind.value: kind for kind in DueKind}


def _case_values(c: PreparedCommit, head: str) -> dict[str, Any]:
    values = {
        "household_id": c.household_id,
        "state": c.state,
        "caseworker_id": c.caseworker_id,
        "live_household_id": c.household_id if c.live else None,
        "next_deadline": c.next_deadline,
        "version": c.version,
        "head_hash": head,
        "data": c.case_text,
    }
    return values


def _prefixed(values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in values.items()}


def _case(case_id: str, text: str) -> Case:
    return load_stored(case_from_dict, text, f"case {case_id!r}")


def _event(case_id: str, version: int, text: str) -> Event:
    return load_stored(event_from_dict, text, f"event {case_id}/{version}")


def _engine_for_url(url: str) -> Engine:
    """An engine of the store's own for ``url`` (its password never shown in an error)."""
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        raise InvalidData("is not a database URL", field="url") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return sqlite_engine(parsed.database or ":memory:", **_sqlite_options(parsed.query))
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{backend}+pymysql")
    options: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    if backend in ("mysql", "mariadb"):
        options["connect_args"] = {"charset": "utf8mb4"}
        options["isolation_level"] = "READ COMMITTED"
    try:
        return create_engine(parsed, **options)
    except ImportError as exc:
        extra = _EXTRAS.get(backend, backend)
        raise StorageError(
            f"the {backend} driver is not installed ({exc.name}): install casemgmt-core[{extra}]"
        ) from None
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ValueError, TypeError) as exc:
        raise InvalidData(f"cannot open a store for this URL: {type(exc).__name__}", field="url") from None


_EXTRAS = {"postgresql": "postgresql", "mysql": "mariadb", "mariadb": "mariadb"}


def _sqlite_options(query: Mapping[str, str | tuple[str, ...]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, raw in query.items():
        value = raw[-1] if isinstance(raw, tuple) else raw
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
