"""The contract suite and MariaDB-specific guarantees against :class:`SQLStore` on MariaDB."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy.engine import make_url

from casemgmt_core.adapters.sql import SQLStore
from casemgmt_core.commands import AssignCaseworker, RecordJournal, StartIntake
from casemgmt_core.errors import CaseNotFound, ConcurrencyConflict, DuplicateCase, StorageError
from casemgmt_core.model import JournalKind
from casemgmt_core.ports import CaseQuery, CaseStore
from casemgmt_core.testing import StoredRowsContract, follow, open_commit


def _key(notification_id: str) -> str:
    return hashlib.sha256(notification_id.encode()).hexdigest()


def _connect(url: str, *, autocommit: bool = True) -> pymysql.connections.Connection[Any]:
    """A connection of another program, behind the store's back."""
    parts = make_url(url)
    return pymysql.connect(
        host=parts.host or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.database,
        charset="utf8mb4",
        autocommit=autocommit,
    )


def _raw(url: str, sql: str, *params: object) -> None:
    conn = _connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        conn.close()


def _one(url: str, sql: str, *params: object) -> Any:
    conn = _connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    finally:
        conn.close()


def _count(url: str, table: str) -> int:
    return int(_one(url, f"SELECT count(*) FROM {table}")[0])


def _rewrite(
    url: str, table: str, where: str, params: tuple[object, ...], edit: Callable[[str], str]
) -> None:
    (text,) = _one(url, f"SELECT data FROM {table} WHERE {where}", *params)
    _raw(url, f"UPDATE {table} SET data = %s WHERE {where}", edit(text), *params)


class TestMariaDBStore(StoredRowsContract):
    @pytest.fixture
    def store(self, mariadb_database: str) -> Iterator[CaseStore]:
        self.url = mariadb_database
        self.reopened: list[SQLStore] = []
        store = SQLStore(mariadb_database)
        yield store
        for other in [store, *self.reopened]:
            other.close()

    def reopen(self, store: CaseStore) -> CaseStore:
        again = SQLStore(self.url, tenant=store.tenant_id)
        self.reopened.append(again)
        return again

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            self.url,
            'UPDATE casemgmt_events SET data = replace(data, \'"note":""\', \'"note":"edited"\')'
            " WHERE tenant_id = %s AND case_id = %s AND version = %s",
            store.tenant_id,
            case_id,
            version,
        )

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            self.url,
            "DELETE FROM casemgmt_events WHERE tenant_id = %s AND case_id = %s AND version = %s",
            store.tenant_id,
            case_id,
            version,
        )

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        for old, new in ((a, 1_000_000), (b, a), (1_000_000, b)):
            _raw(
                self.url,
                "UPDATE casemgmt_events SET version = %s"
                " WHERE tenant_id = %s AND case_id = %s AND version = %s",
                new,
                store.tenant_id,
                case_id,
                old,
            )

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        _raw(
            self.url,
            "UPDATE casemgmt_cases"
            ' SET data = replace(data, \'"caseworker_id":"cw-1"\', \'"caseworker_id":"cw-9"\')'
            " WHERE tenant_id = %s AND case_id = %s",
            store.tenant_id,
            case_id,
        )

    def rewrite_event(self, store: CaseStore, case_id: str, version: int, edit: Callable[[str], str]) -> None:
        _rewrite(
            self.url,
            "casemgmt_events",
            "tenant_id = %s AND case_id = %s AND version = %s",
            (store.tenant_id, case_id, version),
            edit,
        )

    def rewrite_case(self, store: CaseStore, case_id: str, edit: Callable[[str], str]) -> None:
        _rewrite(
            self.url, "casemgmt_cases", "tenant_id = %s AND case_id = %s", (store.tenant_id, case_id), edit
        )

    def delivered_at(self, store: CaseStore, notification_id: str) -> dt.datetime | None:
        row = _one(
            self.url,
            "SELECT delivered_at FROM casemgmt_outbox WHERE tenant_id = %s AND notification_key = %s",
            store.tenant_id,
            _key(notification_id),
        )
        assert row is not None
        value: dt.datetime | None = row[0]
        return None if value is None else value.replace(tzinfo=dt.UTC)  # DATETIME(6) holds UTC


# -- MariaDB specifics -----------------------------------------------------------------------


@pytest.fixture
def store(mariadb_database: str) -> Iterator[SQLStore]:
    opened = SQLStore(mariadb_database)
    yield opened
    opened.close()


