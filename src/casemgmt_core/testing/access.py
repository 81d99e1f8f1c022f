"""The contract every access rule meets, the default one and any a host plugs in::

    from casemgmt_core.testing import AccessRuleContract

    class TestOurRule(AccessRuleContract):
        @pytest.fixture
        def rule(self): return OurRule(...)

        @pytest.fixture
        def allowed(self): return (actor, "record_journal", case)   # a request it allows

        @pytest.fixture
        def denied(self): return (other_actor, "record_journal", case)  # one it denies

The suite checks the rule's answers and drives a :class:`~casemgmt_core.CaseManager` with it:
what the rule denies on a case is refused as "not found", recorded, and changes nothing.
"""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from ..access import READ_ACTIONS, AccessDecision, AccessRule, Purpose
from ..adapters.memory import InMemoryStore
from ..commands import COMMAND_TYPES, OpenCase, RecordJournal
from ..errors import AuthorizationDenied, CaseManagementError, CaseNotFound
from ..events import Event
from ..model import Actor, Case, JournalKind
from ..policy import DEFAULT_POLICY
from ..ports import Commit
from ..schedule import deadlines
from ..service import CaseManager

__all__ = ["AccessRuleContract"]

Request = tuple[Actor, str, Case]


class AccessRuleContract:
    """Subclass with the fixtures ``rule``, ``allowed`` and ``denied``: an ``(actor,
    "record_journal", case)`` the rule allows for ``Purpose.CASE_WORK``, and one it denies."""

    @pytest.fixture
    def rule(self) -> AccessRule:
        raise NotImplementedError("a subclass provides the rule")

    @pytest.fixture
    def allowed(self) -> Request:
        raise NotImplementedError("a subclass provides a request the rule allows")

    @pytest.fixture
    def denied(self) -> Request:
        raise NotImplementedError("a subclass provides a request the rule denies")

    # -- its answers --------------------------------------------------------------------------

    def test_it_is_an_access_rule(self, rule: AccessRule) -> None:
        assert isinstance(rule, AccessRule)

    def test_it_allows_and_denies_with_a_reason(
        self, rule: AccessRule, allowed: Request, denied: Request
    ) -> None:
        yes = rule.authorize(*allowed, Purpose.CASE_WORK)
        no = rule.authorize(*denied, Purpose.CASE_WORK)
        assert type(yes) is AccessDecision
        assert yes.allowed
        assert type(no) is AccessDecision
        assert not no.allowed
        assert yes.reason != no.reason

    def test_it_answers_the_same_request_the_same_way(
        self, rule: AccessRule, allowed: Request, denied: Request
    ) -> None:
        for request in (allowed, denied):
            first = rule.authorize(*request, Purpose.CASE_WORK)
            assert all(rule.authorize(*request, Purpose.CASE_WORK) == first for _ in range(3))

    def test_what_it_denies_before_the_case_is_loaded_it_denies_on_the_case(
        self, rule: AccessRule, allowed: Request, denied: Request
    ) -> None:
        # The manager asks first without the case: a denial there must hold for any case, or an
        # actor would learn of a case the rule would have let them see.
        for actor, _, case in (allowed, denied):
            for action in sorted(set(COMMAND_TYPES) | READ_ACTIONS):
                if not rule.authorize(actor, action, None, Purpose.CASE_WORK).allowed:
                    assert not rule.authorize(actor, action, case, Purpose.CASE_WORK).allowed, action

    def test_an_unknown_action_is_denied(self, rule: AccessRule, allowed: Request) -> None:
        actor, _, case = allowed
        for action in ("drop_table", "", "VIEW_CASE", "view_case "):
            assert not rule.authorize(actor, action, case, Purpose.CASE_WORK).allowed
            assert not rule.authorize(actor, action, None, Purpose.CASE_WORK).allowed

    def test_emergency_access_needs_more_than_the_rule(self, rule: AccessRule, allowed: Request) -> None:
        assert not rule.authorize(*allowed, Purpose.EMERGENCY).allowed

    def test_a_request_of_the_wrong_kind_is_never_allowed(self, rule: AccessRule, allowed: Request) -> None:
        actor, action, case = allowed
        for request in (
            ({"id": actor.id, "role": actor.role}, action, case, Purpose.CASE_WORK),
            (actor, action, attrs.asdict(case, recurse=False), Purpose.CASE_WORK),
            (actor, action, case, "case_work"),
        ):
            try:
                answer = rule.authorize(*request)
            except CaseManagementError:
                continue
            assert not (type(answer) is AccessDecision and answer.allowed), request

    # -- through the manager ------------------------------------------------------------------

    def _manager(self, rule: AccessRule, case: Case) -> CaseManager:
        """A manager on a store that holds ``case`` as it is."""
        store = InMemoryStore()
        store.commit(_as_stored(case))
        return CaseManager(store, access=rule, clock=lambda: case.state_entered_at + dt.timedelta(hours=1))

    def test_the_manager_refuses_what_the_rule_denies_as_not_found(
        self, rule: AccessRule, denied: Request
    ) -> None:
        actor, action, case = denied
        assert action == "record_journal", "the suite drives the manager with record_journal requests"
        manager = self._manager(rule, case)
        before = manager.store.load(case.case_id)
        if not rule.authorize(actor, action, None, Purpose.CASE_WORK).allowed:
            # Denied before any case is loaded: the answer names no case.
            with pytest.raises(AuthorizationDenied):
                manager.handle(case.case_id, _journal(), actor=actor)
        else:
            with pytest.raises(CaseNotFound) as refused:
                manager.handle(case.case_id, _journal(), actor=actor)
            with pytest.raises(CaseNotFound) as unknown:
                manager.handle("no-such-case", _journal(), actor=actor)
            # The same answer as for a case that does not exist.
            assert str(refused.value).replace(case.case_id, "?") == str(unknown.value).replace(
                "no-such-case", "?"
            )
        assert manager.store.load(case.case_id) == before
        [refusal] = manager.store.refusals(case.case_id)
        assert (refusal.actor_id, refusal.code) == (actor.id, "authorization_denied")

    def test_the_manager_lets_through_what_the_rule_allows(self, rule: AccessRule, allowed: Request) -> None:
        actor, action, case = allowed
        assert action == "record_journal", "the suite drives the manager with record_journal requests"
        manager = self._manager(rule, case)
        after = manager.handle(case.case_id, _journal(), actor=actor)
        assert after.version == 2
        assert [e.actor_id for e in manager.store.events(case.case_id)] == ["contract-suite", actor.id]


def _journal() -> RecordJournal:
    return RecordJournal(JournalKind.CONTACT, "phoned the household")


def _as_stored(case: Case) -> Commit:
    """A commit that stores ``case`` as it is, at its version, with one event that records it."""
    opened = attrs.evolve(case, version=1)
    event = Event(
        case.case_id,
        1,
        "open",
        None,
        case.state,
        OpenCase(case.case_id, case.household, case.referral),
        "contract-suite",
        "caseworker",
        case.opened_at,
    )
    pending = deadlines(opened, DEFAULT_POLICY)
    return Commit(opened, (event,), (), 0, min((d.due_at for d in pending), default=None), pending)
