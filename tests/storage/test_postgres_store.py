"""The contract suite and PostgreSQL-specific guarantees against :class:`PostgresStore`."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from casemgmt_core.adapters import open_store
from casemgmt_core.adapters.postgresql import PostgresStore
from casemgmt_core.commands import AssignCaseworker, StartIntake
from casemgmt_core.errors import CaseNotFound, DuplicateCase, InvalidData, StorageError
from casemgmt_core.ports import CaseStore
from casemgmt_core.testing import StoredRowsContract, follow, open_commit


def _key(notification_id: str) -> str:
    return hashlib.sha256(notification_id.encode()).hexdigest()


def _raw(conninfo: str, sql: str, *params: object) -> None:
    """Write behind the store's back, as another program with database access would."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql, params)


def _count(conninfo: str, table: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _rewrite(
    conninfo: str, table: str, where: str, params: tuple[object, ...], edit: Callable[[str], str]
) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(f"SELECT data FROM {table} WHERE {where}", params).fetchone()
        assert row is not None
        conn.execute(f"UPDATE {table} SET data = %s WHERE {where}", (edit(row[0]), *params))


class TestPostgresStore(StoredRowsContract):
    @pytest.fixture
    def store(self, postgres_conninfo: str) -> Iterator[CaseStore]:
        self.conninfo = postgres_conninfo
        self.reopened: list[PostgresStore] = []
        store = PostgresStore(postgres_conninfo)
        yield store
        for other in [store, *self.reopened]:
            other.close()

    def reopen(self, store: CaseStore) -> CaseStore:
        again = PostgresStore(self.conninfo, tenant=store.tenant_id)
        self.reopened.append(again)
        return again

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            self.conninfo,
            'UPDATE casemgmt_events SET data = replace(data, \'"note":""\', \'"note":"edited"\')'
            " WHERE tenant_id = %s AND case_id = %s AND version = %s",
            store.tenant_id,
            case_id,
            version,
        )

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            self.conninfo,
            "DELETE FROM casemgmt_events WHERE tenant_id = %s AND case_id = %s AND version = %s",
            store.tenant_id,
            case_id,
            version,
        )

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        for old, new in ((a, 1_000_000), (b, a), (1_000_000, b)):
            _raw(
                self.conninfo,
                "UPDATE casemgmt_events SET version = %s"
                " WHERE tenant_id = %s AND case_id = %s AND version = %s",
                new,
                store.tenant_id,
                case_id,
                old,
            )

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        _raw(
            self.conninfo,
            "UPDATE casemgmt_cases"
            ' SET data = replace(data, \'"caseworker_id":"cw-1"\', \'"caseworker_id":"cw-9"\')'
            " WHERE tenant_id = %s AND case_id = %s",
            store.tenant_id,
            case_id,
        )

    def rewrite_event(self, store: CaseStore, case_id: str, version: int, edit: Callable[[str], str]) -> None:
        _rewrite(
            self.conninfo,
            "casemgmt_events",
            "tenant_id = %s AND case_id = %s AND version = %s",
            (store.tenant_id, case_id, version),
            edit,
        )

    def rewrite_case(self, store: CaseStore, case_id: str, edit: Callable[[str], str]) -> None:
        _rewrite(
            self.conninfo,
            "casemgmt_cases",
            "tenant_id = %s AND case_id = %s",
            (store.tenant_id, case_id),
            edit,
        )

    def delivered_at(self, store: CaseStore, notification_id: str) -> dt.datetime | None:
        with psycopg.connect(self.conninfo) as conn:
            row = conn.execute(
                "SELECT delivered_at FROM casemgmt_outbox WHERE tenant_id = %s AND notification_key = %s",
                (store.tenant_id, _key(notification_id)),
            ).fetchone()
        assert row is not None
        value: dt.datetime | None = row[0]
        return value


# -- PostgreSQL specifics --------------------------------------------------------------------


