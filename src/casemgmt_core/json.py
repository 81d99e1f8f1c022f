"""The public JSON contract: commands, cases and events as JSON data, their JSON Schemas, and
errors as JSON bodies.

A web host reads a command from a request body with :func:`command_from_dict`, and answers with
:func:`to_dict` of the case, an event or an error. The command's body names the command by its
lifecycle event (``Command.event``, the key of its label)::

    {"command": "record_need", "need": {"need_id": "N1", "domain": "housing"}}

Everything is read and written with the converter that reads and writes the stores
(:mod:`casemgmt_core.serialization`): the same strict loading (nothing coerced, unknown keys
refused, sizes bounded) and the same output (datetimes in ISO 8601 with their UTC offset, dates as
``YYYY-MM-DD``, enumerations by value, sets sorted). A payload that does not fit raises
:class:`~casemgmt_core.InvalidData` whose ``field`` is the path of the problem
(``command.item.need_id``, ``command.household.members[0].birth_date``) and whose ``allowed``
says what would fit; the message never repeats a value given.

:func:`json_schema` and :func:`schemas` describe the same shapes as JSON Schema (draft 2020-12,
which OpenAPI 3.1 uses), generated from the classes' type annotations and field validators.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import inspect
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

import attrs
import cattrs
from attrs import field, frozen
from cattrs.errors import ClassValidationError, IterableValidationError

from . import _validation as v
from . import serialization
from .commands import COMMAND_TYPES, Command
from .errors import (
    AuthorizationDenied,
    CaseManagementError,
    CaseNotFound,
    ConcurrencyConflict,
    DuplicateCase,
    InvalidData,
    PolicyError,
    StorageError,
    TransitionRefused,
    UnknownCommand,
    error_attributes,
)
from .events import Event
from .i18n import LANGUAGES, labels
from .model import Case, Household, Referral
from .notify.errors import DeliveryFailed
from .ports import Notification, Refusal
from .schedule import DueItem

__all__ = [
    "DIALECT",
    "KINDS",
    "OpenCaseRequest",
    "case_from_dict",
    "command_from_dict",
    "event_from_dict",
    "json_schema",
    "open_case_from_dict",
    "schemas",
    "to_dict",
]

#: The JSON Schema dialect of :func:`json_schema` (the one OpenAPI 3.1 uses).
DIALECT = "https://json-schema.org/draft/2020-12/schema"


@frozen
class OpenCaseRequest:
    """What opening a case needs, as a web host receives it: the household and the referral,
    and the case's id where the caller chooses it (else the store does).

    ``manager.open_case(request.household, request.referral, actor=..., case_id=request.case_id)``
    """

    household: Household = field(validator=v.instance_of(Household))
    referral: Referral = field(validator=v.instance_of(Referral))
    case_id: str | None = field(default=None, validator=v.optional(v.identifier))


#: The root of each kind of JSON document: its schema's name in ``$defs`` (the class name).
_ROOTS: dict[str, type] = {
    "command": Command,
    "open_case": OpenCaseRequest,
    "case": Case,
    "event": Event,
    "notification": Notification,
    "refusal": Refusal,
    "due_item": DueItem,
    "error": CaseManagementError,
}
#: The kinds :func:`json_schema` knows.
KINDS: tuple[str, ...] = tuple(_ROOTS)

#: The error classes whose bodies the error schema describes (each with its structured
#: attributes; a subclass that adds none, such as ``ScenarioError``, shares its base's shape).
_ERROR_TYPES: tuple[type[CaseManagementError], ...] = (
    CaseManagementError,
    InvalidData,
    PolicyError,
    TransitionRefused,
    UnknownCommand,
    AuthorizationDenied,
    CaseNotFound,
    DuplicateCase,
    StorageError,
    ConcurrencyConflict,
    DeliveryFailed,
)


# -- writing ----------------------------------------------------------------------------------


def to_dict(obj: object) -> dict[str, Any]:
    """``obj`` as JSON-ready data: only ``str``, ``int``, ``float``, ``bool``, ``None``, lists and
    dicts with string keys.

    A command gets its name under ``"command"`` (what :func:`command_from_dict` reads); a case, an
    event, a notification and a refusal are written as the stores write them (what
    :func:`case_from_dict` and :func:`event_from_dict` read); an error is its
    :meth:`~casemgmt_core.CaseManagementError.to_dict`; any other of the library's ``attrs``
    models (a ``DueItem``, a ``Household``) is written by the same converter.
    """
    if isinstance(obj, CaseManagementError):
        return obj.to_dict()
    if type(obj) is Event:
        return serialization.event_to_dict(obj)
    if type(obj) is Case:
        return serialization.case_to_dict(obj)
    if isinstance(obj, Command) and type(obj) in _COMMAND_CLASSES:
        data = serialization.converter().unstructure(obj, unstructure_as=type(obj))
        return {"command": obj.event, **data}
    if isinstance(obj, type) or not attrs.has(type(obj)):
        raise InvalidData(
            f"cannot write a {type(obj).__name__} as JSON",
            field="obj",
            allowed="a command, case, event, notification, refusal, error or another model of the library",
        )
    result = _json_ready(serialization.converter().unstructure(obj, unstructure_as=type(obj)), "obj")
    if type(result) is not dict:
        raise InvalidData(f"a {type(obj).__name__} is not written as an object", field="obj")
    return result


_COMMAND_CLASSES = frozenset(COMMAND_TYPES.values())


def _json_ready(value: Any, where: str, depth: int = 0) -> Any:
    """Unstructured data with what the converter leaves as it is (an enumeration it was not
    configured for) made JSON-ready; anything else that is not JSON data is refused."""
    if depth > 50:
        raise InvalidData("nested too deeply", field=where)
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, Enum):
        return _json_ready(value.value, where, depth + 1)
    if isinstance(value, list | tuple):
        return [_json_ready(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(value)]
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {k: _json_ready(x, f"{where}.{k}", depth + 1) for k, x in value.items()}
    raise InvalidData(f"a {type(value).__name__} is not JSON data", field=where)


# -- reading ----------------------------------------------------------------------------------


def command_from_dict(data: object) -> Command:
    """The command a JSON object describes: ``{"command": <event name>, <its fields>}``.

    The fields are the command class's, by name, with the values :func:`to_dict` writes; a field
    with a default may be left out. Anything else raises :class:`~casemgmt_core.InvalidData`
    whose ``field`` is the place (``command``, ``command.command``, ``command.need.domain``).
    """
    names = ", ".join(sorted(COMMAND_TYPES))
    if type(data) is not dict:
        raise InvalidData(
            f"expected an object, not {_kind(data)}",
            field="command",
            allowed=f'an object whose "command" is one of: {names}',
        )
    name = data.get("command")
    if name is None:
        raise InvalidData('"command" is required but missing', field="command.command", allowed=names)
    if type(name) is not str or name not in COMMAND_TYPES:
        raise InvalidData(f"{_kind(name)} that is not a command name", field="command.command", allowed=names)
    body = {k: x for k, x in data.items() if k != "command"}
    command_type = COMMAND_TYPES[name]
    return _load(body, command_type, "command", command_type.__name__)


def open_case_from_dict(data: object) -> OpenCaseRequest:
    """What opening a case needs, from ``{"household": {...}, "referral": {...}, "case_id"?: ...}``.

    Raises :class:`~casemgmt_core.InvalidData` naming the place (``open_case.household.members[0]``).
    """
    return _load(data, OpenCaseRequest, "open_case", "OpenCaseRequest")


def case_from_dict(data: object) -> Case:
    """The case :func:`to_dict` wrote (``field`` of an error starts with ``case``)."""
    return _load(data, Case, "case", "Case")


def event_from_dict(data: object) -> Event:
    """The event :func:`to_dict` wrote, or a store holds (older schema versions are upcast);
    ``field`` of an error starts with ``event``."""
    return _load(data, Event, "event", "Event")


T = typing.TypeVar("T")


def _load(data: object, cls: type[T], root: str, definition: str) -> T:
    try:
        return serialization.converter().structure(data, cls)
    except (
        cattrs.BaseValidationError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,
    ) as exc:
        error = serialization._invalid(exc, root, f"cannot read the {root}")
        leaf = _first_leaf(exc)
        if isinstance(leaf, InvalidData) and leaf.allowed:
            allowed: str | None = leaf.allowed
            value = leaf.value
        else:
            allowed, value = _allowed_at(definition, error.field or root, root, data), None
        raise InvalidData(error.message, field=error.field, allowed=allowed, value=value) from None


def _first_leaf(exc: BaseException) -> BaseException:
    """The failure that an error's ``field`` names: the first leaf of a cattrs error tree, in the
    order the serialiser reports them."""
    while isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        if with_notes:
            exc = with_notes[0][0]
        elif without:
            exc = without[0]
        else:
            break
    return exc


def _kind(value: object) -> str:
    return {
        type(None): "null",
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), f"a {type(value).__name__}")


# -- what is allowed at a place, in words (from the schema) ------------------------------------


def _segments(path: str, root: str) -> list[str | int]:
    """``command.members[0].name`` as ``["members", 0, "name"]`` (below ``root``)."""
    rest = path[len(root) :] if path.startswith(root) else ""
    out: list[str | int] = []
    token = ""
    index = False
    for char in rest:
        if char == "." and not index:
            if token:
                out.append(token)
            token = ""
        elif char == "[" and not index:
            if token:
                out.append(token)
            token, index = "", True
        elif char == "]" and index:
            out.append(int(token) if token.isdigit() else token)
            token, index = "", False
        else:
            token += char
    if token:
        out.append(token)
    return out


def _allowed_at(definition: str, path: str, root: str, data: object) -> str | None:
    defs = _definitions("#/$defs/")
    schema: Any = defs.get(definition)
    segments = _segments(path, root)
    if definition == "Event" and segments[:1] == ["payload"] and type(data) is dict:
        name = data.get("event")
        if type(name) is str and name in COMMAND_TYPES:
            schema, segments = defs[COMMAND_TYPES[name].__name__], segments[1:]
    try:
        for segment in segments:
            schema = _resolve(schema, defs)
            if isinstance(segment, int):
                schema = schema["items"]
            elif "properties" in schema and segment in schema["properties"]:
                schema = schema["properties"][segment]
            elif isinstance(schema.get("additionalProperties"), dict):
                schema = schema["additionalProperties"]
            else:
                return None
        return _words(schema, defs)
    except (KeyError, TypeError):
        return None


def _resolve(schema: Any, defs: Mapping[str, Any]) -> Any:
    """``schema`` without its references and its ``null`` branch."""
    while True:
        if "$ref" in schema:
            schema = defs[schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
            if len(branches) != 1:
                return schema
            schema = branches[0]
        else:
            return schema


def _words(schema: Any, defs: Mapping[str, Any], depth: int = 0) -> str:
    """A short description of what ``schema`` allows."""
    nullable = "anyOf" in schema and any(b.get("type") == "null" for b in schema["anyOf"])
    schema = _resolve(schema, defs)
    text = _words_of(schema, defs, depth)
    return f"{text}, or null" if nullable else text


def _words_of(schema: Any, defs: Mapping[str, Any], depth: int) -> str:
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of: " + ", ".join(str(x) for x in schema["enum"])
    if "oneOf" in schema:
        return f"one of the {schema.get('title', 'variants')}"
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return "an ISO 8601 date and time with a UTC offset"
        if schema.get("format") == "date":
            return "a date as YYYY-MM-DD"
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if high is None:
            return "a string"
        return f"a string of {low} to {high} characters" if low else f"a string of at most {high} characters"
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return "a whole number" + (f" from {low} to {high}" if low is not None and high is not None else "")
    if kind == "number":
        return "a number"
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        most = schema.get("maxItems")
        items = _words(schema.get("items", {}), defs, depth + 1) if depth < 2 else "items"
        return f"an array of {items}" + (f" (at most {most})" if most is not None else "")
    if kind == "object":
        properties = schema.get("properties")
        if properties is None:
            return "an object"
        required = [k for k in schema.get("required", ()) if k in properties]
        optional = [k for k in properties if k not in required]
        return (
            "an object with the keys "
            + ", ".join(required or ["(none required)"])
            + (f" and optionally {', '.join(optional)}" if optional else "")
        )
    return "a JSON value"


# -- JSON Schema --------------------------------------------------------------------------------


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind of document: ``"command"``, ``"open_case"``,
    ``"case"``, ``"event"``, ``"notification"``, ``"refusal"``, ``"due_item"`` or ``"error"``.

    Self-contained: the schemas it refers to are in its ``$defs``. A fresh copy on each call.
    """
    root = _ROOTS.get(kind) if type(kind) is str else None
    if root is None:
        raise InvalidData("is not a kind of JSON document", field="kind", allowed=", ".join(KINDS))
    defs = _definitions("#/$defs/")
    name = _name(root)
    needed = _reachable(name, defs)
    return copy.deepcopy(
        {
            "$schema": DIALECT,
            "title": defs[name].get("title", name),
            "$ref": f"#/$defs/{name}",
            "$defs": {k: defs[k] for k in sorted(needed)},
        }
    )


