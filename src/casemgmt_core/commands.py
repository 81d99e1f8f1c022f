"""Commands: what a caller asks the engine to do to a case.

Each command names its lifecycle event (``Command.event``, the trigger in :mod:`.lifecycle`).
When :func:`~casemgmt_core.decide` accepts a command it fills in what it derived (a time limit
from the policy, a legal basis, a report deadline) and the completed command becomes the
payload of the recorded :class:`~casemgmt_core.Event`. Replaying events therefore needs neither
the policy nor the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from attrs import evolve, frozen

from .model import (
    AftercarePlan,
    Agency,
    Case,
    CaseConference,
    Closure,
    ClosureReason,
    Consent,
    CrisisFactor,
    EligibilityDecision,
    Goal,
    Household,
    JournalKind,
    MandatoryReport,
    Need,
    Referral,
    ServiceItem,
    StatutoryGround,
    StatutoryOverride,
    Strength,
)

__all__ = [
    "AchieveGoal",
    "ApprovePlan",
    "AssignCaseworker",
    "Close",
    "Command",
    "CompleteAftercare",
    "CompleteAssessment",
    "CompleteIntake",
    "DeclareCrisis",
    "Decline",
    "EndService",
    "FileMandatoryReport",
    "HandOver",
    "HoldConference",
    "InvokeStatutoryOverride",
    "LinkService",
    "OpenCase",
    "RecordConsent",
    "RecordCrisisFactor",
    "RecordIntakeFindings",
    "RecordJournal",
    "RecordNeed",
    "RecordStrength",
    "Redirect",
    "ReferToCounselling",
    "Reopen",
    "ResolveCrisis",
    "ResumeService",
    "RevisePlan",
    "ScheduleConference",
    "Select",
    "SetGoal",
    "StartAftercare",
    "StartIntake",
    "StartReassessment",
    "WithdrawConsent",
    "COMMAND_TYPES",
]

Changes = dict[str, Any]
T = TypeVar("T")


def _replace_where(
    items: tuple[T, ...], matches: Callable[[T], bool], update: Callable[[T], T]
) -> tuple[T, ...]:
    """``items`` with each item that ``matches`` replaced by its ``update``."""
    return tuple(update(x) if matches(x) else x for x in items)


@frozen
class Command:
    """Base of all commands. ``changes`` says how an accepted command changes the case."""

    event: ClassVar[str] = ""

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {}


# -- opening and intake -------------------------------------------------------------------


@frozen
class OpenCase(Command):
    """Open a case for a referred household. ``case_id`` is chosen by the caller or the store."""

    event: ClassVar[str] = "open"
    case_id: str
    household: Household
    referral: Referral


@frozen
class AssignCaseworker(Command):
    event: ClassVar[str] = "assign"
    caseworker_id: str

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"caseworker_id": self.caseworker_id}


@frozen
class StartIntake(Command):
    event: ClassVar[str] = "start_intake"


@frozen
class RecordCrisisFactor(Command):
    event: ClassVar[str] = "record_crisis_factor"
    factor: CrisisFactor

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"crisis_factors": case.crisis_factors | {self.factor}}


@frozen
class RecordIntakeFindings(Command):
    """What the first interview found: is one piece of information or counselling all that is wanted?"""

    event: ClassVar[str] = "record_intake_findings"
    information_only: bool = False
    counselling_only: bool = False
    wanted_change: str = ""

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"information_only": self.information_only, "counselling_only": self.counselling_only}


@frozen
class RecordConsent(Command):
    event: ClassVar[str] = "record_consent"
    consent: Consent

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"consents": (*case.consents, self.consent)}


@frozen
class WithdrawConsent(Command):
    """Withdraw a consent. Withdrawing the last service consent closes the case (no statutory basis)."""

    event: ClassVar[str] = "withdraw_consent"
    consent_id: str

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        withdrawn = _replace_where(
            case.consents,
            lambda c: c.consent_id == self.consent_id and c.active,
            lambda c: evolve(c, withdrawn_at=at),
        )
        return {"consents": withdrawn}


@frozen
class InvokeStatutoryOverride(Command):
    """Use a statutory duty to intervene without consent (child abuse above all).

    ``legal_basis``, ``authority`` and ``report_due_at`` are filled from the policy when accepted.
    """

    event: ClassVar[str] = "invoke_override"
    ground: StatutoryGround
    legal_basis: str = ""
    authority: str = ""
    report_due_at: dt.datetime | None = None

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert self.report_due_at is not None, "decide() fills report_due_at"
        override = StatutoryOverride(self.ground, self.legal_basis, actor_id, at)
        report = MandatoryReport(self.ground, self.authority, self.report_due_at)
        return {
            "statutory_override": case.statutory_override or override,
            "mandatory_reports": (*case.mandatory_reports, report),
            "crisis_factors": case.crisis_factors | {CrisisFactor(self.ground.value)},
        }


@frozen
class FileMandatoryReport(Command):
    """Record that the mandatory report was made, with the authority's reference."""

    event: ClassVar[str] = "file_report"
    ground: StatutoryGround
    reference: str

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        reports, done = [], False
        for r in case.mandatory_reports:
            if not done and r.ground is self.ground and r.reference is None:
                r, done = evolve(r, reference=self.reference, filed_at=at), True
            reports.append(r)
        return {"mandatory_reports": tuple(reports)}


