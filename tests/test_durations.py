"""Durations as the practice states them, and the calendar they are counted on.

``Duration.parse`` accepts whole days, words and ISO 8601 and refuses everything else with a typed
:class:`~casemgmt_core.InvalidData`; ``Duration.after`` adds calendar months and days on the local
calendar of a time zone, keeping the wall-clock time; a policy's ``time_zone`` must name a zone.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import casemgmt_core as cm
from casemgmt_core.durations import (
    ALLOWED,
    MAX_DURATION_DAYS,
    MAX_DURATION_MONTHS,
    MAX_LONGEST_DAYS,
    Duration,
)

UTC = dt.UTC
SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
#: Zones with and without daylight saving time, one of them shifting by half an hour (Lord Howe).
ZONES = [
    ZoneInfo(name)
    for name in ("Asia/Seoul", "UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe")
]
MAX_MONTHS = MAX_DURATION_MONTHS
T = TypeVar("T")

zones = st.sampled_from(ZONES)
starts = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),
    max_value=dt.datetime(2060, 12, 31),
    timezones=st.sampled_from([*ZONES, UTC]),
    allow_imaginary=False,
)
#: Every duration there is: months, then days up to the maximum (at least one day without months).
durations = st.integers(0, MAX_MONTHS).flatmap(
    lambda m: st.builds(
        Duration, st.just(m), st.integers(0 if m else 1, min(MAX_DURATION_DAYS, MAX_LONGEST_DAYS - 31 * m))
    )
)


def outcome(make: Callable[[], T]) -> T | cm.InvalidData:
    """What ``make`` returns, or the :class:`InvalidData` it raises (any other error propagates)."""
    try:
        return make()
    except cm.InvalidData as exc:
        return exc


def wall(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The local date and time of ``moment`` in ``zone``, without the zone."""
    return moment.astimezone(zone).replace(tzinfo=None)


def elapsed_between(start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Real time between two moments (``end - start`` of one zone would subtract wall clocks)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def exists(local: dt.datetime, zone: dt.tzinfo) -> bool:
    """Whether the wall-clock time ``local`` happens in ``zone`` (not skipped by a DST change)."""
    return wall(local.replace(tzinfo=zone).astimezone(UTC), zone) == local


def plus_months(local: dt.datetime, months: int) -> dt.datetime:
    """``local`` moved ``months`` calendar months on, on the month's last day where it is shorter."""
    year, month = divmod(local.month - 1 + months, 12)
    year += local.year
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)


# -- parse: every accepted form ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "months", "days"),
    [
        (183, 0, 183),
        (1, 0, 1),
        (MAX_DURATION_DAYS, 0, MAX_DURATION_DAYS),
        ("6 months", 6, 0),
        ("100 years", 1200, 0),
        ("P100Y", 1200, 0),
        ("1 month 15 days", 1, 15),
        ("1 year 2 weeks", 12, 14),
        ("1 month", 1, 0),
        ("12 months", 12, 0),
        ("2 weeks", 0, 14),
        ("1 week", 0, 7),
        ("1 year", 12, 0),
        ("2 years", 24, 0),
        ("10 days", 0, 10),
        ("1 day", 0, 1),
        ("36500 days", 0, MAX_DURATION_DAYS),
        ("  6 Months ", 6, 0),
        ("6 MONTHS", 6, 0),
        ("P6M", 6, 0),
        ("p6m", 6, 0),
        ("P1Y", 12, 0),
        ("P2W", 0, 14),
        ("P10D", 0, 10),
        ("P183D", 0, 183),
        ("P1M15D", 1, 15),
        ("P1Y2M3W4D", 14, 25),
        ("P0Y5D", 0, 5),
    ],
)
def test_every_accepted_form_parses(text: object, months: int, days: int) -> None:
    parsed = Duration.parse(text)
    assert (parsed.months, parsed.days) == (months, days)
    assert Duration.parse(parsed) is parsed


