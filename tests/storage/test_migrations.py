"""Schema management: the shipped Alembic migrations on SQLite, PostgreSQL and MariaDB.

The store's metadata (``_schema.py``) is the single source of truth for the final layout: every
way of reaching the head revision (online from empty, offline SQL, 0.1 adoption) is compared
with it by Alembic's autogenerate comparison, plus the keys Alembic does not compare.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, Engine, create_engine, inspect, make_url, text

from casemgmt_core._db_cli import add_db_parser
from casemgmt_core.adapters._schema import DEFAULT_PREFIX, StoreTables, store_tables
from casemgmt_core.adapters.migrations import current, ensure_schema, head, upgrade, upgrade_sql
from casemgmt_core.adapters.sql import SQLStore
from casemgmt_core.commands import HandOver
from casemgmt_core.errors import InvalidData, StorageError
from casemgmt_core.lifecycle import LIVE_STATES
from casemgmt_core.model import Agency
from casemgmt_core.ports import Notification, NotificationKind, Refusal
from casemgmt_core.testing import follow, open_commit
from casemgmt_core.testing.builders import T0

TABLES = ("cases", "events", "deadlines", "refusals", "outbox")


@dataclass
class Database:
    kind: str  # sqlite, postgresql, mariadb
    url: URL
    schema: str  # the connection's default schema (database on MariaDB), "main" on SQLite

    def engine(self) -> Engine:
        return create_engine(self.url, hide_parameters=True)


def _postgres(conninfo: str) -> Database:
    parts = conninfo_to_dict(conninfo)
    options = str(parts.get("options") or "")
    schema = options.rsplit("search_path=", 1)[1].split()[0]
    url = URL.create(
        "postgresql+psycopg",
        username=str(parts.get("user") or "postgres"),
        password=str(parts["password"]) if parts.get("password") else None,
        host=str(parts.get("host") or "127.0.0.1"),
        port=int(str(parts.get("port") or 5432)),
        database=str(parts.get("dbname") or "postgres"),
        query={"options": options},
    )
    return Database("postgresql", url, schema)


def _make(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if kind == "sqlite":
        return Database("sqlite", make_url(f"sqlite:///{tmp_path / 'store.db'}"), "main")
    if kind == "postgresql":
        return _postgres(request.getfixturevalue("postgres_conninfo"))
    url = make_url(request.getfixturevalue("mariadb_database"))
    assert url.database is not None
    return Database("mariadb", url, url.database)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return _make(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_0_1(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The databases that casemgmt-core 0.1 supported."""
    return _make(request.param, request, tmp_path)


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    engine = database.engine()
    yield engine
    engine.dispose()


# -- comparing a database with the metadata --------------------------------------------------------


def differences(engine: Engine, tables: StoreTables) -> list[Any]:
    """Alembic's autogenerate differences between the database and ``tables`` (ours only)."""
    ours = {t.name for t in tables.metadata.tables.values()}

    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        if type_ == "schema":
            return name == tables.schema
        if type_ == "table":
            return name in ours
        return True

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_schemas": tables.schema is not None,
                "include_name": include_name,
                "target_metadata": tables.metadata,
            },
        )
        found = compare_metadata(context, tables.metadata)
    return [d for d in found if not _misreported(d, engine.dialect.name)]


def _misreported(difference: Any, dialect: str) -> bool:
    """Differences that Alembic reports although the database matches the metadata."""
    entry = difference[0] if isinstance(difference, list) else difference
    if dialect in ("mysql", "mariadb") and entry[0] in ("remove_index", "add_index"):
        # MariaDB backs every unique constraint with a unique index of the same name; Alembic
        # lists the reflected index as well as the constraint. Ours have no unique indexes, so
        # a unique index named like one of our unique constraints is that constraint.
        index = entry[1]
        return bool(index.unique) and index.name.endswith(("one_live_per_household", "outbox_one_per_id"))
    return False


