"""The library's errors: one root, typed subclasses with structured attributes.

Every refusal names what was refused and why, so that an embedding system can show it to a
caseworker and an auditor can read it back. Driver errors (``sqlite3``, ``psycopg``) never leave
an adapter: they are translated into :class:`StorageError` or :class:`ConcurrencyConflict`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from .i18n import LANGUAGES, labels

__all__ = [
    "AuthorizationDenied",
    "CaseManagementError",
    "CaseNotFound",
    "ConcurrencyConflict",
    "DuplicateCase",
    "InvalidData",
    "REDACTED",
    "PolicyError",
    "StorageError",
    "TransitionRefused",
    "UnknownCommand",
]


class CaseManagementError(Exception):
    """Root of every error this library raises on purpose.

    The attributes a subclass annotates in its class body are its structured attributes: they
    are what :meth:`to_dict` puts in the body (and what ``casemgmt_core.json`` describes in the
    error's JSON Schema).
    """

    #: A stable, machine-readable code (also the key of the error's label in the i18n tables).
    code: str = "case_management_error"

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready body, for an HTTP response or an audit log.

        ``{"code", "message", <each structured attribute>, "labels": {"ko", "en"}}``, and
        ``"reason_labels"`` where the error has a refusal ``reason`` with labels. ``message`` is
        the full text (``str(error)``). ``InvalidData.value`` is left out: what a caller passed in
        the wrong place may be personal data, and the body leaves the process.
        """
        body: dict[str, Any] = {"code": self.code, "message": str(self)}
        for name in error_attributes(type(self)):
            body[name] = _json_ready(getattr(self, name, None))
        body["labels"] = _error_labels(type(self))
        reason = body.get("reason")
        reasons = labels().get("reason", {})
        if type(reason) is str and reason in reasons:
            body["reason_labels"] = {language: reasons[reason][language] for language in LANGUAGES}
        return body


#: Attributes every error has in its body, or that :meth:`CaseManagementError.to_dict` leaves out.
_NOT_STRUCTURED = frozenset({"code", "message", "value"})


def error_attributes(cls: type[CaseManagementError]) -> tuple[str, ...]:
    """The structured attributes of an error class: those annotated in its class body and its
    bases' (bases first), but ``code``, ``message`` and ``value``."""
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        if isinstance(klass, type) and issubclass(klass, CaseManagementError):
            for name in inspect.get_annotations(klass):
                if name not in _NOT_STRUCTURED:
                    names[name] = None
    return tuple(names)


def _error_labels(cls: type[CaseManagementError]) -> dict[str, str]:
    """The labels of the error's code, or of the nearest base class's code that has labels."""
    table = labels().get("error", {})
    for klass in cls.__mro__:
        code = getattr(klass, "code", None)
        if type(code) is str and code in table:
            return {language: table[code][language] for language in LANGUAGES}
    return {language: table[CaseManagementError.code][language] for language in LANGUAGES}


def _json_ready(value: object) -> Any:
    """An attribute's value as JSON-ready data (enumerations by value, sequences as lists)."""
    if isinstance(value, Enum):
        return value.value
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, tuple | list):
        return [_json_ready(x) for x in value]
    if isinstance(value, frozenset | set):
        return sorted(_json_ready(x) for x in value)
    return str(value)


class TransitionRefused(CaseManagementError):
    """A guard refused a command; nothing was changed.

    ``guard`` names the guard, ``reason`` is its reason code (see :class:`~casemgmt_core.Reason`),
    ``message`` says in words what was missing and what would allow it.
    """

    code = "transition_refused"
    case_id: str
    state: str
    event: str
    guard: str
    reason: str

    def __init__(
        self, *, case_id: str, state: str, event: str, guard: str, reason: str, message: str
    ) -> None:
        self.case_id = case_id
        self.state = state
        self.event = event
        self.guard = guard
        self.reason = reason
        self.message = message
        super().__init__(
            f"case {case_id}: {event!r} refused in state {state!r} by guard {guard!r} ({reason}): {message}"
        )


