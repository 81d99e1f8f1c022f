"""Policy as data: a programme's eligibility rules, time limits, statutory duties and access rules.

Every limit the sources mention (a service item runs at most six months, a case should not run
past a year, after-care only where judged necessary) is a value here, never a constant in code.
A policy is loaded from TOML (:func:`load_policy`); anything left out keeps its default, and
anything wrong is reported all at once in a :class:`~casemgmt_core.PolicyError`, each problem
with its field (``policy.time_limits.case_max_days``).

Loading is strict: nothing is coerced (``true`` is not ``1``, ``365.9`` not ``365``, ``"183"`` not
``183``, ``"false"`` not a bool), and every value is bounded, so that no loadable policy can push
a deadline past what the engine's date arithmetic can hold.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import cattrs
from attrs import Attribute, field, frozen

from ._checks import (
    MAX_DAYS,
    MAX_HOURS,
    Invalid,
    Problem,
    describe,
    kind_of,
    problems_of,
    read_source,
    report,
    source_name,
    strict_converter,
    structure_fields,
)
from ._validation import MAX_LINE, MAX_NAME, boolean, check_identifier, enum_member, integer, line, optional
from .commands import COMMAND_TYPES
from .durations import Duration, time_zone
from .errors import InvalidData, PolicyError
from .model import ApprovalStep, ClosureReason, ConsentScope, CrisisFactor, StatutoryGround

__all__ = [
    "APPROVAL_EVENTS",
    "AccessRules",
    "ApprovalRule",
    "ApprovalStep",
    "Eligibility",
    "Episodes",
    "Policy",
    "StatutoryRule",
    "StatutorySubject",
    "TimeLimits",
    "load_policy",
]

#: Most roles in an access table, and most roles that may invoke or confirm an override.
_MAX_ROLES = 100
#: Most region codes in a jurisdiction.
_MAX_REGIONS = 10_000
#: Oldest age (years) a policy may name.
_MAX_AGE = 120


def _frozen(value: Any) -> Any:
    """Converter: a set, list or tuple becomes a frozenset; anything else is left for the
    validator to refuse (``frozenset("abc")`` would split a string into letters)."""
    return frozenset(value) if isinstance(value, set | frozenset | list | tuple) else value


def _names(*, limit: int, non_empty: bool) -> Any:
    """Validator: a frozenset of at most ``limit`` identifiers (role names, region codes)."""
    allowed = f"a set of at most {limit} identifiers" + (", at least one" if non_empty else "")

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        name = f"{type(instance).__name__}.{attribute.name}"
        if type(value) is not frozenset:
            raise InvalidData(f"must be a frozenset, not {describe(value)}", field=name, allowed=allowed)
        if non_empty and not value:
            raise InvalidData("must name at least one", field=name, allowed=allowed)
        if len(value) > limit:
            raise InvalidData(f"names {len(value)}", field=name, allowed=allowed)
        strange = [v for v in value if type(v) is not str]
        if strange:
            raise InvalidData(f"holds {describe(strange[0])}", field=name, allowed=allowed)
        for item in sorted(value):
            check_identifier(item, name)

    return validate


def _age_range(instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is None:
        return
    ok = (
        type(value) is tuple
        and len(value) == 2
        and all(type(v) is int for v in value)
        and 0 <= value[0] <= value[1] <= _MAX_AGE
    )
    if not ok:
        raise InvalidData(
            "must be [youngest, oldest]",
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed=f"two whole numbers with 0 <= youngest <= oldest <= {_MAX_AGE}",
            value="[" + ", ".join(map(describe, value[:3])) + "]"
            if type(value) is tuple
            else describe(value),
        )


def _as_duration(value: object) -> object:
    """Converter: a duration from days, words or ISO 8601 (see :class:`~casemgmt_core.Duration`);
    anything else is left for the validator, which names the field."""
    try:
        return Duration.parse(value)
    except InvalidData:
        return value


def _duration(instance: object, attribute: Attribute[Any], value: object) -> None:
    if type(value) is not Duration:
        Duration.parse(value, f"{type(instance).__name__}.{attribute.name}")


@frozen
class TimeLimits:
    """How long each step may take. Each is a :class:`~casemgmt_core.Duration`: a whole number of
    days, words (``"6 months"``, ``"2 weeks"``) or ISO 8601 (``"P6M"``), from 1 day to 100 years,
    counted on calendar dates in the policy's ``time_zone``. Reminders start
    ``reminder_lead_days`` (0 to 365) before a deadline.

    The names of version 0.1 (``service_item_max_days = 183`` and the like) are still read from
    TOML, as whole days."""

    assessment: Duration = field(default=Duration(0, 14), converter=_as_duration, validator=_duration)
    """From selection to a completed needs assessment."""
    plan: Duration = field(default=Duration(0, 30), converter=_as_duration, validator=_duration)
    """From a completed assessment to an approved plan."""
    service_item_max: Duration = field(default=Duration(6, 0), converter=_as_duration, validator=_duration)
    """Longest a service item may run before the family takes it over. Relinking the same
    service for the same need within this window of the earlier item's start counts as an
    extension."""
    case_max: Duration = field(default=Duration(12, 0), converter=_as_duration, validator=_duration)
    """From the start of an episode: past it only closure, crisis intervention and an extension
    (``extend_case``) are accepted."""
    reassessment_interval: Duration = field(
        default=Duration(0, 90), converter=_as_duration, validator=_duration
    )
    aftercare: Duration = field(default=Duration(6, 0), converter=_as_duration, validator=_duration)
    no_contact: Duration = field(default=Duration(0, 30), converter=_as_duration, validator=_duration)
    """Without a recorded contact for this long, a case is due for closure as unreachable."""
    approval: Duration = field(default=Duration(0, 7), converter=_as_duration, validator=_duration)
    """How long an approval may stay pending before it is overdue."""
    service_extension: Duration = field(default=Duration(6, 0), converter=_as_duration, validator=_duration)
    """Longest one extension of a service item may add."""
    max_service_extensions: int = field(default=1, validator=integer(0, 100))
    """How many times one service item may be extended (0 to 100)."""
    case_extension: Duration = field(default=Duration(6, 0), converter=_as_duration, validator=_duration)
    """Longest one extension of a case may add."""
    max_case_extensions: int = field(default=2, validator=integer(0, 100))
    """How many times one episode may be extended (0 to 100)."""
    reminder_lead_days: int = field(default=14, validator=integer(0, 365))


#: The names of version 0.1, read as whole days.
LEGACY_TIME_LIMITS = {
    "assessment_days": "assessment",
    "plan_days": "plan",
    "service_item_max_days": "service_item_max",
    "case_max_days": "case_max",
    "reassessment_interval_days": "reassessment_interval",
    "aftercare_days": "aftercare",
    "no_contact_days": "no_contact",
}


#: The event each approval step allows.
APPROVAL_EVENTS: Mapping[ApprovalStep, str] = {
    ApprovalStep.PLAN: "approve_plan",
    ApprovalStep.CLOSURE: "close",
    ApprovalStep.CASE_EXTENSION: "extend_case",
    ApprovalStep.SERVICE_EXTENSION: "extend_service",
    ApprovalStep.AFTERCARE: "start_aftercare",
}


@frozen
class ApprovalRule:
    """Who approves a step: one of ``approved_by`` (role names), or, with ``by_conference``, a
    case conference that was held (the approval names it)."""

    approved_by: frozenset[str] = field(
        default=frozenset({"supervisor"}),
        converter=_frozen,
        validator=_names(limit=_MAX_ROLES, non_empty=True),
    )
    by_conference: bool = field(default=False, validator=boolean)


def _approval_table(instance: object, attribute: Attribute[Any], value: object) -> None:
    ok = isinstance(value, Mapping) and all(
        type(k) is ApprovalStep and type(v) is ApprovalRule for k, v in value.items()
    )
    if not ok:
        raise InvalidData(
            "must map approval steps to rules",
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed=f"a mapping of ApprovalStep ({', '.join(ApprovalStep)}) to ApprovalRule",
        )


_DEFAULT_AFTERCARE_AFTER = frozenset(
    {ClosureReason.GOALS_MET, ClosureReason.SELF_RELIANT, ClosureReason.MAXIMUM_DURATION}
)


def _closure_reasons(instance: object, attribute: Attribute[Any], value: object) -> None:
    if type(value) is not frozenset or not all(type(v) is ClosureReason for v in value):
        raise InvalidData(
            "must be a set of closure reasons",
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed=", ".join(ClosureReason),
        )


def _consent_scopes(instance: object, attribute: Attribute[Any], value: object) -> None:
    if type(value) is not frozenset or not all(type(v) is ConsentScope for v in value):
        raise InvalidData(
            "must be a set of consent scopes",
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed=", ".join(ConsentScope),
        )


@frozen
class Episodes:
    """What closure and recurrence do."""

    aftercare_after: frozenset[ClosureReason] = field(
        default=_DEFAULT_AFTERCARE_AFTER, converter=_frozen, validator=_closure_reasons
    )
    """Closure reasons after which after-care may start."""
    reconfirm_consents: frozenset[ConsentScope] = field(
        default=frozenset(ConsentScope), converter=_frozen, validator=_consent_scopes
    )
    """Consent scopes a reopened episode asks for again: consents of these scopes stay in the
    history and are no longer in force; others carry over."""


@frozen
class Eligibility:
    """Who the programme serves. Ages are whole years."""

    jurisdiction: frozenset[str] = field(
        default=frozenset(), converter=_frozen, validator=_names(limit=_MAX_REGIONS, non_empty=False)
    )
    """Region codes the centre serves (at most 10 000); empty means any region."""
    min_crisis_factors: int = field(default=2, validator=integer(1, len(CrisisFactor)))
    """The crisis is complex when at least this many crisis factors are recorded (1 to 12)."""
    target_child_age: tuple[int, int] | None = field(default=None, validator=_age_range)
    """A programme's own target rule: serve only households with a child aged within this range
    (``[youngest, oldest]``, ages 0 to 120)."""
    age_of_majority: int = field(default=19, validator=integer(1, 30))
    """A member under this age is a minor (1 to 30)."""
    elder_age: int = field(default=65, validator=integer(40, _MAX_AGE))
    """A member this old or older is an elder (40 to 120)."""


class StatutorySubject(StrEnum):
    """Whom a statutory ground protects: the members an override on it may be invoked for."""

    MINOR = "minor"
    """A member under ``eligibility.age_of_majority``."""
    ELDER = "elder"
    """A member at or over ``eligibility.elder_age``."""
    ANY = "any"
    """Any member."""


@frozen
class StatutoryRule:
    """A statutory duty to intervene: it lifts the consent rule and obliges a report.

    Texts are one line of at most 2 000 characters; role names are identifiers."""

    enabled: bool = field(default=True, validator=boolean)
    legal_basis: str = field(default="", validator=line(MAX_LINE, personal=False))
    """The law that creates the duty."""
    authority: str = field(default="", validator=line(MAX_LINE, personal=False))
    """Whom the mandatory report goes to."""
    report_within_hours: int = field(default=0, validator=integer(0, MAX_HOURS))
    """From the override to the report's deadline: 0 (at once) to 8 760 (a year)."""
    applies_to: StatutorySubject = field(
        default=StatutorySubject.ANY, validator=enum_member(StatutorySubject)
    )
    """Which members the override may be invoked for."""
    invoked_by: frozenset[str] = field(
        default=frozenset({"intake_officer", "caseworker", "supervisor"}),
        converter=_frozen,
        validator=_names(limit=_MAX_ROLES, non_empty=True),
    )
    """Roles that may invoke the override (at least one)."""
    confirmation_within_hours: int | None = field(default=None, validator=optional(integer(1, 720)))
    """When set (1 to 720), a second person must confirm the override within this many hours,
    or it lapses; ``None``: no confirmation is needed."""
    confirmed_by: frozenset[str] = field(
        default=frozenset({"supervisor"}),
        converter=_frozen,
        validator=_names(limit=_MAX_ROLES, non_empty=True),
    )
    """Roles that may confirm the override (at least one)."""