def keys(engine: Engine, tables: StoreTables) -> dict[str, Any]:
    """What Alembic does not compare: primary keys, unique constraints and named checks."""
    found: dict[str, Any] = {}
    with engine.connect() as conn:
        inspector = inspect(conn)
        for table in tables.metadata.sorted_tables:
            pk = inspector.get_pk_constraint(table.name, schema=tables.schema)
            uniques = inspector.get_unique_constraints(table.name, schema=tables.schema)
            found[table.name] = (
                tuple(pk["constrained_columns"]),
                sorted((u["name"], tuple(u["column_names"])) for u in uniques),
            )
            if engine.dialect.name != "sqlite":  # SQLite reflects a check's name unreliably
                checks = inspector.get_check_constraints(table.name, schema=tables.schema)
                found[table.name] += (sorted(str(c["name"]) for c in checks),)
    return found


def expected_keys(tables: StoreTables, dialect: str) -> dict[str, Any]:
    from sqlalchemy import CheckConstraint, UniqueConstraint

    found: dict[str, Any] = {}
    for table in tables.metadata.sorted_tables:
        uniques = sorted(
            (str(c.name), tuple(col.name for col in c.columns))
            for c in table.constraints
            if isinstance(c, UniqueConstraint)
        )
        found[table.name] = (tuple(c.name for c in table.primary_key.columns), uniques)
        if dialect != "sqlite":
            checks = sorted(str(c.name) for c in table.constraints if isinstance(c, CheckConstraint))
            found[table.name] += (checks,)
    return found


def assert_matches(engine: Engine, tables: StoreTables) -> None:
    assert differences(engine, tables) == []
    assert keys(engine, tables) == expected_keys(tables, engine.dialect.name)
    if engine.dialect.name == "postgresql":
        # Identifiers compare by code point: COLLATE "C" on every key column.
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name LIKE :p AND data_type = 'text'"
                ),
                {"s": tables.schema or conn.execute(text("SELECT current_schema()")).scalar(), "p": "%"},
            ).all()
        collated = {(t, c) for t, c, collation in rows if collation == "C"}
        for table in tables.metadata.sorted_tables:
            for column in table.columns:
                if type(column.type).__name__ == "Key":
                    assert (table.name, column.name) in collated


def table_names(engine: Engine, schema: str | None = None) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names(schema=schema))


# -- a fresh database ------------------------------------------------------------------------------


def test_head_is_the_newest_revision() -> None:
    assert head() == "0002"


def test_upgrade_creates_the_layout_of_the_metadata(engine: Engine) -> None:
    assert current(engine) is None
    upgrade(engine)
    assert current(engine) == head()
    tables = store_tables()
    assert {f"casemgmt_{t}" for t in TABLES} | {"casemgmt_alembic_version"} <= table_names(engine)
    assert "alembic_version" not in table_names(engine)
    assert_matches(engine, tables)
    upgrade(engine)  # again: nothing to do
    assert current(engine) == head()
    assert_matches(engine, tables)


def test_upgrade_step_by_step(engine: Engine) -> None:
    upgrade(engine, revision="0001")
    assert current(engine) == "0001"
    upgrade(engine, revision="0001")
    assert current(engine) == "0001"
    upgrade(engine)
    assert current(engine) == "0002"
    assert_matches(engine, store_tables())
    upgrade(engine, revision="0001")  # never a downgrade
    assert current(engine) == "0002"


def test_unknown_revision_is_invalid(engine: Engine) -> None:
    with pytest.raises(InvalidData, match="unknown revision"):
        upgrade(engine, revision="nope")


def test_custom_prefix(engine: Engine) -> None:
    upgrade(engine, table_prefix="cm_")
    assert current(engine, table_prefix="cm_") == head()
    assert current(engine) is None
    names = table_names(engine)
    assert "cm_alembic_version" in names
    assert not any(n.startswith("casemgmt_") for n in names)
    assert_matches(engine, store_tables("cm_"))


def test_no_prefix(engine: Engine) -> None:
    upgrade(engine, table_prefix="")
    assert {*TABLES, "alembic_version"} <= table_names(engine)
    assert_matches(engine, store_tables(""))


