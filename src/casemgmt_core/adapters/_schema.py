"""The SQL stores' tables as SQLAlchemy Core metadata, for every supported database.

One function, :func:`store_tables`, builds them for a table prefix and a schema name; the
store, the migrations and ``casemgmt db sql`` all start from it. Column types are chosen per
database so that ordering and equality mean the same everywhere: identifiers compare by code
point (``COLLATE "C"`` on PostgreSQL, a binary no-pad collation on MariaDB/MySQL, SQLite's
default), timestamps are UTC, JSON text has no length limit.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from attrs import frozen
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..errors import InvalidData

__all__ = [
    "DEFAULT_PREFIX",
    "Key",
    "LongText",
    "StoreTables",
    "UTCDateTime",
    "check_prefix",
    "check_schema_name",
    "store_tables",
    "utc_from_stored",
]

#: Table names start with this unless a prefix is given.
DEFAULT_PREFIX = "casemgmt_"

# The longest identifier PostgreSQL keeps is 63 bytes (MariaDB's 64); the longest name after the
# prefix is 28 ("cases_one_live_per_household"), so a longer prefix would be cut short.
_MAX_PREFIX = 35
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z", re.ASCII)

# Datetimes are stored in SQLite as fixed-width UTC text, so that text order is time order
# (and a 0.1 database keeps reading the same way).
_SQLITE_TIME = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def check_prefix(prefix: object) -> str:
    if type(prefix) is not str or not (prefix == "" or (len(prefix) <= _MAX_PREFIX and _NAME.match(prefix))):
        raise InvalidData(
            "is not a usable table prefix",
            field="table_prefix",
            allowed=f"'' or up to {_MAX_PREFIX} ASCII letters, digits and underscores, "
            "not starting with a digit",
        )
    return prefix


def check_schema_name(schema: object) -> str | None:
    if schema is not None and (type(schema) is not str or len(schema) > 63 or not _NAME.match(schema)):
        raise InvalidData(
            "is not a usable schema name",
            field="schema",
            allowed="None, or up to 63 ASCII letters, digits and underscores, not starting with a digit",
        )
    return schema


class Key(TypeDecorator[str]):
    """An identifier column: compared and ordered by code point on every database."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            # Not through type_descriptor(), which makes TEXT the driver's VARCHAR in DDL.
            return postgresql.TEXT(collation="C")
        if dialect.name in ("mysql", "mariadb"):
            # NO PAD: "a" and "a " are different ids; binary: case and accents matter.
            mariadb = getattr(dialect, "is_mariadb", False) or dialect.name == "mariadb"
            collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
            return dialect.type_descriptor(mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation))
        return dialect.type_descriptor(String(self.length))


class LongText(TypeDecorator[str]):
    """JSON text of any length."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"))
        return Text()  # not through type_descriptor(), which makes it VARCHAR on PostgreSQL


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime, stored in UTC, read back aware in UTC.

    PostgreSQL keeps ``timestamptz``; MariaDB/MySQL ``DATETIME(6)`` in UTC; SQLite fixed-width
    ISO 8601 text. A stored value that is not a time raises ``ValueError`` when read (the store
    turns it into :class:`~casemgmt_core.StorageError`).
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            # The same text as strftime(_SQLITE_TIME) for the years a store holds (1850-2200),
            # in a third of the time.
            return utc.isoformat(timespec="microseconds")
        if dialect.name in ("mysql", "mariadb"):
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return utc_from_stored(value)


def utc_from_stored(value: Any) -> dt.datetime | None:
    """A time as a :class:`UTCDateTime` column holds it (SQLite's text, MariaDB's naive UTC, an
    aware time), aware in UTC; what is not a time is ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"a stored timestamp is not an ISO 8601 time: {value[:40]!r}") from None
        if parsed.utcoffset() is None:
            raise ValueError(f"a stored timestamp has no UTC offset: {value[:40]!r}")
        return parsed.astimezone(dt.UTC)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"a stored timestamp is not a time: {type(value).__name__}")
    if value.tzinfo is None:
        # MariaDB/MySQL DATETIME holds UTC without saying so.
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


# Lengths: ids are at most 128 characters (``MAX_IDENTIFIER``); notification ids, which embed
# recipients and deadlines, are longer than any index allows, so they are keyed by their hash.
_ID = 128
_STATE = 32
_HASH = 64
# A rowid alias on SQLite (only INTEGER is one), 64 bits elsewhere.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


@frozen
class StoreTables:
    """The tables of one store layout (one prefix, one schema)."""

    metadata: MetaData
    cases: Table
    events: Table
    deadlines: Table
    refusals: Table
    outbox: Table
    prefix: str
    schema: str | None

    @property
    def version_table(self) -> str:
        """The name of the table in which the migrations record the schema revision."""
        return f"{self.prefix}alembic_version"


