"""The receiving side of a webhook: an idempotent ledger and a small local receiver.

Delivery is at least once: a relay that stops after sending and before recording the delivery
sends again when it restarts. A receiver therefore applies an effect once per
``Idempotency-Key``; :class:`IdempotentReceiver` does that, and :class:`LocalWebhookReceiver`
puts it behind an HTTP server on loopback for tests, examples and development.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import InvalidData
from . import _checks as check
from .rendering import Rendered
from .webhook import SIGNATURE_HEADER, verify_signature

__all__ = ["IdempotentReceiver", "LocalWebhookReceiver"]

_MAX_BODY = 1 << 20


class IdempotentReceiver:
    """Applies ``effect`` to a payload once per idempotency key; repeats are counted, not applied.

    Thread-safe. In production the set of seen keys belongs in the receiver's database, written in
    the same transaction as the effect.
    """

    def __init__(self, effect: Callable[[Rendered], object] | None = None) -> None:
        self._effect: Callable[[Rendered], object] | None = check.function(
            effect, "IdempotentReceiver.effect", nullable=True
        )
        self._lock = threading.Lock()
        self._seen: dict[str, Rendered] = {}
        self.duplicates = 0

    def receive(self, key: str, payload: Rendered) -> bool:
        """Apply the effect if ``key`` (one line of text) is new; return whether it was."""
        key = _key(key)
        payload = check.rendered(payload, "IdempotentReceiver.receive.payload")
        with self._lock:
            if key in self._seen:
                self.duplicates += 1
                return False
            if self._effect is not None:
                self._effect(payload)
            self._seen[key] = payload
            return True

    @property
    def effects(self) -> dict[str, Rendered]:
        """Each applied payload by its idempotency key, in the order received."""
        with self._lock:
            return dict(self._seen)


class LocalWebhookReceiver:
    """An HTTP server on a loopback address that checks signatures and applies each key once.

    Answers 401 to a missing or wrong signature, 400 to a missing key or a body that is not a
    JSON object, and 200 to a valid request, a repeat included (the sender may then record it as
    delivered). :meth:`fail_next` makes the next requests fail, to exercise retries. Use it as a
    context manager; ``port=0`` picks a free port (see :attr:`url`). ``secret`` is non-empty
    bytes; ``host`` a loopback address (``127.0.0.1``, ``::1``); ``read_timeout`` (seconds, more
    than 0, at most an hour) bounds each read of a request. A port that cannot be listened on
    (taken, or privileged) is refused as :class:`~casemgmt_core.InvalidData`.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ledger: IdempotentReceiver | None = None,
        read_timeout: float = 5.0,
    ) -> None:
        name = "LocalWebhookReceiver."
        self.secret = check.secret(secret, name + "secret")
        host = check.word(host, name + "host", limit=check.MAX_HOST, what="an IP address")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is None or not ip.is_loopback:
            raise check.invalid(
                "the local receiver listens on loopback only", name + "host", "127.0.0.1, ::1", host
            )
        port = check.whole(port, name + "port", 0, 65535)
        check.instance(ledger, IdempotentReceiver, name + "ledger", nullable=True)
        self.ledger = ledger or IdempotentReceiver()
        read_timeout = check.number(read_timeout, name + "read_timeout", 0, check.MAX_TIMEOUT, above=True)
        self.requests = 0
        self.rejected = 0
        self._failures: list[int] = []
        self._cond = threading.Condition()
        server = _Server6 if ip.version == 6 else _Server4
        try:
            self._server = server((host, port), self._handler(read_timeout))
        except OSError as exc:
            raise InvalidData(
                f"cannot listen on {host} port {port} ({exc.strerror or type(exc).__name__})",
                field=name + "port",
                allowed="0 (any free port) or a free, unprivileged port",
                value=port,
            ) from None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = f"[{host!s}]" if ":" in str(host) else str(host)
        return f"http://{host}:{port}/notifications"

    def fail_next(self, count: int, status: int = HTTPStatus.SERVICE_UNAVAILABLE) -> None:
        """Answer the next ``count`` (0 to 10000) requests with ``status`` (an HTTP status code)
        and apply nothing."""
        count = check.whole(count, "LocalWebhookReceiver.fail_next.count", 0, 10_000)
        status = check.whole(status, "LocalWebhookReceiver.fail_next.status", 100, 599)
        with self._cond:
            self._failures.extend([status] * count)

    def start(self) -> LocalWebhookReceiver:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalWebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` requests have been answered; ``False`` on timeout (seconds,
        at most an hour)."""
        check.whole(count, "LocalWebhookReceiver.wait_for_requests.count", 0)
        timeout = check.number(
            timeout, "LocalWebhookReceiver.wait_for_requests.timeout", 0, check.MAX_TIMEOUT
        )
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.requests < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _answer(self, key: str | None, signature: str | None, body: bytes) -> int:
        with self._cond:
            try:
                if not verify_signature(self.secret, body, signature):
                    self.rejected += 1
                    return HTTPStatus.UNAUTHORIZED
                if self._failures:
                    return self._failures.pop(0)
                payload = _object(body)
                if payload is None or not _usable(key):
                    self.rejected += 1
                    return HTTPStatus.BAD_REQUEST
                self.ledger.receive(str(key), payload)
                return HTTPStatus.OK
            finally:
                self.requests += 1
                self._cond.notify_all()

    def _handler(self, read_timeout: float) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = read_timeout

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:  # not a number: as bad as no length at all
                    length = 0
                if not 0 < length <= _MAX_BODY:
                    self.send_response(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length else HTTPStatus.BAD_REQUEST
                    )
                    self.end_headers()
                    return
                body = self.rfile.read(length)
                status = receiver._answer(
                    self.headers.get("Idempotency-Key"), self.headers.get(SIGNATURE_HEADER), body
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                # Request lines carry nothing useful and would clutter the embedding system's stderr.
                return

        return Handler


class _Server4(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


def _key(value: object) -> str:
    key = check.line(value, "IdempotentReceiver.receive.key", limit=check.MAX_URL)
    if not key:
        raise check.invalid("is empty", "IdempotentReceiver.receive.key", "a non-empty string", key)
    return key


def _usable(key: str | None) -> bool:
    try:
        _key(key)
    except InvalidData:
        return False
    return True


def _object(body: bytes) -> Rendered | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None
    return {str(k): v for k, v in value.items()}
