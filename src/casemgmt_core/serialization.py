"""JSON-ready (un)structuring of cases, events and notifications with ``cattrs``.

Each event's payload carries a schema version per event type (:data:`SCHEMA_VERSIONS`). When a
payload's shape changes, its version goes up and an upcaster (registered with :func:`upcaster`)
turns the older stored shape into the newer one, so that every event ever stored still loads.
The output is deterministic (sets are sorted), which the stores' hash chains rely on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import cattrs
from cattrs.preconf.json import make_converter

from .commands import COMMAND_TYPES, Command
from .errors import InvalidData
from .events import Event
from .model import Case
from .ports import Notification, Refusal

__all__ = [
    "SCHEMA_VERSIONS",
    "case_from_dict",
    "case_to_dict",
    "converter",
    "dumps",
    "event_from_dict",
    "event_to_dict",
    "upcaster",
]

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: The current schema version of each event type's payload. Bump it when a payload changes,
#: and register an upcaster from the previous version.
SCHEMA_VERSIONS: dict[str, int] = dict.fromkeys(COMMAND_TYPES, 1)
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning a stored ``event`` payload of ``from_version`` into the next."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event, from_version)] = fn
        return fn

    return register


@functools.cache
def converter() -> cattrs.Converter:
    conv = make_converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(frozenset, lambda s: sorted(conv.unstructure(x) for x in s))
    # A predicate hook for the base class only: a class hook would also catch every subclass
    # and recurse forever; the subclasses use the generated attrs hooks.
    conv.register_unstructure_hook_func(
        lambda t: t is Command, lambda p: conv.unstructure(p, unstructure_as=type(p))
    )

    def structured_payload(value: Any, _: Any) -> Command:
        # ``structure_event`` structures the payload by its event type before the other fields.
        if not isinstance(value, Command):
            raise ValueError("an event payload is structured by its event type")
        return value

    conv.register_structure_hook_func(lambda t: t is Command, structured_payload)

    def unstructure_event(e: Event) -> dict[str, Any]:
        return {
            "case_id": e.case_id,
            "version": e.version,
            "event": e.event,
            "schema": SCHEMA_VERSIONS[e.event],
            "source": e.source.value if e.source is not None else None,
            "target": e.target.value,
            "payload": conv.unstructure(e.payload, unstructure_as=type(e.payload)),
            "actor_id": e.actor_id,
            "role": e.role,
            "occurred_at": e.occurred_at.isoformat(),
            "note": e.note,
            "legal_basis": e.legal_basis,
            "correlation_id": e.correlation_id,
        }

    def structure_event(data: Any, _: Any) -> Event:
        if not isinstance(data, Mapping):
            raise ValueError("an event must be an object")
        body = dict(data)
        name = body.pop("event", None)
        command_type = COMMAND_TYPES.get(name) if isinstance(name, str) else None
        if command_type is None:
            raise ValueError(f"unknown event type {name!r}")
        schema = body.pop("schema", 1)
        payload = _upcast(name, schema, body.pop("payload", None))
        body["payload"] = conv.structure(payload, command_type)
        body["event"] = name
        return conv.structure_attrs_fromdict(body, Event)

    conv.register_unstructure_hook(Event, unstructure_event)
    conv.register_structure_hook(Event, structure_event)
    return conv


def _upcast(event: str, schema: Any, payload: Any) -> Any:
    current = SCHEMA_VERSIONS[event]
    if not isinstance(schema, int) or not 1 <= schema <= current:
        raise ValueError(f"{event}: schema version {schema!r} is not one of 1..{current}")
    while schema < current:
        step = _UPCASTERS.get((event, schema))
        if step is None:
            raise ValueError(f"{event}: no upcaster from schema version {schema}")
        payload = step(dict(payload))
        schema += 1
    return payload


def _structure(data: Any, cls: type[T], what: str) -> T:
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc, path=what))
        else:
            detail = str(exc)
        raise InvalidData(f"cannot load the {what}: {detail}", field=what) from None


def event_to_dict(event: Event) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(event, unstructure_as=Event)
    return result


def event_from_dict(data: Mapping[str, Any]) -> Event:
    return _structure(data, Event, "event")


def case_to_dict(case: Case) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(case)
    return result


def case_from_dict(data: Mapping[str, Any]) -> Case:
    return _structure(data, Case, "case")


def notification_to_dict(n: Notification) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(n)
    return result


def notification_from_dict(data: Mapping[str, Any]) -> Notification:
    return _structure(data, Notification, "notification")


def refusal_to_dict(r: Refusal) -> dict[str, Any]:
    result: dict[str, Any] = converter().unstructure(r)
    return result


def refusal_from_dict(data: Mapping[str, Any]) -> Refusal:
    return _structure(data, Refusal, "refusal")


def dumps(data: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept (the hash chains hash this text)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
