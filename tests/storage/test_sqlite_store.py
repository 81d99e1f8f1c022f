"""The contract suite and SQLite-specific guarantees against :class:`SQLiteStore`."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from casemgmt_core import InvalidData, StorageError
from casemgmt_core.adapters import open_store
from casemgmt_core.adapters.memory import InMemoryStore
from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.commands import AssignCaseworker, StartIntake
from casemgmt_core.errors import CaseNotFound, DuplicateCase
from casemgmt_core.ports import CaseStore, ChainProblem, Notification, NotificationKind
from casemgmt_core.testing import T0, StoredRowsContract, follow, open_commit


def _path(store: CaseStore) -> str:
    assert isinstance(store, SQLiteStore)
    return store.path


def _raw(store: CaseStore, sql: str, *params: object) -> None:
    """Write behind the store's back, as another program with the file would."""
    with contextlib.closing(sqlite3.connect(_path(store))) as db, db:
        db.execute(sql, params)


def _rewrite(
    store: CaseStore, table: str, where: str, params: tuple[object, ...], edit: Callable[[str], str]
) -> None:
    with contextlib.closing(sqlite3.connect(_path(store))) as db, db:
        (text,) = db.execute(f"SELECT data FROM {table} WHERE {where}", params).fetchone()
        db.execute(f"UPDATE {table} SET data = ? WHERE {where}", (edit(text), *params))


class TestSQLiteStore(StoredRowsContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[CaseStore]:
        self.reopened: list[SQLiteStore] = []
        store = SQLiteStore(tmp_path / "cases.db")
        yield store
        for other in [store, *self.reopened]:
            other.close()

    def reopen(self, store: CaseStore) -> CaseStore:
        again = SQLiteStore(_path(store))
        self.reopened.append(again)
        return again

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            store,
            'UPDATE events SET data = replace(data, \'"note":""\', \'"note":"edited"\')'
            " WHERE case_id = ? AND version = ?",
            case_id,
            version,
        )

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(store, "DELETE FROM events WHERE case_id = ? AND version = ?", case_id, version)

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        for old, new in ((a, 1_000_000), (b, a), (1_000_000, b)):
            _raw(store, "UPDATE events SET version = ? WHERE case_id = ? AND version = ?", new, case_id, old)

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        _raw(
            store,
            'UPDATE cases SET data = replace(data, \'"caseworker_id":"cw-1"\', \'"caseworker_id":"cw-9"\')'
            " WHERE case_id = ?",
            case_id,
        )

    def rewrite_event(self, store: CaseStore, case_id: str, version: int, edit: Callable[[str], str]) -> None:
        _rewrite(store, "events", "case_id = ? AND version = ?", (case_id, version), edit)

    def rewrite_case(self, store: CaseStore, case_id: str, edit: Callable[[str], str]) -> None:
        _rewrite(store, "cases", "case_id = ?", (case_id,), edit)

    def delivered_at(self, store: CaseStore, notification_id: str) -> dt.datetime | None:
        with contextlib.closing(sqlite3.connect(_path(store))) as db:
            (value,) = db.execute(
                "SELECT delivered_at FROM outbox WHERE notification_id = ?", (notification_id,)
            ).fetchone()
        return None if value is None else dt.datetime.fromisoformat(value)


# -- SQLite specifics ------------------------------------------------------------------------


def test_the_database_is_in_wal_mode_with_the_chosen_durability(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db", synchronous="normal", busy_timeout_ms=1234)
    db = store._open()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
    full = SQLiteStore(tmp_path / "b.db")
    assert full._open().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidData, match="synchronous"):
        SQLiteStore(tmp_path / "a.db", synchronous="sometimes")
    with pytest.raises(InvalidData, match="busy_timeout_ms"):
        SQLiteStore(tmp_path / "a.db", busy_timeout_ms=-1)
    assert not (tmp_path / "a.db").exists()


def test_driver_errors_become_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open"):
        SQLiteStore(tmp_path / "missing-dir" / "a.db")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        SQLiteStore(tmp_path / "junk.db")
    store = SQLiteStore(tmp_path / "ok.db")
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.load("C1")


