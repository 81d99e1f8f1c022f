"""Scenarios: what a simulation run assumes, loaded from TOML and validated as a whole.

Every section and key is optional except where a default would be meaningless; anything unknown
or invalid is reported at once, all problems together, in a :class:`ScenarioError`. The rules
the simulated cases follow are a :class:`~casemgmt_core.Policy`: inline (``[policy]``, the same
tables as a policy file) or from ``policy_file``; the default policy otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cattrs
from attrs import Attribute, evolve, field, frozen

from .._checks import describe_error, non_negative, positive
from ..errors import PolicyError
from ..model import ClosureReason, CrisisFactor, ReferralChannel
from ..policy import DEFAULT_POLICY, Policy, load_policy
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


class ScenarioError(PolicyError):
    """A scenario file or value is invalid; ``problems`` lists every problem found."""

    code = "scenario_error"


def _probability(_: object, attribute: Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} is a probability: between 0 and 1, got {value}")


def _weights(_: object, attribute: Attribute[Any], value: Mapping[Any, float] | Sequence[float]) -> None:
    values = list(value.values()) if isinstance(value, Mapping) else list(value)
    if not values or any(not (v >= 0 and math.isfinite(v)) for v in values) or sum(values) <= 0:
        raise ValueError(f"{attribute.name} needs non-negative weights with a positive sum")


def _to_dist(raw: Any) -> Distribution:
    return Distribution.parse(raw)


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

    process: str = field(default="poisson")
    rates_per_day: Mapping[ReferralChannel, float] = field(
        factory=lambda: {ReferralChannel.WALK_IN: 0.2, ReferralChannel.SCHOOL: 0.1},
    )
    """Expected referrals per day by channel (``process = "poisson"``)."""
    table: tuple[tuple[float, ReferralChannel], ...] = ()
    """``(day, channel)`` rows, read from a CSV with columns ``day,channel`` (``process = "table"``)."""

    @process.validator
    def _process(self, attribute: Attribute[str], value: str) -> None:
        if value not in ("poisson", "table"):
            raise ValueError(f"process must be 'poisson' or 'table', got {value!r}")

    @rates_per_day.validator
    def _rates(self, attribute: Attribute[Any], value: Mapping[ReferralChannel, float]) -> None:
        if self.process == "poisson":
            _weights(self, attribute, value)


@frozen
class Households:
    """What referred households are like. Probabilities are per referred household."""

    crisis_factor_counts: tuple[float, ...] = field(default=(0.2, 0.35, 0.3, 0.15), validator=_weights)
    """Weights of 1, 2, 3, ... crisis factors found at intake."""
    crisis_factor_weights: Mapping[CrisisFactor, float] = field(
        factory=lambda: {
            f: 1.0
            for f in CrisisFactor
            if f not in (CrisisFactor.CHILD_ABUSE, CrisisFactor.ELDER_ABUSE, CrisisFactor.DOMESTIC_VIOLENCE)
        },
        validator=_weights,
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
    caseworkers: int = field(default=6, validator=positive)
    caseload_cap: int = field(default=20, validator=positive)
    """Most cases one caseworker holds at once; further cases wait in the queue."""
    queue: str = field(default="fifo")
    """``fifo``, or ``statutory_first``: cases under a statutory override go to the front."""

    @queue.validator
    def _queue(self, attribute: Attribute[str], value: str) -> None:
        if value not in ("fifo", "statutory_first"):
            raise ValueError(f"queue must be 'fifo' or 'statutory_first', got {value!r}")


@frozen
class Durations:
    """Stage durations in days. A stage interrupted by a crisis resumes for what is left.

    After-care lasts the policy's ``time_limits.aftercare_days``: the rules, not the scenario.
    """

    intake: Distribution = field(default=_INTAKE, converter=_to_dist)
    screening: Distribution = field(default=_SCREENING, converter=_to_dist)
    assessment: Distribution = field(default=_ASSESSMENT, converter=_to_dist)
    planning: Distribution = field(default=_PLANNING, converter=_to_dist)
    service_cycle: Distribution = field(default=_SERVICE_CYCLE, converter=_to_dist)
    """Service and monitoring until the next review (goals met, dropout, or reassessment)."""
    reassessment: Distribution = field(default=_REASSESSMENT, converter=_to_dist)
    crisis: Distribution = field(default=_CRISIS, converter=_to_dist)
    recurrence: Distribution = field(default=_RECURRENCE, converter=_to_dist)
    """From closure to a recurrence, for households whose problems recur."""


@frozen
class Rates:
    """Hazards per day while a case is in active work (intake to reassessment)."""

    crisis_per_day: float = field(default=0.004, validator=non_negative)
    consent_withdrawal_per_day: float = field(default=0.0005, validator=non_negative)


def _default_dropout() -> dict[ClosureReason, float]:
    return {
        ClosureReason.MOVED_AWAY: 0.4,
        ClosureReason.UNREACHABLE: 0.4,
        ClosureReason.TRANSFERRED: 0.15,
        ClosureReason.DEATH: 0.05,
    }


@frozen
class Outcomes:
    """What happens at the end of each service cycle, and after closure."""

    p_goals_met_per_cycle: float = field(default=0.35, validator=_probability)
    p_self_reliant: float = field(default=0.5, validator=_probability)
    """Share of successful closures recorded as ``self_reliant`` rather than ``goals_met``."""
    p_dropout_per_cycle: float = field(default=0.05, validator=_probability)
    dropout_reasons: Mapping[ClosureReason, float] = field(factory=_default_dropout, validator=_weights)
    p_revise_plan: float = field(default=0.5, validator=_probability)
    """After a reassessment: revise the plan (back to planning) rather than resume services."""
    p_aftercare: float = field(default=0.4, validator=_probability)
    p_recurrence: float = field(default=0.15, validator=_probability)
    close_at_case_limit: bool = False
    """Close a case at its first review past the policy's ``case_max_days`` (``maximum_duration``)."""

    @dropout_reasons.validator
    def _dropout(self, attribute: Attribute[Any], value: Mapping[ClosureReason, float]) -> None:
        wrong = sorted(
            r.value for r in value if r in (ClosureReason.GOALS_MET, ClosureReason.SELF_RELIANT)
        ) + sorted(r.value for r in value if r is ClosureReason.CONSENT_WITHDRAWN)
        if wrong:
            raise ValueError(f"dropout_reasons cannot include {', '.join(wrong)}")


