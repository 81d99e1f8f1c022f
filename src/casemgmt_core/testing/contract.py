"""The contract every :class:`~casemgmt_core.ports.CaseStore` must meet, as pytest base classes.

:class:`CaseStoreContract` is for every store; :class:`StoredRowsContract` adds the checks of a
store that keeps cases and events as JSON text (rows), which raw access can change.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from attrs import evolve

from ..adapters import encode_cursor
from ..commands import (
    AssignCaseworker,
    Close,
    HandOver,
    InvokeStatutoryOverride,
    RecordCrisisFactor,
    RecordJournal,
    RecordNeed,
    StartIntake,
)
from ..engine import replay
from ..errors import CaseNotFound, ConcurrencyConflict, DuplicateCase, InvalidData, StorageError
from ..events import Event
from ..model import (
    Agency,
    Case,
    CaseState,
    ClosureReason,
    CrisisFactor,
    JournalKind,
    Need,
    NeedDomain,
    StatutoryGround,
)
from ..policy import DEFAULT_POLICY
from ..ports import (
    MAX_CURSOR,
    CaseQuery,
    CaseStore,
    ChainProblem,
    Commit,
    DuePage,
    DueQuery,
    Notification,
    NotificationKind,
    Page,
    Refusal,
)
from ..schedule import LISTED_ALWAYS, Deadline, DueItem, DueKind
from ..schedule import due as schedule_due
from .builders import ACTOR, T0, deadline, follow, open_commit

__all__ = [
    "HOSTILE_COMMITS",
    "HOSTILE_CURSORS",
    "OTHER",
    "ROW_TAMPERS",
    "CaseStoreContract",
    "StoredRowsContract",
]

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

#: The tenant the tenancy tests use beside the store's own.
OTHER = "tenant-b"


def _note(notification_id: str, case_id: str = "C1") -> Notification:
    return Notification(notification_id, NotificationKind.REMINDER, case_id, f"{case_id}/1", "worker-1", T0)


# -- commits holding values that would not read back --------------------------------------------
#
# Model validators refuse such values when an object is built; these are forced in afterwards
# (``object.__setattr__``) or carried by a hand-built event, which a store must refuse all the same.


def _forced(obj: Any, **values: Any) -> Any:
    """``obj`` with attributes overwritten behind its validators' back."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def _c1() -> Case:
    """Case C1 as :meth:`CaseStoreContract._case_with_events` leaves it (version 5, in intake),
    rebuilt from scratch so that forcing a value never touches what a store holds."""
    opened = open_commit("C1")
    assigned = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
    return follow(
        assigned.case,
        RecordJournal(JournalKind.CONTACT, "첫 상담: 어머니와 통화"),
        RecordJournal(JournalKind.NEW_FINDING, "rent arrears of three months"),
    ).case


def _next(*commands: Any) -> Commit:
    return follow(_c1(), *commands)


def _by_hand(event: str, payload: Any) -> Commit:
    """A commit of one event built by hand (no engine), on C1."""
    case = _c1()
    built = Event(case.case_id, 6, event, case.state, case.state, payload, ACTOR.id, ACTOR.role, T0 + HOUR)
    return Commit(evolve(case, version=6), (built,), (), 5)


def _with_event(commit: Commit, **values: Any) -> Commit:
    _forced(commit.events[0], **values)
    return commit


def _with_case(commit: Commit, **values: Any) -> Commit:
    _forced(commit.case, **values)
    return commit


def _with_payload(commit: Commit, **values: Any) -> Commit:
    _forced(commit.events[0].payload, **values)
    return commit


def _with_note(commit: Commit, **values: Any) -> Commit:
    _forced(commit.notifications[0], **values)
    return commit


def _with_deadlines(commit: Commit, *deadlines: Any) -> Commit:
    return evolve(commit, deadlines=deadlines)


def _born_at_midnight(commit: Commit) -> Commit:
    member = commit.case.household.members[0]
    _forced(member, birth_date=dt.datetime.combine(member.birth_date, dt.time(), dt.UTC))
    return commit


#: ``(what, build, field)``: a commit that no store may accept, and the ``InvalidData.field`` that
#: every store must name (the case it follows is C1 at version 5, see ``_case_with_events``).
HOSTILE_COMMITS: list[tuple[str, Callable[[], Commit], str]] = [
    (
        "journal kind as a plain string",
        lambda: _with_payload(_next(RecordJournal(JournalKind.CONTACT, "x")), kind="contact"),
        "commit.events[0].payload.kind",
    ),
    (
        "crisis factor as a plain string in the payload",
        lambda: _with_payload(_next(RecordCrisisFactor(CrisisFactor.JOB_LOSS)), factor="job_loss"),
        "commit.events[0].payload.factor",
    ),
    (
        "crisis factor as a plain string in the case",
        lambda: _with_case(
            _next(RecordCrisisFactor(CrisisFactor.JOB_LOSS)), crisis_factors=frozenset({"job_loss"})
        ),
        "commit.case.crisis_factors",
    ),
    (
        "need domain as a plain string, in a hand-built event",
        lambda: _by_hand("record_need", RecordNeed(_forced(Need("N1", NeedDomain.HEALTH), domain="health"))),
        "commit.events[0].payload.need.domain",
    ),
    (
        "closure reason as a plain string, in a hand-built event",
        lambda: _with_payload(_by_hand("close", Close(ClosureReason.GOALS_MET)), reason="goals_met"),
        "commit.events[0].payload.reason",
    ),
    (
        "state as a plain string",
        lambda: _with_case(_next(AssignCaseworker("cw-2")), state="intake"),
        "commit.case.state",
    ),
    (
        "birth date as a datetime",
        lambda: _born_at_midnight(_next(AssignCaseworker("cw-2"))),
        "commit.case.household.members[0].birth_date",
    ),
    (
        "birth date as a datetime in an opening event",
        lambda: _born_at_midnight(open_commit("C2")),
        "commit.events[0].payload.household.members[0].birth_date",
    ),
    (
        "naive time on an event",
        lambda: _with_event(_next(AssignCaseworker("cw-2")), occurred_at=dt.datetime(2026, 1, 5, 10)),
        "commit.events[0].occurred_at",
    ),
    (
        "naive time in the case",
        lambda: _with_case(_next(AssignCaseworker("cw-2")), state_entered_at=dt.datetime(2026, 1, 5, 10)),
        "commit.case.state_entered_at",
    ),
    (
        "a string where a number belongs",
        lambda: _with_case(_next(AssignCaseworker("cw-2")), journal_size="2"),
        "commit.case.journal_size",
    ),
    (
        "True where a number belongs",
        lambda: _with_case(_next(AssignCaseworker("cw-2")), episode=True),
        "commit.case.episode",
    ),
    (
        "None where a string belongs",
        lambda: _with_event(_next(AssignCaseworker("cw-2")), actor_id=None),
        "commit.events[0].actor_id",
    ),
    (
        "a list where a tuple belongs",
        lambda: _with_case(_next(AssignCaseworker("cw-2")), needs=[]),
        "commit.case.needs",
    ),
    (
        "a lone surrogate in a note",
        lambda: _with_event(_next(AssignCaseworker("cw-2")), note="\ud800"),
        "commit.events[0].note",
    ),
    (
        "another event type's payload",
        lambda: _with_event(_next(RecordJournal(JournalKind.CONTACT, "x")), payload=StartIntake()),
        "commit.events[0].payload",
    ),
    (
        "notification kind as a plain string",
        lambda: _with_note(_next(AssignCaseworker("cw-2")), kind="assignment"),
        "commit.notifications[0].kind",
    ),
    (
        "a number in a notification's data",
        lambda: _with_note(_next(AssignCaseworker("cw-2")), data={"case_id": "C1", "seq": 1}),
        "commit.notifications[0].data['seq']",
    ),
    (
        "no tuple of deadlines",
        lambda: _forced(_next(AssignCaseworker("cw-2")), deadlines=None),
        "commit.deadlines",
    ),
    (
        "a tuple where a deadline belongs",
        lambda: _with_deadlines(_next(AssignCaseworker("cw-2")), (T0, T0, "C1", DueKind.PLAN, "")),
        "commit.deadlines[0]",
    ),
    (
        "a deadline of another case",
        lambda: _with_deadlines(_next(AssignCaseworker("cw-2")), deadline("C1", T0), deadline("C2", T0)),
        "commit.deadlines[1].case_id",
    ),
    (
        "a naive deadline",
        lambda: _with_deadlines(
            _next(AssignCaseworker("cw-2")), Deadline(T0, dt.datetime(2026, 2, 1), "C1", DueKind.PLAN)
        ),
        "commit.deadlines[0].due_at",
    ),
    (
        "a naive listing time",
        lambda: _with_deadlines(
            _next(AssignCaseworker("cw-2")), Deadline(dt.datetime(2026, 1, 1), T0, "C1", DueKind.PLAN)
        ),
        "commit.deadlines[0].listed_from",
    ),
    (
        "deadline kind as a plain string",
        lambda: _with_deadlines(_next(AssignCaseworker("cw-2")), Deadline(T0, T0, "C1", "plan")),  # type: ignore[arg-type]
        "commit.deadlines[0].kind",
    ),
    (
        "a deadline subject that is not an identifier",
        lambda: _with_deadlines(
            _next(AssignCaseworker("cw-2")), Deadline(T0, T0, "C1", DueKind.SERVICE_ITEM_LIMIT, " S1")
        ),
        "commit.deadlines[0].subject",
    ),
]


