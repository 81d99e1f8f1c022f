"""The 0.2 layout: tenants, the deadlines table, keyed outbox, code-point identifiers.

- Every table gains ``tenant_id``; existing rows belong to the tenant ``'default'``.
- ``cases`` gains ``live_household_id`` (the household while the case is in a live state, else
  NULL), filled for existing cases; the unique ``(tenant_id, live_household_id)`` replaces the
  partial index of 0.1 (and works on MariaDB, which has no partial indexes).
- Primary keys become ``(tenant_id, case_id)`` and ``(tenant_id, case_id, version)``.
- ``outbox`` gains ``notification_key``, the SHA-256 (hex) of the notification id, computed for
  existing rows; ``(tenant_id, notification_key)`` replaces the uniqueness of the id itself.
- Identifier columns compare by code point (``COLLATE "C"`` on PostgreSQL).
- The new ``deadlines`` table is created empty. Existing cases get no deadline rows here: the
  next commit of each case writes all of its pending deadlines, and until then ``due()`` does
  not list that case.
- PostgreSQL's 0.1 marker table ``casemgmt_schema`` is dropped (SQLite's ``user_version`` is
  left as it is).

SQLite cannot change a primary key in place, so there each table is rebuilt (Alembic's batch
mode, from table definitions given here, so that offline SQL needs no database to read).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

from casemgmt_core.adapters.migrations import names
from casemgmt_core.lifecycle import LIVE_STATES

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_ID, _HASH, _STATE = 128, 64, 32

# Each table's 0001 columns: name -> (kind, nullable).
_COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    "cases": {
        "case_id": ("id", False),
        "household_id": ("id", False),
        "state": ("state", False),
        "caseworker_id": ("id", True),
        "next_deadline": ("time", True),
        "version": ("int", False),
        "head_hash": ("hash", False),
        "data": ("text", False),
    },
    "events": {
        "case_id": ("id", False),
        "version": ("int", False),
        "event": ("id", False),
        "occurred_at": ("time", False),
        "data": ("text", False),
        "prev_hash": ("hash", False),
        "hash": ("hash", False),
    },
    "refusals": {
        "seq": ("seq", False),
        "case_id": ("id", False),
        "at": ("time", False),
        "data": ("text", False),
    },
    "outbox": {
        "seq": ("seq", False),
        "notification_id": ("text", False),
        "case_id": ("id", False),
        "created_at": ("time", False),
        "data": ("text", False),
        "attempts": ("int", False),
        "last_error": ("text", True),
        "next_attempt_at": ("time", True),
        "delivered_at": ("time", True),
    },
}


def _new_type(kind: str) -> sa.types.TypeEngine[Any]:
    if kind == "id":
        return names.key(_ID)
    if kind == "hash":
        return names.key(_HASH)
    if kind == "state":
        return names.key(_STATE)
    if kind == "time":
        return names.utc_time()
    if kind == "seq":
        return names.seq()
    if kind == "int":
        return sa.Integer()
    return names.long_text()


def _old_type(kind: str) -> sa.types.TypeEngine[Any]:
    """The type 0001 gave a column of this kind."""
    if names.is_mysql() or kind in ("int", "seq"):
        return _new_type(kind)
    if kind == "time" and names.dialect_name() == "postgresql":
        return sa.DateTime(timezone=True)
    return sa.Text()


def _changes_type(kind: str) -> bool:
    if names.is_mysql() or kind in ("int", "seq", "text"):
        return False
    return kind != "time" or names.dialect_name() == "sqlite"


_Added = dict[str, tuple[sa.types.TypeEngine[Any], bool, str | None]]


def _sqlite_source(name: str, added: _Added) -> sa.Table:
    """The table as it stands before the rebuild, as far as the rebuild keeps it: columns and the
    row-number key only (the old primary keys, uniques and checks are replaced)."""
    columns: list[sa.Column[Any]] = []
    for column, (kind, nullable) in _COLUMNS[name].items():
        if kind == "seq":
            columns.append(sa.Column(column, sa.Integer(), primary_key=True, autoincrement=True))
        else:
            zero = sa.text("0") if column == "attempts" else None
            columns.append(sa.Column(column, _old_type(kind), nullable=nullable, server_default=zero))
    for column, (type_, nullable, default) in added.items():
        server_default = None if default is None else sa.text(default)
        columns.append(sa.Column(column, type_, nullable=nullable, server_default=server_default))
    source = sa.Table(
        names.table(name), sa.MetaData(), *columns, sqlite_autoincrement=name in ("refusals", "outbox")
    )
    return source


def _existing_name(name: str, kind: str, columns: list[str], default: str) -> str:
    """The name a 0.1/0001 constraint has on PostgreSQL (PostgreSQL named 0.1's; usually
    ``default``, read from the database when there is one)."""
    if names.is_offline() or names.dialect_name() != "postgresql":
        return default
    inspector = sa.inspect(op.get_bind())
    found: str | None = None
    if kind == "primary":
        found = inspector.get_pk_constraint(name, schema=names.schema()).get("name")
    elif kind == "unique":
        for unique in inspector.get_unique_constraints(name, schema=names.schema()):
            if unique["column_names"] == columns:
                found = unique["name"]
    else:
        for check in inspector.get_check_constraints(name, schema=names.schema()):
            if "version" in check["sqltext"]:
                found = check["name"]
    return found or default


def _rebuild(
    name: str,
    added: _Added,
    *,
    primary_key: list[str] | None = None,
    check: bool = False,
    drop_unique: list[str] | None = None,
    unique: tuple[str, list[str]] | None = None,
    not_null: tuple[str, ...] = (),
) -> None:
    """Bring the 0001 table ``name`` (with the ``added`` columns already in place) to 0.2."""
    t = names.table
    sqlite = names.dialect_name() == "sqlite"
    with op.batch_alter_table(
        t(name), schema=names.schema(), copy_from=_sqlite_source(name, added) if sqlite else None
    ) as batch:
        for column, (type_, nullable, default) in added.items():
            if default is not None:
                batch.alter_column(
                    column, server_default=None, existing_type=type_, existing_nullable=nullable
                )
        for column in not_null:
            batch.alter_column(column, nullable=False, existing_type=added[column][0])
        if not sqlite:
            if primary_key is not None:
                batch.drop_constraint(
                    _existing_name(t(name), "primary", [], t(f"{name}_pkey")), type_="primary"
                )
            if check:
                batch.drop_constraint(
                    _existing_name(t(name), "check", [], t(f"{name}_version_check")), type_="check"
                )
            if drop_unique is not None:
                column = drop_unique[0]
                batch.drop_constraint(
                    _existing_name(t(name), "unique", drop_unique, t(f"{name}_{column}_key")), type_="unique"
                )
        for column, (kind, nullable) in _COLUMNS[name].items():
            if _changes_type(kind):
                batch.alter_column(
                    column, type_=_new_type(kind), existing_type=_old_type(kind), existing_nullable=nullable
                )
        if primary_key is not None:
            batch.create_primary_key(t(f"{name}_pk"), primary_key)
        if check:
            batch.create_check_constraint(t(f"{name}_version_positive"), sa.text("version > 0"))
        if unique is not None:
            batch.create_unique_constraint(t(unique[0]), unique[1])


def _tenant() -> tuple[sa.types.TypeEngine[Any], bool, str]:
    return names.key(_ID), False, "'default'"


def _add(name: str, added: _Added) -> None:
    for column, (type_, nullable, default) in added.items():
        op.add_column(
            names.table(name),
            sa.Column(
                column,
                type_,
                nullable=nullable,
                server_default=None if default is None else sa.text(default),
            ),
            schema=names.schema(),
        )


def _drop_indexes(name: str, *indexes: str) -> None:
    for index in indexes:
        op.drop_index(names.table(index), table_name=names.table(name), schema=names.schema())


def _fill_notification_keys() -> None:
    outbox = sa.table(
        names.table("outbox"),
        sa.column("seq", sa.BigInteger()),
        sa.column("notification_id", sa.Text()),
        sa.column("notification_key", sa.Text()),
        schema=names.schema(),
    )
    dialect = names.dialect_name()
    if names.is_offline():
        # SQL for a DBA: the database computes the same SHA-256 of the id's UTF-8 bytes.
        if dialect == "postgresql":
            digest = sa.func.encode(
                sa.func.sha256(sa.func.convert_to(outbox.c.notification_id, "UTF8")), "hex"
            )
        elif dialect == "mysql":
            digest = sa.func.lower(sa.func.sha2(outbox.c.notification_id, 256))
        else:
            # SQLite has no SHA-256; offline SQL for SQLite only creates a new database, whose
            # outbox is empty (``upgrade_sql`` refuses a starting revision for SQLite).
            return
        op.execute(outbox.update().values(notification_key=digest))
        return
    bind = op.get_bind()
    rows = bind.execute(sa.select(outbox.c.seq, outbox.c.notification_id)).all()
    if rows:
        bind.execute(
            outbox.update()
            .where(outbox.c.seq == sa.bindparam("s"))
            .values(notification_key=sa.bindparam("k")),
            [{"s": seq, "k": hashlib.sha256(nid.encode()).hexdigest()} for seq, nid in rows],
        )


def upgrade() -> None:
    t = names.table
    schema = names.schema()
    dialect = names.dialect_name()
    ident = names.key(_ID)

    # -- cases
    added = {"tenant_id": _tenant(), "live_household_id": (names.key(_ID), True, None)}
    _add("cases", added)
    cases = sa.table(
        t("cases"),
        sa.column("state", sa.Text()),
        sa.column("household_id", sa.Text()),
        sa.column("live_household_id", sa.Text()),
        schema=schema,
    )
    live = sorted(s.value for s in LIVE_STATES)
    op.execute(cases.update().where(cases.c.state.in_(live)).values(live_household_id=cases.c.household_id))
    indexes = ["cases_by_state", "cases_by_caseworker", "cases_by_household", "cases_by_deadline"]
    if dialect != "mysql":
        indexes.insert(0, "cases_one_live_per_household")
    _drop_indexes("cases", *indexes)
    _rebuild(
        "cases",
        added,
        primary_key=["tenant_id", "case_id"],
        check=True,
        unique=("cases_one_live_per_household", ["tenant_id", "live_household_id"]),
    )
    op.create_index(t("cases_by_state"), t("cases"), ["tenant_id", "state", "case_id"], schema=schema)
    op.create_index(
        t("cases_by_caseworker"), t("cases"), ["tenant_id", "caseworker_id", "case_id"], schema=schema
    )
    op.create_index(
        t("cases_by_household"), t("cases"), ["tenant_id", "household_id", "case_id"], schema=schema
    )
    op.create_index(
        t("cases_by_deadline"), t("cases"), ["tenant_id", "next_deadline", "case_id"], schema=schema
    )

    # -- events
    added = {"tenant_id": _tenant()}
    _add("events", added)
    _rebuild("events", added, primary_key=["tenant_id", "case_id", "version"], check=True)

    # -- refusals
    added = {"tenant_id": _tenant()}
    _add("refusals", added)
    _drop_indexes("refusals", "refusals_by_case")
    _rebuild("refusals", added)
    op.create_index(t("refusals_by_case"), t("refusals"), ["tenant_id", "case_id", "seq"], schema=schema)

    # -- outbox
    added = {"tenant_id": _tenant(), "notification_key": (names.key(_HASH), True, None)}
    _add("outbox", added)
    _fill_notification_keys()
    _drop_indexes("outbox", "outbox_pending")
    _rebuild(
        "outbox",
        added,
        drop_unique=["notification_id"],
        unique=("outbox_one_per_id", ["tenant_id", "notification_key"]),
        not_null=("notification_key",),
    )
    op.create_index(t("outbox_pending"), t("outbox"), ["tenant_id", "delivered_at", "seq"], schema=schema)

    # -- deadlines
    op.create_table(
        t("deadlines"),
        sa.Column("tenant_id", ident, nullable=False),
        sa.Column("case_id", names.key(_ID), nullable=False),
        sa.Column("kind", names.key(_STATE), nullable=False),
        sa.Column("subject", names.key(_ID), nullable=False),
        sa.Column("listed_from", names.utc_time(), nullable=False),
        sa.Column("due_at", names.utc_time(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "case_id", "kind", "subject", name=t("deadlines_pk")),
        schema=schema,
        **names.mysql_table_options(),
    )
    op.create_index(
        t("deadlines_listed"),
        t("deadlines"),
        ["tenant_id", "listed_from", "case_id", "kind", "subject"],
        schema=schema,
    )

    # -- 0.1's marker table (only a 0.1 database, opened without a prefix, has one)
    if dialect == "postgresql" and t("") == "":
        op.execute(sa.text(f"DROP TABLE IF EXISTS {_qualified('casemgmt_schema', schema)}"))


def _qualified(name: str, schema: str | None) -> str:
    return f'"{schema}"."{name}"' if schema else f'"{name}"'


def downgrade() -> None:
    raise NotImplementedError(
        "revision 0002 cannot be undone: rows of several tenants would collide in the 0.1 layout"
    )
