"""Schema management for the SQL stores: Alembic migrations shipped inside the package.

This folder is an Alembic script directory (``env.py``, ``versions/``); no ``alembic.ini`` is
needed, the configuration is built here. The revision of a store's tables is recorded in
``{table_prefix}alembic_version`` in the store's schema, apart from any Alembic history of the
host application in the same database.

- :func:`upgrade` brings a database to a revision (``casemgmt db upgrade``);
- :func:`current` reads its revision, :func:`head` is the revision this version of the
  library needs;
- :func:`upgrade_sql` writes the DDL for a DBA to apply (``casemgmt db sql``);
- :func:`ensure_schema` is what a store runs when it opens.

A 0.1 database (tables ``cases``, ``events``, ``refusals``, ``outbox`` without a prefix) is
adopted when it is opened or upgraded with ``table_prefix=""``: its layout is recorded as
revision ``0001`` and upgraded from there, keeping every row.

SQLite has no schemas: ``schema`` must be ``None`` there (an attached database is not
supported) and is refused with :class:`~casemgmt_core.InvalidData` otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy import exc as sa_exc

from ...errors import CaseManagementError, InvalidData, StorageError
from .._schema import DEFAULT_PREFIX, StoreTables, check_prefix, check_schema_name

__all__ = ["DEFAULT_PREFIX", "current", "ensure_schema", "head", "upgrade", "upgrade_sql"]

_SCRIPTS = Path(__file__).resolve().parent
# The four tables of 0.1 (and of revision 0001).
_LAYOUT_0_1 = ("cases", "events", "refusals", "outbox")
# Alembic's ``op`` and ``context`` are module-wide: one migration runs at a time per process.
# Always taken after any database lock, never before, so that it cannot close a cycle.
_ALEMBIC = threading.Lock()
# How long a first open waits for another process creating the same tables (MariaDB/MySQL).
_LOCK_SECONDS = 60
_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb"}
_UPGRADE_HINT = (
    "run `casemgmt db upgrade URL` (or have a DBA apply the output of `casemgmt db sql --dialect ...`)"
)


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(_SCRIPTS))


def head() -> str:
    """The revision that this version of the library reads and writes."""
    found = _scripts().get_current_head()
    assert found is not None
    return found


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _config(
    prefix: str,
    schema: str | None,
    *,
    connection: Connection | None = None,
    dialect_name: str | None = None,
    output: io.StringIO | None = None,
) -> Config:
    config = Config(output_buffer=output) if output is not None else Config()
    config.set_main_option("script_location", str(_SCRIPTS).replace("%", "%%"))
    config.attributes.update(
        connection=connection, dialect_name=dialect_name, table_prefix=prefix, schema=schema
    )
    return config


# -- public API ----------------------------------------------------------------------------------


def upgrade(
    bind: Engine | Connection,
    *,
    table_prefix: str = DEFAULT_PREFIX,
    schema: str | None = None,
    revision: str = "head",
) -> None:
    """Bring the store's tables at ``table_prefix``/``schema`` to ``revision`` (default: the
    newest), creating them if missing and adopting a 0.1 database (``table_prefix=""``).

    On an ``Engine`` the work is one transaction of its own, committed here; on a
    ``Connection`` already in a transaction it joins that transaction (the caller commits).
    Concurrent upgrades of the same database wait for each other. A database already at or past
    ``revision`` is left alone (nothing is ever downgraded).
    """
    prefix, schema = _check_layout(table_prefix, schema)
    target = _check_revision(revision, "revision")
    with _transaction(bind) as connection:
        _refuse_sqlite_schema(connection, schema)
        _migrate(connection, prefix, schema, target)


def current(
    bind: Engine | Connection, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None
) -> str | None:
    """The revision recorded for the store's tables, or ``None`` where there are none."""
    prefix, schema = _check_layout(table_prefix, schema)
    with _transaction(bind, write=False) as connection:
        _refuse_sqlite_schema(connection, schema)
        with _translated(connection):
            return _current(connection, prefix, schema)


def upgrade_sql(
    dialect_name: str,
    *,
    table_prefix: str = DEFAULT_PREFIX,
    schema: str | None = None,
    from_revision: str | None = None,
) -> str:
    """The SQL that brings a database from ``from_revision`` (``None``: an empty database) to
    :func:`head`, for a DBA to review and apply. ``dialect_name`` is ``"sqlite"``,
    ``"postgresql"``, ``"mariadb"`` or ``"mysql"``.

    Offline SQL for SQLite only creates a new database: an existing SQLite file is upgraded in
    place with :func:`upgrade` (SQLite cannot compute the outbox keys of existing rows in SQL).
    """
    name = _DIALECTS.get(dialect_name) if isinstance(dialect_name, str) else None
    if name is None:
        raise InvalidData(
            f"unknown database {dialect_name!r}", field="dialect", allowed=", ".join(sorted(_DIALECTS))
        )
    prefix, schema = _check_layout(table_prefix, schema)
    if name == "sqlite" and schema is not None:
        raise InvalidData("SQLite has no schemas", field="schema", allowed="None")
    start = None if from_revision is None else _check_revision(from_revision, "from_revision")
    if name == "sqlite" and start is not None:
        raise InvalidData(
            "offline SQL for SQLite only creates a new database; upgrade an existing SQLite file "
            "with `casemgmt db upgrade sqlite:///PATH`",
            field="from_revision",
            allowed="None for SQLite",
        )
    target = head()
    if start == target:
        return ""
    output = io.StringIO()
    config = _config(prefix, schema, dialect_name=name, output=output)
    try:
        with _ALEMBIC:
            command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    except (CommandError, sa_exc.SQLAlchemyError) as exc:
        raise StorageError(f"cannot write the upgrade SQL: {type(exc).__name__}: {exc}") from None
    return output.getvalue()


