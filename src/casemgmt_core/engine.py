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

from attrs import evolve

from . import commands as c
from .errors import InvalidData, TransitionRefused, UnknownCommand
from .events import Event
from .guards import NO_FACTS, Facts, Reason, Verdict
from .lifecycle import INITIAL_STATE, TABLE, CompiledTransition, allowed_events
from .model import (
    REFERRING_BODY_CHANNELS,
    Actor,
    Case,
    CaseState,
    Closure,
    ClosureReason,
    ConsentScope,
    Household,
    JournalEntry,
)
from .policy import Policy

__all__ = ["Decision", "apply", "decide", "journal", "replay"]


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
    if now.tzinfo is None:
        raise InvalidData("must be timezone-aware", field="now", allowed="an aware datetime")
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
    step = _STEPS.get((case.state, command.event))
    if step is None:
        transition = _select(case, command)  # raises UnknownCommand, or picks a branch
        check, complete = _CHECKS.get(type(command)), _COMPLETIONS.get(type(command))
    else:
        transition, check, complete = step
    if check is not None:
        check(case, command)
    verdicts: tuple[Verdict, ...] = ()
    legal_basis = None
    if transition.guards:
        verdicts = tuple([guard(case, command, policy, now, facts) for guard in transition.guards])
        for verdict in verdicts:
            if not verdict.allowed:
                raise _refused(case, command, verdict)
        if case.statutory_override is not None:
            legal_basis = _legal_basis(case, verdicts)
    completed = complete(command, policy, now) if complete is not None else command
    if type(completed) is c.InvokeStatutoryOverride:
        legal_basis = completed.legal_basis
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
    )
    return Decision(_advance(case, event), (event,), verdicts)


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
    _check_household(command.household)
    referral = command.referral
    _aware(referral.received_at, "referral.received_at")
    if referral.channel in REFERRING_BODY_CHANNELS and referral.referring_agency is None:
        raise InvalidData(
            f"a referral by {referral.channel.value} must name the referring agency",
            field="referral.referring_agency",
        )
    if not command.case_id:
        raise InvalidData("must not be empty", field="case_id")
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


def _complete_override(command: c.Command, policy: Policy, now: dt.datetime) -> c.Command:
    assert isinstance(command, c.InvokeStatutoryOverride)
    rule = policy.statutory_rule(command.ground)
    assert rule is not None  # the ground_enabled guard has run
    return evolve(
        command,
        legal_basis=command.legal_basis or rule.legal_basis,
        authority=command.authority or rule.authority,
        report_due_at=now + dt.timedelta(hours=rule.report_within_hours),
    )


def _complete_link(command: c.Command, policy: Policy, now: dt.datetime) -> c.Command:
    assert isinstance(command, c.LinkService)
    if command.item.time_limit is not None:
        return command
    limit = command.item.start + dt.timedelta(days=policy.time_limits.service_item_max_days)
    return evolve(command, item=evolve(command.item, time_limit=limit))


def _complete_aftercare(command: c.Command, policy: Policy, now: dt.datetime) -> c.Command:
    assert isinstance(command, c.StartAftercare)
    if command.until is not None:
        return command
    return evolve(command, until=now + dt.timedelta(days=policy.time_limits.aftercare_days))


_COMPLETIONS: dict[type[c.Command], Callable[[c.Command, Policy, dt.datetime], c.Command]] = {
    c.InvokeStatutoryOverride: _complete_override,
    c.LinkService: _complete_link,
    c.StartAftercare: _complete_aftercare,
}


def apply(case: Case | None, event: Event) -> Case:
    """The case after ``event``. ``apply(None, opening_event)`` creates the case."""
    payload = event.payload
    if isinstance(payload, c.OpenCase):
        if case is not None or event.version != 1:
            raise InvalidData("an opening event must be the first event of its case", field="event")
        at = event.occurred_at
        return Case(
            case_id=payload.case_id,
            household=payload.household,
            referral=payload.referral,
            state=event.target,
            opened_at=at,
            state_entered_at=at,
            episode_started_at=at,
            version=1,
        )
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


