"""Scenarios: what a simulation run assumes, loaded from TOML and validated as a whole.

Every section and key is optional except where a default would be meaningless; anything unknown
or invalid is reported at once, all problems together, in a :class:`ScenarioError`, each with its
field (``scenario.staff.caseworkers``). The rules the simulated cases follow are a
:class:`~casemgmt_core.Policy`: inline (``[policy]``, the same tables as a policy file) or from
``policy_file``; the default policy otherwise.

Loading is as strict as the policy's: nothing is coerced, every number is bounded (durations and
times at most 36 500 days), and the run with its deadlines must end within the dates the model
holds (before 2201).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import cattrs
from attrs import Attribute, evolve, field, fields, frozen

from .._checks import (
    MAX_DAYS,
    Invalid,
    Problem,
    decode,
    describe,
    kind_of,
    number,
    read_file,
    read_source,
    report,
    source_name,
    strict_converter,
)
from .._validation import MAX_LINE, MAX_NAME, aware_datetime, check_identifier, integer, line
from ..durations import Duration
from ..errors import InvalidData, PolicyError
from ..model import ClosureReason, CrisisFactor, ReferralChannel
from ..policy import DEFAULT_POLICY, Policy, TimeLimits, structure_policy
from .distributions import Distribution

__all__ = [
    "Arrivals",
    "Durations",
    "Households",
    "Outcomes",
    "Rates",
    "Scenario",
    "ScenarioError",
    "Staff",
    "load_scenario",
]

#: Largest arrivals table (CSV) read.
_MAX_TABLE_BYTES = 16 << 20
#: Largest weight in a table of weights; referrals per day per channel are bounded lower.
_MAX_WEIGHT = 1e6
_MAX_REFERRALS_PER_DAY = 1_000.0
#: Most observed values in an empirical distribution.
_MAX_EMPIRICAL = 10_000
#: The first instant the model cannot hold (its dates run to 2200-12-31).
_MODEL_END = dt.datetime(2201, 1, 1, tzinfo=dt.UTC)


class ScenarioError(PolicyError):
    """A scenario file or value is invalid; ``problems`` lists every problem found."""

    code = "scenario_error"


def _name(instance: object, attribute: Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


_probability = number(0.0, 1.0)


def _weights(high: float = _MAX_WEIGHT, *, most: int | None = None, least_sum: float = 0.0) -> Any:
    """Validator: weights (a mapping's values, or a sequence), each a number from 0 to ``high``,
    at most ``most`` of them, with a sum over ``least_sum`` (and over 0)."""
    allowed = (
        f"numbers from 0 to {high:g} with a sum above 0"
        + (f" and of at least {least_sum:g}" if least_sum else "")
        + (f", at most {most} of them" if most else "")
    )

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        name = _name(instance, attribute)
        if isinstance(value, Mapping):
            items = list(value.items())
        elif isinstance(value, tuple | list):
            items = [(str(i + 1), v) for i, v in enumerate(value)]
        else:
            raise InvalidData(f"must be weights, not {describe(value)}", field=name, allowed=allowed)
        for key, weight in items:
            if type(weight) not in (int, float) or not 0 <= weight <= high:
                raise InvalidData(f"weight {key} is {describe(weight)}", field=name, allowed=allowed)
        total = math.fsum(w for _, w in items)
        if not items or not total > 0 or total < least_sum or (most is not None and len(items) > most):
            raise InvalidData(f"has {len(items)} weight(s) summing to {total:g}", field=name, allowed=allowed)

    return validate


def _one_of(*choices: str) -> Any:
    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if type(value) is not str or value not in choices:
            raise InvalidData(
                "is not one of the choices",
                field=_name(instance, attribute),
                allowed=", ".join(choices),
                value=describe(value),
            )

    return validate


def _to_dist(raw: Any) -> Distribution:
    return Distribution.parse(raw)


def _duration(instance: object, attribute: Attribute[Any], value: object) -> None:
    allowed = f"a distribution whose parameters and values are at most {MAX_DAYS} days"
    if type(value) is not Distribution:
        raise InvalidData(f"must be a Distribution, not {describe(value)}", field=_name(instance, attribute))
    numbers = [v for _, v in value.params] + list(value.values)
    if len(value.values) > _MAX_EMPIRICAL or not all(0 <= v <= MAX_DAYS for v in numbers):
        raise InvalidData("is out of range", field=_name(instance, attribute), allowed=allowed)


def _arrival_rows(instance: object, attribute: Attribute[Any], value: object) -> None:
    ok = type(value) is tuple and all(
        type(row) is tuple
        and len(row) == 2
        and type(row[0]) in (int, float)
        and 0 <= row[0] <= MAX_DAYS
        and type(row[1]) is ReferralChannel
        for row in value
    )
    if not ok:
        raise InvalidData(
            "must be (day, channel) rows",
            field=_name(instance, attribute),
            allowed=f"a tuple of (day from 0 to {MAX_DAYS}, ReferralChannel) pairs",
        )


_INTAKE = Distribution.parse({"dist": "lognormal", "mean": 5.0, "sd": 3.0})
_SCREENING = Distribution.constant(2.0)
_ASSESSMENT = Distribution.parse({"dist": "gamma", "mean": 14.0, "sd": 7.0})
_PLANNING = Distribution.parse({"dist": "gamma", "mean": 10.0, "sd": 5.0})
_SERVICE_CYCLE = Distribution.exponential(90.0)
_REASSESSMENT = Distribution.parse({"dist": "uniform", "low": 5.0, "high": 15.0})
_CRISIS = Distribution.exponential(7.0)
_RECURRENCE = Distribution.exponential(120.0)


@frozen
class Arrivals:
    """How households are referred: a Poisson process per channel, or a table of arrivals."""

    process: str = field(default="poisson", validator=_one_of("poisson", "table"))
    rates_per_day: Mapping[ReferralChannel, float] = field(
        factory=lambda: {ReferralChannel.WALK_IN: 0.2, ReferralChannel.SCHOOL: 0.1},
    )
    """Expected referrals per day by channel (``process = "poisson"``): each 0 to 1 000, together
    at least 0.000001."""
    table: tuple[tuple[float, ReferralChannel], ...] = field(default=(), validator=_arrival_rows)
    """``(day, channel)`` rows, read from a CSV with columns ``day,channel`` (``process = "table"``;
    at most 16 MiB; days from 0 to 36 500)."""

    @rates_per_day.validator
    def _rates(self, attribute: Attribute[Any], value: Mapping[ReferralChannel, float]) -> None:
        if self.process == "poisson":
            _weights(_MAX_REFERRALS_PER_DAY, least_sum=1e-6)(self, attribute, value)


@frozen
class Households:
    """What referred households are like. Probabilities are per referred household (0 to 1)."""

    crisis_factor_counts: tuple[float, ...] = field(
        default=(0.2, 0.35, 0.3, 0.15), validator=_weights(most=len(CrisisFactor))
    )
    """Weights of 1, 2, 3, ... crisis factors found at intake (at most 12 weights, each at most
    1 000 000)."""
    crisis_factor_weights: Mapping[CrisisFactor, float] = field(
        factory=lambda: {
            f: 1.0
            for f in CrisisFactor
            if f not in (CrisisFactor.CHILD_ABUSE, CrisisFactor.ELDER_ABUSE, CrisisFactor.DOMESTIC_VIOLENCE)
        },
        validator=_weights(),
    )
    """Which factors are found (abuse is drawn separately below, as a statutory ground)."""
    p_consent: float = field(default=0.85, validator=_probability)
    """The household consents to service and to the use of its data."""
    p_child: float = field(default=0.6, validator=_probability)
    p_child_abuse: float = field(default=0.03, validator=_probability)
    """Among households with a child."""
    p_elder_abuse: float = field(default=0.01, validator=_probability)
    p_domestic_violence: float = field(default=0.03, validator=_probability)
    p_information_only: float = field(default=0.08, validator=_probability)
    p_counselling_only: float = field(default=0.05, validator=_probability)
    p_out_of_jurisdiction: float = field(default=0.02, validator=_probability)
    p_managed_elsewhere: float = field(default=0.03, validator=_probability)


@frozen
class Staff:
    caseworkers: int = field(default=6, validator=integer(1, 1_000))
    """1 to 1 000."""
    caseload_cap: int = field(default=20, validator=integer(1, 1_000))
    """Most cases one caseworker holds at once (1 to 1 000); further cases wait in the queue."""
    queue: str = field(default="fifo", validator=_one_of("fifo", "statutory_first"))
    """``fifo``, or ``statutory_first``: cases under a statutory override go to the front."""


@frozen
class Durations:
    """Stage durations in days (parameters and values at most 36 500; an empirical distribution
    has at most 10 000 values). A stage interrupted by a crisis resumes for what is left.

    After-care lasts the policy's ``time_limits.aftercare``, and an episode at most its
    ``case_max`` (with extensions): the rules, not the scenario.
    """

    intake: Distribution = field(default=_INTAKE, converter=_to_dist, validator=_duration)
    screening: Distribution = field(default=_SCREENING, converter=_to_dist, validator=_duration)
    assessment: Distribution = field(default=_ASSESSMENT, converter=_to_dist, validator=_duration)
    planning: Distribution = field(default=_PLANNING, converter=_to_dist, validator=_duration)
    service_cycle: Distribution = field(default=_SERVICE_CYCLE, converter=_to_dist, validator=_duration)
    """Service and monitoring until the next review (goals met, dropout, or reassessment)."""
    reassessment: Distribution = field(default=_REASSESSMENT, converter=_to_dist, validator=_duration)
    crisis: Distribution = field(default=_CRISIS, converter=_to_dist, validator=_duration)
    recurrence: Distribution = field(default=_RECURRENCE, converter=_to_dist, validator=_duration)
    """From closure to a recurrence, for households whose problems recur."""


# A hazard is drawn as an exponential gap of mean 1 / rate, which must stay finite.
_hazard = number(1e-6, 1.0, allow_zero=True)


@frozen
class Rates:
    """Hazards per day while a case is in active work (intake to reassessment): each 0 (never),
    or from 0.000001 to 1."""

    crisis_per_day: float = field(default=0.004, validator=_hazard)
    consent_withdrawal_per_day: float = field(default=0.0005, validator=_hazard)


def _default_dropout() -> dict[ClosureReason, float]:
    return {
        ClosureReason.MOVED_AWAY: 0.4,
        ClosureReason.UNREACHABLE: 0.4,
        ClosureReason.TRANSFERRED: 0.15,
        ClosureReason.DEATH: 0.05,
    }


@frozen
class Outcomes:
    """What happens at the end of each service cycle, and after closure (probabilities 0 to 1)."""

    p_goals_met_per_cycle: float = field(default=0.35, validator=_probability)
    p_self_reliant: float = field(default=0.5, validator=_probability)
    """Share of successful closures recorded as ``self_reliant`` rather than ``goals_met``."""
    p_dropout_per_cycle: float = field(default=0.05, validator=_probability)
    dropout_reasons: Mapping[ClosureReason, float] = field(factory=_default_dropout, validator=_weights())
    p_revise_plan: float = field(default=0.5, validator=_probability)
    """After a reassessment: revise the plan (back to planning) rather than resume services."""
    p_aftercare: float = field(default=0.4, validator=_probability)
    """After a closure the policy allows after-care for (``episodes.aftercare_after``)."""
    p_recurrence: float = field(default=0.15, validator=_probability)
    p_extend_case_at_limit: float = field(default=0.0, validator=_probability)
    """At the episode's time limit (the policy's ``case_max``), a supervisor extends the case
    (``extend_case``, by the policy's ``case_extension``); otherwise, and once the policy's
    ``max_case_extensions`` are used (the engine refuses more), it is closed for
    ``maximum_duration``. Drawn at each limit reached."""
    p_extend_service_at_limit: float = field(default=0.0, validator=_probability)
    """After a reassessment, a service item past its time limit is extended (``extend_service``,
    by the policy's ``service_extension``, at most ``max_service_extensions`` times); otherwise
    it ends and the family takes it over. Drawn for each such item."""

    @dropout_reasons.validator
    def _dropout(self, attribute: Attribute[Any], value: Mapping[ClosureReason, float]) -> None:
        wrong = sorted(
            r.value for r in value if r in (ClosureReason.GOALS_MET, ClosureReason.SELF_RELIANT)
        ) + sorted(r.value for r in value if r is ClosureReason.CONSENT_WITHDRAWN)
        if wrong:
            raise ValueError(f"dropout_reasons cannot include {', '.join(wrong)}")


def _longest_period(policy: Policy) -> int:
    """An upper bound in whole days of the policy's longest period: each time limit (months
    counted as 31 days), a case or a service item with every extension, the statutory hours
    (rounded up), and a day for the time zone."""
    limits = policy.time_limits
    days = [d.longest_days for a in fields(TimeLimits) if type(d := getattr(limits, a.name)) is Duration]
    days.append(
        limits.case_max.longest_days + limits.max_case_extensions * limits.case_extension.longest_days
    )
    days.append(
        limits.service_item_max.longest_days
        + limits.max_service_extensions * limits.service_extension.longest_days
    )
    hours = [0]
    for rule in policy.statutory.values():
        hours.append(rule.report_within_hours)
        hours.append(rule.confirmation_within_hours or 0)
    return max(*days, math.ceil(max(hours) / 24)) + 1


def _program(instance: object, attribute: Attribute[Any], value: object) -> None:
    check_identifier(value, _name(instance, attribute), limit=MAX_NAME)


@frozen
class Scenario:
    """A simulation scenario. Times are days from ``start``."""

    name: str = field(default="scenario", validator=_program)
    """One line of at most 200 characters."""
    description: str = field(default="", validator=line(MAX_LINE, personal=False))
    """One line of at most 2 000 characters."""
    start: dt.datetime = field(default=dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC), validator=aware_datetime)
    """With a UTC offset, from 1850 to 2200."""
    horizon_days: float = field(default=3 * 365.0, validator=number(1.0, MAX_DAYS))
    """1 to 36 500 days; the run, plus the policy's longest time limit, must end before 2201."""
    warmup_days: float = field(default=365.0, validator=number(0.0, MAX_DAYS))
    """Less than ``horizon_days``."""
    replications: int = field(default=10, validator=integer(1, 1_000))
    """1 to 1 000."""
    seed: int = field(default=12345, validator=integer(0, 2**63 - 1))
    sample_every_days: float = field(default=7.0, validator=number(0.01, MAX_DAYS))
    """Grid on which the caseload over time is sampled for the summaries and plots (0.01 to 36 500)."""
    policy: Policy = field(default=DEFAULT_POLICY, validator=kind_of(Policy))
    arrivals: Arrivals = field(default=Arrivals(), validator=kind_of(Arrivals))
    households: Households = field(default=Households(), validator=kind_of(Households))
    staff: Staff = field(default=Staff(), validator=kind_of(Staff))
    durations: Durations = field(default=Durations(), validator=kind_of(Durations))
    rates: Rates = field(default=Rates(), validator=kind_of(Rates))
    outcomes: Outcomes = field(default=Outcomes(), validator=kind_of(Outcomes))

    @horizon_days.validator
    def _within_model_dates(self, attribute: Attribute[float], value: float) -> None:
        start, policy = self.start, self.policy
        usable = type(start) is dt.datetime and start.utcoffset() is not None and start < _MODEL_END
        if not usable or not isinstance(policy, Policy):
            return  # refused by their own validators
        longest = _longest_period(policy)
        end = start + dt.timedelta(days=value + longest)
        if end >= _MODEL_END:
            raise InvalidData(
                f"the run and the policy's longest time limit ({longest} days) end on {end.date()}",
                field=_name(self, attribute),
                allowed=f"a run whose deadlines end before {_MODEL_END.date()} (the model's dates end there)",
            )

    @warmup_days.validator
    def _warmup(self, attribute: Attribute[float], value: float) -> None:
        if value >= self.horizon_days:
            raise ValueError(f"warmup_days ({value}) must be less than horizon_days ({self.horizon_days})")

    def with_(self, **changes: Any) -> Scenario:
        """A copy with ``changes`` (validated like a loaded scenario)."""
        return evolve(self, **changes)


@functools.cache
def _converter() -> cattrs.Converter:
    conv = strict_converter()

    def distribution(value: Any, _: Any) -> Distribution:
        try:
            return Distribution.parse(value)
        except OverflowError:
            raise ValueError("holds a number too large") from None

    def when(value: Any, _: Any) -> dt.datetime:
        if type(value) is str:
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"must be an RFC 3339 date-time, not {describe(value)}") from None
        if type(value) is not dt.datetime:
            raise ValueError(f"must be a date-time with a UTC offset, not {describe(value)}")
        return value

    def keyed(enum: type[Enum]) -> Callable[[Any, Any], dict[Any, float]]:
        members = {e.value: e for e in enum}

        def hook(value: Any, _: Any) -> dict[Any, float]:
            if not isinstance(value, Mapping):
                raise ValueError(f"must be a table of name = number, not {describe(value)}")
            out: dict[Any, float] = {}
            problems: list[Problem] = []
            for key, weight in value.items():
                member = members.get(key)
                if member is None:
                    problems.append(((str(key),), f"unknown key (allowed: {', '.join(members)})"))
                    continue
                try:
                    out[member] = conv.structure(weight, float)
                except ValueError as exc:
                    problems.append(((key,), str(exc)))
            if problems:
                raise Invalid(problems)
            return out

        return hook

    conv.register_structure_hook(Distribution, distribution)
    conv.register_structure_hook(dt.datetime, when)
    conv.register_structure_hook(Policy, lambda v, _: v)
    exact: dict[Any, Any] = {
        Mapping[ReferralChannel, float]: keyed(ReferralChannel),
        Mapping[CrisisFactor, float]: keyed(CrisisFactor),
        Mapping[ClosureReason, float]: keyed(ClosureReason),
        # Read from its CSV file by load_scenario before structuring.
        tuple[tuple[float, ReferralChannel], ...]: _as_is,
    }
    for kind, hook in exact.items():
        conv.register_structure_hook_func(_is(kind), hook)
    return conv


