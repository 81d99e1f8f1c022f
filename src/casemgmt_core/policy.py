"""Policy as data: a programme's eligibility rules, time limits, statutory duties and access rules.

Every limit the sources mention (a service item runs at most six months, a case should not run
past a year, after-care only where judged necessary) is a value here, never a constant in code.
A policy is loaded from TOML (:func:`load_policy`); anything left out keeps its default, and
anything wrong is reported all at once in a :class:`~casemgmt_core.PolicyError`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cattrs
from attrs import Attribute, field, frozen

from ._checks import describe_error, non_negative, positive
from .commands import COMMAND_TYPES
from .errors import PolicyError
from .model import StatutoryGround

__all__ = [
    "AccessRules",
    "Eligibility",
    "Policy",
    "StatutoryRule",
    "TimeLimits",
    "load_policy",
]


def _age_range(_: object, attribute: Attribute[Any], value: tuple[int, int] | None) -> None:
    if value is not None and not 0 <= value[0] <= value[1]:
        raise ValueError(f"{attribute.name} must be [youngest, oldest] with 0 <= youngest <= oldest")


@frozen
class TimeLimits:
    """Days unless named otherwise. Reminders start ``reminder_lead_days`` before a deadline."""

    assessment_days: int = field(default=14, validator=positive)
    """From selection to a completed needs assessment."""
    plan_days: int = field(default=30, validator=positive)
    """From a completed assessment to an approved plan."""
    service_item_max_days: int = field(default=183, validator=positive)
    """Longest a service item may run (about six months) before the family takes it over."""
    case_max_days: int = field(default=365, validator=positive)
    """A case should not run past this without a deliberate decision."""
    reassessment_interval_days: int = field(default=90, validator=positive)
    aftercare_days: int = field(default=180, validator=positive)
    no_contact_days: int = field(default=30, validator=positive)
    reminder_lead_days: int = field(default=14, validator=non_negative)


@frozen
class Eligibility:
    jurisdiction: frozenset[str] = field(default=frozenset(), converter=frozenset)
    """Region codes the centre serves; empty means any region."""
    min_crisis_factors: int = field(default=2, validator=positive)
    """The crisis is complex when at least this many crisis factors are recorded."""
    target_child_age: tuple[int, int] | None = field(default=None, validator=_age_range)
    """A programme's own target rule: serve only households with a child aged within this range."""
    age_of_majority: int = field(default=19, validator=positive)


@frozen
class StatutoryRule:
    """A statutory duty to intervene: it lifts the consent rule and obliges a report."""

    enabled: bool = True
    legal_basis: str = ""
    authority: str = ""
    report_within_hours: int = field(default=0, validator=non_negative)


def _default_statutory() -> dict[StatutoryGround, StatutoryRule]:
    return {
        StatutoryGround.CHILD_ABUSE: StatutoryRule(
            True,
            "아동학대범죄의 처벌 등에 관한 특례법 제10조 (신고의무)",
            "police-112; 시·군·구 아동학대전담공무원",
        ),
        StatutoryGround.ELDER_ABUSE: StatutoryRule(
            False, "노인복지법 제39조의6 (노인학대 신고의무)", "노인보호전문기관; police-112"
        ),
        StatutoryGround.DOMESTIC_VIOLENCE: StatutoryRule(
            False, "가정폭력범죄의 처벌 등에 관한 특례법 제4조 (신고의무)", "police-112"
        ),
    }


def _default_access() -> dict[str, frozenset[str]]:
    everything = frozenset(COMMAND_TYPES)
    supervisor_only = frozenset({"reopen", "approve_plan"})
    return {
        "supervisor": everything,
        "caseworker": everything - supervisor_only,
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
        ),
    }


@frozen
class AccessRules:
    """Which roles may issue which events. Deny by default: an unknown role may do nothing."""

    roles: Mapping[str, frozenset[str]] = field(factory=_default_access)

    def allows(self, role: str, event: str) -> bool:
        allowed = self.roles.get(role)
        return allowed is not None and event in allowed

    def roles_allowed(self, event: str) -> tuple[str, ...]:
        return tuple(sorted(r for r, events in self.roles.items() if event in events))


