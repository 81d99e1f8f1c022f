"""An insider's attacks on who may act on which case, on every store: each is refused.

Caseworker B is not on caseworker A's case. He tries to write to it, take it over, withdraw its
consent and probe which case ids exist; each attempt is refused as if the case did not exist,
recorded with the rule's reason, and leaves the case exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import psycopg
import pytest
from sqlalchemy import create_engine

import casemgmt_core as cm
from casemgmt_core import commands as c
from casemgmt_core.adapters.sql import SQLStore, sqlite_engine
from casemgmt_core.policy import AccessRules

from ..support import T0, household, referral

A = cm.Actor("cw-a", "caseworker", frozenset({"team-a"}))
B = cm.Actor("cw-b", "caseworker", frozenset({"team-b"}))
COLLEAGUE = cm.Actor("cw-c", "caseworker", frozenset({"team-a"}))
LEAD_A = cm.Actor("lead-a", "supervisor", frozenset({"team-a"}))
LEAD_B = cm.Actor("lead-b", "supervisor", frozenset({"team-b"}))


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[cm.CaseStore]:
    if request.param == "memory":
        yield cm.InMemoryStore()
        return
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "host.db")
    elif request.param == "postgresql":
        conninfo: str = request.getfixturevalue("postgres_conninfo")
        engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo))
    else:
        url: str = request.getfixturevalue("mariadb_database")
        engine = create_engine(url, connect_args={"charset": "utf8mb4"})
    made = SQLStore(engine)
    yield made
    made.close()
    engine.dispose()


@pytest.fixture
def manager(store: cm.CaseStore) -> cm.CaseManager:
    m = cm.CaseManager(store, clock=lambda: T0)
    m.open_case(household("H1"), referral(), actor=A, case_id="C1")
    m.handle("C1", c.AssignCaseworker(A.id, team_id="team-a"), actor=A)
    m.handle("C1", c.StartIntake(), actor=A)
    consent = cm.Consent(
        "k1", cm.ConsentScope.SERVICE_PROVISION, "parent", cm.ConsentGiver.PERSON, "parent", T0
    )
    m.handle("C1", c.RecordConsent(consent), actor=A)
    return m


ATTACKS = [
    c.RecordJournal(cm.JournalKind.CONTACT, "visited"),
    c.AssignCaseworker("cw-b", team_id="team-b"),
    c.WithdrawConsent("k1"),
    c.TransferCase("mine now", caseworker_id="cw-b"),
]


@pytest.mark.parametrize("command", ATTACKS, ids=lambda command: command.event)
def test_a_caseworker_off_the_case_cannot_act_on_it(manager: cm.CaseManager, command: c.Command) -> None:
    before = manager.get("C1")
    history = manager.history("C1")
    with pytest.raises(cm.CaseNotFound) as refused:
        manager.handle("C1", command, actor=B)
    assert str(refused.value) == "no case with id 'C1'"
    assert manager.get("C1") == before
    assert manager.history("C1") == history
    refusal = manager.refusals("C1")[-1]
    assert (refusal.actor_id, refusal.event, refusal.code, refusal.reason) == (
        "cw-b",
        command.event,
        "authorization_denied",
        "not_on_case",
    )


def test_an_unknown_id_and_a_case_off_limits_get_the_same_answer(manager: cm.CaseManager) -> None:
    answers = []
    for case_id in ("C1", "C2"):
        with pytest.raises(cm.CaseManagementError) as refused:
            manager.handle(case_id, c.RecordJournal(cm.JournalKind.CONTACT, "x"), actor=B)
        answers.append(
            (type(refused.value), refused.value.to_dict()["code"], str(refused.value).replace(case_id, "?"))
        )
    assert answers[0] == answers[1]


def test_a_supervisor_of_another_team_cannot_approve_or_reassign(manager: cm.CaseManager) -> None:
    with pytest.raises(cm.CaseNotFound):
        manager.handle("C1", c.AssignCaseworker("cw-b"), actor=LEAD_B)
    assert manager.get("C1").caseworker_id == "cw-a"


def test_the_team_and_its_supervisor_share_the_case(manager: cm.CaseManager) -> None:
    case = manager.handle("C1", c.RecordJournal(cm.JournalKind.CONTACT, "covered for A"), actor=COLLEAGUE)
    assert case.version == 5
    case = manager.handle("C1", c.AssignCaseworker(COLLEAGUE.id), actor=LEAD_A)
    assert (case.caseworker_id, case.team_id) == ("cw-c", "team-a")
    # A is still in the team: reassigned within it, not off the case.
    manager.handle("C1", c.RecordJournal(cm.JournalKind.CONTACT, "handed over"), actor=A)


def test_a_role_that_may_not_act_is_refused_before_the_case_is_read(
    manager: cm.CaseManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    for name in ("load", "cached_case"):
        if hasattr(manager.store, name):
            real = getattr(manager.store, name)
            monkeypatch.setattr(
                manager.store,
                name,
                lambda case_id, real=real, name=name: (reads.append(name), real(case_id))[1],
            )
    intake = cm.Actor("io-1", "intake_officer", frozenset({"team-a"}))
    for case_id in ("C1", "C404"):
        with pytest.raises(cm.AuthorizationDenied) as refused:
            manager.handle(case_id, c.Close(cm.ClosureReason.GOALS_MET), actor=intake)
        assert refused.value.reason == "role_not_allowed"
    assert reads == []
    manager.handle("C1", c.RecordJournal(cm.JournalKind.CONTACT, "visited"), actor=A)
    assert reads  # the spies do see a permitted command read the case


# -- transitions the engine takes on the actor's behalf ----------------------------------------


def test_an_intake_officer_cannot_close_a_case_by_withdrawing_its_consent(manager: cm.CaseManager) -> None:
    intake = cm.Actor("io-1", "intake_officer", frozenset({"team-a"}))
    assert not cm.DEFAULT_POLICY.access.allows("intake_officer", "close")
    before = manager.get("C1")
    with pytest.raises(cm.AuthorizationDenied) as refused:
        manager.handle("C1", c.WithdrawConsent("k1"), actor=intake)
    assert (refused.value.event, refused.value.reason) == ("close", "role_not_allowed")
    assert manager.get("C1") == before
    refusal = manager.refusals("C1")[-1]
    assert (refusal.actor_id, refusal.event, refusal.code) == (
        "io-1",
        "withdraw_consent",
        "authorization_denied",
    )
    # The caseworker, who may close, withdraws it: the case closes.
    assert manager.handle("C1", c.WithdrawConsent("k1"), actor=A).state is cm.CaseState.CLOSED


def test_an_opening_that_would_hand_the_case_over_needs_the_right_to_hand_over(store: cm.CaseStore) -> None:
    roles = dict(cm.DEFAULT_POLICY.access.roles)
    roles["intake_officer"] = roles["intake_officer"] - {"hand_over"}
    policy = attrs.evolve(cm.DEFAULT_POLICY, access=AccessRules(roles))
    registry = cm.InMemoryRegistry()
    registry.add_managed("H9", cm.Agency("centre-2", "Another centre"))
    m = cm.CaseManager(store, policy=policy, registry=registry, clock=lambda: T0)
    intake = cm.Actor("io-1", "intake_officer")
    with pytest.raises(cm.AuthorizationDenied) as refused:
        m.open_case(household("H9"), referral(), actor=intake, case_id="C9")
    assert (refused.value.event, refused.value.reason) == ("hand_over", "role_not_allowed")
    assert store.active_case_for_household("H9") is None
    assert [r.code for r in store.refusals("C9")] == ["authorization_denied"]
    case = m.open_case(household("H9"), referral(), actor=A, case_id="C9")
    assert case.state is cm.CaseState.HANDED_OVER
