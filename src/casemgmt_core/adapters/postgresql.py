"""A PostgreSQL store through ``psycopg`` 3 (install ``casemgmt-core[postgresql]``).

Only this module imports ``psycopg``. Every write is one transaction: the case row is locked
(``SELECT … FOR UPDATE``) before its version is compared, so concurrent writers on the same case
queue and all but the first get :class:`~casemgmt_core.ConcurrencyConflict`. The database enforces
one live case per household (a partial unique index) and unique event versions per case, across
every process and server using it. Driver errors become :class:`~casemgmt_core.StorageError`.

Tables are created, if missing, in the first schema of the connection's ``search_path``; to
keep them apart from an embedding system's own, give the connection a schema, e.g.
``postgresql://host/db?options=-csearch_path%3Dcasemgmt``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ..errors import (
    CaseManagementError,
    CaseNotFound,
    ConcurrencyConflict,
    DuplicateCase,
    InvalidData,
    StorageError,
)
from ..events import Event
from ..lifecycle import LIVE_STATES
from ..model import Case
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
from ..serialization import (
    case_from_dict,
    event_from_dict,
    notification_from_dict,
    notification_to_dict,
    refusal_from_dict,
    refusal_to_dict,
)
from . import (
    GENESIS,
    ChainLink,
    PreparedCommit,
    check_chain,
    check_limit,
    check_query,
    check_refusal,
    load_stored,
    prepare_commit,
    require_aware,
    serialise,
    unknown_notification,
)

__all__ = ["PostgresStore"]

SCHEMA_VERSION = 1
_LIVE = ", ".join(f"'{s.value}'" for s in sorted(LIVE_STATES))
_HOUSEHOLD_INDEX = "cases_one_live_per_household"
# Serialises schema creation when several processes open a new database at once.
_DDL_LOCK = 0x6361_7365_6D67  # "casemg"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS casemgmt_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    case_id       text PRIMARY KEY,
    household_id  text NOT NULL,
    state         text NOT NULL,
    caseworker_id text,
    next_deadline timestamptz,
    version       integer NOT NULL CHECK (version > 0),
    head_hash     text NOT NULL,
    data          text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS {_HOUSEHOLD_INDEX} ON cases (household_id) WHERE state IN ({_LIVE});
CREATE INDEX IF NOT EXISTS cases_by_state ON cases (state, case_id);
CREATE INDEX IF NOT EXISTS cases_by_caseworker ON cases (caseworker_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_household ON cases (household_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_deadline ON cases (next_deadline) WHERE next_deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    case_id     text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    event       text NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        text NOT NULL,
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    PRIMARY KEY (case_id, version)
);
CREATE TABLE IF NOT EXISTS refusals (
    seq     bigserial PRIMARY KEY,
    case_id text NOT NULL,
    at      timestamptz NOT NULL,
    data    text NOT NULL
);
CREATE INDEX IF NOT EXISTS refusals_by_case ON refusals (case_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq             bigserial PRIMARY KEY,
    notification_id text NOT NULL UNIQUE,
    case_id         text NOT NULL,
    created_at      timestamptz NOT NULL,
    data            text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz,
    delivered_at    timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE delivered_at IS NULL
"""


