"""The receiving side of a webhook: an idempotent ledger and a small local receiver.

Delivery is at least once: a relay that stops after sending and before recording the delivery
sends again when it restarts. A receiver therefore applies an effect once per
``Idempotency-Key``; :class:`IdempotentReceiver` does that, and :class:`LocalWebhookReceiver`
puts it behind an HTTP server on loopback for tests, examples and development.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import InvalidData
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
        self._effect = effect
        self._lock = threading.Lock()
        self._seen: dict[str, Rendered] = {}
        self.duplicates = 0

    def receive(self, key: str, payload: Rendered) -> bool:
        """Apply the effect if ``key`` is new; return whether it was."""
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
    context manager; ``port=0`` picks a free port (see :attr:`url`).
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
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise InvalidData(
                "the local receiver listens on loopback only", field="host", allowed="127.0.0.1, ::1"
            )
        self.secret = secret
        self.ledger = ledger or IdempotentReceiver()
        self.requests = 0
        self.rejected = 0
        self._failures: list[int] = []
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), self._handler(read_timeout))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/notifications"

    def fail_next(self, count: int, status: int = HTTPStatus.SERVICE_UNAVAILABLE) -> None:
        """Answer the next ``count`` requests with ``status`` and apply nothing."""
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
        """Wait until at least ``count`` requests have been answered; ``False`` on timeout."""
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
                if not key or payload is None:
                    self.rejected += 1
                    return HTTPStatus.BAD_REQUEST
                self.ledger.receive(key, payload)
                return HTTPStatus.OK
            finally:
                self.requests += 1
                self._cond.notify_all()

    def _handler(self, read_timeout: float) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = read_timeout

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
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


def _object(body: bytes) -> Rendered | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None
    return {str(k): v for k, v in value.items()}
