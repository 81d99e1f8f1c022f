"""Korean and English labels exist, as data, for every state, event, reason and vocabulary."""

from __future__ import annotations

from enum import StrEnum

import pytest

import casemgmt_core as cm
from casemgmt_core.i18n import LANGUAGES, labels
from casemgmt_core.lifecycle import EVENTS

TABLES: dict[str, type[StrEnum]] = {
    "state": cm.CaseState,
    "reason": cm.Reason,
    "closure_reason": cm.ClosureReason,
    "crisis_factor": cm.CrisisFactor,
    "need_domain": cm.NeedDomain,
    "referral_channel": cm.ReferralChannel,
    "consent_scope": cm.ConsentScope,
    "statutory_ground": cm.StatutoryGround,
    "journal_kind": cm.JournalKind,
    "due_kind": cm.DueKind,
    "screening_reason": cm.ScreeningReason,
    "eligibility_decision": cm.EligibilityDecision,
    "approval_step": cm.ApprovalStep,
    "approval_status": cm.ApprovalStatus,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_value_has_both_labels_and_nothing_else(table: str) -> None:
    values = {m.value for m in TABLES[table]}
    assert set(labels()[table]) == values
    for value in values:
        for language in LANGUAGES:
            assert cm.label(table, value, language).strip()


def test_every_event_has_both_labels() -> None:
    assert set(labels()["event"]) == set(EVENTS)


def test_korean_is_the_default_and_english_is_available() -> None:
    assert cm.label("state", cm.CaseState.AFTERCARE) == "사후관리"
    assert cm.label("state", cm.CaseState.AFTERCARE, "en") == "After-care"
    assert cm.label("reason", "managed_elsewhere") == "타 기관 사례관리 중(중복 지원 방지)"


def test_a_missing_label_names_the_table_and_key() -> None:
    with pytest.raises(KeyError, match="'nope' in table 'state'"):
        cm.label("state", "nope")
