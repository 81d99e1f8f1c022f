"""The 0.1 layout: cases, events, refusals, outbox.

Exactly the tables, columns and indexes that casemgmt-core 0.1 created (there without a table
prefix, which is why a 0.1 database is opened with ``table_prefix=""``). A 0.1 database is
adopted by recording this revision and upgrading from it. On MariaDB/MySQL, which 0.1 did not
support, the columns get the types of 0.2 (an index needs a bounded key) and, as there are no
partial indexes, the one-live-case-per-household index is left out and the two other partial
indexes cover every row.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from casemgmt_core.adapters.migrations import names
from casemgmt_core.lifecycle import LIVE_STATES

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# The live states as 0.1 spelled them in its partial index.
LIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(LIVE_STATES))


def _types() -> tuple[sa.types.TypeEngine[Any], ...]:
    """(id, hash, state, text, time) for this database."""
    if names.is_mysql():
        return names.key(128), names.key(64), names.key(32), names.long_text(), names.utc_time()
    time: sa.types.TypeEngine[Any] = (
        sa.Text() if names.dialect_name() == "sqlite" else sa.DateTime(timezone=True)
    )
    return sa.Text(), sa.Text(), sa.Text(), sa.Text(), time


def upgrade() -> None:
    t = names.table
    schema = names.schema()
    sqlite = names.dialect_name() == "sqlite"
    mysql = names.is_mysql()
    ident, digest, state, text, time = _types()
    options = names.mysql_table_options()
    # PostgreSQL's own names for 0.1's unnamed constraints (so that 0002 finds them by name).
    named = not sqlite

    op.create_table(
        t("cases"),
        sa.Column("case_id", ident, nullable=False),
        sa.Column("household_id", ident, nullable=False),
        sa.Column("state", state, nullable=False),
        sa.Column("caseworker_id", ident),
        sa.Column("next_deadline", time),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("head_hash", digest, nullable=False),
        sa.Column("data", text, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=t("cases_pkey") if named else None),
        sa.CheckConstraint("version > 0", name=t("cases_version_check") if named else None),
        schema=schema,
        **options,
    )
    if not mysql:
        op.create_index(
            t("cases_one_live_per_household"),
            t("cases"),
            ["household_id"],
            unique=True,
            schema=schema,
            sqlite_where=sa.text(f"state IN ({LIVE_SQL})"),
            postgresql_where=sa.text(f"state IN ({LIVE_SQL})"),
        )
    op.create_index(t("cases_by_state"), t("cases"), ["state", "case_id"], schema=schema)
    op.create_index(t("cases_by_caseworker"), t("cases"), ["caseworker_id", "case_id"], schema=schema)
    op.create_index(t("cases_by_household"), t("cases"), ["household_id", "case_id"], schema=schema)
    op.create_index(
        t("cases_by_deadline"),
        t("cases"),
        ["next_deadline"],
        schema=schema,
        sqlite_where=sa.text("next_deadline IS NOT NULL"),
        postgresql_where=sa.text("next_deadline IS NOT NULL"),
    )

    op.create_table(
        t("events"),
        sa.Column("case_id", ident, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event", ident, nullable=False),
        sa.Column("occurred_at", time, nullable=False),
        sa.Column("data", text, nullable=False),
        sa.Column("prev_hash", digest, nullable=False),
        sa.Column("hash", digest, nullable=False),
        sa.PrimaryKeyConstraint("case_id", "version", name=t("events_pkey") if named else None),
        sa.CheckConstraint("version > 0", name=t("events_version_check") if named else None),
        schema=schema,
        sqlite_with_rowid=False,
        **options,
    )

    op.create_table(
        t("refusals"),
        sa.Column("seq", names.seq(), nullable=False, autoincrement=True),
        sa.Column("case_id", ident, nullable=False),
        sa.Column("at", time, nullable=False),
        sa.Column("data", text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=t("refusals_pkey") if named else None),
        schema=schema,
        sqlite_autoincrement=True,
        **options,
    )
    op.create_index(t("refusals_by_case"), t("refusals"), ["case_id", "seq"], schema=schema)

    op.create_table(
        t("outbox"),
        sa.Column("seq", names.seq(), nullable=False, autoincrement=True),
        sa.Column("notification_id", names.long_text() if mysql else sa.Text(), nullable=False),
        sa.Column("case_id", ident, nullable=False),
        sa.Column("created_at", time, nullable=False),
        sa.Column("data", text, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", text),
        sa.Column("next_attempt_at", time),
        sa.Column("delivered_at", time),
        sa.PrimaryKeyConstraint("seq", name=t("outbox_pkey") if named else None),
        sa.UniqueConstraint("notification_id", name=t("outbox_notification_id_key") if named else None),
        schema=schema,
        sqlite_autoincrement=True,
        **options,
    )
    op.create_index(
        t("outbox_pending"),
        t("outbox"),
        ["seq"],
        schema=schema,
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    t = names.table
    schema = names.schema()
    for name in ("outbox", "refusals", "events", "cases"):
        op.drop_table(t(name), schema=schema)
