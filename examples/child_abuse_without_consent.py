"""A school reports suspected child abuse; the parent refuses consent.

The statutory duty overrides consent, and only consent: the override is recorded with its legal
basis and actor, the authority is notified at once, every step it allows names the basis, and
the case cannot be closed until the report's reference is recorded.
"""

from __future__ import annotations

import datetime as dt

import casemgmt_core as cm

KST = dt.timezone(dt.timedelta(hours=9))


def run() -> cm.Case:
    now = dt.datetime(2026, 5, 11, 14, 0, tzinfo=KST)
    notifier = cm.RecordingNotifier()
    manager = cm.CaseManager(cm.InMemoryStore(), notifier=notifier, clock=lambda: now)
    worker = cm.Actor("park.caseworker", "caseworker")

    household = cm.Household(
        "HH-2026-0342",
        [
            cm.Member("father", dt.date(1981, 2, 3), relation="father"),
            cm.Member("daughter", dt.date(2018, 7, 21), relation="daughter", guardian_id="father"),
        ],
        region="11680-102",
    )
    school = cm.Agency("school-daechi-02", "Daechi Elementary")
    case = manager.open_case(
        household,
        cm.Referral(cm.ReferralChannel.SCHOOL, now, school, "bruises, repeated absences"),
        actor=worker,
        case_id="C-0342",
    )
    cid = case.case_id
    manager.handle(cid, cm.StartIntake(), actor=worker)
    for factor in (cm.CrisisFactor.CHILD_ABUSE, cm.CrisisFactor.CARE_GAP, cm.CrisisFactor.DEBT):
        manager.handle(cid, cm.RecordCrisisFactor(factor), actor=worker)
    manager.handle(cid, cm.CompleteIntake(), actor=worker)

    # Without consent, selection is refused, and the refusal says what would allow it.
    try:
        manager.handle(cid, cm.Select(), actor=worker)
    except cm.TransitionRefused as refused:
        assert (refused.guard, refused.reason) == ("service_consent", "consent_missing")
    else:
        raise AssertionError("selection without consent must be refused")

    manager.handle(
        cid,
        cm.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE),
        actor=worker,
        note="suspected physical abuse reported by the school; the father refuses consent",
    )
    reports = [n for n in notifier.sent if n.kind is cm.NotificationKind.MANDATORY_REPORT]
    assert reports, "the authority is told at once"

    selected = manager.handle(cid, cm.Select(), actor=worker)
    assert selected.state is cm.CaseState.ASSESSMENT
    override = selected.statutory_override
    assert override is not None
    assert manager.history(cid)[-1].legal_basis == override.legal_basis

    manager.handle(cid, cm.RecordNeed(cm.Need("N1", cm.NeedDomain.COUNSELLING, "child safety")), actor=worker)
    manager.handle(cid, cm.CompleteAssessment(), actor=worker)

    # Closing is blocked until the mandatory report's reference is on file.
    try:
        manager.handle(cid, cm.Close(cm.ClosureReason.TRANSFERRED), actor=worker)
    except cm.TransitionRefused as refused:
        assert refused.reason == "mandatory_report_pending"
    else:
        raise AssertionError("closure must wait for the report")
    manager.handle(
        cid, cm.FileMandatoryReport(cm.StatutoryGround.CHILD_ABUSE, "112-2026-05-11-0387"), actor=worker
    )
    manager.handle(cid, cm.Close(cm.ClosureReason.TRANSFERRED), actor=worker)
    final = manager.get(cid)
    assert final.state is cm.CaseState.CLOSED
    assert [r.reason for r in manager.refusals(cid)] == ["consent_missing", "mandatory_report_pending"]
    return final


if __name__ == "__main__":
    case = run()
    override = case.statutory_override
    assert override is not None
    print(f"case {case.case_id}: {cm.label('state', case.state)}; override on {override.legal_basis}")
