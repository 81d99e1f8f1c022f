"""Argument checks of the notification classes and functions.

A value of the wrong type or out of range raises :class:`~casemgmt_core.InvalidData` naming the
argument (``WebhookNotifier.timeout``) before anything is built, opened or sent. Nothing is
coerced: ``True`` is not ``1``, ``"2"`` is not ``2``, a string is not a list of names.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

from .._validation import aware_datetime_value, check_identifier, check_instance, check_text, shown
from ..errors import REDACTED, InvalidData
from ..ports import Notification

E = TypeVar("E", bound=Enum)

#: Longest wait a channel or a server may be given for the network, in seconds (an hour):
#: longer ones would not fit a socket's timeout on every platform.
MAX_TIMEOUT = 3600.0
#: Longest pause between two rounds of a relay or a scheduler (a week).
MAX_INTERVAL = 7 * 24 * 3600.0
#: Longest URL, host name and e-mail address taken.
MAX_URL = 2000
MAX_HOST = 253
MAX_ADDRESS = 254
#: Most names in an allowlist or a route, and most headers or proxies.
MAX_NAMES = 1000

# An addr-spec without a display name, what goes into From and To as it is; and its domain.
_PART = r"[^\s@<>()\[\],;:\"\\]+"
ADDRESS = re.compile(f"{_PART}@{_PART}")
ADDRESS_PART = re.compile(_PART)
# RFC 9110 token: the characters of a header name.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


#: :func:`casemgmt_core._validation.check_instance`, under the name the channels use.
instance = check_instance


def invalid(message: str, field: str, allowed: str, value: object) -> InvalidData:
    return InvalidData(message, field=field, allowed=allowed, value=shown(value))


def _type(value: object) -> str:
    return type(value).__name__


def whole(value: object, field: str, low: int, high: int | None = None) -> int:
    """An ``int`` (not a ``bool``) from ``low`` to ``high`` (no upper bound if ``None``)."""
    allowed = f"a whole number from {low}" + ("" if high is None else f" to {high}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f"must be a whole number, not {_type(value)}", field, allowed, value)
    if value < low or (high is not None and value > high):
        raise invalid("is out of range", field, allowed, value)
    return value


def number(value: object, field: str, low: float, high: float, *, above: bool = False) -> float:
    """A finite ``int`` or ``float`` (not a ``bool``) from ``low`` (or just above it) to ``high``."""
    allowed = f"a number {'more than' if above else 'from'} {low} {'and at most' if above else 'to'} {high}"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise invalid(f"must be a number, not {_type(value)}", field, allowed, value)
    # Compared before any conversion: a huge int cannot become a float, and NaN fails both tests.
    if not ((low < value) if above else (low <= value)) or not value <= high:
        raise invalid("is out of range" if value == value else "is not a number", field, allowed, value)
    return float(value)


def flag(value: object, field: str) -> bool:
    if type(value) is not bool:
        raise invalid(f"must be True or False, not {_type(value)}", field, "a bool", value)
    return value


def duration(value: object, field: str, high: dt.timedelta) -> dt.timedelta:
    """A ``timedelta`` longer than zero and at most ``high``."""
    allowed = f"a timedelta longer than zero and at most {high}"
    if not isinstance(value, dt.timedelta):
        raise invalid(f"must be a timedelta, not {_type(value)}", field, allowed, value)
    if not dt.timedelta(0) < value <= high:
        raise invalid("is out of range", field, allowed, value)
    return value


def moment(value: object, field: str) -> dt.datetime:
    """An aware ``datetime`` in the model's range."""
    if not isinstance(value, dt.datetime):
        raise invalid(f"must be a datetime, not {_type(value)}", field, "a timezone-aware datetime", value)
    return aware_datetime_value(value, field)


def now(value: object, clock: Callable[[], object], field: str, clock_field: str) -> dt.datetime:
    """``value`` if given, else the clock's time: either way an aware ``datetime``."""
    return moment(clock(), clock_field) if value is None else moment(value, field)


def loop(stop: object, interval: object, name: str) -> None:
    """The arguments of a ``run`` loop: a ``threading.Event`` and a pause in seconds."""
    instance(stop, threading.Event, f"{name}.stop")
    number(interval, f"{name}.interval", 0, MAX_INTERVAL, above=True)


def function(value: object, field: str, *, nullable: bool = False) -> Any:
    if not callable(value) and not (nullable and value is None):
        allowed = "a function" + (" or None" if nullable else "")
        raise invalid(f"must be callable, not {_type(value)}", field, allowed, value)
    return value


