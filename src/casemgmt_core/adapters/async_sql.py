"""The SQL store for asyncio hosts, through SQLAlchemy's asyncio extension.

:class:`AsyncSQLStore` runs the very statements of :class:`~casemgmt_core.adapters.sql.SQLStore`
(each operation is written once, as :data:`~casemgmt_core.adapters.sql.Steps`) on an asyncio
driver: ``sqlite+aiosqlite``, ``postgresql+psycopg`` (psycopg's async connection) or
``mysql+aiomysql``. Awaiting one never blocks the event loop. Install ``casemgmt-core[async]``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any, Self, TypeVar

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from .._validation import check_identifier
from ..errors import CaseManagementError, InvalidData, StorageError
from ..events import Event
from ..model import Case
from ..ports import (
    DEFAULT_TENANT,
    CaseQuery,
    ChainReport,
    Commit,
    DuePage,
    DueQuery,
    Notification,
    Page,
    PendingNotification,
    Refusal,
)
from . import prepare_commit, prepare_notifications
from ._driver import CaseCache, Known, Rows, Run, WriteStatements
from ._schema import DEFAULT_PREFIX, store_tables
from .sql import (
    DEFAULT_CACHE_SIZE,
    SYNCHRONOUS,
    Steps,
    _check_cache_size,
    _check_sqlite_transactions,
    _Operations,
    _Shared,
)

__all__ = ["AsyncSQLStore", "async_engine"]

T = TypeVar("T")

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+aiomysql"}


class AsyncSQLStore(_Operations):
    """An asyncio :class:`~casemgmt_core.ports.CaseStore`: every method of
    :class:`~casemgmt_core.adapters.sql.SQLStore`, awaited.

    Build it with ``await AsyncSQLStore.open(url_or_engine, ...)``, which also creates or checks
    the tables. ``bind`` is a URL (``sqlite+aiosqlite:///cases.db``, ``postgresql+psycopg://…``;
    ``sqlite:///…``, ``postgresql://…`` and ``mysql://…`` get the asyncio driver), the host's
    :class:`~sqlalchemy.ext.asyncio.AsyncEngine`, or, through :meth:`using`, the host's
    :class:`~sqlalchemy.ext.asyncio.AsyncConnection` and its transaction.
    """

    def __init__(
        self, shared: _Shared, engine: AsyncEngine, tenant_id: str, connection: AsyncConnection | None
    ):
        self._shared = shared
        self._engine = engine
        self.tenant_id = tenant_id
        self._connection = connection

    @classmethod
    async def open(
        cls,
        bind: str | AsyncEngine,
        *,
        tenant: str = DEFAULT_TENANT,
        table_prefix: str = DEFAULT_PREFIX,
        schema: str | None = None,
        create_tables: bool = True,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Self:
        tenant_id = check_identifier(tenant, "tenant")
        if type(create_tables) is not bool:
            raise InvalidData("must be True or False", field="create_tables")
        tables = store_tables(table_prefix, schema)
        if isinstance(bind, AsyncEngine):
            engine, owns = bind, False
        elif isinstance(bind, str):
            engine, owns = _async_engine(bind, synchronous, busy_timeout_ms), True
        else:
            raise InvalidData(
                f"cannot store in a {type(bind).__name__}",
                field="bind",
                allowed="a database URL or an AsyncEngine",
            )
        shared = _Shared(
            None,
            owns,
            tables,
            engine.dialect.name,
            contextlib.nullcontext(),
            WriteStatements.build(tables, engine.dialect),
            CaseCache(_check_cache_size(cache_size)),
            where=engine.url.render_as_string(hide_password=True),
        )
        store = cls(shared, engine, tenant_id, None)
        try:
            await store._prepare(create_tables)
        except BaseException:
            if owns:
                await engine.dispose()
            raise
        return store

    async def _prepare(self, create: bool) -> None:
        from .migrations import ensure_schema

        async with self._translate(), self._engine.connect() as conn:
            conn = await conn.execution_options(casemgmt_write=True)
            async with conn.begin():
                await conn.run_sync(lambda sync: ensure_schema(sync, self._shared.tables, create=create))

    # -- tenants, host transactions, lifetime ----------------------------------------------------

    def for_tenant(self, tenant_id: str) -> Self:
        return type(self)(
            self._shared, self._engine, check_identifier(tenant_id, "tenant_id"), self._connection
        )

    def using(self, connection: AsyncConnection) -> Self:
        """This store inside the host's transaction on ``connection`` (a savepoint per write)."""
        if not isinstance(connection, AsyncConnection):
            raise InvalidData(
                f"expected an AsyncConnection, not {type(connection).__name__}", field="connection"
            )
        if self._shared.dialect == "sqlite" and connection.sync_connection is not None:
            _check_sqlite_transactions(connection.sync_connection)
        return type(self)(self._shared, self._engine, self.tenant_id, connection)

    async def close(self) -> None:
        if not self._shared.closed:
            self._shared.closed = True
            if self._shared.owns_engine:
                await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._shared.where!r}, tenant={self.tenant_id!r})"

    # -- plumbing ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _translate(self) -> AsyncIterator[None]:
        try:
            yield
        except CaseManagementError:
            raise
        except sa_exc.SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            text = " ".join(str(orig).strip().splitlines())[:1000]
            raise StorageError(f"{self._shared.dialect}: {type(orig).__name__}: {text}") from orig
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise StorageError(f"a stored value cannot be read: {str(exc)[:300]}") from None

    async def _run(self, steps: Steps[T], *, write: bool = False) -> T:
        if self._shared.closed:
            raise StorageError(f"the store for {self._shared.where!r} is closed")
        async with self._translate():
            if self._connection is not None:
                if write:
                    async with self._connection.begin_nested():
                        return await _drive(self._connection, steps)
                return await _drive(self._connection, steps)
            async with self._engine.connect() as conn:
                if write:
                    conn = await conn.execution_options(casemgmt_write=True)
                    if self._shared.dialect in ("mysql", "mariadb"):
                        conn = await conn.execution_options(isolation_level="READ COMMITTED")
                elif self._shared.dialect == "postgresql":
                    conn = await conn.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                async with conn.begin():
                    return await _drive(conn, steps)

    # -- the store --------------------------------------------------------------------------------

    async def commit(self, commit: Commit) -> None:
        key, known = self._known(commit)
        c = prepare_commit(commit, previous=None if known is None else known.checked)
        try:
            head = await self._run(self._commit(c, known), write=True)
        except StorageError as exc:
            self._shared.cache.drop(key)
            try:
                explained = await self._run(self._explain(c))
            except StorageError:
                raise exc from None
            raise (explained or exc) from exc
        except BaseException:
            self._shared.cache.drop(key)
            raise
        self._remember(key, Known(c.version, head, commit.case, c.checked, c.deadlines))

    async def load(self, case_id: str) -> Case:
        known: Known = await self._run(self._load(case_id))
        self._remember((self.tenant_id, case_id), known)
        return known.case

    def cached_case(self, case_id: str) -> Case | None:
        """See :meth:`SQLStore.cached_case <casemgmt_core.adapters.sql.SQLStore.cached_case>` (no I/O)."""
        check_identifier(case_id, "case_id")
        known = self._shared.cache.get((self.tenant_id, case_id))
        return None if known is None else known.case

    async def events(self, case_id: str, *, after_version: int = 0) -> Sequence[Event]:
        return await self._run(self._events(case_id, after_version))

    async def active_case_for_household(self, household_id: str) -> str | None:
        return await self._run(self._active_case(household_id))

    async def find(self, query: CaseQuery) -> Page:
        return await self._run(self._find(query))

    async def due(self, query: DueQuery) -> DuePage:
        return await self._run(self._due(query))

    async def record_refusal(self, refusal: Refusal) -> None:
        await self._run(self._record_refusal(refusal), write=True)

    async def refusals(self, case_id: str) -> Sequence[Refusal]:
        return await self._run(self._refusals(case_id))

    async def enqueue(self, notifications: Sequence[Notification]) -> int:
        rows = prepare_notifications(notifications, "notifications")
        return await self._run(self._insert_outbox(rows), write=True)

    async def pending_notifications(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> Sequence[PendingNotification]:
        return await self._run(self._pending(now, limit))

    async def mark_delivered(self, notification_id: str, at: dt.datetime) -> None:
        await self._run(self._mark_delivered(notification_id, at), write=True)

    async def mark_failed(self, notification_id: str, *, error: str, retry_at: dt.datetime) -> None:
        await self._run(self._mark_failed(notification_id, error, retry_at), write=True)

    async def notification_delivered_at(self, notification_id: str) -> dt.datetime | None:
        return await self._run(self._delivered_at(notification_id))

    async def verify(self, case_id: str | None = None) -> ChainReport:
        return await self._run(self._verify(case_id))


def async_engine(url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 5000) -> AsyncEngine:
    """An asyncio engine for ``url`` set up as the store needs it, for a host to share: on SQLite,
    WAL mode and transactions begun by SQLAlchemy (``BEGIN IMMEDIATE`` for the store's writes), without
    which the driver's own transaction handling breaks the savepoints of :meth:`AsyncSQLStore.using`."""
    return _async_engine(url, synchronous, busy_timeout_ms)


async def _drive(conn: AsyncConnection, steps: Steps[T]) -> T:
    result: Any = None
    try:
        while True:
            statement = steps.send(result)
            if isinstance(statement, Run):
                found = await conn.exec_driver_sql(statement.statement.sql, statement.parameters)
                result = Rows([tuple(r) for r in found] if found.returns_rows else [], found.rowcount)
            else:
                result = await conn.execute(statement)
    except StopIteration as done:
        value: T = done.value
        return value


def _async_engine(url: str, synchronous: str, busy_timeout_ms: int) -> AsyncEngine:
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        raise InvalidData("is not a database URL", field="url") from None
    backend = parsed.get_backend_name()
    if "+" not in parsed.drivername and backend in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[backend])
    options: dict[str, Any] = {"hide_parameters": True}
    if backend != "sqlite":
        options["pool_pre_ping"] = True
    elif parsed.database in (None, "", ":memory:"):
        options["poolclass"] = StaticPool  # one in-memory database, not one per connection
    mode = synchronous.upper() if isinstance(synchronous, str) else ""
    if mode not in SYNCHRONOUS:
        raise InvalidData(
            f"unknown setting {synchronous!r}", field="synchronous", allowed=", ".join(SYNCHRONOUS)
        )
    if type(busy_timeout_ms) is not int or busy_timeout_ms < 0:
        raise InvalidData(f"must be 0 or more milliseconds, not {busy_timeout_ms!r}", field="busy_timeout_ms")
    try:
        engine = create_async_engine(parsed, **options)
    except ImportError as exc:
        raise StorageError(
            f"the asyncio driver for {backend} is not installed ({exc.name}): install casemgmt-core[async]"
        ) from None
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ValueError, TypeError) as exc:
        raise InvalidData(f"cannot open a store for this URL: {type(exc).__name__}", field="url") from None
    if backend == "sqlite":
        memory = parsed.database in (None, "", ":memory:")

        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, _record: object) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {mode}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            write = connection.get_execution_options().get("casemgmt_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
