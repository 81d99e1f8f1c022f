"""Round trips through the ``cattrs`` converter, and malformed input for every loader.

Each event payload type and each model type goes to a dict, to JSON text and back unchanged.
The loaders (policy TOML, stored events and cases, imported households and referrals) answer
malformed input with a typed :class:`~casemgmt_core.CaseManagementError` (``InvalidData``, or
its subclass ``PolicyError``), never another exception, and leave a store as it was.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import enum
import functools
import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from casemgmt_core import commands as c
from casemgmt_core import model, serialization
from casemgmt_core.adapters.memory import InMemoryStore
from casemgmt_core.errors import CaseManagementError, InvalidData, PolicyError
from casemgmt_core.events import Event
from casemgmt_core.model import Actor, Case, CaseState, Household, Referral, ReferralChannel
from casemgmt_core.policy import load_policy
from casemgmt_core.ports import CaseQuery
from casemgmt_core.serialization import (
    MAX_ITEMS,
    MAX_JSON_CHARS,
    MAX_STRING,
    SCHEMA_VERSIONS,
    case_from_dict,
    case_to_dict,
    checked_case,
    checked_dumps,
    converter,
    dumps,
    event_from_dict,
    event_to_dict,
    loads,
)
from casemgmt_core.service import CaseManager

from .builders import T0

ZONES = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=9)), dt.timezone(dt.timedelta(hours=-5))])
AWARE = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1), timezones=ZONES)
# Printable, no white space at either end: fits every identifier and text field of the model.
TEXT = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=12)


def _for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for a type as the model spells it (attrs classes with every field filled)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(st.none() if a is type(None) else _for(a) for a in args))
    if origin is tuple:
        return st.lists(_for(args[0]), max_size=3).map(tuple)
    if origin is frozenset:
        return st.frozensets(_for(args[0]), max_size=3)
    if origin in (dict, Mapping, typing.Mapping):
        return st.dictionaries(_for(args[0]), _for(args[1]), max_size=3)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(tp)
    if attrs.has(tp):
        return st.deferred(lambda: full(tp))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: TEXT,
        bool: st.booleans(),
        int: st.integers(1, 10_000),
        dt.datetime: AWARE,
        dt.date: st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1)),
    }
    return simple[tp]


@st.composite
def _built(draw: Any, cls: type[Any], fields: dict[str, st.SearchStrategy[Any]], refused: bool) -> Any:
    """``cls`` built from drawn fields; what its validators refuse is rejected (or, with
    ``refused``, drawn as ``None``)."""
    values = {name: draw(strategy) for name, strategy in fields.items()}
    try:
        return cls(**values)
    except InvalidData:
        if refused:
            return None
        reject()


@functools.cache
def full(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of an attrs class with every field drawn (defaults included)."""
    attrs.resolve_types(cls, globalns=vars(model) | vars(c) | {"dt": dt})
    return _built(cls, {f.name: _for(f.type) for f in attrs.fields(cls) if f.init}, False)


