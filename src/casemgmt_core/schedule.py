"""What is due or overdue: deadlines derived from a case and the policy's time limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from enum import StrEnum

from attrs import frozen

from .guards import case_time_limit
from .lifecycle import ACTIVE_STATES, FINAL_STATES
from .model import ApprovalStatus, ApprovalStep, Case, CaseState, ClosureReason
from .policy import Policy

__all__ = ["LISTED_ALWAYS", "Deadline", "DueItem", "DueKind", "deadlines", "due", "next_deadline"]


class DueKind(StrEnum):
    MANDATORY_REPORT = "mandatory_report"
    OVERRIDE_CONFIRMATION = "override_confirmation"
    ASSESSMENT = "assessment"
    PLAN = "plan"
    SERVICE_ITEM_LIMIT = "service_item_limit"
    CASE_MAX_DURATION = "case_max_duration"
    REASSESSMENT = "reassessment"
    AFTERCARE_END = "aftercare_end"
    NO_CONTACT = "no_contact"
    """No contact recorded for the policy's ``no_contact`` period: a candidate for closure as
    unreachable (the item's subject is ``unreachable``)."""
    APPROVAL = "approval"
    """A requested approval not yet decided (the subject is the approval's id)."""
    AGENCY_REFERRAL = "agency_referral"
    """A referral to another agency awaiting its answer (the subject is the agency's id)."""


@frozen(order=True)
class DueItem:
    due_at: dt.datetime
    case_id: str
    kind: DueKind
    subject: str = ""
    """What the deadline is about: a service item id, a statutory ground; empty for the case."""
    overdue: bool = False


@frozen(order=True)
class Deadline:
    """A pending deadline as a store keeps it, so that what is due is found without loading cases.

    ``listed_from`` is when :func:`due` starts to list it: the deadline less the policy's reminder
    lead time, or :data:`LISTED_ALWAYS` for the statutory deadlines listed from the start.
    """

    listed_from: dt.datetime
    due_at: dt.datetime
    case_id: str
    kind: DueKind
    subject: str = ""

    def item(self, now: dt.datetime) -> DueItem:
        return DueItem(self.due_at, self.case_id, self.kind, self.subject, now > self.due_at)


#: The ``listed_from`` of a deadline listed whatever the lead time (a mandatory report, an
#: override's confirmation): earlier than any time the model accepts.
LISTED_ALWAYS = dt.datetime(1850, 1, 1, tzinfo=dt.UTC)

_IN_WORK = frozenset((*ACTIVE_STATES, CaseState.CRISIS))
#: States in which nothing is pending any more.
_DECIDED = frozenset(FINAL_STATES)
#: Statutory deadlines: listed from the start, whatever the reminder lead time.
_ALWAYS_LISTED = frozenset({DueKind.MANDATORY_REPORT, DueKind.OVERRIDE_CONFIRMATION})


def _deadlines(case: Case, policy: Policy) -> Iterator[tuple[DueKind, str, dt.datetime]]:
    limits = policy.time_limits
    after = policy.deadline
    for report in case.mandatory_reports:
        if not report.filed:
            yield DueKind.MANDATORY_REPORT, report.ground.value, report.due_at
    override = case.statutory_override
    if override is not None and override.confirm_by is not None and override.confirmed_at is None:
        yield DueKind.OVERRIDE_CONFIRMATION, override.ground.value, override.confirm_by
    if case.state not in _DECIDED:
        for approval in case.approvals:
            # Once closed, only an after-care approval can still be acted on.
            closed = case.state is CaseState.CLOSED and approval.step is not ApprovalStep.AFTERCARE
            if approval.status is ApprovalStatus.PENDING and not closed:
                yield DueKind.APPROVAL, approval.approval_id, after(approval.requested_at, limits.approval)
    if case.state is CaseState.ASSESSMENT:
        yield DueKind.ASSESSMENT, "", after(case.state_entered_at, limits.assessment)
    elif case.state is CaseState.PLANNING:
        yield DueKind.PLAN, "", after(case.state_entered_at, limits.plan)
    elif case.state is CaseState.SERVICE:
        since = case.plan_approved_at or case.state_entered_at
        yield DueKind.REASSESSMENT, "", after(since, limits.reassessment_interval)
    elif case.state is CaseState.AFTERCARE and case.aftercare is not None:
        yield DueKind.AFTERCARE_END, "", case.aftercare.until
    if case.state in _IN_WORK:
        for item in case.service_items:
            if item.ended_at is None and item.time_limit is not None:
                yield DueKind.SERVICE_ITEM_LIMIT, item.item_id, item.time_limit
        yield DueKind.CASE_MAX_DURATION, "", case_time_limit(case, policy)
        last = case.last_contact_at or case.episode_started_at
        yield DueKind.NO_CONTACT, ClosureReason.UNREACHABLE.value, after(last, limits.no_contact)
        if case.referral_out is not None:
            referral = case.referral_out
            yield DueKind.AGENCY_REFERRAL, referral.agency.id, after(referral.referred_at, limits.approval)


def deadlines(case: Case, policy: Policy) -> tuple[Deadline, ...]:
    """Every pending deadline of ``case`` under ``policy``, in the order :func:`due` lists them."""
    lead = dt.timedelta(days=policy.time_limits.reminder_lead_days)
    # The order Deadline defines, by a tuple key: attrs' ordering costs far more per comparison.
    return tuple(
        sorted(
            (
                Deadline(
                    LISTED_ALWAYS if kind in _ALWAYS_LISTED else at - lead, at, case.case_id, kind, subject
                )
                for kind, subject, at in _deadlines(case, policy)
            ),
            key=lambda d: (d.listed_from, d.due_at, d.case_id, d.kind, d.subject),
        )
    )


def due(cases: Case | Iterable[Case], policy: Policy, now: dt.datetime) -> list[DueItem]:
    """Deadlines that fall within the policy's reminder lead time of ``now``, or have passed.

    Mandatory reports are always listed until filed (delivered and referenced), and a statutory
    override awaiting a second person's confirmation until confirmed: overdue, these are for the
    supervising role (see :class:`~casemgmt_core.notify.ReminderScheduler`). Sorted by deadline.
    """
    lead = dt.timedelta(days=policy.time_limits.reminder_lead_days)
    out = []
    for case in (cases,) if isinstance(cases, Case) else cases:
        for kind, subject, at in _deadlines(case, policy):
            if kind in _ALWAYS_LISTED or at - lead <= now:
                out.append(DueItem(at, case.case_id, kind, subject, now > at))
    out.sort(key=lambda i: (i.due_at, i.case_id, i.kind, i.subject, i.overdue))
    return out


def next_deadline(case: Case, policy: Policy) -> dt.datetime | None:
    """The case's earliest deadline, or ``None`` when nothing is pending."""
    return min((at for _, _, at in _deadlines(case, policy)), default=None)
