"""Lengths of time as the practice states them: "six months", "two weeks", ``P1Y``.

A :class:`Duration` is a number of calendar months and a number of days. It is added on calendar
dates in a programme's time zone (:meth:`Duration.after`): six months from 15 January end on
15 July, from 31 August on 28 (or 29) February, whatever the number of days between. Calendar
arithmetic is :class:`dateutil.relativedelta.relativedelta`'s; the time zone rules are the IANA
database's (:mod:`zoneinfo`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from typing import Any

from attrs import field, frozen
from dateutil.relativedelta import relativedelta

from .errors import InvalidData

__all__ = ["MAX_DURATION_DAYS", "MAX_DURATION_MONTHS", "MAX_LONGEST_DAYS", "Duration", "time_zone"]

#: Longest duration in days a policy may state as a number: 100 years of 365 days.
MAX_DURATION_DAYS = 36_500
#: Most calendar months in a duration: 100 years.
MAX_DURATION_MONTHS = 1_200
#: Bound of ``months * 31 + days`` (:attr:`Duration.longest_days`): at most 100 years of months.
MAX_LONGEST_DAYS = MAX_DURATION_MONTHS * 31

_UNITS = {"day": (0, 1), "week": (0, 7), "month": (1, 0), "year": (12, 0)}
_PART = re.compile(r"([0-9]{1,6}) (day|week|month|year)s?", re.ASCII)
_ISO = re.compile(r"P(?!$)(?:([0-9]{1,4})Y)?(?:([0-9]{1,6})M)?(?:([0-9]{1,6})W)?(?:([0-9]{1,6})D)?", re.ASCII)
ALLOWED = (
    'a whole number of days (183), words ("6 months", "2 weeks", "1 month 15 days"), or an ISO 8601 '
    'duration of years, months, weeks and days ("P6M", "P1Y", "P2W", "P1M15D"); from 1 day to 100 years'
)


@frozen
class Duration:
    """``months`` calendar months and ``days`` days (each at least 0, one of them more).

    Build one with :meth:`parse`; ``str()`` gives it back in words ("6 months", "1 month 15 days").
    """

    months: int = 0
    days: int = 0
    at_least: dt.timedelta = field(init=False, eq=False, repr=False)
    """A length the duration never falls short of, from any start in any zone (months counted
    as 28 days, less a day for changes of a zone's offset): a quick "not yet" before the
    calendar arithmetic."""

    def __attrs_post_init__(self) -> None:
        ok = (
            type(self.months) is int
            and type(self.days) is int
            and self.months >= 0
            and self.days >= 0
            and 0 < self.months * 31 + self.days <= MAX_LONGEST_DAYS
            and self.days <= MAX_DURATION_DAYS
        )
        if not ok:
            raise InvalidData(
                "is not a duration from 1 day to 100 years",
                field="duration",
                allowed=ALLOWED,
                value=f"months={self.months!r}, days={self.days!r}"[:80],
            )
        object.__setattr__(self, "at_least", dt.timedelta(days=self.months * 28 + self.days - 1))

    @classmethod
    def parse(cls, value: object, name: str = "duration") -> Duration:
        """A duration from a whole number of days, words, an ISO 8601 duration, or a Duration."""
        if type(value) is Duration:
            return value
        if type(value) is int:
            if not 1 <= value <= MAX_DURATION_DAYS:
                raise InvalidData("is out of range", field=name, allowed=ALLOWED, value=str(value))
            return cls(0, value)
        if type(value) is not str or len(value) > 40:
            kind = type(value).__name__ if type(value) is not str else "a string over 40 characters"
            raise InvalidData(f"must be a duration, not {kind}", field=name, allowed=ALLOWED)
        text = value.strip()
        months = days = 0
        iso = _ISO.fullmatch(text.upper()) if text[:1] in "Pp" else None
        if iso is not None:
            years, m, weeks, d = (int(g) if g else 0 for g in iso.groups())
            months, days = years * 12 + m, weeks * 7 + d
        else:
            words = text.lower().split(" ")
            if len(words) % 2 or not words:
                raise InvalidData("is not a duration", field=name, allowed=ALLOWED, value=repr(value)[:42])
            for at in range(0, len(words), 2):
                match = _PART.fullmatch(f"{words[at]} {words[at + 1]}")
                if match is None:
                    raise InvalidData(
                        "is not a duration", field=name, allowed=ALLOWED, value=repr(value)[:42]
                    )
                per_months, per_days = _UNITS[match.group(2)]
                amount = int(match.group(1))
                months, days = months + amount * per_months, days + amount * per_days
        try:
            return cls(months, days)
        except InvalidData:
            raise InvalidData(
                "is not a duration from 1 day to 100 years",
                field=name,
                allowed=ALLOWED,
                value=repr(value)[:42],
            ) from None

    def after(self, start: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
        """The moment this long after ``start``, counted on calendar dates in ``zone``.

        The wall-clock time of day is kept (a deadline falls at the hour its period began); a
        month without the start's day ends on its last day. The result is in ``start``'s zone.
        ``start`` must be timezone-aware.
        """
        offset = start.utcoffset()
        if offset is None:
            raise InvalidData("must be timezone-aware", field="start", allowed="an aware datetime")
        return _after(start, start.tzinfo, offset, self.months, self.days, zone)

    @property
    def longest_days(self) -> int:
        """An upper bound in days (months counted as 31 days), for sizing and sanity checks."""
        return self.months * 31 + self.days

    def __str__(self) -> str:
        parts = []
        if self.months:
            parts.append(f"{self.months} month" + ("s" if self.months != 1 else ""))
        if self.days:
            parts.append(f"{self.days} day" + ("s" if self.days != 1 else ""))
        return " ".join(parts)

    def iso(self) -> str:
        """The duration in ISO 8601 (``P6M``, ``P183D``, ``P1M15D``)."""
        return "P" + (f"{self.months}M" if self.months else "") + (f"{self.days}D" if self.days else "")


# The same deadlines are asked for again and again (a case's limit from its episode's start, on
# every command): calendar arithmetic is far slower than a cache lookup.
@functools.lru_cache(maxsize=8192)
def _after(
    start: dt.datetime,
    start_zone: dt.tzinfo | None,
    offset: dt.timedelta,
    months: int,
    days: int,
    zone: dt.tzinfo,
) -> dt.datetime:
    # start_zone and offset are part of the key: equal instants in other zones must give their
    # own zone back, and the two 01:30s of a night the clocks go back (``fold``) hash alike.
    local = start.astimezone(zone)
    moved: dt.datetime = local.replace(tzinfo=None) + relativedelta(months=months, days=days)
    return moved.replace(tzinfo=zone).astimezone(start_zone)


_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}", re.ASCII)
#: Names in the database that are not a place's rules: the host's setting, and placeholders.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


def time_zone(name: object) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name`` (``Asia/Seoul``), or :class:`InvalidData` saying it is unknown."""
    valid = (
        type(name) is str
        and len(name) <= 64
        and _ZONE_NAME.fullmatch(name) is not None
        and name not in _NOT_PLACES
        and not name.startswith(("posix/", "right/"))
    )
    if not valid:
        raise InvalidData(
            "is not a time zone name", field="time_zone", allowed="an IANA name like Asia/Seoul"
        )
    assert isinstance(name, str)
    return _zone(name)


@functools.cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidData(
            "is not a known time zone",
            field="time_zone",
            allowed="an IANA name like Asia/Seoul",
            value=name[:64],
        ) from None


def structure_duration(value: Any, _: Any = None) -> Duration:
    """cattrs hook: a policy's duration, strictly parsed."""
    return Duration.parse(value)