def _is(kind: Any) -> Callable[[Any], bool]:
    return lambda t: bool(t == kind)


def _as_is(value: Any, _: Any) -> Any:
    return value


def _read_table(path: Path) -> tuple[tuple[float, ReferralChannel], ...]:
    """Arrivals from a CSV file with columns ``day,channel``; raises :class:`Invalid`."""
    text = decode(read_file(path, _MAX_TABLE_BYTES))
    channels = {c.value: c for c in ReferralChannel}
    out = []
    try:
        for n, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
            raw_day, raw_channel = row.get("day"), row.get("channel")
            if raw_day is None or raw_channel is None:
                raise Invalid([((), f"{path} line {n}: the columns must be day,channel")])
            try:
                day = float(raw_day)
            except ValueError:
                day = math.nan
            channel = channels.get(raw_channel.strip())
            if channel is None or not 0 <= day <= MAX_DAYS:
                raise Invalid(
                    [
                        (
                            (),
                            f"{path} line {n}: day must be a number from 0 to {MAX_DAYS} and channel "
                            f"one of {', '.join(channels)}",
                        )
                    ]
                )
            out.append((day, channel))
    except csv.Error as exc:
        raise Invalid([((), f"{path}: not a valid CSV file ({exc})")]) from None
    if not out:
        raise Invalid([((), f"{path}: no arrivals")])
    return tuple(sorted(out, key=lambda r: r[0]))


