"""The contract suite and PostgreSQL-specific guarantees against :class:`PostgresStore`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import psycopg
import pytest

from casemgmt_core.adapters import open_store
from casemgmt_core.adapters.postgresql import PostgresStore
from casemgmt_core.commands import AssignCaseworker, StartIntake
from casemgmt_core.errors import DuplicateCase, StorageError
from casemgmt_core.ports import CaseStore
from casemgmt_core.testing import StoredRowsContract, follow, open_commit

_CONNINFO: dict[int, str] = {}


def _raw(store: CaseStore, sql: str, *params: object) -> None:
    """Write behind the store's back, as another program with database access would."""
    with psycopg.connect(_CONNINFO[id(store)], autocommit=True) as conn:
        conn.execute(sql, params)  # type: ignore[arg-type]


def _rewrite(
    store: CaseStore, table: str, where: str, params: tuple[object, ...], edit: Callable[[str], str]
) -> None:
    with psycopg.connect(_CONNINFO[id(store)], autocommit=True) as conn:
        row = conn.execute(f"SELECT data FROM {table} WHERE {where}", params).fetchone()  # type: ignore[arg-type]
        assert row is not None
        conn.execute(f"UPDATE {table} SET data = %s WHERE {where}", (edit(row[0]), *params))  # type: ignore[arg-type]


class TestPostgresStore(StoredRowsContract):
    @pytest.fixture
    def store(self, postgres_conninfo: str) -> Iterator[CaseStore]:
        self.conninfo = postgres_conninfo
        self.reopened: list[PostgresStore] = []
        store = PostgresStore(postgres_conninfo)
        _CONNINFO[id(store)] = postgres_conninfo
        yield store
        for other in [store, *self.reopened]:
            other.close()
        del _CONNINFO[id(store)]

    def reopen(self, store: CaseStore) -> CaseStore:
        again = PostgresStore(self.conninfo)
        self.reopened.append(again)
        return again

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            store,
            'UPDATE events SET data = replace(data, \'"note":""\', \'"note":"edited"\')'
            " WHERE case_id = %s AND version = %s",
            case_id,
            version,
        )

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(store, "DELETE FROM events WHERE case_id = %s AND version = %s", case_id, version)

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        for old, new in ((a, 1_000_000), (b, a), (1_000_000, b)):
            _raw(
                store, "UPDATE events SET version = %s WHERE case_id = %s AND version = %s", new, case_id, old
            )

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        _raw(
            store,
            'UPDATE cases SET data = replace(data, \'"caseworker_id":"cw-1"\', \'"caseworker_id":"cw-9"\')'
            " WHERE case_id = %s",
            case_id,
        )

    def rewrite_event(self, store: CaseStore, case_id: str, version: int, edit: Callable[[str], str]) -> None:
        _rewrite(store, "events", "case_id = %s AND version = %s", (case_id, version), edit)

    def rewrite_case(self, store: CaseStore, case_id: str, edit: Callable[[str], str]) -> None:
        _rewrite(store, "cases", "case_id = %s", (case_id,), edit)

    def delivered_at(self, store: CaseStore, notification_id: str) -> dt.datetime | None:
        with psycopg.connect(_CONNINFO[id(store)]) as conn:
            row = conn.execute(
                "SELECT delivered_at FROM outbox WHERE notification_id = %s", (notification_id,)
            ).fetchone()
        assert row is not None
        value: dt.datetime | None = row[0]
        return value


# -- PostgreSQL specifics --------------------------------------------------------------------


def test_a_failure_inside_the_transaction_rolls_everything_back(postgres_conninfo: str) -> None:
    store = PostgresStore(postgres_conninfo)
    _CONNINFO[id(store)] = postgres_conninfo
    opened = open_commit("C1")
    store.commit(opened)
    # The outbox insert is the last write of a commit: make it fail after case and events.
    _raw(
        store,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$",
    )
    _raw(store, "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse()")
    step = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
    with pytest.raises(StorageError, match="disk on fire"):
        store.commit(step)
    assert store.load("C1") == opened.case
    assert len(store.events("C1")) == 1
    assert store.verify().ok
    _raw(store, "DROP TRIGGER no_outbox ON outbox")
    store.commit(step)
    assert store.load("C1") == step.case
    store.close()


def test_the_database_itself_allows_one_live_case_per_household(postgres_conninfo: str) -> None:
    store = PostgresStore(postgres_conninfo)
    _CONNINFO[id(store)] = postgres_conninfo
    store.commit(open_commit("C1", "H1"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        _raw(
            store,
            "INSERT INTO cases (case_id, household_id, state, version, head_hash, data)"
            " VALUES ('C2', 'H1', 'intake', 1, '', '{}')",
        )
    # A live case written by another program is found by the index, not only by a check.
    _raw(store, "UPDATE cases SET household_id = 'H2' WHERE case_id = 'C1'")
    store.commit(open_commit("C3", "H3"))
    _raw(store, "UPDATE cases SET household_id = 'H1' WHERE case_id = 'C1'")
    with pytest.raises(DuplicateCase) as caught:
        store.commit(open_commit("C2", "H1"))
    assert caught.value.existing_case_id == "C1"
    store.close()


def test_driver_errors_become_storage_errors(postgres_url: str) -> None:
    with pytest.raises(StorageError, match="PostgreSQL"):
        PostgresStore(postgres_url.replace("/postgres", "/no_such_database"))
    with pytest.raises(StorageError, match="PostgreSQL"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_a_lost_connection_is_opened_again(postgres_conninfo: str, postgres_url: str) -> None:
    store = PostgresStore(postgres_conninfo)
    store.commit(open_commit("C1"))
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND datname = current_database()"
            " AND backend_type = 'client backend'"
        )
    # The first call after the loss fails (the connection is gone); the store reconnects after it.
    with pytest.raises(StorageError):
        store.load("C1")
    assert store.load("C1").case_id == "C1"
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.load("C1")


def test_open_store_accepts_both_url_schemes(postgres_conninfo: str, postgres_url: str) -> None:
    for scheme in ("postgresql://", "postgres://"):
        store = open_store(postgres_url.replace("postgresql://", scheme))
        assert isinstance(store, PostgresStore)
        store.close()
