"""The contract suite and SQLite-specific guarantees against :class:`SQLiteStore`."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from casemgmt_core import InvalidData, StorageError
from casemgmt_core.adapters import open_store
from casemgmt_core.adapters.memory import InMemoryStore
from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.commands import AssignCaseworker, StartIntake
from casemgmt_core.errors import CaseNotFound
from casemgmt_core.ports import CaseStore, ChainProblem, Notification, NotificationKind
from casemgmt_core.testing import T0, StoredRowsContract, follow, open_commit


def _path(store: CaseStore) -> str:
    assert isinstance(store, SQLiteStore)
    assert store.engine is not None
    path = store.engine.url.database
    assert path
    return path


def _key(notification_id: str) -> str:
    return hashlib.sha256(notification_id.encode()).hexdigest()


def _raw(store: CaseStore, sql: str, *params: object) -> None:
    """Write behind the store's back, as another program with the file would."""
    with contextlib.closing(sqlite3.connect(_path(store))) as db, db:
        db.execute(sql, params)


def _count(store: CaseStore, table: str) -> int:
    with contextlib.closing(sqlite3.connect(_path(store))) as db:
        (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


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
        again = SQLiteStore(_path(store), tenant=store.tenant_id)
        self.reopened.append(again)
        return again

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            store,
            'UPDATE casemgmt_events SET data = replace(data, \'"note":""\', \'"note":"edited"\')'
            " WHERE tenant_id = ? AND case_id = ? AND version = ?",
            store.tenant_id,
            case_id,
            version,
        )

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        _raw(
            store,
            "DELETE FROM casemgmt_events WHERE tenant_id = ? AND case_id = ? AND version = ?",
            store.tenant_id,
            case_id,
            version,
        )

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        for old, new in ((a, 1_000_000), (b, a), (1_000_000, b)):
            _raw(
                store,
                "UPDATE casemgmt_events SET version = ? WHERE tenant_id = ? AND case_id = ? AND version = ?",
                new,
                store.tenant_id,
                case_id,
                old,
            )

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        _raw(
            store,
            "UPDATE casemgmt_cases"
            ' SET data = replace(data, \'"caseworker_id":"cw-1"\', \'"caseworker_id":"cw-9"\')'
            " WHERE tenant_id = ? AND case_id = ?",
            store.tenant_id,
            case_id,
        )

    def rewrite_event(self, store: CaseStore, case_id: str, version: int, edit: Callable[[str], str]) -> None:
        _rewrite(
            store,
            "casemgmt_events",
            "tenant_id = ? AND case_id = ? AND version = ?",
            (store.tenant_id, case_id, version),
            edit,
        )

    def rewrite_case(self, store: CaseStore, case_id: str, edit: Callable[[str], str]) -> None:
        _rewrite(store, "casemgmt_cases", "tenant_id = ? AND case_id = ?", (store.tenant_id, case_id), edit)

    def delivered_at(self, store: CaseStore, notification_id: str) -> dt.datetime | None:
        with contextlib.closing(sqlite3.connect(_path(store))) as db:
            (value,) = db.execute(
                "SELECT delivered_at FROM casemgmt_outbox WHERE tenant_id = ? AND notification_key = ?",
                (store.tenant_id, _key(notification_id)),
            ).fetchone()
        return None if value is None else dt.datetime.fromisoformat(value)


# -- SQLite specifics ------------------------------------------------------------------------


def _pragma(store: SQLiteStore, name: str) -> object:
    assert store.engine is not None
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_the_database_is_in_wal_mode_with_the_chosen_durability(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db", synchronous="normal", busy_timeout_ms=1234)
    assert _pragma(store, "journal_mode") == "wal"
    assert _pragma(store, "synchronous") == 1  # NORMAL
    assert _pragma(store, "busy_timeout") == 1234
    full = SQLiteStore(tmp_path / "b.db")
    assert _pragma(full, "synchronous") == 2  # FULL
    # Every connection of the pool gets the settings, not only the first one.
    assert full.engine is not None
    with full.engine.connect() as one, full.engine.connect() as two:
        for conn in (one, two):
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.close()
    full.close()


def test_a_tenant_view_keeps_the_stores_settings(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db", synchronous="NORMAL", busy_timeout_ms=250)
    view = store.for_tenant("centre-2")
    assert isinstance(view, SQLiteStore)
    assert view.engine is store.engine
    assert (view.path, view.synchronous, view.busy_timeout_ms) == (store.path, "NORMAL", 250)
    store.close()


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidData, match="synchronous"):
        SQLiteStore(tmp_path / "a.db", synchronous="sometimes")
    with pytest.raises(InvalidData, match="busy_timeout_ms"):
        SQLiteStore(tmp_path / "a.db", busy_timeout_ms=-1)
    assert not (tmp_path / "a.db").exists()


def test_driver_errors_become_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="unable to open"):
        SQLiteStore(tmp_path / "missing-dir" / "a.db")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        SQLiteStore(tmp_path / "junk.db")
    store = SQLiteStore(tmp_path / "ok.db")
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.load("C1")
    with pytest.raises(StorageError, match="closed"):
        store.for_tenant("other").load("C1")