class UnknownCommand(CaseManagementError):
    """The command does not apply to the case's current state."""

    code = "unknown_command"
    case_id: str
    state: str
    event: str
    allowed: tuple[str, ...]

    def __init__(self, *, case_id: str, state: str, event: str, allowed: Iterable[str]) -> None:
        self.case_id = case_id
        self.state = state
        self.event = event
        self.allowed = tuple(sorted(allowed))
        super().__init__(
            f"case {case_id}: {event!r} is not possible in state {state!r}; "
            f"allowed here: {', '.join(self.allowed) or '(none: the state is final)'}"
        )


class InvalidData(CaseManagementError, ValueError):
    """Input that does not fit the model, refused before anything was stored.

    ``field`` names where (``Member.birth_date``, ``consent.given_at``, ``policy.time_limits``),
    ``value`` shows what was given (``REDACTED`` where the value is personal data, shortened where
    long) and ``allowed`` says what would fit.
    """

    code = "invalid_data"
    field: str | None
    allowed: str | None

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        allowed: str | None = None,
        value: object = None,
    ) -> None:
        self.field = field
        self.allowed = allowed
        self.message = message
        self.value = value
        text = message if field is None else f"{field}: {message}"
        if allowed:
            text += f" (allowed: {allowed})"
        super().__init__(text)


#: What :attr:`InvalidData.value` holds in place of personal data.
REDACTED = "<redacted>"


class PolicyError(InvalidData):
    """A policy or scenario is invalid; ``problems`` lists every problem found, not only the first.

    ``fields`` names where each problem is (in the same order); ``field`` is the first of them.
    """

    code = "policy_error"
    problems: tuple[str, ...]
    fields: tuple[str | None, ...]
    source: str

    def __init__(
        self, problems: Sequence[str], *, source: str = "policy", fields: Sequence[str | None] = ()
    ) -> None:
        self.problems = tuple(problems)
        self.source = source
        self.fields = tuple(fields) + (None,) * (len(self.problems) - len(fields))
        CaseManagementError.__init__(self, f"{source}: " + "; ".join(self.problems))
        self.field = next((f for f in self.fields if f), None)
        self.allowed = None
        self.value = None
        self.message = "; ".join(self.problems)


class AuthorizationDenied(CaseManagementError):
    """The access rule denied the actor this command (``reason``: the rule's code, such as
    ``role_not_allowed`` or ``not_on_case``). The denial is recorded before this is raised."""

    code = "authorization_denied"
    case_id: str
    event: str
    actor_id: str
    role: str
    allowed_roles: tuple[str, ...]
    reason: str

    def __init__(
        self,
        *,
        case_id: str,
        event: str,
        actor_id: str,
        role: str,
        allowed_roles: Iterable[str],
        reason: str = "role_not_allowed",
    ) -> None:
        self.case_id = case_id
        self.event = event
        self.actor_id = actor_id
        self.role = role
        self.allowed_roles = tuple(sorted(allowed_roles))
        self.reason = reason
        why = (
            f"roles allowed: {', '.join(self.allowed_roles) or '(none)'}"
            if reason == "role_not_allowed"
            else f"denied: {reason}"
        )
        super().__init__(f"case {case_id}: actor {actor_id!r} with role {role!r} may not {event!r}; {why}")


class CaseNotFound(CaseManagementError, LookupError):
    """No case with this id, or none the actor may act on or see: one answer for both, so that
    case ids cannot be probed (the refusal record says which it was)."""

    code = "case_not_found"
    case_id: str

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"no case with id {case_id!r}")


class DuplicateCase(CaseManagementError):
    """The household already has an active case (an episode) in this store."""

    code = "duplicate_case"
    household_id: str
    existing_case_id: str

    def __init__(self, *, household_id: str, existing_case_id: str) -> None:
        self.household_id = household_id
        self.existing_case_id = existing_case_id
        super().__init__(
            f"household {household_id!r} already has the active case {existing_case_id!r}; "
            "continue that case instead of opening another"
        )


class StorageError(CaseManagementError):
    """The storage backend failed; the unit of work was rolled back and nothing was written."""

    code = "storage_error"


class ConcurrencyConflict(StorageError):
    """Someone else changed the case first: the write was based on a stale version."""

    code = "concurrency_conflict"
    case_id: str
    expected_version: int
    actual_version: int | None

    def __init__(self, *, case_id: str, expected_version: int, actual_version: int | None):
        self.case_id = case_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"case {case_id}: expected version {expected_version}, found {actual_version}; "
            "reload the case and decide again"
        )
