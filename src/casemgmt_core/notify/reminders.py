"""Reminders: what is due or overdue, turned into REMINDER notifications in the outbox.

Each reminder's id is derived from what it is about (case, kind of deadline, subject, the
deadline itself and whether it is still ahead or has passed) and whom it is for. Running the
scheduler again therefore adds nothing already in the outbox, while a deadline that passes
("due soon" becomes "overdue") or moves (a new contact resets the no-contact period) gives a
new reminder.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum

from attrs import evolve

from ..model import Case
from ..ports import CaseQuery, Notification, NotificationKind
from ..schedule import DueItem, DueKind, due
from ..service import CaseManager
from . import _checks as check

__all__ = ["MAX_PAGE", "ReminderScheduler", "ReminderStatus", "reminder_for"]

#: Most cases read at once (what a :class:`~casemgmt_core.ports.CaseQuery` allows).
MAX_PAGE = 1000

_log = logging.getLogger("casemgmt_core.notify.reminders")

#: Deadlines the law sets: overdue, they always reach the supervising role.
_STATUTORY = frozenset({DueKind.MANDATORY_REPORT, DueKind.OVERRIDE_CONFIRMATION})

Recipients = Callable[[Case, DueItem], Sequence[str]]


class ReminderStatus(StrEnum):
    DUE_SOON = "due_soon"
    """Within the policy's reminder lead time (a mandatory report: not filed, not yet late)."""
    OVERDUE = "overdue"


def reminder_for(case: Case, item: DueItem, recipient: str, now: dt.datetime) -> Notification:
    """The reminder to ``recipient`` about ``item`` of ``case`` (a pure function)."""
    check.instance(case, Case, "reminder_for.case")
    check.instance(item, DueItem, "reminder_for.item")
    check.identifier(recipient, "reminder_for.recipient")
    check.moment(now, "reminder_for.now")
    status = ReminderStatus.OVERDUE if item.overdue else ReminderStatus.DUE_SOON
    deadline = item.due_at.isoformat()
    key = f"reminder:{item.case_id}:{item.kind.value}:{item.subject}:{deadline}:{status.value}:{recipient}"
    return Notification(
        key,
        NotificationKind.REMINDER,
        item.case_id,
        f"{case.case_id}/{case.version}",
        recipient,
        now,
        {
            "case_id": item.case_id,
            "due_kind": item.kind.value,
            "subject": item.subject,
            "due_at": deadline,
            "status": status.value,
        },
    )


class ReminderScheduler:
    """Finds what is due across the manager's cases and enqueues reminders for it.

    A reminder goes to the case's caseworker, or to ``unassigned_to`` while none is assigned;
    an overdue one also goes to ``escalate_overdue_to`` when set (e.g. the supervisors' team).
    An overdue statutory deadline (a mandatory report not delivered and filed in time, an override
    not confirmed in time) always escalates too: to ``escalate_statutory_to``, the supervising
    role (default ``supervisors``), so that it is never left to the caseworker and the relay's
    retries alone. A pending approval reminds ``approvals_to`` (default ``supervisors``), who
    decide it. ``recipients`` replaces this rule entirely. ``kinds`` limits which deadlines
    remind (default: all of :class:`~casemgmt_core.DueKind`, given as members); cases are read
    ``page_size`` (1 to :data:`MAX_PAGE`) at a time.
    """

    def __init__(
        self,
        manager: CaseManager,
        *,
        kinds: Iterable[DueKind] | None = None,
        unassigned_to: str = "supervisors",
        escalate_overdue_to: str | None = None,
        escalate_statutory_to: str = "supervisors",
        approvals_to: str = "supervisors",
        recipients: Recipients | None = None,
        page_size: int = 500,
    ) -> None:
        name = "ReminderScheduler."
        check.instance(manager, CaseManager, name + "manager")
        self.manager = manager
        self.kinds = frozenset(DueKind) if kinds is None else check.members(kinds, DueKind, name + "kinds")
        self.unassigned_to = check.identifier(unassigned_to, name + "unassigned_to")
        self.escalate_overdue_to = (
            None
            if escalate_overdue_to is None
            else check.identifier(escalate_overdue_to, name + "escalate_overdue_to")
        )
        self.escalate_statutory_to = check.identifier(escalate_statutory_to, name + "escalate_statutory_to")
        self.approvals_to = check.identifier(approvals_to, name + "approvals_to")
        self._recipients: Recipients = (
            check.function(recipients, name + "recipients", nullable=True) or self._default_recipients
        )
        self.page_size = check.whole(page_size, name + "page_size", 1, MAX_PAGE)

    def _default_recipients(self, case: Case, item: DueItem) -> Sequence[str]:
        # A pending approval waits on whoever approves, not on the caseworker who asked.
        out = [
            self.approvals_to if item.kind is DueKind.APPROVAL else case.caseworker_id or self.unassigned_to
        ]
        if item.overdue and self.escalate_overdue_to and self.escalate_overdue_to not in out:
            out.append(self.escalate_overdue_to)
        if item.overdue and item.kind in _STATUTORY and self.escalate_statutory_to not in out:
            out.append(self.escalate_statutory_to)
        return out

    def _recipients_of(self, case: Case, item: DueItem) -> Sequence[str]:
        recipients = self._recipients(case, item)
        if not isinstance(recipients, list | tuple):
            raise check.invalid(
                f"must return a list of recipient ids, not {type(recipients).__name__}",
                "ReminderScheduler.recipients",
                "a function of (case, item) returning a list of recipient ids",
                recipients,
            )
        return recipients

    def due(self, now: dt.datetime | None = None) -> list[Notification]:
        """The reminders for everything due at ``now`` (default: the manager's clock). Changes nothing."""
        now = check.now(now, self.manager.clock, "ReminderScheduler.due.now", "CaseManager.clock()")
        policy = self.manager.policy
        horizon = now + dt.timedelta(days=policy.time_limits.reminder_lead_days)
        query: CaseQuery | None = CaseQuery(due_before=horizon, limit=self.page_size)
        out: list[Notification] = []
        while query is not None:
            page = self.manager.find(query)
            cases = {case.case_id: case for case in page.items}
            for item in due(page.items, policy, now):
                if item.kind in self.kinds:
                    case = cases[item.case_id]
                    out.extend(reminder_for(case, item, r, now) for r in self._recipients_of(case, item))
            query = None if page.next_after is None else evolve(query, after=page.next_after)
        return out

    def enqueue(self, now: dt.datetime | None = None) -> int:
        """Put the reminders due at ``now`` into the outbox; return how many were new."""
        return self.manager.store.enqueue(self.due(now))

    def run(self, stop: threading.Event, *, interval: float = 3600.0) -> None:
        """Enqueue reminders every ``interval`` seconds until ``stop`` is set."""
        check.loop(stop, interval, "ReminderScheduler.run")
        while not stop.is_set():
            try:
                self.enqueue()
            except Exception:
                _log.exception("reminders: the store failed; retrying in %s s", interval)
            stop.wait(interval)
