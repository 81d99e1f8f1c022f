"""A PostgreSQL store through ``psycopg`` 3 (install ``casemgmt-core[postgresql]``).

:class:`PostgresStore` takes a libpq connection string or URL; a host with its own SQLAlchemy
engine passes that to :class:`~casemgmt_core.adapters.sql.SQLStore` instead. Concurrent writers of
one case queue on its row lock (``SELECT … FOR UPDATE``) and all but the first get
:class:`~casemgmt_core.ConcurrencyConflict`; the database enforces one live case per household and
tenant, and unique event versions per case, across every process and server using it.

Tables go into ``schema`` if given, else into the first schema of the connection's
``search_path``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import create_engine

from ..errors import InvalidData
from ..ports import DEFAULT_TENANT
from ._schema import DEFAULT_PREFIX
from .sql import DEFAULT_CACHE_SIZE, SQLStore

__all__ = ["PostgresStore"]


class PostgresStore(SQLStore):
    """A :class:`~casemgmt_core.ports.CaseStore` in a PostgreSQL database.

    ``conninfo`` is a libpq URL or ``key=value`` string. The store keeps a small pool of
    connections (``pool_size``), shared by threads; a connection lost between operations is
    replaced. The other arguments are :class:`~casemgmt_core.adapters.sql.SQLStore`'s.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        tenant: str = DEFAULT_TENANT,
        table_prefix: str = DEFAULT_PREFIX,
        schema: str | None = None,
        create_tables: bool = True,
        pool_size: int = 5,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not isinstance(conninfo, str) or not conninfo:
            raise InvalidData("must be a libpq connection string or URL", field="conninfo")
        if type(pool_size) is not int or not 1 <= pool_size <= 100:
            raise InvalidData("must be a whole number from 1 to 100", field="pool_size")

        def connect() -> Any:
            return psycopg.connect(conninfo)

        engine = create_engine(
            "postgresql+psycopg://",
            creator=connect,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_size=pool_size,
        )
        try:
            super().__init__(
                engine,
                tenant=tenant,
                table_prefix=table_prefix,
                schema=schema,
                create_tables=create_tables,
                cache_size=cache_size,
            )
        except BaseException:
            engine.dispose()
            raise
        self._shared.owns_engine = True
