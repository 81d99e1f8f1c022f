"""Every public class and function of ``casemgmt_core.notify``, given arbitrary values.

Each argument is drawn from a mixture of values that fit and hostile ones (``None``, bools, ints
huge and small, NaN and infinities, text with control characters or lone surrogates, bytes,
lists, dicts, naive and out-of-range datetimes, objects of no use at all). The call either works
or raises a :class:`~casemgmt_core.CaseManagementError`: a ``TypeError``, ``AttributeError``,
``OverflowError`` or any other exception fails the test. Nothing is sent over the network, and
nothing listens on a port other than one the system picks.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import random
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import casemgmt_core as cm
from casemgmt_core import notify
from casemgmt_core.notify import (
    Allowlist,
    Backoff,
    CallbackNotifier,
    DeliveryFailed,
    EmailNotifier,
    IdempotentReceiver,
    LocalWebhookReceiver,
    LoggingNotifier,
    OutboxRelay,
    RecordingNotifier,
    RelayReport,
    ReminderScheduler,
    Route,
    Router,
    WebhookNotifier,
    encode_body,
    idempotency_key,
    message_id,
    reminder_for,
    sign,
    verify_signature,
)

from .conftest import SECRET, T0, Clock, note, open_case

HUGE = st.sampled_from([2**31, 2**63, -(2**63), 10**30, 10**5000, -(10**5000)])
ODD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 0.5])
ODD_TEXT = st.sampled_from(
    ["", " ", " x", "\x00", "a\nb", "\r\n", "\t", "\u202e", "\ud800", "é", "x" * 5000, "nan", "1", "True"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE,
    st.floats(),
    ODD_FLOATS,
    st.text(max_size=20),
    ODD_TEXT,
    st.binary(max_size=20),
)
OBJECTS = st.sampled_from(
    [
        object(),
        dt.timedelta(-1),
        dt.timedelta(0),
        dt.timedelta.max,
        dt.datetime(2026, 1, 5, 9, 0),  # naive
        dt.datetime.max.replace(tzinfo=dt.UTC),
        dt.date(2026, 1, 5),
        lambda *args, **kwargs: None,
        bytearray(b"x"),
        ["x"] * 2_000,
        cm.NotificationKind.ASSIGNMENT,
        cm.DueKind.ASSESSMENT,
    ]
)
HOSTILE = st.one_of(
    SCALARS,
    OBJECTS,
    st.lists(SCALARS, max_size=3),
    st.tuples(SCALARS, SCALARS),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
    st.frozensets(st.text(max_size=5), max_size=3),
)


def either(*fitting: object) -> st.SearchStrategy[Any]:
    """One of the values that fit (three times in four), or a hostile value: so that most calls
    get far enough for the hostile value to meet the check it is aimed at."""
    fits = st.sampled_from(fitting)
    return st.integers(0, 3).flatmap(lambda n: fits if n else HOSTILE)


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The result, or ``None`` where the library refused: only its own errors are allowed out."""
    try:
        return fn(*args, **kwargs)
    except cm.CaseManagementError:
        return None


NOTE = note()
TIMES = (T0, None)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


@functools.cache
def _due_case() -> tuple[cm.Case, cm.DueItem]:
    case = open_case(cm.CaseManager(cm.InMemoryStore(), clock=Clock()))
    return case, cm.DueItem(T0 + dt.timedelta(days=30), case.case_id, cm.DueKind.NO_CONTACT)


def _set_event() -> threading.Event:
    # Set already: a run loop given it checks its arguments and returns at once.
    stop = threading.Event()
    stop.set()
    return stop


def rendering(draw: st.DrawFn) -> None:
    allowlist = outcome(Allowlist, draw(either(["event"], {"event", "ground"}, frozenset())))
    if allowlist is not None:
        outcome(allowlist.render, draw(either(NOTE)))
    outcome(idempotency_key, draw(either(NOTE)))


def logging_channel(draw: st.DrawFn) -> None:
    channel = outcome(
        LoggingNotifier,
        draw(either(None, logging.getLogger("tests.notify.hostile"))),
        level=draw(either(logging.INFO, logging.DEBUG)),
        fields=draw(either(["event"], notify.LOG_FIELDS)),
    )
    if channel is not None:
        outcome(channel.send, draw(either(NOTE)))