class PostgresStore:
    """A :class:`~casemgmt_core.ports.CaseStore` in a PostgreSQL database.

    ``conninfo`` is a libpq URL or ``key=value`` string. One store holds one connection, shared
    by threads one operation at a time; a connection lost between operations is opened again.
    """

    def __init__(self, conninfo: str) -> None:
        if not isinstance(conninfo, str) or not conninfo:
            raise InvalidData("must be a libpq connection string or URL", field="conninfo")
        self._conninfo = conninfo
        self._lock = threading.RLock()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        with self._translate():
            conn = self._connection()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                conn.execute(SCHEMA)
                row = conn.execute("SELECT max(version) FROM casemgmt_schema").fetchone()
                found = row[0] if row else None
                if found is None:
                    conn.execute("INSERT INTO casemgmt_schema VALUES (%s)", (SCHEMA_VERSION,))
                elif found > SCHEMA_VERSION:
                    raise StorageError(
                        f"the database has storage schema {found}; this version of the library "
                        f"knows schema {SCHEMA_VERSION} at most"
                    )

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StorageError("the PostgreSQL store is closed")
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except CaseManagementError:
            raise
        except psycopg.Error as exc:
            # libpq messages name host, database and user, never the password.
            raise StorageError(f"PostgreSQL: {type(exc).__name__}: {str(exc).strip()}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock, self._translate():
            conn = self._connection()
            with conn.transaction():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        """One snapshot across the statements of the block."""
        with self._lock, self._translate():
            conn = self._connection()
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield conn

    # -- cases and events -----------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        c = prepare_commit(commit)
        try:
            with self._write() as conn:
                self._commit(conn, c)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, pg_errors.UniqueViolation):
                if cause.diag.constraint_name == _HOUSEHOLD_INDEX:
                    existing = self.active_case_for_household(c.household_id)
                    raise DuplicateCase(
                        household_id=c.household_id, existing_case_id=existing or "?"
                    ) from exc
                # Another writer created the case or its version first.
                raise ConcurrencyConflict(
                    case_id=c.case_id, expected_version=c.expected_version, actual_version=None
                ) from exc
            raise

    def _commit(self, conn: psycopg.Connection[Any], c: PreparedCommit) -> None:
        row = conn.execute(
            "SELECT version, head_hash FROM cases WHERE case_id = %s FOR UPDATE", (c.case_id,)
        ).fetchone()
        if (row[0] if row else 0) != c.expected_version:
            raise ConcurrencyConflict(
                case_id=c.case_id, expected_version=c.expected_version, actual_version=row[0] if row else None
            )
        hashes = c.hashes(row[1] if row else GENESIS)
        values = (
            c.household_id,
            c.state,
            c.caseworker_id,
            c.next_deadline,
            c.version,
            hashes[-1][1],
            c.case_text,
            c.case_id,
        )
        if row is None:
            inserted = conn.execute(
                "INSERT INTO cases (household_id, state, caseworker_id, next_deadline, version, head_hash,"
                " data, case_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (case_id) DO NOTHING",
                values,
            )
            if inserted.rowcount == 0:
                # Opened concurrently by another writer, which committed first.
                raise ConcurrencyConflict(case_id=c.case_id, expected_version=0, actual_version=None)
        else:
            conn.execute(
                "UPDATE cases SET household_id = %s, state = %s, caseworker_id = %s, next_deadline = %s,"
                " version = %s, head_hash = %s, data = %s WHERE case_id = %s",
                values,
            )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (case_id, version, event, occurred_at, data, prev_hash, hash)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (c.case_id, e.version, e.event, e.occurred_at, e.text, prev, current)
                    for e, (prev, current) in zip(c.events, hashes, strict=True)
                ],
            )
        _insert_outbox(conn, [(n.notification_id, n.case_id, n.created_at, n.text) for n in c.notifications])

    def load(self, case_id: str) -> Case:
        with self._read() as conn:
            row = conn.execute("SELECT data FROM cases WHERE case_id = %s", (case_id,)).fetchone()
        if row is None:
            raise CaseNotFound(case_id)
        return load_stored(case_from_dict, row[0], f"case {case_id!r}")

    def events(self, case_id: str, *, after_version: int = 0) -> Sequence[Event]:
        if not isinstance(after_version, int) or after_version < 0:
            raise InvalidData(f"must be 0 or more, not {after_version!r}", field="after_version")
        with self._read() as conn:
            if conn.execute("SELECT 1 FROM cases WHERE case_id = %s", (case_id,)).fetchone() is None:
                raise CaseNotFound(case_id)
            rows = conn.execute(
                "SELECT version, data FROM events WHERE case_id = %s AND version > %s ORDER BY version",
                (case_id, after_version),
            ).fetchall()
        return tuple(load_stored(event_from_dict, text, f"event {case_id}/{v}") for v, text in rows)

    def active_case_for_household(self, household_id: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT case_id FROM cases WHERE household_id = %s AND state IN ({_LIVE})", (household_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def find(self, query: CaseQuery) -> Page:
        check_query(query)
        where: list[str] = []
        params: list[object] = []
        if query.state is not None:
            where.append("state = %s")
            params.append(query.state.value)
        if query.caseworker_id is not None:
            where.append("caseworker_id = %s")
            params.append(query.caseworker_id)
        if query.household_id is not None:
            where.append("household_id = %s")
            params.append(query.household_id)
        if query.due_before is not None:
            where.append("next_deadline <= %s")
            params.append(query.due_before)
        sql = "SELECT case_id, data FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # ``COLLATE "C"``: the same order as the other stores, whatever the database's locale.
        sql += ' ORDER BY case_id COLLATE "C" LIMIT %s OFFSET %s'
        with self._read() as conn:
            rows = conn.execute(sql, (*params, query.limit + 1, query.offset)).fetchall()
        items = tuple(load_stored(case_from_dict, text, f"case {cid!r}") for cid, text in rows[: query.limit])
        return Page(items, query.offset + query.limit if len(rows) > query.limit else None)

    # -- refusals -------------------------------------------------------------------------------

    def record_refusal(self, refusal: Refusal) -> None:
        check_refusal(refusal)
        text = serialise(refusal_to_dict, refusal, "refusal")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO refusals (case_id, at, data) VALUES (%s, %s, %s)",
                (refusal.case_id, refusal.at, text),
            )

    def refusals(self, case_id: str) -> Sequence[Refusal]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT data FROM refusals WHERE case_id = %s ORDER BY seq", (case_id,)
            ).fetchall()
        return tuple(load_stored(refusal_from_dict, text, f"refusal of case {case_id!r}") for (text,) in rows)

    # -- outbox ---------------------------------------------------------------------------------

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        rows = []
        for n in notifications:
            if not isinstance(n, Notification):
                raise InvalidData(f"expected a Notification, not {type(n).__name__}", field="notifications")
            created = require_aware(n.created_at, "notification.created_at")
            rows.append(
                (n.notification_id, n.case_id, created, serialise(notification_to_dict, n, "notification"))
            )
        with self._write() as conn:
            return _insert_outbox(conn, rows)

    def pending_notifications(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> Sequence[PendingNotification]:
        check_limit(limit)
        sql = "SELECT data, attempts, last_error, next_attempt_at FROM outbox WHERE delivered_at IS NULL"
        params: list[object] = []
        if now is not None:
            sql += " AND (next_attempt_at IS NULL OR next_attempt_at <= %s)"
            params.append(require_aware(now, "now"))
        sql += " ORDER BY seq LIMIT %s"
        with self._read() as conn:
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return tuple(
            PendingNotification(
                load_stored(notification_from_dict, text, "outbox notification"), n, error, retry
            )
            for text, n, error, retry in rows
        )

    def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        stamp = require_aware(at, "at")
        with self._write() as conn:
            done = conn.execute(
                "UPDATE outbox SET delivered_at = COALESCE(delivered_at, %s) WHERE notification_id = %s",
                (stamp, notification_id),
            )
            if done.rowcount == 0:
                raise unknown_notification(notification_id)

    def mark_failed(self, notification_id: str, *, error: str, retry_at: dt.datetime) -> None:
        stamp = require_aware(retry_at, "retry_at")
        with self._write() as conn:
            done = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s"
                " WHERE notification_id = %s AND delivered_at IS NULL",
                (str(error), stamp, notification_id),
            )
            if done.rowcount == 0 and (
                conn.execute("SELECT 1 FROM outbox WHERE notification_id = %s", (notification_id,)).fetchone()
                is None
            ):
                raise unknown_notification(notification_id)

    # -- audit ----------------------------------------------------------------------------------

    def verify(self, case_id: str | None = None) -> ChainReport:
        broken: list[BrokenLink] = []
        cases = events = 0
        with self._read() as conn:
            if case_id is None:
                # Sorted here: code point order, the same as the other stores.
                ids = sorted(
                    r[0] for r in conn.execute("SELECT case_id FROM cases UNION SELECT case_id FROM events")
                )
            else:
                ids = [case_id]
            for cid in ids:
                row = conn.execute(
                    "SELECT version, head_hash, data FROM cases WHERE case_id = %s", (cid,)
                ).fetchone()
                links = [
                    ChainLink(*r)
                    for r in conn.execute(
                        "SELECT version, data, prev_hash, hash FROM events"
                        " WHERE case_id = %s ORDER BY version",
                        (cid,),
                    )
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
                cases += 1
                events += checked
                if link is not None:
                    broken.append(link)
        return ChainReport(cases, events, tuple(broken))


def _insert_outbox(conn: psycopg.Connection[Any], rows: Sequence[tuple[str, str, dt.datetime, str]]) -> int:
    new = 0
    for row in rows:
        cur = conn.execute(
            "INSERT INTO outbox (notification_id, case_id, created_at, data) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (notification_id) DO NOTHING",
            row,
        )
        new += cur.rowcount
    return new
