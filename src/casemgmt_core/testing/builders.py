"""Realistic commits for store tests, made by the engine itself (``decide``), not by hand."""

from __future__ import annotations

import datetime as dt

from ..commands import Command, OpenCase
from ..engine import decide
from ..events import Event
from ..model import Actor, Case, Household, Member, Referral, ReferralChannel
from ..notifications import notifications_for
from ..policy import DEFAULT_POLICY
from ..ports import Commit

__all__ = ["ACTOR", "T0", "follow", "household", "open_commit"]

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
ACTOR = Actor("worker-1", "caseworker")


def household(household_id: str) -> Household:
    members: list[Member] = [
        Member("parent", dt.date(1985, 4, 1), relation="어머니"),
        Member("child", dt.date(2017, 6, 1), relation="아들", guardian_id="parent"),
    ]
    return Household(household_id, members, region="11680-101")


def open_commit(
    case_id: str,
    household_id: str | None = None,
    *,
    at: dt.datetime = T0,
    next_deadline: dt.datetime | None = None,
) -> Commit:
    """The commit that opens ``case_id`` (its household defaults to ``H-{case_id}``)."""
    command = OpenCase(
        case_id, household(household_id or f"H-{case_id}"), Referral(ReferralChannel.WALK_IN, at)
    )
    decision = decide(None, command, DEFAULT_POLICY, at, actor=ACTOR)
    return Commit(decision.case, decision.events, notifications_for(decision.events), 0, next_deadline)


def follow(
    case: Case,
    *commands: Command,
    at: dt.datetime | None = None,
    note: str = "",
    next_deadline: dt.datetime | None = None,
) -> Commit:
    """One commit applying ``commands`` in turn to ``case`` (so it records several events)."""
    now = at or case.state_entered_at + dt.timedelta(hours=1)
    events: list[Event] = []
    current = case
    for command in commands:
        decision = decide(current, command, DEFAULT_POLICY, now, actor=ACTOR, note=note)
        events.extend(decision.events)
        current = decision.case
    return Commit(current, tuple(events), notifications_for(events), case.version, next_deadline)