@frozen
class CompleteIntake(Command):
    event: ClassVar[str] = "complete_intake"


# -- screening and its exits --------------------------------------------------------------


@frozen
class Select(Command):
    """Select the household for integrated case management (guards: eligibility, consent, duplicate)."""

    event: ClassVar[str] = "select"

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"eligibility": EligibilityDecision.INTEGRATED_CASE_MANAGEMENT}


@frozen
class Redirect(Command):
    """Redirect to a single service or to information: integrated case management is not needed."""

    event: ClassVar[str] = "redirect"
    service: str


@frozen
class ReferToCounselling(Command):
    event: ClassVar[str] = "refer_to_counselling"


@frozen
class Decline(Command):
    event: ClassVar[str] = "decline"
    grounds: str


@frozen
class HandOver(Command):
    """Hand the household to the agency that already manages it (or should)."""

    event: ClassVar[str] = "hand_over"
    agency: Agency

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"handed_over_to": self.agency}


# -- assessment and planning --------------------------------------------------------------


@frozen
class RecordNeed(Command):
    event: ClassVar[str] = "record_need"
    need: Need

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"needs": (*case.needs, self.need)}


@frozen
class RecordStrength(Command):
    event: ClassVar[str] = "record_strength"
    strength: Strength

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"strengths": (*case.strengths, self.strength)}


@frozen
class CompleteAssessment(Command):
    event: ClassVar[str] = "complete_assessment"


@frozen
class SetGoal(Command):
    event: ClassVar[str] = "set_goal"
    goal: Goal

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"goals": (*case.goals, self.goal)}


@frozen
class AchieveGoal(Command):
    event: ClassVar[str] = "achieve_goal"
    goal_id: str

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        achieved = _replace_where(
            case.goals, lambda g: g.goal_id == self.goal_id, lambda g: evolve(g, achieved_at=at)
        )
        return {"goals": achieved}


@frozen
class ScheduleConference(Command):
    event: ClassVar[str] = "schedule_conference"
    conference: CaseConference

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"conferences": (*case.conferences, self.conference)}


@frozen
class HoldConference(Command):
    """Record that a scheduled case conference took place, and what it decided."""

    event: ClassVar[str] = "hold_conference"
    conference_id: str
    decisions: str

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        held = _replace_where(
            case.conferences,
            lambda x: x.conference_id == self.conference_id,
            lambda x: evolve(x, held=True, decisions=self.decisions),
        )
        return {"conferences": held}


@frozen
class ApprovePlan(Command):
    """Approve the service plan (optionally by a case conference) and start services."""

    event: ClassVar[str] = "approve_plan"
    conference_id: str | None = None

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"plan_approved_at": at}


