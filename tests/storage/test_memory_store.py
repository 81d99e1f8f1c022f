"""The contract suite against the in-memory store."""

from __future__ import annotations

import datetime as dt

import pytest
from attrs import evolve

from casemgmt_core import InMemoryStore
from casemgmt_core.commands import AssignCaseworker, StartIntake
from casemgmt_core.errors import InvalidData
from casemgmt_core.ports import DEFAULT_TENANT, CaseQuery, CaseStore, ChainProblem
from casemgmt_core.testing import CaseStoreContract, follow, open_commit


def _memory(store: CaseStore) -> InMemoryStore:
    assert isinstance(store, InMemoryStore)
    return store


class TestInMemoryStore(CaseStoreContract):
    @pytest.fixture
    def store(self) -> CaseStore:
        return InMemoryStore()

    # The hooks reach into the dictionaries, as raw database access would reach into tables.

    def edit_event(self, store: CaseStore, case_id: str, version: int) -> None:
        events = _memory(store)._events[case_id]
        events[version - 1] = evolve(events[version - 1], note="edited afterwards")

    def delete_event(self, store: CaseStore, case_id: str, version: int) -> None:
        del _memory(store)._events[case_id][version - 1]
        del _memory(store)._hashes[case_id][version - 1]

    def swap_events(self, store: CaseStore, case_id: str, a: int, b: int) -> None:
        events, rows = _memory(store)._events[case_id], _memory(store)._hashes[case_id]
        events[a - 1], events[b - 1] = events[b - 1], events[a - 1]
        # Each event keeps its hashes; the version keys stay where they are.
        (va, *ha), (vb, *hb) = rows[a - 1], rows[b - 1]
        rows[a - 1], rows[b - 1] = (va, hb[0], hb[1]), (vb, ha[0], ha[1])

    def edit_case(self, store: CaseStore, case_id: str) -> None:
        cases = _memory(store)._cases
        cases[case_id] = evolve(cases[case_id], caseworker_id="someone-else")

    def delivered_at(self, store: CaseStore, notification_id: str) -> dt.datetime | None:
        return _memory(store)._delivered.get(notification_id)


# -- objects changed behind the store's back -------------------------------------------------


def _stored(store: InMemoryStore) -> InMemoryStore:
    opened = open_commit("C1")
    store.commit(opened)
    store.commit(follow(opened.case, AssignCaseworker("cw-1"), StartIntake()))
    store.commit(open_commit("C2"))
    return store


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", "referred"),
        ("occurred_at", dt.datetime(2026, 1, 5, 10)),
        ("version", "2"),
        ("note", "\ud800"),
        ("payload", object()),
        ("actor_id", None),
    ],
)
def test_verify_reports_an_event_object_that_no_longer_reads_back(field: str, value: object) -> None:
    store = _stored(InMemoryStore())
    object.__setattr__(store._events["C1"][1], field, value)
    report = store.verify()
    assert [(b.case_id, b.version, b.problem) for b in report.broken] == [("C1", 2, ChainProblem.UNREADABLE)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("state", "intake"), ("version", "3"), ("household", None), ("opened_at", dt.datetime(2026, 1, 5))],
)
def test_verify_reports_a_case_object_that_differs_from_its_events(field: str, value: object) -> None:
    store = _stored(InMemoryStore())
    object.__setattr__(store._cases["C1"], field, value)
    report = store.verify()
    assert [(b.case_id, b.problem) for b in report.broken] == [("C1", ChainProblem.SNAPSHOT)]


def test_the_store_keeps_equal_objects_and_never_shares_them_with_a_refused_commit() -> None:
    store = _stored(InMemoryStore())
    case = store.load("C1")
    step = follow(case, AssignCaseworker("cw-2"))
    object.__setattr__(step.case, "state", "intake")
    with pytest.raises(InvalidData, match=r"commit\.case\.state"):
        store.commit(step)
    assert store.load("C1") is case
    assert store.verify().ok


# -- tenants ----------------------------------------------------------------------------------


def test_tenants_share_one_storage_and_nothing_else() -> None:
    store = InMemoryStore()
    assert store.tenant_id == DEFAULT_TENANT
    other = store.for_tenant("tenant-b")
    assert repr(other) == "InMemoryStore(tenant='tenant-b')"
    store.commit(open_commit("C1"))
    assert store.for_tenant(DEFAULT_TENANT).load("C1") is store.load("C1")
    assert other.for_tenant(DEFAULT_TENANT).load("C1") is store.load("C1")
    assert InMemoryStore("tenant-b")._cases is not other._cases  # another store is other storage
    assert InMemoryStore().find(CaseQuery()).items == ()
    with pytest.raises(InvalidData) as caught:
        InMemoryStore(tenant=" b")
    assert caught.value.field == "tenant_id"
