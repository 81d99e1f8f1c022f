"""Data minimisation: sensitive values put into a case never reach a rendered notification.

Names, birth dates and abuse details are placed wherever the model takes them (household
members, the referral, notes, journal texts, needs, goals, strengths, crisis descriptions); every
notification the case and its reminders produce is then sent through every channel, to real
servers on loopback, and the webhook bodies, e-mails and log records are searched for them.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import json
import logging

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
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

from .conftest import SECRET, SUPERVISOR, T0, WORKER, Clock, Mailbox

HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
korean_names = st.text(HANGUL, min_size=3, max_size=4)
latin_names = st.from_regex(r"[A-Z][a-z]{4,9} [A-Z][a-z]{4,9}", fullmatch=True)
birth_dates = st.dates(dt.date(1930, 1, 1), dt.date(2004, 12, 31))
child_birth_dates = st.dates(dt.date(2010, 1, 1), dt.date(2019, 12, 31))
ABUSE = [
    "아버지가 아이를 때림",
    "할머니를 방임함",
    "배우자 폭행",
    "bruises on both arms",
    "locked out overnight",
]
abuse_details = st.builds(
    lambda phrase, token: f"{phrase} {token}",
    st.sampled_from(ABUSE),
    st.text(st.one_of(HANGUL, st.sampled_from("abcdefghijklmnopqrstuvwxyz")), min_size=5, max_size=12),
)


@st.composite
def sensitive(draw: st.DrawFn) -> dict[str, str | dt.date]:
    names = draw(st.lists(st.one_of(korean_names, latin_names), min_size=2, max_size=2, unique=True))
    details = draw(st.lists(abuse_details, min_size=8, max_size=8, unique=True))
    return {
        "parent_name": names[0],
        "child_name": names[1],
        "parent_born": draw(birth_dates),
        "child_born": draw(child_birth_dates),
        **{f"detail{i}": d for i, d in enumerate(details)},
    }


def searched_forms(values: dict[str, str | dt.date]) -> list[str]:
    out: list[str] = []
    for v in values.values():
        if isinstance(v, dt.date):
            out += [v.isoformat(), v.strftime("%Y%m%d"), v.strftime("%Y.%m.%d")]
        else:
            out += [v, v.rpartition(" ")[2]]  # the whole text and its random token alone
    return out


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

    def consent(scope: cm.ConsentScope, agency: str | None = None) -> cm.RecordConsent:
        return cm.RecordConsent(
            cm.Consent(
                f"{scope.value}-{agency}", scope, "parent", cm.ConsentGiver.PERSON, "parent", clock(), agency
            )
        )

    steps: list[tuple[cm.Command, cm.Actor, str]] = [
        (cm.AssignCaseworker("worker-1"), WORKER, str(s["parent_name"])),
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


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=sensitive())
def test_no_sensitive_value_reaches_any_channel(
    values: dict[str, str | dt.date], smtp: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    forms = searched_forms(values)
    box, port = smtp
    box.messages.clear()
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="casemgmt_core")
    clock = Clock()
    manager = cm.CaseManager(cm.InMemoryStore(), clock=clock)
    run_case(manager, clock, values)
    notes = [p.notification for p in manager.store.pending_notifications(limit=1000)]
    notes += ReminderScheduler(manager, escalate_overdue_to="supervisors").due(T0 + dt.timedelta(days=400))
    kinds = {n.kind for n in notes}
    assert kinds == set(cm.NotificationKind) - {cm.NotificationKind.HAND_OVER}

    callback_out: list[dict[str, str]] = []
    with LocalWebhookReceiver(SECRET) as receiver:
        # Every channel gets every data key the library produces.
        router = Router(
            [
                Route(WebhookNotifier(receiver.url, SECRET, timeout=5)),
                Route(
                    EmailNotifier("127.0.0.1", port, sender="n@centre.example", addresses=address, timeout=5)
                ),
                Route(LoggingNotifier(fields=STANDARD_FIELDS)),
                Route(CallbackNotifier(callback_out.append)),
            ]
        )
        for n in notes:
            router.send(n)
        bodies = [json.dumps(p, ensure_ascii=False) for p in receiver.ledger.effects.values()]

    assert len(bodies) == len(notes)
    assert len(box.messages) == len(notes)
    mails = []
    for _, raw in box.messages:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        decoded_headers = "\n".join(f"{k}: {v}" for k, v in msg.items())
        mails.append(raw.decode("utf-8", "replace") + decoded_headers + msg.get_body().get_content())  # type: ignore[union-attr]
    logs = [r.getMessage() + repr(getattr(r, "notification", "")) for r in caplog.records]
    assert sum(r.name == "casemgmt_core.notify" for r in caplog.records) == len(notes)
    rendered = bodies + mails + logs + [json.dumps(c, ensure_ascii=False) for c in callback_out]

    for form in forms:
        for text in rendered:
            assert form not in text


@settings(max_examples=25, deadline=None)
@given(secret=st.one_of(korean_names, latin_names, abuse_details), allow=st.booleans())
def test_a_key_is_rendered_only_if_its_channel_allows_it(secret: str, allow: bool) -> None:
    n = cm.Notification(
        "C1/2:assignment:worker-1",
        cm.NotificationKind.ASSIGNMENT,
        "C1",
        "C1/2",
        "worker-1",
        T0,
        {"event": "assign"},
    )
    assume(secret not in repr(n))  # so that a hit can only come from the "name" key
    n = attrs.evolve(n, data={"event": "assign", "name": secret})
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
        "email": mail.get_content(),
        "log": records[0].getMessage(),
    }
    for channel, text in outputs.items():
        assert (secret in text) is allow, channel