def test_a_failure_inside_the_transaction_rolls_everything_back(postgres_conninfo: str) -> None:
    store = PostgresStore(postgres_conninfo)
    opened = open_commit("C1")
    store.commit(opened)
    outbox = _count(postgres_conninfo, "casemgmt_outbox")
    deadlines = _count(postgres_conninfo, "casemgmt_deadlines")
    # The outbox insert is the last write of a commit: make it fail after case, events, deadlines.
    _raw(
        postgres_conninfo,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$",
    )
    _raw(
        postgres_conninfo,
        "CREATE TRIGGER no_outbox BEFORE INSERT ON casemgmt_outbox FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    step = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
    assert step.notifications, "the step must write to the outbox for the trigger to fire"
    with pytest.raises(StorageError, match="disk on fire"):
        store.commit(step)
    assert store.load("C1") == opened.case
    assert len(store.events("C1")) == 1
    assert _count(postgres_conninfo, "casemgmt_events") == 1
    assert (
        _count(postgres_conninfo, "casemgmt_outbox"),
        _count(postgres_conninfo, "casemgmt_deadlines"),
    ) == (
        outbox,
        deadlines,
    )
    assert store.verify().ok
    _raw(postgres_conninfo, "DROP TRIGGER no_outbox ON casemgmt_outbox")
    store.commit(step)
    assert store.load("C1") == step.case
    store.close()


_LIVE_CASE = (
    "INSERT INTO casemgmt_cases (tenant_id, case_id, household_id, state, live_household_id,"
    " version, head_hash, data) VALUES (%s, %s, 'H1', 'intake', 'H1', 1, '', '{}')"
)


def test_the_database_itself_allows_one_live_case_per_household_and_tenant(postgres_conninfo: str) -> None:
    store = PostgresStore(postgres_conninfo)
    store.commit(open_commit("C1", "H1"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        _raw(postgres_conninfo, _LIVE_CASE, "default", "C2")
    _raw(postgres_conninfo, _LIVE_CASE, "other-centre", "C2")  # another tenant's live case is its own
    with pytest.raises(psycopg.errors.UniqueViolation):
        _raw(
            postgres_conninfo,
            "INSERT INTO casemgmt_events (tenant_id, case_id, version, event, occurred_at, data,"
            " prev_hash, hash) SELECT tenant_id, case_id, version, event, occurred_at, data, prev_hash,"
            " hash FROM casemgmt_events",
        )
    store.close()


def _wait_until_blocked_by(admin_url: str, blocker_pid: int) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(admin_url, autocommit=True) as admin:
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (blocker_pid,)
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the store's commit never waited for the other writer")


def test_a_constraint_hit_by_another_writer_is_translated(postgres_conninfo: str, postgres_url: str) -> None:
    # Another program inserts a live case of H1 and has not committed yet: the store's check
    # cannot see it, its insert waits on the unique index and fails once the other commits.
    store = PostgresStore(postgres_conninfo)
    store.commit(open_commit("C1", "H0"))
    outcome: list[BaseException | None] = []

    def commit_c2() -> None:
        try:
            store.commit(open_commit("C2", "H1"))
            outcome.append(None)
        except BaseException as exc:  # asserted below
            outcome.append(exc)

    with psycopg.connect(postgres_conninfo) as other:
        other.execute(_LIVE_CASE, ("default", "C9"))
        racer = threading.Thread(target=commit_c2)
        racer.start()
        _wait_until_blocked_by(postgres_url, other.info.backend_pid)
        other.commit()
    racer.join(timeout=60)
    assert len(outcome) == 1
    caught = outcome[0]
    assert isinstance(caught, DuplicateCase), caught
    assert caught.existing_case_id == "C9"
    with pytest.raises(CaseNotFound):
        store.load("C2")
    assert _count(postgres_conninfo, "casemgmt_events") == 1
    store.close()


def test_driver_errors_become_storage_errors(postgres_url: str) -> None:
    with pytest.raises(StorageError, match=r"(?i)postgresql"):
        PostgresStore(postgres_url.replace("/postgres", "/no_such_database"))
    with pytest.raises(StorageError, match=r"(?i)postgresql"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StorageError) as caught:
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(caught.value)
    for bad in ("", 5):
        with pytest.raises(InvalidData):
            PostgresStore(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidData):
        PostgresStore(postgres_url, pool_size=0)


def test_a_value_the_database_refuses_is_translated_without_the_rows_data(postgres_conninfo: str) -> None:
    store = PostgresStore(postgres_conninfo)
    opened = open_commit("C1", "H-secret-household")
    store.commit(opened)
    _raw(
        postgres_conninfo,
        "INSERT INTO casemgmt_events (tenant_id, case_id, version, event, occurred_at, data, prev_hash, hash)"
        " VALUES ('default', 'C1', 2, 'stray', now(), '{}', '', '')",
    )
    step = follow(opened.case, AssignCaseworker("cw-secret"), StartIntake(), note="전화 상담 내용")
    with pytest.raises(StorageError) as caught:
        store.commit(step)
    message = str(caught.value)
    assert "UniqueViolation" in message
    for private in ("H-secret-household", "cw-secret", "전화", "[parameters"):
        assert private not in message
    assert store.load("C1") == opened.case
    store.close()


def test_a_lost_connection_is_opened_again(postgres_conninfo: str, postgres_url: str) -> None:
    store = PostgresStore(postgres_conninfo)
    store.commit(open_commit("C1"))
    assert store.engine is not None
    with store.engine.connect() as conn:  # the pooled connection the next call gets back
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert row == (True,)
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            time.sleep(0.01)
    # The pool checks a connection before handing it out: the lost one is replaced, no call fails.
    assert store.load("C1").case_id == "C1"
    store.commit(follow(store.load("C1"), AssignCaseworker("cw-1")))
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.load("C1")


def test_a_newer_schema_is_refused(postgres_conninfo: str) -> None:
    PostgresStore(postgres_conninfo).close()
    _raw(postgres_conninfo, "UPDATE casemgmt_alembic_version SET version_num = '9999_from_the_future'")
    for create in (True, False):
        with pytest.raises(StorageError, match="9999_from_the_future"):
            PostgresStore(postgres_conninfo, create_tables=create)


def _schema_of(conninfo: str) -> str:
    options = str(conninfo_to_dict(conninfo).get("options") or "")
    return options.rsplit("search_path=", 1)[1].split()[0]


def test_open_store_accepts_both_url_schemes(postgres_conninfo: str, postgres_url: str) -> None:
    schema = _schema_of(postgres_conninfo)
    for n, scheme in enumerate(("postgresql://", "postgres://")):
        store = open_store(postgres_url.replace("postgresql://", scheme), schema=schema)
        assert isinstance(store, PostgresStore)
        store.commit(open_commit(f"C{n}"))
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT case_id FROM {}.casemgmt_cases ORDER BY case_id".format(schema)  # noqa: UP032
        ).fetchall()
    assert rows == [("C0",), ("C1",)]
