"""Webhook channel: an HTTP POST of the minimised notification as JSON, signed with HMAC-SHA256.

Headers sent with each request:

- ``Idempotency-Key``: the notification id (see :func:`~.rendering.idempotency_key`), which
  embeds the event id; a retry of the same notification carries the same key, so the receiver
  can apply the effect once (see :class:`~.receiver.IdempotentReceiver`).
- ``X-Casemgmt-Signature``: ``sha256=<hex>``, the HMAC-SHA256 of the exact body bytes under the
  shared secret (check it with :func:`verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

from ..ports import Notification
from . import _checks as check
from .errors import DeliveryFailed
from .rendering import STANDARD_FIELDS, Allowlist, Rendered, idempotency_key

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookNotifier",
    "encode_body",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Casemgmt-Signature"

# Statuses after which the same request may succeed later; any other 4xx needs a fix first.
_RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def encode_body(rendered: Rendered) -> bytes:
    """The request body: compact JSON with sorted keys, UTF-8."""
    body = check.rendered(rendered, "encode_body.rendered")
    try:
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form; escaped, the body is still valid JSON.
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    key = check.secret(secret, "sign.secret")
    return "sha256=" + hmac.new(key, check.data(body, "sign.body"), hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (compared in constant time).

    ``header`` is the header's value as received, ``None`` if it was missing.
    """
    expected = sign(secret, body)
    if header is None:
        return False
    if type(header) is not str:
        raise check.invalid(
            f"must be a string or None, not {type(header).__name__}", "verify_signature.header", "str", header
        )
    # compare_digest takes ASCII strings only, and a signature is ASCII: anything else is wrong.
    return header.isascii() and hmac.compare_digest(expected, header)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would be re-sent elsewhere, possibly as a GET: treat a 3xx as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookNotifier:
    """POSTs each notification to ``url``.

    ``url`` is an ASCII http or https URL with a host (percent-encode anything else, and give an
    international domain name in its ``xn--`` form); ``secret`` (non-empty bytes) signs the
    body; ``timeout`` (seconds, more than 0, at most an hour) bounds connecting and each read.
    ``headers`` are sent with every request (names and one-line values). Proxy
    settings from the environment are ignored so that a notification never leaves by a route that
    was not configured; pass ``proxies`` (scheme to proxy URL) to use one. A response outside
    2xx, a timeout or a connection error raises :class:`DeliveryFailed`.
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout: float = 10.0,
        fields: Iterable[str] = STANDARD_FIELDS,
        headers: Mapping[str, str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        name = "WebhookNotifier."
        self.url = _url(url, name + "url")
        self.secret = check.secret(secret, name + "secret")
        self.timeout = check.number(timeout, name + "timeout", 0, check.MAX_TIMEOUT, above=True)
        self.allowlist = Allowlist(fields)
        self.headers = check.text_map(headers, name + "headers", key=check.header_name)
        proxies = check.text_map(proxies, name + "proxies", key=_scheme)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies), _NoRedirect())

    def send(self, notification: Notification) -> None:
        body = encode_body(self.allowlist.render(notification))
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                **self.headers,
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": idempotency_key(notification),
                SIGNATURE_HEADER: sign(self.secret, body),
            },
        )

        def failed(reason: str, *, retryable: bool = True, status: int | None = None) -> DeliveryFailed:
            return DeliveryFailed(
                notification_id=notification.notification_id,
                channel=f"webhook {self.url}",
                reason=reason,
                retryable=retryable,
                status=status,
            )

        try:
            response: IO[bytes] = self._opener.open(request, timeout=self.timeout)
            with response:
                status = getattr(response, "status", 200)
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            retryable = exc.code >= 500 or exc.code in _RETRYABLE_STATUSES
            raise failed(f"HTTP status {exc.code}", retryable=retryable, status=exc.code) from None
        except urllib.error.URLError as exc:
            raise failed(f"cannot reach the receiver ({exc.reason})") from exc
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise failed(f"no answer within {self.timeout} s or the connection broke ({exc})") from exc
        if not 200 <= status < 300:
            raise failed(f"HTTP status {status}", status=status)


def _url(value: object, field: str) -> str:
    url = check.word(value, field, limit=check.MAX_URL, what="a URL")
    allowed = "an ASCII http(s)://host/… URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (parsed on access: a bad port raises here, not when sending)
    except ValueError:
        raise check.invalid("must be an http or https URL with a host", field, allowed, url) from None
    if not url.isascii() or parts.scheme not in ("http", "https") or not parts.hostname:
        raise check.invalid("must be an http or https URL with a host", field, allowed, url)
    return url


def _scheme(value: object, field: str) -> str:
    scheme = check.word(value, field, limit=20, what="a URL scheme")
    if not scheme.isascii() or not scheme.isalpha():
        raise check.invalid("is not a URL scheme", field, "a scheme such as http or https", value)
    return scheme
