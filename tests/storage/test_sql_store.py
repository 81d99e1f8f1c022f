"""What :class:`SQLStore` does the same on SQLite, PostgreSQL and MariaDB when a host brings its
own SQLAlchemy engine: the host's pool and transactions, table prefixes and schemas, tenants at
the SQL level, threads, URLs and the tables it will not create."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, event, inspect, text
from sqlalchemy.engine import make_url

from casemgmt_core.adapters.sql import SQLStore, sqlite_engine
from casemgmt_core.commands import AssignCaseworker, RecordJournal, StartIntake
from casemgmt_core.errors import CaseNotFound, ConcurrencyConflict, DuplicateCase, InvalidData, StorageError
from casemgmt_core.model import JournalKind
from casemgmt_core.ports import CaseQuery, Commit, Notification, NotificationKind, Refusal
from casemgmt_core.testing import T0, follow, open_commit

TABLES = ("cases", "events", "deadlines", "refusals", "outbox")


def _counts(engine: Engine, prefix: str = "casemgmt_") -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {prefix}{t}")).scalar_one()) for t in TABLES}


def _host_table(engine: Engine) -> Table:
    host = Table(
        "host_audit",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("note", String(100)),
    )
    host.create(engine)
    return host


def _host_rows(engine: Engine, host: Table) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(host.select().with_only_columns(host.c.id)).scalars())


def _a_step(store: SQLStore, case_id: str, household_id: str) -> tuple[Commit, Commit]:
    """An opening commit (stored) and the next one, which writes events, deadlines and outbox rows."""
    opened = open_commit(case_id, household_id)
    store.commit(opened)
    step = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
    assert step.notifications, "the step must write to the outbox"
    assert step.deadlines, "the step must write deadlines"
    return opened, step


# -- (a) the host's engine ---------------------------------------------------------------------


def test_the_store_uses_the_hosts_engine_and_leaves_it_open(engine: Engine) -> None:
    pool = engine.pool
    store = SQLStore(engine)
    assert store.engine is engine
    store.commit(open_commit("C1", "H1"))
    store.close()
    store.close()  # twice is harmless
    assert engine.pool is pool, "the host's pool was disposed of"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM casemgmt_cases")).scalar_one() == 1
    with pytest.raises(StorageError, match="closed"):
        store.load("C1")
    with pytest.raises(StorageError, match="closed"):
        store.for_tenant("other").load("C1")
    again = SQLStore(engine)
    assert again.load("C1").case_id == "C1"
    again.close()
    # A Connection as bind: the store works in that connection's transaction.
    with engine.begin() as conn:
        on_conn = SQLStore(conn)
        on_conn.commit(open_commit("C2", "H2"))
        assert on_conn.load("C2").case_id == "C2"
    assert SQLStore(engine).load("C2").case_id == "C2"


# -- (b) the host's transaction -----------------------------------------------------------------


def test_a_host_transaction_commits_the_store_and_host_rows_together(engine: Engine) -> None:
    host = _host_table(engine)
    store = SQLStore(engine)
    _, step = _a_step(store, "C1", "H1")
    before = _counts(engine)
    with engine.begin() as conn:
        inside = store.using(conn)
        inside.commit(step)
        assert inside.load("C1") == step.case  # read back inside the transaction
        conn.execute(host.insert().values(id=1, note="case C1 taken on"))
    after = _counts(engine)
    assert after["cases"] == before["cases"] == 1
    assert after["events"] == before["events"] + len(step.events)
    assert after["outbox"] == before["outbox"] + len(step.notifications)
    assert after["deadlines"] == len(step.deadlines)
    assert _host_rows(engine, host) == [1]
    assert store.load("C1") == step.case
    assert store.verify().ok
    store.close()


def test_an_error_after_the_stores_commit_rolls_back_both(engine: Engine) -> None:
    host = _host_table(engine)
    store = SQLStore(engine)
    opened, step = _a_step(store, "C1", "H1")
    before = _counts(engine)

    class HostFailure(Exception):
        pass

    def host_work() -> None:
        with engine.begin() as conn:
            inside = store.using(conn)
            inside.commit(step)
            inside.commit(open_commit("C2", "H2"))
            inside.enqueue([Notification("n-host", NotificationKind.REMINDER, "C1", "C1/1", "w", T0)])
            conn.execute(host.insert().values(id=1, note="written"))
            raise HostFailure

    with pytest.raises(HostFailure):
        host_work()
    assert _counts(engine) == before
    assert _host_rows(engine, host) == []
    assert store.load("C1") == opened.case
    with pytest.raises(CaseNotFound):
        store.load("C2")
    assert store.active_case_for_household("H2") is None
    assert store.verify().ok
    store.close()


def test_a_refusal_leaves_the_host_transaction_usable(engine: Engine) -> None:
    host = _host_table(engine)
    store = SQLStore(engine)
    _, step = _a_step(store, "C1", "H1")
    with engine.begin() as conn:
        conn.execute(host.insert().values(id=1, note="before"))
        inside = store.using(conn)
        with pytest.raises(ConcurrencyConflict):
            inside.commit(open_commit("C1", "H9"))
        with pytest.raises(DuplicateCase):
            inside.commit(open_commit("C2", "H1"))
        conn.execute(host.insert().values(id=2, note="after the refusals"))
        inside.commit(step)
    assert _host_rows(engine, host) == [1, 2]
    assert store.load("C1") == step.case
    with pytest.raises(CaseNotFound):
        store.load("C2")
    assert store.verify().ok
    store.close()


def test_a_database_error_leaves_the_host_transaction_usable(engine: Engine) -> None:
    # A row another program left behind makes the database refuse the store's insert: on
    # PostgreSQL that error would abort the whole transaction were it not in a savepoint.
    host = _host_table(engine)
    store = SQLStore(engine)
    opened, step = _a_step(store, "C1", "H1")
    stray = store.tables.events.insert().values(
        tenant_id="default",
        case_id="C1",
        version=2,
        event="stray",
        occurred_at=T0,
        data="{}",
        prev_hash="",
        hash="",
    )
    with engine.begin() as conn:
        conn.execute(stray)
    with engine.begin() as conn:
        conn.execute(host.insert().values(id=1, note="before"))
        with pytest.raises(StorageError) as caught:
            store.using(conn).commit(step)
        assert "cw-1" not in str(caught.value)
        conn.execute(host.insert().values(id=2, note="after the error"))
        store.using(conn).commit(open_commit("C3", "H3"))
    assert _host_rows(engine, host) == [1, 2]
    assert store.load("C1") == opened.case
    assert store.load("C3").case_id == "C3"
    store.close()


def test_using_checks_its_connection(engine: Engine, tmp_path: Path) -> None:
    store = SQLStore(engine)
    with pytest.raises(InvalidData):
        store.using(engine)  # type: ignore[arg-type]
    if engine.dialect.name != "sqlite":
        other = sqlite_engine(tmp_path / "other.db")
        with other.connect() as conn, pytest.raises(InvalidData):
            store.using(conn)
        other.dispose()
    store.close()


# -- (c) table prefixes and schemas ---------------------------------------------------------------


def test_stores_with_different_prefixes_do_not_see_each_other(engine: Engine) -> None:
    first = SQLStore(engine, table_prefix="app1_")
    second = SQLStore(engine, table_prefix="app2_")
    first.commit(open_commit("C1", "H1"))
    with pytest.raises(CaseNotFound):
        second.load("C1")
    assert second.active_case_for_household("H1") is None
    second.commit(open_commit("C1", "H1"))  # the same ids again: its own case
    second.commit(follow(second.load("C1"), AssignCaseworker("cw-2")))
    assert first.load("C1").version == 1
    assert second.load("C1").version == 2
    assert first.verify().cases_checked == second.verify().cases_checked == 1
    names = set(inspect(engine).get_table_names())
    for prefix in ("app1_", "app2_"):
        assert {f"{prefix}{t}" for t in TABLES} | {f"{prefix}alembic_version"} <= names
    assert not any(n.startswith("casemgmt_") for n in names)
    assert _counts(engine, "app1_")["events"] == 1
    assert _counts(engine, "app2_")["events"] == 2
    first.close()
    second.close()


def test_a_hosts_own_cases_table_is_left_alone(engine: Engine) -> None:
    # A host that already has a `cases` table, with columns of its own.
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE cases (id INTEGER PRIMARY KEY, title VARCHAR(50), status_code INTEGER)")
        )
        conn.execute(text("INSERT INTO cases (id, title, status_code) VALUES (7, 'host row', 3)"))
    store = SQLStore(engine)
    store.commit(open_commit("C1", "H1"))
    store.commit(follow(store.load("C1"), AssignCaseworker("cw-1"), StartIntake()))
    assert store.load("C1").version == 3
    assert [c.case_id for c in store.find(CaseQuery(household_id="H1")).items] == ["C1"]
    assert store.verify().ok
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, title, status_code FROM cases")).all() == [(7, "host row", 3)]
    assert {c["name"] for c in inspect(engine).get_columns("cases")} == {"id", "title", "status_code"}
    # Without a prefix the store would use that table: it refuses to, and changes nothing.
    with pytest.raises(StorageError, match="table_prefix"):
        SQLStore(engine, table_prefix="")
    assert {c["name"] for c in inspect(engine).get_columns("cases")} == {"id", "title", "status_code"}
    assert "alembic_version" not in inspect(engine).get_table_names()
    store.close()


def test_a_schema_of_its_own(engine: Engine, request: pytest.FixtureRequest) -> None:
    if engine.dialect.name == "sqlite":
        with pytest.raises((InvalidData, StorageError)):
            SQLStore(engine, schema="elsewhere")
        return
    if engine.dialect.name == "postgresql":
        schema = f"cm_{uuid.uuid4().hex[:12]}"
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        drop = f"DROP SCHEMA {schema} CASCADE"
    else:  # MariaDB: a schema is a database
        from casemgmt_core.testing.mariadb import temporary_database

        other = request.getfixturevalue("mariadb_url")
        holder = temporary_database(other)
        schema = str(make_url(holder.__enter__()).database)
        request.addfinalizer(lambda: holder.__exit__(None, None, None))
        drop = ""
    try:
        default = SQLStore(engine)
        apart = SQLStore(engine, schema=schema)
        apart.commit(open_commit("C1", "H1"))
        with pytest.raises(CaseNotFound):
            default.load("C1")
        default.commit(open_commit("C1", "H1"))
        assert apart.load("C1").case_id == default.load("C1").case_id == "C1"
        assert {f"casemgmt_{t}" for t in TABLES} <= set(inspect(engine).get_table_names(schema=schema))
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {schema}.casemgmt_events")).scalar_one() == 1
        default.close()
        apart.close()
    finally:
        if drop:
            with engine.begin() as conn:
                conn.execute(text(drop))


# -- (d) tenants ----------------------------------------------------------------------------------


def test_every_row_carries_its_tenant(engine: Engine) -> None:
    centre_a = SQLStore(engine, tenant="centre-a")
    centre_b = centre_a.for_tenant("centre-b")
    assert centre_b.engine is centre_a.engine is engine
    assert (centre_a.tenant_id, centre_b.tenant_id) == ("centre-a", "centre-b")
    for store in (centre_a, centre_b):
        _, step = _a_step(store, "C1", "H1")
        store.commit(step)
        store.record_refusal(Refusal("C1", "close", "w1", "caseworker", T0, "transition_refused", "no"))
        store.enqueue([Notification("n-1", NotificationKind.REMINDER, "C1", "C1/1", "w", T0)])
    with engine.connect() as conn:
        for t in TABLES:
            rows = conn.execute(
                text(f"SELECT tenant_id, count(*) FROM casemgmt_{t} GROUP BY tenant_id")
            ).all()
            counts: dict[str, int] = {tenant: int(n) for tenant, n in rows}
            assert set(counts) == {"centre-a", "centre-b"}, t
            assert counts["centre-a"] == counts["centre-b"], t
    # A view inside a host transaction keeps its tenant.
    with engine.begin() as conn:
        centre_a.using(conn).for_tenant("centre-c").commit(open_commit("C1", "H1"))
    assert SQLStore(engine, tenant="centre-c").load("C1").case_id == "C1"
    with pytest.raises(InvalidData):
        centre_a.for_tenant(" padded ")
    with pytest.raises(InvalidData):
        SQLStore(engine, tenant="")
    centre_a.close()
    with pytest.raises(StorageError, match="closed"):
        centre_b.load("C1")


# -- (e) threads and the pool ---------------------------------------------------------------------


def test_threads_share_one_store(engine: Engine) -> None:
    connections: set[int] = set()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        connections.add(id(dbapi_connection))

    store = SQLStore(engine)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait(timeout=30)
            opened = open_commit(f"C{i}", f"H{i}")
            store.commit(opened)
            case = store.load(f"C{i}")
            for n in range(3):
                step = follow(case, RecordJournal(JournalKind.CONTACT, f"thread {i} call {n}"))
                store.commit(step)
                case = store.load(f"C{i}")
                assert len(store.events(f"C{i}")) == case.version
            assert store.active_case_for_household(f"H{i}") == f"C{i}"
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    report = store.verify()
    assert (report.ok, report.cases_checked, report.events_checked) == (True, 8, 32)
    assert len(store.find(CaseQuery(limit=100)).items) == 8
    if engine.dialect.name == "postgresql":
        assert len(connections) > 1, "the store used one connection for eight threads"
    store.close()


# -- (f) URLs, passwords and arguments ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:secret@127.0.0.1:1/x?connect_timeout=2",
        "postgresql+psycopg://user:secret@127.0.0.1:1/x?connect_timeout=2",
        "mysql+pymysql://user:secret@127.0.0.1:1/x?connect_timeout=2",
        "mariadb://user:secret@127.0.0.1:1/x?connect_timeout=2",
    ],
)
def test_a_server_that_cannot_be_reached_is_a_storage_error_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as caught:
        SQLStore(url)
    assert "secret" not in str(caught.value)
    assert "secret" not in repr(caught.value)
    assert caught.value.__cause__ is None or "secret" not in str(caught.value.__cause__)


def test_repr_hides_the_password(postgres_conninfo: str, postgres_url: str) -> None:
    schema = str(psycopg.conninfo.conninfo_to_dict(postgres_conninfo)["options"]).rsplit("=", 1)[1]
    # The test server trusts local connections: any password is accepted.
    url = make_url(postgres_url).set(password="hunter2").render_as_string(hide_password=False)
    store = SQLStore(url, schema=schema)
    store.commit(open_commit("C1"))
    assert "hunter2" not in repr(store)
    assert "hunter2" not in repr(store.for_tenant("other"))
    assert "hunter2" not in str(store.engine)
    store.close()


@pytest.mark.parametrize("bind", [5, None, b"sqlite://", 1.5, object()])
def test_a_bind_that_is_not_one_is_invalid_data(bind: object) -> None:
    with pytest.raises(InvalidData) as caught:
        SQLStore(bind)  # type: ignore[arg-type]
    assert caught.value.field == "bind"


@pytest.mark.parametrize("url", ["not a url", "://", "nosuchdb://x/y", ""])
def test_a_url_that_is_not_one_is_invalid_data(url: str) -> None:
    with pytest.raises(InvalidData) as caught:
        SQLStore(url)
    assert caught.value.field == "url"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"table_prefix": "bad-prefix"}, "table_prefix"),
        ({"table_prefix": "1abc_"}, "table_prefix"),
        ({"table_prefix": "x" * 36}, "table_prefix"),
        ({"table_prefix": "a; DROP TABLE x; --"}, "table_prefix"),
        ({"table_prefix": 5}, "table_prefix"),
        ({"table_prefix": None}, "table_prefix"),
        ({"schema": "bad schema"}, "schema"),
        ({"schema": "x" * 64}, "schema"),
        ({"schema": 'public"; --'}, "schema"),
        ({"schema": 5}, "schema"),
        ({"tenant": "bad tenant "}, "tenant"),
        ({"tenant": 5}, "tenant"),
        ({"create_tables": "yes"}, "create_tables"),
    ],
)
def test_bad_options_are_invalid_data(tmp_path: Path, options: dict[str, Any], field: str) -> None:
    engine = sqlite_engine(tmp_path / "a.db")
    with pytest.raises(InvalidData) as caught:
        SQLStore(engine, **options)
    assert caught.value.field == field
    assert inspect(engine).get_table_names() == []
    engine.dispose()


# -- (g) tables the store may not create ---------------------------------------------------------


def test_without_create_tables_an_empty_database_is_refused(engine: Engine) -> None:
    with pytest.raises(StorageError, match="casemgmt db upgrade"):
        SQLStore(engine, create_tables=False)
    assert [n for n in inspect(engine).get_table_names() if n.startswith("casemgmt_")] == []
    SQLStore(engine).close()  # created here, as by `casemgmt db upgrade`
    store = SQLStore(engine, create_tables=False)
    store.commit(open_commit("C1"))
    assert store.load("C1").case_id == "C1"
    store.close()


def test_every_name_fits_the_databases_with_the_longest_prefix() -> None:
    # PostgreSQL cuts identifiers at 63 bytes (MariaDB at 64): two names cut short could collide.
    from casemgmt_core.adapters._schema import _MAX_PREFIX, store_tables

    tables = store_tables("p" * _MAX_PREFIX)
    names = [t.name for t in tables.metadata.tables.values()]
    for table in tables.metadata.tables.values():
        names += [str(c.name) for c in table.constraints if c.name]
        names += [str(i.name) for i in table.indexes if i.name]
    assert max(len(n.encode()) for n in names) <= 63
    assert len(set(names)) == len(names)
