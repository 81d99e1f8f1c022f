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

from attrs import evolve, field, frozen

from . import _validation as v
from ._validation import (
    MAX_LINE,
    MAX_NAME,
    aware_datetime,
    boolean,
    enum_member,
    identifier,
    instance_of,
    optional,
)
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
    "ConfirmStatutoryOverride",
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
    case_id: str = field(validator=identifier)
    household: Household = field(validator=instance_of(Household))
    referral: Referral = field(validator=instance_of(Referral))


@frozen
class AssignCaseworker(Command):
    event: ClassVar[str] = "assign"
    caseworker_id: str = field(validator=identifier)

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"caseworker_id": self.caseworker_id}


@frozen
class StartIntake(Command):
    event: ClassVar[str] = "start_intake"


@frozen
class RecordCrisisFactor(Command):
    event: ClassVar[str] = "record_crisis_factor"
    factor: CrisisFactor = field(validator=enum_member(CrisisFactor))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"crisis_factors": case.crisis_factors | {self.factor}}


@frozen
class RecordIntakeFindings(Command):
    """What the first interview found: is one piece of information or counselling all that is wanted?"""

    event: ClassVar[str] = "record_intake_findings"
    information_only: bool = field(default=False, validator=boolean)
    counselling_only: bool = field(default=False, validator=boolean)
    wanted_change: str = field(default="", validator=v.text(MAX_LINE))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"information_only": self.information_only, "counselling_only": self.counselling_only}


@frozen
class RecordConsent(Command):
    event: ClassVar[str] = "record_consent"
    consent: Consent = field(validator=instance_of(Consent))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"consents": (*case.consents, self.consent)}


@frozen
class WithdrawConsent(Command):
    """Withdraw a consent. Withdrawing the last service consent closes the case (no statutory basis)."""

    event: ClassVar[str] = "withdraw_consent"
    consent_id: str = field(validator=identifier)

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

    ``member_id`` names the member the ground concerns (a child, for child abuse); without it,
    the household must have such a member. ``legal_basis``, ``authority``, ``report_due_at`` and
    ``confirm_by`` come from the policy: :func:`~casemgmt_core.decide` fills them in, and refuses
    a command that names a legal basis or an authority other than the policy's.
    """

    event: ClassVar[str] = "invoke_override"
    ground: StatutoryGround = field(validator=enum_member(StatutoryGround))
    member_id: str | None = field(default=None, validator=optional(identifier))
    legal_basis: str = field(default="", validator=v.line(personal=False))
    authority: str = field(default="", validator=v.line(personal=False))
    report_due_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    confirm_by: dt.datetime | None = field(default=None, validator=optional(aware_datetime))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert self.report_due_at is not None, "decide() fills report_due_at"
        override = StatutoryOverride(self.ground, self.legal_basis, actor_id, at, self.confirm_by)
        event_id = f"{case.case_id}/{case.version + 1}"
        report = MandatoryReport(self.ground, self.authority, self.report_due_at, event_id=event_id)
        current = case.statutory_override
        return {
            # A lapsed override gives way to the new one; one in force stays the case's basis.
            "statutory_override": current if current is not None and current.in_force(at) else override,
            "mandatory_reports": (*case.mandatory_reports, report),
            "crisis_factors": case.crisis_factors | {CrisisFactor(self.ground.value)},
        }


@frozen
class FileMandatoryReport(Command):
    """Record the authority's reference for the mandatory report on ``ground``.

    Accepted only once the report's delivery to the authority was confirmed: ``delivered_at`` is
    filled in by :func:`~casemgmt_core.decide` from what the service layer found in the outbox.
    """

    event: ClassVar[str] = "file_report"
    ground: StatutoryGround = field(validator=enum_member(StatutoryGround))
    reference: str = field(validator=v.line(MAX_NAME, personal=False))
    delivered_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        reports, done = [], False
        for r in case.mandatory_reports:
            if not done and r.ground is self.ground and not r.filed:
                r = evolve(r, reference=self.reference, filed_at=at, delivered_at=self.delivered_at)
                done = True
            reports.append(r)
        return {"mandatory_reports": tuple(reports)}


@frozen
class ConfirmStatutoryOverride(Command):
    """A second person (by policy, e.g. a supervisor) confirms the case's statutory override."""

    event: ClassVar[str] = "confirm_override"

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert case.statutory_override is not None
        return {"statutory_override": evolve(case.statutory_override, confirmed_by=actor_id, confirmed_at=at)}


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
    service: str = field(validator=identifier)