@given(st.integers(1, MAX_DURATION_DAYS))
def test_whole_days_in_every_spelling_are_the_same_duration(days: int) -> None:
    expected = Duration(0, days)
    spellings: list[object] = [days, f"{days} days", f"P{days}D"]
    if days == 1:
        spellings.append("1 day")
    if days % 7 == 0:
        spellings += [f"{days // 7} weeks", f"P{days // 7}W"]
    assert {Duration.parse(s) for s in spellings} == {expected}


@given(st.integers(1, MAX_MONTHS))
def test_months_and_years_in_every_spelling_are_the_same_duration(months: int) -> None:
    spellings = [f"{months} months", f"P{months}M", f" {months} MONTHS\t"]
    if months % 12 == 0:
        spellings += [f"{months // 12} years", f"P{months // 12}Y"]
    assert {Duration.parse(s) for s in spellings} == {Duration(months, 0)}


# -- parse: everything else is refused, typed -----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        6.0,
        183.5,
        b"6 months",
        bytearray(b"P6M"),
        [6],
        ("6", "months"),
        {"months": 6},
        dt.timedelta(days=6),
        0,
        -1,
        -183,
        MAX_DURATION_DAYS + 1,
        10**9,
        10**100,
        "",
        "   ",
        "P",
        "p",
        "PT1H",
        "P1DT1H",
        "P1.5M",
        "P-1M",
        "P0D",
        "P0Y0M",
        "0 days",
        "0 months",
        "-6 months",
        "+6 months",
        "6.5 months",
        "1e3 days",
        "6 moons",
        "six months",
        "6months",
        "6  months",
        "6 months and 2 days",
        "6 months; DROP TABLE cases",
        "100000 days",
        "1234567 days",
        "P99999Y",
        "P1200M1D",
        "P101Y",
        "1" * 41,
        "6 months" + " " * 40,
        "x" * 10_000,
        "6 months\x00",
    ],
    ids=repr,
)
def test_hostile_values_are_refused_with_the_field_and_what_is_allowed(value: object) -> None:
    with pytest.raises(cm.InvalidData) as info:
        Duration.parse(value, "time_limits.case_max")
    assert info.value.field == "time_limits.case_max"
    assert info.value.allowed == ALLOWED


@pytest.mark.parametrize(
    "value", ["\u0666 months", "\uff16 months", "P\uff16M", "\u0967\u0966 days"], ids=ascii
)
def test_digits_of_other_scripts_are_refused(value: str) -> None:
    """Limits are written in ASCII digits: an Arabic-Indic, full-width or Devanagari digit is no
    number of days here (``int()`` would read them, a reader of the policy file may not)."""
    with pytest.raises(cm.InvalidData) as info:
        Duration.parse(value, "time_limits.case_max")
    assert info.value.field == "time_limits.case_max"


@given(st.one_of(st.text(max_size=60), st.binary(max_size=20), st.floats(), st.booleans(), st.none()))
def test_parse_gives_a_duration_in_range_or_invalid_data(value: object) -> None:
    parsed = outcome(lambda: Duration.parse(value))
    if isinstance(parsed, cm.InvalidData):
        assert parsed.field == "duration"
    else:
        assert type(value) is str
        assert 1 <= parsed.longest_days <= MAX_LONGEST_DAYS


@given(st.integers())
def test_whole_numbers_are_days_from_one_to_the_maximum(value: int) -> None:
    if 1 <= value <= MAX_DURATION_DAYS:
        assert Duration.parse(value) == Duration(0, value)
    else:
        with pytest.raises(cm.InvalidData):
            Duration.parse(value)


