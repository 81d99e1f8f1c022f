"""JSON-ready (un)structuring of cases, events and notifications with ``cattrs``.

Each event's payload carries a schema version per event type (:data:`SCHEMA_VERSIONS`). When a
payload's shape changes, its version goes up and an upcaster (registered with :func:`upcaster`)
turns the older stored shape into the newer one, so that every event ever stored still loads.
The output is deterministic (sets are sorted), which the stores' hash chains rely on.

Loading is strict, because what it reads was written by this module and anything else is damage
or tampering: nothing is coerced (``"1"`` is not ``1``, ``null`` is not a string, ``true`` is not
``1``), unknown keys are refused, datetimes need an ISO 8601 string with a UTC offset, dates are
exactly ``YYYY-MM-DD``, enumerations load from their exact values, tuples and sets only from
JSON arrays. Sizes are bounded (:data:`MAX_JSON_CHARS`, :data:`MAX_ITEMS`, :data:`MAX_STRING`,
:data:`MAX_INT`), and the loader descends no deeper than the types do. Writing is strict too:
:func:`checked_dumps` loads what it wrote back with this loader before it is stored.
"""

from __future__ import annotations

import collections.abc
import datetime as dt
import functools
import json
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.json import make_converter

from .commands import COMMAND_TYPES, Command
from .errors import InvalidData
from .events import Event
from .model import Case, CaseState, EpisodeRef
from .ports import Notification, Refusal

__all__ = [
    "MAX_INT",
    "MAX_ITEMS",
    "MAX_JSON_CHARS",
    "MAX_STRING",
    "SCHEMA_VERSIONS",
    "case_from_dict",
    "CheckedCase",
    "case_to_dict",
    "checked_case",
    "checked_dumps",
    "converter",
    "dumps",
    "event_from_dict",
    "event_to_dict",
    "loads",
    "notification_from_dict",
    "notification_to_dict",
    "refusal_from_dict",
    "refusal_to_dict",
    "upcaster",
]

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: The current schema version of each event type's payload. Bump it when a payload changes,
#: and register an upcaster from the previous version.
SCHEMA_VERSIONS: dict[str, int] = dict.fromkeys(COMMAND_TYPES, 1) | {
    # 2: ``member_id`` and ``confirm_by`` added.
    "invoke_override": 2,
    # 2: ``delivered_at`` added.
    "file_report": 2,
    # 2: ``previous_episode`` added.
    "open": 2,
    # 2: ``reason`` added (the screening result); version 1 recorded none: ``other``.
    "redirect": 2,
    "refer_to_counselling": 2,
    "decline": 2,
    "hand_over": 2,
    # 2: ``version``, ``goals`` and ``approval_id`` added.
    "approve_plan": 2,
    # 2: ``approval_id`` added.
    "link_service": 2,
    "close": 2,
    "start_aftercare": 2,
    # 2: ``lapsed_consents`` added.
    "reopen": 2,
    # 2: the goal's ``revision``, ``dropped_at`` and ``drop_reason`` added.
    "set_goal": 2,
    # 2: ``team_id`` added.
    "assign": 2,
}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}

#: Longest stored JSON text, in characters (far above any real case, low enough to parse safely).
MAX_JSON_CHARS = 16 * 1024 * 1024
#: Most items in one stored array or object.
MAX_ITEMS = 100_000
#: Longest stored string, in characters.
MAX_STRING = 1_000_000
#: Largest magnitude of a stored whole number (a signed 64-bit integer).
MAX_INT = 2**63 - 1

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number"}