def maybe(cls: type[Any], *fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``cls`` built from ``fields`` in order, or ``None`` where its validators refuse them."""
    names = [f.name for f in attrs.fields(cls) if f.init]
    return _built(cls, dict(zip(names, fields, strict=False)), True)


#: What ``decide`` fills in of each command: a recorded event always has it.
DECIDED: dict[str, tuple[str, ...]] = {
    "invoke_override": ("report_due_at",),
    "start_aftercare": ("until",),
    "extend_service": ("until",),
    "extend_case": ("until",),
    "redirect": ("reason",),
    "refer_to_counselling": ("reason",),
    "decline": ("reason",),
    "hand_over": ("reason",),
}


def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls, globalns=vars(model) | vars(c) | {"dt": dt})


def _present(tp: Any) -> Any:
    """``X`` of ``X | None``."""
    (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
    return inner


@functools.cache
def recorded(cls: type[c.Command]) -> st.SearchStrategy[Any]:
    """Payloads of ``cls`` as ``decide`` records them (what it fills in is never missing)."""
    hints = _hints(cls)
    fields = {f.name: _for(hints[f.name]) for f in attrs.fields(cls) if f.init}
    for name in DECIDED.get(cls.event, ()):
        fields[name] = _for(_present(hints[name]))
    return _built(cls, fields, False)


MODEL_TYPES = sorted(
    (
        t
        for t in vars(model).values()
        if isinstance(t, type) and attrs.has(t) and t.__module__ == model.__name__
    ),
    key=lambda t: t.__name__,
)
PAYLOAD_TYPES = sorted(c.COMMAND_TYPES.values(), key=lambda t: t.event)


def _through_json(data: Any) -> Any:
    return json.loads(dumps(data))


def test_every_model_and_payload_type_is_covered() -> None:
    assert {t.__name__ for t in MODEL_TYPES} >= {"Case", "Household", "Consent", "ServiceItem", "Referral"}
    assert {t.event for t in PAYLOAD_TYPES} == set(c.COMMAND_TYPES)


@pytest.mark.parametrize("cls", MODEL_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(data=st.data())
def test_model_types_round_trip(cls: type[Any], data: st.DataObject) -> None:
    value = data.draw(full(cls))
    conv = converter()
    text = dumps(conv.unstructure(value, cls))
    assert conv.structure(json.loads(text), cls) == value
    if cls is Case:
        assert case_from_dict(_through_json(case_to_dict(value))) == value


@pytest.mark.parametrize("cls", PAYLOAD_TYPES, ids=lambda t: t.event)
@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(data=st.data())
def test_events_of_every_type_round_trip(cls: type[c.Command], data: st.DataObject) -> None:
    payload = data.draw(recorded(cls))
    event = Event(
        data.draw(TEXT),
        data.draw(st.integers(1, 10_000)),
        cls.event,
        data.draw(st.none() | st.sampled_from(CaseState)),
        data.draw(st.sampled_from(CaseState)),
        payload,
        data.draw(TEXT),
        data.draw(TEXT),
        data.draw(AWARE),
        data.draw(TEXT),
        data.draw(st.none() | TEXT),
        data.draw(st.none() | TEXT),
        data.draw(st.integers(1, 10_000)),
        data.draw(st.none() | full(model.EpisodeRef)),
    )
    stored = _through_json(event_to_dict(event))
    assert (stored["episode"], stored["schema"]) == (event.episode, SCHEMA_VERSIONS[cls.event])
    back = event_from_dict(stored)
    assert back == event
    assert type(back.payload) is cls


@pytest.mark.parametrize("event", sorted(DECIDED))
@given(data=st.data())
def test_a_stored_event_without_what_decide_fills_in_is_refused(event: str, data: st.DataObject) -> None:
    cls = c.COMMAND_TYPES[event]
    payload = data.draw(recorded(cls))
    stored = event_to_dict(Event("C1", 1, event, None, CaseState.REFERRED, payload, "w", "caseworker", T0))
    missing = data.draw(st.sampled_from(DECIDED[event]))
    stored = _through_json(stored)
    stored["payload"][missing] = None
    with pytest.raises(InvalidData, match=missing) as caught:
        event_from_dict(stored)
    assert caught.value.field == "event.payload"


V1_EXITS = {"redirect": {"service": "tutoring"}, "refer_to_counselling": {}, "decline": {"grounds": "no"}}


@pytest.mark.parametrize("event", sorted(V1_EXITS))
def test_a_screening_exit_of_schema_1_loads_with_reason_other(event: str) -> None:
    """Before a reason was recorded with every exit, none was: such an event reads as ``other``."""
    stored = {
        "case_id": "C1",
        "version": 5,
        "event": event,
        "schema": 1,
        "source": "screening",
        "target": CaseState.DECLINED.value,
        "payload": V1_EXITS[event],
        "actor_id": "w",
        "role": "caseworker",
        "occurred_at": T0.isoformat(),
        "note": "",
        "legal_basis": None,
        "correlation_id": None,
    }
    loaded = event_from_dict(stored)
    assert loaded.payload.reason is model.ScreeningReason.OTHER  # type: ignore[attr-defined]
    assert (loaded.episode, loaded.previous_episode) == (1, None)


# -- malformed input ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


@st.composite
def mutated(draw: Any, valid: st.SearchStrategy[Any]) -> Any:
    """A valid JSON document with one place replaced by junk, removed, or given an extra key."""
    doc = _through_json(draw(valid))
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return draw(JSON)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["replace", "delete", "extra"]))
    if how == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "extra" and isinstance(parent, dict):
        parent[draw(TEXT.filter(lambda k: k not in parent))] = draw(JSON)
    else:
        parent[path[-1]] = draw(JSON)
    return doc


def _event_objects() -> st.SearchStrategy[tuple[str, type[Event], Event]]:
    return st.sampled_from(PAYLOAD_TYPES).flatmap(
        lambda cls: recorded(cls).map(
            lambda p: (
                "event",
                Event,
                Event("C1", 1, p.event, None, CaseState.REFERRED, p, "w", "caseworker", T0),
            )
        )
    )


def _events() -> st.SearchStrategy[dict[str, Any]]:
    return _event_objects().map(lambda stored: event_to_dict(stored[2]))


def _loads_or_typed_error(load: Any, doc: Any) -> None:
    """``load(doc)`` returns, or raises InvalidData (any other exception fails the test)."""
    with contextlib.suppress(InvalidData):
        load(doc)


@settings(max_examples=settings.default.max_examples * 2)
@given(doc=st.one_of(JSON, mutated(_events())))
def test_stored_events_load_or_raise_invalid_data(doc: Any) -> None:
    _loads_or_typed_error(event_from_dict, doc)


@settings(max_examples=settings.default.max_examples * 2)
@given(doc=st.one_of(JSON, mutated(full(Case).map(case_to_dict))))
def test_stored_cases_load_or_raise_invalid_data(doc: Any) -> None:
    _loads_or_typed_error(case_from_dict, doc)


def _outcome(conv: Any, doc: Any, cls: type[Any]) -> tuple[str, Any]:
    try:
        return "loaded", conv.structure(copy.deepcopy(doc), cls)
    except Exception:  # the converters raise different exceptions: only that both refuse counts
        return "refused", None


@settings(max_examples=settings.default.max_examples * 2)
@given(
    stored=st.one_of(
        st.tuples(st.just(Event), st.one_of(JSON, mutated(_events()))),
        st.tuples(st.just(Case), st.one_of(JSON, mutated(full(Case).map(case_to_dict)))),
    )
)
def test_the_quick_loader_accepts_exactly_what_the_detailed_one_accepts(stored: Any) -> None:
    # Stores load and check records with the converter without detailed validation first, and
    # fall back to the detailed one only for the error: the two must never disagree on a record.
    cls, doc = stored
    quick = _outcome(serialization._quick_converter(), doc, cls)
    detailed = _outcome(serialization.converter(), doc, cls)
    assert quick[0] == detailed[0]
    if quick[0] == "loaded":
        assert quick[1] == detailed[1]


VALID_POLICY = """
programme = "network"
[eligibility]
jurisdiction = ["R1"]
min_crisis_factors = 2
target_child_age = [6, 13]
[time_limits]
service_item_max_days = 183
[statutory.elder_abuse]
enabled = true
[access]
caseworker = ["open", "start_intake"]
supervisor = ["*"]
"""


@st.composite
def policy_text(draw: Any) -> str:
    """A valid policy with one line changed, dropped, duplicated or garbled, or any text at all."""
    lines = VALID_POLICY.splitlines()
    how = draw(st.sampled_from(["any", "replace", "drop", "dup", "value"]))
    if how == "any":
        return str(draw(st.text(max_size=200)))
    i = draw(st.integers(0, len(lines) - 1))
    if how == "replace":
        lines[i] = draw(st.text(max_size=40))
    elif how == "drop":
        del lines[i]
    elif how == "dup":
        lines.insert(i, lines[i])
    elif "=" in lines[i]:
        key = lines[i].split("=", 1)[0]
        junk = draw(
            st.sampled_from(['"x"', "-1", "0", "[]", '["x", 1]', "{}", "true", "1.5", "[20, 3]", '"*"'])
        )
        lines[i] = f"{key}= {junk}"
    return "\n".join(lines)


def _policy_error(source: Any) -> PolicyError | None:
    """The PolicyError ``load_policy`` raises, or None (any other exception fails the test)."""
    try:
        load_policy(source)
    except PolicyError as error:
        return error
    return None


@settings(max_examples=settings.default.max_examples * 3)
@given(text=policy_text())
def test_policy_loads_or_raises_policy_error(text: str) -> None:
    error = _policy_error(text)
    assert error is None or error.problems


@settings(max_examples=settings.default.max_examples * 2)
@given(doc=st.dictionaries(TEXT, JSON, max_size=5) | mutated(st.just(load_policy_dict := {"programme": "p"})))
def test_policy_mappings_load_or_raise_policy_error(doc: Any) -> None:
    assert load_policy_dict == {"programme": "p"}
    error = _policy_error(doc)
    assert error is None or error.problems


def _snapshot(store: InMemoryStore) -> Any:
    cases = store.find(CaseQuery(limit=1000)).items
    return (
        cases,
        {x.case_id: tuple(store.events(x.case_id)) for x in cases},
        {x.household_id: store.active_case_for_household(x.household_id) for x in cases},
        tuple(store.pending_notifications(limit=1000)),
        store.verify(),
    )


ANY_TEXT = st.text(max_size=12)
MEMBERS = maybe(
    model.Member,
    st.sampled_from(["a", "b", "", "m"]),
    st.dates(),
    ANY_TEXT,
    ANY_TEXT,
    st.none() | st.sampled_from(["a", "b", "zz", ""]),
)
IMPORTED = maybe(
    Household,
    st.sampled_from(["H1", "H2", ""]),
    st.lists(MEMBERS, max_size=4).map(tuple),
    ANY_TEXT,
    st.booleans(),
)
REFERRALS = maybe(
    Referral,
    st.sampled_from(ReferralChannel),
    st.one_of(AWARE, st.datetimes()),
    st.none() | maybe(model.Agency, ANY_TEXT),
)


@settings(max_examples=settings.default.max_examples * 2, deadline=None)
@given(household=IMPORTED, referral=REFERRALS, case_id=st.sampled_from([None, "", "C-new", "C-seed"]))
def test_imported_records_open_a_case_or_change_nothing(
    household: Household | None, referral: Referral | None, case_id: str | None
) -> None:
    if household is None or referral is None:
        return  # refused when built: nothing to import
    store = InMemoryStore()
    manager = CaseManager(store, clock=lambda: T0)
    worker = Actor("w", "caseworker")
    seed = Household("H1", (model.Member("a", dt.date(1980, 1, 1)),), "R1")
    manager.open_case(seed, Referral(ReferralChannel.WALK_IN, T0), actor=worker, case_id="C-seed")
    before = _snapshot(store)
    try:
        case = manager.open_case(household, referral, actor=worker, case_id=case_id)
    except CaseManagementError:
        assert _snapshot(store) == before
        return
    assert case.household == household
    assert store.load(case.case_id) == case
    assert store.verify().ok


# -- strict loading of stored rows ----------------------------------------------------------------

Path = tuple[Any, ...]


def _where(what: str, path: Path) -> str:
    return what + "".join(f".{k}" if isinstance(k, str) else f"[{k}]" for k in path)


def _leaves(value: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _objects(value: Any, path: Path = ()) -> list[Path]:
    out = [path] if isinstance(value, dict) else []
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for k, v in children:
        out += _objects(v, (*path, k))
    return out


def _put(doc: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


#: A value of another JSON type for each leaf type, never one a lenient loader could not coerce.
_OTHER = {str: 1, int: "1", bool: 1}
STORED = st.one_of(
    _events().map(lambda d: ("event", event_from_dict, d)),
    full(Case).map(lambda c: ("case", case_from_dict, _through_json(case_to_dict(c)))),
)


@given(stored=STORED, data=st.data())
def test_a_value_of_another_json_type_is_refused_where_it_stands(stored: Any, data: st.DataObject) -> None:
    what, load, doc = stored
    doc = _through_json(doc)
    leaves = [(p, v) for p, v in _leaves(doc) if type(v) in _OTHER]
    path, value = data.draw(st.sampled_from(leaves))
    _put(doc, path, _OTHER[type(value)])
    with pytest.raises(InvalidData) as caught:
        load(doc)
    assert caught.value.field == _where(what, path)


@given(stored=STORED, data=st.data())
def test_an_unknown_key_is_refused_in_every_object(stored: Any, data: st.DataObject) -> None:
    what, load, doc = stored
    doc = _through_json(doc)
    path = data.draw(st.sampled_from(_objects(doc)))
    target = doc
    for key in path:
        target = target[key]
    target["zz_unknown"] = 0
    with pytest.raises(InvalidData, match="zz_unknown") as caught:
        load(doc)
    assert caught.value.field == _where(what, path)


@given(stored=STORED, data=st.data())
def test_times_need_an_offset_and_dates_are_only_dates(stored: Any, data: st.DataObject) -> None:
    what, load, doc = stored
    doc = _through_json(doc)
    temporal = []
    for path, value in _leaves(doc):
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[^ ]+[+-]\d\d:\d\d", value):
            temporal.append((path, dt.datetime.fromisoformat(value).replace(tzinfo=None).isoformat()))
        elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            temporal.append((path, f"{value}T00:00:00+00:00"))
    path, changed = data.draw(st.sampled_from(temporal))
    _put(doc, path, changed)
    with pytest.raises(InvalidData) as caught:
        load(doc)
    assert caught.value.field == _where(what, path)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        "1" * 5_000,
        "{",
        "",
    ],
    ids=["deep array", "deep object", "huge number", "cut short", "empty"],
)
def test_stored_text_that_is_not_bounded_json_is_invalid_data(text: str) -> None:
    with pytest.raises(InvalidData):
        event_from_dict(loads(text))


def test_stored_text_too_long_or_not_text_is_invalid_data() -> None:
    with pytest.raises(InvalidData, match="longer than"):
        loads(" " * (MAX_JSON_CHARS + 1))
    with pytest.raises(InvalidData, match="JSON text"):
        loads(b"{}")


@pytest.mark.parametrize(
    "junk",
    [
        [[[[[]]]]] * 3,
        {"deep": functools.reduce(lambda inner, _: [inner], range(5_000), [])},
        list(range(MAX_ITEMS + 1)),
        "x" * (MAX_STRING + 1),
        10**40,
        float("nan"),
        object(),
    ],
    ids=[
        "nested arrays",
        "deep nesting",
        "too many items",
        "too long a string",
        "huge number",
        "nan",
        "object",
    ],
)
def test_any_value_in_any_field_is_invalid_data(junk: Any) -> None:
    doc = _through_json(case_to_dict(seeded_case()))
    for path, _ in _leaves(doc):
        changed = copy.deepcopy(doc) if path else doc
        if path:
            _put(changed, path, junk)
        with pytest.raises(InvalidData):
            case_from_dict(changed if path else junk)


def seeded_case() -> Case:
    from casemgmt_core.testing import open_commit

    return open_commit("C1").case


# -- writing: what is stored is what loads back ------------------------------------------------


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(case=full(Case))
def test_a_valid_case_is_written_exactly_as_before(case: Case) -> None:
    assert checked_dumps(case, Case, "case") == dumps(case_to_dict(case))


def _forcible(value: Any, path: Path = ()) -> list[tuple[Any, str, Path, Any]]:
    """``(object, attribute, path, forced value)`` for each attribute below ``value`` that can be
    given a value of a wrong type which writes out like the right one or not at all."""
    out: list[tuple[Any, str, Path, Any]] = []
    if not attrs.has(type(value)):
        return out
    hints = _hints(type(value))
    for f in attrs.fields(type(value)):
        item = getattr(value, f.name)
        here = (*path, f.name)
        optional = type(None) in typing.get_args(hints[f.name])
        if isinstance(item, enum.Enum):
            out.append((value, f.name, here, item.value))
        elif isinstance(item, dt.datetime):
            out.append((value, f.name, here, item.replace(tzinfo=None)))
        elif isinstance(item, dt.date):
            out.append((value, f.name, here, dt.datetime.combine(item, dt.time(), dt.UTC)))
        elif type(item) is bool:
            out.append((value, f.name, here, int(item)))
        elif type(item) is int:
            out.append((value, f.name, here, str(item)))
        elif type(item) is str:
            # None would be a right value of an optional field: a number never is
            out.append((value, f.name, here, 1 if optional else None))
        elif type(item) is tuple:
            out.append((value, f.name, here, list(item)))
            for i, x in enumerate(item):
                out += _forcible(x, (*here, i))
        elif type(item) is frozenset and item:
            out.append((value, f.name, here, frozenset(x.value for x in item)))
        else:
            out += _forcible(item, here)
    return out


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(stored=st.one_of(full(Case).map(lambda c: ("case", Case, c)), _event_objects()), data=st.data())
def test_a_value_forced_past_its_validator_is_refused_and_named(stored: Any, data: st.DataObject) -> None:
    what, cls, value = stored
    target, name, path, forced = data.draw(st.sampled_from(_forcible(value)))
    object.__setattr__(target, name, forced)
    with pytest.raises(InvalidData) as caught:
        checked_dumps(value, cls, what)
    assert caught.value.field == _where(what, path)


# -- the canonical text, and a case checked against its previous version ----------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63) + 1, 2**63 - 1)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


def _standard(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(data=JSON_VALUES)
def test_the_canonical_text_is_the_standard_librarys(data: Any) -> None:
    # Controls, line separators, quotes, backslashes, every plane: the same text, so that chains
    # hashed before the faster writer still verify and both can be read by anyone.
    assert dumps(data) == _standard(data)


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(stored=st.one_of(full(Case).map(lambda c: ("case", Case, c)), _event_objects()))
def test_stored_cases_and_events_are_written_as_the_standard_library_writes_them(stored: Any) -> None:
    _, cls, value = stored
    data = converter().unstructure(value, cls)
    assert checked_dumps(value, cls, "value") == _standard(data)


@pytest.mark.parametrize("value", ["\ud800", 2**64, {1: "a"}], ids=["surrogate", "beyond-64-bits", "int-key"])
def test_what_the_canonical_writer_cannot_write_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        dumps({"x": value})


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(before=full(Case), after=full(Case), data=st.data())
def test_a_case_checked_against_its_previous_version_is_written_as_in_full(
    before: Case, after: Case, data: st.DataObject
) -> None:
    names = [f.name for f in attrs.fields(Case)]
    changed = data.draw(st.sets(st.sampled_from(names)))
    case = attrs.evolve(before, **{name: getattr(after, name) for name in changed})
    previous = checked_case(before, "case")
    checked = checked_case(case, "case", previous)
    assert checked.text == checked_dumps(case, Case, "case")
    assert checked.case is case
    assert case_from_dict(json.loads(checked.text)) == case


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(stored=full(Case), data=st.data())
def test_a_value_forced_into_a_new_version_is_refused_as_in_full(stored: Case, data: st.DataObject) -> None:
    # A copy shares no object with the version checked before it: every forced value is new.
    previous = checked_case(stored, "commit.case")
    value = copy.deepcopy(stored)
    target, name, path, forced = data.draw(st.sampled_from(_forcible(value)))
    object.__setattr__(target, name, forced)
    with pytest.raises(InvalidData) as caught:
        checked_case(value, "commit.case", previous)
    assert caught.value.field == _where("commit.case", path)


def test_an_object_forced_after_it_was_checked_is_stored_as_it_was_checked() -> None:
    # Cases are immutable: a later version shares the objects it did not change, and those are
    # not checked again. One forced behind the validators' back after it was checked (only
    # object.__setattr__ can) is stored as it was checked: still a record that loads.
    case = seeded_case()
    previous = checked_case(case, "case")
    member = case.household.members[0]
    born = member.birth_date
    object.__setattr__(member, "birth_date", "1990-01-01")
    later = attrs.evolve(case, version=case.version + 1, journal_size=1)
    checked = checked_case(later, "case", previous)
    loaded = case_from_dict(json.loads(checked.text))
    assert loaded.household.members[0].birth_date == born
    with pytest.raises(InvalidData):
        checked_dumps(later, Case, "case")


def test_a_checked_case_shows_no_personal_data() -> None:
    case = seeded_case()
    shown = repr(checked_case(case, "case"))
    assert case.household.household_id not in shown
    assert shown == f"CheckedCase(case_id={case.case_id!r}, version={case.version!r})"
