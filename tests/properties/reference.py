"""An independent reference model of the lifecycle rules, written from the domain brief.

It does not import the library's lifecycle or guards: its own table of states, events and guards
(:data:`MOVES`) and its own guard functions (:data:`RULES`). :func:`predict` says what the rules
should do with a command; the differential test compares that with ``decide``, and the scripted
tour walks every transition listed here (so a transition added to the library but not here is
never exercised, and the coverage gate fails).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from attrs import frozen

from casemgmt_core import commands as c
from casemgmt_core.guards import Facts
from casemgmt_core.model import Actor, Case, ClosureReason, ConsentGiver, ConsentScope, MandatoryReport
from casemgmt_core.policy import Policy

ACTIVE = ("intake", "screening", "assessment", "planning", "service", "reassessment")
OPEN = ("referred", *ACTIVE, "crisis")
WORKING = ("assessment", "planning", "service", "reassessment")
EXITS = ("no_statutory_duty", "reports_filed")
RESUME = "<resume>"
"""Destination of ``resolve_crisis``: the stage the crisis interrupted."""
WITHDRAWAL = "<withdrawal>"
"""Destination of ``withdraw_consent``: closed for the last service consent without a statutory
basis, else the same stage."""


@frozen
class Move:
    event: str
    sources: tuple[str, ...]
    dest: str | None
    """``None``: the event records data and keeps the stage."""
    guards: tuple[str, ...] = ()


def _m(event: str, sources: tuple[str, ...] | list[str], dest: str | None, *guards: str) -> Move:
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
    _m("approve_plan", ["planning"], "service", "service_consent", "plan_has_goals"),
    _m("start_reassessment", ["service"], "reassessment"),
    _m("revise_plan", ["reassessment"], "planning"),
    _m("resume_service", ["reassessment"], "service", "service_consent"),
    _m("declare_crisis", ACTIVE, "crisis"),
    _m("resolve_crisis", ["crisis"], RESUME),
    _m("close", [*WORKING, "crisis"], "closed", "closure_reason_fits", "reports_filed"),
    _m("withdraw_consent", [*ACTIVE, "crisis", "aftercare"], WITHDRAWAL),
    _m("start_aftercare", ["closed"], "aftercare", "aftercare_justified"),
    _m("complete_aftercare", ["aftercare"], "closed"),
    _m("reopen", ["closed", "aftercare"], "intake", "reopenable"),
    _m("assign", [*OPEN, "aftercare"], None),
    _m("record_crisis_factor", OPEN, None),
    _m("record_intake_findings", ["intake", "screening"], None),
    _m("record_consent", [*OPEN, "aftercare"], None, "valid_consent_giver"),
    _m("invoke_override", OPEN, None, "ground_enabled", "statutory_subject"),
    _m("confirm_override", OPEN, None, "override_awaiting_confirmation"),
    _m("file_report", OPEN, None, "report_pending", "report_delivered"),
    _m("record_need", WORKING, None, "data_consent"),
    _m("record_strength", WORKING, None, "data_consent"),
    _m("set_goal", ["planning", "reassessment"], None, "service_consent"),
    _m("achieve_goal", ["service", "reassessment"], None),
    _m("schedule_conference", [*WORKING, "crisis"], None),
    _m("hold_conference", [*WORKING, "crisis"], None),
    _m(
        "link_service",
        ["planning", "service", "crisis"],
        None,
        "sharing_consent",
        "service_not_duplicated",
        "within_time_limit",
    ),
    _m("end_service", ["planning", "service", "reassessment", "crisis"], None),
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


# -- the rules ----------------------------------------------------------------------------------

Rule = Callable[[Case, c.Command, Policy, dt.datetime, Facts], str | None]
"""A guard of the reference model: ``None`` when it allows, else its refusal reason."""


def _lifting(case: Case, now: dt.datetime) -> bool:
    """An override lifts consent unless it awaited confirmation past its deadline."""
    o = case.statutory_override
    if o is None:
        return False
    return o.confirm_by is None or o.confirmed_at is not None or now <= o.confirm_by


def _consent(scope: ConsentScope) -> Rule:
    def rule(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
        live = [x for x in case.consents if x.scope == scope and x.withdrawn_at is None]
        return None if live or _lifting(case, now) else "consent_missing"

    return rule


def _sharing(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.LinkService)
    to = command.item.provider.id
    if any(
        x.scope == ConsentScope.SHARING and x.withdrawn_at is None and x.agency_id == to
        for x in case.consents
    ):
        return None
    return None if _lifting(case, now) else "consent_missing"


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - (1 if (on.month, on.day) < (born.month, born.day) else 0)


def _giver(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.RecordConsent)
    k = command.consent
    members = {m.member_id: m for m in case.household.members}
    if k.subject_id not in members or k.given_by not in members:
        return "consent_giver_invalid"
    subject = members[k.subject_id]
    minor = _age(subject.birth_date, k.given_at.date()) < policy.eligibility.age_of_majority
    if k.giver == ConsentGiver.PERSON:
        ok = k.given_by == k.subject_id and not minor
    else:
        ok = minor and subject.guardian_id == k.given_by
    return None if ok else "consent_giver_invalid"


def _ground(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.InvokeStatutoryOverride)
    rule = policy.statutory.get(command.ground)
    return None if rule is not None and rule.enabled else "ground_not_enabled"


def _unfiled(case: Case) -> list[MandatoryReport]:
    return [r for r in case.mandatory_reports if r.reference is None or r.delivered_at is None]


def _pending(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.FileMandatoryReport)
    return None if any(r.ground == command.ground for r in _unfiled(case)) else "no_pending_report"


def _delivered(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    return None if facts.report_delivered_at is not None else "report_not_delivered"


def _filed(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    return "mandatory_report_pending" if _unfiled(case) else None


def _protected(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    """Child abuse protects a minor, elder abuse an elder, domestic violence anyone (by default)."""
    assert isinstance(command, c.InvokeStatutoryOverride)
    rule = policy.statutory[command.ground]
    who = str(rule.applies_to)
    people = [m for m in case.household.members if command.member_id in (None, m.member_id)]
    ages = [_age(m.birth_date, now.date()) for m in people]
    if who == "minor":
        ok = any(a < policy.eligibility.age_of_majority for a in ages)
    elif who == "elder":
        ok = any(a >= policy.eligibility.elder_age for a in ages)
    else:
        ok = bool(people)
    return None if ok else "no_statutory_subject"


def _confirmable(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> str | None:
    o = case.statutory_override
    if o is None or o.confirm_by is None or o.confirmed_at is not None:
        return "no_override_to_confirm"
    return "override_lapsed" if now > o.confirm_by else None


def _no_duty(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    return "statutory_duty_active" if case.statutory_override else None


def _eligible(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    rules = policy.eligibility
    if rules.jurisdiction and case.household.region not in rules.jurisdiction:
        return "out_of_jurisdiction"
    if case.information_only:
        return "information_only"
    if case.counselling_only:
        return "counselling_only"
    if len(case.crisis_factors) < rules.min_crisis_factors:
        return "not_complex"
    if rules.target_child_age is not None:
        low, high = rules.target_child_age
        if all(not low <= _age(m.birth_date, now.date()) <= high for m in case.household.members):
            return "target_rule_unmet"
    return None


def _elsewhere(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    return "managed_elsewhere" if facts.managed_elsewhere_by else None


def _not_twice(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.LinkService)
    new = command.item
    running = [s for s in case.service_items if s.ended_at is None]
    if any((s.need_id, s.service) == (new.need_id, new.service) for s in running):
        return "service_already_linked"
    return "service_already_linked" if facts.service_linked_elsewhere_by else None


def _limit(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.LinkService)
    item = command.item
    days = policy.time_limits.service_item_max_days
    too_long = item.time_limit is not None and item.time_limit > item.start + dt.timedelta(days=days)
    return "time_limit_exceeds_policy" if too_long else None


def _recorded(attr: str, reason: str) -> Rule:
    def rule(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
        return None if len(getattr(case, attr)) > 0 else reason

    return rule


def _closure(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.Close)
    success = command.reason in (ClosureReason.GOALS_MET, ClosureReason.SELF_RELIANT)
    if success and case.state.value not in ("service", "reassessment"):
        return "closure_reason_not_allowed"
    live_service = [
        x for x in case.consents if x.scope == ConsentScope.SERVICE_PROVISION and x.withdrawn_at is None
    ]
    if command.reason == ClosureReason.CONSENT_WITHDRAWN and live_service:
        return "closure_reason_not_allowed"
    return None


def _aftercare(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    assert isinstance(command, c.StartAftercare)
    gone = (ClosureReason.DEATH, ClosureReason.MOVED_AWAY, ClosureReason.TRANSFERRED)
    if case.closure is not None and case.closure.reason in gone:
        return "aftercare_not_applicable"
    return None if command.justification.strip() else "aftercare_not_justified"


def _reopen(case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts) -> str | None:
    died = case.closure is not None and case.closure.reason == ClosureReason.DEATH
    return "closed_by_death" if died else None


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
    "crisis_factors_recorded": _recorded("crisis_factors", "no_crisis_factors"),
    "needs_recorded": _recorded("needs", "no_needs_recorded"),
    "plan_has_goals": _recorded("goals", "no_goals"),
    "closure_reason_fits": _closure,
    "aftercare_justified": _aftercare,
    "reopenable": _reopen,
}


@frozen
class Prediction:
    applies: bool
    """False: the event does not apply to the case's stage at all."""
    refused_by: tuple[str, str] | None = None
    """``(guard, reason)`` of the first guard that refuses."""
    dest: str | None = None
    """The stage after an accepted command."""


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