def test_a_failure_inside_the_transaction_rolls_everything_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    opened = open_commit("C1")
    store.commit(opened)
    outbox = _count(store, "casemgmt_outbox")
    deadlines = _count(store, "casemgmt_deadlines")
    # The outbox insert is the last write of a commit: make it fail after case, events, deadlines.
    _raw(
        store,
        "CREATE TRIGGER no_outbox BEFORE INSERT ON casemgmt_outbox"
        " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    )
    step = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
    assert step.notifications, "the step must write to the outbox for the trigger to fire"
    with pytest.raises(StorageError, match="disk on fire"):
        store.commit(step)
    assert store.load("C1") == opened.case
    assert len(store.events("C1")) == 1
    assert _count(store, "casemgmt_events") == 1
    assert (_count(store, "casemgmt_outbox"), _count(store, "casemgmt_deadlines")) == (outbox, deadlines)
    assert store.verify().ok
    _raw(store, "DROP TRIGGER no_outbox")
    store.commit(step)
    assert store.load("C1") == step.case
    store.close()


def test_the_database_itself_allows_one_live_case_per_household_and_tenant(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.commit(open_commit("C1", "H1"))
    insert = (
        "INSERT INTO casemgmt_cases (tenant_id, case_id, household_id, state, live_household_id,"
        " version, head_hash, data) VALUES (?, ?, 'H1', 'intake', 'H1', 1, '', '{}')"
    )
    with pytest.raises(sqlite3.IntegrityError, match="live_household_id"):
        _raw(store, insert, "default", "C2")
    _raw(store, insert, "other-centre", "C2")  # another tenant's live case of "H1" is its own
    with pytest.raises(sqlite3.IntegrityError):
        _raw(
            store,
            "INSERT INTO casemgmt_events (tenant_id, case_id, version, event, occurred_at, data, prev_hash,"
            " hash) SELECT tenant_id, case_id, version, event, occurred_at, data, prev_hash, hash"
            " FROM casemgmt_events",
        )


def test_a_constraint_hit_is_translated_without_the_rows_data(tmp_path: Path) -> None:
    # SQLite writers queue on the database lock, so no other writer can slip a row in between
    # the store's checks and its inserts; a row another program left behind can still collide
    # with the next commit: the database refuses it, the error is the library's and nothing of
    # the commit is kept.
    store = SQLiteStore(tmp_path / "a.db")
    opened = open_commit("C1", "H-secret-household")
    store.commit(opened)
    _raw(
        store,
        "INSERT INTO casemgmt_events (tenant_id, case_id, version, event, occurred_at, data, prev_hash, hash)"
        " VALUES ('default', 'C1', 2, 'stray', '2026-01-05T09:00:00.000000+00:00', '{}', '', '')",
    )
    step = follow(opened.case, AssignCaseworker("cw-secret"), StartIntake(), note="전화 상담 내용")
    with pytest.raises(StorageError) as caught:
        store.commit(step)
    message = str(caught.value)
    assert "UNIQUE" in message or "unique" in message
    for private in ("H-secret-household", "cw-secret", "전화", "[parameters"):
        assert private not in message
    assert store.load("C1") == opened.case
    store.close()


def test_an_unreadable_row_is_a_storage_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.commit(open_commit("C1"))
    _raw(store, "UPDATE casemgmt_cases SET data = '{\"nonsense\": 1}'")
    with pytest.raises(StorageError, match="case 'C1'"):
        store.load("C1")
    store.close()


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
        "UPDATE casemgmt_events SET data = CAST(X'7B226E6F7465223A22EDA080227D' AS TEXT)"
        " WHERE case_id = 'C1' AND version = 2",
    )
    _raw(store, "UPDATE casemgmt_cases SET data = CAST(X'EDA080' AS TEXT) WHERE case_id = 'C2'")
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
    # verify's lenient reading does not leak into the pool's connections used afterwards.
    with pytest.raises(StorageError):
        store.load("C2")
    store.close()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE casemgmt_events SET version = 'two' WHERE case_id = 'C1' AND version = 2",
        "UPDATE casemgmt_events SET data = X'7B7D' WHERE case_id = 'C1' AND version = 2",
        "UPDATE casemgmt_events SET data = 12 WHERE case_id = 'C1' AND version = 2",
        "UPDATE casemgmt_events SET prev_hash = X'00', hash = 7 WHERE case_id = 'C1' AND version = 2",
        "UPDATE casemgmt_cases SET version = 'three' WHERE case_id = 'C1'",
        "UPDATE casemgmt_cases SET data = X'7B7D', head_hash = 5 WHERE case_id = 'C1'",
    ],
)
def test_verify_reports_whatever_a_row_holds(tmp_path: Path, sql: str) -> None:
    store = _three_cases(tmp_path)
    _raw(store, sql)
    report = store.verify()
    assert [b.case_id for b in report.broken] == ["C1"]
    assert store.verify("C3").ok
    store.close()


