"""Data minimisation: sensitive values put into a case never reach a rendered notification.

Names, birth dates and abuse details are placed wherever the model takes them (household
members, the referral, notes, journal texts, needs, goals, strengths, crisis descriptions, a
transfer's hand-over note, a referral to another agency, an approval's comment); every
notification the case and its reminders produce is then sent through every channel, to real
servers on loopback, and the webhook bodies, e-mails and log records are searched for them.

A hit must mean a leak, never a coincidence with the library's own words (``no_contact``,
``ground``, a statute's name). So every sensitive text ends in a *tag*, Hangul syllables
alternating with digits (``민4수0영7``), a shape that no text of the library has
(:func:`test_no_library_text_has_the_tag_shape` checks its sources and data), and the search
looks for the whole text and for its tag alone, never for a realistic part by itself. Birth
dates lie before 2020, every time in these cases in 2026 or later. The realistic part in front
(a Korean or romanised name, a phrase about abuse) keeps what the channels must encode
realistic: Hangul, spaces, capitals.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import json
import logging
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import casemgmt_core as cm
from casemgmt_core.notify import (
    STANDARD_FIELDS,
    Allowlist,
    CallbackNotifier,
    EmailNotifier,
    LocalWebhookReceiver,
    LoggingNotifier,
    ReminderScheduler,
    Route,
    Router,
    WebhookNotifier,
    encode_body,
)

from .conftest import SECRET, SUPERVISOR, T0, TEAM, WORKER, Clock, Mailbox

HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
DIGITS = st.sampled_from("0123456789")
#: How every tag begins, and what no text of the library has.
TAG_SHAPE = re.compile(r"(?:[\uac00-\ud7a3][0-9]){3}")
tags = st.lists(st.tuples(HANGUL, DIGITS).map("".join), min_size=3, max_size=5).map("".join)

FAMILY_NAMES = "김이박최정강조윤장임한오서신권황안송류홍"
korean_names = st.builds(
    lambda family, given: family + given,
    st.sampled_from(FAMILY_NAMES),
    st.text(HANGUL, min_size=1, max_size=2),
)
latin_names = st.from_regex(r"[A-Z][a-z]{1,5} [A-Z][a-z]{3,9}", fullmatch=True)
names = st.builds(lambda name, tag: f"{name} {tag}", st.one_of(korean_names, latin_names), tags)
birth_dates = st.dates(dt.date(1930, 1, 1), dt.date(2004, 12, 31))
child_birth_dates = st.dates(dt.date(2010, 1, 1), dt.date(2019, 12, 31))
ABUSE = [
    "아버지가 아이를 때림",
    "할머니를 방임함",
    "배우자 폭행",
    "bruises on both arms",
    "locked out overnight",
]
abuse_details = st.builds(lambda phrase, tag: f"{phrase} {tag}", st.sampled_from(ABUSE), tags)


@st.composite
def sensitive(draw: st.DrawFn) -> dict[str, str | dt.date]:
    people = draw(st.lists(names, min_size=2, max_size=2, unique=True))
    details = draw(st.lists(abuse_details, min_size=8, max_size=8, unique=True))
    return {
        "parent_name": people[0],
        "child_name": people[1],
        "parent_born": draw(birth_dates),
        "child_born": draw(child_birth_dates),
        **{f"detail{i}": d for i, d in enumerate(details)},
    }


def searched_forms(value: str | dt.date) -> list[str]:
    """What a leak of ``value`` would show: a date in any usual format; a text whole, or its tag."""
    if isinstance(value, dt.date):
        return [value.isoformat(), value.strftime("%Y%m%d"), value.strftime("%Y.%m.%d")]
    tag = value.rpartition(" ")[2]
    assert TAG_SHAPE.match(tag), value
    return [value, tag]


def leaked(value: str | dt.date, texts: list[str]) -> bool:
    return any(form in text for form in searched_forms(value) for text in texts)


def run_case(manager: cm.CaseManager, clock: Clock, s: dict[str, str | dt.date]) -> None:
    """A case whose every free-text field and member holds a sensitive value."""
    assert isinstance(s["parent_born"], dt.date)
    assert isinstance(s["child_born"], dt.date)
    hh = cm.Household(
        "H1",
        [
            cm.Member("parent", s["parent_born"], name=str(s["parent_name"]), relation="mother"),
            cm.Member("child", s["child_born"], name=str(s["child_name"]), guardian_id="parent"),
        ],
        region="R1",
    )
    school = cm.Agency("school-1", "Elementary school")
    referral = cm.Referral(cm.ReferralChannel.SCHOOL, clock(), school, str(s["detail0"]))
    manager.open_case(hh, referral, actor=WORKER, case_id="C1", note=str(s["detail1"]))
    provider = cm.Agency("provider-1", "Job centre")
    mh_centre = cm.Agency("mh-centre", "Mental health welfare centre")

    def consent(scope: cm.ConsentScope, agency: str | None = None) -> cm.RecordConsent:
        return cm.RecordConsent(
            cm.Consent(
                f"{scope.value}-{agency}", scope, "parent", cm.ConsentGiver.PERSON, "parent", clock(), agency
            )
        )

    TAKER = cm.Actor("worker-2", "caseworker", frozenset({"team-2"}))
    steps: list[tuple[cm.Command, cm.Actor, str]] = [
        (cm.AssignCaseworker("worker-1", team_id=TEAM), WORKER, str(s["parent_name"])),
        (cm.StartIntake(), WORKER, ""),
        (cm.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS), WORKER, ""),
        (cm.RecordIntakeFindings(wanted_change=str(s["detail2"])), WORKER, ""),
        (cm.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE), WORKER, str(s["detail3"])),
        (cm.RecordJournal(cm.JournalKind.NEW_FINDING, str(s["detail4"]), "child"), WORKER, ""),
        (consent(cm.ConsentScope.SERVICE_PROVISION), WORKER, ""),
        (consent(cm.ConsentScope.PERSONAL_DATA), WORKER, ""),
        (cm.CompleteIntake(), WORKER, ""),
        (cm.Select(), WORKER, str(s["child_name"])),
        (cm.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT, str(s["detail5"]))), WORKER, ""),
        (cm.RecordStrength(cm.Strength(str(s["detail6"]), "parent")), WORKER, ""),
        (cm.CompleteAssessment(), WORKER, ""),
        (cm.SetGoal(cm.Goal("G1", str(s["detail7"]), ["N1"])), WORKER, ""),
        (cm.ScheduleConference(cm.CaseConference("CC1", clock(), ["lead-1"], ["school-1"])), WORKER, ""),
        (cm.ApprovePlan("CC1"), SUPERVISOR, str(s["detail0"])),
        (consent(cm.ConsentScope.SHARING, provider.id), WORKER, ""),
        (
            cm.LinkService(
                cm.ServiceItem("S1", "N1", "job_placement", provider, cm.ResourceKind.FORMAL, clock())
            ),
            WORKER,
            str(s["detail1"]),
        ),
        (cm.DeclareCrisis(str(s["detail2"])), WORKER, str(s["detail3"])),
        (cm.ResolveCrisis(str(s["detail4"])), WORKER, ""),
        # a transfer with a hand-over note, a referral to another agency, an approval asked for
        (
            cm.TransferCase(str(s["detail5"]), caseworker_id="worker-2", team_id="team-2"),
            WORKER,
            str(s["detail6"]),
        ),
        # from here on the case is worker-2's
        (consent(cm.ConsentScope.SHARING, mh_centre.id), TAKER, ""),
        (cm.ReferOut(mh_centre, str(s["detail7"])), TAKER, str(s["parent_name"])),
        (cm.RequestApproval("A1", cm.ApprovalStep.CLOSURE, comment=str(s["detail0"])), TAKER, ""),
    ]
    for command, actor, note in steps:
        manager.handle("C1", command, actor=actor, note=note)


class Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def address(recipient: str) -> str:
    return f"r-{hashlib.sha256(recipient.encode()).hexdigest()[:10]}@agency.example"


def mail_text(raw: bytes) -> str:
    """Every header and every part of a message, decoded: the text a reader sees. (Not the raw
    bytes: a base64 or quoted-printable body may hold any run of digits, a date's, by chance.)"""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out: list[str] = []
    for part in msg.walk():
        out += [f"{k}: {v}" for k, v in part.items()]
        if not part.is_multipart():
            out.append(str(part.get_content()))  # type: ignore[attr-defined]
    return "\n".join(out)


def through_every_channel(
    notes: list[cm.Notification],
    fields: frozenset[str],
    smtp: tuple[Mailbox, int],
    caplog: pytest.LogCaptureFixture,
) -> dict[str, list[str]]:
    """Sends ``notes`` through every channel, each rendering ``fields``; what each channel let out
    (the log: every record of the library since ``caplog`` was last cleared)."""
    box, port = smtp
    box.messages.clear()
    callback_out: list[dict[str, str]] = []
    with LocalWebhookReceiver(SECRET) as receiver:
        router = Router(
            [
                Route(WebhookNotifier(receiver.url, SECRET, timeout=5, fields=fields)),
                Route(
                    EmailNotifier(
                        "127.0.0.1",
                        port,
                        sender="n@centre.example",
                        addresses=address,
                        timeout=5,
                        fields=fields,
                    )
                ),
                Route(LoggingNotifier(fields=fields)),
                Route(CallbackNotifier(callback_out.append, fields=fields)),
            ]
        )
        for n in notes:
            router.send(n)
        bodies = [json.dumps(p, ensure_ascii=False) for p in receiver.ledger.effects.values()]
    assert len(bodies) == len(notes)
    assert len(box.messages) == len(notes)
    assert sum(r.name == "casemgmt_core.notify" for r in caplog.records) == len(notes)
    return {
        "webhook": bodies,
        "email": [mail_text(raw) for _, raw in box.messages],
        "log": [r.getMessage() + repr(getattr(r, "notification", "")) for r in caplog.records],
        "callback": [json.dumps(c, ensure_ascii=False) for c in callback_out],
    }


_SERVERS = [HealthCheck.function_scoped_fixture]
# Each example runs real servers: shrinking a failure would take minutes, and the failure already
# names the value and the channel.
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@settings(max_examples=15, suppress_health_check=_SERVERS, phases=_NO_SHRINK)
@given(values=sensitive())
def test_no_sensitive_value_reaches_any_channel(
    values: dict[str, str | dt.date], smtp: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="casemgmt_core")
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), clock=clock)
    run_case(manager, clock, values)
    notes = [p.notification for p in manager.store.pending_notifications(limit=1000)]
    notes += ReminderScheduler(manager, escalate_overdue_to="supervisors").due(T0 + dt.timedelta(days=400))
    kinds = {n.kind for n in notes}
    assert kinds == set(cm.NotificationKind) - {cm.NotificationKind.HAND_OVER}
    transfers = {(n.recipient, n.data["side"]) for n in notes if n.kind is cm.NotificationKind.TRANSFER}
    assert transfers == {("worker-1", "from"), ("worker-2", "to")}
    reminded = {n.data["due_kind"] for n in notes if n.kind is cm.NotificationKind.REMINDER}
    assert {"approval", "agency_referral", "no_contact", "case_max_duration"} <= reminded
    assert all(n.created_at.year >= 2026 for n in notes)  # so no time can show a birth date

    # Every channel gets every data key the library produces.
    rendered = through_every_channel(notes, STANDARD_FIELDS, smtp, caplog)

    for name, value in values.items():
        for channel, texts in rendered.items():
            assert not leaked(value, texts), f"{name} reached the {channel}"