def _who(case: Case, command: c.Command, policy: Policy, actor: Actor) -> str | None:
    """Who may lift consent, and confirm that it was lifted, is the policy's: the refusal reason."""
    if isinstance(command, c.InvokeStatutoryOverride):
        rule = policy.statutory.get(command.ground)
        if rule is not None and rule.enabled and actor.role not in rule.invoked_by:
            return "role_may_not_invoke"
    if isinstance(command, c.ConfirmStatutoryOverride) and case.statutory_override is not None:
        o = case.statutory_override
        rule = policy.statutory.get(o.ground)
        if rule is not None and actor.role not in rule.confirmed_by:
            return "role_may_not_confirm"
        if rule is not None and actor.id == o.actor_id:
            return "same_person"
    return None


def predict(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts, actor: Actor
) -> Prediction:
    """What the rules say about ``command`` for ``case`` (a referentially valid command)."""
    move = _BY_KEY.get((case.state.value, command.event))
    if move is None:
        return Prediction(False)
    who = _who(case, command, policy, actor)
    if who is not None:
        return Prediction(True, ("statutory_actor", who))
    for name in move.guards:
        reason = RULES[name](case, command, policy, now, facts)
        if reason is not None:
            return Prediction(True, (name, reason))
    if move.dest == RESUME:
        dest = case.resume_state.value if case.resume_state is not None else "?"
    elif move.dest == WITHDRAWAL:
        dest = _withdrawal_dest(case, command)
    else:
        dest = move.dest or case.state.value
    return Prediction(True, None, dest)
