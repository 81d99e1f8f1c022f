"""Statutory override -> mandatory report to the configured authority, at once; closure waits for it."""

from __future__ import annotations

import datetime as dt

import pytest

import casemgmt_core as cm
from casemgmt_core.notify import LocalWebhookReceiver, RecordingNotifier, Route, Router, WebhookNotifier

from .conftest import SECRET, WORKER, Clock, open_case

G = cm.StatutoryGround
K = cm.NotificationKind

CONFIGURED = cm.load_policy(
    """
programme = "family-centre"

[statutory.elder_abuse]
enabled = true
report_within_hours = 24

[statutory.domestic_violence]
enabled = true
authority = "police-112; 여성긴급전화-1366"
report_within_hours = 12
"""
)


def to_assessment_under_override(manager: cm.CaseManager, ground: G) -> cm.Case:
    """A case taken on without any consent, on the statutory ground alone."""
    open_case(manager, elder=ground is G.ELDER_ABUSE)
    for command in (cm.StartIntake(), cm.RecordCrisisFactor(cm.CrisisFactor.ISOLATION)):
        manager.handle("C1", command, actor=WORKER)
    manager.handle("C1", cm.InvokeStatutoryOverride(ground), actor=WORKER, note="bruises seen on a visit")
    manager.handle("C1", cm.CompleteIntake(), actor=WORKER)
    return manager.handle("C1", cm.Select(), actor=WORKER)


@pytest.mark.parametrize(
    ("ground", "authorities", "hours"),
    [
        (G.ELDER_ABUSE, ["노인보호전문기관", "police-112"], 24),
        (G.DOMESTIC_VIOLENCE, ["police-112", "여성긴급전화-1366"], 12),
        (G.CHILD_ABUSE, ["police-112", "시·군·구 아동학대전담공무원"], 0),
    ],
)
def test_override_reports_to_each_configured_authority_at_once(
    receiver: LocalWebhookReceiver, ground: G, authorities: list[str], hours: int
) -> None:
    clock = Clock()
    staff = RecordingNotifier()
    router = Router(
        [
            Route(
                WebhookNotifier(receiver.url, SECRET, timeout=5),
                kinds=[K.MANDATORY_REPORT],
                recipients=authorities,
            ),
            Route(staff, kinds=[K.ASSIGNMENT]),
        ]
    )
    manager = cm.CaseManager(cm.InMemoryStore(), policy=CONFIGURED, notifier=router, clock=clock)
    open_case(manager, elder=ground is G.ELDER_ABUSE)
    manager.handle("C1", cm.StartIntake(), actor=WORKER)
    assert receiver.requests == 0

    manager.handle("C1", cm.InvokeStatutoryOverride(ground), actor=WORKER)

    # Delivered within the command itself, not at the next relay run.
    reports = list(receiver.ledger.effects.values())
    assert [r["recipient"] for r in reports] == authorities
    rule = CONFIGURED.statutory[ground]
    for r in reports:
        assert r["kind"] == "mandatory_report"
        assert r["ground"] == ground.value
        assert r["legal_basis"] == rule.legal_basis
    assert {r["due_at"] for r in reports} == {(clock.now + dt.timedelta(hours=hours)).isoformat()}
    assert manager.store.pending_notifications() == ()  # all marked delivered


def test_a_ground_not_configured_is_refused_and_reports_nothing() -> None:
    manager = cm.CaseManager(cm.InMemoryStore(), clock=Clock())  # default policy: only child abuse
    open_case(manager)
    manager.handle("C1", cm.StartIntake(), actor=WORKER)
    with pytest.raises(cm.TransitionRefused, match="'elder_abuse' is not a statutory ground") as info:
        manager.handle("C1", cm.InvokeStatutoryOverride(G.ELDER_ABUSE), actor=WORKER)
    assert info.value.guard == "ground_enabled"
    kinds = [p.notification.kind for p in manager.store.pending_notifications()]
    assert K.MANDATORY_REPORT not in kinds


@pytest.mark.parametrize("ground", [G.ELDER_ABUSE, G.DOMESTIC_VIOLENCE])
def test_closure_is_blocked_until_the_report_reference_is_recorded(ground: G) -> None:
    # The notifier delivers each report as the override is recorded.
    manager = cm.CaseManager(
        cm.InMemoryStore(), policy=CONFIGURED, notifier=RecordingNotifier(), clock=Clock()
    )
    case = to_assessment_under_override(manager, ground)
    assert case.state is cm.CaseState.ASSESSMENT

    with pytest.raises(cm.TransitionRefused, match="mandatory report") as info:
        manager.handle("C1", cm.Close(cm.ClosureReason.MOVED_AWAY), actor=WORKER)
    assert info.value.guard == "reports_filed"
    assert manager.get("C1").state is cm.CaseState.ASSESSMENT
    assert manager.refusals("C1")[-1].guard == "reports_filed"

    manager.handle("C1", cm.FileMandatoryReport(ground, "REF-2026-0042"), actor=WORKER)
    closed = manager.handle("C1", cm.Close(cm.ClosureReason.MOVED_AWAY), actor=WORKER)
    assert closed.state is cm.CaseState.CLOSED
    [report] = closed.mandatory_reports
    assert report.reference == "REF-2026-0042"
    assert report.ground is ground
