"""The functional core: :func:`decide` and :func:`apply`, pure functions of their arguments.

``decide(case, command, policy, now, actor=...)`` either returns a :class:`Decision` (the events
to record and the case after them) or raises: :class:`~casemgmt_core.UnknownCommand` when the
command does not apply to the case's state, :class:`~casemgmt_core.TransitionRefused` when a guard
refuses, :class:`~casemgmt_core.InvalidData` when the command refers to something that is not
there. It reads no clock, store or registry: the service layer gathers those and passes them in,
so simulation and production run the very same rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import NamedTuple

import attrs
from attrs import evolve

from . import commands as c
from ._validation import DATE_MAX, MAX_LINE, check_identifier, check_instance, check_text, shown
from .errors import REDACTED, InvalidData, TransitionRefused, UnknownCommand
from .events import Event
from .guards import (
    APPROVAL_STEPS,
    NO_FACTS,
    Facts,
    Reason,
    Verdict,
    case_time_limit,
    eligibility_failures,
    relinked_from,
    service_limit,
)
from .lifecycle import INITIAL_STATE, TABLE, CompiledTransition, allowed_events
from .model import (
    REFERRING_BODY_CHANNELS,
    Actor,
    ApprovalStatus,
    ApprovalStep,
    Case,
    CaseState,
    ClosureReason,
    ConsentScope,
    EpisodeRef,
    Goal,
    Household,
    JournalEntry,
    Member,
    ScreeningReason,
)
from .policy import Policy

__all__ = ["CLOCK_SKEW", "Decision", "PlanVersion", "apply", "decide", "journal", "plan_versions", "replay"]

#: How far into the future a recorded fact (a referral, a consent) may be dated, to allow for
#: clocks that differ a little between the device that recorded it and the server.
CLOCK_SKEW = dt.timedelta(minutes=5)
#: How far ahead a plan may be dated (a service item's start, a conference).
PLANNING_HORIZON = dt.timedelta(days=366)
_NOW_MIN = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_NOW_MAX = dt.datetime(DATE_MAX.year - 100, 1, 1, tzinfo=dt.UTC)


class Decision(NamedTuple):
    """What :func:`decide` accepted: the events to record, the case after them, and the verdicts
    of the guards that allowed it (kept for audit and coverage)."""

    case: Case
    events: tuple[Event, ...]
    verdicts: tuple[Verdict, ...] = ()


def decide(
    case: Case | None,
    command: c.Command,
    policy: Policy,
    now: dt.datetime,
    *,
    actor: Actor,
    facts: Facts = NO_FACTS,
    note: str = "",
    correlation_id: str | None = None,
) -> Decision:
    """Decide ``command`` against ``case`` at ``now`` (timezone-aware) under ``policy``."""
    if not isinstance(command, c.Command):
        raise InvalidData(
            f"must be a command, not {type(command).__name__}", field="command", allowed="a Command"
        )
    if type(now) is not dt.datetime or now.tzinfo is None or not _NOW_MIN <= now < _NOW_MAX:
        raise InvalidData(
            "must be a timezone-aware datetime of this era",
            field="now",
            allowed=f"an aware datetime from {_NOW_MIN.year} to {_NOW_MAX.year}",
            value=shown(now),
        )
    if type(actor) is not Actor and not isinstance(actor, Actor):
        raise InvalidData(f"must be an Actor, not {type(actor).__name__}", field="actor", allowed="an Actor")
    if note:
        check_text(note, "note", limit=MAX_LINE)
    if correlation_id is not None:
        check_identifier(correlation_id, "correlation_id")
    if type(facts) is not Facts or type(policy) is not Policy:
        _check_context(policy, facts)
    if isinstance(command, c.OpenCase):
        if case is not None:
            raise UnknownCommand(
                case_id=case.case_id,
                state=case.state.value,
                event="open",
                allowed=allowed_events(case.state),
            )
        return _open(command, policy, now, actor, facts, note, correlation_id)
    if case is None:
        raise InvalidData(f"{command.event!r} needs an existing case", field="case")
    if type(case) is not Case:
        raise InvalidData(f"must be a Case, not {type(case).__name__}", field="case", allowed="a Case")
    step = _STEPS.get((case.state, command.event))
    if step is None:
        transition = _select(case, command)  # raises UnknownCommand, or picks a branch
        check, complete = _CHECKS.get(type(command)), _COMPLETIONS.get(type(command))
    else:
        transition, check, complete = step
    if check is not None:
        check(case, command, policy, now, actor)
    verdicts: tuple[Verdict, ...] = ()
    legal_basis = None
    if transition.guards:
        verdicts = tuple([guard(case, command, policy, now, facts) for guard in transition.guards])
        for verdict in verdicts:
            if not verdict.allowed:
                raise _refused(case, command, verdict)
        if case.statutory_override is not None:
            legal_basis = _legal_basis(case, verdicts)
    completed = complete(case, command, policy, now, facts) if complete is not None else command
    if type(completed) is c.InvokeStatutoryOverride:
        legal_basis = completed.legal_basis
    if isinstance(command, _APPROVED_STEPS):
        completed = _with_approval_used(completed, command, verdicts)
    reopening = type(command) is c.Reopen
    event = Event(
        case.case_id,
        case.version + 1,
        command.event,
        case.state,
        transition.dest or case.state,
        completed,
        actor.id,
        actor.role,
        now,
        note,
        legal_basis,
        correlation_id,
        case.episode + 1 if reopening else case.episode,
        EpisodeRef(case.case_id, case.episode) if reopening else case.previous_episode,
    )
    return Decision(_advance(case, event), (event,), verdicts)


#: Commands that may use an approval (their ``approval_id`` is the approval used).
_APPROVED_STEPS = tuple(c.COMMAND_TYPES[event] for event in APPROVAL_STEPS)


def _with_approval_used(completed: c.Command, command: c.Command, verdicts: tuple[Verdict, ...]) -> c.Command:
    """The command naming the approval a guard allowed it with; a caller may name only that one."""
    used = next((v.subject for v in verdicts if v.reason is Reason.APPROVED), None)
    if used is not None:
        return evolve(completed, **{"approval_id": used})
    named = getattr(command, "approval_id", None)
    if named is not None:
        raise InvalidData(
            "names an approval this step does not need (an approval is used only where the policy "
            "or the rule asks for one)",
            field="approval_id",
            allowed="None",
            value=shown(named),
        )
    return completed


def _select(case: Case, command: c.Command) -> CompiledTransition:
    candidates = TABLE.get((case.state, command.event))
    if candidates is None:
        raise UnknownCommand(
            case_id=case.case_id,
            state=case.state.value,
            event=command.event,
            allowed=allowed_events(case.state),
        )
    for t in candidates:
        if t.branch is None or t.branch(case, command):
            return t
    raise AssertionError(f"lifecycle: no branch of {command.event} from {case.state} matched")


def _refused(case: Case, command: c.Command, verdict: Verdict) -> TransitionRefused:
    return TransitionRefused(
        case_id=case.case_id,
        state=case.state.value,
        event=command.event,
        guard=verdict.guard,
        reason=verdict.reason.value,
        message=verdict.message,
    )


def _legal_basis(case: Case, verdicts: Iterable[Verdict]) -> str | None:
    """The statutory basis, where it (not consent) is what allowed the step."""
    override = case.statutory_override
    if override is not None and any(v.reason is Reason.STATUTORY_OVERRIDE for v in verdicts):
        return override.legal_basis
    return None


def _open(
    command: c.OpenCase,
    policy: Policy,
    now: dt.datetime,
    actor: Actor,
    facts: Facts,
    note: str,
    correlation_id: str | None,
) -> Decision:
    _check_household(command.household, policy, now)
    if command.previous_episode is not None:
        raise InvalidData(
            "is found in the household's earlier cases, not given by the caller",
            field="previous_episode",
            allowed="None",
        )
    previous = facts.previous_case
    if previous is not None:
        if previous.closure is not None and previous.closure.reason is ClosureReason.DEATH:
            raise TransitionRefused(
                case_id=command.case_id,
                state="",
                event="open",
                guard="reopenable",
                reason=Reason.CLOSED_BY_DEATH.value,
                message=f"the household's case {previous.case_id!r} was closed on the client's death; "
                "open a case for the surviving members as a new household instead",
            )
        command = evolve(command, previous_episode=EpisodeRef(previous.case_id, previous.episode))
    referral = command.referral
    _not_future(referral.received_at, now, "referral.received_at")
    if referral.channel in REFERRING_BODY_CHANNELS and referral.referring_agency is None:
        raise InvalidData(
            f"a referral by {referral.channel.value} must name the referring agency",
            field="referral.referring_agency",
        )
    opened = Event(
        command.case_id,
        1,
        "open",
        None,
        INITIAL_STATE,
        command,
        actor.id,
        actor.role,
        now,
        note,
        None,
        correlation_id,
        1,
        command.previous_episode,
    )
    case = apply(None, opened)
    if facts.managed_elsewhere_by is None:
        return Decision(case, (opened,))
    # Duplicate service: the referral is recorded, and the case goes straight to the agency
    # that already manages the household.
    handed = decide(
        case,
        c.HandOver(facts.managed_elsewhere_by),
        policy,
        now,
        actor=actor,
        facts=facts,
        note=note or f"managed elsewhere: {facts.managed_elsewhere_by.id}",
        correlation_id=correlation_id,
    )
    return Decision(handed.case, (opened, *handed.events), handed.verdicts)


# Completions fill in what the policy derives, so that the recorded event replays without it.


def _complete_override(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.InvokeStatutoryOverride)
    rule = policy.statutory_rule(command.ground)
    assert rule is not None  # the ground_enabled guard has run
    confirm = rule.confirmation_within_hours
    return evolve(
        command,
        legal_basis=rule.legal_basis,
        authority=rule.authority,
        report_due_at=now + dt.timedelta(hours=rule.report_within_hours),
        confirm_by=None if confirm is None else now + dt.timedelta(hours=confirm),
    )


def _complete_file_report(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.FileMandatoryReport)
    return evolve(command, delivered_at=facts.report_delivered_at)


def _complete_link(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.LinkService)
    item = command.item
    relinked = relinked_from(case, item, policy)
    if relinked is not None:
        # It continues the earlier item: one more extension, from the end of its window.
        earlier, window = relinked
        limit = item.time_limit or policy.deadline(
            max(window, item.start), policy.time_limits.service_extension
        )
        return evolve(
            command,
            item=evolve(item, time_limit=limit, extensions=earlier.extensions + 1, extended_at=item.start),
        )
    if item.time_limit is not None:
        return command
    limit = policy.deadline(item.start, policy.time_limits.service_item_max)
    return evolve(command, item=evolve(item, time_limit=limit))


def _complete_aftercare(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.StartAftercare)
    if command.until is not None:
        return command
    return evolve(command, until=policy.deadline(now, policy.time_limits.aftercare))


def _service_limit(case: Case, item_id: str, policy: Policy) -> dt.datetime:
    item = case.service_item(item_id)
    assert item is not None
    return service_limit(item, policy)


def _complete_extend_service(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.ExtendService)
    if command.until is not None:
        return command
    current = _service_limit(case, command.item_id, policy)
    return evolve(command, until=policy.deadline(max(current, now), policy.time_limits.service_extension))


def _complete_extend_case(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.ExtendCase)
    if command.until is not None:
        return command
    current = case_time_limit(case, policy)
    return evolve(command, until=policy.deadline(max(current, now), policy.time_limits.case_extension))


def _screening_reason(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> ScreeningReason | None:
    """The reason an exit records when the caller gives none: what the eligibility rules find."""
    if isinstance(command, c.HandOver):
        managing = facts.managed_elsewhere_by
        if managing is not None and managing.id == command.agency.id:
            return ScreeningReason.MANAGED_ELSEWHERE
        return ScreeningReason.COMPETENT_AGENCY
    failures = eligibility_failures(case, policy, now)
    if isinstance(command, c.ReferToCounselling) and ScreeningReason.COUNSELLING_ONLY in failures:
        return ScreeningReason.COUNSELLING_ONLY
    return failures[0] if failures else None


def _complete_exit(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.Redirect | c.ReferToCounselling | c.Decline | c.HandOver)
    if command.reason is not None:
        return command
    return evolve(command, reason=_screening_reason(case, command, policy, now, facts))


def _complete_approve_plan(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.ApprovePlan)
    return evolve(command, version=case.plan_version + 1, goals=case.current_goals)


def _complete_reopen(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.Reopen)
    scopes = policy.episodes.reconfirm_consents
    return evolve(command, lapsed_consents=tuple(x.consent_id for x in case.consents if x.scope in scopes))


def _complete_transfer(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, facts: Facts
) -> c.Command:
    assert isinstance(command, c.TransferCase)
    return evolve(command, from_caseworker_id=case.caseworker_id, from_team_id=case.team_id)


Completion = Callable[[Case, c.Command, Policy, dt.datetime, Facts], c.Command]

_COMPLETIONS: dict[type[c.Command], Completion] = {
    c.InvokeStatutoryOverride: _complete_override,
    c.FileMandatoryReport: _complete_file_report,
    c.LinkService: _complete_link,
    c.StartAftercare: _complete_aftercare,
    c.ExtendService: _complete_extend_service,
    c.ExtendCase: _complete_extend_case,
    c.Redirect: _complete_exit,
    c.ReferToCounselling: _complete_exit,
    c.Decline: _complete_exit,
    c.HandOver: _complete_exit,
    c.ApprovePlan: _complete_approve_plan,
    c.Reopen: _complete_reopen,
    c.TransferCase: _complete_transfer,
}


def apply(case: Case | None, event: Event) -> Case:
    """The case after ``event``. ``apply(None, opening_event)`` creates the case."""
    payload = event.payload
    if isinstance(payload, c.OpenCase):
        if case is not None or event.version != 1:
            raise InvalidData("an opening event must be the first event of its case", field="event")
        at = event.occurred_at
        # Its parts were validated when the command was built (or loaded): skip Case's validators.
        new = _new(Case)
        _set(
            new,
            "__dict__",
            _CASE_DEFAULTS
            | {
                "case_id": payload.case_id,
                "household": payload.household,
                "referral": payload.referral,
                "state": event.target,
                "opened_at": at,
                "state_entered_at": at,
                "episode_started_at": at,
                "previous_episode": payload.previous_episode,
                "version": 1,
            },
        )
        return new
    if case is None:
        raise InvalidData(f"{event.event!r} event before the case was opened", field="event")
    if event.version != case.version + 1 or event.case_id != case.case_id:
        raise InvalidData(
            f"event {event.event_id} does not follow version {case.version} of {case.case_id}",
            field="event.version",
        )
    return _advance(case, event)


def _advance(case: Case, event: Event) -> Case:
    """``apply`` for an event known to follow ``case`` (decide's own)."""
    changes = event.payload.changes(case, event.occurred_at, event.actor_id)
    target = event.target
    if target is not case.state:
        changes["state"] = target
        changes["state_entered_at"] = event.occurred_at
        if target is CaseState.CLOSED and event.event == "withdraw_consent":
            changes.update(_closed_by_withdrawal(case, event.occurred_at))
    changes["version"] = event.version
    # attrs.evolve re-runs __init__ over every field; a Case is a plain frozen record whose
    # changes come from this module, so copying its __dict__ is equivalent and far cheaper.
    new = _new(Case)
    _set(new, "__dict__", case.__dict__ | changes)
    return new


_new = object.__new__
_set = object.__setattr__
_CASE_DEFAULTS = {a.name: a.default for a in attrs.fields(Case) if a.default is not attrs.NOTHING}


def _closed_by_withdrawal(case: Case, at: dt.datetime) -> dict[str, object]:
    return c.wind_down(case, at, ClosureReason.CONSENT_WITHDRAWN)


def journal(events: Iterable[Event]) -> list[JournalEntry]:
    """The case's journal (findings, changed needs, observed changes, roles, contacts) from its events."""
    return [
        JournalEntry(p.kind, p.text, e.occurred_at, e.actor_id, p.member_id)
        for e in events
        if isinstance(p := e.payload, c.RecordJournal)
    ]


class PlanVersion(NamedTuple):
    """One approved version of a case's plan, and what changed since the version before."""

    version: int
    episode: int
    approved_at: dt.datetime
    approved_by: str
    goals: tuple[Goal, ...]
    added: tuple[str, ...]
    """Goal ids new in this version."""
    revised: tuple[str, ...]
    """Goal ids whose wording or needs changed."""
    dropped: tuple[str, ...]
    """Goal ids in the version before and no longer in the plan."""


def plan_versions(events: Iterable[Event]) -> list[PlanVersion]:
    """Every approved plan of a case, oldest first, from its events (``approve_plan``)."""
    out: list[PlanVersion] = []
    before: dict[str, Goal] = {}
    episode = 0
    for e in events:
        p = e.payload
        if not isinstance(p, c.ApprovePlan):
            continue
        if e.episode != episode:  # a new episode plans from scratch
            before, episode = {}, e.episode
        now = {g.goal_id: g for g in p.goals}
        out.append(
            PlanVersion(
                p.version if p.version is not None else len(out) + 1,
                e.episode,
                e.occurred_at,
                e.actor_id,
                p.goals,
                tuple(k for k in now if k not in before),
                tuple(
                    k
                    for k, g in now.items()
                    if k in before
                    and (g.description, g.need_ids) != (before[k].description, before[k].need_ids)
                ),
                tuple(k for k in before if k not in now),
            )
        )
        before = now
    return out


def replay(events: Iterable[Event]) -> Case:
    """Rebuild a case from its events. Equals the stored case, or the record was tampered with."""
    case: Case | None = None
    for event in events:
        case = apply(case, event)
    if case is None:
        raise InvalidData("no events to replay", field="events")
    return case


# -- checks of what a command refers to, and of what depends on the case and the clock ---------
#
# Fields are validated when their objects are built (see casemgmt_core._validation); these checks
# need the case, the policy or the clock. Each raises InvalidData naming the field.


def _check_context(policy: object, facts: object) -> None:
    check_instance(policy, Policy, "policy")
    check_instance(facts, Facts, "facts")


def _not_future(value: dt.datetime, now: dt.datetime, name: str) -> None:
    if value > now + CLOCK_SKEW:
        raise InvalidData(
            "is in the future",
            field=name,
            allowed=f"at most {int(CLOCK_SKEW.total_seconds() // 60)} minutes after now ({now.isoformat()})",
            value=value.isoformat(),
        )


def _not_before(value: dt.datetime, earliest: dt.datetime, name: str, what: str) -> None:
    if value < earliest:
        raise InvalidData(
            f"is before {what}",
            field=name,
            allowed=f"{earliest.isoformat()} or later",
            value=value.isoformat(),
        )


def _within_horizon(value: dt.datetime, now: dt.datetime, name: str) -> None:
    if value > now + PLANNING_HORIZON:
        raise InvalidData(
            "is too far ahead",
            field=name,
            allowed=f"within {PLANNING_HORIZON.days} days of now",
            value=value.isoformat(),
        )


def _check_household(household: Household, policy: Policy, now: dt.datetime) -> None:
    members = {m.member_id: m for m in household.members}
    if not members:
        raise InvalidData("a household needs at least one member", field="household.members")
    if len(members) != len(household.members):
        raise InvalidData("member ids must be unique", field="household.members.member_id")
    today = now.date()
    majority = policy.eligibility.age_of_majority
    for m in household.members:
        if m.birth_date > today:
            raise InvalidData(
                f"member {m.member_id!r} is born after today",
                field="household.members.birth_date",
                allowed=f"{today.isoformat()} or earlier",
                value=REDACTED,
            )
    for m in household.members:
        if m.guardian_id is None:
            continue
        guardian = members.get(m.guardian_id)
        if guardian is None:
            raise InvalidData(
                f"guardian {m.guardian_id!r} of {m.member_id!r} is not a member",
                field="household.members.guardian_id",
                allowed=", ".join(members),
            )
        if guardian is m:
            raise InvalidData(
                f"{m.member_id!r} cannot be their own guardian", field="household.members.guardian_id"
            )
        if guardian.age_on(today) < majority:
            raise InvalidData(
                f"guardian {guardian.member_id!r} of {m.member_id!r} is not an adult",
                field="household.members.guardian_id",
                allowed=f"another member aged {majority} or over",
            )
        seen = {m.member_id}
        walk: Member | None = guardian
        while walk is not None and walk.guardian_id is not None:
            if walk.member_id in seen:
                raise InvalidData(
                    f"the guardians of {m.member_id!r} form a cycle", field="household.members.guardian_id"
                )
            seen.add(walk.member_id)
            walk = members.get(walk.guardian_id)


def _missing(what: str, key: str, known: Iterable[str], field: str) -> InvalidData:
    return InvalidData(f"no {what} {key!r} in this case", field=field, allowed=", ".join(known) or "none yet")


def _check_record_consent(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.RecordConsent)
    consent = command.consent
    _not_future(consent.given_at, now, "consent.given_at")
    _not_before(consent.given_at, case.referral.received_at, "consent.given_at", "the referral")
    if any(x.consent_id == consent.consent_id for x in case.consents):
        raise InvalidData(f"consent {consent.consent_id!r} is already recorded", field="consent.consent_id")
    if (consent.scope is ConsentScope.SHARING) != (consent.agency_id is not None):
        raise InvalidData(
            "a sharing consent names exactly one agency; other scopes name none",
            field="consent.agency_id",
        )
    if consent.withdrawn_at is not None:
        raise InvalidData("record the consent first, then withdraw it", field="consent.withdrawn_at")


def _check_withdraw_consent(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.WithdrawConsent)
    active = [x.consent_id for x in case.consents if x.active]
    if command.consent_id not in active:
        raise _missing("active consent", command.consent_id, active, "consent_id")


def _check_record_need(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.RecordNeed)
    if case.need(command.need.need_id) is not None:
        raise InvalidData(f"need {command.need.need_id!r} is already recorded", field="need.need_id")


def _check_record_strength(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.RecordStrength)
    member_id = command.strength.member_id
    if member_id is not None and case.household.member(member_id) is None:
        raise _missing(
            "member", member_id, (m.member_id for m in case.household.members), "strength.member_id"
        )


def _check_set_goal(case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor) -> None:
    assert isinstance(command, c.SetGoal)
    if any(g.goal_id == command.goal.goal_id for g in case.goals):
        raise InvalidData(f"goal {command.goal.goal_id!r} is already set", field="goal.goal_id")
    if command.goal.achieved_at is not None:
        raise InvalidData("set the goal first, then achieve it (achieve_goal)", field="goal.achieved_at")
    for need_id in command.goal.need_ids:
        if case.need(need_id) is None:
            raise _missing("need", need_id, (n.need_id for n in case.needs), "goal.need_ids")


def _check_achieve_goal(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.AchieveGoal)
    open_goals = [g.goal_id for g in case.goals if g.open]
    if command.goal_id not in open_goals:
        raise _missing("open goal", command.goal_id, open_goals, "goal_id")


def _check_link_service(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.LinkService)
    item = command.item
    if case.service_item(item.item_id) is not None:
        raise InvalidData(f"service item {item.item_id!r} is already linked", field="item.item_id")
    if case.need(item.need_id) is None:
        raise _missing("need", item.need_id, (n.need_id for n in case.needs), "item.need_id")
    _not_before(item.start, case.referral.received_at, "item.start", "the referral")
    _within_horizon(item.start, now, "item.start")
    if item.time_limit is not None and item.time_limit <= item.start:
        raise InvalidData(
            "must be after the start", field="item.time_limit", allowed=f"after {item.start.isoformat()}"
        )
    if item.ended_at is not None:
        raise InvalidData("link the item first, then end it (end_service)", field="item.ended_at")
    if item.extensions or item.extended_at is not None:
        raise InvalidData(
            "a new item has not been extended", field="item.extensions", allowed="0 and no extended_at"
        )
    _check_named_approval(case, command.approval_id, ApprovalStep.SERVICE_EXTENSION)


def _check_end_service(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.EndService)
    running = [s.item_id for s in case.service_items if s.active]
    if command.item_id not in running:
        raise _missing("running service item", command.item_id, running, "item_id")


def _check_schedule_conference(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.ScheduleConference)
    conference = command.conference
    if any(x.conference_id == conference.conference_id for x in case.conferences):
        raise InvalidData("conference id already used", field="conference.conference_id")
    _not_before(
        conference.scheduled_for, case.referral.received_at, "conference.scheduled_for", "the referral"
    )
    _within_horizon(conference.scheduled_for, now, "conference.scheduled_for")
    if conference.held:
        raise InvalidData(
            "schedule the conference first, then record it (hold_conference)", field="conference.held"
        )


def _check_record_journal(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.RecordJournal)
    _required_text(command.text, "text")
    if command.member_id is not None and case.household.member(command.member_id) is None:
        raise _missing(
            "member", command.member_id, (m.member_id for m in case.household.members), "member_id"
        )


def _check_file_mandatory_report(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.FileMandatoryReport)
    if not command.reference.strip():
        raise InvalidData("the authority's reference is required", field="reference")
    if command.delivered_at is not None:
        raise InvalidData(
            "is filled in from the outbox's confirmation of delivery, not by the caller",
            field="delivered_at",
            allowed="None",
        )


def _check_invoke_override(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.InvokeStatutoryOverride)
    if command.report_due_at is not None or command.confirm_by is not None:
        raise InvalidData(
            "deadlines come from the policy, not from the caller",
            field="report_due_at" if command.report_due_at is not None else "confirm_by",
            allowed="None",
        )
    rule = policy.statutory_rule(command.ground)
    if rule is None:
        return  # the ground_enabled guard refuses with its reason
    # The legal basis and the authority are the law's, as the policy states them: a caller may
    # repeat them but never replace them (the report would go to whoever the caller named).
    if command.legal_basis and command.legal_basis != rule.legal_basis:
        raise InvalidData(
            "differs from the policy's legal basis for this ground",
            field="legal_basis",
            allowed=f"empty, or {rule.legal_basis!r}",
            value=shown(command.legal_basis),
        )
    if command.authority and command.authority != rule.authority:
        raise InvalidData(
            "differs from the policy's authority for this ground",
            field="authority",
            allowed=f"empty, or {rule.authority!r}",
            value=shown(command.authority),
        )
    if command.member_id is not None and case.household.member(command.member_id) is None:
        raise _missing(
            "member", command.member_id, (m.member_id for m in case.household.members), "member_id"
        )
    if actor.role not in rule.invoked_by:
        raise _actor_refused(
            case,
            command,
            Reason.ROLE_MAY_NOT_INVOKE,
            f"role {actor.role!r} may not invoke the statutory override on {command.ground.value!r} "
            f"(roles allowed by the policy: {', '.join(sorted(rule.invoked_by))})",
        )


def _check_confirm_override(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.ConfirmStatutoryOverride)
    override = case.statutory_override
    rule = None if override is None else policy.statutory.get(override.ground)
    if override is None or rule is None:
        return  # the override_awaiting_confirmation guard refuses with its reason
    if actor.role not in rule.confirmed_by:
        raise _actor_refused(
            case,
            command,
            Reason.ROLE_MAY_NOT_CONFIRM,
            f"role {actor.role!r} may not confirm a statutory override on {override.ground.value!r} "
            f"(roles allowed by the policy: {', '.join(sorted(rule.confirmed_by))})",
        )
    if actor.id == override.actor_id:
        raise _actor_refused(
            case,
            command,
            Reason.SAME_PERSON,
            "the override must be confirmed by a second person, not by the one who invoked it",
        )


def _actor_refused(case: Case, command: c.Command, reason: Reason, message: str) -> TransitionRefused:
    return _refused_actor(case, command, "statutory_actor", reason, message)


def _refused_actor(
    case: Case, command: c.Command, guard: str, reason: Reason, message: str
) -> TransitionRefused:
    return TransitionRefused(
        case_id=case.case_id,
        state=case.state.value,
        event=command.event,
        guard=guard,
        reason=reason.value,
        message=message,
    )


def _check_start_aftercare(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.StartAftercare)
    _check_named_approval(case, command.approval_id, ApprovalStep.AFTERCARE)
    if command.until is not None:
        if command.until <= now:
            raise InvalidData(
                "after-care must end after it starts", field="until", allowed=f"after {now.isoformat()}"
            )
        _within_horizon(command.until, now, "until")


def _check_hold_conference(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.HoldConference)
    pending = [x.conference_id for x in case.conferences if not x.held]
    if command.conference_id not in pending:
        raise _missing("conference not yet held", command.conference_id, pending, "conference_id")


def _required_text(value: str, name: str) -> None:
    if not value.strip():
        raise InvalidData("must not be empty", field=name)


def _no_caller_value(value: object, name: str, why: str) -> None:
    if value is not None and value != ():
        raise InvalidData(why, field=name, allowed="None (decide fills it in)", value=shown(value))


def _check_screening_exit(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.Redirect | c.ReferToCounselling | c.Decline | c.HandOver)
    allowed = ", ".join(r.value for r in ScreeningReason if r is not ScreeningReason.ELIGIBLE)
    reason = command.reason
    if reason is ScreeningReason.ELIGIBLE:
        raise InvalidData("is the reason for selecting, not for an exit", field="reason", allowed=allowed)
    if isinstance(command, c.HandOver):
        return
    failures = eligibility_failures(case, policy, now)
    if reason is None:
        if not failures:
            raise InvalidData(
                "the household meets the eligibility rules: say why it leaves screening",
                field="reason",
                allowed=allowed,
            )
        return
    # A reason the rules can check must hold: the record says what was true.
    if reason in _CHECKABLE and reason not in failures:
        raise InvalidData(
            f"does not hold for this case (the eligibility rules find: "
            f"{', '.join(failures) or 'none failing'})",
            field="reason",
            allowed=", ".join(failures) if failures else allowed,
            value=reason.value,
        )


_CHECKABLE = frozenset(
    {
        ScreeningReason.INFORMATION_ONLY,
        ScreeningReason.COUNSELLING_ONLY,
        ScreeningReason.NOT_COMPLEX,
        ScreeningReason.OUT_OF_JURISDICTION,
        ScreeningReason.TARGET_RULE_UNMET,
        ScreeningReason.NO_CONSENT,
    }
)


def _check_named_approval(case: Case, approval_id: str | None, step: ApprovalStep) -> None:
    if approval_id is None:
        return
    found = case.approval(approval_id)
    if found is None or found.step is not step:
        known = [a.approval_id for a in case.approvals if a.step is step]
        raise _missing(f"{step.value} approval", approval_id, known, "approval_id")


def _check_step_approval(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    _check_named_approval(case, getattr(command, "approval_id", None), APPROVAL_STEPS[command.event])


def _check_approve_plan(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.ApprovePlan)
    known = [x.conference_id for x in case.conferences]
    if command.conference_id is not None and command.conference_id not in known:
        raise _missing("conference", command.conference_id, known, "conference_id")
    _no_caller_value(command.version, "version", "is the plan's next version number, counted by the case")
    _no_caller_value(command.goals, "goals", "are the plan's goals as the case holds them")
    _check_step_approval(case, command, policy, now, actor)


def _check_close(case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor) -> None:
    _check_step_approval(case, command, policy, now, actor)


def _check_reopen(case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor) -> None:
    assert isinstance(command, c.Reopen)
    _required_text(command.grounds, "grounds")
    _no_caller_value(command.lapsed_consents, "lapsed_consents", "follow from the policy's episodes rules")


def _check_revise_goal(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.ReviseGoal)
    open_goals = [g.goal_id for g in case.goals if g.open]
    if command.goal_id not in open_goals:
        raise _missing("open goal", command.goal_id, open_goals, "goal_id")
    _required_text(command.description, "description")
    _required_text(command.reason, "reason")
    for need_id in command.need_ids:
        if case.need(need_id) is None:
            raise _missing("need", need_id, (n.need_id for n in case.needs), "need_ids")


def _check_drop_goal(case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor) -> None:
    assert isinstance(command, c.DropGoal)
    current = [g.goal_id for g in case.goals if g.dropped_at is None]
    if command.goal_id not in current:
        raise _missing("goal in the plan", command.goal_id, current, "goal_id")
    _required_text(command.reason, "reason")


def _check_extend_service(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.ExtendService)
    running = [s.item_id for s in case.service_items if s.active]
    if command.item_id not in running:
        raise _missing("running service item", command.item_id, running, "item_id")
    current = _service_limit(case, command.item_id, policy)
    _check_extension(case, command, current, now, "the item's", ApprovalStep.SERVICE_EXTENSION)


def _check_extension(
    case: Case,
    command: c.ExtendService | c.ExtendCase,
    current: dt.datetime,
    now: dt.datetime,
    whose: str,
    step: ApprovalStep,
) -> None:
    _required_text(command.reason, "reason")
    earliest = max(current, now)
    if command.until is not None and command.until <= earliest:
        raise InvalidData(
            f"must be after {whose} current limit and after now",
            field="until",
            allowed=f"after {earliest.isoformat()}",
        )
    _check_named_approval(case, command.approval_id, step)


def _check_extend_case(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.ExtendCase)
    _check_extension(
        case, command, case_time_limit(case, policy), now, "the case's", ApprovalStep.CASE_EXTENSION
    )


def _check_request_approval(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.RequestApproval)
    if case.approval(command.approval_id) is not None:
        raise InvalidData(f"approval {command.approval_id!r} is already requested", field="approval_id")
    if command.step is ApprovalStep.SERVICE_EXTENSION:
        items = [s.item_id for s in case.service_items]
        if command.subject not in items:
            raise _missing("service item", command.subject, items, "subject")
    elif command.subject:
        raise InvalidData(
            f"a {command.step.value} approval is about the case itself", field="subject", allowed="empty"
        )
    for a in case.approvals:
        if (a.step, a.subject, a.status) == (command.step, command.subject, ApprovalStatus.PENDING):
            raise InvalidData(
                f"the same approval is already pending as {a.approval_id!r}",
                field="step",
                value=command.step.value,
            )


def _check_decide_approval(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.Approve | c.Reject)
    if isinstance(command, c.Reject):
        _required_text(command.comment, "comment")
    held = [x.conference_id for x in case.conferences if x.held]
    if command.conference_id is not None and command.conference_id not in held:
        raise _missing("case conference that was held", command.conference_id, held, "conference_id")
    request = case.approval(command.approval_id)
    if request is None or request.status is not ApprovalStatus.PENDING:
        return  # the approval_pending guard refuses with its reason
    rule = policy.approval_rule(request.step)
    roles = rule.approved_by if rule is not None else frozenset({"supervisor"})
    if actor.role not in roles:
        raise _refused_actor(
            case,
            command,
            "approval_actor",
            Reason.ROLE_MAY_NOT_APPROVE,
            f"role {actor.role!r} may not decide a {request.step.value} approval "
            f"(roles allowed by the policy: {', '.join(sorted(roles))})",
        )
    if actor.id == request.requested_by:
        raise _refused_actor(
            case,
            command,
            "approval_actor",
            Reason.SAME_PERSON,
            "an approval is decided by someone other than the person who requested it",
        )
    if rule is not None and rule.by_conference and command.conference_id is None:
        raise _refused_actor(
            case,
            command,
            "approval_actor",
            Reason.CONFERENCE_REQUIRED,
            f"programme {policy.programme!r} has a case conference decide {request.step.value} "
            "approvals: name the conference that was held (conference_id)",
        )


def _check_transfer(case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor) -> None:
    assert isinstance(command, c.TransferCase)
    _required_text(command.note, "note")
    if command.caseworker_id is None and command.team_id is None:
        raise InvalidData("name the caseworker or the team taking the case", field="caseworker_id")
    _no_caller_value(command.from_caseworker_id, "from_caseworker_id", "is the case's current caseworker")
    _no_caller_value(command.from_team_id, "from_team_id", "is the case's current team")
    same_worker = command.caseworker_id in (None, case.caseworker_id)
    if same_worker and command.team_id in (None, case.team_id):
        raise InvalidData("the case is already with this caseworker and team", field="caseworker_id")


def _check_referral_declined(
    case: Case, command: c.Command, policy: Policy, now: dt.datetime, actor: Actor
) -> None:
    assert isinstance(command, c.ReferralDeclined)
    _required_text(command.reason, "reason")


Check = Callable[[Case, c.Command, Policy, dt.datetime, Actor], None]

_CHECKS: dict[type[c.Command], Check] = {
    c.HoldConference: _check_hold_conference,
    c.RecordConsent: _check_record_consent,
    c.WithdrawConsent: _check_withdraw_consent,
    c.RecordNeed: _check_record_need,
    c.RecordStrength: _check_record_strength,
    c.SetGoal: _check_set_goal,
    c.AchieveGoal: _check_achieve_goal,
    c.LinkService: _check_link_service,
    c.EndService: _check_end_service,
    c.ScheduleConference: _check_schedule_conference,
    c.ApprovePlan: _check_approve_plan,
    c.RecordJournal: _check_record_journal,
    c.FileMandatoryReport: _check_file_mandatory_report,
    c.InvokeStatutoryOverride: _check_invoke_override,
    c.ConfirmStatutoryOverride: _check_confirm_override,
    c.StartAftercare: _check_start_aftercare,
    c.Redirect: _check_screening_exit,
    c.ReferToCounselling: _check_screening_exit,
    c.Decline: _check_screening_exit,
    c.HandOver: _check_screening_exit,
    c.Close: _check_close,
    c.Reopen: _check_reopen,
    c.ReviseGoal: _check_revise_goal,
    c.DropGoal: _check_drop_goal,
    c.ExtendService: _check_extend_service,
    c.ExtendCase: _check_extend_case,
    c.RequestApproval: _check_request_approval,
    c.Approve: _check_decide_approval,
    c.Reject: _check_decide_approval,
    c.TransferCase: _check_transfer,
    c.ReferralDeclined: _check_referral_declined,
}


#: The hot path's single lookup: for each (state, event) with one candidate transition, the
#: transition with its reference check and completion. Branching events go through _select.
_STEPS: dict[tuple[CaseState, str], tuple[CompiledTransition, Check | None, Completion | None]] = {
    key: (candidates[0], _CHECKS.get(c.COMMAND_TYPES[key[1]]), _COMPLETIONS.get(c.COMMAND_TYPES[key[1]]))
    for key, candidates in TABLE.items()
    if len(candidates) == 1
}
