"""Several processes racing on one case, and a writer killed at random points."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from casemgmt_core.adapters.postgresql import PostgresStore
from casemgmt_core.adapters.sql import SQLStore
from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.errors import CaseNotFound
from casemgmt_core.ports import CaseStore
from casemgmt_core.testing import open_commit

from ._workers import COMMIT_SIZE, race

PROCESSES = 4
ROUNDS = 5
ROOT = Path(__file__).resolve().parents[2]


def _race(kind: str, where: str, store: CaseStore) -> None:
    store.commit(open_commit("C1"))
    ctx = multiprocessing.get_context("spawn")  # no connection or lock is inherited by a child
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=race, args=(kind, where, "C1", w, ROUNDS, barrier, results))
        for w in range(PROCESSES)
    ]
    for p in workers:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0
    for r in range(ROUNDS):
        this_round = [o for o in outcomes if o[0] == r]
        assert {version for _, _, version, _ in this_round} == {1 + r}, "all racers read the same version"
        winners = [worker for _, worker, _, outcome in this_round if outcome == "won"]
        assert len(winners) == 1, f"round {r}: exactly one commit wins, not {winners}"
        assert sorted(o for *_, o in this_round) == ["conflict"] * (PROCESSES - 1) + ["won"]
    # Nothing lost, nothing extra: the history holds exactly the winners' events, in order.
    winners_in_order = [next(w for rr, w, _, o in outcomes if rr == r and o == "won") for r in range(ROUNDS)]
    history = store.events("C1")
    assert [e.version for e in history] == list(range(1, ROUNDS + 2))
    assert [e.payload.text for e in history[1:]] == [  # type: ignore[attr-defined]
        f"worker {w} round {r}" for r, w in enumerate(winners_in_order)
    ]
    assert store.load("C1").version == ROUNDS + 1
    assert store.verify().ok


def test_processes_racing_on_sqlite(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    store = SQLiteStore(path)
    try:
        _race("sqlite", path, store)
    finally:
        store.close()


def test_processes_racing_on_postgresql(postgres_conninfo: str) -> None:
    store = PostgresStore(postgres_conninfo)
    try:
        _race("postgres", postgres_conninfo, store)
    finally:
        store.close()


def test_processes_racing_on_mariadb(mariadb_database: str) -> None:
    store = SQLStore(mariadb_database)
    try:
        _race("mariadb", mariadb_database, store)
    finally:
        store.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_killed_sqlite_writer_leaves_whole_transitions(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = str(tmp_path / "killed.db")
    cases = 4
    progress = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for _ in range(4):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.storage._workers", path, str(cases)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        with contextlib.suppress(subprocess.TimeoutExpired):
            writer.wait(timeout=rng.uniform(0.05, 0.4))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        assert writer.returncode == -signal.SIGKILL

        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            outbox = dict(
                db.execute("SELECT case_id, count(*) FROM casemgmt_outbox GROUP BY case_id").fetchall()
            )
        store = SQLiteStore(path)
        try:
            report = store.verify()
            assert report.ok, report.first
            total = 0
            for i in range(cases):
                try:
                    case = store.load(f"C{i}")
                except CaseNotFound:  # not opened before the kill
                    continue
                events = store.events(case.case_id)
                assert len(events) == case.version
                # All or nothing: the opening event, then whole three-event commits with one
                # notification each.
                assert (case.version - 1) % COMMIT_SIZE == 0
                assert outbox.get(case.case_id, 0) == (case.version - 1) // COMMIT_SIZE
                total += case.version
            progress.append(total)
        finally:
            store.close()
    assert progress == sorted(progress)
    assert progress[-1] > progress[0], "the writers made progress between kills"