# -- services and monitoring --------------------------------------------------------------


@frozen
class LinkService(Command):
    """Link one service item to a provider. ``item.time_limit`` defaults to the policy maximum."""

    event: ClassVar[str] = "link_service"
    item: ServiceItem

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"service_items": (*case.service_items, self.item)}


@frozen
class EndService(Command):
    event: ClassVar[str] = "end_service"
    item_id: str
    outcome: str = ""

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        ended = _replace_where(
            case.service_items,
            lambda s: s.item_id == self.item_id,
            lambda s: evolve(s, ended_at=at, outcome=self.outcome),
        )
        return {"service_items": ended}


@frozen
class RecordJournal(Command):
    """Record what was found or changed: new finding, changed need, observed change, role, contact."""

    event: ClassVar[str] = "record_journal"
    kind: JournalKind
    text: str
    member_id: str | None = None

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        if self.kind is JournalKind.CONTACT:
            return {"journal_size": case.journal_size + 1, "last_contact_at": at}
        return {"journal_size": case.journal_size + 1}


@frozen
class StartReassessment(Command):
    event: ClassVar[str] = "start_reassessment"
    grounds: str = ""


@frozen
class RevisePlan(Command):
    event: ClassVar[str] = "revise_plan"


@frozen
class ResumeService(Command):
    event: ClassVar[str] = "resume_service"


# -- crisis -------------------------------------------------------------------------------


@frozen
class DeclareCrisis(Command):
    event: ClassVar[str] = "declare_crisis"
    description: str

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"resume_state": case.state}


@frozen
class ResolveCrisis(Command):
    """End the crisis intervention; the case resumes the stage it was in."""

    event: ClassVar[str] = "resolve_crisis"
    summary: str = ""

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"resume_state": None}


# -- closure, after-care, recurrence ------------------------------------------------------


@frozen
class Close(Command):
    event: ClassVar[str] = "close"
    reason: ClosureReason

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"closure": Closure(self.reason, at), "resume_state": None}


@frozen
class StartAftercare(Command):
    """Start after-care, only where judged necessary: ``justification`` says why.

    ``until`` defaults to the policy's after-care period.
    """

    event: ClassVar[str] = "start_aftercare"
    justification: str
    until: dt.datetime | None = None

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert self.until is not None, "decide() fills until"
        return {"aftercare": AftercarePlan(self.justification, at, self.until)}


@frozen
class CompleteAftercare(Command):
    event: ClassVar[str] = "complete_aftercare"

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert case.aftercare is not None
        return {"aftercare": evolve(case.aftercare, ended_at=at)}


@frozen
class Reopen(Command):
    """Reopen on recurrence: a new episode starts at intake."""

    event: ClassVar[str] = "reopen"
    grounds: str

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {
            "episode": case.episode + 1,
            "episode_started_at": at,
            "closure": None,
            "eligibility": None,
            "resume_state": None,
            "plan_approved_at": None,
        }


#: Every command class by its event name: the payload registry for serialisation and replay.
COMMAND_TYPES: dict[str, type[Command]] = {
    cls.event: cls
    for cls in (
        OpenCase,
        AssignCaseworker,
        StartIntake,
        RecordCrisisFactor,
        RecordIntakeFindings,
        RecordConsent,
        WithdrawConsent,
        InvokeStatutoryOverride,
        FileMandatoryReport,
        CompleteIntake,
        Select,
        Redirect,
        ReferToCounselling,
        Decline,
        HandOver,
        RecordNeed,
        RecordStrength,
        CompleteAssessment,
        SetGoal,
        AchieveGoal,
        ScheduleConference,
        HoldConference,
        ApprovePlan,
        LinkService,
        EndService,
        RecordJournal,
        StartReassessment,
        RevisePlan,
        ResumeService,
        DeclareCrisis,
        ResolveCrisis,
        Close,
        StartAftercare,
        CompleteAftercare,
        Reopen,
    )
}
