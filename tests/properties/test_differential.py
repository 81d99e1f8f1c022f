"""Differential test: the pure ``decide`` against the reference model in :mod:`.reference`.

Random sequences of referentially valid commands (ids that exist, new ids that do not) under
random programmes, clocks, actors and outside facts: for each command both must agree on
whether the event applies to the stage at all, whether a guard (or the rule on who decides an
approval) refuses, and which and why; and for an accepted command, on every guard's verdict,
where it leads, what ``decide`` fills in (deadlines on the programme's calendar, the approval
used, the screening reason, the consents that lapse) and the episode the event belongs to.
"""

from __future__ import annotations

import datetime as dt
import itertools

from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from casemgmt_core import commands as c
from casemgmt_core.engine import decide
from casemgmt_core.errors import InvalidData, TransitionRefused, UnknownCommand
from casemgmt_core.guards import Facts
from casemgmt_core.model import Actor, Agency, Case, Referral, ReferralChannel

from . import reference
from .builders import POLICIES, PROVIDERS, SUPERVISOR_ONLY, T0, Maker, chance, choose, households
from .test_transitions import forward

ACTOR = Actor("worker-1", "caseworker")
LEAD = Actor("lead-1", "supervisor")
OTHER_LEAD = Actor("lead-2", "supervisor")
FINAL = ("redirected", "general_counselling", "declined", "handed_over")
# Every event, with the ones that branch, end an episode or need an approval more often.
EVENTS = sorted(c.COMMAND_TYPES.keys() - {"open"}) + 3 * [
    "withdraw_consent",
    "invoke_override",
    "file_report",
    "close",
    "start_aftercare",
    "reopen",
    "record_consent",
    "request_approval",
    "approve",
    "reject",
    "extend_service",
    "extend_case",
    "refer_out",
]


def _facts(data: st.DataObject, now: dt.datetime) -> Facts:
    managed = Agency("dream-start") if chance(data.draw, 6) else None
    elsewhere = choose(data.draw, PROVIDERS) if chance(data.draw, 6) else None
    delivered = now if not chance(data.draw, 4) else None
    return Facts(
        managed_elsewhere_by=managed, service_linked_elsewhere_by=elsewhere, report_delivered_at=delivered
    )


def _actor(data: st.DataObject, event: str) -> Actor:
    """Usually who may issue it (decide leaves access to the service); sometimes another."""
    if chance(data.draw, 5):
        return choose(data.draw, [ACTOR, LEAD, OTHER_LEAD])
    return LEAD if event in SUPERVISOR_ONLY else ACTOR


@settings(max_examples=settings.default.max_examples * 3)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    household=households(),
    steps=st.integers(5, 80),
    data=st.data(),
)
def test_decide_agrees_with_the_reference_model(
    policy: str, household: object, steps: int, data: st.DataObject
) -> None:
    rules = POLICIES[policy]
    now = T0
    ids = itertools.count(1)

    def opened() -> Case:
        referral = Referral(ReferralChannel.WALK_IN, now)
        command = c.OpenCase(f"C{next(ids)}", household, referral)  # type: ignore[arg-type]
        return decide(None, command, rules, now, actor=ACTOR).case

    case = opened()
    planned: list[c.Command] = []
    stale = False  # a command off the path was accepted since the path was planned
    for _ in range(steps):
        days = (
            choose(data.draw, [100, 400]) if chance(data.draw, 25) else choose(data.draw, [0, 0, 0, 1, 1, 7])
        )
        now += dt.timedelta(days=days)
        if case.state.value in FINAL:
            case, planned = opened(), []  # the household left; the next one comes
        maker = Maker(data.draw, now, ids, rules)
        along = not chance(data.draw, 5)
        if along:
            # along the ordinary path, so that later stages are reached
            if not planned:
                planned, stale = forward(maker, case), False
            command = planned.pop(0) if planned else None
        else:
            command = maker.build(choose(data.draw, EVENTS), case)
        if command is None:
            planned = []
            continue
        facts = _facts(data, now)
        actor = _actor(data, command.event)
        expected = reference.predict(case, command, rules, now, facts, actor)
        try:
            decision = decide(case, command, rules, now, actor=actor, facts=facts)
        except (UnknownCommand, TransitionRefused) as caught:
            refusal: UnknownCommand | TransitionRefused | None = caught
        except InvalidData:
            # a path planned for the case as it was may no longer fit it
            if not (along and stale):
                raise
            planned = []
            continue
        else:
            refusal = None
        where = f"{command.event} in {case.state} ({policy}, {now.date()})"
        if refusal is not None:
            planned = []
            applies = isinstance(refusal, TransitionRefused)
            assert applies == expected.applies, f"{where}: {refusal}"
            refused_by = (refusal.guard, refusal.reason) if isinstance(refusal, TransitionRefused) else None
            assert refused_by == expected.refused_by, where
            continue
        stale = stale or not along
        assert expected.applies, f"{where}: accepted, but the reference has no such move"
        assert expected.refused_by is None, f"{where}: accepted, expected {expected.refused_by}"
        verdicts = tuple((v.guard, v.reason.value) for v in decision.verdicts)
        assert verdicts == expected.verdicts, where
        (event,) = decision.events
        assert (event.source, event.target.value) == (case.state, expected.dest), where
        assert decision.case.state.value == expected.dest, where
        assert event.payload == evolve(command, **dict(expected.filled)), where
        assert (event.episode, event.previous_episode) == expected.episode, where
        case = decision.case
