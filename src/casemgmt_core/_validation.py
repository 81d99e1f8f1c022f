"""Field validators for the models and commands: the boundary's first line.

Every value is checked when its object is built, so that nothing that could not be read back,
or that makes no sense whatever the case, gets as far as :func:`~casemgmt_core.decide`. Checks
that depend on the case or the clock (a birth date in the future, consent before the referral)
are the engine's (:mod:`casemgmt_core.engine`). Nothing is coerced: a string is not an enum
member, a ``datetime`` is not a ``date``, ``True`` is not ``1``.

A failed check raises :class:`~casemgmt_core.InvalidData` with ``field`` (``Class.attribute``),
``value`` (:data:`~casemgmt_core.errors.REDACTED` for personal data) and ``allowed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from attrs import Attribute

from .errors import REDACTED, InvalidData

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "MAX_IDENTIFIER",
    "MAX_LINE",
    "MAX_NAME",
    "MAX_TEXT",
    "Validator",
    "aware_datetime",
    "aware_datetime_value",
    "boolean",
    "check_identifier",
    "check_instance",
    "check_text",
    "date",
    "enum_member",
    "identifier",
    "identifiers",
    "integer",
    "line",
    "optional",
    "shown",
    "text",
]

Validator = Callable[[Any, "Attribute[Any]", Any], None]

#: Dates and times the model accepts: wide enough for any living person and any plan, narrow
#: enough that adding a policy's longest period never overflows.
DATE_MIN = dt.date(1850, 1, 1)
DATE_MAX = dt.date(2200, 12, 31)
_DT_MIN = dt.datetime(1850, 1, 1, tzinfo=dt.UTC)
_DT_MAX = dt.datetime(2201, 1, 1, tzinfo=dt.UTC)

#: Longest identifier (case, member, consent, actor ids...).
MAX_IDENTIFIER = 128
#: Longest name (a person's, an agency's, a service's).
MAX_NAME = 200
#: Longest one-line text (a reason, a legal basis, a wanted change).
MAX_LINE = 2_000
#: Longest free text (a journal entry, a conference's decisions).
MAX_TEXT = 20_000

# Bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) and other format
# characters are not printable, so ``str.isprintable`` (C speed) rejects them with the controls.
_FREE_TEXT_SPACING = str.maketrans("", "", "\n\t")


def shown(value: object, *, limit: int = 60) -> str:
    """A short, safe rendering of a non-personal value for an error."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"<a whole number of {value.bit_length()} bits>"
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) and len(value) > 4 * limit:
        value = value[: 4 * limit] if isinstance(value, str | bytes | list | tuple) else type(value)
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not replace the error being reported
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(instance: object, attribute: Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _bad(
    instance: object, attribute: Attribute[Any], message: str, allowed: str, value: object, personal: bool
) -> InvalidData:
    return InvalidData(
        message,
        field=_field(instance, attribute),
        allowed=allowed,
        value=REDACTED if personal else shown(value),
    )


def _type_name(value: object) -> str:
    return type(value).__name__


def check_instance(value: object, cls: type, field: str, *, nullable: bool = False) -> None:
    """:class:`InvalidData` naming ``field`` unless ``value`` is a ``cls`` (or ``None`` if ``nullable``)."""
    if not isinstance(value, cls) and not (nullable and value is None):
        allowed = f"a {cls.__name__}" + (" or None" if nullable else "")
        raise InvalidData(
            f"must be a {cls.__name__}, not {type(value).__name__}",
            field=field,
            allowed=allowed,
            value=shown(value),
        )


def _is_identifier(value: object, limit: int) -> bool:
    # isprintable() is False for every control, format and separator character but " ".
    return (
        type(value) is str
        and 0 < len(value) <= limit
        and value.isprintable()
        and value[0] != " "
        and value[-1] != " "
    )


def _is_text(value: object, limit: int, multiline: bool) -> bool:
    return (
        type(value) is str
        and len(value) <= limit
        and (value.isprintable() or (multiline and value.translate(_FREE_TEXT_SPACING).isprintable()))
    )


def check_identifier(value: object, field: str, *, limit: int = MAX_IDENTIFIER) -> str:
    """``value`` if it is a usable identifier, else :class:`InvalidData` naming ``field``."""
    if _is_identifier(value, limit):
        return value  # type: ignore[return-value]
    allowed = f"a non-empty string of at most {limit} printable characters, no surrounding spaces"
    if type(value) is not str:
        raise InvalidData(
            f"must be a string, not {_type_name(value)}", field=field, allowed=allowed, value=shown(value)
        )
    raise InvalidData("is not a usable identifier", field=field, allowed=allowed, value=shown(value))


def check_text(
    value: object, field: str, *, limit: int, multiline: bool = True, personal: bool = True
) -> str:
    """``value`` if it is acceptable text, else :class:`InvalidData` naming ``field``."""
    if _is_text(value, limit, multiline):
        return value  # type: ignore[return-value]
    lines = "line breaks and tabs allowed" if multiline else "one line"
    allowed = f"a string of at most {limit} printable characters ({lines})"
    given = REDACTED if personal else shown(value)
    if type(value) is not str:
        raise InvalidData(
            f"must be a string, not {_type_name(value)}", field=field, allowed=allowed, value=given
        )
    if len(value) > limit:
        raise InvalidData(f"is {len(value)} characters long", field=field, allowed=allowed, value=given)
    raise InvalidData("contains control or formatting characters", field=field, allowed=allowed, value=given)


def identifier(instance: object, attribute: Attribute[Any], value: object) -> None:
    if not _is_identifier(value, MAX_IDENTIFIER):
        check_identifier(value, _field(instance, attribute))


def text(limit: int = MAX_TEXT, *, personal: bool = True) -> Validator:
    """Free text: line breaks and tabs allowed, no other control or formatting characters."""

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if not _is_text(value, limit, True):
            check_text(value, _field(instance, attribute), limit=limit, personal=personal)

    return validate


def line(limit: int = MAX_LINE, *, personal: bool = True) -> Validator:
    """One line of text (may be empty)."""

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if not _is_text(value, limit, False):
            check_text(value, _field(instance, attribute), limit=limit, multiline=False, personal=personal)

    return validate


def optional(validator: Validator) -> Validator:
    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return validate


def enum_member(enum: type[Enum]) -> Validator:
    """A member of ``enum`` itself: its string value is not accepted in its place."""
    allowed = ", ".join(f"{enum.__name__}.{m.name}" for m in enum)

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if type(value) is not enum:
            raise _bad(
                instance,
                attribute,
                f"must be a {enum.__name__}, not {_type_name(value)}",
                allowed,
                value,
                False,
            )

    return validate


def aware_datetime_value(value: object, field: str) -> dt.datetime:
    """``value`` if it is an aware datetime within the model's range, else :class:`InvalidData`."""
    allowed = f"a timezone-aware datetime between {DATE_MIN} and {DATE_MAX}"
    if type(value) is not dt.datetime or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidData(
            "must be a timezone-aware datetime", field=field, allowed=allowed, value=shown(value)
        )
    if not _DT_MIN <= value < _DT_MAX:
        raise InvalidData("is out of range", field=field, allowed=allowed, value=shown(value))
    return value


def _in_range(value: dt.datetime) -> bool:
    try:
        return _DT_MIN <= value < _DT_MAX
    except TypeError:  # a tzinfo whose utcoffset() is None makes the value naive
        return False


def aware_datetime(instance: object, attribute: Attribute[Any], value: object) -> None:
    if type(value) is dt.datetime and value.tzinfo is not None and _in_range(value):
        return
    allowed = f"a timezone-aware datetime between {DATE_MIN} and {DATE_MAX}"
    if type(value) is not dt.datetime:
        raise _bad(instance, attribute, f"must be a datetime, not {_type_name(value)}", allowed, value, False)
    if value.tzinfo is None or value.utcoffset() is None:
        raise _bad(instance, attribute, "must be timezone-aware", allowed, value, False)
    if not _DT_MIN <= value < _DT_MAX:
        raise _bad(instance, attribute, "is out of range", allowed, value, False)


def date(*, personal: bool = False) -> Validator:
    """A calendar date (a ``datetime`` is not a date)."""
    allowed = f"a date (datetime.date, not a datetime) between {DATE_MIN} and {DATE_MAX}"

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if type(value) is dt.date and DATE_MIN <= value <= DATE_MAX:
            return
        if type(value) is not dt.date:
            raise _bad(
                instance, attribute, f"must be a date, not {_type_name(value)}", allowed, value, personal
            )
        if not DATE_MIN <= value <= DATE_MAX:
            raise _bad(instance, attribute, "is out of range", allowed, value, personal)

    return validate


def boolean(instance: object, attribute: Attribute[Any], value: object) -> None:
    if type(value) is not bool:
        raise _bad(
            instance, attribute, f"must be True or False, not {_type_name(value)}", "a bool", value, False
        )


def integer(low: int, high: int) -> Validator:
    allowed = f"a whole number from {low} to {high}"

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if type(value) is not int:
            raise _bad(
                instance, attribute, f"must be a whole number, not {_type_name(value)}", allowed, value, False
            )
        if not low <= value <= high:
            raise _bad(instance, attribute, "is out of range", allowed, value, False)

    return validate


def instance_of(cls: type, *, nullable: bool = False) -> Validator:
    allowed = f"a {cls.__name__}" + (" or None" if nullable else "")

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if not isinstance(value, cls) and not (nullable and value is None):
            raise _bad(
                instance,
                attribute,
                f"must be a {cls.__name__}, not {_type_name(value)}",
                allowed,
                value,
                False,
            )

    return validate


def items_of(cls: type, *, limit: int = 1_000) -> Validator:
    """A tuple (or frozenset) of at most ``limit`` instances of ``cls``."""
    allowed = f"a tuple of at most {limit} {cls.__name__} values"
    exact = issubclass(cls, Enum)  # an enum's members are exactly of its type

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple | frozenset):
            raise _bad(
                instance, attribute, f"must be a tuple, not {_type_name(value)}", allowed, value, False
            )
        if len(value) > limit:
            raise _bad(instance, attribute, f"has {len(value)} items", allowed, len(value), False)
        for item in value:
            if type(item) is not cls and (exact or not isinstance(item, cls)):
                raise _bad(
                    instance,
                    attribute,
                    f"holds a {_type_name(item)}, not a {cls.__name__}",
                    allowed,
                    item,
                    False,
                )

    return validate


def identifiers(*, limit: int = 100) -> Validator:
    """A tuple of at most ``limit`` identifiers."""

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        name = _field(instance, attribute)
        if type(value) is not tuple or len(value) > limit:
            raise InvalidData(
                f"must be a tuple of at most {limit} identifiers",
                field=name,
                allowed=f"a tuple of at most {limit} identifiers",
                value=shown(value),
            )
        for item in value:
            check_identifier(item, name)

    return validate


def to_tuple(value: Sequence[Any]) -> tuple[Any, ...]:
    """Converter: a list or tuple becomes a tuple; anything else is left for the validator to refuse
    (``tuple("abc")`` would silently split a string into letters)."""
    return tuple(value) if isinstance(value, list | tuple) else value  # type: ignore[return-value]
