"""The default access rule: the policy's roles per action, then the case's caseworker and team."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import casemgmt_core as cm
from casemgmt_core.access import READ_ACTIONS, AccessDecision, AccessRule, Purpose, TeamAccess
from casemgmt_core.adapters.memory import InMemoryStore
from casemgmt_core.commands import COMMAND_TYPES
from casemgmt_core.errors import InvalidData
from casemgmt_core.policy import AccessRules
from casemgmt_core.testing import ACTOR, T0, AccessRuleContract, household

RULE = TeamAccess()


def _case(caseworker_id: str | None = "cw-a", team_id: str | None = "team-1") -> cm.Case:
    case = cm.CaseManager(InMemoryStore(), clock=lambda: T0).open_case(
        household("H1"), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=ACTOR, case_id="C1"
    )
    return attrs.evolve(case, caseworker_id=caseworker_id, team_id=team_id)


A = cm.Actor("cw-a", "caseworker", frozenset({"team-1"}))
B = cm.Actor("cw-b", "caseworker", frozenset({"team-2"}))


@pytest.mark.parametrize(
    "action", ["record_journal", "assign", "withdraw_consent", "view_case", "view_history"]
)
def test_a_caseworker_outside_the_case_may_neither_act_on_it_nor_read_it(action: str) -> None:
    decision = RULE.authorize(B, action, _case(), Purpose.CASE_WORK)
    assert decision == AccessDecision(False, "not_on_case")
    assert "neither" in decision.explanation


def test_the_assigned_caseworker_and_the_team_may_act_on_the_case() -> None:
    case = _case()
    assert RULE.authorize(A, "record_journal", case, Purpose.CASE_WORK).reason == "assigned_caseworker"
    colleague = cm.Actor("cw-c", "caseworker", frozenset({"team-1"}))
    assert RULE.authorize(colleague, "record_journal", case, Purpose.CASE_WORK).reason == "team_member"
    boss = cm.Actor("sv-1", "supervisor", frozenset({"team-1"}))
    assert RULE.authorize(boss, "approve_plan", case, Purpose.SUPERVISION) == AccessDecision(
        True, "team_supervisor"
    )


def test_a_supervisor_of_another_team_is_not_on_the_case() -> None:
    other = cm.Actor("sv-2", "supervisor", frozenset({"team-2"}))
    assert RULE.authorize(other, "approve_plan", _case(), Purpose.SUPERVISION).reason == "not_on_case"


def test_the_role_is_decided_first_even_for_the_assigned_caseworker() -> None:
    assert RULE.authorize(A, "approve_plan", _case(), Purpose.CASE_WORK) == AccessDecision(
        False, "role_not_allowed"
    )
    assert RULE.authorize(A, "view_access_log", None, Purpose.AUDIT).reason == "role_not_allowed"


def test_an_unassigned_case_is_open_to_the_roles_that_may_take_the_action() -> None:
    intake = cm.Actor("io-1", "intake_officer")
    case = _case(None, None)
    assert RULE.authorize(intake, "start_intake", case, Purpose.CASE_WORK).reason == "unassigned_case"
    assert RULE.authorize(intake, "close", case, Purpose.CASE_WORK).reason == "role_not_allowed"


def test_emergency_access_is_never_granted_by_the_rule_alone() -> None:
    assert RULE.authorize(A, "view_case", _case(), Purpose.EMERGENCY).reason == "emergency_needs_grant"


def test_unknown_roles_and_actions_are_denied() -> None:
    stranger = cm.Actor("x-1", "janitor", frozenset({"team-1"}))
    assert RULE.authorize(stranger, "view_case", _case(), Purpose.CASE_WORK).reason == "role_not_allowed"
    assert RULE.authorize(A, "drop_table", _case(), Purpose.CASE_WORK).reason == "unknown_action"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("cw-a", "view_case", None, Purpose.CASE_WORK), "actor"),
        ((A, 7, None, Purpose.CASE_WORK), "action"),
        ((A, "view_case", {"case_id": "C1"}, Purpose.CASE_WORK), "case"),
        ((A, "view_case", None, "case_work"), "purpose"),
    ],
)
def test_a_request_of_the_wrong_type_is_invalid_data(args: tuple[object, ...], field: str) -> None:
    with pytest.raises(InvalidData) as caught:
        RULE.authorize(*args)  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize(
    "teams",
    [{"team-1"}, ["team-1"], frozenset({""}), frozenset({"t\x00"}), frozenset(f"t{i}" for i in range(101))],
)
def test_an_actors_teams_are_a_bounded_frozenset_of_identifiers(teams: object) -> None:
    with pytest.raises(InvalidData) as caught:
        cm.Actor("cw-a", "caseworker", teams)  # type: ignore[arg-type]
    assert caught.value.field == "Actor.teams"


def test_the_default_rule_is_an_access_rule() -> None:
    assert isinstance(RULE, AccessRule)


ACTIONS = st.sampled_from(sorted(set(COMMAND_TYPES) | READ_ACTIONS | {"unknown"}))
IDS = st.sampled_from(["cw-a", "cw-b", "sv-1"])
TEAMS = st.sampled_from(["team-1", "team-2"])
ACTORS = st.builds(
    cm.Actor,
    IDS,
    st.sampled_from(["caseworker", "supervisor", "intake_officer", "janitor"]),
    st.frozensets(TEAMS, max_size=2),
)
CASES = st.tuples(st.none() | IDS, st.none() | TEAMS)


@given(actor=ACTORS, action=ACTIONS, on=st.none() | CASES, purpose=st.sampled_from(Purpose))
def test_nothing_is_allowed_but_what_a_rule_names(
    actor: cm.Actor, action: str, on: tuple[str | None, str | None] | None, purpose: Purpose
) -> None:
    case = None if on is None else _case(*on)
    decision = RULE.authorize(actor, action, case, purpose)
    roles = AccessRules()
    by_role = roles.allows(actor.role, action) or action in RULE.read_roles.get(actor.role, frozenset())
    on_case = case is None or (
        actor.id == case.caseworker_id
        or case.team_id in actor.teams
        or (case.caseworker_id is None and case.team_id is None)
    )
    assert decision.allowed == (by_role and on_case and purpose is not Purpose.EMERGENCY)
    if decision.allowed and case is not None:
        # Joining the case's team never takes an allowed action away, nor does leaving another.
        joined = attrs.evolve(actor, teams=frozenset({case.team_id} if case.team_id else ()))
        assert RULE.authorize(joined, action, case, purpose).allowed or actor.id == case.caseworker_id


# -- the contract suite: the default rule, and a rule a host writes --------------------------


class TestTeamAccess(AccessRuleContract):
    @pytest.fixture
    def rule(self) -> AccessRule:
        return TeamAccess()

    @pytest.fixture
    def allowed(self) -> tuple[cm.Actor, str, cm.Case]:
        return (A, "record_journal", _case())

    @pytest.fixture
    def denied(self) -> tuple[cm.Actor, str, cm.Case]:
        return (B, "record_journal", _case())


@attrs.frozen
class ByRegion:
    """A host's rule: an actor acts on the households of the regions they serve, any role."""

    regions: dict[str, frozenset[str]]

    def authorize(
        self, actor: cm.Actor, action: str, case: cm.Case | None, purpose: Purpose
    ) -> AccessDecision:
        if not isinstance(actor, cm.Actor) or type(purpose) is not Purpose or purpose is Purpose.EMERGENCY:
            return AccessDecision(False, "bad_request")
        if action not in COMMAND_TYPES and action not in READ_ACTIONS:
            return AccessDecision(False, "unknown_action")
        if case is None:
            return AccessDecision(True, "decided_on_the_case")
        if not isinstance(case, cm.Case):
            return AccessDecision(False, "bad_request")
        served = self.regions.get(actor.id, frozenset())
        if case.household.region in served:
            return AccessDecision(True, "region_served")
        return AccessDecision(False, "region_not_served")


def _in_region(region: str) -> cm.Case:
    return attrs.evolve(_case(), household=attrs.evolve(household("H1"), region=region))


class TestAHostsOwnRule(AccessRuleContract):
    @pytest.fixture
    def rule(self) -> AccessRule:
        return ByRegion({"cw-a": frozenset({"R1"}), "cw-b": frozenset({"R9"})})

    @pytest.fixture
    def allowed(self) -> tuple[cm.Actor, str, cm.Case]:
        return (
            A,
            "record_journal",
            attrs.evolve(_case(), household=attrs.evolve(household("H1"), region="R1")),
        )

    @pytest.fixture
    def denied(self) -> tuple[cm.Actor, str, cm.Case]:
        return (
            B,
            "record_journal",
            attrs.evolve(_case(), household=attrs.evolve(household("H1"), region="R1")),
        )