def store_tables(prefix: str = DEFAULT_PREFIX, schema: str | None = None) -> StoreTables:
    """The tables of a store whose table names start with ``prefix``, in database schema ``schema``
    (``None``: the connection's default)."""
    prefix = check_prefix(prefix)
    schema = check_schema_name(schema)
    md = MetaData(schema=schema)
    name = f"{prefix}{{}}".format
    mysql_options: dict[str, Any] = {
        "mysql_charset": "utf8mb4",
        "mysql_collate": "utf8mb4_bin",
        "mysql_engine": "InnoDB",
    }

    cases = Table(
        name("cases"),
        md,
        Column("tenant_id", Key(_ID), nullable=False),
        Column("case_id", Key(_ID), nullable=False),
        Column("household_id", Key(_ID), nullable=False),
        Column("state", Key(_STATE), nullable=False),
        Column("caseworker_id", Key(_ID)),
        # The household while the case is live, else NULL: unique per tenant, so the database
        # itself holds one live case per household (NULLs never collide, on every database).
        Column("live_household_id", Key(_ID)),
        Column("next_deadline", UTCDateTime()),
        Column("version", Integer, nullable=False),
        Column("head_hash", Key(_HASH), nullable=False),
        Column("data", LongText(), nullable=False),
        PrimaryKeyConstraint("tenant_id", "case_id", name=name("cases_pk")),
        UniqueConstraint("tenant_id", "live_household_id", name=name("cases_one_live_per_household")),
        CheckConstraint("version > 0", name=name("cases_version_positive")),
        **mysql_options,
    )
    Index(name("cases_by_state"), cases.c.tenant_id, cases.c.state, cases.c.case_id)
    Index(name("cases_by_caseworker"), cases.c.tenant_id, cases.c.caseworker_id, cases.c.case_id)
    Index(name("cases_by_household"), cases.c.tenant_id, cases.c.household_id, cases.c.case_id)
    Index(name("cases_by_deadline"), cases.c.tenant_id, cases.c.next_deadline, cases.c.case_id)

    events = Table(
        name("events"),
        md,
        Column("tenant_id", Key(_ID), nullable=False),
        Column("case_id", Key(_ID), nullable=False),
        Column("version", Integer, nullable=False),
        Column("event", Key(_ID), nullable=False),
        Column("occurred_at", UTCDateTime(), nullable=False),
        Column("data", LongText(), nullable=False),
        Column("prev_hash", Key(_HASH), nullable=False),
        Column("hash", Key(_HASH), nullable=False),
        PrimaryKeyConstraint("tenant_id", "case_id", "version", name=name("events_pk")),
        CheckConstraint("version > 0", name=name("events_version_positive")),
        **mysql_options,
    )

    deadlines = Table(
        name("deadlines"),
        md,
        Column("tenant_id", Key(_ID), nullable=False),
        Column("case_id", Key(_ID), nullable=False),
        Column("kind", Key(_STATE), nullable=False),
        Column("subject", Key(_ID), nullable=False),
        Column("listed_from", UTCDateTime(), nullable=False),
        Column("due_at", UTCDateTime(), nullable=False),
        PrimaryKeyConstraint("tenant_id", "case_id", "kind", "subject", name=name("deadlines_pk")),
        **mysql_options,
    )
    # due() reads a range of listed_from in this order, a keyset page at a time.
    Index(
        name("deadlines_listed"),
        deadlines.c.tenant_id,
        deadlines.c.listed_from,
        deadlines.c.case_id,
        deadlines.c.kind,
        deadlines.c.subject,
    )

    refusals = Table(
        name("refusals"),
        md,
        Column("seq", _SEQ, primary_key=True, autoincrement=True),
        Column("tenant_id", Key(_ID), nullable=False),
        Column("case_id", Key(_ID), nullable=False),
        Column("at", UTCDateTime(), nullable=False),
        Column("data", LongText(), nullable=False),
        sqlite_autoincrement=True,
        **mysql_options,
    )
    Index(name("refusals_by_case"), refusals.c.tenant_id, refusals.c.case_id, refusals.c.seq)

    outbox = Table(
        name("outbox"),
        md,
        Column("seq", _SEQ, primary_key=True, autoincrement=True),
        Column("tenant_id", Key(_ID), nullable=False),
        Column("notification_key", Key(_HASH), nullable=False),
        Column("notification_id", LongText(), nullable=False),
        Column("case_id", Key(_ID), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("data", LongText(), nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", LongText()),
        Column("next_attempt_at", UTCDateTime()),
        Column("delivered_at", UTCDateTime()),
        UniqueConstraint("tenant_id", "notification_key", name=name("outbox_one_per_id")),
        sqlite_autoincrement=True,
        **mysql_options,
    )
    Index(name("outbox_pending"), outbox.c.tenant_id, outbox.c.delivered_at, outbox.c.seq)

    return StoreTables(md, cases, events, deadlines, refusals, outbox, prefix, schema)
