"""The event record: every accepted change to a case, with who, when, why and on what legal basis."""

from __future__ import annotations

import datetime as dt

from attrs import frozen

from .commands import Command
from .model import CaseState, EpisodeRef

__all__ = ["Event"]


@frozen(slots=False)  # a dict-based frozen class initialises about twice as fast: events are hot
class Event:
    """One accepted change. ``payload`` is the accepted command, completed by :func:`decide`.

    ``event_id`` is ``"{case_id}/{version}"``: unique, stable and known before storing, so that a
    notification's idempotency key can be derived from it.
    """

    case_id: str
    version: int
    event: str
    source: CaseState | None
    target: CaseState
    payload: Command
    actor_id: str
    role: str
    occurred_at: dt.datetime
    note: str = ""
    """Why: the caseworker's words."""
    legal_basis: str | None = None
    """Set where a statutory override allowed the change, or for the override itself."""
    correlation_id: str | None = None
    episode: int = 1
    """The case's episode this event belongs to (a reopening starts the next one)."""
    previous_episode: EpisodeRef | None = None
    """The household's episode before this one, of this case or of an earlier case."""

    @property
    def event_id(self) -> str:
        return f"{self.case_id}/{self.version}"

    @property
    def changes_state(self) -> bool:
        return self.source is not self.target
