"""The contract suite against the in-memory store."""

from __future__ import annotations

import datetime as dt

import pytest
from attrs import evolve

from casemgmt_core import InMemoryStore
from casemgmt_core.ports import CaseStore
from casemgmt_core.testing import CaseStoreContract


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
