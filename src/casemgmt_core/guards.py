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
    Approval,
    ApprovalStatus,
    ApprovalStep,
    Case,
    CaseState,
    ClosureReason,
    ConsentGiver,
    ConsentScope,
    Member,
    ScreeningReason,
    ServiceItem,
)
from .policy import Policy

__all__ = [
    "APPROVAL_STEPS",
    "GUARDS",
    "GUARD_REASONS",
    "Facts",
    "Guard",
    "Reason",
    "Verdict",
    "case_time_limit",
    "eligibility_failures",
    "find_approval",
    "relinked_from",
    "service_limit",
]


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
    WITHIN_CASE_LIMIT = "within_case_limit"
    APPROVAL_NOT_REQUIRED = "approval_not_required"
    APPROVED = "approved"
    AWAITING_DECISION = "awaiting_decision"
    REASSESSED = "reassessed"
    NOT_RELINKED = "not_relinked"
    EXTENSION_WITHIN_POLICY = "extension_within_policy"
    REFERRAL_PENDING = "referral_pending"
    NO_REFERRAL_PENDING = "no_referral_pending"
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
    CASE_LIMIT_REACHED = "case_limit_reached"
    APPROVAL_MISSING = "approval_missing"
    APPROVAL_PENDING = "approval_pending"
    APPROVAL_REJECTED = "approval_rejected"
    NO_PENDING_APPROVAL = "no_pending_approval"
    NOT_REASSESSED = "not_reassessed"
    RELINK_WITHIN_LIMIT = "relink_within_limit"
    TOO_MANY_EXTENSIONS = "too_many_extensions"
    EXTENSION_TOO_LONG = "extension_too_long"
    NO_PENDING_REFERRAL = "no_pending_referral"
    REFERRAL_ALREADY_PENDING = "referral_already_pending"
    # refusing the actor (decided with the actor, see engine): who may invoke or confirm
    ROLE_MAY_NOT_INVOKE = "role_may_not_invoke"
    ROLE_MAY_NOT_CONFIRM = "role_may_not_confirm"
    SAME_PERSON = "same_person"
    ROLE_MAY_NOT_APPROVE = "role_may_not_approve"
    CONFERENCE_REQUIRED = "conference_required"


@frozen
class Verdict:
    allowed: bool
    guard: str
    reason: Reason
    message: str = ""
    subject: str = ""
    """What allowed it, where that is a record of the case (the id of an approval used)."""


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
    previous_case: Case | None = None
    """The household's latest earlier case in this store (for ``open``): a new episode links to
    it, and a household whose case closed on the client's death is not opened again."""


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
    if isinstance(command, c.LinkService):
        provider = command.item.provider.id
    else:
        assert isinstance(command, c.ReferOut)
        provider = command.agency.id
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
        f"{'linking a service' if isinstance(command, c.LinkService) else 'referring the case'} "
        f"shares the household's data with {provider!r}: record a consent of scope 'sharing' for "
        f"agency {provider!r} first",
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


def _eligibility_verdicts(case: Case, policy: Policy, now: dt.datetime) -> list[Verdict]:
    """Every eligibility rule the household fails, in the order the rules are checked."""
    rules = policy.eligibility
    out: list[Verdict] = []
    if rules.jurisdiction and case.household.region not in rules.jurisdiction:
        out.append(
            Verdict(
                False,
                "eligibility",
                Reason.OUT_OF_JURISDICTION,
                f"region {case.household.region!r} is outside the jurisdiction "
                f"({', '.join(sorted(rules.jurisdiction))}); refer to the centre of residence",
            )
        )
    if case.information_only:
        out.append(
            Verdict(
                False,
                "eligibility",
                Reason.INFORMATION_ONLY,
                "information alone solves the problem: redirect to the service (redirect)",
            )
        )
    if case.counselling_only:
        out.append(
            Verdict(
                False,
                "eligibility",
                Reason.COUNSELLING_ONLY,
                "only counselling is wanted: refer to general counselling (refer_to_counselling)",
            )
        )
    if len(case.crisis_factors) < rules.min_crisis_factors:
        out.append(
            Verdict(
                False,
                "eligibility",
                Reason.NOT_COMPLEX,
                f"{len(case.crisis_factors)} crisis factor(s) recorded; integrated case management "
                f"needs at least {rules.min_crisis_factors}: redirect to a single service",
            )
        )
    if rules.target_child_age is not None:
        low, high = rules.target_child_age
        today = now.date()
        if not any(low <= m.age_on(today) <= high for m in case.household.members):
            out.append(
                Verdict(
                    False,
                    "eligibility",
                    Reason.TARGET_RULE_UNMET,
                    f"programme {policy.programme!r} serves households with a child aged {low}-{high}",
                )
            )
    return out


