"""The e-mail channel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

import casemgmt_core as cm
from casemgmt_core.notify import DeliveryFailed, EmailNotifier, message_id

from .conftest import Mailbox, free_port, note

ADDRESSES = {"worker-1": "worker1@centre.example", "police-112": "reports@police.example"}


def notifier(port: int, **kwargs: object) -> EmailNotifier:
    return EmailNotifier("127.0.0.1", port, sender="notices@centre.example", addresses=ADDRESSES,
                         timeout=5, **kwargs)  # type: ignore[arg-type]  # fmt: skip


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_sends_one_plain_message_to_the_recipients_address(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    n = note(event="assign", name="홍길동")
    notifier(port, fields={"event"}).send(n)
    [(rcpt, raw)] = box.messages
    assert rcpt == ["worker1@centre.example"]
    msg = parse(raw)
    assert msg["From"] == "notices@centre.example"
    assert msg["Subject"] == "[casemgmt] assignment: case C1"
    assert msg["Message-ID"] == "<C1%2F2%3Aassignment%3Aworker-1@centre.example>"
    assert msg["X-Idempotency-Key"] == "C1/2:assignment:worker-1"
    lines = msg.get_content().splitlines()
    assert "event: assign" in lines
    assert "case_id: C1" in lines
    assert "홍길동" not in raw.decode("utf-8", "replace")


def test_a_resent_notification_has_the_same_message_id(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    mailer = notifier(port)
    mailer.send(note())
    mailer.send(note())
    ids = [parse(raw)["Message-ID"] for _, raw in box.messages]
    assert ids[0] == ids[1] == message_id(note(), "centre.example")


def test_address_book_may_be_a_function(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    mailer = EmailNotifier(
        "127.0.0.1", port, sender="n@centre.example", addresses=lambda r: f"{r}@staff.example"
    )
    mailer.send(note())
    assert box.messages[0][0] == ["worker-1@staff.example"]


def test_unknown_recipient_is_not_retryable() -> None:
    # No server is needed: the address is looked up before connecting.
    mailer = EmailNotifier("127.0.0.1", free_port(), sender="n@centre.example", addresses={})
    with pytest.raises(DeliveryFailed, match="no e-mail address for recipient 'worker-1'") as info:
        mailer.send(note())
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("reply", "retryable"), [("451 4.3.0 try later", True), ("554 5.7.1 rejected", False)]
)
def test_smtp_errors_raise(smtp: tuple[Mailbox, int], reply: str, retryable: bool) -> None:
    box, port = smtp
    box.reject_with.append(reply)
    with pytest.raises(DeliveryFailed, match=f"SMTP {reply[:3]}") as info:
        notifier(port).send(note())
    assert info.value.retryable is retryable
    assert box.messages == []


def test_server_down_raises_a_retryable_failure() -> None:
    with pytest.raises(DeliveryFailed, match="cannot send") as info:
        notifier(free_port()).send(note())
    assert info.value.retryable is True


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(cm.InvalidData, match="sender: not an e-mail address"):
        EmailNotifier("127.0.0.1", 25, sender="nobody", addresses={})
    with pytest.raises(cm.InvalidData, match="timeout"):
        EmailNotifier("127.0.0.1", 25, sender="n@x.example", addresses={}, timeout=-1)