def test_a_stored_time_that_is_not_one_is_a_storage_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.enqueue([Notification("n-1", NotificationKind.REMINDER, "C1", "C1/1", "w", T0)])
    store.mark_delivered("n-1", T0)
    _raw(store, "UPDATE casemgmt_outbox SET delivered_at = 'yesterday'")
    with pytest.raises(StorageError, match="timestamp"):
        store.notification_delivered_at("n-1")
    store.enqueue([Notification("n-2", NotificationKind.REMINDER, "C1", "C1/1", "w", T0)])
    _raw(
        store,
        "UPDATE casemgmt_outbox SET next_attempt_at = '2026-01-05T09:00:00' WHERE notification_key = ?",
        _key("n-2"),
    )
    with pytest.raises(StorageError, match="timestamp"):
        store.pending_notifications()
    store.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "a.db").close()
    with contextlib.closing(sqlite3.connect(tmp_path / "a.db")) as db, db:
        assert db.execute("SELECT version_num FROM casemgmt_alembic_version").fetchall() != []
        db.execute("UPDATE casemgmt_alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(StorageError, match="9999_from_the_future"):
        SQLiteStore(tmp_path / "a.db")
    with pytest.raises(StorageError, match="9999_from_the_future"):
        SQLiteStore(tmp_path / "a.db", create_tables=False)
    # Nothing was changed by the refused opens.
    with contextlib.closing(sqlite3.connect(tmp_path / "a.db")) as db:
        assert db.execute("SELECT version_num FROM casemgmt_alembic_version").fetchall() == [
            ("9999_from_the_future",)
        ]


def test_store_is_usable_from_several_threads(tmp_path: Path) -> None:
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
    store.close()


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
    assert _pragma(absolute, "synchronous") == 1
    assert _pragma(absolute, "busy_timeout") == 250
    in_memory = open_store("sqlite:///:memory:")
    in_memory.commit(open_commit("C1"))
    assert in_memory.load("C1").case_id == "C1"
    with pytest.raises(CaseNotFound):
        open_store("sqlite:///:memory:").load("C1")
    tenant = open_store(f"sqlite:///{tmp_path}/abs.db", tenant="centre-2", table_prefix="cm2_")
    assert tenant.tenant_id == "centre-2"
    with contextlib.closing(sqlite3.connect(tmp_path / "abs.db")) as db:
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"cm2_cases", "casemgmt_cases"} <= names
    for store in (relative, absolute, tenant):
        store.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "cases.db",
        "sqlite://cases.db",
        "sqlite:///",
        "memory://x",
        "sqlite:///a.db?x=1",
        "ftp://u:secret@host/db",
    ],
)
def test_open_store_refuses_unknown_urls_and_names_the_allowed_ones(url: str) -> None:
    with pytest.raises(InvalidData) as caught:
        open_store(url)
    message = str(caught.value)
    assert "secret" not in message
    assert "sqlite:///" in message or "busy_timeout_ms" in message


def test_open_store_hides_the_password_of_a_server_it_cannot_reach() -> None:
    # MariaDB/MySQL URLs are accepted now; one that cannot be reached fails without its password.
    with pytest.raises(StorageError) as caught:
        open_store("mysql://u:secret@127.0.0.1:1/db?connect_timeout=2")
    assert "secret" not in str(caught.value)
    assert "secret" not in repr(caught.value)