def ensure_schema(connection: Connection, tables: StoreTables, *, create: bool) -> None:
    """Make sure ``tables`` exist at :func:`head` (``create``), or check that they do.

    Called by a store when it opens, inside a transaction on ``connection``. With ``create``,
    missing tables are created, older ones upgraded and a 0.1 database opened with
    ``table_prefix=""`` adopted; concurrent first opens wait for each other. Without it, no DDL
    runs at all: tables that are missing or not at :func:`head` raise
    :class:`~casemgmt_core.StorageError` naming ``casemgmt db upgrade``, so a database role
    without the right to create tables can use tables that someone else created.
    """
    prefix, schema = tables.prefix, tables.schema
    _refuse_sqlite_schema(connection, schema)
    target = head()
    if create:
        _migrate(connection, prefix, schema, target)
        return
    with _translated(connection):
        found = _current(connection, prefix, schema)
        if found is None:
            hint = _legacy_hint(connection, prefix, schema)
            raise StorageError(
                f"the store's tables ({_where(prefix, schema)}) do not exist{hint}; "
                f"{_UPGRADE_HINT}, or open the store with create_tables=True"
            )
        _refuse_unknown(found, target, prefix, schema)
        if found != target:
            raise StorageError(
                f"the store's tables ({_where(prefix, schema)}) are at revision {found}; this version "
                f"of casemgmt-core needs revision {target}: {_UPGRADE_HINT}"
            )
        missing = _missing_tables(connection, tables)
        if missing:
            raise StorageError(
                f"revision {found} is recorded but tables are missing: {', '.join(missing)}; "
                "restore them from a backup or recreate the store"
            )


# -- the work -------------------------------------------------------------------------------------


def _migrate(connection: Connection, prefix: str, schema: str | None, target: str) -> None:
    with _translated(connection):
        dialect = connection.dialect.name
        if dialect in ("mysql", "mariadb"):
            # DDL commits implicitly there, whatever transaction it is in: the work runs on a
            # connection of its own under a named lock, committed before the lock is released.
            # The caller's connection is not used at all: a table it had read would hold a
            # metadata lock, for which the DDL of another process would wait, holding the lock.
            with connection.engine.connect() as own:
                found = _current(own, prefix, schema)
                own.rollback()
                if found is not None:
                    _refuse_unknown(found, target, prefix, schema)
                    if not _behind(found, target):
                        return
                with _mysql_lock(own, prefix, schema), own.begin():
                    _migrate_locked(own, prefix, schema, target)
            return
        found = _current(connection, prefix, schema)
        if found is not None:
            _refuse_unknown(found, target, prefix, schema)
            if not _behind(found, target):
                return
        if dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(prefix, schema)})
        # SQLite: the write lock of BEGIN IMMEDIATE, taken by the store's own engines when the
        # transaction began, or here (an engine whose driver has not begun one yet).
        _sqlite_write_lock(connection, True)
        _migrate_locked(connection, prefix, schema, target)


def _migrate_locked(connection: Connection, prefix: str, schema: str | None, target: str) -> None:
    """The migration proper, once no one else can be migrating the same tables."""
    found = _current(connection, prefix, schema)
    config = _config(prefix, schema, connection=connection)
    if found is None:
        layout = _layout(connection, prefix, schema)
        if layout == "0.1":
            with _ALEMBIC:
                command.stamp(config, "0001")
        elif layout == "other":
            raise StorageError(
                f"tables named like the store's ({_where(prefix, schema)}) exist without a recorded "
                "revision; they were not created by casemgmt-core's migrations: choose another "
                "table_prefix or schema, or remove them"
            )
        elif prefix == DEFAULT_PREFIX and _layout(connection, "", schema) == "0.1":
            raise StorageError(
                "this database holds a casemgmt-core 0.1 store (tables cases, events, refusals, "
                "outbox without a prefix) and no tables with the prefix "
                f"{DEFAULT_PREFIX!r}: open it with table_prefix='' to upgrade and keep using it "
                "(a second, empty store beside it is not created)"
            )
    else:
        _refuse_unknown(found, target, prefix, schema)
        if not _behind(found, target):
            return
    with _ALEMBIC:
        command.upgrade(config, target)


def _current(connection: Connection, prefix: str, schema: str | None) -> str | None:
    context = MigrationContext.configure(
        connection, opts={"version_table": f"{prefix}alembic_version", "version_table_schema": schema}
    )
    return context.get_current_revision()


