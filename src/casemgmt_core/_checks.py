"""Strict structuring, bounds and error locations shared by the TOML loaders (policy and scenario).

Nothing is coerced: ``true`` is not ``1``, ``365.9`` is not ``365``, ``"183"`` is not ``183`` and
``"false"`` is not a bool; an enum comes only from its exact string value and a list only from a
list. A source is bounded before it is parsed (:data:`MAX_SOURCE_BYTES`, :data:`MAX_DEPTH`,
:data:`MAX_VALUES`). Every problem is a ``(path, message)`` pair (:class:`Invalid`), so that the
loaders can say where each one is (:attr:`~casemgmt_core.PolicyError.fields`).
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs

from ._validation import shown
from .errors import REDACTED, InvalidData

__all__ = [
    "MAX_DAYS",
    "MAX_DEPTH",
    "MAX_HOURS",
    "MAX_PROBLEMS",
    "MAX_SOURCE_BYTES",
    "MAX_VALUES",
    "Invalid",
    "Problem",
    "check_tree",
    "describe",
    "dotted",
    "kind_of",
    "number",
    "problems_of",
    "read_file",
    "read_source",
    "report",
    "source_name",
    "strict_converter",
    "structure_fields",
]

T = TypeVar("T")

#: Longest period in days a loaded value may give (100 years): model dates lie between 1850
#: and 2200, so a date plus any sum of a few such periods stays far inside ``datetime``'s range.
MAX_DAYS = 36_500
#: Longest period in hours a loaded value may give (a year).
MAX_HOURS = 8_760
#: Largest source (file or text) a loader parses: real ones are a few kilobytes, and a bigger
#: one is refused before parsing starts, so that it fails at once.
MAX_SOURCE_BYTES = 1 << 20
#: Deepest nesting of tables and lists (and of a dotted key); real sources nest at most five.
MAX_DEPTH = 16
#: Most values (tables, lists and scalars together) in one source; TOML text with more commas
#: and line breaks than this is refused before parsing.
MAX_VALUES = 20_000
#: Most problems listed in one error; the rest are counted in a last line.
MAX_PROBLEMS = 50

#: Where a problem is, below the value checked: keys, and list indexes written ``[i]``.
Location = tuple[str, ...]
Problem = tuple[Location, str]


class Invalid(ValueError):
    """Problems found in one value, each a ``(location below that value, message)`` pair."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__()

    def __str__(self) -> str:
        shown_ = self.problems[:MAX_PROBLEMS]
        return "; ".join(f"{dotted(p)}: {m}" if p else m for p, m in shown_)


def dotted(location: Sequence[str]) -> str:
    """``("policy", "access", "[2]")`` as ``policy.access[2]``."""
    out = ""
    for part in location:
        out += part if part.startswith("[") or not out else "." + part
    return out


