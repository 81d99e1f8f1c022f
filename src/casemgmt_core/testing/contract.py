"""The contract every :class:`~casemgmt_core.ports.CaseStore` must meet, as pytest base classes.

:class:`CaseStoreContract` is for every store; :class:`StoredRowsContract` adds the checks of a
store that keeps cases and events as JSON text (rows), which raw access can change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from attrs import evolve

from ..commands import (
    AssignCaseworker,
    Close,
    HandOver,
    RecordCrisisFactor,
    RecordJournal,
    RecordNeed,
    StartIntake,
)
from ..engine import replay
from ..errors import CaseNotFound, ConcurrencyConflict, DuplicateCase, InvalidData, StorageError
from ..events import Event
from ..model import Agency, Case, CaseState, ClosureReason, CrisisFactor, JournalKind, Need, NeedDomain
from ..ports import CaseQuery, CaseStore, ChainProblem, Commit, Notification, NotificationKind, Refusal
from .builders import ACTOR, T0, follow, open_commit

__all__ = ["HOSTILE_COMMITS", "ROW_TAMPERS", "CaseStoreContract", "StoredRowsContract"]

HOUR = dt.timedelta(hours=1)


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

    # -- queries ----------------------------------------------------------------------------

    def _population(self, store: CaseStore) -> None:
        for i in range(7):
            opened = open_commit(f"C{i}", next_deadline=T0 + dt.timedelta(days=i))
            store.commit(opened)
            if i % 2:
                store.commit(
                    follow(
                        opened.case, AssignCaseworker(f"cw-{i % 3}"), next_deadline=T0 + dt.timedelta(days=i)
                    )
                )
            if i == 6:
                store.commit(follow(store.load("C6"), HandOver(Agency("agency-9"))))

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
        # The same instant in another time zone selects the same cases.
        kst = dt.timezone(dt.timedelta(hours=9))
        later = store.find(CaseQuery(due_before=(T0 + dt.timedelta(days=3)).astimezone(kst)))
        assert [c.case_id for c in later.items] == ["C0", "C1", "C2", "C3"]
        with pytest.raises(InvalidData, match="due_before"):
            store.find(CaseQuery(due_before=dt.datetime(2026, 1, 1)))

    def test_find_pages_through_every_match_once(self, store: CaseStore) -> None:
        self._population(store)
        seen: list[str] = []
        offsets: list[int | None] = []
        offset: int | None = 0
        while offset is not None:
            page = store.find(CaseQuery(limit=3, offset=offset))
            seen.extend(c.case_id for c in page.items)
            offsets.append(page.next_offset)
            offset = page.next_offset
        assert seen == [f"C{i}" for i in range(7)]
        assert offsets == [3, 6, None]
        assert store.find(CaseQuery(limit=7)).next_offset is None
        with pytest.raises(InvalidData, match="limit"):
            store.find(CaseQuery(limit=0))
        with pytest.raises(InvalidData, match="offset"):
            store.find(CaseQuery(offset=-1))

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
            ({"offset": 2**31}, "CaseQuery.offset"),
            ({"offset": -1}, "CaseQuery.offset"),
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
        assert CaseQuery(limit=1000, offset=2**31 - 1).limit == 1000


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