def test_ids_compare_by_code_point_case_and_accents_included(store: SQLStore) -> None:
    ids = ["C1", "c1", "e", "E", "é", "É", "e\u0301"]
    for n, case_id in enumerate(ids):
        store.commit(open_commit(case_id, f"HH{n}"))
    for n, case_id in enumerate(ids):
        case = store.load(case_id)
        assert (case.case_id, case.household_id) == (case_id, f"HH{n}")
    assert [c.case_id for c in store.find(CaseQuery(limit=100)).items] == sorted(ids)
    # Households too: "h1" is not "H1".
    store.commit(open_commit("X1", "h1"))
    store.commit(open_commit("X2", "H1"))
    assert store.active_case_for_household("h1") == "X1"
    assert store.active_case_for_household("H1") == "X2"
    assert store.active_case_for_household("h\u0131") is None
    with pytest.raises(CaseNotFound):
        store.load("c2")


def test_korean_and_emoji_round_trip(store: SQLStore, mariadb_database: str) -> None:
    case_id, household_id = "사례-🙂-1", "가구😀"
    opened = open_commit(case_id, household_id)
    store.commit(opened)
    step = follow(
        opened.case,
        AssignCaseworker("담당자-🧑"),
        StartIntake(),
        RecordJournal(JournalKind.CONTACT, "첫 상담 🏠 어머니와 통화 — 𝄞"),
    )
    store.commit(step)
    again = SQLStore(mariadb_database)
    try:
        assert again.load(case_id) == step.case
        events = again.events(case_id)
        assert events[-1].payload.text == "첫 상담 🏠 어머니와 통화 — 𝄞"  # type: ignore[attr-defined]
        assert again.active_case_for_household(household_id) == case_id
        assert [c.case_id for c in again.find(CaseQuery(caseworker_id="담당자-🧑")).items] == [case_id]
        assert again.verify().ok
    finally:
        again.close()
    # The bytes in the table are the 4-byte UTF-8 of the emoji, not replacement characters.
    (stored,) = _one(mariadb_database, "SELECT household_id FROM casemgmt_cases WHERE case_id = %s", case_id)
    assert stored == household_id


def test_two_threads_committing_the_same_new_case(store: SQLStore, mariadb_database: str) -> None:
    for n in range(5):
        case_id = f"C{n}"
        barrier = threading.Barrier(2)
        outcomes: list[BaseException | None] = []

        def commit(
            household: str,
            case_id: str = case_id,
            barrier: threading.Barrier = barrier,
            outcomes: list[BaseException | None] = outcomes,
        ) -> None:
            barrier.wait(timeout=30)
            try:
                store.commit(open_commit(case_id, household))
                outcomes.append(None)
            except BaseException as exc:  # asserted below
                outcomes.append(exc)

        threads = [threading.Thread(target=commit, args=(f"H{n}-{w}",)) for w in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(outcomes) == 2
        assert outcomes.count(None) == 1, outcomes
        (lost,) = [o for o in outcomes if o is not None]
        assert isinstance(lost, ConcurrencyConflict), lost
        # Nothing half-written: one case, its one event, one household live.
        case = store.load(case_id)
        assert case.version == 1
        assert len(store.events(case_id)) == 1
        live = [store.active_case_for_household(f"H{n}-{w}") for w in range(2)]
        assert sorted(live, key=str) == [case_id, None] or sorted(live, key=str) == [None, case_id]
        (events,) = _one(mariadb_database, "SELECT count(*) FROM casemgmt_events WHERE case_id = %s", case_id)
        assert events == 1
    assert store.verify().ok


_LIVE_CASE = (
    "INSERT INTO casemgmt_cases (tenant_id, case_id, household_id, state, live_household_id,"
    " version, head_hash, data) VALUES (%s, %s, 'H1', 'intake', 'H1', 1, '', '{}')"
)


def test_the_database_itself_allows_one_live_case_per_household_and_tenant(
    store: SQLStore, mariadb_database: str
) -> None:
    store.commit(open_commit("C1", "H1"))
    with pytest.raises(pymysql.err.IntegrityError):
        _raw(mariadb_database, _LIVE_CASE, "default", "C2")
    _raw(mariadb_database, _LIVE_CASE, "other-centre", "C2")  # another tenant's live case is its own
    with pytest.raises(pymysql.err.IntegrityError):
        _raw(
            mariadb_database,
            "INSERT INTO casemgmt_events (tenant_id, case_id, version, event, occurred_at, data,"
            " prev_hash, hash) SELECT tenant_id, case_id, version, event, occurred_at, data, prev_hash,"
            " hash FROM casemgmt_events",
        )
    # "h1" is another household.
    _raw(
        mariadb_database, _LIVE_CASE.replace("'H1', 'intake', 'H1'", "'h1', 'intake', 'h1'"), "default", "C3"
    )


def test_a_constraint_hit_by_another_writer_is_translated(store: SQLStore, mariadb_database: str) -> None:
    # Another program inserts a live case of H1 and has not committed yet: the store's check
    # cannot see it, its insert waits on the unique index and fails once the other commits.
    store.commit(open_commit("C1", "H0"))
    outcome: list[BaseException | None] = []

    def commit_c2() -> None:
        try:
            store.commit(open_commit("C2", "H1"))
            outcome.append(None)
        except BaseException as exc:  # asserted below
            outcome.append(exc)

    other = _connect(mariadb_database, autocommit=False)
    admin = _connect(mariadb_database)
    try:
        with other.cursor() as cursor:
            cursor.execute(_LIVE_CASE, ("default", "C9"))
        racer = threading.Thread(target=commit_c2)
        racer.start()
        thread = other.thread_id()  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + 30
        while True:
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM information_schema.INNODB_LOCK_WAITS w"
                    " JOIN information_schema.INNODB_TRX t ON t.trx_id = w.blocking_trx_id"
                    " WHERE t.trx_mysql_thread_id = %s",
                    (thread,),
                )
                (waiting,) = cursor.fetchone() or (0,)
            if waiting:
                break
            assert time.monotonic() < deadline, "the store's commit never waited for the other writer"
            # InnoDB refreshes these tables only after 0.1 s without a read of them.
            time.sleep(0.25)
        other.commit()
        racer.join(timeout=60)
    finally:
        other.close()
        admin.close()
    assert len(outcome) == 1
    caught = outcome[0]
    assert isinstance(caught, DuplicateCase), caught
    assert caught.existing_case_id == "C9"
    with pytest.raises(CaseNotFound):
        store.load("C2")
    assert _count(mariadb_database, "casemgmt_events") == 1


