"""Who may do what to which case: the access port and its default rule.

Every command and every read is an *action* on a case (or, before a case is loaded or for a
listing, on none), done by an :class:`~casemgmt_core.Actor` for a :class:`Purpose`. An
:class:`AccessRule` decides it as a pure function and explains its answer
(:class:`AccessDecision`). :class:`TeamAccess` is the default: the policy's roles per action,
then the case's assigned caseworker and the members of its team (a supervisor of that team is a
member with a supervising role); deny by default. A host with its own rule implements
:class:`AccessRule` and passes it to the manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol, runtime_checkable

from attrs import field, frozen

from ._validation import check_identifier
from .commands import COMMAND_TYPES
from .errors import InvalidData
from .events import Event
from .model import Actor, Case, CaseState
from .policy import AccessRules

__all__ = [
    "READ_ACTIONS",
    "AccessDecision",
    "AccessRule",
    "Purpose",
    "TeamAccess",
    "actions_taken",
    "default_read_roles",
]


class Purpose(StrEnum):
    """Why an actor acts on or reads a case (recorded with every access)."""

    CASE_WORK = "case_work"
    SUPERVISION = "supervision"
    AUDIT = "audit"
    EMERGENCY = "emergency"
    """Break-glass: access outside the actor's cases, for a bounded time, with a written reason."""


#: The reads, beside the commands' events, that an access rule decides.
READ_ACTIONS = frozenset(
    {
        "view_case",
        "view_history",
        "view_journal",
        "view_refusals",
        "replay_case",
        "list_cases",
        "list_due",
        "view_access_log",
    }
)


#: Routes into a state that is another action's to take: the action whose permission they need.
_ROUTES = {CaseState.CLOSED: "close", CaseState.HANDED_OVER: "hand_over"}


def actions_taken(event: Event) -> tuple[str, ...]:
    """The actions an event takes, each needing the actor's permission: its own, and the action
    whose transition it amounts to (withdrawing the last service consent closes a working case:
    ``close``; an accepted referral out closes it too). Ending after-care is not a closure."""
    routed = _ROUTES.get(event.target)
    if routed is None or routed == event.event or event.source in (CaseState.CLOSED, CaseState.AFTERCARE):
        return (event.event,)
    return (event.event, routed)


def default_read_roles() -> dict[str, frozenset[str]]:
    """The default roles per read: everyone on a case reads it; the access log is a supervisor's."""
    case_reads = READ_ACTIONS - {"view_access_log"}
    return {
        "supervisor": READ_ACTIONS,
        "caseworker": case_reads,
        "intake_officer": case_reads,
    }


@frozen
class AccessDecision:
    """An access rule's answer and why: ``reason`` is a stable code (see :data:`REASONS`)."""

    allowed: bool
    reason: str = field(validator=lambda _i, _a, v: check_identifier(v, "AccessDecision.reason"))

    @property
    def explanation(self) -> str:
        return REASONS.get(self.reason, self.reason)


#: What each reason code of the default rule means.
REASONS: Mapping[str, str] = {
    "unknown_action": "the action is not a command's event or a known read",
    "role_not_allowed": "the actor's role may not take this action",
    "allowed_by_role": "the actor's role may take this action where no case is involved",
    "assigned_caseworker": "the actor is the case's assigned caseworker",
    "team_member": "the actor is a member of the case's team",
    "team_supervisor": "the actor supervises the case's team",
    "unassigned_case": "the case has no caseworker and no team yet: any actor whose role allows it",
    "not_on_case": "the actor is neither the case's caseworker nor in its team",
    "emergency_needs_grant": "emergency access needs a break-glass grant",
}


@runtime_checkable
class AccessRule(Protocol):
    """Decides whether ``actor`` may take ``action`` on ``case`` (``None``: no case involved, or
    not loaded yet) for ``purpose``. Pure: it reads nothing and changes nothing."""

    def authorize(self, actor: Actor, action: str, case: Case | None, purpose: Purpose) -> AccessDecision: ...


def _check_request(actor: object, action: object, case: object, purpose: object) -> None:
    if not isinstance(actor, Actor):
        raise InvalidData(f"expected an Actor, not {type(actor).__name__}", field="actor")
    if type(action) is not str:
        raise InvalidData(f"expected an action name, not {type(action).__name__}", field="action")
    if case is not None and not isinstance(case, Case):
        raise InvalidData(f"expected a Case or None, not {type(case).__name__}", field="case")
    if type(purpose) is not Purpose:
        raise InvalidData(
            f"expected a Purpose, not {type(purpose).__name__}",
            field="purpose",
            allowed=", ".join(p.value for p in Purpose),
        )


def _read_table(value: object) -> Mapping[str, frozenset[str]]:
    if not isinstance(value, Mapping):
        raise InvalidData(f"must be a mapping, not {type(value).__name__}", field="TeamAccess.read_roles")
    for role, actions in value.items():
        check_identifier(role, "TeamAccess.read_roles")
        if type(actions) is not frozenset or not actions <= READ_ACTIONS:
            raise InvalidData(
                f"role {role!r} must map to a frozenset of read actions",
                field="TeamAccess.read_roles",
                allowed=", ".join(sorted(READ_ACTIONS)),
            )
    return value


@frozen
class TeamAccess:
    """The default access rule.

    An action is allowed when the actor's role may take it (``commands``: the policy's access
    table, per event; ``read_roles``: per read) and, where a case is involved, the actor is its
    assigned caseworker or a member of its team, or the case has neither yet (a new referral,
    open to every role the table allows). Emergency access is never granted by this rule alone.
    """

    commands: AccessRules = field(factory=AccessRules)
    read_roles: Mapping[str, frozenset[str]] = field(factory=default_read_roles, converter=_read_table)
    supervisor_roles: frozenset[str] = frozenset({"supervisor"})

    def authorize(self, actor: Actor, action: str, case: Case | None, purpose: Purpose) -> AccessDecision:
        _check_request(actor, action, case, purpose)
        if action in COMMAND_TYPES:
            by_role = self.commands.allows(actor.role, action)
        elif action in READ_ACTIONS:
            by_role = action in self.read_roles.get(actor.role, frozenset())
        else:
            return AccessDecision(False, "unknown_action")
        if not by_role:
            return AccessDecision(False, "role_not_allowed")
        if purpose is Purpose.EMERGENCY:
            return AccessDecision(False, "emergency_needs_grant")
        if case is None:
            return AccessDecision(True, "allowed_by_role")
        if case.caseworker_id is not None and case.caseworker_id == actor.id:
            return AccessDecision(True, "assigned_caseworker")
        if case.team_id is not None and case.team_id in actor.teams:
            supervises = actor.role in self.supervisor_roles
            return AccessDecision(True, "team_supervisor" if supervises else "team_member")
        if case.caseworker_id is None and case.team_id is None:
            return AccessDecision(True, "unassigned_case")
        return AccessDecision(False, "not_on_case")
