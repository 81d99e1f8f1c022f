"""What a migration script needs to know about where it runs: names and column types.

Every revision names its tables, indexes and constraints through :func:`table` (the store's
table prefix applied) and :func:`schema`, so one script directory serves every prefix and
schema. The column types here are frozen copies of those in ``_schema.py`` as of revision
``0002``: a revision keeps creating what it created when it was written, whatever the store's
metadata later becomes (a change of type is a new revision).
"""

from __future__ import annotations

from typing import Any

from alembic import op
from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

__all__ = [
    "PREFIX_OPTION",
    "SCHEMA_OPTION",
    "dialect_name",
    "is_mariadb",
    "is_mysql",
    "is_offline",
    "key",
    "long_text",
    "mysql_table_options",
    "schema",
    "seq",
    "table",
    "utc_time",
]

# The keys under which env.py hands the layout to the migration context (``context.configure``).
PREFIX_OPTION = "casemgmt_table_prefix"
SCHEMA_OPTION = "casemgmt_schema"


def _opts() -> dict[str, Any]:
    opts: dict[str, Any] = op.get_context().opts
    return opts


def table(name: str) -> str:
    """``name`` (a table, index or constraint name) with the store's table prefix."""
    return f"{_opts()[PREFIX_OPTION]}{name}"


def schema() -> str | None:
    """The database schema of the store's tables (``None``: the connection's default)."""
    found: str | None = _opts()[SCHEMA_OPTION]
    return found


def dialect_name() -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included)."""
    name = op.get_context().dialect.name
    return "mysql" if name == "mariadb" else name


def is_mysql() -> bool:
    return dialect_name() == "mysql"


def is_mariadb() -> bool:
    dialect = op.get_context().dialect
    return dialect.name == "mariadb" or bool(getattr(dialect, "is_mariadb", False))


def is_offline() -> bool:
    """Writing SQL for someone else to run (``casemgmt db sql``): no reading of the database."""
    return bool(op.get_context().as_sql)


def key(length: int) -> TypeEngine[Any]:
    """An identifier column, compared and ordered by code point."""
    name = dialect_name()
    if name == "postgresql":
        return postgresql.TEXT(collation="C")
    if name == "mysql":
        collation = "utf8mb4_nopad_bin" if is_mariadb() else "utf8mb4_0900_bin"
        return mysql.VARCHAR(length, charset="utf8mb4", collation=collation)
    return String(length)


def long_text() -> TypeEngine[Any]:
    """JSON text of any length."""
    if is_mysql():
        return mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin")
    return Text()


def utc_time() -> TypeEngine[Any]:
    """A UTC timestamp: ``timestamptz``, ``DATETIME(6)``, or fixed-width ISO text on SQLite."""
    name = dialect_name()
    if name == "sqlite":
        return String(32)
    if name == "mysql":
        return mysql.DATETIME(fsp=6)
    return DateTime(timezone=True)


def seq() -> TypeEngine[Any]:
    """An autoincrementing row number: a rowid alias on SQLite, 64 bits elsewhere."""
    return Integer() if dialect_name() == "sqlite" else BigInteger()


def mysql_table_options() -> dict[str, Any]:
    if not is_mysql():
        return {}
    return {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}
