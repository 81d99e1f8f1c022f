"""The SQL store against the raw driver: the write path, and queries at 10k and 100k cases.

    python benchmarks/storage.py [--cases 50] [--steps 12] [--rounds 3]
                                 [--sizes 10000,100000] [--templates 300]
                                 [--postgres URL | --no-postgres] [--no-write] [--no-scale]

Every figure is compared with a baseline measured in the same run, on the same machine, and is
printed with ``target met`` or ``OVER``.

Write path. A workload of ``--cases`` households, each taken through ``--steps`` commands of the
lifecycle (assignment, intake, screening, assessment, plan approval, then contacts in the journal)
by :class:`~casemgmt_core.CaseManager`, interleaved across the cases. Measured:

(i)  ``SQLStore.commit`` of the commits the manager makes (built beforehand, opening included),
     and the store's statements alone: each commit prepared before the clock starts, then
     written by the store's driver path (what is left of the ratio is the library's Python);
(ii) ``CaseManager.handle`` end to end (load the case, decide, commit), the cases opened first.

The baselines run the raw driver (``sqlite3``, ``psycopg``) on the store's own tables (created by
the store, in a database of their own) with the rows ready-made: the JSON text, the chain hashes
and the timestamps as the column holds them are computed before the clock starts.
``raw writes`` executes only the writes, one transaction per commit: the case row (inserted,
then updated), its events, its deadlines (deleted and inserted again) and its outbox rows.
``raw same SQL`` also runs the reads the store runs (the case's version and chain head, locked
where the database can; the household's live case; the outbox keys already there; for (ii) the
case row read by ``load`` in a transaction of its own), so that ``store / raw same SQL`` is the
cost of the library and SQLAlchemy alone. The script checks that the store and the raw writes
leave identical rows. Target (issue 11): store at most 1.3x ``raw writes`` for durable commits:
SQLite with ``synchronous=FULL`` (the store's default: a commit waits for the disk) and
PostgreSQL as its server is configured. SQLite with ``synchronous=OFF`` (no fsync) is measured too,
without a target: there the raw side is a few C calls and the ratio shows the library's CPU cost
(printed in microseconds per commit). The store and its two raw baselines write a block of ten
commits in turn, each into a database of its own, so that all three meet the same disk (fsync
latency drifts by a factor of four within a minute on a shared machine); each side's best of
``--rounds`` rounds counts.

Scale. ``--templates`` realistic cases are built with the library (every state from referral to
service, some redirected at screening), then their rows (case, events with their hash chain
recomputed, deadlines, outbox) are copied with new case, household and caseworker ids, in bulk in
one transaction (``executemany`` on SQLite, ``COPY`` on PostgreSQL, then ``ANALYZE`` as autovacuum
would), until the store holds 10k, then 100k cases. ``now`` is the earliest time at which
10% of the cases have a deadline listed. Measured at each size: ``CaseManager.due(now)``,
``store.due`` pages of 250, and ``store.find`` pages of 50 by state, by caseworker and by
``due_before``; every listing is walked to its end with ``after`` cursors (its pages and items are
checked against a count in SQL), then its first, middle and last full page are timed again (best
of 5). Targets: 100k cases at most 11x the time of 10k; ``due()`` at 100k at most 0.5 s (SQLite;
PostgreSQL is held to the same figure); a page's cost independent of its position (middle and last
full page within 2x of the first; a page at 100k should also cost about what it does at 10k).

PostgreSQL: ``--postgres URL``, else ``CASEMGMT_BENCH_POSTGRES_URL``, else
``CASEMGMT_TEST_POSTGRES_URL``, else a throwaway local server (fsync on). Each measurement runs in
a schema of its own, dropped afterwards. SQLite files go to a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import math
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.adapters import GENESIS, PreparedCommit, chain_hash, prepare_commit
from casemgmt_core.adapters._driver import Known
from casemgmt_core.adapters.memory import InMemoryStore
from casemgmt_core.adapters.sql import SQLStore
from casemgmt_core.adapters.sqlite import SQLiteStore
from casemgmt_core.events import Event
from casemgmt_core.ports import DEFAULT_TENANT, CaseQuery, Commit, DueQuery
from casemgmt_core.serialization import _case_fields, converter, dumps

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLICY = cm.DEFAULT_POLICY
TENANT = DEFAULT_TENANT
#: How SQLite columns hold a time (fixed-width UTC text); PostgreSQL reads the same text in COPY.
SQLITE_TIME = "%Y-%m-%dT%H:%M:%S.%f+00:00"

WRITE_LIMIT = 1.3
#: Every case is the team's, and every actor in it (the default access rule).
TEAM = "team-1"
TEAMS = frozenset({TEAM})
DUE_SECONDS = 0.5
SCALE_LIMIT = 11.0
POSITION_LIMIT = 2.0
#: Page sizes of the listings timed at scale.
DUE_PAGE = 250
CASE_PAGE = 50


# -- the workload -------------------------------------------------------------------------------


def actor_for(event: str) -> cm.Actor:
    """A caseworker where the default policy lets one act, else someone in a role that may."""
    roles = POLICY.access.roles_allowed(event)
    if "caseworker" in roles:
        return cm.Actor("worker-1", "caseworker", TEAMS)
    role = sorted(roles)[0]
    return cm.Actor(f"{role}-1", role, TEAMS)


def household(household_id: str) -> cm.Household:
    return cm.Household(
        household_id,
        [
            cm.Member("parent", dt.date(1985, 4, 1), relation="어머니"),
            cm.Member("child", dt.date(2017, 6, 1), relation="아들", guardian_id="parent"),
        ],
        region="11680-101",
    )


def lifecycle(caseworker: str, at: dt.datetime) -> list[c.Command]:
    """A case's way from referral to service."""
    service = cm.Consent(
        "k1", cm.ConsentScope.SERVICE_PROVISION, "parent", cm.ConsentGiver.PERSON, "parent", at
    )
    data = cm.Consent("k2", cm.ConsentScope.PERSONAL_DATA, "parent", cm.ConsentGiver.PERSON, "parent", at)
    return [
        c.AssignCaseworker(caseworker, team_id=TEAM),
        c.StartIntake(),
        c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS),
        c.RecordConsent(service),
        c.RecordConsent(data),
        c.CompleteIntake(),
        c.Select(),
        c.RecordNeed(cm.Need("N1", cm.NeedDomain.HEALTH, "병원 동행 필요")),
        c.CompleteAssessment(),
        c.SetGoal(cm.Goal("G1", "월 1회 정기 진료", need_ids=("N1",))),
        c.ApprovePlan(),
    ]