@pytest.mark.parametrize(
    ("months", "days"),
    [
        (0, 0),
        (-1, 40),
        (1, -1),
        (True, 0),
        (0, True),
        (0, 1.0),
        (MAX_MONTHS + 1, 0),
        (0, MAX_DURATION_DAYS + 1),
    ],
)
def test_a_duration_is_built_only_in_range(months: object, days: object) -> None:
    with pytest.raises(cm.InvalidData) as info:
        Duration(months, days)  # type: ignore[arg-type]
    assert info.value.field == "duration"
    assert info.value.allowed == ALLOWED


# -- words and ISO 8601 back ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "words", "iso"),
    [
        (Duration(6, 0), "6 months", "P6M"),
        (Duration(1, 0), "1 month", "P1M"),
        (Duration(0, 1), "1 day", "P1D"),
        (Duration(0, 14), "14 days", "P14D"),
        (Duration(1, 15), "1 month 15 days", "P1M15D"),
    ],
)
def test_a_duration_is_written_in_words_and_in_iso_8601(duration: Duration, words: str, iso: str) -> None:
    assert (str(duration), duration.iso()) == (words, iso)
    assert duration.longest_days == duration.months * 31 + duration.days


@given(durations)
def test_iso_8601_round_trips_through_parse(duration: Duration) -> None:
    assert Duration.parse(duration.iso()) == duration


@given(durations)
def test_words_round_trip_through_parse(duration: Duration) -> None:
    """``str()`` writes what ``parse`` reads, months and days together included."""
    assert Duration.parse(str(duration)) == duration


# -- after: calendar arithmetic ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "end"),
    [
        # Six months from 15 January end on 15 July (181 days), from 31 August at the end of February.
        (
            dt.datetime(2026, 1, 15, 10, tzinfo=SEOUL),
            Duration(6, 0),
            dt.datetime(2026, 7, 15, 10, tzinfo=SEOUL),
        ),
        (
            dt.datetime(2026, 8, 31, 10, tzinfo=SEOUL),
            Duration(6, 0),
            dt.datetime(2027, 2, 28, 10, tzinfo=SEOUL),
        ),
        (
            dt.datetime(2027, 8, 31, 10, tzinfo=SEOUL),
            Duration(6, 0),
            dt.datetime(2028, 2, 29, 10, tzinfo=SEOUL),
        ),
        (
            dt.datetime(2026, 3, 1, 10, tzinfo=SEOUL),
            Duration(6, 0),
            dt.datetime(2026, 9, 1, 10, tzinfo=SEOUL),
        ),
        (
            dt.datetime(2024, 2, 29, 10, tzinfo=SEOUL),
            Duration(12, 0),
            dt.datetime(2025, 2, 28, 10, tzinfo=SEOUL),
        ),
        (
            dt.datetime(2026, 1, 31, 10, tzinfo=SEOUL),
            Duration(1, 1),
            dt.datetime(2026, 3, 1, 10, tzinfo=SEOUL),
        ),
        (
            dt.datetime(2026, 12, 25, 10, tzinfo=SEOUL),
            Duration(0, 14),
            dt.datetime(2027, 1, 8, 10, tzinfo=SEOUL),
        ),
    ],
)
def test_calendar_examples(start: dt.datetime, duration: Duration, end: dt.datetime) -> None:
    assert duration.after(start, SEOUL) == end


def test_the_calendar_is_the_zones_not_the_starts() -> None:
    start = dt.datetime(2026, 2, 28, 20, 0, tzinfo=UTC)  # 1 March 05:00 in Seoul
    in_seoul = Duration(1, 0).after(start, SEOUL)
    in_utc = Duration(1, 0).after(start, UTC)
    assert (in_seoul, in_seoul.tzinfo) == (dt.datetime(2026, 3, 31, 20, 0, tzinfo=UTC), UTC)
    assert in_utc == dt.datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    seoul = cm.Policy(time_zone="Asia/Seoul")
    utc = cm.Policy(time_zone="UTC")
    assert seoul.deadline(start, Duration(1, 0)) == in_seoul
    assert utc.deadline(start, Duration(1, 0)) == in_utc