def callback_channel(draw: st.DrawFn) -> None:
    got: list[object] = []
    channel = outcome(CallbackNotifier, draw(either(got.append)), fields=draw(either(["event"])))
    if channel is not None:
        outcome(channel.send, draw(either(NOTE)))


def email_channel(draw: st.DrawFn) -> None:
    mailer = outcome(
        EmailNotifier,
        draw(either("127.0.0.1", "mail.centre.example")),
        draw(either(25, 587)),
        sender=draw(either("n@centre.example")),
        addresses=draw(
            st.one_of(
                st.sampled_from([{"worker-1": "w@centre.example"}, lambda r: None, lambda r: "w@x.example"]),
                st.dictionaries(st.just("worker-1"), HOSTILE, max_size=1),
                HOSTILE,
            )
        ),
        timeout=draw(either(5, 0.5)),
        starttls=draw(either(True, False)),
        ssl_context=draw(either(None, _ssl_context())),
        login=draw(either(None, ("user", "password"))),
        fields=draw(either(["event"])),
        subject_prefix=draw(either("[casemgmt]", "")),
    )
    if mailer is not None:
        outcome(mailer.build, draw(either(NOTE)))  # builds the message, sends nothing
    outcome(message_id, draw(either(NOTE)), draw(either("centre.example")))


def webhook_channel(draw: st.DrawFn) -> None:
    hook = outcome(
        WebhookNotifier,
        draw(either("http://127.0.0.1:9/hook", "https://partner.example/notifications")),
        draw(either(SECRET, bytearray(SECRET))),
        timeout=draw(either(5, 0.3)),
        fields=draw(either(["event"])),
        headers=draw(either(None, {"X-Tenant": "centre-7"})),
        proxies=draw(either(None, {"https": "http://proxy.example:3128"})),
    )
    if hook is not None:
        outcome(hook.send, draw(HOSTILE))  # never a notification: nothing is sent
    outcome(encode_body, draw(either({"event": "assign"}, {})))
    outcome(sign, draw(either(SECRET)), draw(either(b"{}")))
    # A header as received: any text at all, not only what a sender would put there.
    header = draw(st.one_of(either(None, "sha256=00"), st.text(max_size=80)))
    outcome(verify_signature, draw(either(SECRET)), draw(either(b"{}")), header)


def delivery_failed(draw: st.DrawFn) -> None:
    outcome(
        DeliveryFailed,
        notification_id=draw(either("n1")),
        channel=draw(either("webhook")),
        reason=draw(either("HTTP status 500")),
        retryable=draw(either(True, False)),
        status=draw(either(None, 500)),
    )


def routing(draw: st.DrawFn) -> None:
    route = outcome(
        Route,
        draw(either(RecordingNotifier())),
        kinds=draw(either(None, [cm.NotificationKind.ASSIGNMENT], ["assignment"])),
        recipients=draw(either(None, ["worker-1"], "worker-1")),
        name=draw(either("", "staff")),
    )
    if route is not None:
        outcome(route.matches, draw(either(NOTE)))
    router = outcome(Router, draw(either([route] if route is not None else [], ())))
    if router is not None:
        outcome(router.channels_for, draw(either(NOTE)))
        outcome(router.send, draw(either(NOTE)))


def backoff(draw: st.DrawFn) -> None:
    seconds = dt.timedelta(seconds=1)
    b = outcome(
        Backoff,
        initial=draw(either(5 * seconds)),
        factor=draw(either(2, 2.5, 1)),
        maximum=draw(either(3600 * seconds)),
        jitter=draw(either(0.0, 1, 0.5)),
    )
    if b is not None:
        outcome(b.delay, draw(either(0, 1, 2, 63, 64, 10**30)), draw(either(None, random.Random(1))))


