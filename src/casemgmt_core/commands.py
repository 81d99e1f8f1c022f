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
    AgencyReferral,
    Approval,
    ApprovalStatus,
    ApprovalStep,
    Case,
    CaseConference,
    Closure,
    ClosureReason,
    Consent,
    CrisisFactor,
    EligibilityDecision,
    EpisodeRef,
    Goal,
    Household,
    JournalKind,
    MandatoryReport,
    Need,
    Referral,
    ScreeningReason,
    ScreeningResult,
    ServiceItem,
    StatutoryGround,
    StatutoryOverride,
    Strength,
)

__all__ = [
    "AchieveGoal",
    "Approve",
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
    "DropGoal",
    "EndService",
    "ExtendCase",
    "ExtendService",
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
    "ReferOut",
    "ReferToCounselling",
    "ReferralAccepted",
    "ReferralDeclined",
    "Reject",
    "Reopen",
    "RequestApproval",
    "ResolveCrisis",
    "ResumeService",
    "ReviseGoal",
    "RevisePlan",
    "ScheduleConference",
    "Select",
    "SetGoal",
    "StartAftercare",
    "StartIntake",
    "StartReassessment",
    "TransferCase",
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


def _use_approval(case: Case, approval_id: str | None, at: dt.datetime) -> Changes:
    """Mark the approval that allowed a step as used, so that it allows that step once."""
    if approval_id is None:
        return {}
    return {
        "approvals": _replace_where(
            case.approvals,
            lambda a: a.approval_id == approval_id,
            lambda a: evolve(a, status=ApprovalStatus.USED),
        )
    }


def wind_down(case: Case, at: dt.datetime, reason: ClosureReason) -> Changes:
    """What closing does besides recording the closure: every running service item and any
    running after-care ends, with the closure's reason as the outcome."""
    outcome = f"case closed: {reason.value}"
    changes: Changes = {
        "closure": Closure(reason, at),
        "resume_state": None,
        "referral_out": None,
        "service_items": _replace_where(
            case.service_items, lambda s: s.active, lambda s: evolve(s, ended_at=at, outcome=outcome)
        ),
    }
    if case.aftercare is not None and case.aftercare.ended_at is None:
        changes["aftercare"] = evolve(case.aftercare, ended_at=at)
    return changes


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
    previous_episode: EpisodeRef | None = field(
        default=None, validator=instance_of(EpisodeRef, nullable=True)
    )
    """The household's last earlier episode: filled in by :func:`~casemgmt_core.decide` from what
    the service layer found in the store, never by the caller."""


@frozen
class AssignCaseworker(Command):
    """Assign the case to a caseworker and, with ``team_id``, to the team whose members and
    supervisors share it (the default access rule, :class:`~casemgmt_core.access.TeamAccess`);
    without one the case keeps its team."""

    event: ClassVar[str] = "assign"
    caseworker_id: str = field(validator=identifier)
    team_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        changes: Changes = {"caseworker_id": self.caseworker_id}
        if self.team_id is not None:
            changes["team_id"] = self.team_id
        return changes


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
        decision = EligibilityDecision.INTEGRATED_CASE_MANAGEMENT
        return {"eligibility": decision, "screening": ScreeningResult(decision, ScreeningReason.ELIGIBLE, at)}


def _screened(
    decision: EligibilityDecision,
    reason: ScreeningReason | None,
    at: dt.datetime,
    service: str | None = None,
    agency_id: str | None = None,
) -> Changes:
    assert reason is not None, "decide() fills reason"
    return {"eligibility": decision, "screening": ScreeningResult(decision, reason, at, service, agency_id)}


@frozen
class Redirect(Command):
    """Redirect to a single service or to information: integrated case management is not needed.

    ``reason`` defaults to what the eligibility rules find (``not_complex``, ``information_only``…);
    for a household that meets them, the caller must say why.
    """

    event: ClassVar[str] = "redirect"
    service: str = field(validator=identifier)
    reason: ScreeningReason | None = field(default=None, validator=optional(enum_member(ScreeningReason)))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return _screened(EligibilityDecision.SINGLE_SERVICE, self.reason, at, service=self.service)


@frozen
class ReferToCounselling(Command):
    """Refer to general counselling; ``reason`` as for :class:`Redirect`."""

    event: ClassVar[str] = "refer_to_counselling"
    reason: ScreeningReason | None = field(default=None, validator=optional(enum_member(ScreeningReason)))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return _screened(EligibilityDecision.GENERAL_COUNSELLING, self.reason, at)


@frozen
class Decline(Command):
    """Decline case management; ``reason`` as for :class:`Redirect` (``household_declined`` when
    the household does not want it)."""

    event: ClassVar[str] = "decline"
    grounds: str = field(validator=v.text(MAX_LINE))
    reason: ScreeningReason | None = field(default=None, validator=optional(enum_member(ScreeningReason)))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return _screened(EligibilityDecision.NOT_ELIGIBLE, self.reason, at)


@frozen
class HandOver(Command):
    """Hand the household to the agency that already manages it, or is competent.

    ``reason`` defaults to ``managed_elsewhere`` where the registry says so, else
    ``competent_agency``.
    """

    event: ClassVar[str] = "hand_over"
    agency: Agency = field(validator=instance_of(Agency))
    reason: ScreeningReason | None = field(default=None, validator=optional(enum_member(ScreeningReason)))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        changes = _screened(EligibilityDecision.HANDED_OVER, self.reason, at, agency_id=self.agency.id)
        return changes | {"handed_over_to": self.agency}


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
class ReviseGoal(Command):
    """Revise a goal's wording or the needs it answers; ``reason`` says why (kept in the history)."""

    event: ClassVar[str] = "revise_goal"
    goal_id: str = field(validator=identifier)
    description: str = field(validator=v.text(MAX_LINE))
    reason: str = field(validator=v.text(MAX_LINE))
    need_ids: tuple[str, ...] = field(default=(), converter=v.to_tuple, validator=v.identifiers())

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        revised = _replace_where(
            case.goals,
            lambda g: g.goal_id == self.goal_id,
            lambda g: evolve(
                g, description=self.description, need_ids=self.need_ids, revision=g.revision + 1
            ),
        )
        return {"goals": revised}


@frozen
class DropGoal(Command):
    """Drop a goal from the plan, with the reason."""

    event: ClassVar[str] = "drop_goal"
    goal_id: str = field(validator=identifier)
    reason: str = field(validator=v.text(MAX_LINE))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        dropped = _replace_where(
            case.goals,
            lambda g: g.goal_id == self.goal_id,
            lambda g: evolve(g, dropped_at=at, drop_reason=self.reason),
        )
        return {"goals": dropped}


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
    """Approve the service plan (optionally by a case conference) and start services.

    :func:`~casemgmt_core.decide` fills in the plan's ``version`` and its ``goals`` as approved,
    so that the history holds every version (:func:`~casemgmt_core.plan_versions`), and the
    ``approval_id`` that allowed it where the policy asks for one.
    """

    event: ClassVar[str] = "approve_plan"
    conference_id: str | None = field(default=None, validator=optional(identifier))
    version: int | None = field(default=None, validator=optional(v.integer(1, 10_000)))
    goals: tuple[Goal, ...] = field(
        default=(), converter=v.to_tuple, validator=v.items_of(Goal, limit=10_000)
    )
    approval_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        version = self.version if self.version is not None else case.plan_version + 1
        return {"plan_approved_at": at, "plan_version": version} | _use_approval(case, self.approval_id, at)


# -- services and monitoring --------------------------------------------------------------


@frozen
class LinkService(Command):
    """Link one service item to a provider. ``item.time_limit`` defaults to the policy maximum."""

    event: ClassVar[str] = "link_service"
    item: ServiceItem = field(validator=instance_of(ServiceItem))
    approval_id: str | None = field(default=None, validator=optional(identifier))
    """The approval that allows relinking within the limit window (filled in by ``decide``)."""

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"service_items": (*case.service_items, self.item)} | _use_approval(case, self.approval_id, at)


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
class ExtendService(Command):
    """Extend a running service item's time limit, after a reassessment or with an approval.

    ``until`` defaults to the current limit plus the policy's longest extension.
    """

    event: ClassVar[str] = "extend_service"
    item_id: str = field(validator=identifier)
    reason: str = field(validator=v.text(MAX_LINE))
    until: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    approval_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert self.until is not None, "decide() fills until"
        until = self.until
        extended = _replace_where(
            case.service_items,
            lambda s: s.item_id == self.item_id,
            lambda s: evolve(s, time_limit=until, extensions=s.extensions + 1, extended_at=at),
        )
        return {"service_items": extended} | _use_approval(case, self.approval_id, at)


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
    """Complete a reassessment by planning again."""

    event: ClassVar[str] = "revise_plan"

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"reassessed_at": at}