@pytest.mark.parametrize(
    ("start", "zone", "elapsed"),
    [
        # The night the clocks go forward: a day of 23 hours; back: 25 hours.
        (dt.datetime(2026, 3, 7, 12, tzinfo=NEW_YORK), NEW_YORK, dt.timedelta(hours=23)),
        (dt.datetime(2026, 10, 31, 12, tzinfo=NEW_YORK), NEW_YORK, dt.timedelta(hours=25)),
        (dt.datetime(2026, 11, 1, 12, tzinfo=NEW_YORK), NEW_YORK, dt.timedelta(days=1)),
        (dt.datetime(2026, 3, 28, 9, tzinfo=BERLIN), BERLIN, dt.timedelta(hours=23)),
        (dt.datetime(2026, 10, 24, 9, tzinfo=BERLIN), BERLIN, dt.timedelta(hours=25)),
    ],
)
def test_a_day_across_a_daylight_saving_change_keeps_the_wall_clock(
    start: dt.datetime, zone: ZoneInfo, elapsed: dt.timedelta
) -> None:
    end = Duration(0, 1).after(start, zone)
    assert wall(end, zone) == wall(start, zone) + dt.timedelta(days=1)
    assert elapsed_between(start, end) == elapsed
    assert Duration(0, 1).after(start.astimezone(UTC), zone) == end


@given(starts, st.integers(1, MAX_DURATION_DAYS), zones)
def test_days_are_days_on_the_local_calendar(start: dt.datetime, days: int, zone: ZoneInfo) -> None:
    end = Duration(0, days).after(start, zone)
    local = wall(start, zone) + dt.timedelta(days=days)
    assume(exists(local, zone))
    assert wall(end, zone) == local
    shift = start.astimezone(zone).utcoffset() - end.astimezone(zone).utcoffset()  # type: ignore[operator]
    assert elapsed_between(start, end) == dt.timedelta(days=days) + shift


@given(starts, st.integers(1, MAX_MONTHS), zones)
def test_months_land_on_the_same_day_or_the_months_last(
    start: dt.datetime, months: int, zone: ZoneInfo
) -> None:
    end = Duration(months, 0).after(start, zone)
    local = plus_months(wall(start, zone), months)
    assume(exists(local, zone))
    assert wall(end, zone) == local


@given(starts, durations, zones)
def test_the_end_is_aware_later_and_in_the_starts_zone(
    start: dt.datetime, duration: Duration, zone: ZoneInfo
) -> None:
    end = duration.after(start, zone)
    assert end.tzinfo is start.tzinfo
    assert end.utcoffset() is not None
    assert end > start


@given(starts, st.integers(0, MAX_MONTHS - 1), st.integers(1, 400), st.integers(1, 400), zones)
def test_a_longer_duration_ends_later(
    start: dt.datetime, months: int, days: int, more: int, zone: ZoneInfo
) -> None:
    assume((months + 1) * 31 + days + more <= MAX_LONGEST_DAYS)
    shorter = Duration(months, days).after(start, zone)
    assert shorter < Duration(months, days + more).after(start, zone)
    assert shorter < Duration(months + 1, days).after(start, zone)


@given(starts, durations, st.sampled_from([*ZONES, ZoneInfo("Pacific/Apia"), ZoneInfo("Pacific/Kwajalein")]))
@example(
    dt.datetime(2011, 12, 29, 12, tzinfo=ZoneInfo("Pacific/Apia")), Duration(0, 2), ZoneInfo("Pacific/Apia")
)
@example(
    dt.datetime(2011, 12, 29, 12, tzinfo=ZoneInfo("Pacific/Apia")), Duration(0, 1), ZoneInfo("Pacific/Apia")
)
@example(dt.datetime(2026, 1, 31, 12, tzinfo=SEOUL), Duration(1, 0), SEOUL)
def test_a_duration_is_never_shorter_than_its_floor(
    start: dt.datetime, duration: Duration, zone: ZoneInfo
) -> None:
    """``at_least`` is the quick "not yet" the case limit is checked with: it must never overshoot
    (Samoa skipped 30 December 2011 to move across the date line)."""
    assert elapsed_between(start, duration.after(start, zone)) >= duration.at_least