@settings(max_examples=5, suppress_health_check=_SERVERS, phases=_NO_SHRINK)
@given(values=sensitive())
def test_the_search_finds_every_value_a_channel_lets_out(
    values: dict[str, str | dt.date], smtp: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    """The check above, against channels told to render the values: it must find each one."""
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="casemgmt_core")
    notes = [
        cm.Notification(
            f"C1/{i}:assignment:worker-1",
            cm.NotificationKind.ASSIGNMENT,
            "C1",
            f"C1/{i}",
            "worker-1",
            T0,
            {"event": "assign", "leak": str(value)},
        )
        for i, value in enumerate(values.values(), start=2)
    ]
    rendered = through_every_channel(notes, STANDARD_FIELDS | {"leak"}, smtp, caplog)
    for name, value in values.items():
        for channel, texts in rendered.items():
            assert leaked(value, texts), f"{name} not found in the {channel}"


@settings(max_examples=25)
@given(secret=st.one_of(names, abuse_details), allow=st.booleans())
def test_a_key_is_rendered_only_if_its_channel_allows_it(secret: str, allow: bool) -> None:
    n = cm.Notification(
        "C1/2:assignment:worker-1",
        cm.NotificationKind.ASSIGNMENT,
        "C1",
        "C1/2",
        "worker-1",
        T0,
        {"event": "assign", "name": secret},
    )
    fields = STANDARD_FIELDS | {"name"} if allow else STANDARD_FIELDS
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("tests.notify.minimisation")
    logger.setLevel(logging.DEBUG)
    handler = Keep(records)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        LoggingNotifier(logger, fields=fields).send(n)
    finally:
        logger.removeHandler(handler)
    mail = EmailNotifier("127.0.0.1", 25, sender="n@centre.example", addresses=address, fields=fields).build(
        n
    )
    outputs = {
        "webhook": encode_body(Allowlist(fields).render(n)).decode(),
        "email": mail_text(mail.as_bytes()),
        "log": records[0].getMessage(),
    }
    for channel, text in outputs.items():
        assert leaked(secret, [text]) is allow, channel


def test_no_library_text_has_the_tag_shape() -> None:
    """What makes a hit above a leak: the library's sources and data never show a tag's shape,
    so none of its own text (a code, a label, a statute's name) can be taken for a tag."""
    package = Path(cm.__file__).parent
    files = [
        p for p in sorted(package.rglob("*")) if p.is_file() and p.suffix in {".py", ".toml", ".json", ".txt"}
    ]
    assert any(p.suffix == ".toml" for p in files)
    for path in files:
        match = TAG_SHAPE.search(path.read_text(encoding="utf-8"))
        assert match is None, f"{path.relative_to(package)} has {match.group()!r}: change TAG_SHAPE"
    assert TAG_SHAPE.search(repr(cm.Policy())) is None  # the default policy, statutes included
