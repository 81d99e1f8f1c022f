"""E-mail channel through ``smtplib``: one plain-text message per notification."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import quote

from ..errors import REDACTED, InvalidData
from ..ports import Notification
from . import _checks as check
from .errors import DeliveryFailed
from .rendering import STANDARD_FIELDS, Allowlist, idempotency_key

__all__ = ["EmailNotifier", "message_id"]

AddressBook = Mapping[str, str] | Callable[[str], str | None]


def message_id(notification: Notification, domain: str) -> str:
    """A ``Message-ID`` derived from the notification id alone, so a re-sent message has the same one."""
    nid = check.notification(notification, "notification").notification_id
    domain = check.word(domain, "message_id.domain", limit=check.MAX_HOST, what="a domain")
    if not check.ADDRESS_PART.fullmatch(domain):
        raise check.invalid("is not a domain", "message_id.domain", "a domain, e.g. centre.example", domain)
    return f"<{quote(nid, safe='-._~')}@{domain}>"


class EmailNotifier:
    """Sends each notification by SMTP to the address ``addresses`` gives for its recipient.

    ``addresses`` maps a recipient id (a caseworker, an agency, an authority) to an e-mail address,
    as a mapping or a function. The message carries ``Message-ID`` and ``X-Idempotency-Key``
    headers derived from the notification id, so a receiving system can drop repeats. Subject and
    body hold only the fields the allowlist admits. ``starttls`` upgrades the connection (with
    ``ssl_context``, default: system trust), ``login`` is ``(user, password)``; ``timeout``
    (seconds, more than 0, at most an hour) bounds connecting and each exchange. ``sender`` is a
    plain address (``name@domain``, no display name); ``port`` is from 1 to 65535.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        addresses: AddressBook,
        timeout: float = 10.0,
        starttls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
        fields: Iterable[str] = STANDARD_FIELDS,
        subject_prefix: str = "[casemgmt]",
    ) -> None:
        name = "EmailNotifier."
        self.host = check.word(host, name + "host", limit=check.MAX_HOST, what="a host name")
        self.port = check.whole(port, name + "port", 1, 65535)
        self.sender = check.address(sender, name + "sender")
        if not isinstance(addresses, Mapping) and not callable(addresses):
            raise check.invalid(
                f"must be a mapping or a function, not {type(addresses).__name__}",
                name + "addresses",
                "a mapping or a function from recipient id to e-mail address",
                addresses,
            )
        self.addresses = addresses
        self.timeout = check.number(timeout, name + "timeout", 0, check.MAX_TIMEOUT, above=True)
        self.starttls = check.flag(starttls, name + "starttls")
        check.instance(ssl_context, ssl.SSLContext, name + "ssl_context", nullable=True)
        self.ssl_context = ssl_context
        self.login = _login(login)
        self.allowlist = Allowlist(fields)
        self.subject_prefix = check.line(subject_prefix, name + "subject_prefix", limit=200)
        self.domain = self.sender.rpartition("@")[2]

    def _address(self, recipient: str) -> object:
        if callable(self.addresses):
            return self.addresses(recipient)
        return self.addresses.get(recipient)

    def build(self, notification: Notification) -> EmailMessage:
        """The message that :meth:`send` would send (no network)."""
        check.notification(notification, "notification")
        to = self._address(notification.recipient)
        if not isinstance(to, str) or not to or not check.ADDRESS.fullmatch(to) or not to.isprintable():
            problem = "no e-mail address" if to is None or to == "" else "no usable e-mail address"
            # Not retryable: the address book needs a fix first.
            raise DeliveryFailed(
                notification_id=notification.notification_id,
                channel="email",
                reason=f"{problem} for recipient {notification.recipient!r}",
                retryable=False,
            )
        rendered = self.allowlist.render(notification)
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = f"{self.subject_prefix} {rendered['kind']}: case {rendered['case_id']}"
        msg["Date"] = formatdate(notification.created_at.timestamp(), localtime=False)
        msg["Message-ID"] = message_id(notification, self.domain)
        msg["X-Idempotency-Key"] = idempotency_key(notification)
        msg.set_content("".join(f"{k}: {v}\n" for k, v in rendered.items()))
        return msg

    def send(self, notification: Notification) -> None:
        msg = self.build(notification)

        def failed(reason: str, *, retryable: bool = True) -> DeliveryFailed:
            return DeliveryFailed(
                notification_id=notification.notification_id,
                channel=f"email {self.host}:{self.port}",
                reason=reason,
                retryable=retryable,
            )

        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                if self.login is not None:
                    smtp.login(*self.login)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise failed(f"recipient refused (SMTP {codes})", retryable=any(c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            raise failed(f"SMTP {exc.smtp_code}", retryable=exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise failed(f"cannot send ({type(exc).__name__}: {exc})") from exc
        if refused:
            raise failed(f"refused for {len(refused)} recipient(s)", retryable=False)


def _login(value: object) -> tuple[str, str] | None:
    if value is None:
        return None
    if not (
        type(value) is tuple and len(value) == 2 and all(type(v) is str and 0 < len(v) <= 1000 for v in value)
    ):
        # The value may hold a password: never shown.
        raise InvalidData(
            "must be a (user, password) tuple of two non-empty strings",
            field="EmailNotifier.login",
            allowed="None or (user, password)",
            value=REDACTED,
        )
    return (value[0], value[1])