def test_schema_on_postgresql(postgres_url: str, postgres_conninfo: str) -> None:
    database = _postgres(postgres_conninfo)
    other = f"other_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{other}"')
    engine = database.engine()
    try:
        upgrade(engine, table_prefix="p_", schema=other)
        assert current(engine, table_prefix="p_", schema=other) == head()
        assert current(engine, table_prefix="p_") is None
        assert table_names(engine) == set()
        assert "p_alembic_version" in table_names(engine, other)
        assert_matches(engine, store_tables("p_", other))
        store = SQLStore(engine, table_prefix="p_", schema=other, create_tables=False)
        store.commit(open_commit("C-1"))
        assert store.load("C-1").case_id == "C-1"
    finally:
        engine.dispose()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{other}" CASCADE')


def test_schema_on_mariadb_names_the_database(mariadb_database: str) -> None:
    url = make_url(mariadb_database)
    assert url.database is not None
    engine = create_engine(url)
    try:
        upgrade(engine, schema=url.database)
        assert current(engine, schema=url.database) == head()
        assert current(engine) == head()  # the same database
        # (Alembic's comparison knows the connection's own database only as schema None.)
        assert_matches(engine, store_tables())
    finally:
        engine.dispose()


def test_sqlite_has_no_schemas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(InvalidData, match="SQLite has no schemas"):
        upgrade(engine, schema="other")
    with pytest.raises(InvalidData, match="SQLite has no schemas"):
        upgrade_sql("sqlite", schema="other")
    with pytest.raises(InvalidData, match="SQLite has no schemas"):
        SQLStore(engine, schema="other")
    assert table_names(engine) == set()


# -- offline SQL -----------------------------------------------------------------------------------


def _apply_script(engine: Engine, sql: str) -> None:
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.driver_connection.executescript(sql)  # type: ignore[union-attr]
        else:
            cursor = raw.cursor()
            for chunk in sql.split(";\n"):
                statement = "\n".join(line for line in chunk.splitlines() if not line.startswith("--"))
                if statement.strip():
                    cursor.execute(statement)
            raw.commit()
    finally:
        raw.close()


@pytest.mark.parametrize("prefix", [DEFAULT_PREFIX, "dba_"])
def test_upgrade_sql_creates_the_same_layout(database: Database, engine: Engine, prefix: str) -> None:
    sql = upgrade_sql(database.kind, table_prefix=prefix)
    for table in (*TABLES, "alembic_version"):
        assert f"CREATE TABLE {prefix}{table} " in sql
    assert "CREATE TABLE cases" not in sql
    assert "CREATE TABLE alembic_version" not in sql
    _apply_script(engine, sql)
    assert current(engine, table_prefix=prefix) == head()
    assert_matches(engine, store_tables(prefix))
    # The store opens on it without running DDL.
    store = SQLStore(engine, table_prefix=prefix, create_tables=False)
    store.commit(open_commit("C-1"))


def test_upgrade_sql_with_schema_qualifies_every_name() -> None:
    sql = upgrade_sql("postgresql", schema="cm", table_prefix="x_")
    assert "CREATE TABLE cm.x_cases " in sql
    assert "CREATE TABLE cm.x_alembic_version " in sql
    assert "CREATE TABLE x_" not in sql


def test_upgrade_sql_from_a_revision(database_0_1: Database) -> None:
    if database_0_1.kind == "sqlite":
        with pytest.raises(InvalidData, match="casemgmt db upgrade"):
            upgrade_sql("sqlite", from_revision="0001")
        return
    assert upgrade_sql("postgresql", from_revision=head()) == ""
    sql = upgrade_sql("postgresql", from_revision="0001")
    assert "CREATE TABLE casemgmt_deadlines" in sql
    assert "CREATE TABLE casemgmt_cases" not in sql
    engine = database_0_1.engine()
    try:
        upgrade(engine, revision="0001")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO casemgmt_outbox (notification_id, case_id, created_at, data) "
                    "VALUES (:n, 'C-1', now(), '{}')"
                ),
                {"n": "reminder/C-1/ü"},
            )
        _apply_script(engine, sql)
        assert current(engine) == head()
        assert_matches(engine, store_tables())
        with engine.connect() as conn:
            key = conn.execute(text("SELECT notification_key FROM casemgmt_outbox")).scalar()
        assert key == hashlib.sha256("reminder/C-1/ü".encode()).hexdigest()
    finally:
        engine.dispose()


