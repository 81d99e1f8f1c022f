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
import threading
from collections.abc import Iterator
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors

from ..errors import InvalidData, StorageError
from ._sql import LIVE_SQL, SQLStore

__all__ = ["PostgresStore"]

SCHEMA_VERSION = 1
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
CREATE UNIQUE INDEX IF NOT EXISTS {_HOUSEHOLD_INDEX} ON cases (household_id) WHERE state IN ({LIVE_SQL});
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


class PostgresStore(SQLStore):
    """A :class:`~casemgmt_core.ports.CaseStore` in a PostgreSQL database.

    ``conninfo`` is a libpq URL or ``key=value`` string. One store holds one connection, shared
    by threads one operation at a time; a connection lost between operations is opened again.
    """

    _param = "%s"
    # The same order as the other stores, whatever the database's locale.
    _case_order = 'case_id COLLATE "C"'
    # Concurrent writers of one case queue on the row lock; the losers then see a new version.
    _lock_case_row = " FOR UPDATE"
    _driver_error = psycopg.Error

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

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StorageError("the PostgreSQL store is closed")
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

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

    def _describe(self, exc: Exception) -> str:
        # libpq messages name host, database and user, never the password.
        return f"PostgreSQL: {type(exc).__name__}: {str(exc).strip()}"

    def _constraint_hit(self, cause: BaseException | None) -> Literal["household", "case"] | None:
        if isinstance(cause, pg_errors.UniqueViolation):
            if cause.diag.constraint_name == _HOUSEHOLD_INDEX:
                return "household"
            # Another writer created the case or its version first.
            return "case"
        return None
