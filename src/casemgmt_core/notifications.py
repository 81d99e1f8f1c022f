"""Which events notify whom: a pure function of the events just decided."""

from __future__ import annotations

from collections.abc import Iterable

from . import commands as c
from .events import Event
from .model import MandatoryReport, ResourceKind
from .ports import Notification, NotificationKind

__all__ = ["mandatory_report_notification_ids", "notifications_for"]


def _note_id(event_id: str, kind: NotificationKind, recipient: str) -> str:
    return f"{event_id}:{kind.value}:{recipient}"


def _note(event: Event, kind: NotificationKind, recipient: str, **data: str) -> Notification:
    return Notification(
        _note_id(event.event_id, kind, recipient),
        kind,
        event.case_id,
        event.event_id,
        recipient,
        event.occurred_at,
        {"case_id": event.case_id, "event": event.event, **data},
    )


def _authorities(authority: str) -> list[str]:
    names = [a.strip() for a in authority.split(";")]
    return list(dict.fromkeys(a for a in names if a)) or [authority]


def mandatory_report_notification_ids(report: MandatoryReport) -> list[str]:
    """The outbox ids of the notifications that deliver ``report``, one per authority it names
    (none for a report recorded before reports named their override event)."""
    if not report.event_id:
        return []
    kind = NotificationKind.MANDATORY_REPORT
    return [_note_id(report.event_id, kind, a) for a in _authorities(report.authority)]


def notifications_for(events: Iterable[Event]) -> tuple[Notification, ...]:
    """The notifications ``events`` trigger."""
    out: list[Notification] = []
    for event in events:
        p = event.payload
        if isinstance(p, c.AssignCaseworker):
            out.append(_note(event, NotificationKind.ASSIGNMENT, p.caseworker_id))
        elif isinstance(p, c.InvokeStatutoryOverride):
            # A policy may name several authorities ("police-112; 노인보호전문기관"): each is told
            # separately, so that one unreachable authority does not hold back the others.
            for authority in _authorities(p.authority):
                out.append(
                    _note(
                        event,
                        NotificationKind.MANDATORY_REPORT,
                        authority,
                        ground=p.ground.value,
                        legal_basis=p.legal_basis,
                        due_at=p.report_due_at.isoformat() if p.report_due_at else "",
                    )
                )
        elif isinstance(p, c.HandOver):
            out.append(_note(event, NotificationKind.HAND_OVER, p.agency.id))
        elif isinstance(p, c.TransferCase):
            # Both sides: who gives the case up and who takes it (a team where no one is named).
            giving, taking = p.from_caseworker_id or p.from_team_id, p.caseworker_id or p.team_id
            if giving is not None and giving != taking:
                out.append(_note(event, NotificationKind.TRANSFER, giving, side="from"))
            if taking is not None:
                out.append(_note(event, NotificationKind.TRANSFER, taking, side="to"))
        elif isinstance(p, c.ReferOut):
            out.append(_note(event, NotificationKind.AGENCY_REFERRAL, p.agency.id))
        elif isinstance(p, c.LinkService) and p.item.resource is ResourceKind.FORMAL:
            out.append(
                _note(
                    event,
                    NotificationKind.SERVICE_REFERRAL,
                    p.item.provider.id,
                    service=p.item.service,
                    item_id=p.item.item_id,
                )
            )
        elif isinstance(p, c.ScheduleConference):
            for who in (*p.conference.participants, *p.conference.joint_with):
                out.append(
                    _note(
                        event,
                        NotificationKind.CONFERENCE_SCHEDULED,
                        who,
                        scheduled_for=p.conference.scheduled_for.isoformat(),
                    )
                )
    return tuple(out)