def _closed_by_withdrawal(case: Case, at: dt.datetime) -> dict[str, object]:
    if case.aftercare is not None and case.aftercare.ended_at is None:
        return {"aftercare": evolve(case.aftercare, ended_at=at)}
    return {"closure": Closure(ClosureReason.CONSENT_WITHDRAWN, at), "resume_state": None}


def journal(events: Iterable[Event]) -> list[JournalEntry]:
    """The case's journal (findings, changed needs, observed changes, roles, contacts) from its events."""
    return [
        JournalEntry(p.kind, p.text, e.occurred_at, e.actor_id, p.member_id)
        for e in events
        if isinstance(p := e.payload, c.RecordJournal)
    ]


def replay(events: Iterable[Event]) -> Case:
    """Rebuild a case from its events. Equals the stored case, or the record was tampered with."""
    case: Case | None = None
    for event in events:
        case = apply(case, event)
    if case is None:
        raise InvalidData("no events to replay", field="events")
    return case


# -- reference checks: a command must refer to things that exist ------------------------------


def _aware(value: dt.datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidData("must be timezone-aware", field=name, allowed="an aware datetime")


def _check_household(household: Household) -> None:
    ids = [m.member_id for m in household.members]
    if not household.household_id:
        raise InvalidData("must not be empty", field="household.household_id")
    if not ids:
        raise InvalidData("a household needs at least one member", field="household.members")
    if len(set(ids)) != len(ids):
        raise InvalidData("member ids must be unique", field="household.members")
    for m in household.members:
        if m.guardian_id is not None and m.guardian_id not in ids:
            raise InvalidData(
                f"guardian {m.guardian_id!r} of {m.member_id!r} is not a member",
                field="household.members.guardian_id",
                allowed=", ".join(ids),
            )


def _missing(what: str, key: str, known: Iterable[str], field: str) -> InvalidData:
    return InvalidData(f"no {what} {key!r} in this case", field=field, allowed=", ".join(known) or "none yet")


def _check_record_consent(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.RecordConsent)
    consent = command.consent
    _aware(consent.given_at, "consent.given_at")
    if any(x.consent_id == consent.consent_id for x in case.consents):
        raise InvalidData(f"consent {consent.consent_id!r} is already recorded", field="consent.consent_id")
    if (consent.scope is ConsentScope.SHARING) != (consent.agency_id is not None):
        raise InvalidData(
            "a sharing consent names exactly one agency; other scopes name none",
            field="consent.agency_id",
        )
    if consent.withdrawn_at is not None:
        raise InvalidData("record the consent first, then withdraw it", field="consent.withdrawn_at")


def _check_withdraw_consent(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.WithdrawConsent)
    active = [x.consent_id for x in case.consents if x.active]
    if command.consent_id not in active:
        raise _missing("active consent", command.consent_id, active, "consent_id")


def _check_record_need(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.RecordNeed)
    if case.need(command.need.need_id) is not None:
        raise InvalidData(f"need {command.need.need_id!r} is already recorded", field="need.need_id")


def _check_set_goal(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.SetGoal)
    if any(g.goal_id == command.goal.goal_id for g in case.goals):
        raise InvalidData(f"goal {command.goal.goal_id!r} is already set", field="goal.goal_id")
    for need_id in command.goal.need_ids:
        if case.need(need_id) is None:
            raise _missing("need", need_id, (n.need_id for n in case.needs), "goal.need_ids")


def _check_achieve_goal(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.AchieveGoal)
    open_goals = [g.goal_id for g in case.goals if g.achieved_at is None]
    if command.goal_id not in open_goals:
        raise _missing("open goal", command.goal_id, open_goals, "goal_id")


def _check_link_service(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.LinkService)
    item = command.item
    _aware(item.start, "item.start")
    _aware(item.time_limit, "item.time_limit")
    if case.service_item(item.item_id) is not None:
        raise InvalidData(f"service item {item.item_id!r} is already linked", field="item.item_id")
    if case.need(item.need_id) is None:
        raise _missing("need", item.need_id, (n.need_id for n in case.needs), "item.need_id")
    if item.time_limit is not None and item.time_limit <= item.start:
        raise InvalidData("must be after the start", field="item.time_limit")
    if item.ended_at is not None:
        raise InvalidData("link the item first, then end it (end_service)", field="item.ended_at")


def _check_end_service(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.EndService)
    running = [s.item_id for s in case.service_items if s.active]
    if command.item_id not in running:
        raise _missing("running service item", command.item_id, running, "item_id")


def _check_schedule_conference(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.ScheduleConference)
    _aware(command.conference.scheduled_for, "conference.scheduled_for")
    if any(x.conference_id == command.conference.conference_id for x in case.conferences):
        raise InvalidData("conference id already used", field="conference.conference_id")


def _check_approve_plan(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.ApprovePlan)
    known = [x.conference_id for x in case.conferences]
    if command.conference_id is not None and command.conference_id not in known:
        raise _missing("conference", command.conference_id, known, "conference_id")


def _check_record_journal(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.RecordJournal)
    if not command.text.strip():
        raise InvalidData("must not be empty", field="text")
    if command.member_id is not None and case.household.member(command.member_id) is None:
        raise _missing(
            "member", command.member_id, (m.member_id for m in case.household.members), "member_id"
        )


def _check_file_mandatory_report(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.FileMandatoryReport)
    if not command.reference.strip():
        raise InvalidData("the authority's reference is required", field="reference")


def _check_assign_caseworker(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.AssignCaseworker)
    if not command.caseworker_id:
        raise InvalidData("must not be empty", field="caseworker_id")


def _check_hand_over(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.HandOver)
    if not command.agency.id:
        raise InvalidData("must not be empty", field="agency.id")


def _check_start_aftercare(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.StartAftercare)
    _aware(command.until, "until")


def _check_hold_conference(case: Case, command: c.Command) -> None:
    assert isinstance(command, c.HoldConference)
    pending = [x.conference_id for x in case.conferences if not x.held]
    if command.conference_id not in pending:
        raise _missing("conference not yet held", command.conference_id, pending, "conference_id")


_CHECKS: dict[type[c.Command], Callable[[Case, c.Command], None]] = {
    c.HoldConference: _check_hold_conference,
    c.RecordConsent: _check_record_consent,
    c.WithdrawConsent: _check_withdraw_consent,
    c.RecordNeed: _check_record_need,
    c.SetGoal: _check_set_goal,
    c.AchieveGoal: _check_achieve_goal,
    c.LinkService: _check_link_service,
    c.EndService: _check_end_service,
    c.ScheduleConference: _check_schedule_conference,
    c.ApprovePlan: _check_approve_plan,
    c.RecordJournal: _check_record_journal,
    c.FileMandatoryReport: _check_file_mandatory_report,
    c.AssignCaseworker: _check_assign_caseworker,
    c.HandOver: _check_hand_over,
    c.StartAftercare: _check_start_aftercare,
}


Check = Callable[[Case, c.Command], None]
Completion = Callable[[c.Command, Policy, dt.datetime], c.Command]

#: The hot path's single lookup: for each (state, event) with one candidate transition, the
#: transition with its reference check and completion. Branching events go through _select.
_STEPS: dict[tuple[CaseState, str], tuple[CompiledTransition, Check | None, Completion | None]] = {
    key: (candidates[0], _CHECKS.get(c.COMMAND_TYPES[key[1]]), _COMPLETIONS.get(c.COMMAND_TYPES[key[1]]))
    for key, candidates in TABLE.items()
    if len(candidates) == 1
}
