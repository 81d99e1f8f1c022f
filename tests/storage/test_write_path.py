"""The SQL store's write path on SQLite, PostgreSQL and MariaDB: the cases it remembers, the
conditional update that trusts them only while the row is where the store left it, and the
manager deciding on a remembered case without ever letting a stale one decide the verdict."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine, create_engine, text

import casemgmt_core as cm
from casemgmt_core.adapters.sql import SQLStore, sqlite_engine
from casemgmt_core.commands import RecordIntakeFindings, RecordJournal, StartIntake
from casemgmt_core.errors import ConcurrencyConflict, InvalidData, UnknownCommand
from casemgmt_core.model import JournalKind
from casemgmt_core.schedule import deadlines
from casemgmt_core.testing import ACTOR, T0, follow, household, open_commit


def _manager(store: SQLStore) -> cm.CaseManager:
    return cm.CaseManager(store, clock=lambda: T0 + dt.timedelta(hours=1))


def _opened(store: SQLStore, case_id: str = "C1") -> cm.Case:
    return _manager(store).open_case(
        household(f"H-{case_id}"), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=ACTOR, case_id=case_id
    )


def _counting(store: SQLStore) -> list[str]:
    """Replace ``store.load`` by one that records each case id it loads."""
    loads: list[str] = []
    load = store.load

    def counted(case_id: str) -> cm.Case:
        loads.append(case_id)
        return load(case_id)

    store.load = counted  # type: ignore[method-assign]
    return loads


def _rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def test_the_manager_decides_on_the_case_the_store_wrote_without_loading_it(engine: Engine) -> None:
    store = SQLStore(engine)
    opened = _opened(store)
    loads = _counting(store)
    manager = _manager(store)
    after = manager.handle("C1", StartIntake(), actor=ACTOR)
    after = manager.handle("C1", RecordJournal(JournalKind.CONTACT, "전화 상담"), actor=ACTOR)
    assert loads == []
    assert after.version == opened.version + 2
    assert store.cached_case("C1") is after
    # What was remembered is what is stored.
    assert SQLStore(engine).load("C1") == after
    assert store.verify().ok


def test_a_remembered_case_behind_the_database_is_decided_again_on_the_stored_one(engine: Engine) -> None:
    first, second = SQLStore(engine), SQLStore(engine)
    _opened(first)
    _manager(first).handle("C1", StartIntake(), actor=ACTOR)
    # Another process moves the case on; the first store still remembers version 2.
    _manager(second).handle("C1", RecordJournal(JournalKind.CONTACT, "방문"), actor=ACTOR)
    loads = _counting(first)
    after = _manager(first).handle("C1", RecordJournal(JournalKind.CONTACT, "통화"), actor=ACTOR)
    assert loads == ["C1"]
    assert after.version == 4
    assert [e.event for e in first.events("C1")] == [
        "open",
        "start_intake",
        "record_journal",
        "record_journal",
    ]
    assert first.refusals("C1") == ()
    assert first.verify().ok


def test_a_command_the_stale_case_would_refuse_is_decided_on_the_stored_one(engine: Engine) -> None:
    first, second = SQLStore(engine), SQLStore(engine)
    _opened(first)  # remembered as referred
    _manager(second).handle("C1", StartIntake(), actor=ACTOR)  # stored: in intake
    after = _manager(first).handle("C1", RecordIntakeFindings(wanted_change="일자리"), actor=ACTOR)
    assert after.state is cm.CaseState.INTAKE
    assert after.version == 3
    # The refusal the stale case would have given was never the verdict, nor recorded.
    assert first.refusals("C1") == ()


def test_a_command_the_stale_case_would_allow_is_refused_on_the_stored_one_once(engine: Engine) -> None:
    first, second = SQLStore(engine), SQLStore(engine)
    _opened(first)  # remembered as referred: start_intake would apply
    _manager(second).handle("C1", StartIntake(), actor=ACTOR)
    with pytest.raises(UnknownCommand):
        _manager(first).handle("C1", StartIntake(), actor=ACTOR)
    refusals = first.refusals("C1")
    assert [r.event for r in refusals] == ["start_intake"]
    assert SQLStore(engine).load("C1").version == 2


def test_a_host_transaction_that_rolls_back_leaves_nothing_remembered(engine: Engine) -> None:
    store = SQLStore(engine)
    opened = _opened(store)
    with engine.connect() as conn, conn.begin() as tx:
        _manager(store.using(conn)).handle("C1", StartIntake(), actor=ACTOR)
        tx.rollback()
    assert store.cached_case("C1") is None
    after = _manager(store).handle("C1", StartIntake(), actor=ACTOR)
    assert after.version == opened.version + 1
    assert store.verify().ok


def test_a_row_rewritten_behind_the_store_is_a_conflict_not_a_continuation(engine: Engine) -> None:
    store = SQLStore(engine)
    store.commit(commit := open_commit("C1"))
    opened = commit.case
    # The row is at the version the store left it at, but not with the head it wrote.
    with engine.begin() as conn:
        conn.execute(text("UPDATE casemgmt_cases SET head_hash = :h WHERE case_id = 'C1'"), {"h": "f" * 64})
    with pytest.raises(ConcurrencyConflict) as caught:
        store.commit(follow(opened, StartIntake()))
    assert caught.value.expected_version == 1
    assert store.cached_case("C1") is None
    assert _rows(engine, "SELECT count(*) FROM casemgmt_events WHERE case_id = 'C1'") == [(1,)]


def test_deadlines_are_rewritten_only_when_they_change(engine: Engine) -> None:
    store = SQLStore(engine)
    _opened(store)
    manager = _manager(store)
    query = "SELECT kind, subject, due_at FROM casemgmt_deadlines WHERE case_id = 'C1' ORDER BY kind"
    case = manager.handle("C1", StartIntake(), actor=ACTOR)
    assert [r[:2] for r in _rows(engine, query)] == sorted(
        (d.kind.value, d.subject) for d in deadlines(case, cm.DEFAULT_POLICY)
    )
    # A mark on the stored rows shows whether the next commit writes them again.
    with engine.begin() as conn:
        conn.execute(text("UPDATE casemgmt_deadlines SET subject = 'marked' WHERE case_id = 'C1'"))
    marked = _rows(engine, query)
    manager.handle("C1", RecordJournal(JournalKind.NEW_FINDING, "메모"), actor=ACTOR)
    assert _rows(engine, query) == marked  # the same deadlines: left as they were
    # A contact moves the no-contact deadline: every row is written again.
    later = cm.CaseManager(store, clock=lambda: T0 + dt.timedelta(days=3))
    case = later.handle("C1", RecordJournal(JournalKind.CONTACT, "통화"), actor=ACTOR)
    assert [r[:2] for r in _rows(engine, query)] == sorted(
        (d.kind.value, d.subject) for d in deadlines(case, cm.DEFAULT_POLICY)
    )


@pytest.mark.parametrize("size", [True, -1, "5", 1.0, 10**7])
def test_a_cache_size_that_is_not_one_is_invalid_data(engine: Engine, size: object) -> None:
    with pytest.raises(InvalidData) as caught:
        SQLStore(engine, cache_size=size)  # type: ignore[arg-type]
    assert caught.value.field == "cache_size"


def test_a_store_remembers_at_most_cache_size_cases(engine: Engine) -> None:
    store = SQLStore(engine, cache_size=2)
    for case_id in ("C1", "C2", "C3"):
        _opened(store, case_id)
    assert store.cached_case("C1") is None
    assert store.cached_case("C2") is not None
    assert store.cached_case("C3") is not None
    nothing = SQLStore(engine, cache_size=0)
    nothing.load("C1")
    assert nothing.cached_case("C1") is None
    loads = _counting(nothing)
    _manager(nothing).handle("C1", StartIntake(), actor=ACTOR)
    assert loads == ["C1"]


def test_tenants_do_not_share_what_is_remembered(engine: Engine) -> None:
    store = SQLStore(engine)
    _opened(store)
    other = store.for_tenant("centre-2")
    assert other.cached_case("C1") is None
    with pytest.raises(cm.CaseNotFound):
        _manager(other).handle("C1", StartIntake(), actor=ACTOR)


def test_a_hosts_sqlite_engine_whose_driver_runs_transactions_is_refused(tmp_path: Any) -> None:
    # pysqlite's default transaction handling knows nothing of savepoints: the store's writes
    # would not commit or roll back with the host's. Said when the store is put in the host's
    # transaction, before anything is written.
    plain = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    store = SQLStore(sqlite_engine(tmp_path / "plain.db"))
    try:
        with plain.connect() as conn, conn.begin():
            with pytest.raises(InvalidData) as caught:
                store.using(conn)
            assert caught.value.field == "connection"
            assert "sqlite_engine" in (caught.value.allowed or "")
            with pytest.raises(InvalidData):
                SQLStore(conn)
    finally:
        store.close()
        plain.dispose()


def test_a_sqlite_engine_set_up_for_the_store_is_accepted_in_the_hosts_transaction(tmp_path: Any) -> None:
    engine = sqlite_engine(tmp_path / "host.db")
    store = SQLStore(engine)
    try:
        with engine.connect() as conn, conn.begin():
            _opened(store.using(conn))
        assert store.load("C1").version == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("case_id", [None, 5, "", " C1", "C\n1", "C" * 200, b"C1"])
def test_cached_case_checks_its_case_id(engine: Engine, case_id: object) -> None:
    store = SQLStore(engine)
    with pytest.raises(InvalidData) as caught:
        store.cached_case(case_id)  # type: ignore[arg-type]
    assert caught.value.field == "case_id"


@pytest.mark.parametrize("dialect_name", ["sqlite", "mysql"])
def test_each_statement_lays_out_its_parameters_as_the_columns_bind_them(dialect_name: str) -> None:
    # The dialects whose drivers take parameters by position (psycopg takes them by name).
    from sqlalchemy.dialects import mysql, sqlite

    from casemgmt_core.adapters._driver import WriteStatements
    from casemgmt_core.adapters._schema import store_tables

    dialect = {"sqlite": sqlite, "mysql": mysql}[dialect_name].dialect()
    statements = WriteStatements.build(store_tables(), dialect)
    at = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    for name, statement in attrs.asdict(statements, recurse=False).items():
        assert statement.names, name
        values = {
            n: at if _takes_time(statement.processors.get(n)) else f"{name}-{n}" for n in statement.names
        }
        # By name, one parameter at a time, as SQLAlchemy itself binds them.
        expected = tuple(
            statement.processors[n](values[n]) if n in statement.processors else values[n]
            for n in statement.names
        )
        assert statement.parameters(values) == expected, name
    # The times are converted: the layout is not merely the values in order.
    assert any(statements.event_insert.processors)


def _takes_time(process: Any) -> bool:
    if process is None:
        return False
    try:
        process(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    except (AttributeError, TypeError, ValueError):
        return False
    return True