def relay(draw: st.DrawFn) -> None:
    outcome(
        RelayReport,
        draw(either((), ("n1",))),
        draw(either((), ("n2",))),
        draw(either(True, False)),
    )
    r = outcome(
        OutboxRelay,
        draw(either(cm.InMemoryStore())),
        draw(either(RecordingNotifier())),
        backoff=draw(either(None, Backoff())),
        clock=draw(either(Clock(), lambda: dt.datetime.now(dt.UTC))),
        batch_size=draw(either(1, 100)),
        rng=draw(either(None, random.Random(1))),
    )
    if r is not None:
        outcome(r.run_once, draw(either(*TIMES)))
        outcome(r.run, draw(either(_set_event())), interval=draw(either(1.0, 0.01)))


def reminders(draw: st.DrawFn) -> None:
    manager = cm.CaseManager(cm.InMemoryStore(), clock=Clock())
    scheduler = outcome(
        ReminderScheduler,
        draw(either(manager)),
        kinds=draw(either(None, [cm.DueKind.ASSESSMENT], ["assessment"])),
        unassigned_to=draw(either("supervisors")),
        escalate_overdue_to=draw(either(None, "supervisors")),
        recipients=draw(either(None, lambda case, item: ["a"])),
        page_size=draw(either(1, 500)),
    )
    if scheduler is not None:
        outcome(scheduler.due, draw(either(*TIMES)))
        outcome(scheduler.enqueue, draw(either(*TIMES)))
        outcome(scheduler.run, draw(either(_set_event())), interval=draw(either(3600.0)))
    case, item = _due_case()
    outcome(reminder_for, draw(either(case)), draw(either(item)), draw(either("worker-1")), draw(either(T0)))


def receivers(draw: st.DrawFn) -> None:
    ledger = outcome(IdempotentReceiver, draw(either(None, lambda payload: None)))
    if ledger is not None:
        outcome(ledger.receive, draw(either("C1/2:assignment:worker-1")), draw(either({"event": "assign"})))
    # Port 0 lets the system pick a free one; no other port is tried, so that nothing else
    # running here loses its port to this test.
    port = draw(st.one_of(st.just(0), HOSTILE.filter(lambda v: not (isinstance(v, int) and 0 < v < 65536))))
    receiver = outcome(
        LocalWebhookReceiver,
        draw(either(SECRET)),
        host=draw(either("127.0.0.1", "::1", "0.0.0.0")),
        port=port,
        ledger=draw(either(None, IdempotentReceiver())),
        read_timeout=draw(either(5.0)),
    )
    if receiver is not None:
        try:
            outcome(receiver.fail_next, draw(either(1)), draw(either(503, 500)))
            outcome(receiver.wait_for_requests, draw(either(0)), 0)
            outcome(receiver.wait_for_requests, 0, draw(either(0.0, 1)))
        finally:
            receiver.stop()


ENTRY_POINTS: dict[str, Callable[[st.DrawFn], None]] = {
    "rendering": rendering,
    "logging": logging_channel,
    "callback": callback_channel,
    "email": email_channel,
    "webhook": webhook_channel,
    "delivery_failed": delivery_failed,
    "routing": routing,
    "backoff": backoff,
    "relay": relay,
    "reminders": reminders,
    "receivers": receivers,
}

#: Which entry point drives each public name of ``casemgmt_core.notify``.
DRIVEN_BY = {
    "Allowlist": "rendering",
    "idempotency_key": "rendering",
    "LoggingNotifier": "logging",
    "CallbackNotifier": "callback",
    "EmailNotifier": "email",
    "message_id": "email",
    "WebhookNotifier": "webhook",
    "encode_body": "webhook",
    "sign": "webhook",
    "verify_signature": "webhook",
    "DeliveryFailed": "delivery_failed",
    "Route": "routing",
    "Router": "routing",
    "Backoff": "backoff",
    "RelayReport": "relay",
    "OutboxRelay": "relay",
    "ReminderScheduler": "reminders",
    "reminder_for": "reminders",
    "IdempotentReceiver": "receivers",
    "LocalWebhookReceiver": "receivers",
}
#: Public names with nothing to drive: a type alias, an enum (looked up like every enum of the
#: library), and the recording notifier of ``casemgmt_core.adapters.memory``, which takes no argument.
NOT_DRIVEN = {"Rendered", "ReminderStatus", "RecordingNotifier"}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@given(data=st.data())
def test_only_library_errors_come_out(entry: str, data: st.DataObject) -> None:
    ENTRY_POINTS[entry](data.draw)