@frozen
class ResumeService(Command):
    """Complete a reassessment by resuming the plan as it is."""

    event: ClassVar[str] = "resume_service"

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"reassessed_at": at}


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
    """Close the case. Every running service item ends with the closure's reason."""

    event: ClassVar[str] = "close"
    reason: ClosureReason = field(validator=enum_member(ClosureReason))
    approval_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return wind_down(case, at, self.reason) | _use_approval(case, self.approval_id, at)


@frozen
class ExtendCase(Command):
    """Extend the episode's time limit (a supervisor's decision): ``until`` defaults to the
    current limit plus the policy's longest extension."""

    event: ClassVar[str] = "extend_case"
    reason: str = field(validator=v.text(MAX_LINE))
    until: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    approval_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert self.until is not None, "decide() fills until"
        return {
            "case_limit_extended_to": self.until,
            "case_extensions": case.case_extensions + 1,
        } | _use_approval(case, self.approval_id, at)


@frozen
class StartAftercare(Command):
    """Start after-care, only where judged necessary: ``justification`` says why.

    ``until`` defaults to the policy's after-care period.
    """

    event: ClassVar[str] = "start_aftercare"
    justification: str = field(validator=v.text(MAX_LINE))
    until: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    approval_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert self.until is not None, "decide() fills until"
        changes = {"aftercare": AftercarePlan(self.justification, at, self.until)}
        return changes | _use_approval(case, self.approval_id, at)