def contact(n: int) -> c.Command:
    return c.RecordJournal(cm.JournalKind.CONTACT, f"전화 상담 {n}: 어머니와 통화, 다음 방문 약속")


class Clock:
    """The manager's clock, set by the harness before each call (so that runs repeat exactly)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class Recorder(InMemoryStore):
    """An in-memory store that keeps every commit it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[Commit] = []

    def commit(self, commit: Commit) -> None:
        super().commit(commit)
        self.commits.append(commit)


@dataclass
class Opening:
    at: dt.datetime
    case_id: str
    household: cm.Household


@dataclass
class Step:
    at: dt.datetime
    case_id: str
    command: c.Command
    actor: cm.Actor


@dataclass
class Workload:
    openings: list[Opening]
    steps: list[Step]
    open_commits: list[Commit] = field(default_factory=list)
    step_commits: list[Commit] = field(default_factory=list)

    def run(self, manager: cm.CaseManager, clock: Clock, *, opening: bool = True, steps: bool = True) -> None:
        if opening:
            for o in self.openings:
                clock.now = o.at
                manager.open_case(
                    o.household,
                    cm.Referral(cm.ReferralChannel.WALK_IN, o.at),
                    actor=actor_for("open"),
                    case_id=o.case_id,
                )
        if steps:
            for s in self.steps:
                clock.now = s.at
                manager.handle(s.case_id, s.command, actor=s.actor)


def workload(cases: int, steps: int) -> Workload:
    """``cases`` cases opened, then ``steps`` commands each, interleaved across the cases; the
    commits the manager makes for them are recorded (in memory) for the store-only measurements."""
    openings = [
        Opening(T0 + dt.timedelta(seconds=i), f"C{i:05d}", household(f"H{i:05d}")) for i in range(cases)
    ]
    paths = [lifecycle("cw-1", o.at) for o in openings]
    plan = []
    for k in range(steps):
        for i in range(cases):
            command = paths[i][k] if k < len(paths[i]) else contact(k)
            at = T0 + dt.timedelta(hours=k + 1, seconds=i)
            plan.append(Step(at, f"C{i:05d}", command, actor_for(command.event)))
    work = Workload(openings, plan)
    recorder, clock = Recorder(), Clock()
    manager = cm.CaseManager(recorder, clock=clock)
    work.run(manager, clock, steps=False)
    work.open_commits = list(recorder.commits)
    work.run(manager, clock, opening=False)
    work.step_commits = recorder.commits[len(work.open_commits) :]
    return work


# -- the rows of a commit, ready for the raw driver ---------------------------------------------


@dataclass
class CommitRows:
    """What the store writes for one commit, as the raw driver's parameters."""

    new: bool
    live: bool
    case_id: str
    household_id: str
    case_insert: tuple[Any, ...]
    case_update: tuple[Any, ...]
    events: list[tuple[Any, ...]]
    deadlines: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]
    keys: tuple[str, ...]


def notification_key(notification_id: str) -> str:
    return hashlib.sha256(notification_id.encode()).hexdigest()


def outbox_row(notification_id: str, case_id: str, created_at: Any, text: str) -> tuple[Any, ...]:
    return (TENANT, notification_key(notification_id), notification_id, case_id, created_at, text, 0)


def commit_rows(commits: Sequence[Commit], when: Callable[[dt.datetime | None], Any]) -> list[CommitRows]:
    """Every commit's rows with its chain hashes; ``when`` turns a time into its column value."""
    heads: dict[str, str] = {}
    out = []
    for commit in commits:
        p = prepare_commit(commit)
        hashes = p.hashes(heads.get(p.case_id, GENESIS))
        heads[p.case_id] = hashes[-1][1]
        live = p.household_id if p.live else None
        values = (
            p.household_id, p.state, p.caseworker_id, live, when(p.next_deadline), p.version, hashes[-1][1],
            p.case_text,
        )  # fmt: skip
        out.append(
            CommitRows(
                new=p.expected_version == 0,
                live=p.live,
                case_id=p.case_id,
                household_id=p.household_id,
                case_insert=(TENANT, p.case_id, *values),
                case_update=(*values, TENANT, p.case_id),
                events=[
                    (TENANT, p.case_id, e.version, e.event, when(e.occurred_at), e.text, prev, h)
                    for e, (prev, h) in zip(p.events, hashes, strict=True)
                ],
                deadlines=[
                    (TENANT, p.case_id, d.kind.value, d.subject, when(d.listed_from), when(d.due_at))
                    for d in p.deadlines
                ],
                outbox=[
                    outbox_row(n.notification_id, n.case_id, when(n.created_at), n.text)
                    for n in p.notifications
                ],
                keys=tuple(notification_key(n.notification_id) for n in p.notifications),
            )
        )
    return out


