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
from collections.abc import Iterator, Sequence

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
    PreparedNotification,
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

__all__ = ["SQLiteStore"]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
SCHEMA_VERSION = 1
_LIVE = ", ".join(f"'{s.value}'" for s in sorted(LIVE_STATES))

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
    ON cases (household_id) WHERE state IN ({_LIVE});
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


def _from_ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


class SQLiteStore:
    """A :class:`~casemgmt_core.ports.CaseStore` in a SQLite database file.

    ``path`` is a file path (created if missing) or ``":memory:"``. ``synchronous`` is SQLite's
    setting (``FULL`` keeps every commit through a power cut; ``NORMAL`` in WAL mode may lose the
    last commits, never consistency). ``busy_timeout_ms`` is how long a write waits for another
    writer before :class:`~casemgmt_core.StorageError`. One store object may be used from several
    threads; each process opens its own.
    """

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

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except CaseManagementError:
            raise
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite ({self.path}): {exc}") from exc

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            raise StorageError(f"the store for {self.path!r} is closed")
        return self._db

    # -- cases and events -----------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        c = prepare_commit(commit)
        try:
            with self._write() as db:
                row = db.execute(
                    "SELECT version, head_hash FROM cases WHERE case_id = ?", (c.case_id,)
                ).fetchone()
                if (row[0] if row else 0) != c.expected_version:
                    raise ConcurrencyConflict(
                        case_id=c.case_id,
                        expected_version=c.expected_version,
                        actual_version=row[0] if row else None,
                    )
                if c.live:
                    other = db.execute(
                        f"SELECT case_id FROM cases WHERE household_id = ? AND state IN ({_LIVE})"
                        " AND case_id <> ? LIMIT 1",
                        (c.household_id, c.case_id),
                    ).fetchone()
                    if other is not None:
                        raise DuplicateCase(household_id=c.household_id, existing_case_id=other[0])
                hashes = c.hashes(row[1] if row else GENESIS)
                values = (
                    c.household_id,
                    c.state,
                    c.caseworker_id,
                    _ts(c.next_deadline),
                    c.version,
                    hashes[-1][1],
                    c.case_text,
                    c.case_id,
                )
                if row is None:
                    db.execute(
                        "INSERT INTO cases (household_id, state, caseworker_id, next_deadline, version,"
                        " head_hash, data, case_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        values,
                    )
                else:
                    db.execute(
                        "UPDATE cases SET household_id = ?, state = ?, caseworker_id = ?, next_deadline = ?,"
                        " version = ?, head_hash = ?, data = ? WHERE case_id = ?",
                        values,
                    )
                db.executemany(
                    "INSERT INTO events (case_id, version, event, occurred_at, data, prev_hash, hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (c.case_id, e.version, e.event, _ts(e.occurred_at), e.text, prev, current)
                        for e, (prev, current) in zip(c.events, hashes, strict=True)
                    ],
                )
                self._insert_notifications(db, c.notifications)
        except StorageError as exc:
            # A constraint the database enforces that the checks above did not see coming
            # (another program writing to the file): say what it means.
            cause = exc.__cause__
            if isinstance(cause, sqlite3.IntegrityError):
                if "household_id" in str(cause):
                    existing = self.active_case_for_household(c.household_id)
                    raise DuplicateCase(
                        household_id=c.household_id, existing_case_id=existing or "?"
                    ) from exc
                if "case_id" in str(cause) or "version" in str(cause):
                    raise ConcurrencyConflict(
                        case_id=c.case_id, expected_version=c.expected_version, actual_version=None
                    ) from exc
            raise

    def load(self, case_id: str) -> Case:
        with self._read() as db:
            row = db.execute("SELECT data FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            raise CaseNotFound(case_id)
        return self._case(case_id, row[0])

    def events(self, case_id: str, *, after_version: int = 0) -> Sequence[Event]:
        if not isinstance(after_version, int) or after_version < 0:
            raise InvalidData(f"must be 0 or more, not {after_version!r}", field="after_version")
        with self._read() as db:
            if db.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
                raise CaseNotFound(case_id)
            rows = db.execute(
                "SELECT version, data FROM events WHERE case_id = ? AND version > ? ORDER BY version",
                (case_id, after_version),
            ).fetchall()
        return tuple(self._event(case_id, version, text) for version, text in rows)

    def active_case_for_household(self, household_id: str) -> str | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT case_id FROM cases WHERE household_id = ? AND state IN ({_LIVE})", (household_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def find(self, query: CaseQuery) -> Page:
        check_query(query)
        where: list[str] = []
        params: list[object] = []
        if query.state is not None:
            where.append("state = ?")
            params.append(query.state.value)
        if query.caseworker_id is not None:
            where.append("caseworker_id = ?")
            params.append(query.caseworker_id)
        if query.household_id is not None:
            where.append("household_id = ?")
            params.append(query.household_id)
        if query.due_before is not None:
            where.append("next_deadline IS NOT NULL AND next_deadline <= ?")
            params.append(_ts(query.due_before))
        sql = "SELECT case_id, data FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # One row more than asked tells whether there is a next page.
        sql += " ORDER BY case_id LIMIT ? OFFSET ?"
        with self._read() as db:
            rows = db.execute(sql, (*params, query.limit + 1, query.offset)).fetchall()
        items = tuple(self._case(case_id, text) for case_id, text in rows[: query.limit])
        return Page(items, query.offset + query.limit if len(rows) > query.limit else None)

    # -- refusals -------------------------------------------------------------------------------

    def record_refusal(self, refusal: Refusal) -> None:
        check_refusal(refusal)
        text = serialise(refusal_to_dict, refusal, "refusal")
        with self._write() as db:
            db.execute(
                "INSERT INTO refusals (case_id, at, data) VALUES (?, ?, ?)",
                (refusal.case_id, _ts(refusal.at), text),
            )

    def refusals(self, case_id: str) -> Sequence[Refusal]:
        with self._read() as db:
            rows = db.execute(
                "SELECT data FROM refusals WHERE case_id = ? ORDER BY seq", (case_id,)
            ).fetchall()
        return tuple(
            load_stored(refusal_from_dict, text, f"a refusal of case {case_id!r}") for (text,) in rows
        )

    # -- outbox ---------------------------------------------------------------------------------

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        prepared = []
        for n in notifications:
            if not isinstance(n, Notification):
                raise InvalidData(f"expected a Notification, not {type(n).__name__}", field="notifications")
            created = require_aware(n.created_at, "notification.created_at")
            text = serialise(notification_to_dict, n, "notification")
            prepared.append((n.notification_id, n.case_id, created, text))
        with self._write() as db:
            return self._insert_rows(db, prepared)

    def pending_notifications(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> Sequence[PendingNotification]:
        check_limit(limit)
        sql = "SELECT data, attempts, last_error, next_attempt_at FROM outbox WHERE delivered_at IS NULL"
        params: list[object] = []
        if now is not None:
            sql += " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
            params.append(_ts(require_aware(now, "now")))
        sql += " ORDER BY seq LIMIT ?"
        with self._read() as db:
            rows = db.execute(sql, (*params, limit)).fetchall()
        return tuple(
            PendingNotification(
                load_stored(notification_from_dict, text, "an outbox notification"),
                attempts,
                error,
                _from_ts(retry),
            )
            for text, attempts, error, retry in rows
        )

    def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        stamp = _ts(require_aware(at, "at"))
        with self._write() as db:
            done = db.execute(
                "UPDATE outbox SET delivered_at = COALESCE(delivered_at, ?) WHERE notification_id = ?",
                (stamp, notification_id),
            )
            if done.rowcount == 0:
                raise unknown_notification(notification_id)

    def mark_failed(self, notification_id: str, *, error: str, retry_at: dt.datetime) -> None:
        stamp = _ts(require_aware(retry_at, "retry_at"))
        with self._write() as db:
            done = db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE notification_id = ? AND delivered_at IS NULL",
                (str(error), stamp, notification_id),
            )
            if done.rowcount == 0 and (
                db.execute("SELECT 1 FROM outbox WHERE notification_id = ?", (notification_id,)).fetchone()
                is None
            ):
                raise unknown_notification(notification_id)

    def _insert_notifications(self, db: sqlite3.Connection, notes: Sequence[PreparedNotification]) -> int:
        return self._insert_rows(db, [(n.notification_id, n.case_id, n.created_at, n.text) for n in notes])

    @staticmethod
    def _insert_rows(db: sqlite3.Connection, rows: Sequence[tuple[str, str, dt.datetime, str]]) -> int:
        new = 0
        for notification_id, case_id, created, text in rows:
            cursor = db.execute(
                "INSERT INTO outbox (notification_id, case_id, created_at, data) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (notification_id) DO NOTHING",
                (notification_id, case_id, _ts(created), text),
            )
            new += cursor.rowcount
        return new

    # -- audit ----------------------------------------------------------------------------------

    def verify(self, case_id: str | None = None) -> ChainReport:
        broken: list[BrokenLink] = []
        cases = events = 0
        with self._read() as db:
            if case_id is None:
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT case_id FROM cases UNION SELECT case_id FROM events ORDER BY case_id"
                    )
                ]
            else:
                ids = [case_id]
            for cid in ids:
                row = db.execute(
                    "SELECT version, head_hash, data FROM cases WHERE case_id = ?", (cid,)
                ).fetchone()
                links = [
                    ChainLink(*r)
                    for r in db.execute(
                        "SELECT version, data, prev_hash, hash FROM events"
                        " WHERE case_id = ? ORDER BY version",
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

    # -- loading --------------------------------------------------------------------------------

    def _case(self, case_id: str, text: str) -> Case:
        return load_stored(case_from_dict, text, f"case {case_id!r}")

    def _event(self, case_id: str, version: int, text: str) -> Event:
        return load_stored(event_from_dict, text, f"event {case_id}/{version}")