@frozen
class CompleteAftercare(Command):
    event: ClassVar[str] = "complete_aftercare"

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert case.aftercare is not None
        return {"aftercare": evolve(case.aftercare, ended_at=at)}


@frozen
class Reopen(Command):
    """Reopen on recurrence: a new episode starts at intake.

    The old episode's needs, strengths, goals, service items, conferences, approvals, crisis
    factors, screening and after-care stay in the history, not in the new working set; consents
    of the scopes the policy asks to re-confirm (``lapsed_consents``, filled in by
    :func:`~casemgmt_core.decide`) are no longer in force. Statutory overrides and mandatory
    reports stay: the duty does not end with an episode.
    """

    event: ClassVar[str] = "reopen"
    grounds: str = field(validator=v.text(MAX_LINE))
    lapsed_consents: tuple[str, ...] = field(default=(), converter=v.to_tuple, validator=v.identifiers())

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        lapsed = frozenset(self.lapsed_consents)
        return {
            "episode": case.episode + 1,
            "episode_started_at": at,
            "previous_episode": EpisodeRef(case.case_id, case.episode),
            "closure": None,
            "eligibility": None,
            "screening": None,
            "resume_state": None,
            "plan_approved_at": None,
            "consents": tuple(x for x in case.consents if x.consent_id not in lapsed),
            "crisis_factors": frozenset(),
            "information_only": False,
            "counselling_only": False,
            "needs": (),
            "strengths": (),
            "goals": (),
            "service_items": (),
            "conferences": (),
            "approvals": (),
            "aftercare": None,
            "reassessed_at": None,
            "last_contact_at": None,
            "case_limit_extended_to": None,
            "case_extensions": 0,
            "referral_out": None,
            "handed_over_to": None,
        }


# -- approvals ----------------------------------------------------------------------------