def _default_statutory() -> dict[StatutoryGround, StatutoryRule]:
    return {
        StatutoryGround.CHILD_ABUSE: StatutoryRule(
            enabled=True,
            legal_basis="아동학대범죄의 처벌 등에 관한 특례법 제10조 (신고의무)",
            authority="police-112; 시·군·구 아동학대전담공무원",
            applies_to=StatutorySubject.MINOR,
        ),
        StatutoryGround.ELDER_ABUSE: StatutoryRule(
            enabled=False,
            legal_basis="노인복지법 제39조의6 (노인학대 신고의무)",
            authority="노인보호전문기관; police-112",
            applies_to=StatutorySubject.ELDER,
        ),
        StatutoryGround.DOMESTIC_VIOLENCE: StatutoryRule(
            enabled=False,
            legal_basis="가정폭력범죄의 처벌 등에 관한 특례법 제4조 (신고의무)",
            authority="police-112",
            applies_to=StatutorySubject.ANY,
        ),
    }


#: Events only a supervisor may issue by default: decisions a caseworker's work is checked by.
_SUPERVISOR_ONLY = frozenset(
    {"reopen", "approve_plan", "confirm_override", "extend_case", "approve", "reject"}
)


def _default_access() -> dict[str, frozenset[str]]:
    everything = frozenset(COMMAND_TYPES)
    return {
        "supervisor": everything,
        "caseworker": everything - _SUPERVISOR_ONLY,
        "intake_officer": frozenset(
            {
                "open",
                "assign",
                "start_intake",
                "record_crisis_factor",
                "record_intake_findings",
                "record_consent",
                "withdraw_consent",
                "invoke_override",
                "file_report",
                "complete_intake",
                "hand_over",
                "record_journal",
            }
        )
        & everything,
    }


