"""Guards: pure functions that allow or refuse a command, and say why.

A guard takes ``(case, command, policy, now, facts)`` and returns a :class:`Verdict`. A refusal
carries a reason code (:class:`Reason`, labelled in Korean and English in ``labels.toml``) and a
message saying what is missing and what would allow the command. Allowing verdicts carry a
reason too, so the audit trail tells *why* something was allowed, e.g. by a statutory override
rather than by consent.

Facts the guards need from outside (another agency's records) are gathered by the service layer
through the :class:`~casemgmt_core.ports.DuplicateRegistry` port and passed in as :class:`Facts`,
so the guards stay pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from enum import StrEnum

from attrs import frozen

from . import commands as c
from .model import (
    Agency,
    Case,
    CaseState,
    ClosureReason,
    ConsentGiver,
    ConsentScope,
    Member,
)
from .policy import Policy

__all__ = ["GUARDS", "GUARD_REASONS", "Facts", "Guard", "Reason", "Verdict"]


class Reason(StrEnum):
    # allowing
    CONSENT_GIVEN = "consent_given"
    STATUTORY_OVERRIDE = "statutory_override"
    CONSENT_GIVER_VALID = "consent_giver_valid"
    ELIGIBLE = "eligible"
    NOT_MANAGED_ELSEWHERE = "not_managed_elsewhere"
    SERVICE_NOT_LINKED = "service_not_linked"
    WITHIN_TIME_LIMIT = "within_time_limit"
    CRISIS_FACTORS_RECORDED = "crisis_factors_recorded"
    NEEDS_RECORDED = "needs_recorded"
    GOALS_SET = "goals_set"
    REPORTS_FILED = "reports_filed"
    NO_STATUTORY_DUTY = "no_statutory_duty"
    CLOSURE_REASON_FITS = "closure_reason_fits"
    AFTERCARE_JUSTIFIED = "aftercare_justified"
    REOPENABLE = "reopenable"
    GROUND_ENABLED = "ground_enabled"
    REPORT_PENDING = "report_pending"
    REPORT_DELIVERED = "report_delivered"
    STATUTORY_SUBJECT_PRESENT = "statutory_subject_present"
    OVERRIDE_AWAITING_CONFIRMATION = "override_awaiting_confirmation"
    # refusing
    CONSENT_MISSING = "consent_missing"
    CONSENT_GIVER_INVALID = "consent_giver_invalid"
    OUT_OF_JURISDICTION = "out_of_jurisdiction"
    INFORMATION_ONLY = "information_only"
    COUNSELLING_ONLY = "counselling_only"
    NOT_COMPLEX = "not_complex"
    TARGET_RULE_UNMET = "target_rule_unmet"
    MANAGED_ELSEWHERE = "managed_elsewhere"
    SERVICE_ALREADY_LINKED = "service_already_linked"
    TIME_LIMIT_EXCEEDS_POLICY = "time_limit_exceeds_policy"
    NO_CRISIS_FACTORS = "no_crisis_factors"
    NO_NEEDS_RECORDED = "no_needs_recorded"
    NO_GOALS = "no_goals"
    MANDATORY_REPORT_PENDING = "mandatory_report_pending"
    STATUTORY_DUTY_ACTIVE = "statutory_duty_active"
    CLOSURE_REASON_NOT_ALLOWED = "closure_reason_not_allowed"
    AFTERCARE_NOT_JUSTIFIED = "aftercare_not_justified"
    AFTERCARE_NOT_APPLICABLE = "aftercare_not_applicable"
    CLOSED_BY_DEATH = "closed_by_death"
    GROUND_NOT_ENABLED = "ground_not_enabled"
    NO_PENDING_REPORT = "no_pending_report"
    REPORT_NOT_DELIVERED = "report_not_delivered"
    NO_STATUTORY_SUBJECT = "no_statutory_subject"
    NO_OVERRIDE_TO_CONFIRM = "no_override_to_confirm"
    OVERRIDE_LAPSED = "override_lapsed"
    # refusing the actor (decided with the actor, see engine): who may invoke or confirm
    ROLE_MAY_NOT_INVOKE = "role_may_not_invoke"
    ROLE_MAY_NOT_CONFIRM = "role_may_not_confirm"
    SAME_PERSON = "same_person"


@frozen
class Verdict:
    allowed: bool
    guard: str
    reason: Reason
    message: str = ""


@frozen
class Facts:
    """What the service layer learned from outside before deciding (see ``DuplicateRegistry``)."""

    managed_elsewhere_by: Agency | None = None
    """Another agency already runs similar case management for the household."""
    service_linked_elsewhere_by: Agency | None = None
    """Another provider already delivers the same service item for the same need."""
    report_delivered_at: dt.datetime | None = None
    """When the outbox confirmed delivery of the pending mandatory report (to every authority
    it names) that ``file_report`` is about; ``None`` while any delivery is outstanding."""


NO_FACTS = Facts()

Guard = Callable[[Case, c.Command, Policy, dt.datetime, Facts], Verdict]


def _allow(guard: str, reason: Reason) -> Verdict:
    return Verdict(True, guard, reason)


# -- consent and the statutory override ---------------------------------------------------


def _consent_guard(name: str, scope: ConsentScope, what: str) -> Guard:
    given = _allow(name, Reason.CONSENT_GIVEN)
    overridden = _allow(name, Reason.STATUTORY_OVERRIDE)

    def guard(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
        for consent in case.consents:
            if consent.scope is scope and consent.withdrawn_at is None:
                return given
        override = case.statutory_override
        if override is not None and override.in_force(now):
            return overridden
        return Verdict(
            False,
            name,
            Reason.CONSENT_MISSING,
            f"{what} needs the household's consent of scope {scope.value!r} (from the person, or "
            "a minor's guardian), or a statutory ground recorded with invoke_override",
        )

    guard.__name__ = name
    return guard


service_consent = _consent_guard(
    "service_consent", ConsentScope.SERVICE_PROVISION, "case management and planning"
)
data_consent = _consent_guard("data_consent", ConsentScope.PERSONAL_DATA, "assessing needs")

_SHARING_OK = _allow("sharing_consent", Reason.CONSENT_GIVEN)
_SHARING_OVERRIDE = _allow("sharing_consent", Reason.STATUTORY_OVERRIDE)


def sharing_consent(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.LinkService)
    provider = command.item.provider.id
    for consent in case.consents:
        if (
            consent.scope is ConsentScope.SHARING
            and consent.withdrawn_at is None
            and consent.agency_id == provider
        ):
            return _SHARING_OK
    override = case.statutory_override
    if override is not None and override.in_force(now):
        return _SHARING_OVERRIDE
    return Verdict(
        False,
        "sharing_consent",
        Reason.CONSENT_MISSING,
        f"linking a service shares the household's data with {provider!r}: record a consent of "
        f"scope 'sharing' for agency {provider!r} first",
    )


_GIVER_OK = _allow("valid_consent_giver", Reason.CONSENT_GIVER_VALID)


def valid_consent_giver(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.RecordConsent)
    consent = command.consent

    def refuse(why: str) -> Verdict:
        return Verdict(False, "valid_consent_giver", Reason.CONSENT_GIVER_INVALID, why)

    subject = case.household.member(consent.subject_id)
    giver = case.household.member(consent.given_by)
    if subject is None or giver is None:
        return refuse("the consent's subject and giver must both be members of the household")
    minor = subject.age_on(consent.given_at.date()) < policy.eligibility.age_of_majority
    if consent.giver is ConsentGiver.PERSON:
        if consent.given_by != consent.subject_id:
            return refuse("a consent given by the person must be signed by its subject")
        if minor:
            return refuse(
                f"{consent.subject_id!r} is a minor: the consent must be given by the guardian "
                f"({subject.guardian_id or 'none recorded'})"
            )
        return _GIVER_OK
    if not minor:
        return refuse(f"{consent.subject_id!r} is an adult and consents for themselves")
    if subject.guardian_id != consent.given_by:
        return refuse(
            f"{consent.given_by!r} is not the recorded guardian of {consent.subject_id!r} "
            f"(guardian: {subject.guardian_id or 'none recorded'})"
        )
    return _GIVER_OK


_GROUND_OK = _allow("ground_enabled", Reason.GROUND_ENABLED)


def ground_enabled(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.InvokeStatutoryOverride)
    if policy.statutory_rule(command.ground) is None:
        enabled = [g.value for g, r in policy.statutory.items() if r.enabled]
        return Verdict(
            False,
            "ground_enabled",
            Reason.GROUND_NOT_ENABLED,
            f"{command.ground.value!r} is not a statutory ground in programme "
            f"{policy.programme!r} (enabled: {', '.join(enabled)})",
        )
    return _GROUND_OK


_REPORT_PENDING = _allow("report_pending", Reason.REPORT_PENDING)


def report_pending(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.FileMandatoryReport)
    for r in case.mandatory_reports:
        if r.ground is command.ground and not r.filed:
            return _REPORT_PENDING
    return Verdict(
        False,
        "report_pending",
        Reason.NO_PENDING_REPORT,
        f"no mandatory report on ground {command.ground.value!r} is pending for this case",
    )


_REPORTS_FILED = _allow("reports_filed", Reason.REPORTS_FILED)


def reports_filed(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    pending = [r for r in case.mandatory_reports if not r.filed]
    if pending:
        grounds = ", ".join(r.ground.value for r in pending)
        return Verdict(
            False,
            "reports_filed",
            Reason.MANDATORY_REPORT_PENDING,
            f"the mandatory report ({grounds}) must be delivered to the authority and filed with "
            "its reference (file_report) first",
        )
    return _REPORTS_FILED


_DELIVERED = _allow("report_delivered", Reason.REPORT_DELIVERED)


def report_delivered(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.FileMandatoryReport)
    if facts.report_delivered_at is None:
        return Verdict(
            False,
            "report_delivered",
            Reason.REPORT_NOT_DELIVERED,
            f"the mandatory report on ground {command.ground.value!r} has not been confirmed delivered "
            "to every authority it names; it counts as filed only after delivery (the outbox relay "
            "delivers it) and with the authority's reference",
        )
    return _DELIVERED


def _concerned(rule_subject: str, policy: Policy, member: Member, today: dt.date) -> bool:
    age = member.age_on(today)
    if rule_subject == "minor":
        return age < policy.eligibility.age_of_majority
    if rule_subject == "elder":
        return age >= policy.eligibility.elder_age
    return True


_SUBJECT = _allow("statutory_subject", Reason.STATUTORY_SUBJECT_PRESENT)
_SUBJECT_WORDS = {
    "minor": "a member under the age of majority ({majority})",
    "elder": "a member aged {elder} or over",
    "any": "a member",
}


def statutory_subject(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    """A ground applies only to the members it protects (child abuse: a minor)."""
    assert isinstance(command, c.InvokeStatutoryOverride)
    rule = policy.statutory.get(command.ground)
    subject = str(rule.applies_to.value) if rule is not None else "any"
    today = now.date()
    candidates: tuple[Member, ...]
    if command.member_id is not None:
        member = case.household.member(command.member_id)
        candidates = () if member is None else (member,)
    else:
        candidates = case.household.members
    if any(_concerned(subject, policy, m, today) for m in candidates):
        return _SUBJECT
    who = _SUBJECT_WORDS.get(subject, "a member").format(
        majority=policy.eligibility.age_of_majority, elder=policy.eligibility.elder_age
    )
    named = "the member named" if command.member_id is not None else "the household"
    return Verdict(
        False,
        "statutory_subject",
        Reason.NO_STATUTORY_SUBJECT,
        f"the ground {command.ground.value!r} applies to {who}: {named} has none",
    )


_AWAITING = _allow("override_awaiting_confirmation", Reason.OVERRIDE_AWAITING_CONFIRMATION)


def override_awaiting_confirmation(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    override = case.statutory_override
    if override is None or override.confirm_by is None or override.confirmed_at is not None:
        return Verdict(
            False,
            "override_awaiting_confirmation",
            Reason.NO_OVERRIDE_TO_CONFIRM,
            "the case has no statutory override awaiting a second person's confirmation",
        )
    if now > override.confirm_by:
        return Verdict(
            False,
            "override_awaiting_confirmation",
            Reason.OVERRIDE_LAPSED,
            f"the override was not confirmed by {override.confirm_by.isoformat()} and has lapsed; "
            "invoke it again if the ground still holds",
        )
    return _AWAITING


_NO_DUTY = _allow("no_statutory_duty", Reason.NO_STATUTORY_DUTY)


def no_statutory_duty(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    if case.statutory_override is not None:
        o = case.statutory_override
        return Verdict(
            False,
            "no_statutory_duty",
            Reason.STATUTORY_DUTY_ACTIVE,
            f"a statutory duty ({o.ground.value}, {o.legal_basis}) obliges intervention: the case "
            "cannot be declined or redirected; hand it over to the competent agency or continue",
        )
    return _NO_DUTY


# -- eligibility and duplicate service ----------------------------------------------------


_ELIGIBLE = _allow("eligibility", Reason.ELIGIBLE)


def eligibility(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    rules = policy.eligibility
    if rules.jurisdiction and case.household.region not in rules.jurisdiction:
        return Verdict(
            False,
            "eligibility",
            Reason.OUT_OF_JURISDICTION,
            f"region {case.household.region!r} is outside the jurisdiction "
            f"({', '.join(sorted(rules.jurisdiction))}); refer to the centre of residence",
        )
    if case.information_only:
        return Verdict(
            False,
            "eligibility",
            Reason.INFORMATION_ONLY,
            "information alone solves the problem: redirect to the service (redirect)",
        )
    if case.counselling_only:
        return Verdict(
            False,
            "eligibility",
            Reason.COUNSELLING_ONLY,
            "only counselling is wanted: refer to general counselling (refer_to_counselling)",
        )
    if len(case.crisis_factors) < rules.min_crisis_factors:
        return Verdict(
            False,
            "eligibility",
            Reason.NOT_COMPLEX,
            f"{len(case.crisis_factors)} crisis factor(s) recorded; integrated case management "
            f"needs at least {rules.min_crisis_factors}: redirect to a single service",
        )
    if rules.target_child_age is not None:
        low, high = rules.target_child_age
        today = now.date()
        if not any(low <= m.age_on(today) <= high for m in case.household.members):
            return Verdict(
                False,
                "eligibility",
                Reason.TARGET_RULE_UNMET,
                f"programme {policy.programme!r} serves households with a child aged {low}-{high}",
            )
    return _ELIGIBLE


_NOT_ELSEWHERE = _allow("not_managed_elsewhere", Reason.NOT_MANAGED_ELSEWHERE)


def not_managed_elsewhere(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    agency = facts.managed_elsewhere_by
    if agency is not None:
        return Verdict(
            False,
            "not_managed_elsewhere",
            Reason.MANAGED_ELSEWHERE,
            f"the household is already under case management at {agency.name or agency.id!r}: "
            f"hand it over to, or coordinate with, that agency (hand_over)",
        )
    return _NOT_ELSEWHERE


_SERVICE_NEW = _allow("service_not_duplicated", Reason.SERVICE_NOT_LINKED)


def service_not_duplicated(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.LinkService)
    item = command.item
    for s in case.service_items:
        if s.ended_at is None and s.need_id == item.need_id and s.service == item.service:
            return Verdict(
                False,
                "service_not_duplicated",
                Reason.SERVICE_ALREADY_LINKED,
                f"{item.service!r} is already linked for need {item.need_id!r} "
                f"(item {s.item_id!r} from {s.provider.id!r}); end it before linking another provider",
            )
    other = facts.service_linked_elsewhere_by
    if other is not None:
        return Verdict(
            False,
            "service_not_duplicated",
            Reason.SERVICE_ALREADY_LINKED,
            f"{item.service!r} is already provided for this need by {other.name or other.id!r}",
        )
    return _SERVICE_NEW


_WITHIN_LIMIT = _allow("within_time_limit", Reason.WITHIN_TIME_LIMIT)


def within_time_limit(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.LinkService)
    item = command.item
    longest = dt.timedelta(days=policy.time_limits.service_item_max_days)
    if item.time_limit is not None and item.time_limit - item.start > longest:
        return Verdict(
            False,
            "within_time_limit",
            Reason.TIME_LIMIT_EXCEEDS_POLICY,
            f"a service item may run at most {longest.days} days in programme "
            f"{policy.programme!r}; plan how the family takes it over after that",
        )
    return _WITHIN_LIMIT


# -- stage completeness -------------------------------------------------------------------


def _has(name: str, attr: str, ok: Reason, missing: Reason, message: str) -> Guard:
    allowed = _allow(name, ok)
    refused = Verdict(False, name, missing, message)

    def guard(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
        return allowed if getattr(case, attr) else refused

    guard.__name__ = name
    return guard


crisis_factors_recorded = _has(
    "crisis_factors_recorded",
    "crisis_factors",
    Reason.CRISIS_FACTORS_RECORDED,
    Reason.NO_CRISIS_FACTORS,
    "record at least one crisis factor before screening",
)
needs_recorded = _has(
    "needs_recorded",
    "needs",
    Reason.NEEDS_RECORDED,
    Reason.NO_NEEDS_RECORDED,
    "record the household's needs (record_need) before completing the assessment",
)
plan_has_goals = _has(
    "plan_has_goals",
    "goals",
    Reason.GOALS_SET,
    Reason.NO_GOALS,
    "agree at least one goal with the family (set_goal) before approving the plan",
)


# -- closure, after-care, recurrence ------------------------------------------------------

_SUCCESS = frozenset({ClosureReason.GOALS_MET, ClosureReason.SELF_RELIANT})
_SERVING = frozenset({CaseState.SERVICE, CaseState.REASSESSMENT})
_FITS = _allow("closure_reason_fits", Reason.CLOSURE_REASON_FITS)


def closure_reason_fits(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.Close)
    if command.reason in _SUCCESS and case.state not in _SERVING:
        return Verdict(
            False,
            "closure_reason_fits",
            Reason.CLOSURE_REASON_NOT_ALLOWED,
            f"{command.reason.value!r} closes a case whose services ran; from {case.state.value!r} "
            "close for another reason or continue the plan",
        )
    if command.reason is ClosureReason.CONSENT_WITHDRAWN and case.active_consents(
        ConsentScope.SERVICE_PROVISION
    ):
        return Verdict(
            False,
            "closure_reason_fits",
            Reason.CLOSURE_REASON_NOT_ALLOWED,
            "a service consent is still active: record its withdrawal (withdraw_consent) instead",
        )
    return _FITS


_NOT_FOR_AFTERCARE = frozenset({ClosureReason.DEATH, ClosureReason.MOVED_AWAY, ClosureReason.TRANSFERRED})
_JUSTIFIED = _allow("aftercare_justified", Reason.AFTERCARE_JUSTIFIED)


def aftercare_justified(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.StartAftercare)
    if case.closure is not None and case.closure.reason in _NOT_FOR_AFTERCARE:
        return Verdict(
            False,
            "aftercare_justified",
            Reason.AFTERCARE_NOT_APPLICABLE,
            f"a case closed for {case.closure.reason.value!r} has no after-care here",
        )
    if not command.justification.strip():
        return Verdict(
            False,
            "aftercare_justified",
            Reason.AFTERCARE_NOT_JUSTIFIED,
            "after-care is only for cases where it is judged necessary: give the justification",
        )
    return _JUSTIFIED


_REOPENABLE = _allow("reopenable", Reason.REOPENABLE)


def reopenable(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    if case.closure is not None and case.closure.reason is ClosureReason.DEATH:
        return Verdict(
            False,
            "reopenable",
            Reason.CLOSED_BY_DEATH,
            "the case was closed on the client's death; open a new case for the household instead",
        )
    return _REOPENABLE


#: Every guard by name, as the lifecycle definition refers to them.
GUARDS: Mapping[str, Guard] = {
    "service_consent": service_consent,
    "data_consent": data_consent,
    "sharing_consent": sharing_consent,
    "valid_consent_giver": valid_consent_giver,
    "ground_enabled": ground_enabled,
    "report_pending": report_pending,
    "reports_filed": reports_filed,
    "report_delivered": report_delivered,
    "statutory_subject": statutory_subject,
    "override_awaiting_confirmation": override_awaiting_confirmation,
    "no_statutory_duty": no_statutory_duty,
    "eligibility": eligibility,
    "not_managed_elsewhere": not_managed_elsewhere,
    "service_not_duplicated": service_not_duplicated,
    "within_time_limit": within_time_limit,
    "crisis_factors_recorded": crisis_factors_recorded,
    "needs_recorded": needs_recorded,
    "plan_has_goals": plan_has_goals,
    "closure_reason_fits": closure_reason_fits,
    "aftercare_justified": aftercare_justified,
    "reopenable": reopenable,
}

#: Every outcome each guard can give, allowing first: the coverage gate checks each is exercised.
GUARD_REASONS: Mapping[str, tuple[Reason, ...]] = {
    "service_consent": (Reason.CONSENT_GIVEN, Reason.STATUTORY_OVERRIDE, Reason.CONSENT_MISSING),
    "data_consent": (Reason.CONSENT_GIVEN, Reason.STATUTORY_OVERRIDE, Reason.CONSENT_MISSING),
    "sharing_consent": (Reason.CONSENT_GIVEN, Reason.STATUTORY_OVERRIDE, Reason.CONSENT_MISSING),
    "valid_consent_giver": (Reason.CONSENT_GIVER_VALID, Reason.CONSENT_GIVER_INVALID),
    "ground_enabled": (Reason.GROUND_ENABLED, Reason.GROUND_NOT_ENABLED),
    "report_pending": (Reason.REPORT_PENDING, Reason.NO_PENDING_REPORT),
    "reports_filed": (Reason.REPORTS_FILED, Reason.MANDATORY_REPORT_PENDING),
    "report_delivered": (Reason.REPORT_DELIVERED, Reason.REPORT_NOT_DELIVERED),
    "statutory_subject": (Reason.STATUTORY_SUBJECT_PRESENT, Reason.NO_STATUTORY_SUBJECT),
    "override_awaiting_confirmation": (
        Reason.OVERRIDE_AWAITING_CONFIRMATION,
        Reason.NO_OVERRIDE_TO_CONFIRM,
        Reason.OVERRIDE_LAPSED,
    ),
    "no_statutory_duty": (Reason.NO_STATUTORY_DUTY, Reason.STATUTORY_DUTY_ACTIVE),
    "eligibility": (
        Reason.ELIGIBLE,
        Reason.OUT_OF_JURISDICTION,
        Reason.INFORMATION_ONLY,
        Reason.COUNSELLING_ONLY,
        Reason.NOT_COMPLEX,
        Reason.TARGET_RULE_UNMET,
    ),
    "not_managed_elsewhere": (Reason.NOT_MANAGED_ELSEWHERE, Reason.MANAGED_ELSEWHERE),
    "service_not_duplicated": (Reason.SERVICE_NOT_LINKED, Reason.SERVICE_ALREADY_LINKED),
    "within_time_limit": (Reason.WITHIN_TIME_LIMIT, Reason.TIME_LIMIT_EXCEEDS_POLICY),
    "crisis_factors_recorded": (Reason.CRISIS_FACTORS_RECORDED, Reason.NO_CRISIS_FACTORS),
    "needs_recorded": (Reason.NEEDS_RECORDED, Reason.NO_NEEDS_RECORDED),
    "plan_has_goals": (Reason.GOALS_SET, Reason.NO_GOALS),
    "closure_reason_fits": (Reason.CLOSURE_REASON_FITS, Reason.CLOSURE_REASON_NOT_ALLOWED),
    "aftercare_justified": (
        Reason.AFTERCARE_JUSTIFIED,
        Reason.AFTERCARE_NOT_APPLICABLE,
        Reason.AFTERCARE_NOT_JUSTIFIED,
    ),
    "reopenable": (Reason.REOPENABLE, Reason.CLOSED_BY_DEATH),
}