@frozen
class RequestApproval(Command):
    """Ask for a step to be approved (``subject``: the service item, for a service extension)."""

    event: ClassVar[str] = "request_approval"
    approval_id: str = field(validator=identifier)
    step: ApprovalStep = field(validator=enum_member(ApprovalStep))
    subject: str = field(default="", validator=v.line(v.MAX_IDENTIFIER, personal=False))
    comment: str = field(default="", validator=v.text(MAX_LINE))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        request = Approval(self.approval_id, self.step, actor_id, at, self.subject, self.comment)
        return {"approvals": (*case.approvals, request)}


@frozen
class Approve(Command):
    """Approve a pending request (by a role the policy names, or citing a held conference)."""

    event: ClassVar[str] = "approve"
    approval_id: str = field(validator=identifier)
    comment: str = field(default="", validator=v.text(MAX_LINE))
    conference_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {
            "approvals": _decided(
                case,
                self.approval_id,
                ApprovalStatus.APPROVED,
                actor_id,
                at,
                self.comment,
                self.conference_id,
            )
        }


@frozen
class Reject(Command):
    """Reject a pending request; ``comment`` says why (required)."""

    event: ClassVar[str] = "reject"
    approval_id: str = field(validator=identifier)
    comment: str = field(validator=v.text(MAX_LINE))
    conference_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {
            "approvals": _decided(
                case,
                self.approval_id,
                ApprovalStatus.REJECTED,
                actor_id,
                at,
                self.comment,
                self.conference_id,
            )
        }


def _decided(
    case: Case,
    approval_id: str,
    status: ApprovalStatus,
    actor_id: str,
    at: dt.datetime,
    comment: str,
    conference_id: str | None,
) -> tuple[Approval, ...]:
    return _replace_where(
        case.approvals,
        lambda a: a.approval_id == approval_id,
        lambda a: evolve(
            a,
            status=status,
            decided_by=actor_id,
            decided_at=at,
            decision_comment=comment,
            conference_id=conference_id,
        ),
    )


# -- transfers ----------------------------------------------------------------------------


@frozen
class TransferCase(Command):
    """Hand the case to another caseworker or team, with a hand-over note; both sides are told.

    A transfer to a team without a caseworker leaves the case unassigned until the team assigns
    it (``assign``). ``from_caseworker_id`` and ``from_team_id`` are filled in by
    :func:`~casemgmt_core.decide`.
    """

    event: ClassVar[str] = "transfer"
    note: str = field(validator=v.text(MAX_LINE))
    caseworker_id: str | None = field(default=None, validator=optional(identifier))
    team_id: str | None = field(default=None, validator=optional(identifier))
    from_caseworker_id: str | None = field(default=None, validator=optional(identifier))
    from_team_id: str | None = field(default=None, validator=optional(identifier))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        changes: Changes = {"caseworker_id": self.caseworker_id}
        if self.team_id is not None:
            changes["team_id"] = self.team_id
        return changes


@frozen
class ReferOut(Command):
    """Refer the case to another agency, which accepts (the case closes as ``transferred``) or
    declines (the case carries on here). Sharing the case needs a sharing consent for the agency,
    or a statutory basis."""

    event: ClassVar[str] = "refer_out"
    agency: Agency = field(validator=instance_of(Agency))
    note: str = field(default="", validator=v.text(MAX_LINE))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"referral_out": AgencyReferral(self.agency, at)}


@frozen
class ReferralAccepted(Command):
    """The agency accepted the referral: the case closes as transferred to it."""

    event: ClassVar[str] = "referral_accepted"
    reference: str = field(default="", validator=v.line(MAX_NAME, personal=False))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        assert case.referral_out is not None
        agency = case.referral_out.agency
        return wind_down(case, at, ClosureReason.TRANSFERRED) | {"handed_over_to": agency}


@frozen
class ReferralDeclined(Command):
    """The agency declined the referral; ``reason`` says why. The case carries on here."""

    event: ClassVar[str] = "referral_declined"
    reason: str = field(validator=v.text(MAX_LINE))

    def changes(self, case: Case, at: dt.datetime, actor_id: str) -> Changes:
        return {"referral_out": None}


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
        ReviseGoal,
        DropGoal,
        ExtendService,
        ExtendCase,
        RequestApproval,
        Approve,
        Reject,
        TransferCase,
        ReferOut,
        ReferralAccepted,
        ReferralDeclined,
    )
}
