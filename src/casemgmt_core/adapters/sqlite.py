"""The embedded default store: one SQLite file.

Durability and concurrency: the database runs in WAL mode; every write is one ``BEGIN
IMMEDIATE`` transaction (so writers queue on the database lock, waiting up to the busy timeout,
instead of failing half-way); ``synchronous=FULL`` by default, so a committed transition
survives a power cut. Several processes may share one file. The database itself enforces that a
household has at most one live case and that event versions are unique per case. Driver errors
become :class:`~casemgmt_core.StorageError`.
"""

from __future__ import annotations

import os

from ..ports import DEFAULT_TENANT
from ._schema import DEFAULT_PREFIX
from .sql import DEFAULT_CACHE_SIZE, SQLStore, sqlite_engine

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLStore):
    """A :class:`~casemgmt_core.ports.CaseStore` in a SQLite database file.

    ``path`` is a file path (created if missing) or ``":memory:"``. ``synchronous`` is SQLite's
    setting (``FULL`` keeps every commit through a power cut; ``NORMAL`` in WAL mode may lose the
    last commits, never consistency). ``busy_timeout_ms`` is how long a write waits for another
    writer before :class:`~casemgmt_core.StorageError`. One store object may be used from several
    threads (each takes a connection from the pool); each process opens its own. The other
    arguments are :class:`~casemgmt_core.adapters.sql.SQLStore`'s.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        tenant: str = DEFAULT_TENANT,
        table_prefix: str = DEFAULT_PREFIX,
        create_tables: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        engine = sqlite_engine(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        self.path = os.fspath(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = busy_timeout_ms
        try:
            super().__init__(
                engine,
                tenant=tenant,
                table_prefix=table_prefix,
                create_tables=create_tables,
                cache_size=cache_size,
            )
        except BaseException:
            engine.dispose()
            raise
        self._shared.owns_engine = True