def _behind(found: str, target: str) -> bool:
    """Whether ``target`` lies ahead of ``found``."""
    if found == target:
        return False
    return any(r.revision == found for r in _scripts().iterate_revisions(target, "base"))


def _refuse_unknown(found: str, target: str, prefix: str, schema: str | None) -> None:
    if not _known(found):
        raise StorageError(
            f"the store's tables ({_where(prefix, schema)}) are at revision {found!r}, which this "
            f"version of casemgmt-core does not know (it knows revisions up to {head()!r}); the "
            "database was upgraded by a newer version: use that version"
        )


def _layout(connection: Connection, prefix: str, schema: str | None) -> str:
    """``"none"`` (no ``{prefix}cases``), ``"0.1"`` (the four 0.1 tables, 0.1 columns) or ``"other"``."""
    inspector = inspect(connection)
    existing = set(inspector.get_table_names(schema=schema))
    if f"{prefix}cases" not in existing:
        return "none"
    columns = {c["name"] for c in inspector.get_columns(f"{prefix}cases", schema=schema)}
    if (
        "head_hash" in columns
        and "tenant_id" not in columns
        and all(f"{prefix}{name}" in existing for name in _LAYOUT_0_1)
    ):
        return "0.1"
    return "other"


def _legacy_hint(connection: Connection, prefix: str, schema: str | None) -> str:
    if prefix != "" and _layout(connection, "", schema) == "0.1":
        return " (the database holds a casemgmt-core 0.1 store: open it with table_prefix='')"
    return ""


def _missing_tables(connection: Connection, tables: StoreTables) -> list[str]:
    existing = set(inspect(connection).get_table_names(schema=tables.schema))
    return sorted(t.name for t in tables.metadata.sorted_tables if t.name not in existing)


def _lock_key(prefix: str, schema: str | None) -> int:
    digest = hashlib.sha256(f"casemgmt-core migrations\n{schema or ''}\n{prefix}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def _mysql_lock(connection: Connection, prefix: str, schema: str | None) -> Iterator[None]:
    name = f"casemgmt:{_lock_key(prefix, schema) & 0xFFFFFFFFFFFF:012x}"
    got = connection.execute(
        text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": _LOCK_SECONDS}
    ).scalar()
    connection.commit()
    if got != 1:
        raise StorageError(
            f"another process has been creating or upgrading the store's tables for {_LOCK_SECONDS} s; "
            "try again"
        )
    try:
        yield
    finally:
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        connection.commit()


# -- plumbing ------------------------------------------------------------------------------------


def _check_layout(prefix: str, schema: str | None) -> tuple[str, str | None]:
    return check_prefix(prefix), check_schema_name(schema)


def _check_revision(revision: str, field: str) -> str:
    if revision == "head":
        return head()
    if not isinstance(revision, str) or not _known(revision):
        known = [r.revision for r in _scripts().walk_revisions()]
        raise InvalidData(
            f"unknown revision {revision!r}", field=field, allowed=", ".join(["head", *reversed(known)])
        )
    return revision


def _refuse_sqlite_schema(connection: Connection, schema: str | None) -> None:
    if schema is not None and connection.dialect.name == "sqlite":
        raise InvalidData("SQLite has no schemas", field="schema", allowed="None")


def _where(prefix: str, schema: str | None) -> str:
    where = f"table prefix {prefix!r}"
    return where if schema is None else f"{where} in schema {schema!r}"


@contextlib.contextmanager
def _transaction(bind: Engine | Connection, *, write: bool = True) -> Iterator[Connection]:
    """A connection in a transaction: the caller's, or one of our own committed at the end."""
    if isinstance(bind, Connection):
        if bind.in_transaction():
            yield bind
            return
        with _translated(bind), bind.begin():
            _sqlite_write_lock(bind, write)
            yield bind
        return
    if not isinstance(bind, Engine):
        raise InvalidData(
            f"cannot migrate a {type(bind).__name__}",
            field="bind",
            allowed="a SQLAlchemy Engine or Connection",
        )
    with _translated(bind), bind.connect() as connection:
        # The store's own SQLite engines start a write transaction (BEGIN IMMEDIATE) on this.
        connection = connection.execution_options(casemgmt_write=write)
        with connection.begin():
            _sqlite_write_lock(connection, write)
            yield connection


def _sqlite_write_lock(connection: Connection, write: bool) -> None:
    """Take SQLite's write lock now (BEGIN IMMEDIATE), so that concurrent first opens queue."""
    if not write or connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and not getattr(raw, "in_transaction", True):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def _translated(bind: Engine | Connection) -> Iterator[None]:
    """Driver and Alembic errors become :class:`StorageError`, without the password."""
    try:
        yield
    except CaseManagementError:
        raise
    except (sa_exc.SQLAlchemyError, CommandError) as exc:
        raise StorageError(f"schema management failed: {_describe(exc, bind)}") from None


def _describe(exc: BaseException, bind: Engine | Connection) -> str:
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    message = " ".join(str(cause).split())[:500]
    password = bind.engine.url.password
    if password:
        message = message.replace(str(password), "***")
    return f"{type(cause).__name__}: {message}"