def test_upgrade_sql_for_mariadb_computes_the_same_keys(mariadb_database: str) -> None:
    engine = create_engine(mariadb_database)
    try:
        upgrade(engine, revision="0001")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO casemgmt_outbox (notification_id, case_id, created_at, data) "
                    "VALUES (:n, 'C-1', '2026-01-01 00:00:00', '{}')"
                ),
                {"n": "reminder/C-1/ü"},
            )
        _apply_script(engine, upgrade_sql("mariadb", from_revision="0001"))
        assert current(engine) == head()
        with engine.connect() as conn:
            key = conn.execute(text("SELECT notification_key FROM casemgmt_outbox")).scalar()
        assert key == hashlib.sha256("reminder/C-1/ü".encode()).hexdigest()
    finally:
        engine.dispose()


def test_upgrade_sql_refuses_unknown_input() -> None:
    with pytest.raises(InvalidData, match="unknown database"):
        upgrade_sql("oracle")
    with pytest.raises(InvalidData, match="unknown revision"):
        upgrade_sql("postgresql", from_revision="0099")
    with pytest.raises(InvalidData, match="table prefix"):
        upgrade_sql("postgresql", table_prefix="bad prefix")


# -- 0.1 databases ---------------------------------------------------------------------------------

_LIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(LIVE_STATES))

# The SQL with which casemgmt-core 0.1 created its tables.
SCHEMA_0_1 = {
    "sqlite": f"""
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, household_id TEXT NOT NULL, state TEXT NOT NULL, caseworker_id TEXT,
    next_deadline TEXT, version INTEGER NOT NULL CHECK (version > 0), head_hash TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_one_live_per_household
    ON cases (household_id) WHERE state IN ({_LIVE_SQL});
CREATE INDEX IF NOT EXISTS cases_by_state ON cases (state, case_id);
CREATE INDEX IF NOT EXISTS cases_by_caseworker ON cases (caseworker_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_household ON cases (household_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_deadline ON cases (next_deadline) WHERE next_deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    case_id TEXT NOT NULL, version INTEGER NOT NULL CHECK (version > 0), event TEXT NOT NULL,
    occurred_at TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (case_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refusals_by_case ON refusals (case_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, notification_id TEXT NOT NULL UNIQUE, case_id TEXT NOT NULL,
    created_at TEXT NOT NULL, data TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, next_attempt_at TEXT, delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE delivered_at IS NULL;
PRAGMA user_version = 1
""",
    "postgresql": f"""
CREATE TABLE IF NOT EXISTS casemgmt_schema (version integer NOT NULL);
INSERT INTO casemgmt_schema VALUES (1);
CREATE TABLE IF NOT EXISTS cases (
    case_id text PRIMARY KEY, household_id text NOT NULL, state text NOT NULL, caseworker_id text,
    next_deadline timestamptz, version integer NOT NULL CHECK (version > 0), head_hash text NOT NULL,
    data text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_one_live_per_household ON cases (household_id)
    WHERE state IN ({_LIVE_SQL});
CREATE INDEX IF NOT EXISTS cases_by_state ON cases (state, case_id);
CREATE INDEX IF NOT EXISTS cases_by_caseworker ON cases (caseworker_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_household ON cases (household_id, case_id);
CREATE INDEX IF NOT EXISTS cases_by_deadline ON cases (next_deadline) WHERE next_deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    case_id text NOT NULL, version integer NOT NULL CHECK (version > 0), event text NOT NULL,
    occurred_at timestamptz NOT NULL, data text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL,
    PRIMARY KEY (case_id, version)
);
CREATE TABLE IF NOT EXISTS refusals (
    seq bigserial PRIMARY KEY, case_id text NOT NULL, at timestamptz NOT NULL, data text NOT NULL
);
CREATE INDEX IF NOT EXISTS refusals_by_case ON refusals (case_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq bigserial PRIMARY KEY, notification_id text NOT NULL UNIQUE, case_id text NOT NULL,
    created_at timestamptz NOT NULL, data text NOT NULL, attempts integer NOT NULL DEFAULT 0,
    last_error text, next_attempt_at timestamptz, delivered_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE delivered_at IS NULL
""",
}

