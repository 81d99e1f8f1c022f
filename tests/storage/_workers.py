"""Code run in other processes by the reliability tests (importable by spawned children)."""

from __future__ import annotations

import sys
from multiprocessing.synchronize import Barrier
from typing import Any

from casemgmt_core.adapters.postgresql import PostgresStore
from casemgmt_core.adapters.sql import SQLStore
from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.commands import AssignCaseworker, RecordJournal
from casemgmt_core.errors import CaseNotFound, ConcurrencyConflict
from casemgmt_core.model import JournalKind
from casemgmt_core.testing import follow, open_commit


def open_target(kind: str, where: str) -> SQLStore:
    """``kind`` is ``sqlite`` (``where`` a path), ``postgres`` (a conninfo) or ``mariadb`` (a URL)."""
    if kind == "sqlite":
        return SQLiteStore(where)
    if kind == "postgres":
        return PostgresStore(where)
    return SQLStore(where)


def race(
    kind: str, where: str, case_id: str, worker: int, rounds: int, barrier: Barrier, results: Any
) -> None:
    """Each round: load the case, wait for every racer, then all commit on the same version."""
    store = open_target(kind, where)
    try:
        for r in range(rounds):
            case = store.load(case_id)
            barrier.wait(timeout=60)
            try:
                store.commit(follow(case, RecordJournal(JournalKind.CONTACT, f"worker {worker} round {r}")))
                outcome = "won"
            except ConcurrencyConflict:
                outcome = "conflict"
            results.put((r, worker, case.version, outcome))
            barrier.wait(timeout=60)
    finally:
        store.close()


COMMIT_SIZE = 3
"""Events per commit after the opening one: a torn commit would leave a count not divisible by it."""


def write_forever(path: str, cases: int) -> None:
    """Commit multi-event transitions on ``cases`` cases round-robin until killed."""
    store = SQLiteStore(path)
    print("ready", flush=True)
    n = 0
    while True:
        case_id = f"C{n % cases}"
        try:
            case = store.load(case_id)
        except CaseNotFound:
            store.commit(open_commit(case_id))
        else:
            store.commit(
                follow(
                    case,
                    AssignCaseworker(f"cw-{n}"),
                    RecordJournal(JournalKind.CONTACT, f"call {n}"),
                    RecordJournal(JournalKind.OBSERVED_CHANGE, f"변화 {n}"),
                )
            )
        n += 1


if __name__ == "__main__":
    write_forever(sys.argv[1], int(sys.argv[2]))