@frozen
class Policy:
    programme: str = "default"
    eligibility: Eligibility = Eligibility()
    time_limits: TimeLimits = TimeLimits()
    statutory: Mapping[StatutoryGround, StatutoryRule] = field(factory=_default_statutory)
    access: AccessRules = AccessRules()

    def statutory_rule(self, ground: StatutoryGround) -> StatutoryRule | None:
        rule = self.statutory.get(ground)
        return rule if rule is not None and rule.enabled else None


DEFAULT_POLICY = Policy()


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    # A bare string is iterable: without this hook "abc" would load as {"a", "b", "c"}.
    conv.register_structure_hook_func(lambda t: t == frozenset[str], lambda v, _: frozenset(_strings(v)))

    def statutory(value: Any, _: Any) -> dict[StatutoryGround, StatutoryRule]:
        if not isinstance(value, Mapping):
            raise ValueError("must be a table of grounds")
        merged = _default_statutory()
        for key, raw in value.items():
            try:
                ground = StatutoryGround(key)
            except ValueError:
                allowed = ", ".join(g.value for g in StatutoryGround)
                raise ValueError(f"unknown ground {key!r} (allowed: {allowed})") from None
            base = conv.unstructure(merged[ground])
            if not isinstance(raw, Mapping):
                raise ValueError(f"{key} must be a table")
            merged[ground] = conv.structure({**base, **raw}, StatutoryRule)
        return merged

    def access(value: Any, _: Any) -> AccessRules:
        events = frozenset(COMMAND_TYPES)
        if not isinstance(value, Mapping):
            raise ValueError("must be a table of role = [events]")
        roles: dict[str, frozenset[str]] = {}
        for role, listed in value.items():
            names = frozenset(_strings(listed))
            unknown = sorted(names - events - {"*"})
            if unknown:
                raise ValueError(
                    f"role {role!r}: unknown events {unknown} (allowed: {', '.join(sorted(events))}, or '*')"
                )
            roles[role] = events if "*" in names else names
        return AccessRules(roles)

    conv.register_structure_hook_func(lambda t: t == Mapping[StatutoryGround, StatutoryRule], statutory)
    conv.register_structure_hook(AccessRules, access)
    return conv


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return value


def _check(policy: Policy) -> list[str]:
    child = policy.statutory.get(StatutoryGround.CHILD_ABUSE)
    problems = []
    if child is None or not child.enabled:
        problems.append(
            "statutory.child_abuse: the duty to intervene in child abuse is statutory and cannot be disabled"
        )
    for ground, rule in policy.statutory.items():
        if rule.enabled and not (rule.legal_basis and rule.authority):
            problems.append(
                f"statutory.{ground.value}: an enabled ground needs a legal_basis and an authority"
            )
    return problems


def load_policy(source: str | Path | Mapping[str, Any]) -> Policy:
    """Load a policy from a TOML file path, TOML text, or an already parsed mapping.

    Raises :class:`~casemgmt_core.PolicyError` naming every invalid or unknown key.
    """
    name = "policy"
    if isinstance(source, Path):
        name = str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError([f"cannot read the file: {exc.strerror}"], source=name) from None
        source = text
    if isinstance(source, str):
        try:
            data: Mapping[str, Any] = tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError([f"not valid TOML: {exc}"], source=name) from None
    else:
        data = source
    conv = _converter()
    try:
        policy = conv.structure(dict(data), Policy)
    except cattrs.BaseValidationError as exc:
        raise PolicyError(
            cattrs.transform_error(exc, path="policy", format_exception=describe_error), source=name
        ) from None
    except (ValueError, TypeError) as exc:
        raise PolicyError([str(exc)], source=name) from None
    problems = _check(policy)
    if problems:
        raise PolicyError(problems, source=name)
    return policy