def schemas(ref_prefix: str = "#/components/schemas/") -> dict[str, Any]:
    """Every schema by name, referring to each other with ``ref_prefix``: by default, ready to be
    an OpenAPI 3.1 document's ``components.schemas``. ``Command`` (a ``oneOf`` with a
    discriminator on ``command``), ``OpenCaseRequest``, ``Case``, ``Event``, ``Notification``,
    ``Refusal``, ``DueItem`` and ``CaseManagementError`` (the error body) are the roots.
    """
    if type(ref_prefix) is not str or not ref_prefix:
        raise InvalidData("must be a non-empty string", field="ref_prefix", allowed='e.g. "#/$defs/"')
    return copy.deepcopy(_definitions(ref_prefix))


def _reachable(name: str, defs: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        stack: list[Any] = [defs[current]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    todo.append(ref.rsplit("/", 1)[1])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return seen


def _name(cls: type) -> str:
    return cls.__name__


@functools.cache
def _definitions(prefix: str) -> dict[str, Any]:
    """Every schema by name (do not change what it returns: it is cached)."""
    return _Schemas(prefix).build()


class _Schemas:
    """Builds the schemas from the type annotations and validators of the classes."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.defs: dict[str, Any] = {}
        self.owners: dict[str, type] = {}

    def ref(self, cls: type) -> dict[str, Any]:
        return {"$ref": self.prefix + _name(cls)}

    def build(self) -> dict[str, Any]:
        self.command_union()
        self.define_event()
        for root in _ROOTS.values():
            if root is not Command and root is not CaseManagementError:
                self.define(root)
        self.defs[_name(CaseManagementError)] = self.error()
        self.owners[_name(CaseManagementError)] = CaseManagementError
        return dict(sorted(self.defs.items()))

    def claim(self, cls: type) -> bool:
        """Whether ``cls`` still needs its definition (names must be unique)."""
        name = _name(cls)
        owner = self.owners.get(name)
        if owner is not None:
            if owner is not cls:
                raise TypeError(f"two classes named {name}: {owner!r} and {cls!r}")
            return False
        self.owners[name] = cls
        self.defs[name] = {}  # reserved: a class that refers to itself finds its name
        return True

    # -- types --------------------------------------------------------------------------------

    def of(self, tp: Any, validator: Any = None) -> dict[str, Any]:
        """The schema of a value of type ``tp`` with the bounds ``validator`` checks."""
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            present = [a for a in args if a is not type(None)]
            inner = _unwrap_optional(validator)
            branches = [self.of(a, inner) for a in present]
            if type(None) in args:
                branches.append({"type": "null"})
            return {"anyOf": branches}
        if tp is Any:
            return {}
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.of(args[0], _item_validator(validator))} | _bounds(
                validator
            )
        if origin is frozenset:
            schema = {"type": "array", "items": self.of(args[0]), "uniqueItems": True}
            return schema | _bounds(validator)
        if origin in (Mapping, dict, typing.Mapping):
            if args and args[0] is not str:
                raise TypeError(f"cannot describe {tp!r}: JSON object keys are strings")
            return {"type": "object", "additionalProperties": self.of(args[1]) if args else {}}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"} | _bounds(validator)
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"} | _bounds(validator)
        if tp is dt.datetime:
            return {"type": "string", "format": "date-time"}
        if tp is dt.date:
            return {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
        if isinstance(tp, type) and issubclass(tp, Enum):
            self.enum(tp)
            return self.ref(tp)
        if tp is Command:
            return self.ref(Command)
        if isinstance(tp, type) and attrs.has(tp):
            self.define(tp)
            return self.ref(tp)
        raise TypeError(f"cannot describe {tp!r} as JSON Schema")

    def enum(self, enum: type[Enum]) -> None:
        if not self.claim(enum):
            return
        values = [m.value for m in enum]
        kinds = {type(x) for x in values}
        schema: dict[str, Any] = {"title": enum.__name__}
        if kinds == {str}:
            schema["type"] = "string"
        elif kinds == {int}:
            schema["type"] = "integer"
        schema["enum"] = values
        description = _doc(enum)
        if description:
            schema["description"] = description
        self.defs[_name(enum)] = schema

    def define(self, cls: type) -> None:
        if not self.claim(cls):
            return
        self.defs[_name(cls)] = self.object(cls)

    def object(
        self, cls: type, *, extra: Mapping[str, Any] = {}, required_first: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """An attrs class as a closed JSON object (``extra`` properties come first)."""
        hints = typing.get_type_hints(cls)
        properties: dict[str, Any] = dict(extra)
        required: list[str] = list(required_first)
        for a in attrs.fields(cls):
            if not a.init:
                continue
            schema = self.of(hints[a.name], a.validator)
            default = _default(a, hints[a.name])
            if default is not attrs.NOTHING:
                schema = schema | {"default": default}
            else:
                required.append(a.name)
            properties[a.name] = schema
        out: dict[str, Any] = {"title": cls.__name__, "type": "object"}
        description = _doc(cls)
        if description:
            out["description"] = description
        out["properties"] = properties
        out["required"] = required
        out["additionalProperties"] = False
        return out

    # -- commands and events -----------------------------------------------------------------

    def command_union(self) -> None:
        self.claim(Command)
        mapping: dict[str, str] = {}
        for name, cls in sorted(COMMAND_TYPES.items()):
            if self.claim(cls):
                self.defs[_name(cls)] = self.object(
                    cls, extra={"command": {"const": name}}, required_first=("command",)
                )
            mapping[name] = self.prefix + _name(cls)
        self.defs[_name(Command)] = {
            "title": "Command",
            "description": 'A command on a case, named by its lifecycle event under "command".',
            "type": "object",
            "required": ["command"],
            "properties": {"command": {"type": "string", "enum": sorted(COMMAND_TYPES)}},
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "command", "mapping": mapping},
        }

    def payload(self, cls: type[Command]) -> dict[str, Any]:
        """A command as an event records it: no ``command`` key; what ``decide`` fills in is there."""
        schema = self.object(cls)
        derived = serialization._DERIVED.get(cls, ())
        for name in derived:
            hints = typing.get_type_hints(cls)
            inner = [a for a in typing.get_args(hints[name]) if a is not type(None)]
            (validator,) = [a.validator for a in attrs.fields(cls) if a.name == name]
            schema["properties"][name] = self.of(inner[0], _unwrap_optional(validator))
            schema["required"].append(name)
        return schema

    def define_event(self) -> None:
        if not self.claim(Event):
            return
        schema = self.object(Event)
        properties = schema["properties"]
        properties["event"] = {"type": "string", "enum": sorted(COMMAND_TYPES)}
        properties["payload"] = {"type": "object"}
        versions = serialization.SCHEMA_VERSIONS
        # "schema" goes after "event", as the stores write it.
        ordered: dict[str, Any] = {}
        for key, value in properties.items():
            ordered[key] = value
            if key == "event":
                ordered["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": max(versions.values()),
                    "description": "The payload's schema version (what to_dict writes: the current one).",
                }
        schema["properties"] = ordered
        schema["required"] = [*schema["required"], "schema"]
        schema["oneOf"] = [
            {
                "properties": {
                    "event": {"const": name},
                    "schema": {"const": versions[name]},
                    "payload": self.payload(cls),
                }
            }
            for name, cls in sorted(COMMAND_TYPES.items())
        ]
        self.defs[_name(Event)] = schema

    # -- errors -------------------------------------------------------------------------------

    def error(self) -> dict[str, Any]:
        """The body of :meth:`CaseManagementError.to_dict`, from the errors' annotated attributes."""
        codes = sorted(labels().get("error", {}))
        label_pair = {
            "type": "object",
            "properties": {language: {"type": "string"} for language in LANGUAGES},
            "required": list(LANGUAGES),
            "additionalProperties": False,
        }
        properties: dict[str, Any] = {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
        }
        variants: list[dict[str, Any]] = []
        for cls in _ERROR_TYPES:
            hints = typing.get_type_hints(cls)
            names = error_attributes(cls)
            for name in names:
                schema = self.of(hints[name])
                known = properties.get(name)
                if known is None:
                    properties[name] = schema
                elif known != schema:
                    branches = known["anyOf"] if set(known) == {"anyOf"} else [known]
                    more = schema["anyOf"] if set(schema) == {"anyOf"} else [schema]
                    properties[name] = {"anyOf": branches + [b for b in more if b not in branches]}
            own = [cls.code, *(code for code, shape in _SHAPE_OF_CODE.items() if shape is cls)]
            variants.append(
                {
                    "if": {"properties": {"code": {"enum": own}}, "required": ["code"]},
                    "then": {
                        "properties": {name: self.of(hints[name]) for name in names},
                        "required": list(names),
                    },
                }
            )
        properties["labels"] = label_pair
        properties["reason_labels"] = label_pair
        return {
            "title": "CaseManagementError",
            "description": "An error as a JSON body (CaseManagementError.to_dict): a stable code, the "
            "message, the error's structured attributes and the code's Korean and English labels.",
            "type": "object",
            "properties": properties,
            "required": ["code", "message", "labels"],
            "additionalProperties": False,
            "allOf": variants,
        }


#: Codes of library errors not in :data:`_ERROR_TYPES` (defined where importing them would cost
#: more than the schema is worth) and the class whose shape they share.
_SHAPE_OF_CODE: dict[str, type[CaseManagementError]] = {"scenario_error": PolicyError}


# -- reading validators ---------------------------------------------------------------------


def _closure(fn: Any) -> dict[str, Any]:
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None) or ()
    if code is None:
        return {}
    return dict(zip(code.co_freevars, (c.cell_contents for c in cells), strict=False))


def _factory(fn: Any) -> str:
    """The validator factory ``fn`` was made by (``text``, ``integer``...), or its own name."""
    qualname: str = getattr(fn, "__qualname__", "")
    return qualname.split(".<locals>.", 1)[0] if ".<locals>." in qualname else qualname


def _unwrap_optional(validator: Any) -> Any:
    if _factory(validator) == "optional":
        return _closure(validator).get("validator")
    return validator


def _item_validator(validator: Any) -> Any:
    return v.identifier if _factory(validator) == "identifiers" else None


def _bounds(validator: Any) -> dict[str, Any]:
    """The bounds a field validator checks, as JSON Schema keywords (what can be read cheaply)."""
    if validator is None:
        return {}
    if validator is v.identifier:
        return {"minLength": 1, "maxLength": v.MAX_IDENTIFIER}
    kind, cells = _factory(validator), _closure(validator)
    if kind in ("text", "line") and type(cells.get("limit")) is int:
        return {"maxLength": cells["limit"]}
    if kind == "integer" and type(cells.get("low")) is int and type(cells.get("high")) is int:
        return {"minimum": cells["low"], "maximum": cells["high"]}
    if kind in ("items_of", "identifiers") and type(cells.get("limit")) is int:
        return {"maxItems": cells["limit"]}
    if kind == "optional":
        return _bounds(cells.get("validator"))
    return {}


def _default(a: attrs.Attribute[Any], tp: Any) -> Any:
    """The field's default as JSON data, ``attrs.NOTHING`` where it has none."""
    default: Any = a.default
    if default is attrs.NOTHING:
        return attrs.NOTHING
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return attrs.NOTHING
        default = default.factory()
    try:
        return _json_ready(serialization.converter().unstructure(default, unstructure_as=tp), a.name)
    except (InvalidData, TypeError, ValueError):
        return attrs.NOTHING


def _doc(cls: type) -> str:
    """The first paragraph of the class's own docstring."""
    doc = cls.__dict__.get("__doc__")
    if not doc or (isinstance(cls, type) and issubclass(cls, Enum) and doc == Enum.__doc__):
        return ""
    first = inspect.cleandoc(doc).split("\n\n", 1)[0]
    return " ".join(first.split())