# -- page cursors a store did not make ------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode("ascii")


def _standard_alphabet() -> str:
    """A cursor written in the standard base64 alphabet (``+``, ``/``) instead of the URL-safe one."""
    token = encode_cursor("C1>?~~~")
    assert "-" in token or "_" in token
    return token.replace("-", "+").replace("_", "/")


#: ``(what, token)``: cursors that no query of any store accepts (``InvalidData`` naming its ``after``).
HOSTILE_CURSORS: list[tuple[str, str]] = [
    ("garbage", "not a cursor!"),
    ("base64 of text that is not JSON", _b64("C1")),
    ("base64 of a JSON object", _b64('{"case_id": "C1"}')),
    ("base64 of a JSON string", _b64('"C1"')),
    ("an empty list", _b64("[]")),
    ("a list of numbers", _b64("[1]")),
    ("a list with null", _b64('[null, "C1"]')),
    ("a list of lists", _b64('[["C1"], ["C1"], ["C1"], ["C1"]]')),
    ("three parts", encode_cursor("2026-01-05T09:00:00+00:00", "C1", "plan")),
    ("five parts", encode_cursor("2026-01-05T09:00:00+00:00", "C1", "plan", "", "")),
    ("a part too long", encode_cursor("C" * 201)),
    ("a NUL in a part", encode_cursor("C\x00")),
    ("a lone surrogate", encode_cursor("\ud800")),
    ("a line break in a part", encode_cursor("C1\nC2")),
    ("the padding left off", encode_cursor("C10").rstrip("=")),
    ("the standard base64 alphabet", _standard_alphabet()),
    ("a line break in the token", encode_cursor("C10")[:4] + "\n" + encode_cursor("C10")[4:]),
    ("JSON not written as a cursor is", _b64('[ "C1" ]')),
    ("nested 1,500 deep", _b64("[" * 1500)),
    ("too long", encode_cursor("C1") + "A" * MAX_CURSOR),
    ("not ASCII", "WyJDMSJd한"),
    ("not a string", b"WyJDMSJd"),  # type: ignore[list-item]
    ("an integer", 7),  # type: ignore[list-item]
    ("empty", ""),
]


# -- stored rows changed behind a store's back ----------------------------------------------------

DEEP = "[" * 10_000 + "]" * 10_000
"""A JSON array nested 10,000 deep (more than the parser's recursion allows)."""


def _set(key: str, value: Any) -> Callable[[str], str]:
    """An edit of stored JSON text: the top-level ``key`` set to ``value``."""

    def edit(text: str) -> str:
        data = json.loads(text)
        data[key] = value
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    return edit


def _replace(old: str, new: str) -> Callable[[str], str]:
    """An edit of stored JSON text: the text ``old`` (which must be there) replaced by ``new``."""

    def edit(text: str) -> str:
        assert old in text, f"{old!r} is not in the stored text"
        return text.replace(old, new, 1)

    return edit


#: ``(what, edit of an event row, edit of a case row)``: stored JSON the strict loader refuses.
#: The event edited is version 4 of C1 (a journal entry); the case is C1 (caseworker ``cw-1``).
ROW_TAMPERS: list[tuple[str, Callable[[str], str], Callable[[str], str]]] = [
    ("a string where a number belongs", _set("version", "4"), _set("journal_size", "2")),
    ("null where a string belongs", _set("actor_id", None), _set("case_id", None)),
    ("an unknown key", _set("extra", 1), _set("extra", 1)),
    (
        "a time without a UTC offset",
        _set("occurred_at", "2026-01-05T11:00:00"),
        _set("opened_at", "2026-01-05T09:00:00"),
    ),
    ("true where a number belongs", _set("version", True), _set("episode", True)),
    ("a number too large", _set("version", 10**30), _set("journal_size", 10**30)),
    (
        "a datetime where a date belongs",
        _set("occurred_at", "2026-01-05"),
        _replace('"birth_date":"1985-04-01"', '"birth_date":"1985-04-01T00:00:00+00:00"'),
    ),
    (
        "an array nested 10,000 deep",
        _replace('"note":""', f'"note":{DEEP}'),
        _replace('"caseworker_id":"cw-1"', f'"caseworker_id":{DEEP}'),
    ),
    (
        "a lone surrogate",
        _replace('"note":""', '"note":"\\ud800"'),
        _replace('"caseworker_id":"cw-1"', '"caseworker_id":"\\udfff"'),
    ),
    ("not JSON at all", lambda text: text[:-1], lambda text: text[:-1]),
    ("JSON that is not an object", lambda text: "[]", lambda text: "null"),
]


