"""An independent reference model of the lifecycle rules, written from the domain brief.

It does not import the library's lifecycle, guards or calendar arithmetic: its own table of
states, events and guards (:data:`MOVES`), its own guard functions (:data:`RULES`) and its own
deadlines (:func:`deadline`, with ``dateutil`` and ``zoneinfo``). :func:`predict` says what the
rules should do with a command (every guard's verdict, the stage after it, what ``decide`` fills
in); the differential test compares that with ``decide``, and the scripted tour walks every
transition listed here (so a transition added to the library but not here is never exercised,
and the coverage gate fails).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

from attrs import evolve, frozen
from dateutil.relativedelta import relativedelta

from casemgmt_core import Duration, Facts
from casemgmt_core import commands as c
from casemgmt_core.model import (
    Actor,
    Approval,
    ApprovalStatus,
    ApprovalStep,
    Case,
    ClosureReason,
    ConsentGiver,
    ConsentScope,
    EpisodeRef,
    MandatoryReport,
    ScreeningReason,
    ServiceItem,
)
from casemgmt_core.policy import Policy

ACTIVE = ("intake", "screening", "assessment", "planning", "service", "reassessment")
OPEN = ("referred", *ACTIVE, "crisis")
WORKING = ("assessment", "planning", "service", "reassessment")
AFTER_INTAKE = (*WORKING, "crisis")
EXTENDABLE = ("planning", "service", "reassessment", "crisis")
EXITS = ("no_statutory_duty", "reports_filed")
RESUME = "<resume>"
"""Destination of ``resolve_crisis``: the stage the crisis interrupted."""
WITHDRAWAL = "<withdrawal>"
"""Destination of ``withdraw_consent``: closed for the last service consent without a statutory
basis, else the same stage."""

#: Work that moves a case on or gives it more to do: past the episode's time limit, refused in
#: the active stages (closing, crisis intervention and an extension stay possible).
LIMITED = frozenset(
    {
        "complete_intake",
        "select",
        "record_need",
        "record_strength",
        "complete_assessment",
        "set_goal",
        "revise_goal",
        "approve_plan",
        "link_service",
        "extend_service",
        "start_reassessment",
        "revise_plan",
        "resume_service",
    }
)
#: The approval step each event may need, by the policy's ``approvals``.
STEP_OF = {
    "approve_plan": ApprovalStep.PLAN,
    "close": ApprovalStep.CLOSURE,
    "extend_case": ApprovalStep.CASE_EXTENSION,
    "start_aftercare": ApprovalStep.AFTERCARE,
    "extend_service": ApprovalStep.SERVICE_EXTENSION,
    "link_service": ApprovalStep.SERVICE_EXTENSION,
}


@frozen
class Move:
    event: str
    sources: tuple[str, ...]
    dest: str | None
    """``None``: the event records data and keeps the stage."""
    guards: tuple[str, ...] = ()


def _m(event: str, sources: tuple[str, ...] | list[str], dest: str | None, *guards: str) -> Move:
    if event in LIMITED:
        guards = ("within_case_limit", *guards)
    return Move(event, tuple(sources), dest, guards)


MOVES: tuple[Move, ...] = (
    _m("start_intake", ["referred"], "intake"),
    _m("hand_over", ["referred", "intake", "screening"], "handed_over", "reports_filed"),
    _m("complete_intake", ["intake"], "screening", "crisis_factors_recorded"),
    _m("select", ["screening"], "assessment", "eligibility", "service_consent", "not_managed_elsewhere"),
    _m("redirect", ["screening"], "redirected", *EXITS),
    _m("refer_to_counselling", ["screening"], "general_counselling", *EXITS),
    _m("decline", ["intake", "screening"], "declined", *EXITS),
    _m("complete_assessment", ["assessment"], "planning", "data_consent", "needs_recorded"),
    _m("approve_plan", ["planning"], "service", "service_consent", "plan_has_goals", "approval"),
    _m("start_reassessment", ["service"], "reassessment"),
    _m("revise_plan", ["reassessment"], "planning"),
    _m("resume_service", ["reassessment"], "service", "service_consent"),
    _m("declare_crisis", ACTIVE, "crisis"),
    _m("resolve_crisis", ["crisis"], RESUME),
    _m("close", AFTER_INTAKE, "closed", "closure_reason_fits", "reports_filed", "approval"),
    _m("withdraw_consent", [*ACTIVE, "crisis", "aftercare"], WITHDRAWAL),
    _m("start_aftercare", ["closed"], "aftercare", "aftercare_justified", "approval"),
    _m("complete_aftercare", ["aftercare"], "closed"),
    _m("reopen", ["closed", "aftercare"], "intake", "reopenable"),
    _m("refer_out", AFTER_INTAKE, None, "sharing_consent", "no_referral_pending"),
    _m("referral_accepted", AFTER_INTAKE, "closed", "referral_pending", "reports_filed"),
    _m("referral_declined", AFTER_INTAKE, None, "referral_pending"),
    _m("assign", [*OPEN, "aftercare"], None),
    _m("transfer", [*OPEN, "aftercare"], None),
    _m("record_crisis_factor", OPEN, None),
    _m("record_intake_findings", ["intake", "screening"], None),
    _m("record_consent", [*OPEN, "aftercare"], None, "valid_consent_giver"),
    _m("invoke_override", OPEN, None, "ground_enabled", "statutory_subject"),
    _m("confirm_override", OPEN, None, "override_awaiting_confirmation"),
    _m("file_report", OPEN, None, "report_pending", "report_delivered"),
    _m("record_need", WORKING, None, "data_consent"),
    _m("record_strength", WORKING, None, "data_consent"),
    _m("set_goal", ["planning", "reassessment"], None, "service_consent"),
    _m("revise_goal", ["planning", "reassessment"], None, "service_consent"),
    _m("drop_goal", ["planning", "reassessment"], None),
    _m("achieve_goal", ["service", "reassessment"], None),
    _m("schedule_conference", AFTER_INTAKE, None),
    _m("hold_conference", AFTER_INTAKE, None),
    _m(
        "link_service",
        ["planning", "service", "crisis"],
        None,
        "sharing_consent",
        "service_not_duplicated",
        "within_time_limit",
        "relink_justified",
    ),
    _m("end_service", EXTENDABLE, None),
    _m("extend_service", EXTENDABLE, None, "extension_within_policy", "extension_justified"),
    _m("extend_case", [*ACTIVE, "crisis"], None, "approval", "extension_within_policy"),
    _m("request_approval", [*OPEN, "closed", "aftercare"], None),
    _m("approve", [*OPEN, "closed", "aftercare"], None, "approval_pending"),
    _m("reject", [*OPEN, "closed", "aftercare"], None, "approval_pending"),
    _m("record_journal", [*OPEN, "aftercare"], None),
)

_BY_KEY: dict[tuple[str, str], Move] = {(s, m.event): m for m in MOVES for s in m.sources}


def triples() -> frozenset[tuple[str | None, str, str]]:
    """Every ``(source, event, destination)`` the reference model allows, ``open`` included."""
    out: set[tuple[str | None, str, str]] = {(None, "open", "referred")}
    for m in MOVES:
        for s in m.sources:
            if m.dest == RESUME:
                out.update((s, m.event, d) for d in ACTIVE)
            elif m.dest == WITHDRAWAL:
                out.update({(s, m.event, "closed"), (s, m.event, s)})
            else:
                out.add((s, m.event, m.dest or s))
    return frozenset(out)


# -- the calendar -------------------------------------------------------------------------------


def deadline(start: dt.datetime, limit: Duration, policy: Policy) -> dt.datetime:
    """``limit`` (calendar months and days) after ``start``, counted on the wall calendar of the
    programme's time zone; a month without the start's day ends on its last day."""
    zone = zoneinfo.ZoneInfo(policy.time_zone)
    wall = start.astimezone(zone).replace(tzinfo=None)
    later = wall + relativedelta(months=limit.months, days=limit.days)
    return later.replace(tzinfo=zone).astimezone(start.tzinfo)


def case_limit(case: Case, policy: Policy) -> dt.datetime:
    """When the episode's time limit ends: as a supervisor last extended it, else the policy's
    maximum from the episode's start."""
    if case.case_limit_extended_to is not None:
        return case.case_limit_extended_to
    return deadline(case.episode_started_at, policy.time_limits.case_max, policy)


