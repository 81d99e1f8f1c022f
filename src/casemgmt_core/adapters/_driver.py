"""The statements of the write path, compiled once by SQLAlchemy and run by the driver itself.

A commit is a handful of small statements (the case row, its events, its deadlines, its outbox
rows). Built and executed through SQLAlchemy Core each time, they cost several times what the
driver takes to run them (``benchmarks/storage.py``): SQLAlchemy compiles a multi-row
``INSERT … VALUES`` again on every call, computes a cache key for every statement, and wraps
every transaction in its own bookkeeping. So these statements are written in SQLAlchemy Core
once, compiled for the store's dialect when the store opens (table prefix, schema, quoting and
parameter style all SQLAlchemy's), and run on the DBAPI connection with their parameters
converted by the columns' own bind processors. Everything else the store does goes through
SQLAlchemy as usual.

:class:`Run` is one such statement with its parameters, yielded by a store operation like any
other statement (see :data:`~casemgmt_core.adapters.sql.Steps`); :class:`Rows` is its buffered
result.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from attrs import define, frozen
from sqlalchemy import Dialect, bindparam, insert, select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from ..model import Case
from ..schedule import Deadline
from ..serialization import CheckedCase
from ._schema import StoreTables

__all__ = ["CaseCache", "Known", "Rows", "Run", "Statement", "WriteStatements"]


@frozen
class Statement:
    """A statement as the driver takes it: its SQL text and how to lay out its parameters."""

    sql: str
    names: tuple[str, ...] | None
    """The parameters in positional order; ``None`` where the driver takes them by name."""
    processors: Mapping[str, Callable[[Any], Any]]

    @classmethod
    def compile(
        cls, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> Statement:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        assert isinstance(compiled, SQLCompiler)
        processors = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        names = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(compiled.string, names, processors)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        processors = self.processors
        if self.names is None:
            return {k: processors[k](v) if k in processors else v for k, v in values.items()}
        out = self._positional(values)
        for index, process in self._processed:
            out[index] = process(out[index])
        return tuple(out)

    @functools.cached_property
    def _positional(self) -> Callable[[Mapping[str, Any]], list[Any]]:
        """The values in the driver's order, as a list (one C call for the whole row)."""
        assert self.names is not None
        if len(self.names) < 2:  # itemgetter of one name returns the value, not a tuple
            names = self.names
            return lambda values: [values[name] for name in names]
        get = operator.itemgetter(*self.names)
        return lambda values: list(get(values))

    @functools.cached_property
    def _processed(self) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        """``(position, bind processor)`` of the parameters whose type converts them."""
        assert self.names is not None
        return tuple((i, self.processors[n]) for i, n in enumerate(self.names) if n in self.processors)


# Run and Rows are named tuples: a commit makes several of each, and a tuple is built in a
# fraction of the time of a frozen attrs instance.


class Run(NamedTuple):
    """One :class:`Statement` to run: with one set of parameters, or (``many``) with each of a list."""

    statement: Statement
    parameters: Any
    many: bool = False

    @classmethod
    def one(cls, statement: Statement, **values: Any) -> Run:
        return cls(statement, statement.parameters(values))

    @classmethod
    def each(cls, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> Run:
        return cls(statement, [statement.parameters(row) for row in rows], True)


class Rows(NamedTuple):
    """What a :class:`Run` returned: its rows (read to the end) and how many rows it changed."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


def run_on_cursor(cursor: Any, run: Run) -> Rows:
    """Run ``run`` on a DBAPI cursor."""
    if run.many:
        cursor.executemany(run.statement.sql, run.parameters)
    else:
        cursor.execute(run.statement.sql, run.parameters)
    rows = [tuple(r) for r in cursor.fetchall()] if cursor.description is not None else []
    return Rows(rows, cursor.rowcount)


@define
class WriteStatements:
    """The write path's statements for one store layout and dialect."""

    head: Statement
    """The case's version and chain head, its row locked where the database can."""
    load: Statement
    case_insert: Statement
    case_update: Statement
    case_update_if: Statement
    """The case row updated only where it is still at the version and head the store last wrote."""
    event_insert: Statement
    deadline_delete: Statement
    deadline_insert: Statement
    outbox_key: Statement
    outbox_insert: Statement

    @classmethod
    def build(cls, t: StoreTables, dialect: Dialect) -> WriteStatements:
        cases, events, deadlines, outbox = t.cases, t.events, t.deadlines, t.outbox
        lock = dialect.name != "sqlite"  # SQLite's BEGIN IMMEDIATE already holds the write lock
        key = (cases.c.tenant_id == bindparam("k_tenant"), cases.c.case_id == bindparam("k_case"))
        head = select(cases.c.version, cases.c.head_hash).where(*key)
        values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in CASE_VALUES}
        update = cases.update().where(*key).values(values)
        conditional = update.where(
            cases.c.version == bindparam("k_version"), cases.c.head_hash == bindparam("k_head")
        )

        def rows(table: Any) -> Statement:
            return Statement.compile(
                insert(table), dialect, [c.name for c in table.columns if c.name != "seq"]
            )

        outbox_columns = [
            "tenant_id", "notification_key", "notification_id", "case_id", "created_at", "data", "attempts",
        ]  # fmt: skip
        return cls(
            head=Statement.compile(head.with_for_update() if lock else head, dialect),
            load=Statement.compile(
                select(cases.c.version, cases.c.head_hash, cases.c.data).where(*key), dialect
            ),
            case_insert=rows(cases),
            case_update=Statement.compile(update, dialect),
            case_update_if=Statement.compile(conditional, dialect),
            event_insert=rows(events),
            deadline_delete=Statement.compile(
                deadlines.delete().where(
                    deadlines.c.tenant_id == bindparam("k_tenant"), deadlines.c.case_id == bindparam("k_case")
                ),
                dialect,
            ),
            deadline_insert=rows(deadlines),
            outbox_key=Statement.compile(
                select(outbox.c.notification_key).where(
                    outbox.c.tenant_id == bindparam("k_tenant"),
                    outbox.c.notification_key == bindparam("k_key"),
                ),
                dialect,
            ),
            outbox_insert=Statement.compile(insert(outbox), dialect, outbox_columns),
        )


#: The case row's columns a commit sets (besides its key).
CASE_VALUES = (
    "household_id",
    "state",
    "caseworker_id",
    "live_household_id",
    "next_deadline",
    "version",
    "head_hash",
    "data",
)


@frozen
class Known:
    """What a store last wrote or read of a case in this process."""

    version: int
    head: str
    case: Case
    checked: CheckedCase | None
    """The case as checked when it was written (``None`` when it was read)."""
    deadlines: tuple[Deadline, ...] | None = None
    """The deadlines written with it (``None`` when it was read)."""


class CaseCache:
    """The last :class:`Known` of up to ``size`` cases, the least recently used going first.

    It is a hint, never the truth: the database may have moved on (another process, a host
    transaction rolled back). A write that uses it names the version and head it expects, and
    falls back to reading them when the row is elsewhere.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], Known] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Known | None:
        with self._lock:
            known = self._items.get(key)
            if known is not None:
                self._items.move_to_end(key)
            return known

    def put(self, key: tuple[str, str], known: Known) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._items[key] = known
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