class CaseStoreContract:
    """Subclass it in a test module, provide the ``store`` fixture (an empty store) and the
    tampering hooks, and pytest runs every contract test against your store::

        class TestMyStore(CaseStoreContract):
            @pytest.fixture
            def store(self, tmp_path): ...

    The hooks change stored data behind the store's back, as someone with raw database access
    would; :meth:`delivered_at` reads what the port does not expose.
    """

    @pytest.fixture
    def store(self) -> Iterator[CaseStore]:
        raise NotImplementedError("provide a `store` fixture yielding an empty store")

    def reopen(self, store: CaseStore) -> CaseStore:
        """The same storage seen through a new store object (a durable store opens it again)."""
        return store

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        """Change the stored content of one event (e.g. its note), leaving its hashes alone."""
        raise NotImplementedError

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        raise NotImplementedError

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        """Swap the positions (versions) of two stored events, each keeping its own hashes."""
        raise NotImplementedError

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        """Change the stored case record (e.g. its caseworker) without any event."""
        raise NotImplementedError

    def delivered_at(self, store: CaseStore, notification_id: str) -> dt.datetime | None:
        """When the outbox row was marked delivered (a store may read its table directly)."""
        return store.notification_delivered_at(notification_id)

    # -- helpers ----------------------------------------------------------------------------

    def _case_with_events(
        self, store: CaseStore, case_id: str = "C1", household_id: str | None = None
    ) -> None:
        opened = open_commit(case_id, household_id)
        store.commit(opened)
        assigned = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
        store.commit(assigned)
        store.commit(
            follow(
                assigned.case,
                RecordJournal(JournalKind.CONTACT, "첫 상담: 어머니와 통화"),
                RecordJournal(JournalKind.NEW_FINDING, "rent arrears of three months"),
            )
        )

    # -- commit, load, history --------------------------------------------------------------

    def test_commit_then_load_returns_the_case(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        store.commit(opened)
        assert store.load("C1") == opened.case
        assert self.reopen(store).load("C1") == opened.case

    def test_unknown_case_is_not_found(self, store: CaseStore) -> None:
        with pytest.raises(CaseNotFound):
            store.load("nope")
        with pytest.raises(CaseNotFound):
            store.events("nope")

    def test_history_is_every_event_in_order_and_replays_to_the_case(self, store: CaseStore) -> None:
        self._case_with_events(store)
        history = store.events("C1")
        assert [e.version for e in history] == [1, 2, 3, 4, 5]
        assert [e.event for e in history] == [
            "open",
            "assign",
            "start_intake",
            "record_journal",
            "record_journal",
        ]
        assert history[3].payload == RecordJournal(JournalKind.CONTACT, "첫 상담: 어머니와 통화")
        assert replay(history) == store.load("C1")
        assert [e.version for e in store.events("C1", after_version=3)] == [4, 5]
        assert self.reopen(store).events("C1") == history

    def test_a_commit_records_several_events_at_once(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        store.commit(opened)
        both = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
        store.commit(both)
        assert store.load("C1").version == 3
        assert store.events("C1", after_version=1) == both.events

    # -- optimistic concurrency -------------------------------------------------------------

    def test_stale_version_is_a_conflict_and_changes_nothing(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        store.commit(opened)
        first = follow(opened.case, AssignCaseworker("cw-1"))
        second = follow(opened.case, AssignCaseworker("cw-2"))
        store.commit(first)
        with pytest.raises(ConcurrencyConflict) as caught:
            store.commit(second)
        assert (caught.value.case_id, caught.value.expected_version, caught.value.actual_version) == (
            "C1",
            1,
            2,
        )
        assert store.load("C1") == first.case
        assert [e.payload for e in store.events("C1", after_version=1)] == [AssignCaseworker("cw-1")]
        assert [p.notification.recipient for p in store.pending_notifications()] == ["cw-1"]

    def test_opening_an_existing_case_again_is_a_conflict(self, store: CaseStore) -> None:
        store.commit(open_commit("C1"))
        with pytest.raises(ConcurrencyConflict) as caught:
            store.commit(open_commit("C1"))
        assert caught.value.actual_version == 1
        assert len(store.events("C1")) == 1

    def test_a_version_the_store_has_not_reached_is_a_conflict(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        ahead = follow(follow(opened.case, StartIntake()).case, AssignCaseworker("cw-1"))
        with pytest.raises(ConcurrencyConflict) as caught:
            store.commit(ahead)
        assert caught.value.actual_version is None
        with pytest.raises(CaseNotFound):
            store.load("C1")

    def test_event_versions_must_be_contiguous(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        store.commit(opened)
        step = follow(opened.case, AssignCaseworker("cw-1"), StartIntake())
        gap = Commit(step.case, step.events[1:], (), 1)
        with pytest.raises(InvalidData, match="without gaps"):
            store.commit(gap)
        with pytest.raises(InvalidData, match="at least one event"):
            store.commit(Commit(opened.case, (), (), 1))
        assert store.load("C1") == opened.case
        assert len(store.events("C1")) == 1

    # -- atomicity ----------------------------------------------------------------------------

    def test_a_commit_that_cannot_be_serialised_writes_nothing(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        bad = Notification("n-bad", NotificationKind.REMINDER, "C1", "C1/1", "worker-1", T0, {"x": object()})  # type: ignore[dict-item]
        with pytest.raises(InvalidData):
            store.commit(Commit(opened.case, opened.events, (bad,), 0))
        with pytest.raises(CaseNotFound):
            store.load("C1")
        assert store.pending_notifications() == ()
        assert store.active_case_for_household("H-C1") is None

    def test_a_refused_commit_leaves_no_events_and_no_outbox_rows(self, store: CaseStore) -> None:
        opened = open_commit("C1", "H1")
        store.commit(opened)
        other = open_commit("C2", "H1")
        other = Commit(other.case, other.events, (_note("n-other", "C2"),), 0)
        with pytest.raises(DuplicateCase):
            store.commit(other)
        with pytest.raises(CaseNotFound):
            store.events("C2")
        assert store.pending_notifications() == ()

    # -- one live case per household --------------------------------------------------------

    def test_a_household_has_at_most_one_live_case(self, store: CaseStore) -> None:
        opened = open_commit("C1", "H1")
        store.commit(opened)
        assert store.active_case_for_household("H1") == "C1"
        with pytest.raises(DuplicateCase) as caught:
            store.commit(open_commit("C2", "H1"))
        assert (caught.value.household_id, caught.value.existing_case_id) == ("H1", "C1")
        assert self.reopen(store).active_case_for_household("H1") == "C1"

    def test_a_case_that_is_no_longer_live_frees_the_household(self, store: CaseStore) -> None:
        opened = open_commit("C1", "H1")
        store.commit(opened)
        store.commit(follow(opened.case, HandOver(Agency("agency-9"))))
        assert store.active_case_for_household("H1") is None
        store.commit(open_commit("C2", "H1"))
        assert store.active_case_for_household("H1") == "C2"
        assert store.active_case_for_household("H-unknown") is None

    # -- queries: keyset pages --------------------------------------------------------------

    def _population(self, store: CaseStore) -> None:
        for i in range(7):
            due = (deadline(f"C{i}", T0 + i * DAY),)
            opened = open_commit(f"C{i}", deadlines=due)
            store.commit(opened)
            if i % 2:
                store.commit(follow(opened.case, AssignCaseworker(f"cw-{i % 3}"), deadlines=due))
            if i == 6:
                store.commit(follow(store.load("C6"), HandOver(Agency("agency-9")), deadlines=()))

    def _walk(self, store: CaseStore, query: CaseQuery) -> list[list[str]]:
        """The case ids of every page of ``query``, following ``next_after`` to the end."""
        pages: list[list[str]] = []
        while True:
            page = store.find(query)
            assert len(page.items) <= query.limit
            pages.append([c.case_id for c in page.items])
            if page.next_after is None:
                return pages
            assert type(page.next_after) is str
            assert page.next_after.isascii()
            assert 0 < len(page.next_after) <= MAX_CURSOR
            assert len(pages) <= 1000, "the pages do not end"
            query = evolve(query, after=page.next_after)

    def test_find_by_state_caseworker_and_household(self, store: CaseStore) -> None:
        self._population(store)

        def ids(**kw: object) -> list[str]:
            return [c.case_id for c in store.find(CaseQuery(**kw)).items]  # type: ignore[arg-type]

        assert ids() == [f"C{i}" for i in range(7)]
        assert ids(state=CaseState.HANDED_OVER) == ["C6"]
        assert ids(state=CaseState.REFERRED) == ["C0", "C1", "C2", "C3", "C4", "C5"]
        assert ids(caseworker_id="cw-1") == ["C1"]
        assert ids(caseworker_id="cw-0") == ["C3"]
        assert ids(household_id="H-C4") == ["C4"]
        assert ids(state=CaseState.REFERRED, caseworker_id="cw-2") == ["C5"]
        assert ids(caseworker_id="nobody") == []

    def test_find_due_before(self, store: CaseStore) -> None:
        self._population(store)
        due = store.find(CaseQuery(due_before=T0 + dt.timedelta(days=2)))
        assert [c.case_id for c in due.items] == ["C0", "C1", "C2"]
        assert due.next_after is None
        # The same instant in another time zone selects the same cases.
        kst = dt.timezone(dt.timedelta(hours=9))
        later = store.find(CaseQuery(due_before=(T0 + dt.timedelta(days=3)).astimezone(kst)))
        assert [c.case_id for c in later.items] == ["C0", "C1", "C2", "C3"]
        with pytest.raises(InvalidData, match="due_before"):
            store.find(CaseQuery(due_before=dt.datetime(2026, 1, 1)))

    def test_find_pages_through_every_match_once(self, store: CaseStore) -> None:
        self._population(store)
        every = [f"C{i}" for i in range(7)]
        assert self._walk(store, CaseQuery(limit=3)) == [["C0", "C1", "C2"], ["C3", "C4", "C5"], ["C6"]]
        assert self._walk(store, CaseQuery(limit=1)) == [[i] for i in every]
        # A page that ends at the last match is the last page.
        assert self._walk(store, CaseQuery(limit=7)) == [every]
        assert self._walk(store, CaseQuery(limit=1000)) == [every]
        referred = self._walk(store, CaseQuery(state=CaseState.REFERRED, limit=4))
        assert referred == [["C0", "C1", "C2", "C3"], ["C4", "C5"]]
        assert self._walk(store, CaseQuery(caseworker_id="nobody", limit=2)) == [[]]
        with pytest.raises(InvalidData, match="limit"):
            store.find(CaseQuery(limit=0))

    def test_pages_are_in_code_point_order_of_case_ids(self, store: CaseStore) -> None:
        ids = ["C-b", "C-B", "C-a", "C10", "C2", "c1", "C~", "Cé", "C\uff21", "C\U0001f600", "C한"]
        for case_id in ids:
            store.commit(open_commit(case_id))
        in_order = sorted(ids)  # Python compares strings by code point
        assert self._walk(store, CaseQuery(limit=1000)) == [in_order]
        pages = self._walk(store, CaseQuery(limit=3))
        assert [i for page in pages for i in page] == in_order
        assert [len(page) for page in pages] == [3, 3, 3, 2]

    def test_a_page_after_a_change_neither_repeats_nor_skips(self, store: CaseStore) -> None:
        self._population(store)
        first = store.find(CaseQuery(limit=3))
        assert [c.case_id for c in first.items] == ["C0", "C1", "C2"]
        store.commit(open_commit("C1a"))  # before the cursor: a later page does not show it
        store.commit(open_commit("C9"))
        rest = self._walk(store, CaseQuery(limit=3, after=first.next_after))
        assert rest == [["C3", "C4", "C5"], ["C6", "C9"]]
        # The case a cursor stopped at may change or stop matching: the next page is the same.
        referred = store.find(CaseQuery(state=CaseState.REFERRED, limit=3))
        assert [c.case_id for c in referred.items] == ["C0", "C1", "C1a"]
        store.commit(follow(store.load("C1a"), HandOver(Agency("agency-9"))))
        nxt = store.find(CaseQuery(state=CaseState.REFERRED, limit=3, after=referred.next_after))
        assert [c.case_id for c in nxt.items] == ["C2", "C3", "C4"]

    def test_due_before_pages_in_order_of_deadline_then_case_id(self, store: CaseStore) -> None:
        kst = dt.timezone(dt.timedelta(hours=9))
        deadlines = {
            "D1": T0 + 2 * DAY,
            "D2": T0 + DAY,
            "D3": T0 + 2 * DAY,
            "D0": T0 + 3 * DAY,
            "D4": (T0 + DAY).astimezone(kst),  # the same instant as D2's
            "D7": T0 + DAY + dt.timedelta(microseconds=1),
            "D6": T0 + 10 * DAY,  # after due_before
        }
        for case_id, at in deadlines.items():
            store.commit(open_commit(case_id, deadlines=(deadline(case_id, at),)))
        store.commit(open_commit("D5", deadlines=()))  # nothing pending
        query = CaseQuery(due_before=T0 + 3 * DAY, limit=2)
        pages = self._walk(store, query)
        assert pages == [["D2", "D4"], ["D7", "D1"], ["D3", "D0"]]
        assert self._walk(store, evolve(query, limit=1)) == [
            [i] for i in ["D2", "D4", "D7", "D1", "D3", "D0"]
        ]
        assert self._walk(store, evolve(query, limit=6)) == [["D2", "D4", "D7", "D1", "D3", "D0"]]
        # A case whose deadline moves after the cursor was made is found where it now is.
        first = store.find(query)
        store.commit(
            follow(store.load("D2"), AssignCaseworker("cw-1"), deadlines=(deadline("D2", T0 + DAY),))
        )
        moved = follow(store.load("D0"), AssignCaseworker("cw-1"), deadlines=(deadline("D0", T0 + 2 * DAY),))
        store.commit(moved)
        rest = self._walk(store, evolve(query, after=first.next_after))
        assert rest == [["D7", "D0"], ["D1", "D3"]]

    # -- cursors the store did not make -----------------------------------------------------

    @pytest.mark.parametrize(("what", "token"), HOSTILE_CURSORS, ids=[h[0] for h in HOSTILE_CURSORS])
    def test_a_cursor_the_store_did_not_make_is_invalid_data(
        self, store: CaseStore, what: str, token: str
    ) -> None:
        self._population(store)
        calls: list[tuple[Callable[[], object], str]] = [
            (lambda: store.find(_forced(CaseQuery(), after=token)), "CaseQuery.after"),
            (lambda: store.find(_forced(CaseQuery(due_before=T0 + DAY), after=token)), "CaseQuery.after"),
            (lambda: store.due(_forced(DueQuery(T0), after=token)), "DueQuery.after"),
        ]
        for call, field in calls:
            with pytest.raises(InvalidData) as caught:
                call()
            assert caught.value.field == field, str(caught.value)

    def test_a_cursor_of_another_kind_of_query_is_invalid_data(self, store: CaseStore) -> None:
        self._population(store)
        plain = store.find(CaseQuery(limit=1)).next_after
        by_deadline = store.find(CaseQuery(due_before=T0 + 5 * DAY, limit=1)).next_after
        due = store.due(DueQuery(T0 + 30 * DAY, limit=1)).next_after
        assert plain is not None
        assert by_deadline is not None
        assert due is not None
        for token in (by_deadline, due):
            with pytest.raises(InvalidData) as caught:
                store.find(CaseQuery(after=token))
            assert caught.value.field == "CaseQuery.after"
        for token in (plain, due):
            with pytest.raises(InvalidData) as caught:
                store.find(CaseQuery(due_before=T0 + 5 * DAY, after=token))
            assert caught.value.field == "CaseQuery.after"
        for token in (plain, by_deadline):
            with pytest.raises(InvalidData) as caught:
                store.due(DueQuery(T0, after=token))
            assert caught.value.field == "DueQuery.after"
        # The same kind of query with other filters takes the cursor as a position.
        assert [c.case_id for c in store.find(CaseQuery(state=CaseState.REFERRED, after=plain)).items] == [
            "C1",
            "C2",
            "C3",
            "C4",
            "C5",
        ]

    # -- what is due ------------------------------------------------------------------------

    def _due(self, store: CaseStore, query: DueQuery) -> list[list[DueItem]]:
        """Every page of ``query``, following ``next_after`` to the end."""
        pages: list[list[DueItem]] = []
        while True:
            page = store.due(query)
            assert len(page.items) <= query.limit
            pages.append(list(page.items))
            if page.next_after is None:
                return pages
            assert type(page.next_after) is str
            assert page.next_after.isascii()
            assert 0 < len(page.next_after) <= MAX_CURSOR
            assert len(pages) <= 1000, "the pages do not end"
            query = evolve(query, after=page.next_after)

    def _deadlines(self, store: CaseStore) -> None:
        """C1 (assigned to cw-1) and C2 with deadlines of several kinds, C3 with none."""
        opened = open_commit(
            "C1",
            deadlines=(
                deadline("C1", T0 + 20 * DAY, DueKind.PLAN),
                deadline("C1", T0 + 10 * DAY, DueKind.SERVICE_ITEM_LIMIT, "S2"),
                deadline("C1", T0 + 10 * DAY, DueKind.SERVICE_ITEM_LIMIT, "S1"),
                deadline("C1", T0 + 10 * DAY, DueKind.AGENCY_REFERRAL, "agency-9"),
            ),
        )
        store.commit(opened)
        store.commit(follow(opened.case, AssignCaseworker("cw-1"), deadlines=opened.deadlines))
        store.commit(
            open_commit(
                "C2",
                deadlines=(
                    deadline(
                        "C2",
                        T0 + 2 * HOUR,
                        DueKind.MANDATORY_REPORT,
                        "child_abuse",
                        listed_from=LISTED_ALWAYS,
                    ),
                    deadline(
                        "C2",
                        T0 + 60 * DAY,
                        DueKind.OVERRIDE_CONFIRMATION,
                        "child_abuse",
                        listed_from=LISTED_ALWAYS,
                    ),
                    deadline("C2", T0 + 10 * DAY, DueKind.ASSESSMENT),
                ),
            )
        )
        store.commit(open_commit("C3", deadlines=()))

    def test_due_lists_deadlines_from_when_they_are_listed(self, store: CaseStore) -> None:
        self._deadlines(store)

        def listed(now: dt.datetime) -> list[tuple[str, DueKind, str, bool]]:
            page = store.due(DueQuery(now))
            assert page.next_after is None
            return [(i.case_id, i.kind, i.subject, i.overdue) for i in page.items]

        statutory = [
            ("C2", DueKind.MANDATORY_REPORT, "child_abuse", False),
            ("C2", DueKind.OVERRIDE_CONFIRMATION, "child_abuse", False),
        ]
        # Statutory deadlines are listed from the start; the others from 14 days before.
        assert listed(T0 - 30 * DAY) == statutory
        assert listed(T0 - 4 * DAY - dt.timedelta(microseconds=1)) == statutory
        # listed_from == now: listed. Same listed_from: by case id, then kind, then subject.
        assert listed(T0 - 4 * DAY) == [
            *statutory,
            ("C1", DueKind.AGENCY_REFERRAL, "agency-9", False),
            ("C1", DueKind.SERVICE_ITEM_LIMIT, "S1", False),
            ("C1", DueKind.SERVICE_ITEM_LIMIT, "S2", False),
            ("C2", DueKind.ASSESSMENT, "", False),
        ]
        # Overdue once now is past the deadline (not at it).
        assert listed(T0 + 2 * HOUR)[0] == ("C2", DueKind.MANDATORY_REPORT, "child_abuse", False)
        assert listed(T0 + 2 * HOUR + dt.timedelta(microseconds=1))[0][3] is True
        late = store.due(DueQuery(T0 + 30 * DAY)).items
        assert [(i.case_id, i.kind, i.overdue) for i in late] == [
            ("C2", DueKind.MANDATORY_REPORT, True),
            ("C2", DueKind.OVERRIDE_CONFIRMATION, False),
            ("C1", DueKind.AGENCY_REFERRAL, True),
            ("C1", DueKind.SERVICE_ITEM_LIMIT, True),
            ("C1", DueKind.SERVICE_ITEM_LIMIT, True),
            ("C2", DueKind.ASSESSMENT, True),
            ("C1", DueKind.PLAN, True),
        ]
        assert late[-1] == DueItem(T0 + 20 * DAY, "C1", DueKind.PLAN, "", True)
        for item in late:
            assert item.due_at.utcoffset() == dt.timedelta(0)
        # The same instant in another time zone lists the same.
        kst = dt.timezone(dt.timedelta(hours=9))
        assert store.due(DueQuery((T0 + 30 * DAY).astimezone(kst))).items == late
        assert self.reopen(store).due(DueQuery(T0 + 30 * DAY)).items == late

    def test_due_agrees_with_the_schedule(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        opened = open_commit("C2")
        store.commit(opened)
        intake = follow(opened.case, StartIntake())
        store.commit(intake)
        store.commit(follow(intake.case, InvokeStatutoryOverride(StatutoryGround.CHILD_ABUSE)))
        store.commit(open_commit("C3", at=T0 + 50 * DAY))
        cases = [store.load(i) for i in ("C1", "C2", "C3")]
        for now in (T0, T0 + 20 * DAY, T0 + 40 * DAY, T0 + 400 * DAY, T0 + 4000 * DAY):
            items = store.due(DueQuery(now, limit=10_000)).items
            assert sorted(items) == schedule_due(cases, DEFAULT_POLICY, now), now
            assert [i for page in self._due(store, DueQuery(now, limit=1)) for i in page] == list(items)

    def test_due_filters_by_state_caseworker_and_household(self, store: CaseStore) -> None:
        self._deadlines(store)
        now = T0 + 30 * DAY

        def cases(**kw: Any) -> list[str]:
            return sorted({i.case_id for i in store.due(DueQuery(now, **kw)).items})

        assert cases() == ["C1", "C2"]
        assert cases(caseworker_id="cw-1") == ["C1"]
        assert cases(caseworker_id="cw-2") == []
        assert cases(household_id="H-C2") == ["C2"]
        assert cases(state=CaseState.REFERRED) == ["C1", "C2"]
        assert cases(state=CaseState.INTAKE) == []
        intake = (deadline("C2", T0 + 10 * DAY, DueKind.ASSESSMENT),)
        store.commit(follow(store.load("C2"), StartIntake(), deadlines=intake))
        assert cases(state=CaseState.INTAKE) == ["C2"]
        assert cases(state=CaseState.INTAKE, household_id="H-C1") == []

    def test_due_pages_through_every_item_once(self, store: CaseStore) -> None:
        self._deadlines(store)
        now = T0 + 30 * DAY
        every = store.due(DueQuery(now)).items
        assert len(every) == 7
        for limit in (1, 2, 3, 7, 10_000):
            pages = self._due(store, DueQuery(now, limit=limit))
            assert [i for page in pages for i in page] == list(every)
            assert len(pages) == max(1, -(-len(every) // limit))
        by_worker = self._due(store, DueQuery(now, caseworker_id="cw-1", limit=2))
        assert [len(p) for p in by_worker] == [2, 2]
        early = self._due(store, DueQuery(T0 - 30 * DAY, limit=1))
        assert early == [[evolve(every[0], overdue=False)], [evolve(every[1], overdue=False)]]
        assert self._due(store, DueQuery(now, household_id="H-nobody")) == [[]]

    def test_a_commit_replaces_the_cases_deadlines(self, store: CaseStore) -> None:
        opened = open_commit(
            "C1",
            deadlines=(
                deadline("C1", T0 + DAY, DueKind.ASSESSMENT),
                deadline("C1", T0 + 2 * DAY, DueKind.NO_CONTACT, "unreachable"),
            ),
        )
        store.commit(opened)
        store.commit(open_commit("C2", deadlines=(deadline("C2", T0 + 5 * DAY),)))
        later = T0 + 30 * DAY

        def listed() -> list[tuple[str, DueKind, dt.datetime]]:
            return [(i.case_id, i.kind, i.due_at) for i in store.due(DueQuery(later)).items]

        assert len(listed()) == 3
        assigned = follow(opened.case, AssignCaseworker("cw-1"), deadlines=(deadline("C1", T0 + 3 * DAY),))
        store.commit(assigned)
        assert listed() == [("C1", DueKind.PLAN, T0 + 3 * DAY), ("C2", DueKind.PLAN, T0 + 5 * DAY)]
        # A refused commit changes none of them.
        with pytest.raises(ConcurrencyConflict):
            store.commit(follow(opened.case, AssignCaseworker("cw-2"), deadlines=()))
        with pytest.raises(DuplicateCase):
            store.commit(open_commit("C9", "H-C2", deadlines=(deadline("C9", T0),)))
        assert listed() == [("C1", DueKind.PLAN, T0 + 3 * DAY), ("C2", DueKind.PLAN, T0 + 5 * DAY)]
        # A case with nothing pending any more is no longer due, nor found by its deadline.
        store.commit(follow(assigned.case, StartIntake(), deadlines=()))
        assert listed() == [("C2", DueKind.PLAN, T0 + 5 * DAY)]
        assert [c.case_id for c in store.find(CaseQuery(due_before=later)).items] == ["C2"]
        assert [c.case_id for c in store.find(CaseQuery()).items] == ["C1", "C2"]
        assert [i.case_id for i in self.reopen(store).due(DueQuery(later)).items] == ["C2"]

    def test_deadlines_of_one_kind_and_subject_are_kept_once(self, store: CaseStore) -> None:
        ground = StatutoryGround.CHILD_ABUSE.value
        store.commit(
            open_commit(
                "C1",
                deadlines=(
                    deadline("C1", T0 + 2 * DAY, DueKind.MANDATORY_REPORT, ground, listed_from=LISTED_ALWAYS),
                    deadline("C1", T0 + DAY, DueKind.MANDATORY_REPORT, ground, listed_from=LISTED_ALWAYS),
                ),
            )
        )
        assert store.due(DueQuery(T0)).items == (DueItem(T0 + DAY, "C1", DueKind.MANDATORY_REPORT, ground),)

    # -- refusals ---------------------------------------------------------------------------

    def test_refusals_are_kept_per_case_in_order(self, store: CaseStore) -> None:
        first = Refusal(
            "C1", "select", "w1", "caseworker", T0, "transition_refused", "no consent", "service_consent"
        )
        second = Refusal("C1", "close", "w2", "volunteer", T0 + HOUR, "authorization_denied", "동의 없음")
        store.record_refusal(first)
        store.record_refusal(Refusal("C2", "open", "w1", "caseworker", T0, "duplicate_case", "dup"))
        store.record_refusal(second)
        assert store.refusals("C1") == (first, second)
        assert self.reopen(store).refusals("C2")[0].code == "duplicate_case"
        assert store.refusals("C9") == ()
        with pytest.raises(InvalidData):
            store.record_refusal(Refusal("C1", "x", "w", "r", dt.datetime(2026, 1, 1), "c", "m"))
        assert len(store.refusals("C1")) == 2

    # -- outbox -----------------------------------------------------------------------------

    def test_a_commit_puts_its_notifications_in_the_outbox(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        store.commit(opened)
        assigned = follow(opened.case, AssignCaseworker("cw-1"))
        store.commit(assigned)
        pending = store.pending_notifications()
        assert [p.notification for p in pending] == list(assigned.notifications)
        assert (pending[0].attempts, pending[0].last_error, pending[0].next_attempt_at) == (0, None, None)

    def test_enqueue_is_idempotent_by_notification_id(self, store: CaseStore) -> None:
        a, b = _note("n-a"), _note("n-b")
        assert store.enqueue([a, b, a]) == 2
        assert store.enqueue([a]) == 0
        store.mark_delivered("n-a", T0)
        assert store.enqueue([a, _note("n-c")]) == 1
        assert [p.notification.notification_id for p in store.pending_notifications()] == ["n-b", "n-c"]

    def test_pending_is_oldest_first_and_limited(self, store: CaseStore) -> None:
        store.enqueue([_note(f"n-{i}") for i in range(5)])
        assert [p.notification.notification_id for p in store.pending_notifications(limit=3)] == [
            "n-0",
            "n-1",
            "n-2",
        ]
        with pytest.raises(InvalidData, match="limit"):
            store.pending_notifications(limit=0)

    def test_a_failed_notification_waits_until_its_retry_time(self, store: CaseStore) -> None:
        store.enqueue([_note("n-a"), _note("n-b")])
        retry = T0 + HOUR
        store.mark_failed("n-a", error="SMTP 451", retry_at=retry)
        ids = [
            p.notification.notification_id
            for p in store.pending_notifications(now=retry - dt.timedelta(seconds=1))
        ]
        assert ids == ["n-b"]
        due = store.pending_notifications(now=retry)
        assert [p.notification.notification_id for p in due] == ["n-a", "n-b"]
        assert (due[0].attempts, due[0].last_error, due[0].next_attempt_at) == (1, "SMTP 451", retry)
        store.mark_failed("n-a", error="timeout", retry_at=retry + HOUR)
        again = self.reopen(store).pending_notifications()[0]
        assert (again.attempts, again.last_error, again.next_attempt_at) == (2, "timeout", retry + HOUR)

    def test_delivery_is_recorded_once(self, store: CaseStore) -> None:
        store.enqueue([_note("n-a"), _note("n-b")])
        store.mark_delivered("n-a", T0)
        store.mark_delivered("n-a", T0 + HOUR)
        assert self.delivered_at(store, "n-a") == T0
        assert [p.notification.notification_id for p in store.pending_notifications()] == ["n-b"]
        # A failure reported after delivery does not bring the notification back.
        store.mark_failed("n-a", error="late report", retry_at=T0)
        assert [p.notification.notification_id for p in store.pending_notifications(now=T0 + HOUR)] == ["n-b"]
        assert self.delivered_at(store, "n-b") is None

    def test_outbox_rejects_unknown_ids_and_naive_times(self, store: CaseStore) -> None:
        store.enqueue([_note("n-a")])
        with pytest.raises(InvalidData, match="n-x"):
            store.mark_delivered("n-x", T0)
        with pytest.raises(InvalidData, match="n-x"):
            store.mark_failed("n-x", error="e", retry_at=T0)
        with pytest.raises(InvalidData, match="retry_at"):
            store.mark_failed("n-a", error="e", retry_at=dt.datetime(2026, 1, 1))
        with pytest.raises(InvalidData, match="now"):
            store.pending_notifications(now=dt.datetime(2026, 1, 1))
        with pytest.raises(InvalidData):
            store.enqueue(
                [
                    Notification(
                        "n-naive", NotificationKind.REMINDER, "C1", "C1/1", "w", dt.datetime(2026, 1, 1)
                    )
                ]
            )
        pending = store.pending_notifications()
        assert [(p.notification.notification_id, p.attempts) for p in pending] == [("n-a", 0)]

    # -- audit chain ------------------------------------------------------------------------

    def test_verify_passes_on_an_untouched_store(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        self._case_with_events(store, "C2")
        report = store.verify()
        assert report.ok
        assert report.first is None
        assert (report.cases_checked, report.events_checked) == (2, 10)
        assert store.verify("C2").events_checked == 5
        with pytest.raises(CaseNotFound):
            store.verify("nope")

    def test_verify_names_an_edited_event(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        self._case_with_events(store, "C2")
        self.edit_event(store, "C2", 4)
        report = store.verify()
        assert len(report.broken) == 1
        link = report.first
        assert link is not None
        assert (link.case_id, link.version, link.problem) == ("C2", 4, ChainProblem.ALTERED)
        assert "case C2, version 4: altered" in str(link)
        assert store.verify("C1").ok

    def test_verify_names_a_deleted_event(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        self.delete_event(store, "C1", 2)
        link = store.verify("C1").first
        assert link is not None
        assert (link.case_id, link.version, link.problem) == ("C1", 2, ChainProblem.MISSING)

    def test_verify_names_a_deleted_last_event(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        self.delete_event(store, "C1", 5)
        link = store.verify().first
        assert link is not None
        assert (link.case_id, link.version, link.problem) == ("C1", 5, ChainProblem.MISSING)

    def test_verify_names_reordered_events(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        self.swap_events(store, "C1", 2, 3)
        link = store.verify().first
        assert link is not None
        assert (link.case_id, link.version, link.problem) == ("C1", 2, ChainProblem.REORDERED)

    def test_verify_names_an_edited_case_record(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        self.edit_case(store, "C1")
        link = store.verify().first
        assert link is not None
        assert (link.case_id, link.version, link.problem) == ("C1", 5, ChainProblem.SNAPSHOT)

    # -- delivery time --------------------------------------------------------------------------

    def test_the_delivery_time_is_reported_in_utc(self, store: CaseStore) -> None:
        store.enqueue([_note("n-a"), _note("n-b")])
        assert store.notification_delivered_at("n-a") is None
        kst = dt.timezone(dt.timedelta(hours=9))
        store.mark_delivered("n-a", (T0 + HOUR).astimezone(kst))
        store.mark_delivered("n-a", T0 + 2 * HOUR)
        for seen in (store, self.reopen(store)):
            at = seen.notification_delivered_at("n-a")
            assert at == T0 + HOUR
            assert at is not None
            assert at.utcoffset() == dt.timedelta(0)
            assert seen.notification_delivered_at("n-b") is None
        with pytest.raises(InvalidData, match="n-x") as caught:
            store.notification_delivered_at("n-x")
        assert caught.value.field == "notification_id"

    def test_a_notification_delivered_with_a_commit_is_reported(self, store: CaseStore) -> None:
        opened = open_commit("C1")
        store.commit(opened)
        assigned = follow(opened.case, AssignCaseworker("cw-1"))
        store.commit(assigned)
        [note] = assigned.notifications
        assert store.notification_delivered_at(note.notification_id) is None
        store.mark_delivered(note.notification_id, T0)
        assert store.notification_delivered_at(note.notification_id) == T0

    # -- tenancy ----------------------------------------------------------------------------

    def test_a_tenant_sees_nothing_of_another(self, store: CaseStore) -> None:
        self._seeded(store)
        store.commit(open_commit("C2", deadlines=(deadline("C2", T0),)))
        before = self._everything(store)
        other = store.for_tenant(OTHER)
        assert other.tenant_id == OTHER
        assert other.for_tenant(store.tenant_id).load("C1") == store.load("C1")
        far = T0 + 1000 * DAY
        not_found: list[Callable[[CaseStore], object]] = [
            lambda s: s.load("C1"),
            lambda s: s.events("C1"),
            lambda s: s.events("C1", after_version=2),
            lambda s: s.verify("C1"),
        ]
        unknown: list[Callable[[CaseStore], object]] = [
            lambda s: s.notification_delivered_at("n-seen"),
            lambda s: s.mark_delivered("n-seen", T0),
            lambda s: s.mark_failed("n-seen", error="e", retry_at=T0),
        ]
        for seen in (other, self.reopen(store).for_tenant(OTHER)):
            for call in not_found:
                with pytest.raises(CaseNotFound):
                    call(seen)
            assert seen.active_case_for_household("H-C1") is None
            assert seen.find(CaseQuery(limit=1000)) == Page((), None)
            assert seen.find(CaseQuery(due_before=far)) == Page((), None)
            assert seen.due(DueQuery(far)) == DuePage((), None)
            assert seen.refusals("C1") == ()
            assert seen.pending_notifications(limit=1000) == ()
            assert seen.pending_notifications(now=far) == ()
            report = seen.verify()
            assert (report.cases_checked, report.events_checked, report.ok) == (0, 0, True)
            for call in unknown:
                with pytest.raises(InvalidData, match="n-seen") as caught:
                    call(seen)
                assert caught.value.field == "notification_id"
        assert self._everything(store) == before

    def test_a_tenant_changes_nothing_of_another(self, store: CaseStore) -> None:
        before = self._seeded(store)
        other = store.for_tenant(OTHER)
        # The same ids in the other tenant: the same case, household and notification ids.
        self._case_with_events(other, "C1")
        refusal = Refusal("C1", "close", "w9", "caseworker", T0 + HOUR, "transition_refused", "later")
        other.record_refusal(refusal)
        assert other.enqueue([_note("n-seen")]) == 1
        other.mark_delivered("n-seen", T0)
        assigned = other.pending_notifications()[0].notification.notification_id
        other.mark_failed(assigned, error="SMTP 451", retry_at=T0 + HOUR)
        with pytest.raises(ConcurrencyConflict):
            other.commit(open_commit("C1"))
        assert self._everything(store) == before
        assert self._everything(self.reopen(store)) == before
        assert other.refusals("C1") == (refusal,)
        assert other.notification_delivered_at("n-seen") == T0
        assert store.notification_delivered_at("n-seen") is None
        assert [
            p.attempts for p in other.pending_notifications() if p.notification.notification_id == assigned
        ] == [1]
        assert [
            p.attempts for p in store.pending_notifications() if p.notification.notification_id == assigned
        ] == [0]

    def test_the_same_case_id_in_two_tenants_is_two_cases(self, store: CaseStore) -> None:
        self._case_with_events(store, "C1")
        other = store.for_tenant(OTHER)
        opened = open_commit("C1")
        other.commit(opened)
        assert other.load("C1") == opened.case
        assert store.load("C1").version == 5
        # Each tenant's case has its own version: a commit based on the other one's conflicts.
        with pytest.raises(ConcurrencyConflict) as caught:
            other.commit(follow(store.load("C1"), AssignCaseworker("cw-9")))
        assert (caught.value.expected_version, caught.value.actual_version) == (5, 1)
        with pytest.raises(ConcurrencyConflict):
            store.commit(follow(opened.case, AssignCaseworker("cw-9")))
        other.commit(follow(opened.case, AssignCaseworker("cw-9")))
        assert [e.version for e in other.events("C1")] == [1, 2]
        assert [e.payload for e in other.events("C1", after_version=1)] == [AssignCaseworker("cw-9")]
        assert [e.version for e in store.events("C1")] == [1, 2, 3, 4, 5]
        assert store.load("C1").caseworker_id == "cw-1"
        # And its own hash chain.
        assert (other.verify().cases_checked, other.verify().events_checked) == (1, 2)
        assert (store.verify().cases_checked, store.verify().events_checked) == (1, 5)
        assert other.verify().ok
        assert store.verify().ok
        assert [c.case_id for c in other.find(CaseQuery(caseworker_id="cw-9")).items] == ["C1"]
        assert store.find(CaseQuery(caseworker_id="cw-9")).items == ()

    def test_a_household_may_have_a_live_case_in_each_tenant(self, store: CaseStore) -> None:
        store.commit(open_commit("C1", "H1"))
        other = store.for_tenant(OTHER)
        other.commit(open_commit("C2", "H1"))
        assert store.active_case_for_household("H1") == "C1"
        assert other.active_case_for_household("H1") == "C2"
        with pytest.raises(DuplicateCase) as caught:
            other.commit(open_commit("C3", "H1"))
        assert caught.value.existing_case_id == "C2"
        other.commit(follow(other.load("C2"), HandOver(Agency("agency-9"))))
        assert other.active_case_for_household("H1") is None
        assert store.active_case_for_household("H1") == "C1"
        with pytest.raises(DuplicateCase) as caught:
            store.commit(open_commit("C3", "H1"))
        assert caught.value.existing_case_id == "C1"
        other.commit(open_commit("C3", "H1"))
        assert other.active_case_for_household("H1") == "C3"

    def test_each_tenant_has_its_own_outbox(self, store: CaseStore) -> None:
        other = store.for_tenant(OTHER)
        assert store.enqueue([_note("n-a"), _note("n-only-here")]) == 2
        assert other.enqueue([_note("n-a")]) == 1
        assert other.enqueue([_note("n-a")]) == 0
        other.mark_delivered("n-a", T0)
        assert other.notification_delivered_at("n-a") == T0
        assert store.notification_delivered_at("n-a") is None
        assert [p.notification.notification_id for p in store.pending_notifications()] == [
            "n-a",
            "n-only-here",
        ]
        assert other.pending_notifications() == ()
        store.mark_failed("n-a", error="timeout", retry_at=T0 + HOUR)
        assert [p.notification.notification_id for p in store.pending_notifications(now=T0)] == [
            "n-only-here"
        ]
        assert other.notification_delivered_at("n-a") == T0
        with pytest.raises(InvalidData, match="n-only-here") as caught:
            other.mark_delivered("n-only-here", T0)
        assert caught.value.field == "notification_id"
        assert store.notification_delivered_at("n-only-here") is None

    def test_refusals_are_kept_per_tenant(self, store: CaseStore) -> None:
        mine = Refusal("C1", "close", "w1", "caseworker", T0, "transition_refused", "not yet")
        theirs = Refusal("C1", "open", "w2", "caseworker", T0, "duplicate_case", "dup")
        store.record_refusal(mine)
        store.for_tenant(OTHER).record_refusal(theirs)
        assert store.refusals("C1") == (mine,)
        assert store.for_tenant(OTHER).refusals("C1") == (theirs,)
        assert self.reopen(store).for_tenant(OTHER).refusals("C1") == (theirs,)

    def test_pages_and_cursors_stay_within_a_tenant(self, store: CaseStore) -> None:
        self._population(store)
        other = store.for_tenant(OTHER)
        for case_id, days in (("C1", 9), ("C4b", 0), ("D1", 2)):
            other.commit(open_commit(case_id, deadlines=(deadline(case_id, T0 + days * DAY),)))
        # A cursor of one tenant's page, used in another, is only a position among its own cases.
        mine = store.find(CaseQuery(limit=3)).next_after  # after C2
        assert [c.case_id for c in other.find(CaseQuery(after=mine)).items] == ["C4b", "D1"]
        assert self._walk(other, CaseQuery(limit=1)) == [["C1"], ["C4b"], ["D1"]]
        by_deadline = store.find(CaseQuery(due_before=T0 + 9 * DAY, limit=2)).next_after  # after C1
        assert [
            c.case_id for c in other.find(CaseQuery(due_before=T0 + 9 * DAY, after=by_deadline)).items
        ] == [
            "D1",
            "C1",
        ]
        now = T0 + 30 * DAY
        due_mine = store.due(DueQuery(now, limit=2)).next_after  # after C1's
        assert [i.case_id for i in other.due(DueQuery(now, after=due_mine)).items] == ["D1", "C1"]
        assert [i.case_id for i in other.due(DueQuery(now)).items] == ["C4b", "D1", "C1"]
        assert [c.case_id for c in store.find(CaseQuery(after=mine)).items] == ["C3", "C4", "C5", "C6"]

    @pytest.mark.parametrize("tenant", ["", " b", "b ", "x" * 129, "a\x00b", "\u200b", 5, None, b"b"])
    def test_a_tenant_id_that_is_not_an_identifier_is_invalid_data(
        self, store: CaseStore, tenant: Any
    ) -> None:
        with pytest.raises(InvalidData) as caught:
            store.for_tenant(tenant)
        assert caught.value.field == "tenant_id"
        assert store.for_tenant("x" * 128).tenant_id == "x" * 128

    # -- nothing unreadable is stored -------------------------------------------------------------

    def _everything(self, store: CaseStore) -> tuple[Any, ...]:
        """All a store shows of C1, C2, their household and the outbox."""

        def c2() -> object:
            try:
                return store.load("C2")
            except CaseNotFound:
                return None

        return (
            store.load("C1"),
            tuple(store.events("C1")),
            tuple(store.refusals("C1")),
            c2(),
            store.active_case_for_household("H-C1"),
            store.find(CaseQuery(limit=1000)).items,
            store.find(CaseQuery(due_before=T0 + 1000 * DAY, limit=1000)).items,
            store.due(DueQuery(T0 + 1000 * DAY, limit=10_000)),
            tuple(store.pending_notifications(limit=1000)),
            store.notification_delivered_at("n-seen"),
            store.verify(),
        )

    def _seeded(self, store: CaseStore) -> tuple[Any, ...]:
        self._case_with_events(store)
        store.record_refusal(Refusal("C1", "close", "w1", "caseworker", T0, "transition_refused", "not yet"))
        store.enqueue([_note("n-seen")])
        return self._everything(store)

    @pytest.mark.parametrize(("what", "build", "field"), HOSTILE_COMMITS, ids=[h[0] for h in HOSTILE_COMMITS])
    def test_a_commit_that_would_not_read_back_is_refused_and_changes_nothing(
        self, store: CaseStore, what: str, build: Callable[[], Commit], field: str
    ) -> None:
        before = self._seeded(store)
        with pytest.raises(InvalidData) as caught:
            store.commit(build())
        # The same field on every store: each store's suite asserts this same list.
        assert caught.value.field == field, str(caught.value)
        assert self._everything(store) == before
        assert self.reopen(store).events("C1") == before[1]

    def test_outbox_and_refusals_refuse_what_would_not_read_back(self, store: CaseStore) -> None:
        before = self._seeded(store)
        hostile = _forced(_note("n-bad"), kind="reminder")
        with pytest.raises(InvalidData) as caught:
            store.enqueue([_note("n-fine"), hostile])
        assert caught.value.field == "notifications[1].kind"
        bad = Refusal("C1", "close", "w1", "caseworker", T0, "transition_refused", 5)  # type: ignore[arg-type]
        with pytest.raises(InvalidData) as caught:
            store.record_refusal(bad)
        assert caught.value.field == "refusal.message"
        assert self._everything(store) == before

    # -- every method checks its input ----------------------------------------------------------

    @pytest.mark.parametrize(
        ("call", "field"),
        [
            (lambda s: s.load(123), "case_id"),
            (lambda s: s.load(""), "case_id"),
            (lambda s: s.events(None), "case_id"),
            (lambda s: s.events("C1", after_version="1"), "after_version"),
            (lambda s: s.events("C1", after_version=True), "after_version"),
            (lambda s: s.events("C1", after_version=-1), "after_version"),
            (lambda s: s.events("C1", after_version=2**63), "after_version"),
            (lambda s: s.active_case_for_household(7), "household_id"),
            (lambda s: s.find("state=intake"), "query"),
            (lambda s: s.find(_forced(CaseQuery(), limit=2**63)), "CaseQuery.limit"),
            (lambda s: s.find(_forced(CaseQuery(), state="intake")), "CaseQuery.state"),
            (lambda s: s.find(_forced(CaseQuery(), after="A" * 4096)), "CaseQuery.after"),
            (lambda s: s.find(_forced(CaseQuery(), after="WyJDMSJd한")), "CaseQuery.after"),
            (lambda s: s.find(CaseQuery(after="not a cursor")), "CaseQuery.after"),
            (lambda s: s.due(None), "query"),
            (lambda s: s.due(CaseQuery()), "query"),
            (lambda s: s.due(_forced(DueQuery(T0), now=None)), "DueQuery.now"),
            (lambda s: s.due(_forced(DueQuery(T0), now=dt.datetime(2026, 1, 5))), "DueQuery.now"),
            (lambda s: s.due(_forced(DueQuery(T0), now="2026-01-05T09:00:00+00:00")), "DueQuery.now"),
            (lambda s: s.due(_forced(DueQuery(T0), limit=0)), "DueQuery.limit"),
            (lambda s: s.due(_forced(DueQuery(T0), limit=10_001)), "DueQuery.limit"),
            (lambda s: s.due(_forced(DueQuery(T0), state="intake")), "DueQuery.state"),
            (lambda s: s.due(_forced(DueQuery(T0), caseworker_id="")), "DueQuery.caseworker_id"),
            (lambda s: s.due(DueQuery(T0, after="not a cursor")), "DueQuery.after"),
            (lambda s: s.for_tenant(""), "tenant_id"),
            (lambda s: s.for_tenant(None), "tenant_id"),
            (lambda s: s.commit(_forced(open_commit("C2"), deadlines=None)), "commit.deadlines"),
            (lambda s: s.commit(None), "commit"),
            (
                lambda s: s.commit(_forced(open_commit("C2"), expected_version=False)),
                "commit.expected_version",
            ),
            (lambda s: s.commit(_forced(open_commit("C2"), events=None)), "commit.events"),
            (lambda s: s.record_refusal(None), "refusal"),
            (lambda s: s.refusals(b"C1"), "case_id"),
            (lambda s: s.enqueue("abc"), "notifications"),
            (lambda s: s.enqueue(None), "notifications"),
            (lambda s: s.enqueue([None]), "notifications[0]"),
            (lambda s: s.pending_notifications(limit=True), "limit"),
            (lambda s: s.pending_notifications(limit=2**63), "limit"),
            (lambda s: s.pending_notifications(limit="10"), "limit"),
            (lambda s: s.pending_notifications(now="2026-01-05"), "now"),
            (lambda s: s.mark_delivered(None, T0), "notification_id"),
            (lambda s: s.mark_delivered("n-seen", "now"), "at"),
            (lambda s: s.mark_failed("n-seen", error=None, retry_at=T0), "error"),
            (lambda s: s.mark_failed("n-seen", error="e", retry_at=dt.datetime(2026, 1, 5)), "retry_at"),
            (lambda s: s.mark_failed("n-seen", error="a\x00b", retry_at=T0), "error"),
            (lambda s: s.mark_failed(5, error="e", retry_at=T0), "notification_id"),
            (lambda s: s.notification_delivered_at(1), "notification_id"),
            (lambda s: s.verify(5), "case_id"),
        ],
    )
    def test_bad_arguments_are_invalid_data_and_change_nothing(
        self, store: CaseStore, call: Callable[[CaseStore], object], field: str
    ) -> None:
        before = self._seeded(store)
        with pytest.raises(InvalidData) as caught:
            call(store)
        assert caught.value.field == field, str(caught.value)
        assert self._everything(store) == before

    def test_a_query_is_checked_when_built(self) -> None:
        wrong: list[tuple[dict[str, Any], str]] = [
            ({"limit": 2**63}, "CaseQuery.limit"),
            ({"limit": True}, "CaseQuery.limit"),
            ({"limit": 1001}, "CaseQuery.limit"),
            ({"after": ""}, "CaseQuery.after"),
            ({"after": "A" * (MAX_CURSOR + 1)}, "CaseQuery.after"),
            ({"after": "WyJDMSJd한"}, "CaseQuery.after"),
            ({"after": 5}, "CaseQuery.after"),
            ({"state": "intake"}, "CaseQuery.state"),
            ({"caseworker_id": ""}, "CaseQuery.caseworker_id"),
            ({"household_id": 5}, "CaseQuery.household_id"),
            ({"due_before": dt.datetime(2026, 1, 1)}, "CaseQuery.due_before"),
            ({"due_before": "2026-01-01T00:00:00+00:00"}, "CaseQuery.due_before"),
        ]
        for bad, field in wrong:
            with pytest.raises(InvalidData) as caught:
                CaseQuery(**bad)
            assert caught.value.field == field
        with pytest.raises(InvalidData, match="limit"):
            evolve(CaseQuery(), limit=0)
        assert CaseQuery(limit=1000, after="A" * MAX_CURSOR).limit == 1000
        due_wrong: list[tuple[dict[str, Any], str]] = [
            ({"now": None}, "DueQuery.now"),
            ({"now": dt.datetime(2026, 1, 1)}, "DueQuery.now"),
            ({"now": T0, "limit": 0}, "DueQuery.limit"),
            ({"now": T0, "limit": 10_001}, "DueQuery.limit"),
            ({"now": T0, "state": "intake"}, "DueQuery.state"),
            ({"now": T0, "household_id": " H1"}, "DueQuery.household_id"),
            ({"now": T0, "after": "A" * (MAX_CURSOR + 1)}, "DueQuery.after"),
        ]
        for bad, field in due_wrong:
            with pytest.raises(InvalidData) as caught:
                DueQuery(**bad)
            assert caught.value.field == field
        assert DueQuery(T0, limit=10_000).limit == 10_000


class StoredRowsContract(CaseStoreContract):
    """The contract of a store that keeps cases and events as JSON text, with two more hooks
    that rewrite that text behind the store's back.

    What such a store reads back is loaded strictly: a row it did not write that way (a string
    for a number, null for a string, an unknown key, a time without an offset, nesting no
    parser can follow...) is a :class:`~casemgmt_core.StorageError` when loaded, and a broken
    link, not an exception, for :meth:`~casemgmt_core.ports.CaseStore.verify`.
    """

    def rewrite_event(self, store: CaseStore, case_id: str, version: int, edit: Callable[[str], str]) -> None:
        """Replace the stored JSON of one event by ``edit`` of it, leaving its hashes alone."""
        raise NotImplementedError

    def rewrite_case(self, store: CaseStore, case_id: str, edit: Callable[[str], str]) -> None:
        """Replace the stored JSON of one case record by ``edit`` of it."""
        raise NotImplementedError

    @pytest.mark.parametrize(("what", "edit", "_"), ROW_TAMPERS, ids=[t[0] for t in ROW_TAMPERS])
    def test_an_event_row_that_was_not_written_so_is_unreadable(
        self, store: CaseStore, what: str, edit: Callable[[str], str], _: object
    ) -> None:
        self._case_with_events(store, "C1")
        self._case_with_events(store, "C2")
        self.rewrite_event(store, "C1", 4, edit)
        with pytest.raises(StorageError, match="C1/4"):
            store.events("C1")
        assert [e.version for e in store.events("C1", after_version=4)] == [5]
        assert store.load("C1").version == 5
        report = store.verify()
        assert [(b.case_id, b.version, b.problem) for b in report.broken] == [
            ("C1", 4, ChainProblem.UNREADABLE)
        ]
        assert store.verify("C2").ok

    @pytest.mark.parametrize(("what", "_", "edit"), ROW_TAMPERS, ids=[t[0] for t in ROW_TAMPERS])
    def test_a_case_row_that_was_not_written_so_is_unreadable(
        self, store: CaseStore, what: str, _: object, edit: Callable[[str], str]
    ) -> None:
        self._case_with_events(store, "C1")
        self._case_with_events(store, "C2")
        self.rewrite_case(store, "C1", edit)
        with pytest.raises(StorageError, match="C1"):
            store.load("C1")
        assert len(store.events("C1")) == 5
        assert store.load("C2").version == 5
        report = store.verify()
        assert [(b.case_id, b.version, b.problem) for b in report.broken] == [
            ("C1", 5, ChainProblem.SNAPSHOT)
        ]
        assert "cannot be loaded" in report.broken[0].detail
