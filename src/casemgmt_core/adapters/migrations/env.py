"""Alembic's environment for the store's migrations.

Run only through :mod:`casemgmt_core.adapters.migrations` (``upgrade``, ``upgrade_sql``,
``ensure_schema``), which put in ``config.attributes``: ``connection`` (online) or
``dialect_name`` (offline), and ``table_prefix`` and ``schema``. The revision is recorded in
``{table_prefix}alembic_version`` in the same schema, so a host's own Alembic history in the
same database is never touched.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from casemgmt_core.adapters.migrations.names import PREFIX_OPTION, SCHEMA_OPTION


def _run() -> None:
    config = context.config
    attributes = config.attributes
    prefix: str = attributes["table_prefix"]
    schema: str | None = attributes["schema"]
    options: dict[str, Any] = {
        "version_table": f"{prefix}alembic_version",
        "version_table_schema": schema,
        PREFIX_OPTION: prefix,
        SCHEMA_OPTION: schema,
    }
    connection = attributes.get("connection")
    if connection is None:
        context.configure(
            dialect_name=attributes["dialect_name"],
            literal_binds=True,
            render_as_batch=True,
            **options,
        )
    else:
        context.configure(connection=connection, render_as_batch=True, **options)
    with context.begin_transaction():
        context.run_migrations()


_run()
