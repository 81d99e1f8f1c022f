"""What the SQL stores share: the :class:`~casemgmt_core.ports.CaseStore` queries, written once.

:class:`SQLStore` runs them over a DB-API-style connection that a dialect hands out from
:meth:`~SQLStore._read` and :meth:`~SQLStore._write`; a dialect says how it spells a parameter,
stores a timestamp, orders case ids and names a broken constraint. Both bundled dialects keep the
same tables and columns.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal, Protocol, Self

from ..errors import (
    CaseManagementError,
    CaseNotFound,
    ConcurrencyConflict,
    DuplicateCase,
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
    load_stored,
    prepare_commit,
    prepare_notifications,
    prepare_refusal,
    require_aware,
    unknown_notification,
)

__all__ = ["LIVE_SQL", "Connection", "Cursor", "SQLStore"]

#: The live states as a SQL list, for ``state IN (…)``.
LIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(LIVE_STATES))


class Cursor(Protocol):
    """What the shared queries need of a driver's cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...

    def close(self) -> None: ...


class Connection(Protocol):
    """What the shared queries need of a driver's connection."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def cursor(self) -> Cursor: ...


class SQLStore(abc.ABC):
    """A :class:`~casemgmt_core.ports.CaseStore` over SQL tables; subclasses supply the dialect."""

    _param: ClassVar[str]
    """The driver's parameter placeholder."""
    _case_order: ClassVar[str] = "case_id"
    """``ORDER BY`` expression giving case ids in code point order."""
    _lock_case_row: ClassVar[str] = ""
    """Appended to the commit's read of the case row, to hold it until the transaction ends."""
    _check_household_first: ClassVar[bool] = False
    """Look for another live case of the household before writing, rather than only translating
    the unique index's refusal afterwards."""
    _driver_error: ClassVar[type[Exception]]
    """The driver's base exception, translated to :class:`~casemgmt_core.StorageError`."""

    # -- dialect hooks --------------------------------------------------------------------------

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Connection]:
        """A connection for reads, one snapshot across statements, with errors translated."""

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Connection]:
        """One write transaction: committed if the block ends normally, else rolled back."""

    @abc.abstractmethod
    def _describe(self, exc: Exception) -> str:
        """The :class:`~casemgmt_core.StorageError` message for a driver error."""

    @abc.abstractmethod
    def _constraint_hit(self, cause: BaseException | None) -> Literal["household", "case"] | None:
        """Which uniqueness a failed commit's driver error ``cause`` broke, if it is one: one live
        case per household, or one row per case and event version."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""

    @staticmethod
    def _to_db(value: dt.datetime | None) -> object:
        """A timestamp as the database stores it."""
        return value

    @staticmethod
    def _from_db(value: Any) -> dt.datetime | None:
        """A stored timestamp as an aware datetime in UTC."""
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise StorageError(f"a stored timestamp is not an aware datetime: {type(value).__name__}")
        return value.astimezone(dt.UTC)

    def _audit(self) -> AbstractContextManager[Connection]:
        """A connection for :meth:`verify`, which must read any row, readable or not."""
        return self._read()

    # -- plumbing -------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except CaseManagementError:
            raise
        except self._driver_error as exc:
            raise StorageError(self._describe(exc)) from exc

    # -- cases and events -----------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        c = prepare_commit(commit)
        try:
            with self._write() as db:
                self._commit(db, c)
        except StorageError as exc:
            # A constraint the database enforces that the checks in _commit did not see coming
            # (another program or writer got there first): say what it means.
            hit = self._constraint_hit(exc.__cause__)
            if hit == "household":
                existing = self.active_case_for_household(c.household_id)
                raise DuplicateCase(household_id=c.household_id, existing_case_id=existing or "?") from exc
            if hit == "case":
                raise ConcurrencyConflict(
                    case_id=c.case_id, expected_version=c.expected_version, actual_version=None
                ) from exc
            raise

    def _commit(self, db: Connection, c: PreparedCommit) -> None:
        p = self._param
        row = db.execute(
            f"SELECT version, head_hash FROM cases WHERE case_id = {p}{self._lock_case_row}", (c.case_id,)
        ).fetchone()
        if (row[0] if row else 0) != c.expected_version:
            raise ConcurrencyConflict(
                case_id=c.case_id, expected_version=c.expected_version, actual_version=row[0] if row else None
            )
        if c.live and self._check_household_first:
            other = db.execute(
                f"SELECT case_id FROM cases WHERE household_id = {p} AND state IN ({LIVE_SQL})"
                f" AND case_id <> {p} LIMIT 1",
                (c.household_id, c.case_id),
            ).fetchone()
            if other is not None:
                raise DuplicateCase(household_id=c.household_id, existing_case_id=other[0])
        hashes = c.hashes(row[1] if row else GENESIS)
        values = (
            c.household_id,
            c.state,
            c.caseworker_id,
            self._to_db(c.next_deadline),
            c.version,
            hashes[-1][1],
            c.case_text,
            c.case_id,
        )
        if row is None:
            inserted = db.execute(
                "INSERT INTO cases (household_id, state, caseworker_id, next_deadline, version, head_hash,"
                f" data, case_id) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
                " ON CONFLICT (case_id) DO NOTHING",
                values,
            )
            if inserted.rowcount == 0:
                # Opened concurrently by another writer, which committed first.
                raise ConcurrencyConflict(case_id=c.case_id, expected_version=0, actual_version=None)
        else:
            db.execute(
                f"UPDATE cases SET household_id = {p}, state = {p}, caseworker_id = {p}, next_deadline = {p},"
                f" version = {p}, head_hash = {p}, data = {p} WHERE case_id = {p}",
                values,
            )
        with contextlib.closing(db.cursor()) as cur:
            cur.executemany(
                "INSERT INTO events (case_id, version, event, occurred_at, data, prev_hash, hash)"
                f" VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
                [
                    (c.case_id, e.version, e.event, self._to_db(e.occurred_at), e.text, prev, current)
                    for e, (prev, current) in zip(c.events, hashes, strict=True)
                ],
            )
        self._insert_outbox(db, c.notifications)

    def load(self, case_id: str) -> Case:
        check_id(case_id, "case_id")
        with self._read() as db:
            row = db.execute(f"SELECT data FROM cases WHERE case_id = {self._param}", (case_id,)).fetchone()
        if row is None:
            raise CaseNotFound(case_id)
        return self._case(case_id, row[0])

    def events(self, case_id: str, *, after_version: int = 0) -> Sequence[Event]:
        check_id(case_id, "case_id")
        check_version(after_version, "after_version")
        p = self._param
        with self._read() as db:
            if db.execute(f"SELECT 1 FROM cases WHERE case_id = {p}", (case_id,)).fetchone() is None:
                raise CaseNotFound(case_id)
            rows = db.execute(
                f"SELECT version, data FROM events WHERE case_id = {p} AND version > {p} ORDER BY version",
                (case_id, after_version),
            ).fetchall()
        return tuple(self._event(case_id, version, text) for version, text in rows)

    def active_case_for_household(self, household_id: str) -> str | None:
        check_id(household_id, "household_id")
        with self._read() as db:
            row = db.execute(
                f"SELECT case_id FROM cases WHERE household_id = {self._param} AND state IN ({LIVE_SQL})",
                (household_id,),
            ).fetchone()
        return None if row is None else str(row[0])

    def find(self, query: CaseQuery) -> Page:
        check_query(query)
        p = self._param
        where: list[str] = []
        params: list[object] = []
        if query.state is not None:
            where.append(f"state = {p}")
            params.append(query.state.value)
        if query.caseworker_id is not None:
            where.append(f"caseworker_id = {p}")
            params.append(query.caseworker_id)
        if query.household_id is not None:
            where.append(f"household_id = {p}")
            params.append(query.household_id)
        if query.due_before is not None:
            where.append(f"next_deadline IS NOT NULL AND next_deadline <= {p}")
            params.append(self._to_db(query.due_before))
        sql = "SELECT case_id, data FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # One row more than asked tells whether there is a next page.
        sql += f" ORDER BY {self._case_order} LIMIT {p} OFFSET {p}"
        with self._read() as db:
            rows = db.execute(sql, (*params, query.limit + 1, query.offset)).fetchall()
        items = tuple(self._case(case_id, text) for case_id, text in rows[: query.limit])
        return Page(items, query.offset + query.limit if len(rows) > query.limit else None)

    # -- refusals -------------------------------------------------------------------------------

    def record_refusal(self, refusal: Refusal) -> None:
        text = prepare_refusal(refusal)
        p = self._param
        with self._write() as db:
            db.execute(
                f"INSERT INTO refusals (case_id, at, data) VALUES ({p}, {p}, {p})",
                (refusal.case_id, self._to_db(refusal.at), text),
            )

    def refusals(self, case_id: str) -> Sequence[Refusal]:
        check_id(case_id, "case_id")
        with self._read() as db:
            rows = db.execute(
                f"SELECT data FROM refusals WHERE case_id = {self._param} ORDER BY seq", (case_id,)
            ).fetchall()
        what = f"refusal of case {case_id!r}"
        return tuple(load_stored(refusal_from_dict, text, what) for (text,) in rows)

    # -- outbox ---------------------------------------------------------------------------------

    def enqueue(self, notifications: Sequence[Notification]) -> int:
        rows = prepare_notifications(notifications, "notifications")
        with self._write() as db:
            return self._insert_outbox(db, rows)

    def pending_notifications(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> Sequence[PendingNotification]:
        check_limit(limit)
        when = None if now is None else require_aware(now, "now")
        p = self._param
        sql = "SELECT data, attempts, last_error, next_attempt_at FROM outbox WHERE delivered_at IS NULL"
        params: list[object] = []
        if when is not None:
            sql += f" AND (next_attempt_at IS NULL OR next_attempt_at <= {p})"
            params.append(self._to_db(when))
        sql += f" ORDER BY seq LIMIT {p}"
        with self._read() as db:
            rows = db.execute(sql, (*params, limit)).fetchall()
        return tuple(
            PendingNotification(
                load_stored(notification_from_dict, text, "outbox notification"),
                attempts,
                error,
                self._from_db(retry),
            )
            for text, attempts, error, retry in rows
        )

    def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        check_notification_id(notification_id)
        stamp = self._to_db(require_aware(at, "at"))
        p = self._param
        with self._write() as db:
            done = db.execute(
                f"UPDATE outbox SET delivered_at = COALESCE(delivered_at, {p}) WHERE notification_id = {p}",
                (stamp, notification_id),
            )
            if done.rowcount == 0:
                raise unknown_notification(notification_id)

    def mark_failed(self, notification_id: str, *, error: str, retry_at: dt.datetime) -> None:
        check_notification_id(notification_id)
        check_error(error)
        stamp = self._to_db(require_aware(retry_at, "retry_at"))
        p = self._param
        with self._write() as db:
            done = db.execute(
                f"UPDATE outbox SET attempts = attempts + 1, last_error = {p}, next_attempt_at = {p}"
                f" WHERE notification_id = {p} AND delivered_at IS NULL",
                (error, stamp, notification_id),
            )
            if done.rowcount == 0 and (
                db.execute(f"SELECT 1 FROM outbox WHERE notification_id = {p}", (notification_id,)).fetchone()
                is None
            ):
                raise unknown_notification(notification_id)

    def notification_delivered_at(self, notification_id: str) -> dt.datetime | None:
        check_notification_id(notification_id)
        with self._read() as db:
            row = db.execute(
                f"SELECT delivered_at FROM outbox WHERE notification_id = {self._param}", (notification_id,)
            ).fetchone()
        if row is None:
            raise unknown_notification(notification_id)
        return self._from_db(row[0])

    def _insert_outbox(self, db: Connection, rows: Sequence[PreparedNotification]) -> int:
        """Insert outbox rows, skipping ids already there; how many were new."""
        p = self._param
        new = 0
        for n in rows:
            cursor = db.execute(
                f"INSERT INTO outbox (notification_id, case_id, created_at, data) VALUES ({p}, {p}, {p}, {p})"
                " ON CONFLICT (notification_id) DO NOTHING",
                (n.notification_id, n.case_id, self._to_db(n.created_at), n.text),
            )
            new += cursor.rowcount
        return new

    # -- audit ----------------------------------------------------------------------------------

    def verify(self, case_id: str | None = None) -> ChainReport:
        if case_id is not None:
            check_id(case_id, "case_id")
        p = self._param
        broken: list[BrokenLink] = []
        cases = events = 0
        with self._audit() as db:
            ids = self._case_ids(db) if case_id is None else [case_id]
            for cid in ids:
                row = db.execute(
                    f"SELECT version, head_hash, data FROM cases WHERE case_id = {p}", (cid,)
                ).fetchone()
                links = [
                    ChainLink(*r)
                    for r in db.execute(
                        "SELECT version, data, prev_hash, hash FROM events"
                        f" WHERE case_id = {p} ORDER BY version",
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

    def _case_ids(self, db: Connection) -> list[str]:
        """Every case id with a case record or events, in code point order."""
        # Sorted here: the database's collation need not be code point order.
        return sorted(r[0] for r in db.execute("SELECT case_id FROM cases UNION SELECT case_id FROM events"))

    # -- loading --------------------------------------------------------------------------------

    def _case(self, case_id: str, text: str) -> Case:
        return load_stored(case_from_dict, text, f"case {case_id!r}")

    def _event(self, case_id: str, version: int, text: str) -> Event:
        return load_stored(event_from_dict, text, f"event {case_id}/{version}")