def _role_table(instance: object, attribute: Attribute[Any], value: object) -> None:
    name = f"{type(instance).__name__}.{attribute.name}"
    allowed = f"a mapping of at most {_MAX_ROLES} role names to frozensets of event names"
    if not isinstance(value, Mapping):
        raise InvalidData(f"must be a mapping, not {describe(value)}", field=name, allowed=allowed)
    if len(value) > _MAX_ROLES:
        raise InvalidData(f"names {len(value)} roles", field=name, allowed=allowed)
    events = frozenset(COMMAND_TYPES)
    for role in sorted(value, key=describe):
        check_identifier(role, name)
        listed = value[role]
        if type(listed) is not frozenset or not listed <= events:
            raise InvalidData(
                f"role {role!r} must map to a frozenset of known event names",
                field=name,
                allowed=", ".join(sorted(events)),
            )


@frozen
class AccessRules:
    """Which roles may issue which events (at most 100 roles). Deny by default: an unknown role
    may do nothing."""

    roles: Mapping[str, frozenset[str]] = field(factory=_default_access, validator=_role_table)

    def allows(self, role: str, event: str) -> bool:
        allowed = self.roles.get(role)
        return allowed is not None and event in allowed

    def roles_allowed(self, event: str) -> tuple[str, ...]:
        return tuple(sorted(r for r, events in self.roles.items() if event in events))