def upcaster(event: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning a stored ``event`` payload of ``from_version`` into the next."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event, from_version)] = fn
        return fn

    return register


class _Misfit(ValueError):
    """A value that does not fit its declared type (the message never shows the value)."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), "a number" if type(value) is float else type(value).__name__)


# -- strict structure hooks -------------------------------------------------------------------


@functools.cache
def _members(enum: type[Enum]) -> tuple[dict[Any, Enum], frozenset[type]]:
    return {m.value: m for m in enum}, frozenset(type(m.value) for m in enum)


def _structure_enum(value: Any, enum: type[Enum]) -> Enum:
    members, value_types = _members(enum)
    # The exact type first: ``True == 1`` and ``1.0 == 1`` would otherwise find a member.
    if type(value) in value_types:
        member = members.get(value)
        if member is not None:
            return member
        raise _Misfit(f"not one of the {enum.__name__} values")
    raise _Misfit(f"expected a {enum.__name__} value, not {_kind(value)}")


def _structure_str(value: Any, tp: Any) -> Any:
    if tp is not str:
        # A str-based enumeration reaches this hook through its str base class.
        if isinstance(tp, type) and issubclass(tp, Enum):
            return _structure_enum(value, tp)
        raise _Misfit(f"cannot load a {getattr(tp, '__name__', tp)}")
    if type(value) is not str:
        raise _Misfit(f"expected a string, not {_kind(value)}")
    if len(value) > MAX_STRING:
        raise _Misfit(f"a string of {len(value)} characters is longer than {MAX_STRING}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise _Misfit("the string holds a lone surrogate, which is not Unicode text") from None
    return value


def _structure_int(value: Any, tp: Any) -> Any:
    if tp is not int:
        if isinstance(tp, type) and issubclass(tp, Enum):
            return _structure_enum(value, tp)
        raise _Misfit(f"cannot load a {getattr(tp, '__name__', tp)}")
    if type(value) is not int:
        raise _Misfit(f"expected a whole number, not {_kind(value)}")
    if not -MAX_INT <= value <= MAX_INT:
        raise _Misfit("the number is out of range")
    return value


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is float and value == value and abs(value) != float("inf"):
        return value
    if type(value) is int and -MAX_INT <= value <= MAX_INT:
        return float(value)
    raise _Misfit(f"expected a finite number, not {_kind(value)}")


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise _Misfit(f"expected true or false, not {_kind(value)}")
    return value


def _structure_datetime(value: Any, _: Any) -> dt.datetime:
    if type(value) is not str or len(value) > 64:
        raise _Misfit(f"expected an ISO 8601 date and time with a UTC offset, not {_kind(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Misfit("expected an ISO 8601 date and time with a UTC offset") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Misfit("the date and time has no UTC offset")
    return parsed


def _structure_date(value: Any, _: Any) -> dt.date:
    if type(value) is not str:
        raise _Misfit(f"expected a date as YYYY-MM-DD, not {_kind(value)}")
    if not _DATE.fullmatch(value):
        raise _Misfit("expected a date as YYYY-MM-DD (a date and time is not a date)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _Misfit("not a calendar date") from None


def _items(value: Any, elem_type: Any, handler: Callable[[Any, Any], Any], tp: Any) -> list[Any]:
    """The items of a JSON array, each structured; errors are collected the way cattrs does."""
    if type(value) is not list:
        raise _Misfit(f"expected an array, not {_kind(value)}")
    if len(value) > MAX_ITEMS:
        raise _Misfit(f"an array of {len(value)} items is longer than {MAX_ITEMS}")
    try:
        return [handler(item, elem_type) for item in value]
    except Exception:  # structured again below, one item at a time, to say where
        errors: list[Exception] = []
    for index, item in enumerate(value):
        try:
            handler(item, elem_type)
        except Exception as exc:  # collected and re-raised as one group below
            exc.__notes__ = [
                *getattr(exc, "__notes__", []),
                IterableValidationNote(f"Structuring {tp} @ index {index}", index, elem_type),
            ]
            errors.append(exc)
    raise IterableValidationError(f"While structuring {tp!r}", errors, tp)


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_frozenset(tp: Any) -> bool:
    return typing.get_origin(tp) is frozenset and len(typing.get_args(tp)) == 1


def _is_mapping(tp: Any) -> bool:
    return typing.get_origin(tp) in (collections.abc.Mapping, dict) and len(typing.get_args(tp)) == 2


def _is_optional(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args


def _optional_inner(tp: Any) -> Any:
    return next(a for a in typing.get_args(tp) if a is not type(None))


# -- the converter ----------------------------------------------------------------------------


@functools.cache
def converter() -> cattrs.Converter:
    """The converter for stored JSON: deterministic output, strict loading (see the module)."""
    return _build_converter(detailed_validation=True)


@functools.cache
def _quick_converter() -> cattrs.Converter:
    """:func:`converter` without cattrs' detailed validation, which takes about 40 % of the time
    to load an event (measured on the events of ``benchmarks/storage.py``). It accepts exactly
    what :func:`converter` accepts (the same hooks; only how errors are gathered differs), so
    what it refuses is loaded again with :func:`converter` for an error that names every place."""
    return _build_converter(detailed_validation=False)


def _build_converter(*, detailed_validation: bool) -> cattrs.Converter:
    conv = make_converter(forbid_extra_keys=True, detailed_validation=detailed_validation)
    _configure_unstructure(conv)
    _configure_structure(conv)
    return conv


def _configure_unstructure(conv: cattrs.Converter) -> None:
    conv.register_unstructure_hook(frozenset, lambda s: sorted(conv.unstructure(x) for x in s))
    # A predicate hook for the base class only: a class hook would also catch every subclass
    # and recurse forever; the subclasses use the generated attrs hooks.
    conv.register_unstructure_hook_func(
        lambda t: t is Command, lambda p: conv.unstructure(p, unstructure_as=type(p))
    )

    def enum_out(enum: type[Enum]) -> Callable[[Any], Any]:
        return lambda value: _enum_value(value, enum)

    conv.register_unstructure_hook_factory(lambda t: isinstance(t, type) and issubclass(t, Enum), enum_out)
    for enum in _enums_in(Case, Event, Notification, Refusal, *COMMAND_TYPES.values()):
        # Class hooks come before predicate hooks, and ``str`` has one (a StrEnum is a str).
        conv.register_unstructure_hook(enum, enum_out(enum))

    def optional_out(tp: Any) -> Callable[[Any], Any]:
        inner = conv.get_unstructure_hook(_optional_inner(tp))
        return lambda value: None if value is None else inner(value)

    conv.register_unstructure_hook_factory(_is_optional, optional_out)

    def frozenset_out(tp: Any) -> Callable[[Any], Any]:
        inner = conv.get_unstructure_hook(typing.get_args(tp)[0])

        def unstructure(value: Any) -> list[Any]:
            if type(value) is not frozenset:
                raise _Misfit(f"expected a frozenset, not {type(value).__name__}")
            return sorted(inner(x) for x in value)

        return unstructure

    conv.register_unstructure_hook_factory(_is_frozenset, frozenset_out)

    def unstructure_event(e: Event) -> dict[str, Any]:
        if type(e.event) is not str or e.event not in COMMAND_TYPES:
            raise _Misfit("not a known event type")
        if type(e.payload) is not COMMAND_TYPES[e.event]:
            raise _Misfit(f"the payload is not a command of the event type {e.event!r}")
        return {
            "case_id": e.case_id,
            "version": e.version,
            "event": e.event,
            "schema": SCHEMA_VERSIONS[e.event],
            "source": None if e.source is None else _enum_value(e.source, CaseState),
            "target": _enum_value(e.target, CaseState),
            "payload": conv.unstructure(e.payload, unstructure_as=type(e.payload)),
            "actor_id": e.actor_id,
            "role": e.role,
            "occurred_at": e.occurred_at.isoformat(),
            "note": e.note,
            "legal_basis": e.legal_basis,
            "correlation_id": e.correlation_id,
            "episode": e.episode,
            "previous_episode": None
            if e.previous_episode is None
            else conv.unstructure(e.previous_episode, unstructure_as=EpisodeRef),
        }

    conv.register_unstructure_hook(Event, unstructure_event)


def _enum_value(value: Any, enum: type[Enum]) -> Any:
    # A plain string equal to an enumeration's value would be written exactly like the member
    # and compare equal to it after loading, so only its type can tell it apart.
    if type(value) is not enum:
        raise _Misfit(f"expected a {enum.__name__}, not {type(value).__name__}")
    return value.value


def _enums_in(*roots: type) -> set[type[Enum]]:
    """Every enumeration used by the fields of ``roots`` and the attrs classes they hold."""
    found: set[type[Enum]] = set()
    seen: set[type] = set()

    def visit(tp: Any) -> None:
        for arg in typing.get_args(tp):
            visit(arg)
        if isinstance(tp, type) and issubclass(tp, Enum):
            found.add(tp)
        elif isinstance(tp, type) and attrs.has(tp) and tp not in seen:
            seen.add(tp)
            for hint in typing.get_type_hints(tp).values():
                visit(hint)

    for root in roots:
        visit(root)
    return found


def _configure_structure(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(dt.datetime, _structure_datetime)
    conv.register_structure_hook(dt.date, _structure_date)
    conv.register_structure_hook(Enum, _structure_enum)

    def optional_in(tp: Any) -> Callable[[Any, Any], Any]:
        inner_type = _optional_inner(tp)
        inner = conv.get_structure_hook(inner_type)
        return lambda value, _: None if value is None else inner(value, inner_type)

    def tuple_in(tp: Any) -> Callable[[Any, Any], Any]:
        elem_type = typing.get_args(tp)[0]
        handler = conv.get_structure_hook(elem_type)

        def structure(value: Any, _: Any) -> tuple[Any, ...]:
            if value == [] and type(value) is list:  # most of a case's collections are empty
                return ()
            return tuple(_items(value, elem_type, handler, tp))

        return structure

    def frozenset_in(tp: Any) -> Callable[[Any, Any], Any]:
        elem_type = typing.get_args(tp)[0]
        handler = conv.get_structure_hook(elem_type)
        return lambda value, _: frozenset(_items(value, elem_type, handler, tp))

    def mapping_in(tp: Any) -> Callable[[Any, Any], Any]:
        key_type, value_type = typing.get_args(tp)
        key_hook, value_hook = conv.get_structure_hook(key_type), conv.get_structure_hook(value_type)

        def structure(value: Any, _: Any) -> dict[Any, Any]:
            if type(value) is not dict:
                raise _Misfit(f"expected an object, not {_kind(value)}")
            if len(value) > MAX_ITEMS:
                raise _Misfit(f"an object of {len(value)} keys is larger than {MAX_ITEMS}")
            out: dict[Any, Any] = {}
            errors: list[Exception] = []
            for index, (k, v) in enumerate(value.items()):
                try:
                    out[key_hook(k, key_type)] = value_hook(v, value_type)
                except Exception as exc:  # collected and re-raised as one group below
                    # A short string key names the place; a long or odd one only its position.
                    place = k if type(k) is str and len(k) <= 40 else index
                    exc.__notes__ = [
                        *getattr(exc, "__notes__", []),
                        IterableValidationNote(f"Structuring {tp} @ item {index}", place, value_type),
                    ]
                    errors.append(exc)
            if errors:
                raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
            return out

        return structure

    def attrs_in(tp: Any) -> Callable[[Any, Any], Any]:
        generated = make_dict_structure_fn(tp, conv, _cattrs_forbid_extra_keys=True)

        def structure(value: Any, _: Any) -> Any:
            # The generated function would take any mapping, or fail obscurely on a list.
            if type(value) is not dict:
                raise _Misfit(f"expected an object, not {_kind(value)}")
            return generated(value, tp)

        return structure

    # Predicate hooks registered later are tried first.
    conv.register_structure_hook_factory(attrs.has, attrs_in)
    conv.register_structure_hook_factory(_is_mapping, mapping_in)
    conv.register_structure_hook_factory(_is_frozenset, frozenset_in)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, tuple_in)
    conv.register_structure_hook_factory(_is_optional, optional_in)

    def structured_payload(value: Any, _: Any) -> Command:
        # ``structure_event`` structures the payload by its event type before the other fields.
        if not isinstance(value, Command):
            raise _Misfit("an event payload is structured by its event type")
        return value

    conv.register_structure_hook_func(lambda t: t is Command, structured_payload)

    event_fields = make_dict_structure_fn(Event, conv, _cattrs_forbid_extra_keys=True)

    def structure_event(data: Any, _: Any) -> Event:
        if type(data) is not dict:
            raise _Misfit(f"an event must be an object, not {_kind(data)}")
        name = data.get("event")
        if type(name) is not str or name not in COMMAND_TYPES:
            raise _at(_Misfit("not a known event type"), "event", str)
        command_type = COMMAND_TYPES[name]
        schema, current = data.get("schema", 1), SCHEMA_VERSIONS[name]
        if type(schema) is not int or not 1 <= schema <= current:
            shown = schema if type(schema) is int else _kind(schema)
            raise _at(_Misfit(f"schema version {shown!r} is not one of 1..{current}"), "schema", int)
        body = dict(data)
        body.pop("schema", None)
        payload = body.get("payload")
        if name == "file_report" and schema == 1 and type(payload) is dict:
            # Before schema 2 a report counted as filed with the authority's reference alone,
            # which the authority gives on receipt: such a report was delivered when it was filed.
            payload = {**payload, "delivered_at": body.get("occurred_at")}
        try:
            body["payload"] = conv.structure(_upcast(name, schema, payload), command_type)
        except Exception as exc:  # re-raised with its place
            raise _at(exc, "payload", command_type) from None
        for derived in _DERIVED.get(command_type, ()):
            if getattr(body["payload"], derived) is None:
                # decide() always fills it in: an event without it was never decided.
                raise _at(_Misfit(f"{derived!r} is missing (decide fills it in)"), "payload", command_type)
        episode = body.get("episode", 1)
        if type(episode) is not int or not 1 <= episode <= 10_000:
            raise _at(_Misfit("the episode must be a whole number from 1 to 10000"), "episode", int)
        return event_fields(body, Event)

    conv.register_structure_hook(Event, structure_event)


#: What :func:`~casemgmt_core.decide` fills in of each command: never absent from a recorded event.
_DERIVED: dict[type[Command], tuple[str, ...]] = {
    COMMAND_TYPES["invoke_override"]: ("report_due_at",),
    COMMAND_TYPES["start_aftercare"]: ("until",),
    COMMAND_TYPES["extend_service"]: ("until",),
    COMMAND_TYPES["extend_case"]: ("until",),
    COMMAND_TYPES["redirect"]: ("reason",),
    COMMAND_TYPES["refer_to_counselling"]: ("reason",),
    COMMAND_TYPES["decline"]: ("reason",),
    COMMAND_TYPES["hand_over"]: ("reason",),
}


def _at(exc: Exception, name: str, tp: Any) -> ClassValidationError:
    """``exc`` as the error of the event's field ``name``."""
    from cattrs.errors import AttributeValidationNote

    exc.__notes__ = [
        *getattr(exc, "__notes__", []),
        AttributeValidationNote(f"Structuring class Event @ attribute {name}", name, tp),
    ]
    return ClassValidationError("While structuring Event", [exc], Event)


def _fields_added(payload: dict[str, Any]) -> dict[str, Any]:
    """An upcaster for a version that only added fields with defaults: the payload as it was."""
    return payload


for _event in (
    "invoke_override",
    "file_report",
    "open",
    "approve_plan",
    "link_service",
    "close",
    "start_aftercare",
    "reopen",
    "set_goal",
    "assign",
):
    upcaster(_event, 1)(_fields_added)


def _no_screening_reason(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 1 of a screening exit recorded no reason."""
    return {**payload, "reason": "other"}


for _event in ("redirect", "refer_to_counselling", "decline", "hand_over"):
    upcaster(_event, 1)(_no_screening_reason)


def _upcast(event: str, schema: int, payload: Any) -> Any:
    current = SCHEMA_VERSIONS[event]
    if type(payload) is not dict:
        raise _Misfit(f"expected an object, not {_kind(payload)}")
    while schema < current:
        step = _UPCASTERS.get((event, schema))
        if step is None:
            raise _Misfit(f"{event}: no upcaster from schema version {schema}")
        payload = step(dict(payload))
        schema += 1
    return payload


# -- errors -----------------------------------------------------------------------------------


def _problems(exc: BaseException, path: str) -> list[tuple[str, str]]:
    """``(path, message)`` of each failure in a cattrs error tree, in order."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        out: list[tuple[str, str]] = []
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            if isinstance(note, IterableValidationNote):
                where = f"{path}[{note.index!r}]"
            else:
                where = f"{path}.{note.name}"
            out.extend(_problems(sub, where))
        for sub in without:
            out.extend(_problems(sub, path))
        return out
    if isinstance(exc, InvalidData):
        # A model validator names its field as ``Class.attribute``: keep the attribute.
        field = exc.field or ""
        where = f"{path}.{field.split('.', 1)[1]}" if "." in field else path
        return [(where, exc.message)]
    return [(path, _describe(exc))]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Misfit):
        return str(exc)
    if isinstance(exc, ForbiddenExtraKeysError):
        keys = sorted(repr(k)[:40] for k in exc.extra_fields)
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        return f"unknown keys {', '.join(keys[:5])}{more}"
    if isinstance(exc, KeyError):
        return "required but missing"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    # Anything else (an upcaster's own error, say): its type and a short message.
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _invalid(exc: BaseException, what: str, doing: str) -> InvalidData:
    problems = _problems(exc, what) or [(what, _describe(exc))]
    # The first problem's place is the error's field; any others are named in the message.
    shown = "; ".join([problems[0][1], *(f"{where}: {message}" for where, message in problems[1:5])])
    if len(problems) > 5:
        shown += f"; and {len(problems) - 5} more"
    return InvalidData(f"{doing}: {shown}", field=problems[0][0])


def _structure(data: Any, cls: type[T], what: str, doing: str = "") -> T:
    try:
        return _quick_converter().structure(data, cls)
    except Exception:  # loaded again below, for the error that says where and what
        pass
    try:
        return converter().structure(data, cls)
    except (
        cattrs.BaseValidationError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise _invalid(exc, what, doing or f"cannot load the {what}") from None


# -- public functions -------------------------------------------------------------------------


def event_to_dict(event: Event) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(event, unstructure_as=Event)
    return result


def event_from_dict(data: Mapping[str, Any]) -> Event:
    return _structure(data, Event, "event")


def case_to_dict(case: Case) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(case, unstructure_as=Case)
    return result


def case_from_dict(data: Mapping[str, Any]) -> Case:
    return _structure(data, Case, "case")


def notification_to_dict(n: Notification) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(n, unstructure_as=Notification)
    return result


def notification_from_dict(data: Mapping[str, Any]) -> Notification:
    return _structure(data, Notification, "notification")


def refusal_to_dict(r: Refusal) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(r, unstructure_as=Refusal)
    return result


def refusal_from_dict(data: Mapping[str, Any]) -> Refusal:
    return _structure(data, Refusal, "refusal")


def dumps(data: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept (the hash chains hash this text).

    Written by ``orjson`` (ten times faster than :func:`json.dumps` on a case, see
    ``benchmarks/storage.py``), whose text for this data is the same as ``json.dumps(data,
    sort_keys=True, separators=(",", ":"), ensure_ascii=False)``: the data holds only strings,
    whole numbers, booleans, ``null``, lists and objects with string keys (no floats). What it cannot
    write (a lone surrogate, a number beyond 64 bits, a key that is not a string) is a ``TypeError``.
    """
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def loads(text: Any) -> Any:
    """Stored JSON text as Python data; anything that is not bounded JSON text is :class:`InvalidData`."""
    if type(text) is not str:
        raise InvalidData(f"expected JSON text, not {type(text).__name__}", field="json")
    if len(text) > MAX_JSON_CHARS:
        raise InvalidData(f"{len(text)} characters is longer than {MAX_JSON_CHARS}", field="json")
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidData("nested too deeply", field="json") from None
    except ValueError as exc:
        raise InvalidData(f"not valid JSON: {str(exc)[:200]}", field="json") from None


#: What :func:`checked_dumps` turns into :class:`InvalidData` while writing out a value.
_WRITE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError, RecursionError)


def checked_dumps(value: T, cls: type[T], what: str) -> str:
    """``value`` (a ``cls``) as canonical JSON, once it is known to load back as itself.

    The JSON-ready data is loaded back with the loader that will read the stored text, and the
    result must equal ``value``: what would not load, or would load as something else, is
    :class:`InvalidData` whose ``field`` names the place (``what`` and the path below it).
    """
    return _checked(value, cls, what)[1]


def _checked(value: T, cls: type[T], what: str) -> tuple[Any, str]:
    if type(value) is not cls:
        raise InvalidData(f"expected a {cls.__name__}, not {type(value).__name__}", field=what)
    conv = converter()
    try:
        data = conv.unstructure(value, unstructure_as=cls)
    except _WRITE_ERRORS as exc:
        where = what + _misfit_path(value, cls)
        raise InvalidData(f"cannot be stored: {_describe(exc)}", field=where) from None
    loaded = _structure(data, cls, what, "would not read back")
    try:
        same = loaded == value
    except _WRITE_ERRORS:
        same = False
    if not same:
        raise InvalidData(
            "would not read back as given (a value of the wrong type?)",
            field=what + _difference(loaded, value),
        )
    try:
        text = dumps(data)
    except _WRITE_ERRORS as exc:
        raise InvalidData(f"cannot be stored: {_describe(exc)}", field=what) from None
    if len(text) > MAX_JSON_CHARS:
        raise InvalidData(f"{len(text)} characters of JSON is more than {MAX_JSON_CHARS}", field=what)
    return data, text


@attrs.frozen(eq=False, repr=False)
class CheckedCase:
    """A case known to read back as itself: its JSON-ready ``data`` and its stored ``text``.

    Made by :func:`checked_case`, and kept by a store beside the case it last wrote, so that the
    next version of the case is checked only where it differs. It shows no personal data.
    """

    case: Case
    data: Mapping[str, Any]
    text: str

    def __repr__(self) -> str:
        return f"CheckedCase(case_id={self.case.case_id!r}, version={self.case.version!r})"


@functools.cache
def _case_fields() -> tuple[Callable[[Case], tuple[Any, ...]], tuple[tuple[str, Any, Any, Any], ...]]:
    """A getter of all of a :class:`Case`'s field values at once, and ``(name, unstructure,
    structure, type)`` of each field, as the case's own generated hooks treat them."""
    conv, quick = converter(), _quick_converter()
    hints = typing.get_type_hints(Case)
    names = [a.name for a in attrs.fields(Case)]
    return operator.attrgetter(*names), tuple(
        (name, conv.get_unstructure_hook(hints[name]), quick.get_structure_hook(hints[name]), hints[name])
        for name in names
    )


def checked_case(case: Case, what: str, previous: CheckedCase | None = None) -> CheckedCase:
    """:func:`checked_dumps` for a case, checking again only what changed since ``previous``.

    A field whose value is the very object ``previous.case`` holds (cases are immutable, and a
    new version shares what it did not change) keeps its checked data; every other field is
    written out and loaded back on its own. Whatever does not pass goes through
    :func:`checked_dumps`, whose error names the place.
    """
    if previous is not None and type(case) is Case and type(previous.case) is Case:
        try:
            checked = _checked_changes(case, previous)
        except Exception:  # checked in full below, whose error names the place
            checked = None
        if checked is not None:
            return checked
    data, text = _checked(case, Case, what)
    return CheckedCase(case, data, text)


def _checked_changes(case: Case, previous: CheckedCase) -> CheckedCase | None:
    values, fields = _case_fields()
    data = dict(previous.data)
    for value, before, (name, unstructure, structure, tp) in zip(
        values(case), values(previous.case), fields, strict=True
    ):
        if value is before:
            continue
        out = unstructure(value)
        if structure(out, tp) != value:
            return None
        data[name] = out
    text = dumps(data)
    if len(text) > MAX_JSON_CHARS:
        return None
    return CheckedCase(case, data, text)


# -- finding the place of a write error (only on the error path) --------------------------------


def _fields_of(value: Any) -> list[tuple[str, Any]]:
    """``(name, declared type)`` of an attrs instance's fields; an event's payload by its class."""
    hints = typing.get_type_hints(type(value))
    out = []
    for a in attrs.fields(type(value)):
        tp = hints.get(a.name, Any)
        if tp is Command:
            tp = type(getattr(value, a.name, None))
        out.append((a.name, tp))
    return out


def _misfit_path(value: Any, tp: Any) -> str:
    """Where below ``value`` (declared ``tp``) the value that cannot be written out is."""
    conv = converter()
    try:
        if _is_optional(tp):
            return "" if value is None else _misfit_path(value, _optional_inner(tp))
        if _is_homogeneous_tuple(tp) and isinstance(value, tuple | list):
            elem = typing.get_args(tp)[0]
            for index, item in enumerate(value):
                try:
                    conv.unstructure(item, unstructure_as=elem)
                except _WRITE_ERRORS:
                    return f"[{index}]" + _misfit_path(item, elem)
            return ""
        if isinstance(tp, type) and attrs.has(tp) and type(value) is tp:
            if isinstance(value, Event):
                if type(value.event) is not str or value.event not in COMMAND_TYPES:
                    return ".event"
                if type(value.payload) is not COMMAND_TYPES[value.event]:
                    return ".payload"
            for name, field_type in _fields_of(value):
                item = getattr(value, name)
                try:
                    conv.unstructure(item, unstructure_as=field_type)
                except _WRITE_ERRORS:
                    return f".{name}" + _misfit_path(item, field_type)
    except _WRITE_ERRORS:
        return ""
    return ""


def _difference(a: Any, b: Any) -> str:
    """Where two values that should be equal first differ (for an error message)."""
    try:
        if type(a) is not type(b):
            return ""
        if attrs.has(type(a)):
            for f in attrs.fields(type(a)):
                x, y = getattr(a, f.name), getattr(b, f.name)
                if x != y or type(x) is not type(y):
                    return f".{f.name}" + _difference(x, y)
        elif isinstance(a, tuple) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                if x != y or type(x) is not type(y):
                    return f"[{index}]" + _difference(x, y)
    except _WRITE_ERRORS:
        return ""
    return ""