def sqlite_time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime(SQLITE_TIME)


def same_time(value: dt.datetime | None) -> dt.datetime | None:
    return value


# -- the raw driver -------------------------------------------------------------------------------


class Raw:
    """The statements the store runs, written out for one DBAPI driver."""

    def __init__(self, conn: Any, dialect: str, tables: Any) -> None:
        self.conn = conn
        self.sqlite = dialect == "sqlite"
        m = "?" if self.sqlite else "%s"
        self.m = m
        cases, events, deadlines, outbox = (
            t.name for t in (tables.cases, tables.events, tables.deadlines, tables.outbox)
        )

        def marks(n: int) -> str:
            return ", ".join([m] * n)

        self.begin_write = "BEGIN IMMEDIATE" if self.sqlite else "BEGIN"
        self.begin_read = "BEGIN" if self.sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        lock = "" if self.sqlite else " FOR UPDATE"
        self.case_insert = (
            f"INSERT INTO {cases} (tenant_id, case_id, household_id, state, caseworker_id, live_household_id,"
            f" next_deadline, version, head_hash, data) VALUES ({marks(10)})"
        )
        self.case_update = (
            f"UPDATE {cases} SET household_id = {m}, state = {m}, caseworker_id = {m},"
            f" live_household_id = {m}, next_deadline = {m}, version = {m}, head_hash = {m}, data = {m}"
            f" WHERE tenant_id = {m} AND case_id = {m}"
        )
        self.event_insert = (
            f"INSERT INTO {events} (tenant_id, case_id, version, event, occurred_at, data, prev_hash, hash)"
            f" VALUES ({marks(8)})"
        )
        self.deadline_delete = f"DELETE FROM {deadlines} WHERE tenant_id = {m} AND case_id = {m}"
        self.deadline_insert = (
            f"INSERT INTO {deadlines} (tenant_id, case_id, kind, subject, listed_from, due_at)"
            f" VALUES ({marks(6)})"
        )
        self.outbox_insert = (
            f"INSERT INTO {outbox} (tenant_id, notification_key, notification_id, case_id, created_at, data,"
            f" attempts) VALUES ({marks(7)})"
        )
        self.load = f"SELECT data FROM {cases} WHERE tenant_id = {m} AND case_id = {m}"
        self.head = f"SELECT version, head_hash FROM {cases} WHERE tenant_id = {m} AND case_id = {m}{lock}"
        self.live = (
            f"SELECT case_id FROM {cases} WHERE tenant_id = {m} AND live_household_id = {m}"
            f" AND case_id <> {m} LIMIT 1"
        )
        self.outbox_keys = (
            f"SELECT notification_key FROM {outbox} WHERE tenant_id = {m} AND notification_key IN "
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.sqlite:
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)

    def write(self, rows: Sequence[CommitRows], *, same_sql: bool = False, load: bool = False) -> None:
        """One transaction per commit: the writes, and with ``same_sql`` the store's reads too."""
        for r in rows:
            if load:
                self.execute(self.begin_read)
                self.execute(self.load, (TENANT, r.case_id)).fetchone()
                self.execute("COMMIT")
            self.execute(self.begin_write)
            if same_sql:
                self.execute(self.head, (TENANT, r.case_id)).fetchone()
                if r.live:
                    self.execute(self.live, (TENANT, r.household_id, r.case_id)).fetchone()
            if r.new:
                self.execute(self.case_insert, r.case_insert)
            else:
                self.execute(self.case_update, r.case_update)
            self.executemany(self.event_insert, r.events)
            if not r.new:
                self.execute(self.deadline_delete, (TENANT, r.case_id))
            if r.deadlines:
                self.executemany(self.deadline_insert, r.deadlines)
            if r.outbox:
                if same_sql:
                    marks = ", ".join([self.m] * len(r.keys))
                    self.execute(f"{self.outbox_keys}({marks})", (TENANT, *r.keys)).fetchall()
                self.executemany(self.outbox_insert, r.outbox)
            self.execute("COMMIT")


