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
from collections.abc import Iterable

from attrs import evolve, frozen

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
)
from .policy import Policy

__all__ = ["Decision", "apply", "decide", "replay"]


@frozen
class Decision:
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
    transition = _select(case, command)
    _check_references(case, command)
    verdicts = _run_guards(transition, case, command, policy, now, facts)
    completed = _complete(case, command, policy, now)
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
        _legal_basis(case, completed, verdicts),
        correlation_id,
    )
    return Decision(apply(case, event), (event,), verdicts)


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


def _run_guards(
    transition: CompiledTransition,
    case: Case,
    command: c.Command,
    policy: Policy,
    now: dt.datetime,
    facts: Facts,
) -> tuple[Verdict, ...]:
    verdicts = tuple(g(case, command, policy, now, facts) for g in transition.guards)
    for v in verdicts:
        if not v.allowed:
            raise TransitionRefused(
                case_id=case.case_id,
                state=case.state.value,
                event=command.event,
                guard=v.guard,
                reason=v.reason.value,
                message=v.message,
            )
    return verdicts


def _legal_basis(case: Case, command: c.Command, verdicts: Iterable[Verdict]) -> str | None:
    if isinstance(command, c.InvokeStatutoryOverride):
        return command.legal_basis
    if case.statutory_override is not None and any(v.reason is Reason.STATUTORY_OVERRIDE for v in verdicts):
        return case.statutory_override.legal_basis
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


def _complete(case: Case, command: c.Command, policy: Policy, now: dt.datetime) -> c.Command:
    """Fill in what the policy derives, so that the recorded event replays without it."""
    if isinstance(command, c.InvokeStatutoryOverride):
        rule = policy.statutory_rule(command.ground)
        assert rule is not None  # the ground_enabled guard has run
        return evolve(
            command,
            legal_basis=command.legal_basis or rule.legal_basis,
            authority=command.authority or rule.authority,
            report_due_at=now + dt.timedelta(hours=rule.report_within_hours),
        )
    if isinstance(command, c.LinkService) and command.item.time_limit is None:
        limit = command.item.start + dt.timedelta(days=policy.time_limits.service_item_max_days)
        return evolve(command, item=evolve(command.item, time_limit=limit))
    if isinstance(command, c.StartAftercare) and command.until is None:
        return evolve(command, until=now + dt.timedelta(days=policy.time_limits.aftercare_days))
    return command


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
    changes = payload.changes(case, event.occurred_at, event.actor_id)
    if event.target is not case.state:
        changes["state"] = event.target
        changes["state_entered_at"] = event.occurred_at
        if event.target is CaseState.CLOSED and event.event == "withdraw_consent":
            changes.update(_closed_by_withdrawal(case, event.occurred_at))
    changes["version"] = event.version
    return evolve(case, **changes)


def _closed_by_withdrawal(case: Case, at: dt.datetime) -> dict[str, object]:
    if case.aftercare is not None and case.aftercare.ended_at is None:
        return {"aftercare": evolve(case.aftercare, ended_at=at)}
    return {"closure": Closure(ClosureReason.CONSENT_WITHDRAWN, at), "resume_state": None}


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


def _check_references(case: Case, command: c.Command) -> None:
    if isinstance(command, c.RecordConsent):
        consent = command.consent
        _aware(consent.given_at, "consent.given_at")
        if any(x.consent_id == consent.consent_id for x in case.consents):
            raise InvalidData(
                f"consent {consent.consent_id!r} is already recorded", field="consent.consent_id"
            )
        if (consent.scope is ConsentScope.SHARING) != (consent.agency_id is not None):
            raise InvalidData(
                "a sharing consent names exactly one agency; other scopes name none",
                field="consent.agency_id",
            )
        if consent.withdrawn_at is not None:
            raise InvalidData("record the consent first, then withdraw it", field="consent.withdrawn_at")
    elif isinstance(command, c.WithdrawConsent):
        active = [x.consent_id for x in case.consents if x.active]
        if command.consent_id not in active:
            raise _missing("active consent", command.consent_id, active, "consent_id")
    elif isinstance(command, c.RecordNeed):
        if case.need(command.need.need_id) is not None:
            raise InvalidData(f"need {command.need.need_id!r} is already recorded", field="need.need_id")
    elif isinstance(command, c.SetGoal):
        if any(g.goal_id == command.goal.goal_id for g in case.goals):
            raise InvalidData(f"goal {command.goal.goal_id!r} is already set", field="goal.goal_id")
        for need_id in command.goal.need_ids:
            if case.need(need_id) is None:
                raise _missing("need", need_id, (n.need_id for n in case.needs), "goal.need_ids")
    elif isinstance(command, c.AchieveGoal):
        open_goals = [g.goal_id for g in case.goals if g.achieved_at is None]
        if command.goal_id not in open_goals:
            raise _missing("open goal", command.goal_id, open_goals, "goal_id")
    elif isinstance(command, c.LinkService):
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
    elif isinstance(command, c.EndService):
        running = [s.item_id for s in case.service_items if s.active]
        if command.item_id not in running:
            raise _missing("running service item", command.item_id, running, "item_id")
    elif isinstance(command, c.ScheduleConference):
        _aware(command.conference.scheduled_for, "conference.scheduled_for")
        if any(x.conference_id == command.conference.conference_id for x in case.conferences):
            raise InvalidData("conference id already used", field="conference.conference_id")
    elif isinstance(command, c.ApprovePlan):
        known = [x.conference_id for x in case.conferences]
        if command.conference_id is not None and command.conference_id not in known:
            raise _missing("conference", command.conference_id, known, "conference_id")
    elif isinstance(command, c.RecordJournal):
        if not command.text.strip():
            raise InvalidData("must not be empty", field="text")
        if command.member_id is not None and case.household.member(command.member_id) is None:
            raise _missing(
                "member", command.member_id, (m.member_id for m in case.household.members), "member_id"
            )
    elif isinstance(command, c.FileMandatoryReport):
        if not command.reference.strip():
            raise InvalidData("the authority's reference is required", field="reference")
    elif isinstance(command, c.AssignCaseworker):
        if not command.caseworker_id:
            raise InvalidData("must not be empty", field="caseworker_id")
    elif isinstance(command, c.HandOver):
        if not command.agency.id:
            raise InvalidData("must not be empty", field="agency.id")
    elif isinstance(command, c.StartAftercare):
        _aware(command.until, "until")
