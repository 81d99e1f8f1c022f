"""The contract every :class:`~casemgmt_core.ports.CaseStore` must meet, as a pytest base class."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from ..commands import AssignCaseworker, HandOver, RecordJournal, StartIntake
from ..engine import replay
from ..errors import CaseNotFound, ConcurrencyConflict, DuplicateCase, InvalidData
from ..model import Agency, CaseState, JournalKind
from ..ports import CaseQuery, CaseStore, ChainProblem, Commit, Notification, NotificationKind, Refusal
from .builders import T0, follow, open_commit

__all__ = ["CaseStoreContract"]

HOUR = dt.timedelta(hours=1)


def _note(notification_id: str, case_id: str = "C1") -> Notification:
    return Notification(notification_id, NotificationKind.REMINDER, case_id, f"{case_id}/1", "worker-1", T0)


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
        raise NotImplementedError

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