def _statutory_table(instance: object, attribute: Attribute[Any], value: object) -> None:
    ok = isinstance(value, Mapping) and all(
        type(k) is StatutoryGround and type(v) is StatutoryRule for k, v in value.items()
    )
    if not ok:
        raise InvalidData(
            "must map statutory grounds to rules",
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed="a mapping of StatutoryGround to StatutoryRule",
        )


def _zone(instance: object, attribute: Attribute[Any], value: Any) -> None:
    try:
        time_zone(value)
    except InvalidData as exc:
        raise InvalidData(
            exc.message,
            field=f"{type(instance).__name__}.{attribute.name}",
            allowed=exc.allowed,
            value=exc.value,
        ) from None


def _programme(instance: object, attribute: Attribute[Any], value: object) -> None:
    check_identifier(value, f"{type(instance).__name__}.{attribute.name}", limit=MAX_NAME)


@frozen
class Policy:
    """A programme's rules. :func:`load_policy` builds one from TOML and checks it as a whole."""

    programme: str = field(default="default", validator=_programme)
    """The programme's name: one line of at most 200 characters."""
    eligibility: Eligibility = field(default=Eligibility(), validator=kind_of(Eligibility))
    time_limits: TimeLimits = field(default=TimeLimits(), validator=kind_of(TimeLimits))
    statutory: Mapping[StatutoryGround, StatutoryRule] = field(
        factory=_default_statutory, validator=_statutory_table
    )
    access: AccessRules = field(default=AccessRules(), validator=kind_of(AccessRules))
    approvals: Mapping[ApprovalStep, ApprovalRule] = field(factory=dict, validator=_approval_table)
    """Steps that need an approval before they are taken, and by whom (default: none)."""
    episodes: Episodes = field(default=Episodes(), validator=kind_of(Episodes))
    time_zone: str = field(default="Asia/Seoul", validator=_zone)
    """The IANA time zone whose calendar the time limits are counted in."""

    @property
    def zone(self) -> dt.tzinfo:
        return time_zone(self.time_zone)

    def deadline(self, start: dt.datetime, limit: Duration) -> dt.datetime:
        """``limit`` after ``start``, on the programme's calendar."""
        return limit.after(start, time_zone(self.time_zone))

    def approval_rule(self, step: ApprovalStep) -> ApprovalRule | None:
        return self.approvals.get(step)

    def statutory_rule(self, ground: StatutoryGround) -> StatutoryRule | None:
        rule = self.statutory.get(ground)
        return rule if rule is not None and rule.enabled else None