_REMOVED_CLOSE_AT_LIMIT = (
    "is no longer a choice: the policy's case time limit binds, and a case at its limit is "
    "closed for maximum_duration unless extended (set p_extend_case_at_limit, 0 to 1)"
)


def load_scenario(source: str | Path | Mapping[str, Any], *, base_dir: Path | None = None) -> Scenario:
    """Load a scenario from TOML text, a TOML file (``pathlib.Path``), or an already parsed mapping
    with string keys.

    Relative paths inside (``policy_file``, ``arrivals.table``) are resolved against the file's
    folder, or ``base_dir``. Sources are bounded like a policy's (1 MiB, 16 levels, UTF-8).
    Raises :class:`ScenarioError` naming every problem and, in ``fields``, where each one is
    (``scenario.staff.caseworkers``, ``scenario.policy.time_limits.case_max``).
    """
    name = source_name(source, "scenario")
    if isinstance(source, Path):
        base_dir = base_dir or source.parent
    base = base_dir or Path.cwd()
    try:
        data = read_source(source)
    except Invalid as exc:
        raise _error(exc.problems, name) from None
    problems: list[Problem] = []

    policy = DEFAULT_POLICY
    inline, policy_file = data.pop("policy", None), data.pop("policy_file", None)
    try:
        if inline is not None and policy_file is not None:
            raise Invalid([((), "give either [policy] or policy_file, not both")])
        if policy_file is not None:
            if type(policy_file) is not str:
                raise Invalid([((), f"must be the path of a TOML file, not {describe(policy_file)}")])
            policy = structure_policy(read_source(base / policy_file))
        elif inline is not None:
            policy = structure_policy(inline)
    except Invalid as exc:
        # Problems inside a policy file are located under policy_file, not under [policy].
        at = "policy" if policy_file is None else "policy_file"
        problems.extend(((at, *p), m) for p, m in exc.problems)

    arrivals = data.get("arrivals")
    if isinstance(arrivals, Mapping) and "table" in arrivals:
        arrivals = dict(arrivals)
        table = arrivals["table"]
        arrivals["table"] = ()
        try:
            if type(table) is not str:
                raise Invalid([((), f"must be the path of a CSV file, not {describe(table)}")])
            arrivals["table"] = _read_table(base / table)
        except Invalid as exc:
            problems.extend((("arrivals", "table", *p), m) for p, m in exc.problems)
        data["arrivals"] = arrivals
    outcomes = data.get("outcomes")
    if isinstance(outcomes, Mapping) and "close_at_case_limit" in outcomes:
        data["outcomes"] = {k: v for k, v in outcomes.items() if k != "close_at_case_limit"}
        problems.append((("outcomes", "close_at_case_limit"), _REMOVED_CLOSE_AT_LIMIT))
    scenario: Scenario | None = None
    try:
        scenario = _converter().structure({**data, "policy": policy}, Scenario)
    except Invalid as exc:
        problems.extend(exc.problems)
    if scenario is not None and not problems:
        a = scenario.arrivals
        if a.process == "table" and not a.table:
            problems.append((("arrivals", "table"), "process is 'table' but no table was given"))
    if problems or scenario is None:
        raise _error(problems or [((), "invalid scenario")], name)
    return scenario


def _error(problems: Sequence[Problem], name: str) -> ScenarioError:
    messages, fields_ = report(problems, "scenario")
    return ScenarioError(messages, source=name, fields=fields_)
