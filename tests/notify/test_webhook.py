"""The webhook channel against a real HTTP server on loopback."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import casemgmt_core as cm
from casemgmt_core.notify import (
    SIGNATURE_HEADER,
    Allowlist,
    DeliveryFailed,
    LocalWebhookReceiver,
    WebhookNotifier,
    encode_body,
    sign,
    verify_signature,
)

from .conftest import SECRET, note


class Capture(BaseHTTPRequestHandler):
    """Answers with the class's ``status`` and keeps each request's headers and body."""

    status = 200
    location = ""
    seen: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012 - reset per test by the fixture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((dict(self.headers.items()), body))
        self.send_response(type(self).status)
        if self.location:
            self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        type(self).seen.append((dict(self.headers.items()), b"GET"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def capture() -> Iterator[tuple[type[Capture], str]]:
    handler = type("Handler", (Capture,), {"seen": [], "status": 200, "location": ""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_posts_signed_json_with_the_idempotency_key(capture: tuple[type[Capture], str]) -> None:
    handler, url = capture
    n = note(event="assign", name="홍길동")
    WebhookNotifier(url, SECRET, fields={"event"}, headers={"X-Tenant": "centre-7"}).send(n)
    [(headers, body)] = handler.seen
    assert headers["Idempotency-Key"] == "C1/2:assignment:worker-1"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Tenant"] == "centre-7"
    assert headers[SIGNATURE_HEADER] == sign(SECRET, body)
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
    assert json.loads(body) == Allowlist({"event"}).render(n)
    assert body == encode_body(Allowlist({"event"}).render(n))
    assert "홍길동".encode() not in body


def test_signature_check_rejects_tampering() -> None:
    body = b'{"a":"1"}'
    good = sign(SECRET, body)
    assert good.startswith("sha256=")
    assert len(good) == len("sha256=") + 64
    assert not verify_signature(SECRET, b'{"a":"2"}', good)
    assert not verify_signature(b"other", body, good)
    assert not verify_signature(SECRET, body, None)


def test_receiver_rejects_a_wrong_signature_as_not_retryable(receiver: LocalWebhookReceiver) -> None:
    with pytest.raises(DeliveryFailed, match="HTTP status 401") as info:
        WebhookNotifier(receiver.url, b"wrong-secret").send(note())
    assert info.value.status == 401
    assert info.value.retryable is False
    assert receiver.rejected == 1
    assert receiver.ledger.effects == {}


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True), (400, False)])
def test_error_statuses_raise(capture: tuple[type[Capture], str], status: int, retryable: bool) -> None:
    handler, url = capture
    handler.status = status
    with pytest.raises(DeliveryFailed, match=f"HTTP status {status}") as info:
        WebhookNotifier(url, SECRET).send(note())
    assert info.value.status == status
    assert info.value.retryable is retryable


def test_a_non_2xx_success_code_is_not_delivery(capture: tuple[type[Capture], str]) -> None:
    handler, url = capture
    handler.status = 304
    with pytest.raises(DeliveryFailed, match="HTTP status 304"):
        WebhookNotifier(url, SECRET).send(note())


def test_a_redirect_is_not_followed(capture: tuple[type[Capture], str]) -> None:
    handler, url = capture
    handler.status, handler.location = 302, url + "/elsewhere"
    with pytest.raises(DeliveryFailed, match="HTTP status 302") as info:
        WebhookNotifier(url, SECRET).send(note())
    assert info.value.retryable is False
    assert len(handler.seen) == 1  # no second request to the Location


def test_a_silent_receiver_times_out_within_the_limit() -> None:
    # A listening socket that never answers: the connection is accepted by the kernel, the
    # request is sent, and no response ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        started = time.monotonic()
        with pytest.raises(DeliveryFailed, match="not delivered by webhook") as info:
            WebhookNotifier(url, SECRET, timeout=0.3).send(note())
        assert time.monotonic() - started < 3
    assert info.value.retryable is True


def test_an_unreachable_receiver_raises() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    with pytest.raises(DeliveryFailed, match="cannot reach the receiver") as info:
        WebhookNotifier(f"http://127.0.0.1:{port}/hook", SECRET, timeout=2).send(note())
    assert info.value.retryable is True


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "http:///nohost", "hook"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(cm.InvalidData, match="url: must be an http or https URL"):
        WebhookNotifier(url, SECRET)


def test_empty_secret_and_bad_timeout_are_refused() -> None:
    with pytest.raises(cm.InvalidData, match="secret"):
        WebhookNotifier("http://127.0.0.1:9/x", b"")
    with pytest.raises(cm.InvalidData, match="timeout"):
        WebhookNotifier("http://127.0.0.1:9/x", SECRET, timeout=0)


def test_local_receiver_applies_each_key_once(receiver: LocalWebhookReceiver) -> None:
    hook = WebhookNotifier(receiver.url, SECRET)
    hook.send(note())
    hook.send(note())
    hook.send(note("C1/5:assignment:worker-2", recipient="worker-2"))
    assert receiver.requests == 3
    assert list(receiver.ledger.effects) == ["C1/2:assignment:worker-1", "C1/5:assignment:worker-2"]
    assert receiver.ledger.duplicates == 1


def test_local_receiver_listens_on_loopback_only() -> None:
    with pytest.raises(cm.InvalidData, match="loopback only"):
        LocalWebhookReceiver(SECRET, host="0.0.0.0")


def test_local_receiver_can_fail_on_purpose(receiver: LocalWebhookReceiver) -> None:
    receiver.fail_next(1, status=502)
    hook = WebhookNotifier(receiver.url, SECRET)
    with pytest.raises(DeliveryFailed, match="HTTP status 502"):
        hook.send(note())
    assert receiver.ledger.effects == {}
    hook.send(note())
    assert list(receiver.ledger.effects) == ["C1/2:assignment:worker-1"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Length": "many"}, 400),  # not a number
        ({SIGNATURE_HEADER: "sha256=é"}, 401),  # not ASCII: just a wrong signature
        ({SIGNATURE_HEADER: sign(SECRET, b"{}"), "Idempotency-Key": "a\x01b"}, 400),  # not a usable key
    ],
)
def test_local_receiver_answers_malformed_requests(
    receiver: LocalWebhookReceiver, headers: dict[str, str], status: int
) -> None:
    host, port = receiver.url.split("/")[2].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.putrequest("POST", "/notifications")
        sent = {"Content-Length": "2", **headers}
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders(b"{}")
        assert connection.getresponse().status == status
    finally:
        connection.close()
    assert receiver.ledger.effects == {}
