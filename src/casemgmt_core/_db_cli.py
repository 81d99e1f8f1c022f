"""``casemgmt db``: create, upgrade and inspect the SQL stores' tables.

- ``casemgmt db upgrade URL [--prefix P] [--schema S] [--revision R]``
- ``casemgmt db current URL [--prefix P] [--schema S]`` prints the revision, or ``none``
- ``casemgmt db sql --dialect sqlite|postgresql|mariadb [--prefix P] [--schema S] [--from-revision R]``
  prints the DDL for a DBA to apply

URLs are SQLAlchemy database URLs (``sqlite:///cases.db``, ``postgresql://…``,
``mysql://…``/``mariadb://…``); a password in one is never printed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import InvalidData, StorageError

__all__ = ["add_db_parser"]

_DIALECTS = ("sqlite", "postgresql", "mariadb", "mysql")


def add_db_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``db`` and its subcommands to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    Each subcommand sets ``handler``: called with the parsed arguments, it prints to standard
    output and returns the exit status; a failure raises :class:`~casemgmt_core.StorageError` or
    :class:`~casemgmt_core.InvalidData` (whose messages never hold a password).
    """
    from .adapters._schema import DEFAULT_PREFIX

    db: argparse.ArgumentParser = subparsers.add_parser(
        "db", help="create, upgrade and inspect the SQL store's tables", description=__doc__.split("\n\n")[0]
    )
    commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)

    def layout(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--prefix", default=DEFAULT_PREFIX, help=f"table name prefix (default {DEFAULT_PREFIX!r})"
        )
        parser.add_argument("--schema", default=None, help="database schema (default: the connection's)")

    upgrade = commands.add_parser("upgrade", help="create or upgrade the tables (0.1 stores: --prefix '')")
    upgrade.add_argument("url", help="database URL")
    layout(upgrade)
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    upgrade.set_defaults(handler=_upgrade)

    current = commands.add_parser("current", help="print the tables' revision, or 'none'")
    current.add_argument("url", help="database URL")
    layout(current)
    current.set_defaults(handler=_current)

    sql = commands.add_parser("sql", help="print the DDL that creates or upgrades the tables")
    sql.add_argument("--dialect", required=True, choices=_DIALECTS)
    layout(sql)
    sql.add_argument("--from-revision", default=None, help="the database's revision (default: empty)")
    sql.set_defaults(handler=_sql)
    return db


def _engine(url: str) -> Any:
    from sqlalchemy import create_engine, make_url
    from sqlalchemy import exc as sa_exc

    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        raise InvalidData("is not a database URL", field="url") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{backend}+pymysql")
    options: dict[str, Any] = {"hide_parameters": True}
    if backend in ("mysql", "mariadb"):
        options["connect_args"] = {"charset": "utf8mb4"}
    shown = parsed.render_as_string(hide_password=True)
    try:
        return create_engine(parsed, **options), shown
    except ImportError as exc:
        raise StorageError(f"the driver for {shown} is not installed ({exc.name})") from None
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ValueError, TypeError) as exc:
        raise InvalidData(f"cannot use this URL: {type(exc).__name__}", field="url") from None


def _upgrade(args: argparse.Namespace) -> int:
    from .adapters import migrations

    engine, shown = _engine(args.url)
    try:
        migrations.upgrade(engine, table_prefix=args.prefix, schema=args.schema, revision=args.revision)
        found = migrations.current(engine, table_prefix=args.prefix, schema=args.schema)
    finally:
        engine.dispose()
    print(f"{shown}: at revision {found}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from .adapters import migrations

    engine, _shown = _engine(args.url)
    try:
        found = migrations.current(engine, table_prefix=args.prefix, schema=args.schema)
    finally:
        engine.dispose()
    print(found or "none")
    return 0


def _sql(args: argparse.Namespace) -> int:
    from .adapters import migrations

    sys.stdout.write(
        migrations.upgrade_sql(
            args.dialect, table_prefix=args.prefix, schema=args.schema, from_revision=args.from_revision
        )
    )
    return 0