def describe(value: object) -> str:
    """A short, safe rendering of a given value: scalars shown, containers only named."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        bits = value.bit_length()  # type: ignore[attr-defined]
        # repr of a huge int is slow, and refused past 4300 digits.
        return shown(value) if bits <= 64 else f"an integer of {bits} bits"
    if value is None or kind in (float, str):
        return shown(value)
    if isinstance(value, Mapping):
        return "a table"
    if kind is list:
        return "a list"
    return f"a {kind.__name__}"


def problems_of(exc: Exception) -> list[Problem]:
    """``exc`` as problems; an exception that no check raises (a bug) is raised again."""
    if isinstance(exc, Invalid):
        return exc.problems
    if isinstance(exc, InvalidData):
        text = exc.message
        if exc.value is not None and exc.value != REDACTED:
            text += f", got {exc.value}"
        if exc.allowed:
            text += f" (allowed: {exc.allowed})"
        return [((), text)]
    if isinstance(exc, cattrs.BaseValidationError):
        return [((), m) for m in cattrs.transform_error(exc)]
    if isinstance(exc, ValueError | TypeError):
        return [((), str(exc) or type(exc).__name__)]
    raise exc


def _under(prefix: str, exc: Exception) -> list[Problem]:
    return [((prefix, *p), m) for p, m in problems_of(exc)]


def report(problems: Sequence[Problem], root: str) -> tuple[list[str], list[str | None]]:
    """Messages and fields for a :class:`~casemgmt_core.PolicyError`: each message starts with
    its field (``root.key.key``), except a problem with the source as a whole."""
    messages: list[str] = []
    fields: list[str | None] = []
    for location, message in problems[:MAX_PROBLEMS]:
        where = dotted((root, *location))
        messages.append(f"{where}: {message}" if location else message)
        fields.append(where)
    if len(problems) > MAX_PROBLEMS:
        messages.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
        fields.append(None)
    return messages, fields


# -- validators ------------------------------------------------------------------------------


def number(low: float, high: float, *, allow_zero: bool = False) -> Callable[[Any, Any, Any], None]:
    """Validator: an ``int`` or ``float`` (not a bool), finite, from ``low`` to ``high``.

    ``allow_zero`` also admits 0 below a positive ``low`` (a rate that may be off entirely)."""
    allowed = f"a number from {low:g} to {high:g}" + (", or 0" if allow_zero else "")

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        name = f"{type(instance).__name__}.{attribute.name}"
        if type(value) not in (int, float):
            raise InvalidData(f"must be a number, not {describe(value)}", field=name, allowed=allowed)
        if not (low <= value <= high or (allow_zero and value == 0)):  # type: ignore[operator]
            raise InvalidData("is out of range", field=name, allowed=allowed, value=describe(value))

    return validate


def kind_of(cls: type) -> Callable[[Any, Any, Any], None]:
    """Validator: an instance of ``cls``."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, cls):
            raise InvalidData(
                f"must be a {cls.__name__}, not {describe(value)}",
                field=f"{type(instance).__name__}.{attribute.name}",
            )

    return validate


# -- reading a source ------------------------------------------------------------------------

# A dotted key ``a.b.c`` costs the TOML parser time quadratic in its length (seconds at a few
# thousand parts), so a key nesting deeper than MAX_DEPTH is refused before parsing. Keys start
# a line, follow ``[`` (a table header) or ``{`` / ``,`` (an inline table); anchoring there keeps
# the scan linear. A string value that happens to look like such a key is refused too; no real
# one does.
_KEY_PART = r"""(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')"""
_DEEP_KEY = re.compile(
    rf"(?:^|[{{,\[])[ \t]*+{_KEY_PART}(?:[ \t]*+\.[ \t]*+{_KEY_PART}){{{MAX_DEPTH}}}", re.MULTILINE
)


def source_name(source: object, default: str) -> str:
    """How errors name ``source``: a file's path, else ``default``."""
    return str(source) if isinstance(source, Path) else default


def _refuse(message: str) -> Invalid:
    return Invalid([((), message)])


def _too_large(size: int, limit: int) -> Invalid:
    return _refuse(f"is {size} bytes long, more than the {limit} bytes allowed")


