"""Differential test: the pure ``decide`` against the reference model in :mod:`.reference`.

Random sequences of referentially valid commands (ids that exist, new ids that do not) under
random programmes, clocks and outside facts: for each command both must agree on whether the
event applies to the stage at all, whether a guard refuses (and which guard, for what reason),
and where an accepted command leads.
"""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from casemgmt_core import commands as c
from casemgmt_core.engine import decide
from casemgmt_core.errors import TransitionRefused, UnknownCommand
from casemgmt_core.guards import Facts
from casemgmt_core.model import Actor, Agency, Case, Referral, ReferralChannel

from . import reference
from .builders import POLICIES, PROVIDERS, T0, Maker, chance, choose, households
from .test_transitions import forward

ACTOR = Actor("worker-1", "caseworker")
LEAD = Actor("lead-1", "supervisor")
# Every event, with the ones that branch or end an episode more often.
EVENTS = sorted(c.COMMAND_TYPES.keys() - {"open"}) + 3 * [
    "withdraw_consent",
    "invoke_override",
    "file_report",
    "close",
    "start_aftercare",
    "reopen",
    "record_consent",
]


def _facts(data: st.DataObject, now: dt.datetime) -> Facts:
    managed = Agency("dream-start") if chance(data.draw, 6) else None
    elsewhere = choose(data.draw, PROVIDERS) if chance(data.draw, 6) else None
    delivered = now if not chance(data.draw, 4) else None
    return Facts(
        managed_elsewhere_by=managed, service_linked_elsewhere_by=elsewhere, report_delivered_at=delivered
    )


@settings(max_examples=settings.default.max_examples * 3)
@given(
    policy=st.sampled_from(sorted(POLICIES)),
    household=households(),
    steps=st.integers(5, 60),
    data=st.data(),
)
def test_decide_agrees_with_the_reference_model(
    policy: str, household: object, steps: int, data: st.DataObject
) -> None:
    rules = POLICIES[policy]
    now = T0
    case: Case = decide(
        None,
        c.OpenCase("C1", household, Referral(ReferralChannel.WALK_IN, now)),
        rules,
        now,
        actor=ACTOR,  # type: ignore[arg-type]
    ).case
    ids = itertools.count(1)
    planned: list[c.Command] = []
    for _ in range(steps):
        now += dt.timedelta(days=choose(data.draw, [0, 1, 30, 400]))
        maker = Maker(data.draw, now, ids)
        if not chance(data.draw, 3):
            # along the ordinary path, so that later stages are reached
            planned = planned or forward(maker, case)
            command = planned.pop(0) if planned else None
        else:
            command = maker.build(choose(data.draw, EVENTS), case)
        if command is None:
            planned = []
            continue
        facts = _facts(data, now)
        actor = LEAD if command.event == "confirm_override" and chance(data.draw, 2) else ACTOR
        expected = reference.predict(case, command, rules, now, facts, actor)
        try:
            decision = decide(case, command, rules, now, actor=actor, facts=facts)
        except (UnknownCommand, TransitionRefused) as caught:
            refusal: UnknownCommand | TransitionRefused | None = caught
        else:
            refusal = None
        if refusal is not None:
            planned = []
            applies = isinstance(refusal, TransitionRefused)
            assert applies == expected.applies, f"{command.event} in {case.state}: {refusal}"
            refused_by = (refusal.guard, refusal.reason) if isinstance(refusal, TransitionRefused) else None
            assert refused_by == expected.refused_by, f"{command.event} in {case.state}"
            continue
        assert expected.applies, f"{command.event} accepted in {case.state}: the reference has no such move"
        assert expected.refused_by is None, f"{command.event} in {case.state}: expected {expected.refused_by}"
        assert decision.case.state.value == expected.dest, f"{command.event} from {case.state}"
        assert [e.target.value for e in decision.events] == [expected.dest]
        case = decision.case