@frozen
class Scenario:
    """A simulation scenario. Times are days from ``start``."""

    name: str = "scenario"
    description: str = ""
    start: dt.datetime = field(default=dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC))
    horizon_days: float = field(default=3 * 365.0, validator=positive)
    warmup_days: float = field(default=365.0, validator=non_negative)
    replications: int = field(default=10, validator=positive)
    seed: int = field(default=12345, validator=non_negative)
    sample_every_days: float = field(default=7.0, validator=positive)
    """Grid on which the caseload over time is sampled for the summaries and plots."""
    policy: Policy = DEFAULT_POLICY
    arrivals: Arrivals = Arrivals()
    households: Households = Households()
    staff: Staff = Staff()
    durations: Durations = Durations()
    rates: Rates = Rates()
    outcomes: Outcomes = Outcomes()

    @start.validator
    def _aware(self, attribute: Attribute[dt.datetime], value: dt.datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("start must have a UTC offset, e.g. 2026-01-01T09:00:00+09:00")

    @warmup_days.validator
    def _warmup(self, attribute: Attribute[float], value: float) -> None:
        if value >= self.horizon_days:
            raise ValueError(f"warmup_days ({value}) must be less than horizon_days ({self.horizon_days})")

    def with_(self, **changes: Any) -> Scenario:
        """A copy with ``changes`` (validated like a loaded scenario)."""
        return evolve(self, **changes)


_SECTIONS = {"arrivals", "households", "staff", "durations", "rates", "outcomes"}


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(Distribution, lambda v, _: Distribution.parse(v))

    def number(v: Any, t: type) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"must be a number, got {v!r}")
        return float(v)

    def integer(v: Any, t: type) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be an integer, got {v!r}")
        return v

    def string(v: Any, t: type) -> str:
        if not isinstance(v, str):
            raise ValueError(f"must be a string, got {v!r}")
        return v

    def boolean(v: Any, t: type) -> bool:
        if not isinstance(v, bool):
            raise ValueError(f"must be true or false, got {v!r}")
        return v

    def when(v: Any, t: type) -> dt.datetime:
        if isinstance(v, str):
            try:
                v = dt.datetime.fromisoformat(v)
            except ValueError:
                raise ValueError(f"must be an RFC 3339 date-time, got {v!r}") from None
        if not isinstance(v, dt.datetime):
            raise ValueError(f"must be a date-time with offset, got {v!r}")
        return v

    def floats(v: Any, t: type) -> tuple[float, ...]:
        if not isinstance(v, list):
            raise ValueError("must be a list of numbers")
        return tuple(number(x, float) for x in v)

    def keyed(enum: type[Any]) -> Any:
        def hook(v: Any, t: type) -> dict[Any, float]:
            if not isinstance(v, Mapping):
                raise ValueError("must be a table of name = number")
            out: dict[Any, float] = {}
            for key, weight in v.items():
                try:
                    member = enum(key)
                except ValueError:
                    allowed = ", ".join(e.value for e in enum)
                    raise ValueError(f"unknown key {key!r} (allowed: {allowed})") from None
                out[member] = number(weight, float)
            return out

        return hook

    conv.register_structure_hook(float, number)
    conv.register_structure_hook(int, integer)
    conv.register_structure_hook(str, string)
    conv.register_structure_hook(bool, boolean)
    conv.register_structure_hook(dt.datetime, when)
    conv.register_structure_hook(Policy, lambda v, _: v)
    exact: dict[Any, Any] = {
        tuple[float, ...]: floats,
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
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ValueError(f"arrivals.table: cannot read {path}: {exc.strerror}") from None
    out = []
    for n, row in enumerate(rows, start=2):
        try:
            day = float(row["day"])
            channel = ReferralChannel(row["channel"].strip())
        except KeyError:
            raise ValueError(f"arrivals.table {path}: the columns must be day,channel") from None
        except (ValueError, AttributeError):
            allowed = ", ".join(c.value for c in ReferralChannel)
            raise ValueError(
                f"arrivals.table {path} line {n}: day must be a number and channel one of {allowed}"
            ) from None
        if not day >= 0:
            raise ValueError(f"arrivals.table {path} line {n}: day must be >= 0")
        out.append((day, channel))
    if not out:
        raise ValueError(f"arrivals.table {path}: no arrivals")
    return tuple(sorted(out, key=lambda r: r[0]))


def load_scenario(source: str | Path | Mapping[str, Any], *, base_dir: Path | None = None) -> Scenario:
    """Load a scenario from a TOML file path, TOML text, or an already parsed mapping.

    Relative paths inside (``policy_file``, ``arrivals.table``) are resolved against the file's
    folder, or ``base_dir``. Raises :class:`ScenarioError` naming every invalid or unknown key.
    """
    name = "scenario"
    if isinstance(source, Path):
        name = str(source)
        base_dir = base_dir or source.parent
        try:
            source = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError([f"cannot read the file: {exc.strerror}"], source=name) from None
    if isinstance(source, str):
        try:
            data: dict[str, Any] = tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError([f"not valid TOML: {exc}"], source=name) from None
    else:
        data = dict(source)
    base = base_dir or Path.cwd()
    problems: list[str] = []

    policy = DEFAULT_POLICY
    inline, policy_file = data.pop("policy", None), data.pop("policy_file", None)
    try:
        if inline is not None and policy_file is not None:
            problems.append("give either [policy] or policy_file, not both")
        elif policy_file is not None:
            if not isinstance(policy_file, str):
                problems.append("policy_file must be a path")
            else:
                policy = load_policy(base / policy_file)
        elif inline is not None:
            if isinstance(inline, Mapping):
                policy = load_policy(inline)
            else:
                problems.append("policy must be a table ([policy])")
    except PolicyError as exc:
        problems.extend(f"policy: {p}" for p in exc.problems)

    arrivals = data.get("arrivals")
    if isinstance(arrivals, Mapping) and "table" in arrivals:
        arrivals = dict(arrivals)
        table = arrivals["table"]
        try:
            if not isinstance(table, str):
                raise ValueError("arrivals.table must be the path of a CSV file")
            arrivals["table"] = _read_table(base / table)
        except ValueError as exc:
            problems.append(str(exc))
            arrivals["table"] = ()
        data["arrivals"] = arrivals
    for key in _SECTIONS & data.keys():
        if not isinstance(data[key], Mapping):
            problems.append(f"{key} must be a table ([{key}])")
            data.pop(key)
    try:
        scenario = _converter().structure({**data, "policy": policy}, Scenario)
    except cattrs.BaseValidationError as exc:
        problems.extend(cattrs.transform_error(exc, path="scenario", format_exception=describe_error))
        scenario = None
    except (ValueError, TypeError) as exc:
        problems.append(str(exc))
        scenario = None
    if scenario is not None:
        a = scenario.arrivals
        if a.process == "table" and not a.table and not problems:
            problems.append("arrivals.process is 'table' but no arrivals.table was given")
    if problems or scenario is None:
        raise ScenarioError(problems or ["invalid scenario"], source=name)
    return scenario