def test_a_failure_inside_the_transaction_rolls_everything_back(
    store: SQLStore, mariadb_database: str
) -> None:
    opened = open_commit("C1")
    store.commit(opened)
    outbox = _count(mariadb_database, "casemgmt_outbox")
    deadlines = _count(mariadb_database, "casemgmt_deadlines")
    _raw(
        mariadb_database,
        "CREATE TRIGGER no_outbox BEFORE INSERT ON casemgmt_outbox FOR EACH ROW"
        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'disk on fire'",
    )
    step = follow(opened.case, AssignCaseworker("cw-secret"), StartIntake())
    assert step.notifications, "the step must write to the outbox for the trigger to fire"
    with pytest.raises(StorageError, match="disk on fire") as caught:
        store.commit(step)
    assert "cw-secret" not in str(caught.value)
    assert store.load("C1") == opened.case
    assert _count(mariadb_database, "casemgmt_events") == 1
    assert (_count(mariadb_database, "casemgmt_outbox"), _count(mariadb_database, "casemgmt_deadlines")) == (
        outbox,
        deadlines,
    )
    _raw(mariadb_database, "DROP TRIGGER no_outbox")
    store.commit(step)
    assert store.load("C1") == step.case
    assert store.verify().ok


def test_a_newer_schema_is_refused(mariadb_database: str) -> None:
    SQLStore(mariadb_database).close()
    _raw(mariadb_database, "UPDATE casemgmt_alembic_version SET version_num = '9999_from_the_future'")
    for create in (True, False):
        with pytest.raises(StorageError, match="9999_from_the_future"):
            SQLStore(mariadb_database, create_tables=create)


def test_tables_are_utf8mb4_innodb_with_binary_ids(mariadb_database: str) -> None:
    SQLStore(mariadb_database).close()
    conn = _connect(mariadb_database)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT table_name, engine, table_collation FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name LIKE 'casemgmt\\_%%'"
                " AND table_name <> 'casemgmt_alembic_version'"
            )
            tables = cursor.fetchall()
            cursor.execute(
                "SELECT DISTINCT collation_name FROM information_schema.columns"
                " WHERE table_schema = DATABASE() AND column_name IN ('tenant_id', 'case_id')"
                " AND table_name LIKE 'casemgmt\\_%%'"
            )
            id_collations = {c for (c,) in cursor.fetchall()}
    finally:
        conn.close()
    assert {t for t, _, _ in tables} == {
        "casemgmt_cases",
        "casemgmt_events",
        "casemgmt_deadlines",
        "casemgmt_refusals",
        "casemgmt_outbox",
    }
    assert {(e, c) for _, e, c in tables} == {("InnoDB", "utf8mb4_bin")}
    assert id_collations == {"utf8mb4_nopad_bin"}