def test_a_failure_inside_the_transaction_rolls_everything_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    opened = open_commit("C1")
    store.commit(opened)
    # The outbox insert is the last write of a commit: make it fail after case and events.
    _raw(
        store,
        "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    )
    step = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
    with pytest.raises(StorageError, match="disk on fire"):
        store.commit(step)
    assert store.load("C1") == opened.case
    assert len(store.events("C1")) == 1
    assert store.verify().ok
    _raw(store, "DROP TRIGGER no_outbox")
    store.commit(step)
    assert store.load("C1") == step.case


def test_the_database_itself_allows_one_live_case_per_household(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.commit(open_commit("C1", "H1"))
    with pytest.raises(sqlite3.IntegrityError, match="household_id"):
        _raw(
            store,
            "INSERT INTO cases (case_id, household_id, state, version, head_hash, data)"
            " VALUES ('C2', 'H1', 'intake', 1, '', '{}')",
        )
    with pytest.raises(sqlite3.IntegrityError):
        _raw(
            store,
            "INSERT INTO events SELECT case_id, version, event, occurred_at, data, prev_hash, hash"
            " FROM events",
        )


def test_a_constraint_hit_by_another_writer_is_translated(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    # Another program wrote a live case for H1 that this store's own check cannot see as live
    # (an unknown state), so only the index can refuse: the error is still the library's.
    store.commit(open_commit("C1", "H1"))
    _raw(store, "DROP INDEX cases_one_live_per_household")
    _raw(store, "CREATE UNIQUE INDEX cases_one_live_per_household ON cases (household_id)")
    _raw(store, "UPDATE cases SET state = 'archived' WHERE case_id = 'C1'")
    with pytest.raises(DuplicateCase):
        store.commit(open_commit("C2", "H1"))


def test_an_unreadable_row_is_a_storage_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.commit(open_commit("C1"))
    _raw(store, "UPDATE cases SET data = '{\"nonsense\": 1}'")
    with pytest.raises(StorageError, match="case 'C1'"):
        store.load("C1")


def _three_cases(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "a.db")
    for case_id in ("C1", "C2", "C3"):
        opened = open_commit(case_id)
        store.commit(opened)
        store.commit(follow(opened.case, AssignCaseworker("cw-1"), StartIntake()))
    return store


def test_bytes_that_are_not_utf8_are_reported_not_raised_by_verify(tmp_path: Path) -> None:
    store = _three_cases(tmp_path)
    # A UTF-8-encoded surrogate (ED A0 80) is not UTF-8: another program wrote it as text.
    _raw(
        store,
        "UPDATE events SET data = CAST(X'7B226E6F7465223A22EDA080227D' AS TEXT)"
        " WHERE case_id = 'C1' AND version = 2",
    )
    _raw(store, "UPDATE cases SET data = CAST(X'EDA080' AS TEXT) WHERE case_id = 'C2'")
    with pytest.raises(StorageError):
        store.events("C1")
    with pytest.raises(StorageError):
        store.load("C2")
    report = store.verify()
    assert [(b.case_id, b.version, b.problem) for b in report.broken] == [
        ("C1", 2, ChainProblem.UNREADABLE),
        ("C2", 3, ChainProblem.SNAPSHOT),
    ]
    assert store.load("C3").version == 3


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET version = 'two' WHERE case_id = 'C1' AND version = 2",
        "UPDATE events SET data = X'7B7D' WHERE case_id = 'C1' AND version = 2",
        "UPDATE events SET data = 12 WHERE case_id = 'C1' AND version = 2",
        "UPDATE events SET prev_hash = X'00', hash = 7 WHERE case_id = 'C1' AND version = 2",
        "UPDATE cases SET version = 'three' WHERE case_id = 'C1'",
        "UPDATE cases SET data = X'7B7D', head_hash = 5 WHERE case_id = 'C1'",
    ],
)
def test_verify_reports_whatever_a_row_holds(tmp_path: Path, sql: str) -> None:
    store = _three_cases(tmp_path)
    _raw(store, sql)
    report = store.verify()
    assert [b.case_id for b in report.broken] == ["C1"]
    assert store.verify("C3").ok


def test_a_stored_time_that_is_not_one_is_a_storage_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.enqueue([Notification("n-1", NotificationKind.REMINDER, "C1", "C1/1", "w", T0)])
    store.mark_delivered("n-1", T0)
    _raw(store, "UPDATE outbox SET delivered_at = 'yesterday'")
    with pytest.raises(StorageError, match="timestamp"):
        store.notification_delivered_at("n-1")
    store.enqueue([Notification("n-2", NotificationKind.REMINDER, "C1", "C1/1", "w", T0)])
    _raw(store, "UPDATE outbox SET next_attempt_at = '2026-01-05T09:00:00' WHERE notification_id = 'n-2'")
    with pytest.raises(StorageError, match="timestamp"):
        store.pending_notifications()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "a.db").close()
    with contextlib.closing(sqlite3.connect(tmp_path / "a.db")) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StorageError, match="schema 99"):
        SQLiteStore(tmp_path / "a.db")


def test_store_is_usable_from_several_threads(tmp_path: Path) -> None:
    import threading

    store = SQLiteStore(tmp_path / "a.db")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            store.commit(open_commit(f"C{i}"))
            store.load(f"C{i}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.verify().cases_checked == 8


# -- open_store ------------------------------------------------------------------------------


def test_open_store_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store("memory://"), InMemoryStore)
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel.db")
    assert isinstance(relative, SQLiteStore)
    assert (tmp_path / "rel.db").exists()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db?synchronous=NORMAL&busy_timeout_ms=250")
    assert isinstance(absolute, SQLiteStore)
    assert (absolute.path, absolute.synchronous, absolute.busy_timeout_ms) == (
        f"{tmp_path}/abs.db",
        "NORMAL",
        250,
    )
    in_memory = open_store("sqlite:///:memory:")
    in_memory.commit(open_commit("C1"))
    assert in_memory.load("C1").case_id == "C1"
    with pytest.raises(CaseNotFound):
        open_store("sqlite:///:memory:").load("C1")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:secret@host/db",
        "cases.db",
        "sqlite://cases.db",
        "sqlite:///",
        "memory://x",
        "sqlite:///a.db?x=1",
    ],
)
def test_open_store_refuses_unknown_urls_and_names_the_allowed_ones(url: str) -> None:
    with pytest.raises(InvalidData) as caught:
        open_store(url)
    message = str(caught.value)
    assert "secret" not in message
    assert "sqlite:///" in message or "busy_timeout_ms" in message