DEFAULT_POLICY = Policy()

_GROUNDS = {g.value: g for g in StatutoryGround}


@functools.cache
def _converter() -> cattrs.Converter:
    conv = strict_converter()

    def statutory(value: Any, _: Any) -> dict[StatutoryGround, StatutoryRule]:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table of grounds, not {describe(value)}")
        merged = _default_statutory()
        problems: list[Problem] = []
        for key, raw in value.items():
            ground = _GROUNDS.get(key)
            if ground is None:
                problems.append(((str(key),), f"unknown ground (allowed: {', '.join(_GROUNDS)})"))
                continue
            try:
                merged[ground] = structure_fields(conv, StatutoryRule, raw, base=merged[ground])
            except Invalid as exc:
                problems.extend(((key, *p), m) for p, m in exc.problems)
        if problems:
            raise Invalid(problems)
        return merged

    def access(value: Any, _: Any) -> AccessRules:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table of role = [events], not {describe(value)}")
        events = frozenset(COMMAND_TYPES)
        problems: list[Problem] = []
        roles: dict[str, frozenset[str]] = {}
        for role, listed in value.items():
            try:
                check_identifier(role, "role")
                names: frozenset[str] = conv.structure(listed, frozenset[str])
            except (InvalidData, Invalid, ValueError) as exc:
                problems.extend(((str(role), *p), m) for p, m in problems_of(exc))
                continue
            unknown = sorted(names - events - {"*"})
            if unknown:
                more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
                problems.append(
                    (
                        (role,),
                        f"unknown events {', '.join(map(describe, unknown[:5]))}{more} "
                        f"(allowed: {', '.join(sorted(events))}, or '*')",
                    )
                )
            roles[role] = events if "*" in names else names
        if problems:
            raise Invalid(problems)
        if len(roles) > _MAX_ROLES:
            raise ValueError(f"names {len(roles)} roles (allowed: at most {_MAX_ROLES})")
        return AccessRules(roles)

    def time_limits(value: Any, _: Any) -> TimeLimits:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table, not {describe(value)}")
        table = dict(value)
        legacy: list[Problem] = []
        for old, new in LEGACY_TIME_LIMITS.items():
            if old in table:
                days = table.pop(old)
                if new in table:
                    legacy.append(((old,), f"names the same limit as {new!r}: give one of them"))
                elif type(days) is not int or not 1 <= days <= MAX_DAYS:
                    legacy.append(
                        ((old,), f"must be a whole number of days from 1 to {MAX_DAYS}, not {describe(days)}")
                    )
                else:
                    table[new] = days
        try:
            limits = structure_fields(conv, TimeLimits, table)
        except Invalid as exc:
            raise Invalid([*legacy, *exc.problems]) from None
        if legacy:
            raise Invalid(legacy)
        return limits

    def approvals(value: Any, _: Any) -> dict[ApprovalStep, ApprovalRule]:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table of steps, not {describe(value)}")
        steps = {s.value: s for s in ApprovalStep}
        problems: list[Problem] = []
        out: dict[ApprovalStep, ApprovalRule] = {}
        for key, raw in value.items():
            step = steps.get(key)
            if step is None:
                problems.append(((str(key),), f"unknown step (allowed: {', '.join(steps)})"))
                continue
            try:
                out[step] = structure_fields(conv, ApprovalRule, raw)
            except Invalid as exc:
                problems.extend(((key, *p), m) for p, m in exc.problems)
        if problems:
            raise Invalid(problems)
        return out

    conv.register_structure_hook(Duration, lambda v, _: Duration.parse(v))
    conv.register_structure_hook(TimeLimits, time_limits)
    conv.register_structure_hook_func(lambda t: t == Mapping[ApprovalStep, ApprovalRule], approvals)
    conv.register_structure_hook_func(lambda t: t == Mapping[StatutoryGround, StatutoryRule], statutory)
    conv.register_structure_hook(AccessRules, access)
    return conv


