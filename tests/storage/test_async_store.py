"""The asyncio store and manager: the contract suite through a bridge, and concurrency on the event loop.

:class:`AsyncSQLStore` runs the statements of the blocking store on asyncio drivers (aiosqlite,
psycopg's async connection, aiomysql). The whole contract suite runs against it through a small
bridge that awaits each call on a loop in another thread; the tests below it check what only an
asyncio store can get wrong: many requests in flight on one loop, a loop that keeps running while
the database works, and races between coroutines.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
import sqlalchemy as sa

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.adapters.async_sql import AsyncSQLStore
from casemgmt_core.adapters.memory import InMemoryStore
from casemgmt_core.adapters.sql import SQLStore
from casemgmt_core.errors import ConcurrencyConflict, InvalidData
from casemgmt_core.ports import CaseStore
from casemgmt_core.testing import T0, CaseStoreContract, household, open_commit
from casemgmt_core.testing.postgres import temporary_schema

T = TypeVar("T")


class _Loop:
    """An event loop in a thread of its own, so that blocking tests can await on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class _Bridge:
    """The blocking face of an :class:`AsyncSQLStore`, for the shared contract suite."""

    def __init__(self, store: AsyncSQLStore, loop: _Loop) -> None:
        self._store = store
        self._loop = loop
        self.tenant_id = store.tenant_id

    def for_tenant(self, tenant_id: str) -> _Bridge:
        return _Bridge(self._store.for_tenant(tenant_id), self._loop)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method: Callable[..., Awaitable[Any]] = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(method(*args, **kwargs))  # type: ignore[arg-type]

        return call


for _name in ("commit", "load", "events", "active_case_for_household", "find", "due", "record_refusal",
              "refusals", "enqueue", "pending_notifications", "mark_delivered", "mark_failed",
              "notification_delivered_at", "verify", "close"):  # fmt: skip
    # The protocol check looks for the methods on the class.
    setattr(_Bridge, _name, property(lambda self, n=_name: self.__getattr__(n)))


@pytest.fixture(scope="module")
def loop() -> Iterator[_Loop]:
    running = _Loop()
    yield running
    running.close()


def _blocking_url(url: str) -> str:
    """The same database through a blocking driver."""
    for asyncio_driver, blocking in (("+aiosqlite", ""), ("+aiomysql", "+pymysql")):
        url = url.replace(asyncio_driver, blocking, 1)
    return url  # psycopg serves both


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def async_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/cases.db"
    elif request.param == "postgresql":
        server: str = request.getfixturevalue("postgres_url")
        # A schema of the test's own, chosen through the connection's search path.
        with temporary_schema(server) as conninfo:
            schema = re.search(r"search_path=(\w+)", conninfo)
            assert schema is not None
            options = quote(f"-csearch_path={schema.group(1)}")
            yield server.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options={options}"
    else:
        url: str = request.getfixturevalue("mariadb_database")
        yield url.replace("mysql+pymysql://", "mysql+aiomysql://", 1)


class TestAsyncSQLStore(CaseStoreContract):
    """The whole contract on SQLite (the statements are the blocking store's, which runs it on
    every database); the asyncio drivers of the others are exercised by the tests below."""

    @pytest.fixture
    def store(self, tmp_path: Path, loop: _Loop) -> Iterator[CaseStore]:
        async_url = f"sqlite+aiosqlite:///{tmp_path}/cases.db"
        self.url = async_url
        self.loop = loop
        self.opened: list[AsyncSQLStore] = []
        opened = loop.run(AsyncSQLStore.open(async_url))
        self.opened.append(opened)
        yield _Bridge(opened, loop)  # type: ignore[misc]
        for store in self.opened:
            loop.run(store.close())

    def reopen(self, store: CaseStore) -> CaseStore:
        again = self.loop.run(AsyncSQLStore.open(self.url))
        self.opened.append(again)
        return _Bridge(again, self.loop)  # type: ignore[return-value]

    # Tampering behind the store's back, through a blocking connection to the same tables.

    def _rewrite(self, table_name: str, where: dict[str, Any], edit: Callable[[str], str]) -> None:
        tables = self.opened[0].tables
        table: sa.Table = getattr(tables, table_name)
        engine = sa.create_engine(_blocking_url(self.url))
        key = sa.and_(*(table.c[k] == v for k, v in where.items()))
        with engine.begin() as conn:
            text = conn.execute(sa.select(table.c.data).where(key)).scalar_one()
            conn.execute(table.update().where(key).values(data=edit(text)))
        engine.dispose()

    def _execute(self, make: Callable[[Any], Any]) -> None:
        engine = sa.create_engine(_blocking_url(self.url))
        with engine.begin() as conn:
            conn.execute(make(self.opened[0].tables))
        engine.dispose()

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        self._rewrite(
            "events",
            {"case_id": case_id, "version": version},
            lambda t: t.replace('"note":""', '"note":"edited"'),
        )

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        self._execute(
            lambda t: t.events.delete().where(t.events.c.case_id == case_id, t.events.c.version == version)
        )

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        for old, new in ((a, 1_000_000), (b, a), (1_000_000, b)):
            self._execute(
                lambda t, old=old, new=new: (
                    t.events.update()
                    .where(t.events.c.case_id == case_id, t.events.c.version == old)
                    .values(version=new)
                )
            )

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        self._rewrite(
            "cases",
            {"case_id": case_id},
            lambda t: t.replace('"caseworker_id":"cw-1"', '"caseworker_id":"cw-9"'),
        )


