"""Duplicate service: a household already managed by another centre is handed over, not opened again.

The embedding system plugs its registry of other agencies' cases in as a ``DuplicateRegistry``
(here the in-memory one). The referral is still recorded, so nothing is lost, and the other
agency is notified.
"""

from __future__ import annotations

import datetime as dt

import casemgmt_core as cm

KST = dt.timezone(dt.timedelta(hours=9))


def run() -> cm.Case:
    now = dt.datetime(2026, 8, 3, 10, 0, tzinfo=KST)
    registry = cm.InMemoryRegistry()
    neighbour_centre = cm.Agency("welfare-centre-yeoksam", "Yeoksam community welfare centre")
    registry.add_managed("HH-2026-0509", neighbour_centre)
    notifier = cm.RecordingNotifier()
    manager = cm.CaseManager(cm.InMemoryStore(), registry=registry, notifier=notifier, clock=lambda: now)
    worker = cm.Actor("choi.caseworker", "caseworker")

    household = cm.Household(
        "HH-2026-0509", [cm.Member("grandmother", dt.date(1950, 10, 9))], region="11680-101"
    )
    case = manager.open_case(
        household, cm.Referral(cm.ReferralChannel.CALL_CENTRE_129, now), actor=worker, case_id="C-0509"
    )
    assert case.state is cm.CaseState.HANDED_OVER
    assert case.handed_over_to == neighbour_centre
    assert [e.event for e in manager.history(case.case_id)] == ["open", "hand_over"]
    assert [(n.kind, n.recipient) for n in notifier.sent] == [
        (cm.NotificationKind.HAND_OVER, neighbour_centre.id)
    ]
    return case


if __name__ == "__main__":
    case = run()
    print(f"case {case.case_id}: {cm.label('state', case.state)} -> {case.handed_over_to}")