def read_file(path: Path, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``; a larger file is refused before it is read."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is then refused as irregular.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        raise _refuse(f"cannot read the file: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse("cannot read the file: not a regular file")
        if info.st_size > limit:
            raise _too_large(info.st_size, limit)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may have grown since fstat
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _refuse(f"cannot read the file: {_reason(exc)}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise _too_large(size, limit)
    return b"".join(chunks)


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def decode(data: bytes) -> str:
    """UTF-8 text (a leading byte order mark, as some editors write, is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(
            f"is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded"
        ) from None


def read_source(source: object) -> dict[str, Any]:
    """The table in ``source``: TOML text (``str``), a TOML file (``pathlib.Path``) or a mapping.

    Refuses (:class:`Invalid`) anything else, a source over :data:`MAX_SOURCE_BYTES`, bytes that
    are not UTF-8, invalid TOML, and what :func:`check_tree` refuses."""
    if isinstance(source, Path):
        text = decode(read_file(source))
    elif isinstance(source, str):
        text = str(source)
        if len(text) > MAX_SOURCE_BYTES:  # no shorter than its UTF-8 encoding
            raise _too_large(len(text), MAX_SOURCE_BYTES)
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise _refuse(f"is not valid Unicode text: a lone surrogate at offset {exc.start}") from None
        if size > MAX_SOURCE_BYTES:
            raise _too_large(size, MAX_SOURCE_BYTES)
    elif isinstance(source, Mapping):
        check_tree(source)
        return dict(source)
    else:
        raise _refuse(f"must be TOML text (a str), a pathlib.Path or a mapping, not {describe(source)}")
    # Values are separated by commas and line breaks: more of them than MAX_VALUES is far beyond
    # any real source, and parsing it would take most of a second before any check.
    if text.count(",") + text.count("\n") > MAX_VALUES:
        raise _refuse(f"has more than {MAX_VALUES} commas and line breaks, far more than a real source")
    if _DEEP_KEY.search(text):
        raise _refuse(f"a dotted key nests more than {MAX_DEPTH} levels deep")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _refuse(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise _refuse(f"nests tables or lists more than {MAX_DEPTH} levels deep") from None
    check_tree(data)
    return data


def check_tree(data: object) -> None:
    """Refuse a value that is not a table, nests more than :data:`MAX_DEPTH` levels, holds more
    than :data:`MAX_VALUES` values, or has a key that is not a string, at any level.

    Walks without recursion, so that no nesting can exhaust the stack."""
    if not isinstance(data, Mapping):
        raise _refuse(f"must be a table, not {describe(data)}")
    problems: list[Problem] = []
    stack: list[tuple[Location, object, int]] = [((), data, 0)]
    count = 1
    while stack and len(problems) < MAX_PROBLEMS:
        location, value, depth = stack.pop()
        if not isinstance(value, Mapping | list | tuple):
            continue
        if depth >= MAX_DEPTH:
            problems.append((location, f"nests more than {MAX_DEPTH} levels deep"))
            continue
        count += len(value)
        if count > MAX_VALUES:
            raise _refuse(f"holds more than {MAX_VALUES} values")
        children: Iterator[tuple[str, object]]
        if isinstance(value, Mapping):
            bad = [key for key in value if type(key) is not str]
            if bad:
                problems.append((location, f"keys must be strings, not {describe(bad[0])}"))
                continue
            children = iter(value.items())
        else:
            children = ((f"[{i}]", item) for i, item in enumerate(value))
        stack.extend(reversed([((*location, key), child, depth + 1) for key, child in children]))
    if problems:
        raise Invalid(problems)


# -- structuring -----------------------------------------------------------------------------


def _int(value: Any, _: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"must be a whole number, not {describe(value)}")
    if value.bit_length() > 63:
        raise ValueError(f"is out of range, got {describe(value)}")
    return value


def _float(value: Any, _: Any) -> float:
    if type(value) is int:
        value = float(_int(value, int))
    if type(value) is not float:
        raise ValueError(f"must be a number, not {describe(value)}")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {describe(value)}")
    return value


def _bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(f"must be true or false, not {describe(value)}")
    return value


def _str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise ValueError(f"must be a string, not {describe(value)}")
    return value


def _enum(value: Any, kind: type[Enum]) -> Enum:
    members = {m.value: m for m in kind}
    if type(value) is not str or value not in members:
        raise ValueError(f"must be one of {', '.join(map(str, members))}; not {describe(value)}")
    return members[value]


def _items(conv: cattrs.Converter, value: Any, item_type: Callable[[int], Any]) -> list[Any]:
    if type(value) is not list:
        raise ValueError(f"must be a list, not {describe(value)}")
    out: list[Any] = []
    problems: list[Problem] = []
    for i, item in enumerate(value):
        try:
            out.append(conv.structure(item, item_type(i)))
        except Exception as exc:  # problems_of raises again what no check raises
            problems.extend(_under(f"[{i}]", exc))
    if problems:
        raise Invalid(problems)
    return out


def _is_optional(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) in (Union, types.UnionType) and len(args) == 2 and type(None) in args


def _collection(kind: type) -> Callable[[Any], bool]:
    def matches(t: Any) -> bool:
        args = get_args(t)
        if kind is tuple:
            return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis
        return get_origin(t) is kind and len(args) == 1

    return matches


def _fixed_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and bool(args) and Ellipsis not in args


def strict_converter() -> cattrs.Converter:
    """A converter that structures without coercion (see the module docstring).

    Handles ``int``, ``float``, ``bool``, ``str``, enums, ``X | None``, ``tuple[X, ...]``,
    ``tuple[X, Y]``, ``frozenset[X]`` (each from a list) and attrs classes (from a table, by
    :func:`structure_fields`); register any other type's hook on the result."""
    conv = cattrs.Converter()
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(bool, _bool)
    conv.register_structure_hook(str, _str)
    # Dispatch on classes follows the MRO, where str comes before Enum in a StrEnum's.
    for base in (Enum, StrEnum, IntEnum):
        conv.register_structure_hook(base, _enum)

    def optional(t: Any) -> Callable[[Any, Any], Any]:
        inner = next(a for a in get_args(t) if a is not type(None))
        return lambda v, _: None if v is None else conv.structure(v, inner)

    def homogeneous(t: Any) -> Callable[[Any, Any], Any]:
        item, container = get_args(t)[0], get_origin(t)
        return lambda v, _: container(_items(conv, v, lambda _i: item))

    def fixed(t: Any) -> Callable[[Any, Any], Any]:
        kinds = get_args(t)

        def structure(value: Any, _: Any) -> tuple[Any, ...]:
            if type(value) is list and len(value) != len(kinds):
                raise ValueError(f"must be a list of {len(kinds)} values, not of {len(value)}")
            return tuple(_items(conv, value, lambda i: kinds[i]))

        return structure

    conv.register_structure_hook_factory(_is_optional, optional)
    conv.register_structure_hook_factory(_collection(tuple), homogeneous)
    conv.register_structure_hook_factory(_collection(frozenset), homogeneous)
    conv.register_structure_hook_factory(_fixed_tuple, fixed)
    conv.register_structure_hook_factory(attrs.has, lambda cl: lambda v, _: structure_fields(conv, cl, v))
    return conv


def structure_fields(conv: cattrs.Converter, cl: type[T], value: object, base: T | None = None) -> T:
    """An instance of the attrs class ``cl`` from the table ``value``; a key left out keeps its
    value in ``base``, or the default. Raises :class:`Invalid` with every problem found: unknown
    keys, values of the wrong type, and every failing validator (not only the first)."""
    if not isinstance(value, Mapping):
        raise _refuse(f"must be a table, not {describe(value)}")
    kind: Any = cl
    attrs.resolve_types(kind)
    attributes = {a.alias or a.name: a for a in attrs.fields(kind) if a.init}
    allowed = ", ".join(attributes)
    problems: list[Problem] = []
    given: dict[str, Any] = {}
    failed: set[str] = set()
    for key, raw in value.items():
        a = attributes.get(key)
        if a is None:
            problems.append(((str(key),), f"unknown key (allowed: {allowed})"))
            continue
        try:
            given[a.name] = conv.structure(raw, a.type)
        except Exception as exc:  # problems_of raises again what no check raises
            problems.extend(_under(key, exc))
            failed.add(a.name)
    # attrs stops at the first failing validator; run each on a draft instance to report all.
    draft = object.__new__(cl)
    for key, a in attributes.items():
        if a.name in given:
            try:
                v = given[a.name] if a.converter is None else a.converter(given[a.name])
            except (ValueError, TypeError) as exc:
                problems.extend(_under(key, exc))
                failed.add(a.name)
            else:
                object.__setattr__(draft, a.name, v)
                continue
        # Not given, or not usable: the base's value or the default stands in for the checks.
        if base is not None:
            v = getattr(base, a.name)
        elif isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            v = a.default.factory(draft) if a.default.takes_self else a.default.factory()
        elif a.default is attrs.NOTHING:
            raise Invalid([*problems, ((key,), "is required")])
        else:
            v = a.default
        object.__setattr__(draft, a.name, v)
    for key, a in attributes.items():
        if a.validator is not None and a.name not in failed:
            try:
                a.validator(draft, a, getattr(draft, a.name))
            except (ValueError, TypeError) as exc:
                problems.extend(_under(key, exc))
    if problems:
        raise Invalid(problems)
    try:
        return cl(**{key: getattr(draft, a.name) for key, a in attributes.items()})
    except (ValueError, TypeError) as exc:
        raise Invalid(problems_of(exc)) from None