def test_every_public_name_is_driven() -> None:
    callables = {name for name in notify.__all__ if callable(getattr(notify, name))}
    assert callables - NOT_DRIVEN == set(DRIVEN_BY)
    assert set(DRIVEN_BY.values()) == set(ENTRY_POINTS)


def test_a_port_in_use_is_refused_as_invalid_data() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(cm.InvalidData, match=r"cannot listen on 127\.0\.0\.1 port") as info:
            LocalWebhookReceiver(SECRET, port=port)
    assert info.value.field == "LocalWebhookReceiver.port"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Backoff(factor="2"), "Backoff.factor"),  # type: ignore[arg-type]
        (lambda: Backoff(initial=5), "Backoff.initial"),  # type: ignore[arg-type]
        (lambda: Backoff(jitter=float("nan")), "Backoff.jitter"),
        (lambda: Backoff(factor=10**5000), "Backoff.factor"),
        (lambda: Backoff(initial=dt.timedelta(hours=2)), "Backoff.initial"),  # longer than the maximum
        (
            lambda: OutboxRelay(cm.InMemoryStore(), RecordingNotifier(), batch_size=True),
            "OutboxRelay.batch_size",
        ),
        (lambda: OutboxRelay(cm.InMemoryStore(), object()), "OutboxRelay.notifier"),  # type: ignore[arg-type]
        (
            lambda: ReminderScheduler(cm.CaseManager(cm.InMemoryStore()), page_size="x"),
            "ReminderScheduler.page_size",
        ),  # type: ignore[arg-type]
        (
            lambda: ReminderScheduler(cm.CaseManager(cm.InMemoryStore()), kinds="assessment"),
            "ReminderScheduler.kinds",
        ),  # type: ignore[arg-type]
        (lambda: WebhookNotifier(123, SECRET), "WebhookNotifier.url"),  # type: ignore[arg-type]
        (lambda: WebhookNotifier("http://[::1/x", SECRET), "WebhookNotifier.url"),
        (lambda: WebhookNotifier("http://h.example:99999/x", SECRET), "WebhookNotifier.url"),
        (lambda: WebhookNotifier("http://h.example/x", "secret"), "WebhookNotifier.secret"),  # type: ignore[arg-type]
        (lambda: WebhookNotifier("http://h.example/x", SECRET, timeout=math.inf), "WebhookNotifier.timeout"),
        (
            lambda: WebhookNotifier("http://h.example/x", SECRET, headers={"X-A": "a\r\nB: b"}),
            "WebhookNotifier.headers",
        ),
        (lambda: EmailNotifier("h", True, sender="n@x.example", addresses={}), "EmailNotifier.port"),  # type: ignore[arg-type]
        (lambda: EmailNotifier("h", 25, sender="n@x.example", addresses=[]), "EmailNotifier.addresses"),  # type: ignore[arg-type]
        (
            lambda: EmailNotifier("h", 25, sender="n@x.example", addresses={}, subject_prefix="a\nBcc: x"),
            "EmailNotifier.subject_prefix",
        ),
        (lambda: Allowlist("event"), "Allowlist.fields"),  # type: ignore[arg-type]
        (lambda: Route(RecordingNotifier(), kinds=["assignment"]), "Route.kinds"),  # type: ignore[list-item]
        (lambda: LoggingNotifier(level="INFO"), "LoggingNotifier.level"),  # type: ignore[arg-type]
        (lambda: verify_signature(SECRET, b"{}", 1), "verify_signature.header"),  # type: ignore[arg-type]
    ],
)
def test_examples_from_the_issue_name_the_argument(build: Callable[[], object], field: str | None) -> None:
    with pytest.raises(cm.CaseManagementError) as info:
        build()
    if field is not None:
        assert isinstance(info.value, cm.InvalidData)
        assert info.value.field == field


def test_a_signature_header_of_any_text_is_just_wrong() -> None:
    assert verify_signature(SECRET, b"{}", "sha256=é") is False
    assert verify_signature(SECRET, b"{}", sign(SECRET, b"{}")) is True
