"""Transitions per second through the SQLite and PostgreSQL stores against raw driver inserts.

    python benchmarks/storage.py [--cases 100] [--steps 10] [--postgres URL] [--no-postgres]

Both sides write the same rows in the same schema with the same settings, one transaction per
transition: the case row (inserted, then updated), its event row(s) and its outbox row(s). The
raw side gets the rows ready-made (JSON text and hashes computed before the clock starts) and
runs only the SQL; the store does everything it does in production: validation, serialisation
of the case and events with cattrs, hashing the chain, the version check and the household
check. Target: store overhead at most 1.5x raw.

SQLite is measured with ``synchronous=FULL`` (the default: a commit waits for the disk) and
``OFF`` (no fsync, so the CPU cost of the store shows). PostgreSQL uses ``--postgres URL``, else
``CASEMGMT_BENCH_POSTGRES_URL``/``CASEMGMT_TEST_POSTGRES_URL``, else a throwaway local server
with fsync on.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from casemgmt_core.adapters import GENESIS, PreparedCommit, prepare_commit
from casemgmt_core.adapters.sqlite import SQLiteStore, _ts
from casemgmt_core.commands import AssignCaseworker, RecordJournal
from casemgmt_core.model import JournalKind
from casemgmt_core.ports import CaseStore, Commit
from casemgmt_core.testing import follow, open_commit


def workload(cases: int, steps: int) -> list[Commit]:
    """Open ``cases`` cases, then ``steps`` transitions each, interleaved across cases."""
    commits = [open_commit(f"C{i:05d}") for i in range(cases)]
    current = [c.case for c in commits]
    for s in range(steps):
        for i, case in enumerate(current):
            command = (
                AssignCaseworker(f"cw-{s}")
                if s % 3 == 0
                else RecordJournal(JournalKind.CONTACT, f"phone call {s}: 어머니와 상담")
            )
            step = follow(case, command)
            commits.append(step)
            current[i] = step.case
    return commits


def rows(commits: list[Commit]) -> list[tuple[PreparedCommit, list[tuple[str, str]]]]:
    """Every commit as the rows a store writes, with the chain hashes, ready for the raw side."""
    heads: dict[str, str] = {}
    out = []
    for commit in commits:
        p = prepare_commit(commit)
        hashes = p.hashes(heads.get(p.case_id, GENESIS))
        heads[p.case_id] = hashes[-1][1]
        out.append((p, hashes))
    return out


def timed(run: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


def through_store(store: CaseStore, commits: list[Commit]) -> Callable[[], None]:
    def run() -> None:
        for c in commits:
            store.commit(c)

    return run


# -- SQLite -----------------------------------------------------------------------------------


def raw_sqlite(
    db: sqlite3.Connection, prepared: list[tuple[PreparedCommit, list[tuple[str, str]]]]
) -> Callable[[], None]:
    def run() -> None:
        for p, hashes in prepared:
            db.execute("BEGIN IMMEDIATE")
            values = (
                p.household_id, p.state, p.caseworker_id, _ts(p.next_deadline), p.version, hashes[-1][1],
                p.case_text, p.case_id,
            )  # fmt: skip
            if p.expected_version == 0:
                db.execute(
                    "INSERT INTO cases (household_id, state, caseworker_id, next_deadline, version,"
                    " head_hash, data, case_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            else:
                db.execute(
                    "UPDATE cases SET household_id = ?, state = ?, caseworker_id = ?, next_deadline = ?,"
                    " version = ?, head_hash = ?, data = ? WHERE case_id = ?",
                    values,
                )
            db.executemany(
                "INSERT INTO events (case_id, version, event, occurred_at, data, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (p.case_id, e.version, e.event, _ts(e.occurred_at), e.text, prev, h)
                    for e, (prev, h) in zip(p.events, hashes, strict=True)
                ],
            )
            for n in p.notifications:
                db.execute(
                    "INSERT INTO outbox (notification_id, case_id, created_at, data) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (notification_id) DO NOTHING",
                    (n.notification_id, n.case_id, _ts(n.created_at), n.text),
                )
            db.execute("COMMIT")

    return run


def bench_sqlite(commits: list[Commit], prepared: Any, synchronous: str, tmp: Path) -> tuple[float, float]:
    store = SQLiteStore(tmp / f"store-{synchronous}.db", synchronous=synchronous)
    adapter = timed(through_store(store, commits), len(commits))
    store.close()
    SQLiteStore(tmp / f"raw-{synchronous}.db").close()  # the same schema, created by the store
    db = sqlite3.connect(tmp / f"raw-{synchronous}.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    raw = timed(raw_sqlite(db, prepared), len(commits))
    db.close()
    return adapter, raw


# -- PostgreSQL -------------------------------------------------------------------------------


def raw_postgres(
    conn: Any, prepared: list[tuple[PreparedCommit, list[tuple[str, str]]]]
) -> Callable[[], None]:
    def run() -> None:
        for p, hashes in prepared:
            with conn.transaction():
                values = (
                    p.household_id, p.state, p.caseworker_id, p.next_deadline, p.version, hashes[-1][1],
                    p.case_text, p.case_id,
                )  # fmt: skip
                if p.expected_version == 0:
                    conn.execute(
                        "INSERT INTO cases (household_id, state, caseworker_id, next_deadline, version,"
                        " head_hash, data, case_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        values,
                    )
                else:
                    conn.execute(
                        "UPDATE cases SET household_id = %s, state = %s, caseworker_id = %s,"
                        " next_deadline = %s, version = %s, head_hash = %s, data = %s WHERE case_id = %s",
                        values,
                    )
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO events (case_id, version, event, occurred_at, data, prev_hash, hash)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [
                            (p.case_id, e.version, e.event, e.occurred_at, e.text, prev, h)
                            for e, (prev, h) in zip(p.events, hashes, strict=True)
                        ],
                    )
                for n in p.notifications:
                    conn.execute(
                        "INSERT INTO outbox (notification_id, case_id, created_at, data)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (notification_id) DO NOTHING",
                        (n.notification_id, n.case_id, n.created_at, n.text),
                    )

    return run


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[str]:
    url = url or os.environ.get("CASEMGMT_BENCH_POSTGRES_URL") or os.environ.get("CASEMGMT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from casemgmt_core.testing.postgres import throwaway_cluster

    with throwaway_cluster(durable=True) as started:
        yield started


def bench_postgres(commits: list[Commit], prepared: Any, url: str) -> tuple[float, float]:
    import psycopg

    from casemgmt_core.adapters.postgresql import PostgresStore
    from casemgmt_core.testing.postgres import temporary_schema

    with temporary_schema(url) as conninfo:
        store = PostgresStore(conninfo)
        adapter = timed(through_store(store, commits), len(commits))
        store.close()
    with temporary_schema(url) as conninfo:
        PostgresStore(conninfo).close()  # the same schema, created by the store
        with psycopg.connect(conninfo, autocommit=True) as conn:
            raw = timed(raw_postgres(conn, prepared), len(commits))
    return adapter, raw


def report(name: str, adapter: float, raw: float) -> None:
    ratio = raw / adapter
    verdict = "within" if ratio <= 1.5 else "OVER"
    print(f"{name:<28} store {adapter:>9.0f}/s   raw {raw:>9.0f}/s   overhead {ratio:4.2f}x ({verdict} 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: env, else a throwaway server)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    commits = workload(args.cases, args.steps)
    prepared = rows(commits)
    start = time.perf_counter()
    rows(commits)
    print(f"{len(commits)} transitions ({args.cases} cases x {args.steps} steps, plus opening)")
    print(f"serialising and hashing alone: {len(commits) / (time.perf_counter() - start):.0f}/s")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("FULL", "OFF"):
            report(f"SQLite synchronous={mode}", *bench_sqlite(commits, prepared, mode, Path(tmp)))
    if not args.no_postgres:
        with postgres_server(args.postgres) as url:
            report("PostgreSQL", *bench_postgres(commits, prepared, url))


if __name__ == "__main__":
    main()
