"""Every public entry point, driven with arbitrary values: only ``CaseManagementError`` subclasses
come out, and the store holds exactly what it held (every case and every event)."""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core import model

from .support import SUPERVISOR, T0, WORKER, household, referral, to_service

UTC = dt.UTC

# -- arbitrary values ---------------------------------------------------------------------------

_awkward_text = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs", "Cc", "Cf", "Zl", "Zp")),
    max_size=40,
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    _awkward_text,
    st.sampled_from(["", " ", "C1", "a\nb", "x" * 200, "\u202e", "caseworker", "job_loss", "2026-01-01"]),
    st.binary(max_size=20),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.sampled_from([dt.datetime.min, dt.datetime.max.replace(tzinfo=UTC), T0, dt.date(2090, 1, 1)]),
    st.dates(),
    st.sampled_from(
        list(cm.CaseState)
        + list(cm.CrisisFactor)
        + list(cm.StatutoryGround)
        + list(cm.ApprovalStep)
        + list(cm.ApprovalStatus)
        + list(cm.ScreeningReason)
        + list(cm.ClosureReason)
    ),
    st.just(object()),
)
junk: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=6,
)

#: Valid values of the kinds the API takes, so that calls get past their first argument.
_valid = st.sampled_from(
    [
        WORKER,
        SUPERVISOR,
        household(),
        referral(),
        T0,
        "C1",
        c.StartIntake(),
        c.RecordJournal(cm.JournalKind.CONTACT, "visited"),
        c.ExtendService("S1", "one more term"),
        c.RequestApproval("A1", cm.ApprovalStep.SERVICE_EXTENSION, "S1"),
        c.Approve("A1"),
        c.TransferCase("handing over", caseworker_id="worker-2"),
        c.ReferOut(cm.Agency("provider-1")),
        cm.Agency("provider-1"),
        cm.EpisodeRef("C1", 1),
        cm.Duration(months=6),
        "S1",
        "A1",
        cm.CaseQuery(),
        cm.DEFAULT_POLICY,
        cm.Facts(),
    ]
)
anything = st.one_of(junk, _valid)

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def store(embedded_store: cm.CaseStore) -> cm.CaseStore:
    """Each embedded store, empty."""
    return embedded_store


def only_typed_errors(call: Callable[[], object]) -> None:
    """Run ``call``; anything but a library error propagates and fails the test."""
    with contextlib.suppress(cm.CaseManagementError):
        call()


# -- models and commands: refused when built, or decided, never a raw error ----------------------

MODEL_TYPES = [
    cls
    for cls in vars(model).values()
    if inspect.isclass(cls) and attrs.has(cls) and cls.__module__ == model.__name__
]
COMMAND_TYPES = sorted(c.COMMAND_TYPES.values(), key=lambda t: t.event)


@pytest.mark.parametrize("cls", MODEL_TYPES + COMMAND_TYPES, ids=lambda t: t.__name__)
@SETTINGS
@given(data=st.data())
def test_building_any_model_or_command_raises_only_invalid_data(cls: type, data: st.DataObject) -> None:
    kwargs = {a.name: data.draw(anything, label=a.name) for a in attrs.fields(cls)}
    refused: cm.InvalidData | None = None
    try:
        cls(**kwargs)
    except cm.InvalidData as error:
        refused = error
    assert refused is None or refused.field, "a refusal names its field"


def _case_in_service() -> cm.Case:
    from .support import Driver

    d = Driver()
    return to_service(d)


CASE = _case_in_service()


def _commands(data: st.DataObject) -> Any:
    """A command built from arbitrary values (when its constructor accepts them), or junk."""
    cls = data.draw(st.sampled_from(COMMAND_TYPES))
    kwargs = {a.name: data.draw(anything) for a in attrs.fields(cls)}
    try:
        return cls(**kwargs)
    except cm.InvalidData:
        return data.draw(anything)


@SETTINGS
@given(data=st.data())
def test_decide_raises_only_typed_errors(data: st.DataObject) -> None:
    command = _commands(data)
    args = {
        "case": data.draw(st.one_of(st.just(CASE), st.none(), anything)),
        "policy": data.draw(st.one_of(st.just(cm.DEFAULT_POLICY), anything)),
        "now": data.draw(st.one_of(st.just(T0), anything)),
    }
    kwargs = {
        name: data.draw(st.one_of(st.just(default), anything))
        for name, default in (
            ("actor", WORKER),
            ("facts", cm.Facts()),
            ("note", ""),
            ("correlation_id", None),
        )
    }
    only_typed_errors(lambda: cm.decide(args["case"], command, args["policy"], args["now"], **kwargs))


# -- the manager and the stores: typed errors, and nothing changed -------------------------------


def _filled(store: cm.CaseStore) -> cm.CaseManager:
    manager = cm.CaseManager(store, clock=lambda: T0)
    manager.open_case(household(), referral(), actor=WORKER, case_id="C1")
    manager.handle("C1", c.StartIntake(), actor=WORKER)
    manager.handle("C1", c.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE), actor=WORKER)
    return manager


