"""Real local servers on loopback for the notification tests: a webhook receiver and an SMTP server."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

import casemgmt_core as cm
from casemgmt_core.notify import LocalWebhookReceiver

SECRET = b"test-shared-secret"
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def note(
    nid: str = "C1/2:assignment:worker-1",
    *,
    kind: cm.NotificationKind = cm.NotificationKind.ASSIGNMENT,
    recipient: str = "worker-1",
    **data: str,
) -> cm.Notification:
    return cm.Notification(nid, kind, "C1", nid.split(":")[0], recipient, T0, {"case_id": "C1", **data})


class Mailbox:
    """An aiosmtpd handler that keeps what it receives and can answer with an error instead."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.reject_with: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reject_with:
            return self.reject_with.pop(0)
        content = envelope.content
        assert isinstance(content, bytes)
        self.messages.append((list(envelope.rcpt_tos), content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def receiver() -> Iterator[LocalWebhookReceiver]:
    with LocalWebhookReceiver(SECRET) as r:
        yield r


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


TEAM = "team-1"
WORKER = cm.Actor("worker-1", "caseworker", frozenset({TEAM}))
SUPERVISOR = cm.Actor("lead-1", "supervisor", frozenset({TEAM}))


def household(household_id: str = "H1", *, elder: bool = False) -> cm.Household:
    """A mother and her son; with ``elder``, also his grandmother (the subject of elder abuse)."""
    members = [
        cm.Member("parent", dt.date(1985, 4, 1), relation="mother"),
        cm.Member("child", dt.date(2017, 6, 1), relation="son", guardian_id="parent"),
    ]
    if elder:
        members.append(cm.Member("grandmother", dt.date(1950, 3, 1), relation="grandmother"))
    return cm.Household(household_id, members, region="R1")


def open_case(
    manager: cm.CaseManager, case_id: str = "C1", *, assign: str | None = "worker-1", elder: bool = False
) -> cm.Case:
    case = manager.open_case(
        household(f"H-{case_id}", elder=elder),
        cm.Referral(cm.ReferralChannel.WALK_IN, manager.clock()),
        actor=WORKER,
        case_id=case_id,
    )
    if assign is not None:
        case = manager.handle(case_id, cm.AssignCaseworker(assign, team_id=TEAM), actor=WORKER)
    return case