def _check(policy: Policy) -> list[Problem]:
    """Rules across fields, each problem at the field to change."""
    problems: list[Problem] = []
    child = policy.statutory.get(StatutoryGround.CHILD_ABUSE)
    if child is None or not child.enabled:
        problems.append(
            (
                ("statutory", StatutoryGround.CHILD_ABUSE.value, "enabled"),
                "the duty to intervene in child abuse is statutory and cannot be disabled",
            )
        )
    for step, approval in policy.approvals.items():
        for decision in ("approve", "reject"):
            unable = sorted(r for r in approval.approved_by if not policy.access.allows(r, decision))
            if unable:
                problems.append(
                    (
                        ("approvals", step.value, "approved_by"),
                        f"names roles the access table does not allow to {decision}: {', '.join(unable)}",
                    )
                )
    needs = "an enabled ground needs a legal_basis and an authority"
    for ground, rule in policy.statutory.items():
        for name in ("legal_basis", "authority"):
            if rule.enabled and not getattr(rule, name).strip():
                problems.append((("statutory", ground.value, name), needs))
    return problems


def structure_policy(data: Mapping[str, Any]) -> Policy:
    """The policy in an already read table; raises :class:`~casemgmt_core._checks.Invalid` with
    every problem, located from the policy's root. (The scenario loader's entry.)"""
    try:
        policy: Policy = _converter().structure(data, Policy)
    except Exception as exc:  # problems_of raises again what no check raises
        raise Invalid(problems_of(exc)) from None
    problems = _check(policy)
    if problems:
        raise Invalid(problems)
    return policy


def load_policy(source: str | Path | Mapping[str, Any]) -> Policy:
    """Load a policy from TOML text, a TOML file (``pathlib.Path``), or an already parsed mapping
    with string keys.

    A source larger than 1 MiB, nested more than 16 levels deep or not UTF-8 is refused before
    it is parsed. Raises :class:`~casemgmt_core.PolicyError` naming every problem and, in
    ``fields``, where each one is (``policy.statutory.child_abuse.enabled``).
    """
    name = source_name(source, "policy")
    try:
        return structure_policy(read_source(source))
    except Invalid as exc:
        messages, fields = report(exc.problems, "policy")
        raise PolicyError(messages, source=name, fields=fields) from None