def item_limit(case: Case, item_id: str, policy: Policy) -> dt.datetime:
    item = case.service_item(item_id)
    assert item is not None
    if item.time_limit is not None:
        return item.time_limit
    return deadline(item.start, policy.time_limits.service_item_max, policy)


# -- the rules ----------------------------------------------------------------------------------


@frozen
class Verdict:
    """A guard's answer: allowed or not, why, and the approval that allowed it (if one did)."""

    allowed: bool
    reason: str
    approval: str = ""


def ok(reason: str, approval: str = "") -> Verdict:
    return Verdict(True, reason, approval)


def no(reason: str) -> Verdict:
    return Verdict(False, reason)


Rule = Callable[[Case, c.Command, Policy, dt.datetime, Facts], Verdict]


def _lifting(case: Case, now: dt.datetime) -> bool:
    """An override lifts consent unless it awaited confirmation past its deadline."""
    o = case.statutory_override
    if o is None:
        return False
    return o.confirm_by is None or o.confirmed_at is not None or now <= o.confirm_by


def _with_consent(given: bool, case: Case, now: dt.datetime) -> Verdict:
    if given:
        return ok("consent_given")
    return ok("statutory_override") if _lifting(case, now) else no("consent_missing")


def _consent(scope: ConsentScope) -> Rule:
    def rule(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
        live = [x for x in case.consents if x.scope == scope and x.withdrawn_at is None]
        return _with_consent(bool(live), case, now)

    return rule


def _sharing(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """Sharing with a provider (a linked service) or an agency (a referral) needs a sharing
    consent naming it."""
    if isinstance(command, c.LinkService):
        to = command.item.provider.id
    else:
        assert isinstance(command, c.ReferOut)
        to = command.agency.id
    given = any(
        x.scope == ConsentScope.SHARING and x.withdrawn_at is None and x.agency_id == to
        for x in case.consents
    )
    return _with_consent(given, case, now)


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - (1 if (on.month, on.day) < (born.month, born.day) else 0)


def _giver(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.RecordConsent)
    k = command.consent
    members = {m.member_id: m for m in case.household.members}
    if k.subject_id not in members or k.given_by not in members:
        return no("consent_giver_invalid")
    subject = members[k.subject_id]
    minor = _age(subject.birth_date, k.given_at.date()) < policy.eligibility.age_of_majority
    if k.giver == ConsentGiver.PERSON:
        fine = k.given_by == k.subject_id and not minor
    else:
        fine = minor and subject.guardian_id == k.given_by
    return ok("consent_giver_valid") if fine else no("consent_giver_invalid")


def _ground(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.InvokeStatutoryOverride)
    rule = policy.statutory.get(command.ground)
    return ok("ground_enabled") if rule is not None and rule.enabled else no("ground_not_enabled")


def _unfiled(case: Case) -> list[MandatoryReport]:
    return [r for r in case.mandatory_reports if r.reference is None or r.delivered_at is None]


def _pending(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.FileMandatoryReport)
    found = any(r.ground == command.ground for r in _unfiled(case))
    return ok("report_pending") if found else no("no_pending_report")


def _delivered(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    return ok("report_delivered") if facts.report_delivered_at is not None else no("report_not_delivered")


def _filed(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    return no("mandatory_report_pending") if _unfiled(case) else ok("reports_filed")


def _protected(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """Child abuse protects a minor, elder abuse an elder, domestic violence anyone (by default)."""
    assert isinstance(command, c.InvokeStatutoryOverride)
    rule = policy.statutory[command.ground]
    who = str(rule.applies_to)
    people = [m for m in case.household.members if command.member_id in (None, m.member_id)]
    ages = [_age(m.birth_date, now.date()) for m in people]
    if who == "minor":
        found = any(a < policy.eligibility.age_of_majority for a in ages)
    elif who == "elder":
        found = any(a >= policy.eligibility.elder_age for a in ages)
    else:
        found = bool(people)
    return ok("statutory_subject_present") if found else no("no_statutory_subject")


def _confirmable(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    o = case.statutory_override
    if o is None or o.confirm_by is None or o.confirmed_at is not None:
        return no("no_override_to_confirm")
    return no("override_lapsed") if now > o.confirm_by else ok("override_awaiting_confirmation")


def _no_duty(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    return no("statutory_duty_active") if case.statutory_override else ok("no_statutory_duty")


def ineligible(case: Case, policy: Policy, now: dt.datetime) -> list[str]:
    """Every eligibility rule the household fails, in the order the brief lists them."""
    rules = policy.eligibility
    out = []
    if rules.jurisdiction and case.household.region not in rules.jurisdiction:
        out.append("out_of_jurisdiction")
    if case.information_only:
        out.append("information_only")
    if case.counselling_only:
        out.append("counselling_only")
    if len(case.crisis_factors) < rules.min_crisis_factors:
        out.append("not_complex")
    if rules.target_child_age is not None:
        low, high = rules.target_child_age
        if all(not low <= _age(m.birth_date, now.date()) <= high for m in case.household.members):
            out.append("target_rule_unmet")
    return out


def screening_failures(case: Case, policy: Policy, now: dt.datetime) -> list[ScreeningReason]:
    """Why screening may send the household elsewhere: the eligibility rules it fails, then the
    lack of both a service consent and a statutory basis."""
    out = [ScreeningReason(r) for r in ineligible(case, policy, now)]
    live = [x for x in case.consents if x.scope == ConsentScope.SERVICE_PROVISION and x.withdrawn_at is None]
    if not live and not _lifting(case, now):
        out.append(ScreeningReason.NO_CONSENT)
    return out


#: Screening reasons a rule can check; any other (household declined, another agency, other)
#: is the caseworker's word.
CHECKABLE = frozenset(
    {
        ScreeningReason.INFORMATION_ONLY,
        ScreeningReason.COUNSELLING_ONLY,
        ScreeningReason.NOT_COMPLEX,
        ScreeningReason.OUT_OF_JURISDICTION,
        ScreeningReason.TARGET_RULE_UNMET,
        ScreeningReason.NO_CONSENT,
    }
)


def _eligible(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    failed = ineligible(case, policy, now)
    return no(failed[0]) if failed else ok("eligible")


def _elsewhere(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    return no("managed_elsewhere") if facts.managed_elsewhere_by else ok("not_managed_elsewhere")


def _not_twice(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.LinkService)
    new = command.item
    running = [s for s in case.service_items if s.ended_at is None]
    if any((s.need_id, s.service) == (new.need_id, new.service) for s in running):
        return no("service_already_linked")
    return no("service_already_linked") if facts.service_linked_elsewhere_by else ok("service_not_linked")


def relinked(case: Case, item: ServiceItem, policy: Policy) -> tuple[ServiceItem, dt.datetime] | None:
    """The ended item of the same service for the same need (the latest started) whose limit
    window ``item`` starts in, and the end of that window: ``item`` continues it."""
    same = [
        s
        for s in case.service_items
        if s.ended_at is not None and (s.need_id, s.service) == (item.need_id, item.service)
    ]
    if not same:
        return None
    earlier = max(same, key=lambda s: s.start)
    window = item_limit(case, earlier.item_id, policy)
    return (earlier, window) if item.start < window else None


def _limit(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """A new item runs at most the policy's longest; one that continues an earlier item at most
    one extension past the earlier item's window."""
    assert isinstance(command, c.LinkService)
    item = command.item
    earlier = relinked(case, item, policy)
    if earlier is not None:
        longest = deadline(max(earlier[1], item.start), policy.time_limits.service_extension, policy)
    else:
        longest = deadline(item.start, policy.time_limits.service_item_max, policy)
    too_long = item.time_limit is not None and item.time_limit > longest
    return no("time_limit_exceeds_policy") if too_long else ok("within_time_limit")


def _recorded(attr: str, allowed: str, refused: str) -> Rule:
    def rule(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
        return ok(allowed) if len(getattr(case, attr)) > 0 else no(refused)

    return rule


def _goals(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """A plan has goals: a dropped goal is no longer one of them (an achieved one still is)."""
    kept = [g for g in case.goals if g.dropped_at is None]
    return ok("goals_set") if kept else no("no_goals")


def _closure(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.Close)
    success = command.reason in (ClosureReason.GOALS_MET, ClosureReason.SELF_RELIANT)
    if success and case.state.value not in ("service", "reassessment"):
        return no("closure_reason_not_allowed")
    live_service = [
        x for x in case.consents if x.scope == ConsentScope.SERVICE_PROVISION and x.withdrawn_at is None
    ]
    if command.reason == ClosureReason.CONSENT_WITHDRAWN and live_service:
        return no("closure_reason_not_allowed")
    return ok("closure_reason_fits")


def _aftercare(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """After-care follows only the closure reasons the programme lists, and must be justified."""
    assert isinstance(command, c.StartAftercare)
    if case.closure is None or case.closure.reason not in policy.episodes.aftercare_after:
        return no("aftercare_not_applicable")
    return ok("aftercare_justified") if command.justification.strip() else no("aftercare_not_justified")


def _reopen(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    died = case.closure is not None and case.closure.reason == ClosureReason.DEATH
    return no("closed_by_death") if died else ok("reopenable")


def _in_time(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """Past the episode's limit, no new work in an active stage (crisis intervention goes on)."""
    if case.state.value in ACTIVE and now > case_limit(case, policy):
        return no("case_limit_reached")
    return ok("within_case_limit")


def _requests(case: Case, step: ApprovalStep, subject: str, named: str | None) -> list[Approval]:
    return [
        a
        for a in case.approvals
        if a.step == step and a.subject == subject and named in (None, a.approval_id)
    ]


def _approval_state(case: Case, step: ApprovalStep, subject: str, named: str | None) -> Verdict | None:
    """An approved (unused) request allows; else the latest undecided or rejected one refuses;
    ``None`` when nothing was asked for."""
    asked = _requests(case, step, subject, named)
    approved = [a for a in asked if a.status == ApprovalStatus.APPROVED]
    if approved:
        return ok("approved", approved[0].approval_id)
    open_or_rejected = [a for a in asked if a.status in (ApprovalStatus.PENDING, ApprovalStatus.REJECTED)]
    if not open_or_rejected:
        return None
    last = open_or_rejected[-1]
    return no("approval_pending" if last.status == ApprovalStatus.PENDING else "approval_rejected")


def _approval(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    step = STEP_OF[command.event]
    if step not in policy.approvals:
        return ok("approval_not_required")
    found = _approval_state(case, step, "", getattr(command, "approval_id", None))
    return found if found is not None else no("approval_missing")


def _justified(case: Case, subject: str, since: dt.datetime, named: str | None, policy: Policy) -> Verdict:
    """Running a service item past its limit needs a reassessment completed since it started, or
    an approval; where the programme requires approvals of service extensions, only an approval."""
    step = ApprovalStep.SERVICE_EXTENSION
    found = _approval_state(case, step, subject, named)
    if found is not None and found.allowed:
        return found
    required = step in policy.approvals
    # after the period began: a reassessment at that very moment was the one that began it
    reassessed = case.reassessed_at is not None and case.reassessed_at > since
    if reassessed and not required:
        return ok("reassessed")
    if found is not None:
        return found
    return no("approval_missing" if required else "not_reassessed")


def _extension(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """Justified by a reassessment since the item's current period began (its start, or its
    last extension), or by an approval."""
    assert isinstance(command, c.ExtendService)
    item = case.service_item(command.item_id)
    assert item is not None
    since = item.extended_at or item.start
    return _justified(case, item.item_id, since, command.approval_id, policy)


def _relink(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """Ending a service and linking it again for the same need before the earlier item's limit
    is an extension in disguise: it needs what an extension needs, and counts as one."""
    assert isinstance(command, c.LinkService)
    found = relinked(case, command.item, policy)
    if found is None:
        return ok("not_relinked")
    earlier = found[0]
    if earlier.extensions >= policy.time_limits.max_service_extensions:
        return no("too_many_extensions")
    since = earlier.extended_at or earlier.start
    verdict = _justified(case, earlier.item_id, since, command.approval_id, policy)
    return verdict if verdict.allowed else no("relink_within_limit")


def _bounded(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    """An extension stays within the programme's number of extensions and longest extension."""
    limits = policy.time_limits
    if isinstance(command, c.ExtendService):
        item = case.service_item(command.item_id)
        assert item is not None
        done, most, longest = item.extensions, limits.max_service_extensions, limits.service_extension
        current = item_limit(case, item.item_id, policy)
    else:
        assert isinstance(command, c.ExtendCase)
        done, most, longest = case.case_extensions, limits.max_case_extensions, limits.case_extension
        current = case_limit(case, policy)
    if done >= most:
        return no("too_many_extensions")
    if command.until is not None and command.until > deadline(max(current, now), longest, policy):
        return no("extension_too_long")
    return ok("extension_within_policy")


def _undecided(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    assert isinstance(command, c.Approve | c.Reject)
    found = case.approval(command.approval_id)
    waiting = found is not None and found.status == ApprovalStatus.PENDING
    return ok("awaiting_decision") if waiting else no("no_pending_approval")


def _referred(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    return ok("referral_pending") if case.referral_out is not None else no("no_pending_referral")


def _not_referred(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> Verdict:
    return no("referral_already_pending") if case.referral_out is not None else ok("no_referral_pending")


RULES: dict[str, Rule] = {
    "service_consent": _consent(ConsentScope.SERVICE_PROVISION),
    "data_consent": _consent(ConsentScope.PERSONAL_DATA),
    "sharing_consent": _sharing,
    "valid_consent_giver": _giver,
    "ground_enabled": _ground,
    "report_pending": _pending,
    "report_delivered": _delivered,
    "statutory_subject": _protected,
    "override_awaiting_confirmation": _confirmable,
    "reports_filed": _filed,
    "no_statutory_duty": _no_duty,
    "eligibility": _eligible,
    "not_managed_elsewhere": _elsewhere,
    "service_not_duplicated": _not_twice,
    "within_time_limit": _limit,
    "crisis_factors_recorded": _recorded("crisis_factors", "crisis_factors_recorded", "no_crisis_factors"),
    "needs_recorded": _recorded("needs", "needs_recorded", "no_needs_recorded"),
    "plan_has_goals": _goals,
    "closure_reason_fits": _closure,
    "aftercare_justified": _aftercare,
    "reopenable": _reopen,
    "within_case_limit": _in_time,
    "approval": _approval,
    "extension_justified": _extension,
    "relink_justified": _relink,
    "extension_within_policy": _bounded,
    "approval_pending": _undecided,
    "referral_pending": _referred,
    "no_referral_pending": _not_referred,
}


@frozen
class Prediction:
    applies: bool
    """False: the event does not apply to the case's stage at all."""
    refused_by: tuple[str, str] | None = None
    """``(guard, reason)`` of the first guard (or actor rule) that refuses."""
    dest: str | None = None
    """The stage after an accepted command."""
    verdicts: tuple[tuple[str, str], ...] = ()
    """``(guard, reason)`` of every guard of an accepted command, in order."""
    filled: tuple[tuple[str, Any], ...] = ()
    """What ``decide`` fills in on the recorded payload: ``(field, value)``."""
    episode: tuple[int, EpisodeRef | None] = (1, None)
    """The episode the recorded event belongs to, and its link to the previous one."""


def _withdrawal_dest(case: Case, command: c.Command) -> str:
    assert isinstance(command, c.WithdrawConsent)
    gone = next((x for x in case.consents if x.consent_id == command.consent_id), None)
    if case.statutory_override or gone is None or gone.scope != ConsentScope.SERVICE_PROVISION:
        return case.state.value
    others = [
        x
        for x in case.consents
        if x.scope == ConsentScope.SERVICE_PROVISION and x.withdrawn_at is None and x is not gone
    ]
    return case.state.value if others else "closed"


def who(case: Case, command: c.Command, policy: Policy, actor: Actor) -> tuple[str, str] | None:
    """Who may lift consent and confirm it was lifted, and who decides an approval, is the
    policy's: ``(rule, reason)`` of a refusal."""
    if isinstance(command, c.InvokeStatutoryOverride):
        rule = policy.statutory.get(command.ground)
        if rule is not None and rule.enabled and actor.role not in rule.invoked_by:
            return ("statutory_actor", "role_may_not_invoke")
    if isinstance(command, c.ConfirmStatutoryOverride) and case.statutory_override is not None:
        o = case.statutory_override
        rule = policy.statutory.get(o.ground)
        if rule is not None and actor.role not in rule.confirmed_by:
            return ("statutory_actor", "role_may_not_confirm")
        if rule is not None and actor.id == o.actor_id:
            return ("statutory_actor", "same_person")
    if isinstance(command, c.Approve | c.Reject):
        asked = case.approval(command.approval_id)
        if asked is None or asked.status != ApprovalStatus.PENDING:
            return None
        approval_rule = policy.approvals.get(asked.step)
        roles = approval_rule.approved_by if approval_rule is not None else {"supervisor"}
        if actor.role not in roles:
            return ("approval_actor", "role_may_not_approve")
        if actor.id == asked.requested_by:
            return ("approval_actor", "same_person")
        if approval_rule is not None and approval_rule.by_conference and command.conference_id is None:
            return ("approval_actor", "conference_required")
    return None


def exit_reason(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str:
    """The reason a screening exit records when the caller gave none."""
    if isinstance(command, c.HandOver):
        managing = facts.managed_elsewhere_by
        to_manager = managing is not None and managing.id == command.agency.id
        return "managed_elsewhere" if to_manager else "competent_agency"
    failures = screening_failures(case, policy, now)
    if isinstance(command, c.ReferToCounselling) and ScreeningReason.COUNSELLING_ONLY in failures:
        return "counselling_only"
    return failures[0].value


def _filled(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts, used: str
) -> dict[str, Any]:
    limits = policy.time_limits
    out: dict[str, Any] = {}
    if used:
        out["approval_id"] = used
    if isinstance(command, c.ExtendService) and command.until is None:
        current = item_limit(case, command.item_id, policy)
        out["until"] = deadline(max(current, now), limits.service_extension, policy)
    elif isinstance(command, c.ExtendCase) and command.until is None:
        out["until"] = deadline(max(case_limit(case, policy), now), limits.case_extension, policy)
    elif isinstance(command, c.StartAftercare) and command.until is None:
        out["until"] = deadline(now, limits.aftercare, policy)
    elif isinstance(command, c.LinkService):
        item = command.item
        found = relinked(case, item, policy)
        if found is not None:
            earlier, window = found
            until = item.time_limit or deadline(max(window, item.start), limits.service_extension, policy)
            out["item"] = evolve(
                item, time_limit=until, extensions=earlier.extensions + 1, extended_at=item.start
            )
        elif item.time_limit is None:
            out["item"] = evolve(item, time_limit=deadline(item.start, limits.service_item_max, policy))
    elif isinstance(command, c.Redirect | c.ReferToCounselling | c.Decline | c.HandOver):
        if command.reason is None:
            out["reason"] = ScreeningReason(exit_reason(case, command, policy, now, facts))
    elif isinstance(command, c.ApprovePlan):
        out["version"] = case.plan_version + 1
        out["goals"] = tuple(g for g in case.goals if g.dropped_at is None)
    elif isinstance(command, c.Reopen):
        scopes = policy.episodes.reconfirm_consents
        out["lapsed_consents"] = tuple(x.consent_id for x in case.consents if x.scope in scopes)
    elif isinstance(command, c.TransferCase):
        out["from_caseworker_id"] = case.caseworker_id
        out["from_team_id"] = case.team_id
    elif isinstance(command, c.InvokeStatutoryOverride):
        rule = policy.statutory[command.ground]
        hours = rule.confirmation_within_hours
        out["legal_basis"] = rule.legal_basis
        out["authority"] = rule.authority
        out["report_due_at"] = now + dt.timedelta(hours=rule.report_within_hours)
        out["confirm_by"] = None if hours is None else now + dt.timedelta(hours=hours)
    elif isinstance(command, c.FileMandatoryReport):
        out["delivered_at"] = facts.report_delivered_at
    return out


def predict(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts, actor: Actor
) -> Prediction:
    """What the rules say about ``command`` for ``case`` (a referentially valid command)."""
    move = _BY_KEY.get((case.state.value, command.event))
    if move is None:
        return Prediction(False)
    refused = who(case, command, policy, actor)
    if refused is not None:
        return Prediction(True, refused)
    verdicts = [(name, RULES[name](case, command, policy, now, facts)) for name in move.guards]
    for name, verdict in verdicts:
        if not verdict.allowed:
            return Prediction(True, (name, verdict.reason))
    if move.dest == RESUME:
        dest = case.resume_state.value if case.resume_state is not None else "?"
    elif move.dest == WITHDRAWAL:
        dest = _withdrawal_dest(case, command)
    else:
        dest = move.dest or case.state.value
    used = next((v.approval for _, v in verdicts if v.approval), "")
    filled = _filled(case, command, policy, now, facts, used)
    episode: tuple[int, EpisodeRef | None]
    if command.event == "reopen":
        episode = (case.episode + 1, EpisodeRef(case.case_id, case.episode))
    else:
        episode = (case.episode, case.previous_episode)
    return Prediction(
        True,
        None,
        dest,
        tuple((name, v.reason) for name, v in verdicts),
        tuple(sorted(filled.items())),
        episode,
    )