def _everything(store: cm.CaseStore) -> tuple[object, ...]:
    return (
        store.load("C1"),
        tuple(store.events("C1")),
        tuple(store.pending_notifications(limit=1000)),
        store.active_case_for_household("H1"),
    )


MANAGER_CALLS: dict[str, Callable[[cm.CaseManager, st.DataObject], object]] = {
    "handle": lambda m, d: m.handle(
        d.draw(anything), _commands(d), actor=d.draw(anything), note=d.draw(anything)
    ),
    "handle_valid_case": lambda m, d: m.handle("C1", _commands(d), actor=d.draw(anything)),
    "open_case": lambda m, d: m.open_case(
        d.draw(anything), d.draw(anything), actor=d.draw(anything), case_id=d.draw(anything)
    ),
    "get": lambda m, d: m.get(d.draw(anything)),
    "history": lambda m, d: m.history(d.draw(anything)),
    "journal": lambda m, d: m.journal(d.draw(anything)),
    "refusals": lambda m, d: m.refusals(d.draw(anything)),
    "replay": lambda m, d: m.replay(d.draw(anything)),
    "find": lambda m, d: m.find(d.draw(anything)),
    "due": lambda m, d: m.due(d.draw(anything), query=d.draw(anything)),
    "deliver_pending": lambda m, d: m.deliver_pending(limit=d.draw(anything)),
}


@pytest.mark.parametrize("name", sorted(MANAGER_CALLS))
@SETTINGS
@given(data=st.data())
def test_manager_calls_raise_only_typed_errors_and_change_nothing(
    store: cm.CaseStore, name: str, data: st.DataObject
) -> None:
    if not _has_case(store):
        _filled(store)
    manager = cm.CaseManager(store, clock=lambda: T0)
    before = _everything(store)
    only_typed_errors(lambda: MANAGER_CALLS[name](manager, data))
    if name not in ("handle", "handle_valid_case", "open_case"):
        assert _everything(store) == before
    assert store.verify().ok


def _has_case(store: cm.CaseStore) -> bool:
    try:
        store.load("C1")
    except cm.CaseNotFound:
        return False
    return True


@SETTINGS
@given(data=st.data())
def test_manager_construction_raises_only_typed_errors(data: st.DataObject) -> None:
    names = ("policy", "notifier", "registry", "clock", "new_id", "observe")
    kwargs = {n: data.draw(anything) for n in names if data.draw(st.booleans())}
    only_typed_errors(
        lambda: cm.CaseManager(data.draw(st.one_of(st.just(cm.InMemoryStore()), anything)), **kwargs)
    )


STORE_CALLS: dict[str, Callable[[cm.CaseStore, st.DataObject], object]] = {
    "commit": lambda s, d: s.commit(d.draw(anything)),
    "load": lambda s, d: s.load(d.draw(anything)),
    "events": lambda s, d: s.events(d.draw(anything), after_version=d.draw(anything)),
    "active_case_for_household": lambda s, d: s.active_case_for_household(d.draw(anything)),
    "find": lambda s, d: s.find(d.draw(anything)),
    "record_refusal": lambda s, d: s.record_refusal(d.draw(anything)),
    "refusals": lambda s, d: s.refusals(d.draw(anything)),
    "enqueue": lambda s, d: s.enqueue(d.draw(anything)),
    "pending_notifications": lambda s, d: s.pending_notifications(
        now=d.draw(anything), limit=d.draw(anything)
    ),
    "mark_delivered": lambda s, d: s.mark_delivered(d.draw(anything), d.draw(anything)),
    "mark_failed": lambda s, d: s.mark_failed(
        d.draw(anything), error=d.draw(anything), retry_at=d.draw(anything)
    ),
    "notification_delivered_at": lambda s, d: s.notification_delivered_at(d.draw(anything)),
    "verify": lambda s, d: s.verify(d.draw(anything)),
}


@pytest.mark.parametrize("name", sorted(STORE_CALLS))
@SETTINGS
@given(data=st.data())
def test_store_calls_raise_only_typed_errors_and_change_nothing(
    store: cm.CaseStore, name: str, data: st.DataObject
) -> None:
    if not _has_case(store):
        _filled(store)
    before = _everything(store)
    only_typed_errors(lambda: STORE_CALLS[name](store, data))
    if name not in ("record_refusal", "enqueue"):
        assert _everything(store) == before
    assert store.verify().ok


@SETTINGS
@given(source=anything)
def test_loaders_raise_only_typed_errors(source: Any) -> None:
    from casemgmt_core.simulation.scenario import load_scenario

    only_typed_errors(lambda: cm.load_policy(source))
    only_typed_errors(lambda: load_scenario(source))
    only_typed_errors(lambda: cm.open_store(source))