_COLUMNS_0_1 = {
    "cases": "case_id, household_id, state, caseworker_id, next_deadline, version, head_hash, data",
    "events": "case_id, version, event, occurred_at, data, prev_hash, hash",
    "refusals": "seq, case_id, at, data",
    "outbox": "seq, notification_id, case_id, created_at, data, attempts, last_error, next_attempt_at, "
    "delivered_at",
}


def _rows_0_1(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows as 0.1 held them (same columns and encodings), written by a scratch store."""
    scratch = SQLStore(f"sqlite:///{tmp_path / 'scratch.db'}", table_prefix="src_")
    scratch.commit(open_commit("C-live", "H-1"))
    closed = open_commit("C-closed", "H-2")
    scratch.commit(closed)
    scratch.commit(follow(closed.case, HandOver(Agency("elsewhere"))))
    scratch.record_refusal(Refusal("C-live", "close", "w1", "caseworker", T0, "transition_refused", "no"))
    scratch.enqueue(
        [Notification("reminder/C-live/1", NotificationKind.REMINDER, "C-live", "C-live/1", "worker-1", T0)]
    )
    rows: dict[str, list[dict[str, Any]]] = {}
    raw = create_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    with raw.connect() as conn:
        for table, columns in _COLUMNS_0_1.items():
            result = conn.execute(text(f"SELECT {columns} FROM src_{table}"))
            rows[table] = [dict(r._mapping) for r in result]
    raw.dispose()
    scratch.close()
    return rows


def _write_0_1(engine: Engine, kind: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    _apply_script(engine, SCHEMA_0_1[kind] + (";\n" if kind == "postgresql" else ""))
    with engine.begin() as conn:
        for table, columns in _COLUMNS_0_1.items():
            names = [c.strip() for c in columns.split(",")]
            statement = text(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
            )
            for row in rows[table]:
                conn.execute(statement, row)


def test_a_0_1_database_is_adopted_and_keeps_every_row(database_0_1: Database, tmp_path: Path) -> None:
    rows = _rows_0_1(tmp_path)
    assert {r["state"] for r in rows["cases"]} == {"referred", "handed_over"}
    engine = database_0_1.engine()
    try:
        _write_0_1(engine, database_0_1.kind, rows)
        store = SQLStore(engine, table_prefix="")  # opening adopts and upgrades it
        assert current(engine, table_prefix="") == head()
        assert_matches(engine, store_tables(""))
        assert "casemgmt_schema" not in table_names(engine)
        if database_0_1.kind == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA user_version").scalar() == 1

        with engine.connect() as conn:
            cases = conn.execute(
                text("SELECT case_id, tenant_id, live_household_id, version FROM cases ORDER BY case_id")
            ).all()
            assert [tuple(r) for r in cases] == [
                ("C-closed", "default", None, 2),
                ("C-live", "default", "H-1", 1),
            ]
            for table, columns in _COLUMNS_0_1.items():
                order = "seq" if "seq" in columns else "case_id"
                found = [
                    dict(r._mapping)
                    for r in conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY {order}"))
                ]
                assert len(found) == len(rows[table])
                assert {r["case_id"] for r in found} == {r["case_id"] for r in rows[table]}
            tenants = {
                table: conn.execute(text(f"SELECT DISTINCT tenant_id FROM {table}")).scalars().all()
                for table in _COLUMNS_0_1
            }
            assert tenants == {t: ["default"] for t in _COLUMNS_0_1}
            outbox = conn.execute(text("SELECT notification_id, notification_key FROM outbox")).all()
            assert "reminder/C-live/1" in {nid for nid, _key in outbox}
            assert all(key == hashlib.sha256(nid.encode()).hexdigest() for nid, key in outbox)

        assert store.load("C-live").state.value == "referred"
        assert store.load("C-closed").state.value == "handed_over"
        assert [e.version for e in store.events("C-closed")] == [1, 2]
        assert len(store.refusals("C-live")) == 1
        pending = {
            p.notification.notification_id for p in store.pending_notifications(now=T0 + dt.timedelta(days=1))
        }
        assert pending == {r["notification_id"] for r in rows["outbox"]}
        assert store.verify().ok
        assert (
            store.enqueue(
                [
                    Notification(
                        "reminder/C-live/1", NotificationKind.REMINDER, "C-live", "C-live/1", "worker-1", T0
                    )
                ]
            )
            == 0
        )
        # The household of the live case is still held; the other's is free.
        store.commit(open_commit("C-new", "H-2"))
        store.close()
    finally:
        engine.dispose()


def test_a_0_1_database_is_not_hidden_by_the_default_prefix(database_0_1: Database, tmp_path: Path) -> None:
    engine = database_0_1.engine()
    try:
        _write_0_1(engine, database_0_1.kind, _rows_0_1(tmp_path))
        before = table_names(engine)
        with pytest.raises(StorageError, match="table_prefix=''") as raised:
            SQLStore(engine)
        assert "0.1" in str(raised.value)
        with pytest.raises(StorageError, match="table_prefix=''"):
            upgrade(engine)
        with pytest.raises(StorageError, match="casemgmt db upgrade") as raised:
            SQLStore(engine, create_tables=False)
        assert "table_prefix=''" in str(raised.value)
        assert table_names(engine) == before
    finally:
        engine.dispose()


# -- create_tables=False, privileges, newer databases ----------------------------------------------


def _ensure(engine: Engine, *, create: bool, prefix: str = DEFAULT_PREFIX) -> None:
    with engine.connect() as conn, conn.begin():
        ensure_schema(conn, store_tables(prefix), create=create)


def test_create_false_runs_no_ddl_and_names_the_command(engine: Engine) -> None:
    with pytest.raises(StorageError, match="casemgmt db upgrade") as raised:
        _ensure(engine, create=False)
    assert "casemgmt db sql" in str(raised.value)
    with pytest.raises(StorageError, match="casemgmt db upgrade"):
        SQLStore(engine, create_tables=False)
    assert table_names(engine) == set()


def test_create_false_refuses_an_older_revision(engine: Engine) -> None:
    upgrade(engine, revision="0001")
    with pytest.raises(StorageError, match=r"revision 0001.*revision 0002.*casemgmt db upgrade"):
        _ensure(engine, create=False)
    assert current(engine) == "0001"
    _ensure(engine, create=True)
    assert current(engine) == head()
    _ensure(engine, create=False)


def test_a_newer_revision_is_refused(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE casemgmt_alembic_version SET version_num = '9999'"))
    for create in (True, False):
        with pytest.raises(StorageError, match=r"'9999'.*'0002'"):
            _ensure(engine, create=create)
    with pytest.raises(StorageError, match="'9999'"):
        upgrade(engine)
    assert current(engine) == "9999"


def test_tables_of_someone_else_are_not_taken_over(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE casemgmt_cases (id INTEGER PRIMARY KEY)"))
    with pytest.raises(StorageError, match="without a recorded revision"):
        upgrade(engine)


def test_a_role_without_create_privilege(postgres_url: str, postgres_conninfo: str) -> None:
    database = _postgres(postgres_conninfo)
    admin = database.engine()
    role = f"reader_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN"))
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{database.schema}" TO {role}'))
        limited = create_engine(database.url.set(username=role))
        try:
            # Nothing there yet: create=True cannot create, and says so as a StorageError.
            with pytest.raises(StorageError) as raised:
                SQLStore(limited)
            assert "permission denied" in str(raised.value)
            with pytest.raises(StorageError, match="casemgmt db upgrade"):
                SQLStore(limited, create_tables=False)

            upgrade(admin)
            with admin.begin() as conn:
                schema = f'"{database.schema}"'
                conn.execute(
                    text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
                )
                conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"))
            for create in (False, True):  # at head, neither runs DDL
                store = SQLStore(limited, create_tables=create)
                store.commit(open_commit(f"C-{create}"))
                assert store.load(f"C-{create}").version == 1
                store.close()
        finally:
            limited.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{database.schema}" FROM {role}'))
            conn.execute(text(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{database.schema}" FROM {role}'))
            conn.execute(text(f'REVOKE ALL ON SCHEMA "{database.schema}" FROM {role}'))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_driver_errors_become_storage_errors_without_the_password() -> None:
    engine = create_engine("postgresql+psycopg://someone:s3cr3t-pw@127.0.0.1:1/nowhere")
    for call in (lambda: upgrade(engine), lambda: current(engine)):
        with pytest.raises(StorageError) as raised:
            call()
        assert "s3cr3t-pw" not in str(raised.value)
        assert raised.value.__cause__ is None or "s3cr3t-pw" not in str(raised.value.__cause__)


# -- concurrent first opens ------------------------------------------------------------------------


def test_threads_opening_a_new_database_at_once(database: Database) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one(i: int) -> None:
        engine = engines[i]
        try:
            start.wait()
            stores[i] = SQLStore(engine)
        except BaseException as exc:
            errors.append(exc)

    stores: dict[int, SQLStore] = {}
    engines = [database.engine() for _ in range(6)]
    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, store in stores.items():  # every one of them works
        store.commit(open_commit(f"C-{i}"))
        store.close()
    for each in engines:
        each.dispose()
    engine = database.engine()
    try:
        assert current(engine) == head()
        assert_matches(engine, store_tables())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM casemgmt_cases")).scalar() == 6
            assert conn.execute(text("SELECT count(*) FROM casemgmt_alembic_version")).scalar() == 1
    finally:
        engine.dispose()


_OPEN_IN_A_PROCESS = """
import sys
from sqlalchemy import create_engine
from casemgmt_core.adapters.migrations import upgrade
engine = create_engine(sys.argv[1])
upgrade(engine)
engine.dispose()
"""


def test_processes_opening_a_new_database_at_once(database: Database) -> None:
    url = database.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_IN_A_PROCESS, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outcomes = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, [err.decode()[-2000:] for _out, err in outcomes]
    engine = database.engine()
    try:
        assert current(engine) == head()
        assert_matches(engine, store_tables())
    finally:
        engine.dispose()


# -- casemgmt db -----------------------------------------------------------------------------------


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="casemgmt")
    add_db_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


def test_cli_upgrade_and_current(database: Database, capsys: pytest.CaptureFixture[str]) -> None:
    url = database.url.render_as_string(hide_password=False)
    assert _run("db", "current", url) == 0
    assert capsys.readouterr().out == "none\n"
    assert _run("db", "upgrade", url, "--prefix", "cli_", "--revision", "0001") == 0
    out = capsys.readouterr().out
    assert "at revision 0001" in out
    if database.url.password:
        assert database.url.password not in out
    assert _run("db", "upgrade", url, "--prefix", "cli_") == 0
    capsys.readouterr()
    assert _run("db", "current", url, "--prefix", "cli_") == 0
    assert capsys.readouterr().out == f"{head()}\n"
    engine = database.engine()
    try:
        assert_matches(engine, store_tables("cli_"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mariadb", "mysql"])
def test_cli_sql(dialect: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("db", "sql", "--dialect", dialect, "--prefix", "x_") == 0
    out = capsys.readouterr().out
    assert out == upgrade_sql(dialect, table_prefix="x_")
    assert "CREATE TABLE x_cases " in out


def test_cli_errors_hide_the_password() -> None:
    with pytest.raises(StorageError) as raised:
        _run("db", "current", "postgresql://someone:s3cr3t-pw@127.0.0.1:1/nowhere")
    assert "s3cr3t-pw" not in str(raised.value)
    with pytest.raises(InvalidData):
        _run("db", "upgrade", "not a url")
    with pytest.raises(SystemExit):
        _run("db", "sql", "--dialect", "oracle")
