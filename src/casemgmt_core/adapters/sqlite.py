"""The embedded default store: one SQLite file, through the standard library's ``sqlite3``.

Durability and concurrency: the database runs in WAL mode; every write is one ``BEGIN
IMMEDIATE`` transaction (so writers queue on the database lock, waiting up to the busy timeout,
instead of failing half-way); ``synchronous=FULL`` by default, so a committed transition
survives a power cut. Several processes may share one file. The database itself enforces that a
household has at most one live case (a partial unique index) and that event versions are unique
per case. Driver errors become :class:`~casemgmt_core.StorageError`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator
from typing import Literal

from ..errors import InvalidData, StorageError
from ._sql import LIVE_SQL, Connection, SQLStore

__all__ = ["SQLiteStore"]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
SCHEMA_VERSION = 1

# Datetimes are stored as fixed-width UTC text, so that text order is time order.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS cases (
    case_id       TEXT PRIMARY KEY,
    household_id  TEXT NOT NULL,
    state         TEXT NOT NULL,
    caseworker_id TEXT,
    next_deadline TEXT,
    version       INTEGER NOT NULL CHECK (version > 0),
    head_hash     TEXT NOT NULL,
    data          TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_one_live_per_household
    ON cases (household_id) WHERE state IN ({LIVE_SQL});
CREATE INDEX IF NOT EXISTS cases_by_state ON cases (state, case_id);
CREATE INDEX IF NOT EXISTS cases_by_caseworker ON cases (caseworker_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_household ON cases (household_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_deadline ON cases (next_deadline) WHERE next_deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    case_id     TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version > 0),
    event       TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (case_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    at      TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refusals_by_case ON refusals (case_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT NOT NULL UNIQUE,
    case_id         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    data            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT,
    delivered_at    TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE delivered_at IS NULL;
"""


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).strftime(_TIME_FORMAT)


def _from_ts(value: object) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise StorageError(f"a stored timestamp is not an aware ISO 8601 time: {str(value)[:40]!r}")
    return parsed.astimezone(dt.UTC)


def _lenient_text(raw: bytes) -> str:
    # Bytes that are not UTF-8 (written by another program) become lone surrogates, which the
    # loader refuses: the row is reported rather than the whole read failing.
    return raw.decode("utf-8", "surrogateescape")


class SQLiteStore(SQLStore):
    """A :class:`~casemgmt_core.ports.CaseStore` in a SQLite database file.

    ``path`` is a file path (created if missing) or ``":memory:"``. ``synchronous`` is SQLite's
    setting (``FULL`` keeps every commit through a power cut; ``NORMAL`` in WAL mode may lose the
    last commits, never consistency). ``busy_timeout_ms`` is how long a write waits for another
    writer before :class:`~casemgmt_core.StorageError`. One store object may be used from several
    threads; each process opens its own.
    """

    _param = "?"
    _to_db = staticmethod(_ts)
    _from_db = staticmethod(_from_ts)
    # Writers queue on BEGIN IMMEDIATE, so this read is authoritative and names the live case;
    # the index only catches another program writing to the file.
    _check_household_first = True
    _driver_error = sqlite3.Error

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "FULL", busy_timeout_ms: int = 5000
    ) -> None:
        mode = synchronous.upper() if isinstance(synchronous, str) else ""
        if mode not in SYNCHRONOUS:
            raise InvalidData(
                f"unknown setting {synchronous!r}", field="synchronous", allowed=", ".join(SYNCHRONOUS)
            )
        if not isinstance(busy_timeout_ms, int) or isinstance(busy_timeout_ms, bool) or busy_timeout_ms < 0:
            raise InvalidData(
                f"must be 0 or more milliseconds, not {busy_timeout_ms!r}", field="busy_timeout_ms"
            )
        self.path = os.fspath(path)
        self.synchronous = mode
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                self.path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the SQLite database {self.path!r}: {exc}") from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            journal = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if journal != "wal" and self.path != ":memory:":
                raise StorageError(f"{self.path!r}: WAL mode is not available (journal mode is {journal})")
            db.execute(f"PRAGMA synchronous = {mode}")
            db.execute("BEGIN IMMEDIATE")
            try:
                found = db.execute("PRAGMA user_version").fetchone()[0]
                if found > SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path!r} has storage schema {found}; this version of the library "
                        f"knows schema {SCHEMA_VERSION} at most"
                    )
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            db.close()
            raise StorageError(f"cannot prepare the SQLite database {self.path!r}: {exc}") from exc
        except BaseException:
            db.close()
            raise
        self._db = db

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                try:
                    db.close()
                except sqlite3.Error as exc:
                    raise StorageError(f"closing {self.path!r} failed: {exc}") from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (one snapshot across statements), with errors translated."""
        with self._lock, self._translate():
            db = self._open()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                if db.in_transaction:
                    db.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block ends normally, else rolled back."""
        with self._lock, self._translate():
            db = self._open()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _audit(self) -> Iterator[sqlite3.Connection]:
        with self._read() as db:
            db.text_factory = _lenient_text
            try:
                yield db
            finally:
                db.text_factory = str

    def _describe(self, exc: Exception) -> str:
        return f"SQLite ({self.path}): {exc}"

    def _constraint_hit(self, cause: BaseException | None) -> Literal["household", "case"] | None:
        if isinstance(cause, sqlite3.IntegrityError):
            # SQLite names the constraint only by its columns.
            if "household_id" in str(cause):
                return "household"
            if "case_id" in str(cause) or "version" in str(cause):
                return "case"
        return None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            raise StorageError(f"the store for {self.path!r} is closed")
        return self._db

    def _case_ids(self, db: Connection) -> list[str]:
        # SQLite's default collation is code point order already.
        return [
            r[0]
            for r in db.execute("SELECT case_id FROM cases UNION SELECT case_id FROM events ORDER BY case_id")
        ]