def test_the_same_wall_clock_time_twice_in_the_night_gives_two_deadlines() -> None:
    """01:30 on the night New York's clocks go back happens twice, an hour apart: a day after each
    (on the UTC calendar) are two moments an hour apart, whichever was asked for first."""
    first = dt.datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)
    second = first.replace(fold=1)
    assert elapsed_between(first, second) == dt.timedelta(hours=1)
    day = Duration(0, 1)
    assert day.after(first, UTC).astimezone(UTC) == dt.datetime(2026, 11, 2, 5, 30, tzinfo=UTC)
    assert day.after(second, UTC).astimezone(UTC) == dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


# -- the policy's time zone -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["Asia/Seoul", "UTC", "America/New_York", "Europe/Berlin"])
def test_a_policy_counts_on_the_calendar_of_its_zone(name: str) -> None:
    policy = cm.Policy(time_zone=name)
    start = dt.datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert policy.zone == ZoneInfo(name)
    assert policy.deadline(start, Duration(1, 0)) == Duration(1, 0).after(start, ZoneInfo(name))


@pytest.mark.parametrize(
    "name",
    [
        "",
        " ",
        "Mars/Olympus_Mons",
        "Asia/Seoul ",
        "asia/seoul/",
        "Asia",
        "../../etc/passwd",
        "/etc/localtime",
        "Asia/../Asia/Seoul",
        "Asia/Seoul\x00",
        "z" * 65,
        5,
        None,
        b"UTC",
        ["Asia/Seoul"],
        ("Asia/Seoul",),
        {"Asia/Seoul"},
    ],
    ids=repr,
)
def test_a_policy_refuses_what_is_not_a_time_zone(name: object) -> None:
    with pytest.raises(cm.InvalidData) as info:
        cm.Policy(time_zone=name)  # type: ignore[arg-type]
    assert info.value.field == "Policy.time_zone"


@given(st.text(max_size=70))
def test_any_time_zone_text_is_a_zone_or_invalid_data(name: str) -> None:
    policy = outcome(lambda: cm.Policy(time_zone=name))
    if isinstance(policy, cm.InvalidData):
        assert policy.field == "Policy.time_zone"
    else:
        assert isinstance(policy.zone, dt.tzinfo)


def test_a_policy_file_states_limits_in_words_and_its_time_zone() -> None:
    policy = cm.load_policy(
        'time_zone = "Europe/Berlin"\n'
        "[time_limits]\n"
        'service_item_max = "6 months"\n'
        'case_max = "P1Y"\n'
        'aftercare = "2 weeks"\n'
        "no_contact_days = 45\n"
    )
    limits = policy.time_limits
    assert (limits.service_item_max, limits.case_max, limits.aftercare, limits.no_contact) == (
        Duration(6, 0),
        Duration(12, 0),
        Duration(0, 14),
        Duration(0, 45),
    )
    assert policy.zone == BERLIN


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('time_zone = "Mars/Olympus_Mons"', "policy.time_zone"),
        ("time_zone = 9", "policy.time_zone"),
        ('[time_limits]\ncase_max = "6 moons"', "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 0", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 1.5", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = true", "policy.time_limits.case_max"),
        ('[time_limits]\ncase_max_days = "365"', "policy.time_limits.case_max_days"),
        ('[time_limits]\ncase_max_days = 365\ncase_max = "P1Y"', "policy.time_limits.case_max_days"),
    ],
)
def test_a_policy_file_with_a_wrong_duration_or_zone_is_refused_at_the_field(toml: str, field: str) -> None:
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy(toml)
    assert field in info.value.fields
