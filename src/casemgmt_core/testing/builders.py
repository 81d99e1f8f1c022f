"""Realistic commits for store tests, made by the engine itself (``decide``), not by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..commands import Command, OpenCase
from ..engine import decide
from ..events import Event
from ..model import Actor, Case, Household, Member, Referral, ReferralChannel
from ..notifications import notifications_for
from ..policy import DEFAULT_POLICY
from ..ports import Commit
from ..schedule import Deadline, DueKind
from ..schedule import deadlines as pending_deadlines

__all__ = ["ACTOR", "T0", "deadline", "follow", "household", "open_commit"]

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
ACTOR = Actor("worker-1", "caseworker")


def household(household_id: str) -> Household:
    members: list[Member] = [
        Member("parent", dt.date(1985, 4, 1), relation="어머니"),
        Member("child", dt.date(2017, 6, 1), relation="아들", guardian_id="parent"),
    ]
    return Household(household_id, members, region="11680-101")


def deadline(
    case_id: str,
    due_at: dt.datetime,
    kind: DueKind = DueKind.PLAN,
    subject: str = "",
    *,
    listed_from: dt.datetime | None = None,
) -> Deadline:
    """A deadline of ``case_id``, listed from the default policy's reminder lead time before it
    unless ``listed_from`` says otherwise."""
    lead = dt.timedelta(days=DEFAULT_POLICY.time_limits.reminder_lead_days)
    return Deadline(due_at - lead if listed_from is None else listed_from, due_at, case_id, kind, subject)


def _commit(
    case: Case, events: Sequence[Event], expected_version: int, deadlines: Sequence[Deadline] | None
) -> Commit:
    """The commit as :class:`~casemgmt_core.CaseManager` builds it: the case's deadlines under the
    default policy (or ``deadlines``), and its earliest as ``next_deadline``."""
    pending = pending_deadlines(case, DEFAULT_POLICY) if deadlines is None else tuple(deadlines)
    earliest = min((d.due_at for d in pending), default=None)
    return Commit(case, tuple(events), notifications_for(events), expected_version, earliest, pending)


def open_commit(
    case_id: str,
    household_id: str | None = None,
    *,
    at: dt.datetime = T0,
    deadlines: Sequence[Deadline] | None = None,
) -> Commit:
    """The commit that opens ``case_id`` (its household defaults to ``H-{case_id}``).

    Its deadlines are the case's under the default policy, unless ``deadlines`` are given.
    """
    command = OpenCase(
        case_id, household(household_id or f"H-{case_id}"), Referral(ReferralChannel.WALK_IN, at)
    )
    decision = decide(None, command, DEFAULT_POLICY, at, actor=ACTOR)
    return _commit(decision.case, decision.events, 0, deadlines)


def follow(
    case: Case,
    *commands: Command,
    at: dt.datetime | None = None,
    note: str = "",
    deadlines: Sequence[Deadline] | None = None,
) -> Commit:
    """One commit applying ``commands`` in turn to ``case`` (so it records several events).

    Its deadlines are the resulting case's under the default policy, unless ``deadlines`` are given.
    """
    now = at or case.state_entered_at + dt.timedelta(hours=1)
    events: list[Event] = []
    current = case
    for command in commands:
        decision = decide(current, command, DEFAULT_POLICY, now, actor=ACTOR, note=note)
        events.extend(decision.events)
        current = decision.case
    return _commit(current, events, case.version, deadlines)
