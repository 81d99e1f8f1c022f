"""The library's errors: one root, typed subclasses with structured attributes.

Every refusal names what was refused and why, so that an embedding system can show it to a
caseworker and an auditor can read it back. Driver errors (``sqlite3``, ``psycopg``) never leave
an adapter: they are translated into :class:`StorageError` or :class:`ConcurrencyConflict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    """Root of every error this library raises on purpose."""

    #: A stable, machine-readable code (also the key of the error's label in the i18n tables).
    code: str = "case_management_error"


class TransitionRefused(CaseManagementError):
    """A guard refused a command; nothing was changed.

    ``guard`` names the guard, ``reason`` is its reason code (see :class:`~casemgmt_core.Reason`),
    ``message`` says in words what was missing and what would allow it.
    """

    code = "transition_refused"

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
    """The actor's role may not issue this command. The denial is recorded before this is raised."""

    code = "authorization_denied"

    def __init__(
        self, *, case_id: str, event: str, actor_id: str, role: str, allowed_roles: Iterable[str]
    ) -> None:
        self.case_id = case_id
        self.event = event
        self.actor_id = actor_id
        self.role = role
        self.allowed_roles = tuple(sorted(allowed_roles))
        super().__init__(
            f"case {case_id}: actor {actor_id!r} with role {role!r} may not {event!r}; "
            f"roles allowed: {', '.join(self.allowed_roles) or '(none)'}"
        )


class CaseNotFound(CaseManagementError, LookupError):
    code = "case_not_found"

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"no case with id {case_id!r}")


class DuplicateCase(CaseManagementError):
    """The household already has an active case (an episode) in this store."""

    code = "duplicate_case"

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

    def __init__(self, *, case_id: str, expected_version: int, actual_version: int | None):
        self.case_id = case_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"case {case_id}: expected version {expected_version}, found {actual_version}; "
            "reload the case and decide again"
        )