def table_rows(conn: Any, tables: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's tables, in key order (to compare two databases)."""
    out = {}
    for table in (tables.cases, tables.events, tables.deadlines, tables.outbox):
        order = ", ".join(col.name for col in table.primary_key.columns)
        out[table.name] = [tuple(row) for row in conn.execute(f"SELECT * FROM {table.name} ORDER BY {order}")]
    return out


# -- databases --------------------------------------------------------------------------------------


class Backend:
    """Where a measurement runs: a fresh database (SQLite file, PostgreSQL schema) for each use."""

    name: str
    dialect: str
    durable = True
    """Whether a commit waits for the disk (the write-path target applies)."""

    def store(self) -> SQLStore:
        raise NotImplementedError

    def raw(self, store: SQLStore) -> Raw:
        """A raw connection to the database of ``store`` (closed with :meth:`close_raw`)."""
        raise NotImplementedError

    def close_raw(self, raw: Raw) -> None:
        raw.conn.close()

    def time_value(self, value: dt.datetime | None) -> Any:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class SQLiteBackend(Backend):
    dialect = "sqlite"

    def __init__(self, directory: Path, synchronous: str) -> None:
        self.directory = directory
        self.synchronous = synchronous
        self.name = f"SQLite synchronous={synchronous}"
        self.durable = synchronous in ("FULL", "EXTRA")
        self.paths: dict[int, Path] = {}

    def store(self) -> SQLStore:
        path = self.directory / f"{self.synchronous}-{uuid.uuid4().hex[:8]}.db"
        store = SQLiteStore(path, synchronous=self.synchronous)
        self.paths[id(store)] = path
        return store

    def raw(self, store: SQLStore) -> Raw:
        db = sqlite3.connect(self.paths[id(store)], isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self.synchronous}")
        return Raw(db, "sqlite", store.tables)

    def time_value(self, value: dt.datetime | None) -> Any:
        return sqlite_time(value)


class PostgresBackend(Backend):
    dialect = "postgresql"
    name = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.url = url
        self.schemas: list[str] = []
        self.conninfo: dict[int, str] = {}

    def store(self) -> SQLStore:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        from casemgmt_core.adapters.postgresql import PostgresStore

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        options = str(conninfo_to_dict(self.url).get("options") or "")
        conninfo = make_conninfo(self.url, options=f"{options} -c search_path={schema}".strip())
        store = PostgresStore(conninfo)
        self.conninfo[id(store)] = conninfo
        return store

    def raw(self, store: SQLStore) -> Raw:
        import psycopg

        return Raw(psycopg.connect(self.conninfo[id(store)], autocommit=True), "postgresql", store.tables)

    def time_value(self, value: dt.datetime | None) -> Any:
        return same_time(value)

    def cleanup(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.schemas.clear()


@contextlib.contextmanager
def postgres_url(url: str | None) -> Iterator[str]:
    url = url or os.environ.get("CASEMGMT_BENCH_POSTGRES_URL") or os.environ.get("CASEMGMT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from casemgmt_core.testing.postgres import throwaway_cluster

    with throwaway_cluster(durable=True) as started:
        yield started


# -- reporting ------------------------------------------------------------------------------------


def verdict(value: float, limit: float) -> str:
    return "target met" if value <= limit else "OVER"


def duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def heading(text: str) -> None:
    print()
    print(text)
    print("-" * len(text))


# -- (a) the write path ---------------------------------------------------------------------------


@dataclass
class Sides:
    store: float = math.inf
    raw: float = math.inf
    same: float = math.inf
    statements: float = math.inf
    """(i) only: the store's own statements, each commit prepared before the clock starts."""


#: Commits per block of the write path's interleaved measurement.
BLOCK = 10


def _blocks(n: int) -> list[slice]:
    return [slice(i, min(i + BLOCK, n)) for i in range(0, n, BLOCK)]


def _interleaved(sides: dict[str, Callable[[slice], None]], n: int) -> dict[str, float]:
    """Seconds each side takes for items ``0..n``, run a block of :data:`BLOCK` at a time, the
    sides taking turns (in a rotating order) so that each meets the same disk and machine."""
    spent = dict.fromkeys(sides, 0.0)
    names = list(sides)
    for k, block in enumerate(_blocks(n)):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            start = time.perf_counter()
            sides[name](block)
            spent[name] += time.perf_counter() - start
    return spent


def write_path(backend: Backend, work: Workload, rounds: int) -> tuple[Sides, Sides]:
    """Best seconds of (i) store.commit and (ii) CaseManager.handle, with their raw baselines.

    Disk latency drifts from one second to the next (an fsync took from 0.2 to 0.8 ms on the
    same machine within a minute), so the store and its raw baselines are not run one after the
    other: each of the three writes a block of commits in turn, into a database of its own.
    """
    all_rows = commit_rows(work.open_commits + work.step_commits, backend.time_value)
    open_rows = all_rows[: len(work.open_commits)]
    step_rows = all_rows[len(work.open_commits) :]
    commits = work.open_commits + work.step_commits
    commit, handle = Sides(), Sides()
    for _ in range(rounds):
        # (i) the store's commit against the raw writes of the same rows, opening included.
        store = backend.store()
        writes, same, bare = backend.store(), backend.store(), backend.store()
        raw_writes, raw_same = backend.raw(writes), backend.raw(same)
        prepared = prepared_commits(backend, commits)

        def store_commits(block: slice, store: SQLStore = store) -> None:
            for one in commits[block]:
                store.commit(one)

        def statements_only(block: slice, store: SQLStore = bare, prepared: Prepared = prepared) -> None:
            for p, known in prepared[block]:
                store._run_driver(store._commit(p, known), write=True)

        spent = _interleaved(
            {
                "store": store_commits,
                "raw": lambda block, raw=raw_writes: raw.write(all_rows[block]),
                "same": lambda block, raw=raw_same: raw.write(all_rows[block], same_sql=True),
                "statements": statements_only,
            },
            len(commits),
        )
        for side in ("store", "raw", "same", "statements"):
            setattr(commit, side, min(getattr(commit, side), spent[side]))
        stored = stored_rows(backend, store)
        if table_rows(raw_writes.conn, writes.tables) != stored:
            raise SystemExit(f"{backend.name}: the raw writes left other rows than the store")
        if stored_rows(backend, bare) != stored:
            raise SystemExit(f"{backend.name}: the prepared commits left other rows than the store")
        for raw in (raw_writes, raw_same):
            backend.close_raw(raw)
        for one_store in (store, writes, same, bare):
            one_store.close()
        # (ii) CaseManager.handle end to end; the cases are opened before the clock starts.
        store = backend.store()
        clock = Clock()
        manager = cm.CaseManager(store, clock=clock)
        for one in work.open_commits:
            store.commit(one)
        writes, same = backend.store(), backend.store()
        raw_writes, raw_same = backend.raw(writes), backend.raw(same)
        raw_writes.write(open_rows)
        raw_same.write(open_rows)

        def handled(block: slice, manager: cm.CaseManager = manager, clock: Clock = clock) -> None:
            for s in work.steps[block]:
                clock.now = s.at
                manager.handle(s.case_id, s.command, actor=s.actor)

        spent = _interleaved(
            {
                "store": handled,
                "raw": lambda block, raw=raw_writes: raw.write(step_rows[block]),
                "same": lambda block, raw=raw_same: raw.write(step_rows[block], same_sql=True, load=True),
            },
            len(work.steps),
        )
        handle.store = min(handle.store, spent["store"])
        handle.raw = min(handle.raw, spent["raw"])
        handle.same = min(handle.same, spent["same"])
        if stored_rows(backend, store) != stored:
            raise SystemExit(f"{backend.name}: CaseManager.handle left other rows than the recorded commits")
        for raw in (raw_writes, raw_same):
            backend.close_raw(raw)
        for one_store in (store, writes, same):
            one_store.close()
        backend.cleanup()
    return commit, handle


#: Each commit prepared, with what the store knew of its case before it.
Prepared = list[tuple[PreparedCommit, Known | None]]


def prepared_commits(backend: Backend, commits: Sequence[Commit]) -> Prepared:
    """Each commit prepared as the store prepares it, with what the store knew of its case then
    (found by committing them all to a store of their own, before any clock starts)."""
    store = backend.store()
    known: dict[str, Known] = {}
    out = []
    try:
        for one in commits:
            before = known.get(one.case.case_id)
            p = prepare_commit(one, previous=None if before is None else before.checked)
            head = store._run_driver(store._commit(p, before), write=True)
            out.append((p, before))
            known[p.case_id] = Known(p.version, head, one.case, p.checked, p.deadlines)
    finally:
        store.close()
    return out


def stored_rows(backend: Backend, store: SQLStore) -> dict[str, list[tuple[Any, ...]]]:
    raw = backend.raw(store)
    try:
        return table_rows(raw.conn, store.tables)
    finally:
        backend.close_raw(raw)


def serialise_only(work: Workload) -> float:
    """Seconds per commit of writing its rows' text and no more: each event written out and
    hashed, the case's changed fields written out into its JSON (best of 3). No check, no SQL:
    the least any store of these rows spends in Python before the driver."""
    conv = converter()
    getter, fields = _case_fields()
    commits = work.open_commits + work.step_commits
    best = math.inf
    for _ in range(3):
        data: dict[str, tuple[Any, dict[str, Any]]] = {}
        heads: dict[str, str] = {}
        start = time.perf_counter()
        for one in commits:
            head = heads.get(one.case.case_id, GENESIS)
            for e in one.events:
                head = chain_hash(head, dumps(conv.unstructure(e, unstructure_as=Event)))
            heads[one.case.case_id] = head
            before = data.get(one.case.case_id)
            if before is None:
                out = conv.unstructure(one.case, unstructure_as=cm.Case)
            else:
                out = dict(before[1])
                for value, old, (name, unstructure, _, _) in zip(
                    getter(one.case), getter(before[0]), fields, strict=True
                ):
                    if value is not old:
                        out[name] = unstructure(value)
            dumps(out)
            data[one.case.case_id] = (one.case, out)
        best = min(best, (time.perf_counter() - start) / len(commits))
    return best


def cpu_costs(work: Workload) -> tuple[float, float, float]:
    """Seconds per commit of ``prepare_commit`` alone (in full, and given the case's commit
    before), and of ``decide`` alone (best of 3)."""
    commits = work.open_commits + work.step_commits
    prepare = again = decide = math.inf
    cases = {c.case.case_id: c.case for c in work.open_commits}
    for _ in range(3):
        start = time.perf_counter()
        for one in commits:
            prepare_commit(one)
        prepare = min(prepare, (time.perf_counter() - start) / len(commits))
        previous: dict[str, Any] = {}
        start = time.perf_counter()
        for one in commits:
            previous[one.case.case_id] = prepare_commit(one, previous=previous.get(one.case.case_id)).checked
        again = min(again, (time.perf_counter() - start) / len(commits))
        current = dict(cases)
        start = time.perf_counter()
        for s in work.steps:
            current[s.case_id] = cm.decide(current[s.case_id], s.command, POLICY, s.at, actor=s.actor).case
        decide = min(decide, (time.perf_counter() - start) / len(work.steps))
    return prepare, again, decide


def report_write(results: list[tuple[Backend, Sides, Sides]], work: Workload, rounds: int) -> None:
    n_commits = len(work.open_commits) + len(work.step_commits)
    n_steps = len(work.step_commits)
    heading(
        f"(a) WRITE PATH: {len(work.openings)} cases x {n_steps // max(len(work.openings), 1)} steps "
        f"({n_commits} commits, {n_steps} handled); per commit, best of {rounds} round(s),"
        " store and raw interleaved"
    )
    print(
        f"{'':<46}{'store':>10}{'raw writes':>12}{'raw same SQL':>14}"
        f"{'store/raw':>11}  {'verdict (<= 1.3x)':<18}{'store/same':>11}"
    )
    for label, n, pick in (
        ("(i)  SQLStore.commit", n_commits, 0),
        ("(ii) CaseManager.handle (load, decide, commit)", n_steps, 1),
    ):
        print(label)
        for backend, commit, handle in results:
            sides = (commit, handle)[pick]
            ratio = sides.store / sides.raw
            shown = (
                verdict(ratio, WRITE_LIMIT)
                if backend.durable
                else f"+{duration((sides.store - sides.raw) / n)} CPU"
            )
            print(
                f"  {backend.name:<44}{duration(sides.store / n):>10}{duration(sides.raw / n):>12}"
                f"{duration(sides.same / n):>14}{ratio:>10.2f}x  {shown:<18}"
                f"{sides.store / sides.same:>10.2f}x"
            )
        if pick == 0:
            print("  of which the statements alone (each commit prepared before the clock starts):")
            for backend, commit, _ in results:
                print(
                    f"    {backend.name:<42}{duration(commit.statements / n):>10}"
                    f"{duration(commit.raw / n):>12}"
                    f"{'':>14}{commit.statements / commit.raw:>10.2f}x"
                )


# -- (b) scale --------------------------------------------------------------------------------------

CASE_TOKEN = "tplcase"
HOUSEHOLD_TOKEN = "tplhh"
CASEWORKER_TOKEN = "tplcw"
CASEWORKERS = 200


@dataclass
class Template:
    """One realistic case's rows, its ids replaced by tokens, times as column text."""

    case_token: str
    household_token: str
    state: str
    live: bool
    assigned: bool
    next_deadline: str | None
    version: int
    case_text: str
    events: list[tuple[int, str, str, str]]
    deadlines: list[tuple[str, str, str, str]]
    outbox: list[tuple[str, str, str]]
    first_listed: dt.datetime | None
    """When the first of its deadlines is listed (None: it has none)."""


def templates(count: int) -> list[Template]:
    """``count`` cases made by the manager, opened six hours apart: half of them in service (with a
    few contacts recorded), a tenth redirected at screening, the rest at every earlier step."""
    recorder, clock = Recorder(), Clock()
    manager = cm.CaseManager(recorder, clock=clock)
    out = []
    for j in range(count):
        case_id, household_id = f"{CASE_TOKEN}{j:05d}", f"{HOUSEHOLD_TOKEN}{j:05d}"
        base = T0 + dt.timedelta(hours=6 * j)
        path = lifecycle(CASEWORKER_TOKEN, base)
        kind = j % 10
        if kind < 5:
            commands = path + [contact(n) for n in range(j % 4)]
        elif kind == 5:
            commands = [*path[:3], path[6], c.Redirect("food-bank")]
        else:
            commands = path[: (j * 7) % len(path)]
        clock.now = base
        start = len(recorder.commits)
        manager.open_case(
            household(household_id),
            cm.Referral(cm.ReferralChannel.WALK_IN, base),
            actor=actor_for("open"),
            case_id=case_id,
        )
        for k, command in enumerate(commands):
            clock.now = base + dt.timedelta(minutes=10 * (k + 1))
            manager.handle(case_id, command, actor=actor_for(command.event))
        commits = recorder.commits[start:]
        prepared = [prepare_commit(one) for one in commits]
        last = prepared[-1]
        out.append(
            Template(
                case_token=case_id,
                household_token=household_id,
                state=last.state,
                live=last.live,
                assigned=last.caseworker_id is not None,
                next_deadline=sqlite_time(last.next_deadline),
                version=last.version,
                case_text=last.case_text,
                events=[
                    (e.version, e.event, str(sqlite_time(e.occurred_at)), e.text)
                    for p in prepared
                    for e in p.events
                ],
                deadlines=[
                    (d.kind.value, d.subject, str(sqlite_time(d.listed_from)), str(sqlite_time(d.due_at)))
                    for d in last.deadlines
                ],
                outbox=[
                    (n.notification_id, str(sqlite_time(n.created_at)), n.text)
                    for p in prepared
                    for n in p.notifications
                ],
                first_listed=min((d.listed_from for d in last.deadlines), default=None),
            )
        )
    return out


def due_time(tpls: Sequence[Template], share: float = 0.10) -> dt.datetime:
    """The earliest time at which ``share`` of the templates (so of the cases) have a deadline listed."""
    listed = sorted(t.first_listed for t in tpls if t.first_listed is not None)
    return listed[max(math.ceil(share * len(tpls)) - 1, 0)]


@dataclass
class Rows:
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    deadlines: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)

    def count(self) -> int:
        return len(self.cases) + len(self.events) + len(self.deadlines) + len(self.outbox)


def replicate(tpls: Sequence[Template], start: int, stop: int) -> Rows:
    """The rows of cases ``start`` to ``stop - 1``: template ``i % len(tpls)`` with its own ids."""
    rows = Rows()
    for i in range(start, stop):
        t = tpls[i % len(tpls)]
        case_id, household_id, caseworker = f"C{i:07d}", f"H{i:07d}", f"cw-{i % CASEWORKERS:03d}"

        def own(
            text: str, t: Template = t, ids: tuple[str, str, str] = (case_id, household_id, caseworker)
        ) -> str:
            return (
                text.replace(t.case_token, ids[0])
                .replace(t.household_token, ids[1])
                .replace(CASEWORKER_TOKEN, ids[2])
            )

        previous = GENESIS
        for version, event, at, text in t.events:
            text = own(text)
            current = chain_hash(previous, text)
            rows.events.append((TENANT, case_id, version, event, at, text, previous, current))
            previous = current
        rows.cases.append(
            (
                TENANT,
                case_id,
                household_id,
                t.state,
                caseworker if t.assigned else None,
                household_id if t.live else None,
                t.next_deadline,
                t.version,
                previous,
                own(t.case_text),
            )
        )
        rows.deadlines.extend(
            (TENANT, case_id, kind, subject, listed, due) for kind, subject, listed, due in t.deadlines
        )
        for notification_id, at, text in t.outbox:
            nid = own(notification_id)
            rows.outbox.append(outbox_row(nid, case_id, at, own(text)))
    return rows


COLUMNS = {
    "cases": (
        "tenant_id", "case_id", "household_id", "state", "caseworker_id", "live_household_id",
        "next_deadline", "version", "head_hash", "data",
    ),
    "events": ("tenant_id", "case_id", "version", "event", "occurred_at", "data", "prev_hash", "hash"),
    "deadlines": ("tenant_id", "case_id", "kind", "subject", "listed_from", "due_at"),
    "outbox": (
        "tenant_id", "notification_key", "notification_id", "case_id", "created_at", "data", "attempts",
    ),
}  # fmt: skip


def populate(backend: Backend, store: SQLStore, tpls: Sequence[Template], start: int, stop: int) -> int:
    """Bulk-insert cases ``start`` to ``stop - 1`` in one transaction; how many rows."""
    raw = backend.raw(store)
    names = {key: getattr(store.tables, key).name for key in COLUMNS}
    total = 0
    try:
        raw.execute(raw.begin_write)
        for chunk in range(start, stop, 5000):
            rows = replicate(tpls, chunk, min(chunk + 5000, stop))
            total += rows.count()
            for key, columns in COLUMNS.items():
                data = getattr(rows, key)
                if backend.dialect == "sqlite":
                    marks = ", ".join("?" * len(columns))
                    raw.conn.executemany(
                        f"INSERT INTO {names[key]} ({', '.join(columns)}) VALUES ({marks})", data
                    )
                else:
                    with (
                        raw.conn.cursor() as cur,
                        cur.copy(f"COPY {names[key]} ({', '.join(columns)}) FROM STDIN") as copy,
                    ):
                        for row in data:
                            copy.write_row(row)
        raw.execute("COMMIT")
        if backend.dialect == "postgresql":
            raw.execute("ANALYZE")
    finally:
        backend.close_raw(raw)
    return total


def best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class Listing:
    """A listing walked to its end: its size and the time of its first, middle and last page."""

    pages: int
    items: int
    first: float
    middle: float
    last: float


def listing(
    fetch: Callable[[str | None], tuple[list[Any], str | None]],
    expected: int,
    what: str,
    *,
    ordered: bool = True,
) -> Listing:
    """Walk a listing page by page; check that it holds ``expected`` distinct items (in order if
    ``ordered``: the items are their own sort keys), then time its first page, its middle page
    and its last full page again (the very last page may be shorter, so cheaper)."""
    cursors: list[str | None] = [None]
    sizes: list[int] = []
    seen: list[Any] = []
    while True:
        items, after = fetch(cursors[-1])
        seen.extend(items)
        sizes.append(len(items))
        if after is None:
            break
        cursors.append(after)
    full = [i for i, size in enumerate(sizes) if size == sizes[0]]
    if len(seen) != expected or len(set(seen)) != len(seen):
        raise SystemExit(f"{what}: walked {len(seen)} items ({len(set(seen))} distinct), expected {expected}")
    if ordered and seen != sorted(seen):
        raise SystemExit(f"{what}: the pages are not in order")
    repeats = 5
    return Listing(
        len(cursors),
        len(seen),
        best(lambda: fetch(cursors[0]), repeats),
        best(lambda: fetch(cursors[full[len(full) // 2]]), repeats),
        best(lambda: fetch(cursors[full[-1]]), repeats),
    )


@dataclass
class Measures:
    cases: int
    rows: int
    populate: float
    due_items: int
    due: float
    listings: dict[str, Listing]


def count(store: SQLStore, query: Any) -> int:
    assert store.engine is not None
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def measure(
    store: SQLStore, now: dt.datetime, due_before: dt.datetime
) -> tuple[int, float, dict[str, Listing]]:
    t = store.tables
    manager = cm.CaseManager(store, clock=lambda: now)
    listed = count(
        store, select(func.count()).select_from(t.deadlines).where(t.deadlines.c.listed_from <= now)
    )
    items = manager.due(now)
    if len(items) != listed or items != sorted(items):
        raise SystemExit(f"CaseManager.due: {len(items)} items, {listed} deadlines listed in the table")
    due = best(lambda: manager.due(now), 3)

    def due_page(after: str | None) -> tuple[list[Any], str | None]:
        page = store.due(DueQuery(now, limit=DUE_PAGE, after=after))
        return [(d.case_id, d.kind.value, d.subject) for d in page.items], page.next_after

    def cases(**where: Any) -> Callable[[str | None], tuple[list[Any], str | None]]:
        def fetch(after: str | None) -> tuple[list[Any], str | None]:
            page = store.find(CaseQuery(limit=CASE_PAGE, after=after, **where))
            return [one.case_id for one in page.items], page.next_after

        return fetch

    service = cm.CaseState.SERVICE
    by_deadline = t.cases.c.next_deadline <= due_before
    listings = {
        f"store.due pages (limit {DUE_PAGE})": listing(due_page, listed, "store.due", ordered=False),
        f"find(state=service) pages (limit {CASE_PAGE})": listing(
            cases(state=service),
            count(store, select(func.count()).where(t.cases.c.state == service.value)),
            "find(state)",
        ),
        "find(caseworker_id=cw-007) pages": listing(
            cases(caseworker_id="cw-007"),
            count(store, select(func.count()).where(t.cases.c.caseworker_id == "cw-007")),
            "find(caseworker_id)",
        ),
        "find(due_before=now+14d) pages": listing(
            cases(due_before=due_before),
            count(store, select(func.count()).where(by_deadline)),
            "find(due_before)",
            ordered=False,
        ),
    }
    return listed, due, listings


def scale(
    backend: Backend, tpls: Sequence[Template], sizes: Sequence[int], now: dt.datetime
) -> list[Measures]:
    store = backend.store()
    out = []
    have = 0
    try:
        for size in sizes:
            start = time.perf_counter()
            rows = populate(backend, store, tpls, have, size)
            seconds = time.perf_counter() - start
            have = size
            listed, due, listings = measure(store, now, now + dt.timedelta(days=14))
            out.append(Measures(size, rows, seconds, listed, due, listings))
    finally:
        store.close()
        backend.cleanup()
    return out


def report_scale(name: str, results: list[Measures], now: dt.datetime) -> None:
    first, last = results[0], results[-1]
    heading(f"(b) SCALE on {name}: now = {now:%Y-%m-%d %H:%M} UTC")
    sizes = [f"{m.cases:,} cases" for m in results]
    print(f"{'':<44}" + "".join(f"{s:>22}" for s in sizes) + f"{'ratio':>9}  verdict")
    print(
        f"{'populate (bulk insert, rows)':<44}"
        + "".join(f"{duration(m.populate) + f' ({m.rows})':>22}" for m in results)
    )
    ratio = last.due / first.due
    scale_ok = verdict(ratio, SCALE_LIMIT)
    limit_note = f"{verdict(last.due, DUE_SECONDS)} (<= {DUE_SECONDS} s)"
    print(
        f"{'CaseManager.due(now) (items)':<44}"
        + "".join(f"{duration(m.due) + f' ({m.due_items})':>22}" for m in results)
        + f"{ratio:>8.2f}x  {scale_ok} (<= {SCALE_LIMIT:g}x); {limit_note}"
    )
    for key in first.listings:
        print(
            f"{key:<44}"
            + "".join(f"{f'{m.listings[key].pages} pages, {m.listings[key].items}':>22}" for m in results)
        )
        for position in ("first", "middle", "last"):
            times = [getattr(m.listings[key], position) for m in results]
            ratio = times[-1] / times[0]
            worst = max(getattr(m.listings[key], position) / m.listings[key].first for m in results)
            note = f"{verdict(ratio, SCALE_LIMIT)} (<= {SCALE_LIMIT:g}x)"
            if position != "first":
                note += (
                    f"; vs first page {worst:.2f}x: {verdict(worst, POSITION_LIMIT)} (<= {POSITION_LIMIT:g}x)"
                )
            label = "last full" if position == "last" else position
            print(
                f"{'    ' + label + ' page':<44}"
                + "".join(f"{duration(x):>22}" for x in times)
                + f"{ratio:>8.2f}x  {note}"
            )


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=50, help="write path: cases (default 50)")
    parser.add_argument("--steps", type=int, default=12, help="write path: commands per case (default 12)")
    parser.add_argument("--rounds", type=int, default=3, help="write path: rounds, best counts (default 3)")
    parser.add_argument("--sizes", default="10000,100000", help="scale: case counts (default 10000,100000)")
    parser.add_argument(
        "--templates", type=int, default=300, help="scale: distinct cases to copy (default 300)"
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: env, else a throwaway server)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="skip the write path")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale measurements")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if (
        not sizes
        or sizes[0] < 1
        or args.cases < 1
        or args.steps < 1
        or args.rounds < 1
        or args.templates < 10
    ):
        parser.error("sizes, cases, steps and rounds must be positive, templates at least 10")

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        backends: list[Backend] = [SQLiteBackend(tmp, "FULL"), SQLiteBackend(tmp, "OFF")]
        if not args.no_postgres:
            url = stack.enter_context(postgres_url(args.postgres))
            backends.append(PostgresBackend(url))
        print(
            f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version},"
            f" casemgmt_core {cm.__version__}"
        )

        if not args.no_write:
            work = workload(args.cases, args.steps)
            results = []
            for backend in backends:
                commit, handle = write_path(backend, work, args.rounds)
                results.append((backend, commit, handle))
            report_write(results, work, args.rounds)
            prepare, again, decide = cpu_costs(work)
            print(
                f"  CPU alone: prepare_commit {duration(prepare)}/commit in full, {duration(again)} against"
                f" the case's commit before (as the SQL store does), decide {duration(decide)}/command;"
                f" the rows' text alone (no check) {duration(serialise_only(work))}/commit"
            )

        if not args.no_scale:
            tpls = templates(args.templates)
            now = due_time(tpls)
            for backend in backends:
                if isinstance(backend, SQLiteBackend) and backend.synchronous != "FULL":
                    continue
                name = "SQLite (file)" if isinstance(backend, SQLiteBackend) else backend.name
                report_scale(name, scale(backend, tpls, sizes, now), now)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