def having(value: object, field: str, methods: tuple[str, ...], what: str) -> Any:
    """``value`` if it has every one of ``methods`` (duck typing, as the ports are protocols)."""
    if not all(callable(getattr(value, m, None)) for m in methods):
        allowed = f"a {what} (with {', '.join(m + '()' for m in methods)})"
        raise invalid(f"must be a {what}, not {_type(value)}", field, allowed, value)
    return value


def identifier(value: object, field: str, *, limit: int = 128) -> str:
    """A non-empty one-line string without surrounding spaces (an id, a recipient, a key)."""
    if type(value) is not str:
        allowed = f"a non-empty string of at most {limit} printable characters"
        raise invalid(f"must be a string, not {_type(value)}", field, allowed, value)
    return check_identifier(value, field, limit=limit)


def line(value: object, field: str, *, limit: int) -> str:
    """One line of printable text, not personal data (a label, a prefix)."""
    if type(value) is not str:
        allowed = f"a string of at most {limit} printable characters (one line)"
        raise invalid(f"must be a string, not {_type(value)}", field, allowed, value)
    return check_text(value, field, limit=limit, multiline=False, personal=False)


def word(value: object, field: str, *, limit: int, what: str) -> str:
    """A non-empty run of printable characters without spaces (a host, a URL)."""
    text = line(value, field, limit=limit)
    if not text or any(c.isspace() for c in text):
        raise invalid(f"is not {what}", field, f"{what}, without spaces", value)
    return text


def address(value: object, field: str) -> str:
    """A plain e-mail address (``name@domain``, no display name)."""
    text = line(value, field, limit=MAX_ADDRESS)
    if not ADDRESS.fullmatch(text):
        raise invalid(f"not an e-mail address: {shown(text)}", field, "name@domain", value)
    return text


def secret(value: object, field: str) -> bytes:
    """Non-empty ``bytes`` (or ``bytearray``); never shown in the error."""
    if not isinstance(value, bytes | bytearray):
        raise InvalidData(
            f"must be bytes, not {_type(value)}", field=field, allowed="non-empty bytes", value=REDACTED
        )
    if not value:
        raise InvalidData(
            "an empty secret cannot sign anything", field=field, allowed="non-empty bytes", value=REDACTED
        )
    return bytes(value)


def data(value: object, field: str) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise invalid(f"must be bytes, not {_type(value)}", field, "bytes", value)
    return bytes(value)


def _items(value: object, field: str, what: str, limit: int) -> list[object]:
    # A string or a mapping is iterable too, but as names it would be a mistake: "event" is not
    # {"e", "v", "n", "t"}.
    allowed = f"a list, tuple or set of at most {limit} {what}"
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise invalid(f"must be a collection of {what}, not {_type(value)}", field, allowed, value)
    items = list(itertools.islice(value, limit + 1))
    if len(items) > limit:
        raise invalid(f"has more than {limit} items", field, allowed, f"{limit + 1}+ items")
    return items


def names(value: object, field: str, *, limit: int = MAX_NAMES) -> frozenset[str]:
    """A collection of identifiers (not a single string, not a mapping)."""
    return frozenset(identifier(v, field) for v in _items(value, field, "names", limit))


def members(value: object, enum: type[E], field: str) -> frozenset[E]:
    """A collection of members of ``enum`` (their string values are not taken in their place)."""
    out = set()
    for item in _items(value, field, f"{enum.__name__} members", 100):
        if type(item) is not enum:
            allowed = ", ".join(f"{enum.__name__}.{m.name}" for m in enum)
            raise invalid(f"holds a {_type(item)}, not a {enum.__name__}", field, allowed, item)
        out.add(item)
    return frozenset(out)


def text_map(
    value: object, field: str, *, key: Callable[[object, str], str], limit: int = MAX_NAMES
) -> dict[str, str]:
    """``None`` (empty) or a mapping of checked keys to one-line values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(f"must be a mapping, not {_type(value)}", field, "a mapping of strings", value)
    if len(value) > limit:
        raise invalid(f"has {len(value)} items", field, f"at most {limit} items", len(value))
    return {key(k, field): line(v, field, limit=MAX_URL) for k, v in value.items()}


def header_name(value: object, field: str) -> str:
    text = line(value, field, limit=200)
    if not _TOKEN.fullmatch(text):
        raise invalid("is not a header name", field, "letters, digits and !#$%&'*+.^_`|~-", value)
    return text


def rendered(value: object, field: str) -> dict[str, str]:
    """A rendered notification: a mapping of strings to strings."""
    if not isinstance(value, Mapping) or not all(type(k) is str and type(v) is str for k, v in value.items()):
        raise invalid("must be a mapping of strings to strings", field, "a dict[str, str]", value)
    return dict(value)


def notification(value: object, field: str) -> Notification:
    if not isinstance(value, Notification):
        raise invalid(f"must be a Notification, not {_type(value)}", field, "a Notification", value)
    return value