def eligibility(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    failed = _eligibility_verdicts(case, policy, now)
    return failed[0] if failed else _ELIGIBLE


def eligibility_failures(case: Case, policy: Policy, now: dt.datetime) -> list[ScreeningReason]:
    """Why the household is not for integrated case management, as screening reasons (every
    eligibility rule it fails, then ``no_consent`` without consent or statutory basis)."""
    out = [ScreeningReason(v.reason.value) for v in _eligibility_verdicts(case, policy, now)]
    override = case.statutory_override
    consented = bool(case.active_consents(ConsentScope.SERVICE_PROVISION))
    if not consented and not (override is not None and override.in_force(now)):
        out.append(ScreeningReason.NO_CONSENT)
    return out


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
    longest = policy.time_limits.service_item_max
    relinked = relinked_from(case, item, policy)
    if relinked is not None:
        latest = policy.deadline(max(relinked[1], item.start), policy.time_limits.service_extension)
        if item.time_limit is not None and item.time_limit > latest:
            return Verdict(
                False,
                "within_time_limit",
                Reason.TIME_LIMIT_EXCEEDS_POLICY,
                f"linking {item.service!r} again within the limit window of {relinked[0].item_id!r} "
                f"extends it by at most {policy.time_limits.service_extension}: until "
                f"{latest.isoformat()} at the latest",
            )
        return _WITHIN_LIMIT
    if item.time_limit is not None and item.time_limit > policy.deadline(item.start, longest):
        return Verdict(
            False,
            "within_time_limit",
            Reason.TIME_LIMIT_EXCEEDS_POLICY,
            f"a service item may run at most {longest} in programme {policy.programme!r} (until "
            f"{policy.deadline(item.start, longest).isoformat()} for this one); plan how the family "
            "takes it over after that, or extend it after a reassessment (extend_service)",
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
    "current_goals",
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


_JUSTIFIED = _allow("aftercare_justified", Reason.AFTERCARE_JUSTIFIED)


def aftercare_justified(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.StartAftercare)
    allowed = policy.episodes.aftercare_after
    if case.closure is None or case.closure.reason not in allowed:
        closed_for = case.closure.reason.value if case.closure is not None else "no recorded reason"
        return Verdict(
            False,
            "aftercare_justified",
            Reason.AFTERCARE_NOT_APPLICABLE,
            f"a case closed for {closed_for!r} has no after-care in programme {policy.programme!r} "
            f"(after-care follows: {', '.join(sorted(allowed)) or 'no closure'})",
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


# -- time limits, extensions, approvals ---------------------------------------------------


def case_time_limit(case: Case, policy: Policy) -> dt.datetime:
    """The end of the episode's time limit: as last extended, else the policy's from its start."""
    if case.case_limit_extended_to is not None:
        return case.case_limit_extended_to
    return policy.deadline(case.episode_started_at, policy.time_limits.case_max)


_ACTIVE = frozenset(
    (
        CaseState.INTAKE,
        CaseState.SCREENING,
        CaseState.ASSESSMENT,
        CaseState.PLANNING,
        CaseState.SERVICE,
        CaseState.REASSESSMENT,
    )
)
_WITHIN_CASE_LIMIT = _allow("within_case_limit", Reason.WITHIN_CASE_LIMIT)


def within_case_limit(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    """Past the episode's time limit, no new work: close, intervene in a crisis, or extend."""
    if case.state not in _ACTIVE:
        return _WITHIN_CASE_LIMIT
    if (
        case.case_limit_extended_to is None
        and now < case.episode_started_at + policy.time_limits.case_max.at_least
    ):
        return _WITHIN_CASE_LIMIT
    limit = case_time_limit(case, policy)
    if now > limit:
        return Verdict(
            False,
            "within_case_limit",
            Reason.CASE_LIMIT_REACHED,
            f"the episode passed its time limit on {limit.isoformat()}: close it (close, e.g. for "
            "maximum_duration), intervene in a crisis (declare_crisis), or have a supervisor extend "
            "it (extend_case)",
        )
    return _WITHIN_CASE_LIMIT


#: The approval step of each event a policy may require an approval for.
APPROVAL_STEPS: Mapping[str, ApprovalStep] = {
    "approve_plan": ApprovalStep.PLAN,
    "close": ApprovalStep.CLOSURE,
    "extend_case": ApprovalStep.CASE_EXTENSION,
    "extend_service": ApprovalStep.SERVICE_EXTENSION,
    "link_service": ApprovalStep.SERVICE_EXTENSION,
    "start_aftercare": ApprovalStep.AFTERCARE,
}


def find_approval(
    case: Case, step: ApprovalStep, subject: str = "", approval_id: str | None = None
) -> tuple[Approval | None, Approval | None]:
    """``(approved, latest)``: the first approved, unused approval of ``step`` about ``subject``
    (the one named, if ``approval_id``), and the latest undecided or rejected request for it."""
    approved = latest = None
    for a in case.approvals:
        if a.step is not step or a.subject != subject:
            continue
        if approval_id is not None and a.approval_id != approval_id:
            continue
        if a.status is ApprovalStatus.APPROVED and approved is None:
            approved = a
        elif a.status in (ApprovalStatus.PENDING, ApprovalStatus.REJECTED):
            latest = a
    return approved, latest


def _approval_verdict(
    name: str, case: Case, step: ApprovalStep, subject: str, approval_id: str | None, policy: Policy
) -> Verdict | None:
    """The approval's verdict: allowed when approved; ``None`` when no approval was asked for."""
    approved, latest = find_approval(case, step, subject, approval_id)
    if approved is not None:
        return Verdict(
            True, name, Reason.APPROVED, f"approved as {approved.approval_id!r}", approved.approval_id
        )
    about = f" for {subject!r}" if subject else ""
    if latest is not None and latest.status is ApprovalStatus.PENDING:
        return Verdict(
            False,
            name,
            Reason.APPROVAL_PENDING,
            f"the {step.value} approval{about} requested as {latest.approval_id!r} is still pending",
        )
    if latest is not None and latest.status is ApprovalStatus.REJECTED:
        return Verdict(
            False,
            name,
            Reason.APPROVAL_REJECTED,
            f"the {step.value} approval{about} ({latest.approval_id!r}) was rejected; request it again "
            "(request_approval) once what was asked for is addressed",
        )
    return None


def _who_approves(policy: Policy, step: ApprovalStep) -> str:
    rule = policy.approval_rule(step)
    if rule is None:
        return "a supervisor"
    roles = ", ".join(sorted(rule.approved_by))
    return f"a case conference ({roles} recording it)" if rule.by_conference else f"one of: {roles}"


_NOT_REQUIRED = _allow("approval", Reason.APPROVAL_NOT_REQUIRED)


def approval(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """A step the policy names in ``approvals`` is taken only once approved."""
    step = APPROVAL_STEPS[command.event]
    if policy.approval_rule(step) is None:
        return _NOT_REQUIRED
    verdict = _approval_verdict("approval", case, step, "", getattr(command, "approval_id", None), policy)
    if verdict is not None:
        return verdict
    return Verdict(
        False,
        "approval",
        Reason.APPROVAL_MISSING,
        f"programme {policy.programme!r} takes this step ({step.value}) only with an approval by "
        f"{_who_approves(policy, step)}: request it first (request_approval)",
    )


def _reassessed_since(case: Case, start: dt.datetime) -> bool:
    # Strictly after: a reassessment completed at the very moment of an extension was used by it.
    return case.reassessed_at is not None and case.reassessed_at > start


def extension_justified(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    """A service item is extended after a reassessment completed since it started, or with an
    approval (only with one, where the policy requires approvals of service extensions)."""
    assert isinstance(command, c.ExtendService)
    item = case.service_item(command.item_id)
    assert item is not None  # the engine's check
    since = item.extended_at or item.start
    return _justified("extension_justified", case, item.item_id, since, command.approval_id, policy)


def _justified(
    name: str, case: Case, subject: str, since: dt.datetime, approval_id: str | None, policy: Policy
) -> Verdict:
    step = ApprovalStep.SERVICE_EXTENSION
    verdict = _approval_verdict(name, case, step, subject, approval_id, policy)
    if verdict is not None and verdict.allowed:
        return verdict
    required = policy.approval_rule(step) is not None
    if not required and _reassessed_since(case, since):
        return _allow(name, Reason.REASSESSED)
    if verdict is not None:
        return verdict
    if required:
        return Verdict(
            False,
            name,
            Reason.APPROVAL_MISSING,
            f"programme {policy.programme!r} extends a service item only with an approval by "
            f"{_who_approves(policy, step)}: request it for {subject!r} (request_approval)",
        )
    return Verdict(
        False,
        name,
        Reason.NOT_REASSESSED,
        f"no reassessment was completed since {subject!r} began its current period on "
        f"{since.isoformat()}: reassess "
        "the household first (start_reassessment, then revise_plan or resume_service), or request "
        f"an approval of the service extension for {subject!r} (request_approval)",
    )


_NOT_RELINKED = _allow("relink_justified", Reason.NOT_RELINKED)


def service_limit(item: ServiceItem, policy: Policy) -> dt.datetime:
    """The end of a service item's current period: its limit, else the policy's from its start."""
    return item.time_limit or policy.deadline(item.start, policy.time_limits.service_item_max)


def relinked_from(case: Case, item: ServiceItem, policy: Policy) -> tuple[ServiceItem, dt.datetime] | None:
    """The ended item of the same service for the same need whose limit window ``item`` starts
    in, and the end of that window: linking ``item`` continues it, as an extension would."""
    earlier = None
    for s in case.service_items:
        same = s.need_id == item.need_id and s.service == item.service and s.ended_at is not None
        if same and (earlier is None or s.start > earlier.start):
            earlier = s
    if earlier is None:
        return None
    window = service_limit(earlier, policy)
    return (earlier, window) if item.start < window else None


def relink_justified(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    """Ending a service and linking it again for the same need within its limit window is an
    extension: it needs what an extension needs, and counts as one."""
    assert isinstance(command, c.LinkService)
    new = command.item
    found = relinked_from(case, new, policy)
    if found is None:
        return _NOT_RELINKED
    earlier, window = found
    most = policy.time_limits.max_service_extensions
    ran = (
        f"{new.service!r} for need {new.need_id!r} ran as {earlier.item_id!r}, and its limit runs to "
        f"{window.isoformat()}"
    )
    if earlier.extensions >= most:
        return Verdict(
            False,
            "relink_justified",
            Reason.TOO_MANY_EXTENSIONS,
            f"{ran}: linking it again before then extends it, and it was extended {earlier.extensions} "
            f"time(s); programme {policy.programme!r} allows {most}",
        )
    since = earlier.extended_at or earlier.start
    verdict = _justified("relink_justified", case, earlier.item_id, since, command.approval_id, policy)
    if verdict.allowed:
        return verdict
    return Verdict(
        False,
        "relink_justified",
        Reason.RELINK_WITHIN_LIMIT,
        f"{ran}: linking it again before then is an extension ({verdict.message})",
    )


_EXTENSION_OK = _allow("extension_within_policy", Reason.EXTENSION_WITHIN_POLICY)


def extension_within_policy(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    """An extension stays within the policy's number of extensions and longest extension."""
    limits = policy.time_limits
    if isinstance(command, c.ExtendService):
        item = case.service_item(command.item_id)
        assert item is not None
        done, most, longest = item.extensions, limits.max_service_extensions, limits.service_extension
        current = service_limit(item, policy)
        what = f"service item {item.item_id!r}"
    else:
        assert isinstance(command, c.ExtendCase)
        done, most, longest = case.case_extensions, limits.max_case_extensions, limits.case_extension
        current = case_time_limit(case, policy)
        what = "the case"
    if done >= most:
        return Verdict(
            False,
            "extension_within_policy",
            Reason.TOO_MANY_EXTENSIONS,
            f"{what} was extended {done} time(s); programme {policy.programme!r} allows {most}",
        )
    latest = policy.deadline(max(current, now), longest)
    if command.until is not None and command.until > latest:
        return Verdict(
            False,
            "extension_within_policy",
            Reason.EXTENSION_TOO_LONG,
            f"one extension adds at most {longest} in programme {policy.programme!r}: until "
            f"{latest.isoformat()} at the latest",
        )
    return _EXTENSION_OK


_APPROVAL_OPEN = _allow("approval_pending", Reason.AWAITING_DECISION)


def approval_pending(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    assert isinstance(command, c.Approve | c.Reject)
    found = case.approval(command.approval_id)
    if found is None or found.status is not ApprovalStatus.PENDING:
        pending = [a.approval_id for a in case.approvals if a.status is ApprovalStatus.PENDING]
        return Verdict(
            False,
            "approval_pending",
            Reason.NO_PENDING_APPROVAL,
            f"no pending approval {command.approval_id!r} in this case "
            f"(pending: {', '.join(pending) or 'none'})",
        )
    return _APPROVAL_OPEN


_REFERRAL_OPEN = _allow("referral_pending", Reason.REFERRAL_PENDING)
_NO_REFERRAL = _allow("no_referral_pending", Reason.NO_REFERRAL_PENDING)


def referral_pending(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    if case.referral_out is None:
        return Verdict(
            False,
            "referral_pending",
            Reason.NO_PENDING_REFERRAL,
            "the case has no referral to another agency awaiting an answer (refer_out first)",
        )
    return _REFERRAL_OPEN


def no_referral_pending(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> Verdict:
    if case.referral_out is not None:
        return Verdict(
            False,
            "no_referral_pending",
            Reason.REFERRAL_ALREADY_PENDING,
            f"the referral to {case.referral_out.agency.id!r} awaits its answer "
            "(referral_accepted or referral_declined) first",
        )
    return _NO_REFERRAL


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
    "within_case_limit": within_case_limit,
    "approval": approval,
    "extension_justified": extension_justified,
    "relink_justified": relink_justified,
    "extension_within_policy": extension_within_policy,
    "approval_pending": approval_pending,
    "referral_pending": referral_pending,
    "no_referral_pending": no_referral_pending,
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
    "within_case_limit": (Reason.WITHIN_CASE_LIMIT, Reason.CASE_LIMIT_REACHED),
    "approval": (
        Reason.APPROVAL_NOT_REQUIRED,
        Reason.APPROVED,
        Reason.APPROVAL_MISSING,
        Reason.APPROVAL_PENDING,
        Reason.APPROVAL_REJECTED,
    ),
    "extension_justified": (
        Reason.REASSESSED,
        Reason.APPROVED,
        Reason.NOT_REASSESSED,
        Reason.APPROVAL_MISSING,
        Reason.APPROVAL_PENDING,
        Reason.APPROVAL_REJECTED,
    ),
    "relink_justified": (
        Reason.NOT_RELINKED,
        Reason.REASSESSED,
        Reason.APPROVED,
        Reason.RELINK_WITHIN_LIMIT,
        Reason.TOO_MANY_EXTENSIONS,
    ),
    "extension_within_policy": (
        Reason.EXTENSION_WITHIN_POLICY,
        Reason.TOO_MANY_EXTENSIONS,
        Reason.EXTENSION_TOO_LONG,
    ),
    "approval_pending": (Reason.AWAITING_DECISION, Reason.NO_PENDING_APPROVAL),
    "referral_pending": (Reason.REFERRAL_PENDING, Reason.NO_PENDING_REFERRAL),
    "no_referral_pending": (Reason.NO_REFERRAL_PENDING, Reason.REFERRAL_ALREADY_PENDING),
}