@frozen
class ReferToCounselling(Command):
    event: ClassVar[str] = "refer_to_counselling"


@frozen
class Decline(Command):
    event: ClassVar[str] = "decline"
    grounds: str = field(validator=v.text(MAX_LINE))


@frozen
class HandOver(Command):
    """Hand the household to the agency that already manages it (or should)."""

    event: ClassVar[str] = "hand_over"
    agency: Agency = field(validator=instance_of(Agency))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"handed_over_to": self.agency}


# -- assessment and planning --------------------------------------------------------------


@frozen
class RecordNeed(Command):
    event: ClassVar[str] = "record_need"
    need: Need = field(validator=instance_of(Need))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"needs": (*case.needs, self.need)}


@frozen
class RecordStrength(Command):
    event: ClassVar[str] = "record_strength"
    strength: Strength = field(validator=instance_of(Strength))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"strengths": (*case.strengths, self.strength)}


@frozen
class CompleteAssessment(Command):
    event: ClassVar[str] = "complete_assessment"


@frozen
class SetGoal(Command):
    event: ClassVar[str] = "set_goal"
    goal: Goal = field(validator=instance_of(Goal))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"goals": (*case.goals, self.goal)}


@frozen
class AchieveGoal(Command):
    event: ClassVar[str] = "achieve_goal"
    goal_id: str = field(validator=identifier)

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        achieved = _replace_where(
            case.goals, lambda g: g.goal_id == self.goal_id, lambda g: evolve(g, achieved_at=at)
        )
        return {"goals": achieved}


@frozen
class ScheduleConference(Command):
    event: ClassVar[str] = "schedule_conference"
    conference: CaseConference = field(validator=instance_of(CaseConference))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"conferences": (*case.conferences, self.conference)}


@frozen
class HoldConference(Command):
    """Record that a scheduled case conference took place, and what it decided."""

    event: ClassVar[str] = "hold_conference"
    conference_id: str = field(validator=identifier)
    decisions: str = field(validator=v.text())

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
    conference_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"plan_approved_at": at}


# -- services and monitoring --------------------------------------------------------------


@frozen
class LinkService(Command):
    """Link one service item to a provider. ``item.time_limit`` defaults to the policy maximum."""

    event: ClassVar[str] = "link_service"
    item: ServiceItem = field(validator=instance_of(ServiceItem))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"service_items": (*case.service_items, self.item)}


@frozen
class EndService(Command):
    event: ClassVar[str] = "end_service"
    item_id: str = field(validator=identifier)
    outcome: str = field(default="", validator=v.text(MAX_LINE))

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
    kind: JournalKind = field(validator=enum_member(JournalKind))
    text: str = field(validator=v.text())
    member_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        if self.kind is JournalKind.CONTACT:
            return {"journal_size": case.journal_size + 1, "last_contact_at": at}
        return {"journal_size": case.journal_size + 1}


@frozen
class StartReassessment(Command):
    event: ClassVar[str] = "start_reassessment"
    grounds: str = field(default="", validator=v.text(MAX_LINE))


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
    description: str = field(validator=v.text(MAX_LINE))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"resume_state": case.state}


@frozen
class ResolveCrisis(Command):
    """End the crisis intervention; the case resumes the stage it was in."""

    event: ClassVar[str] = "resolve_crisis"
    summary: str = field(default="", validator=v.text(MAX_LINE))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"resume_state": None}


# -- closure, after-care, recurrence ------------------------------------------------------


@frozen
class Close(Command):
    event: ClassVar[str] = "close"
    reason: ClosureReason = field(validator=enum_member(ClosureReason))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"closure": Closure(self.reason, at), "resume_state": None}


@frozen
class StartAftercare(Command):
    """Start after-care, only where judged necessary: ``justification`` says why.

    ``until`` defaults to the policy's after-care period.
    """

    event: ClassVar[str] = "start_aftercare"
    justification: str = field(validator=v.text(MAX_LINE))
    until: dt.datetime | None = field(default=None, validator=optional(aware_datetime))

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
    grounds: str = field(validator=v.text(MAX_LINE))

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
        ConfirmStatutoryOverride,
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