# -- the manager on the event loop -------------------------------------------------------------

WORKER = cm.Actor("w-1", "caseworker")


def _opened(manager: cm.AsyncCaseManager, case_id: str) -> Awaitable[cm.Case]:
    referral = cm.Referral(cm.ReferralChannel.WALK_IN, T0)
    return manager.open_case(household(f"H-{case_id}"), referral, actor=WORKER, case_id=case_id)


def test_concurrent_requests_on_one_loop_all_commit(async_url: str) -> None:
    async def scenario() -> None:
        store = await AsyncSQLStore.open(async_url)
        manager = cm.AsyncCaseManager(store, clock=lambda: T0)
        ticks = 0
        stop = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        await asyncio.gather(*(_opened(manager, f"C{i:02d}") for i in range(12)))
        await asyncio.gather(*(manager.handle(f"C{i:02d}", c.StartIntake(), actor=WORKER) for i in range(12)))
        stop.set()
        await beat
        page = await manager.find(cm.CaseQuery(state=cm.CaseState.INTAKE, limit=100))
        assert [x.case_id for x in page.items] == [f"C{i:02d}" for i in range(12)]
        assert all(x.version == 2 for x in page.items)
        assert (await store.verify()).ok
        # The loop ran other work while the database did: nothing blocked it throughout.
        assert ticks > 24
        await store.close()

    asyncio.run(scenario())


def test_two_coroutines_writing_one_case_one_wins(async_url: str) -> None:
    async def scenario() -> None:
        store = await AsyncSQLStore.open(async_url)
        first = open_commit("C1")
        results = await asyncio.gather(store.commit(first), store.commit(first), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], ConcurrencyConflict), results
        assert len(await store.events("C1")) == 1
        assert (await store.verify()).ok
        await store.close()

    asyncio.run(scenario())


def test_the_async_manager_behaves_as_the_blocking_one(tmp_path: Path) -> None:
    async def journey(manager: cm.AsyncCaseManager) -> list[str]:
        await _opened(manager, "C1")
        await manager.handle("C1", c.StartIntake(), actor=WORKER)
        with pytest.raises(cm.UnknownCommand):
            await manager.handle("C1", c.StartIntake(), actor=WORKER)
        return [e.event for e in await manager.history("C1")]

    blocking = cm.CaseManager(InMemoryStore(), clock=lambda: T0)
    blocking.open_case(
        household("H-C1"), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=WORKER, case_id="C1"
    )
    blocking.handle("C1", c.StartIntake(), actor=WORKER)
    with pytest.raises(cm.UnknownCommand):
        blocking.handle("C1", c.StartIntake(), actor=WORKER)

    async def run() -> None:
        store = await AsyncSQLStore.open(f"sqlite+aiosqlite:///{tmp_path}/a.db")
        manager = cm.AsyncCaseManager(store, clock=lambda: T0)
        events = await journey(manager)
        assert events == [e.event for e in blocking.history("C1")]
        assert [r.code for r in await manager.refusals("C1")] == [r.code for r in blocking.refusals("C1")]
        assert (await manager.get("C1")) == blocking.get("C1")
        assert await manager.due(T0) == blocking.due(T0)
        await store.close()

    asyncio.run(run())


def test_the_async_manager_refuses_a_blocking_sql_store(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path}/a.db")
    with pytest.raises(InvalidData, match="event loop") as caught:
        cm.AsyncCaseManager(store)  # type: ignore[arg-type]
    assert caught.value.field == "store"
    store.close()


def test_the_async_store_writes_in_the_hosts_transaction(tmp_path: Path) -> None:
    from casemgmt_core.adapters.async_sql import async_engine

    async def run() -> None:
        # A host's SQLite engine set up as the store's own (see async_engine).
        engine = async_engine(f"sqlite+aiosqlite:///{tmp_path}/host.db")
        store = await AsyncSQLStore.open(engine)
        host = sa.Table("host_rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
        async with engine.begin() as conn:
            await conn.run_sync(host.metadata.create_all)

        async def fails_after_both_wrote() -> None:
            async with engine.begin() as conn:
                await store.using(conn).commit(open_commit("C1"))
                await conn.execute(host.insert().values(id=1))
                raise RuntimeError("the host fails after both wrote")

        with pytest.raises(RuntimeError):
            await fails_after_both_wrote()
        with pytest.raises(cm.CaseNotFound):
            await store.load("C1")
        async with engine.begin() as conn:
            await store.using(conn).commit(open_commit("C1"))
            await conn.execute(host.insert().values(id=1))
        assert (await store.load("C1")).version == 1
        async with engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(host))).scalar() == 1
        await store.close()
        await engine.dispose()

    asyncio.run(run())
