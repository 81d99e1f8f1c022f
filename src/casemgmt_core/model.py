"""The domain model: immutable ``attrs`` classes and the vocabularies they use.

A :class:`Case` is never mutated: each accepted command yields events, and the new case is the
old one with those events applied (:func:`casemgmt_core.apply`). Korean and English labels of the
enumerations live in ``labels.toml``, not here.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from attrs import field, frozen

from . import _validation as v
from ._validation import (
    MAX_IDENTIFIER,
    MAX_LINE,
    MAX_NAME,
    aware_datetime,
    boolean,
    enum_member,
    identifier,
    instance_of,
    items_of,
    optional,
    to_tuple,
)
from .errors import InvalidData

__all__ = [
    "Actor",
    "Agency",
    "AgencyReferral",
    "AftercarePlan",
    "Approval",
    "ApprovalStatus",
    "ApprovalStep",
    "Case",
    "CaseConference",
    "CaseState",
    "Closure",
    "ClosureReason",
    "Consent",
    "ConsentGiver",
    "ConsentScope",
    "CrisisFactor",
    "EligibilityDecision",
    "EpisodeRef",
    "Goal",
    "Household",
    "JournalEntry",
    "JournalKind",
    "MandatoryReport",
    "Member",
    "Need",
    "NeedDomain",
    "Referral",
    "ReferralChannel",
    "ResourceKind",
    "ScreeningReason",
    "ScreeningResult",
    "ServiceItem",
    "StatutoryGround",
    "StatutoryOverride",
    "Strength",
]


class CaseState(StrEnum):
    """Where a case stands. The lifecycle (which moves are allowed) is in :mod:`.lifecycle`."""

    REFERRED = "referred"
    INTAKE = "intake"
    SCREENING = "screening"
    ASSESSMENT = "assessment"
    PLANNING = "planning"
    SERVICE = "service"
    REASSESSMENT = "reassessment"
    CRISIS = "crisis"
    CLOSED = "closed"
    AFTERCARE = "aftercare"
    REDIRECTED = "redirected"
    GENERAL_COUNSELLING = "general_counselling"
    DECLINED = "declined"
    HANDED_OVER = "handed_over"


class ReferralChannel(StrEnum):
    WALK_IN = "walk_in"
    PHONE = "phone"
    CALL_CENTRE_129 = "call_centre_129"
    OUTREACH = "outreach"
    NEIGHBOUR = "neighbour"
    RELATIVE = "relative"
    SCHOOL = "school"
    HOSPITAL = "hospital"
    POLICE = "police"
    AGENCY = "agency"


#: Channels where another body refers the household and must be named.
REFERRING_BODY_CHANNELS = frozenset(
    {ReferralChannel.SCHOOL, ReferralChannel.HOSPITAL, ReferralChannel.POLICE, ReferralChannel.AGENCY}
)


class CrisisFactor(StrEnum):
    JOB_LOSS = "job_loss"
    ILLNESS = "illness"
    DEATH = "death"
    DIVORCE = "divorce"
    DOMESTIC_VIOLENCE = "domestic_violence"
    CHILD_ABUSE = "child_abuse"
    ELDER_ABUSE = "elder_abuse"
    HOUSING = "housing"
    DEBT = "debt"
    MENTAL_ILLNESS = "mental_illness"
    ISOLATION = "isolation"
    CARE_GAP = "care_gap"


class NeedDomain(StrEnum):
    WELFARE = "welfare"
    HEALTH = "health"
    EMPLOYMENT = "employment"
    HOUSING = "housing"
    EDUCATION = "education"
    LEGAL = "legal"
    COUNSELLING = "counselling"


class ConsentScope(StrEnum):
    SERVICE_PROVISION = "service_provision"
    PERSONAL_DATA = "personal_data"
    SHARING = "sharing"
    """Sharing the household's data with one named agency (``Consent.agency_id``)."""


class ConsentGiver(StrEnum):
    PERSON = "person"
    GUARDIAN = "guardian"


class StatutoryGround(StrEnum):
    """Grounds on which the law obliges intervention, whatever the household consents to."""

    CHILD_ABUSE = "child_abuse"
    ELDER_ABUSE = "elder_abuse"
    DOMESTIC_VIOLENCE = "domestic_violence"


class ResourceKind(StrEnum):
    FORMAL = "formal"
    INFORMAL = "informal"


class JournalKind(StrEnum):
    NEW_FINDING = "new_finding"
    CHANGED_NEED = "changed_need"
    OBSERVED_CHANGE = "observed_change"
    ROLE_TAKEN = "role_taken"
    CONTACT = "contact"


class ClosureReason(StrEnum):
    GOALS_MET = "goals_met"
    SELF_RELIANT = "self_reliant"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    MOVED_AWAY = "moved_away"
    TRANSFERRED = "transferred"
    UNREACHABLE = "unreachable"
    DEATH = "death"
    MAXIMUM_DURATION = "maximum_duration"


class EligibilityDecision(StrEnum):
    """What screening concluded (the guard of ``select`` re-checks it)."""

    INTEGRATED_CASE_MANAGEMENT = "integrated_case_management"
    SINGLE_SERVICE = "single_service"
    GENERAL_COUNSELLING = "general_counselling"
    NOT_ELIGIBLE = "not_eligible"
    HANDED_OVER = "handed_over"
    """Another agency manages the household, or is the competent one."""


class ScreeningReason(StrEnum):
    """Why screening decided as it did: recorded with every exit (and with selection)."""

    ELIGIBLE = "eligible"
    INFORMATION_ONLY = "information_only"
    COUNSELLING_ONLY = "counselling_only"
    NOT_COMPLEX = "not_complex"
    OUT_OF_JURISDICTION = "out_of_jurisdiction"
    TARGET_RULE_UNMET = "target_rule_unmet"
    NO_CONSENT = "no_consent"
    """Neither consent nor a statutory basis."""
    HOUSEHOLD_DECLINED = "household_declined"
    """The household does not want case management."""
    MANAGED_ELSEWHERE = "managed_elsewhere"
    COMPETENT_AGENCY = "competent_agency"
    """Another agency is competent (child protection, a mental-health centre)."""
    OTHER = "other"
    """Any other reason: the command's note says which."""


class ApprovalStep(StrEnum):
    """A step a policy may require an approval for (``Policy.approvals``)."""

    PLAN = "plan"
    """``approve_plan``: the plan goes into service."""
    CLOSURE = "closure"
    """``close``."""
    CASE_EXTENSION = "case_extension"
    """``extend_case``."""
    SERVICE_EXTENSION = "service_extension"
    """``extend_service``, and relinking a service within its limit window."""
    AFTERCARE = "aftercare"
    """``start_aftercare``."""


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    USED = "used"
    """Approved, and the step it allowed was taken."""


def _team_ids(instance: object, attribute: Any, value: object) -> None:
    if type(value) is not frozenset:
        raise InvalidData(
            f"must be a frozenset of team ids, not {type(value).__name__}",
            field="Actor.teams",
            allowed=f"a frozenset of at most {MAX_TEAMS} identifiers",
        )
    if len(value) > MAX_TEAMS:
        raise InvalidData(f"names {len(value)} teams", field="Actor.teams", allowed=f"at most {MAX_TEAMS}")
    for team in value:
        v.check_identifier(team, "Actor.teams")


#: Most teams one actor belongs to.
MAX_TEAMS = 100


@frozen
class Actor:
    """Who issues a command or reads a case, as the host authenticated them. ``role`` is matched
    against the access policy; ``teams`` are the teams the actor works in (a supervisor's are the
    teams they supervise); ``tenant``, where set, is the only tenant the actor may act in."""

    id: str = field(validator=identifier)
    role: str = field(validator=identifier)
    teams: frozenset[str] = field(default=frozenset(), validator=_team_ids)
    tenant: str | None = field(default=None, validator=optional(identifier))


@frozen
class Agency:
    id: str = field(validator=identifier)
    name: str = field(default="", validator=v.line(MAX_NAME, personal=False))


@frozen
class Member:
    """A household member. A minor's consent is given by ``guardian_id`` (another member)."""

    member_id: str = field(validator=identifier)
    birth_date: dt.date = field(validator=v.date(personal=True))
    name: str = field(default="", validator=v.line(MAX_NAME))
    relation: str = field(default="", validator=v.line(MAX_NAME))
    guardian_id: str | None = field(default=None, validator=optional(identifier))

    def age_on(self, day: dt.date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


@frozen
class Household:
    household_id: str = field(validator=identifier)
    members: tuple[Member, ...] = field(converter=to_tuple, validator=items_of(Member, limit=100))
    region: str = field(default="", validator=v.line(MAX_IDENTIFIER, personal=False))
    """Administrative area of residence (e.g. the 읍·면·동 code); matched against the jurisdiction."""
    low_income: bool = field(default=False, validator=boolean)
    """Basic-livelihood recipient or near-poor: gives priority, never a condition."""

    def member(self, member_id: str) -> Member | None:
        for m in self.members:
            if m.member_id == member_id:
                return m
        return None


@frozen
class Referral:
    channel: ReferralChannel = field(validator=enum_member(ReferralChannel))
    received_at: dt.datetime = field(validator=aware_datetime)
    referring_agency: Agency | None = field(default=None, validator=instance_of(Agency, nullable=True))
    referrer_note: str = field(default="", validator=v.text(MAX_LINE))


@frozen
class Consent:
    consent_id: str = field(validator=identifier)
    scope: ConsentScope = field(validator=enum_member(ConsentScope))
    given_by: str = field(validator=identifier)
    """The member who signed (the person, or the guardian of a minor)."""
    giver: ConsentGiver = field(validator=enum_member(ConsentGiver))
    subject_id: str = field(validator=identifier)
    """The member the consent is about."""
    given_at: dt.datetime = field(validator=aware_datetime)
    agency_id: str | None = field(default=None, validator=optional(identifier))
    """With ``ConsentScope.SHARING``: the one agency the data may be shared with."""
    withdrawn_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


@frozen
class StatutoryOverride:
    """A recorded use of a statutory duty to intervene without consent.

    Where the policy asks for a second person's confirmation, ``confirm_by`` is its deadline: an
    override not confirmed by then has lapsed and no longer lifts the consent rule (the duty to
    report stays).
    """

    ground: StatutoryGround = field(validator=enum_member(StatutoryGround))
    legal_basis: str = field(validator=v.line(personal=False))
    actor_id: str = field(validator=identifier)
    invoked_at: dt.datetime = field(validator=aware_datetime)
    confirm_by: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    confirmed_by: str | None = field(default=None, validator=optional(identifier))
    confirmed_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))

    def in_force(self, now: dt.datetime) -> bool:
        """Whether the override lifts the consent rule at ``now`` (confirmed, or still in time)."""
        return self.confirm_by is None or self.confirmed_at is not None or now <= self.confirm_by


@frozen
class MandatoryReport:
    """The report to the competent authority that a statutory override obliges.

    It counts as filed (:attr:`filed`) only once its delivery to every authority it names was
    confirmed (``delivered_at``) and the authority's ``reference`` was recorded.
    """

    ground: StatutoryGround = field(validator=enum_member(StatutoryGround))
    authority: str = field(validator=v.line(personal=False))
    due_at: dt.datetime = field(validator=aware_datetime)
    reference: str | None = field(default=None, validator=optional(v.line(MAX_NAME, personal=False)))
    filed_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    delivered_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    event_id: str = field(default="", validator=v.line(MAX_NAME, personal=False))
    """The override event that obliged the report: its notifications' ids derive from it."""

    @property
    def filed(self) -> bool:
        return self.reference is not None and self.delivered_at is not None


@frozen
class Need:
    need_id: str = field(validator=identifier)
    domain: NeedDomain = field(validator=enum_member(NeedDomain))
    description: str = field(default="", validator=v.text(MAX_LINE))


@frozen
class Strength:
    description: str = field(validator=v.text(MAX_LINE))
    member_id: str | None = field(default=None, validator=optional(identifier))


@frozen
class Goal:
    goal_id: str = field(validator=identifier)
    description: str = field(validator=v.text(MAX_LINE))
    need_ids: tuple[str, ...] = field(default=(), converter=to_tuple, validator=v.identifiers())
    achieved_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    revision: int = field(default=0, validator=v.integer(0, 10_000))
    """How many times the goal was revised (``revise_goal``)."""
    dropped_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    drop_reason: str = field(default="", validator=v.text(MAX_LINE))

    @property
    def open(self) -> bool:
        """Neither achieved nor dropped."""
        return self.achieved_at is None and self.dropped_at is None


@frozen
class ServiceItem:
    """One service linked to a provider for one need (formal or informal resource)."""

    item_id: str = field(validator=identifier)
    need_id: str = field(validator=identifier)
    service: str = field(validator=identifier)
    """What is provided, e.g. ``tutoring`` or ``emergency_livelihood``: the duplicate check's key."""
    provider: Agency = field(validator=instance_of(Agency))
    resource: ResourceKind = field(validator=enum_member(ResourceKind))
    start: dt.datetime = field(validator=aware_datetime)
    time_limit: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    ended_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    outcome: str = field(default="", validator=v.text(MAX_LINE))
    extensions: int = field(default=0, validator=v.integer(0, 10_000))
    """How many times the service was extended (``extend_service``, or relinking it for the same
    need within its limit window, which continues the earlier item)."""
    extended_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    """When the current period began by an extension; a further extension needs a reassessment
    since then (or since ``start``)."""

    @property
    def active(self) -> bool:
        return self.ended_at is None


@frozen
class CaseConference:
    conference_id: str = field(validator=identifier)
    scheduled_for: dt.datetime = field(validator=aware_datetime)
    participants: tuple[str, ...] = field(default=(), converter=to_tuple, validator=v.identifiers())
    joint_with: tuple[str, ...] = field(default=(), converter=to_tuple, validator=v.identifiers())
    """Other bodies joining (e.g. a school, for a joint conference)."""
    held: bool = field(default=False, validator=boolean)
    decisions: str = field(default="", validator=v.text())


@frozen
class JournalEntry:
    kind: JournalKind = field(validator=enum_member(JournalKind))
    text: str = field(validator=v.text())
    recorded_at: dt.datetime = field(validator=aware_datetime)
    author_id: str = field(validator=identifier)
    member_id: str | None = field(default=None, validator=optional(identifier))


@frozen
class Closure:
    reason: ClosureReason = field(validator=enum_member(ClosureReason))
    closed_at: dt.datetime = field(validator=aware_datetime)


@frozen
class ScreeningResult:
    """What screening decided, why, and when (``service``: the single service redirected to;
    ``agency_id``: the agency handed over to)."""

    decision: EligibilityDecision = field(validator=enum_member(EligibilityDecision))
    reason: ScreeningReason = field(validator=enum_member(ScreeningReason))
    decided_at: dt.datetime = field(validator=aware_datetime)
    service: str | None = field(default=None, validator=optional(identifier))
    agency_id: str | None = field(default=None, validator=optional(identifier))


@frozen
class EpisodeRef:
    """An episode of a case: the link from a new episode to the one before it."""

    case_id: str = field(validator=identifier)
    episode: int = field(validator=v.integer(1, 10_000))


@frozen
class Approval:
    """A request that a step be approved, and its decision.

    ``subject`` says what within the case it is about (a service item's id for a service
    extension), empty for the case itself.
    """

    approval_id: str = field(validator=identifier)
    step: ApprovalStep = field(validator=enum_member(ApprovalStep))
    requested_by: str = field(validator=identifier)
    requested_at: dt.datetime = field(validator=aware_datetime)
    subject: str = field(default="", validator=v.line(MAX_IDENTIFIER, personal=False))
    comment: str = field(default="", validator=v.text(MAX_LINE))
    status: ApprovalStatus = field(default=ApprovalStatus.PENDING, validator=enum_member(ApprovalStatus))
    decided_by: str | None = field(default=None, validator=optional(identifier))
    decided_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    decision_comment: str = field(default="", validator=v.text(MAX_LINE))
    conference_id: str | None = field(default=None, validator=optional(identifier))
    """The case conference that decided, where the policy has conferences approve the step."""


@frozen
class AgencyReferral:
    """A referral of the case to another agency, awaiting its answer."""

    agency: Agency = field(validator=instance_of(Agency))
    referred_at: dt.datetime = field(validator=aware_datetime)


def _after_start(instance: AftercarePlan, attribute: object, value: dt.datetime) -> None:
    aware_datetime(instance, attribute, value)  # type: ignore[arg-type]
    if value <= instance.started_at:
        raise InvalidData(
            "after-care must end after it starts",
            field="AftercarePlan.until",
            allowed=f"after {instance.started_at.isoformat()}",
            value=value.isoformat(),
        )


@frozen
class AftercarePlan:
    justification: str = field(validator=v.text(MAX_LINE))
    started_at: dt.datetime = field(validator=aware_datetime)
    until: dt.datetime = field(validator=_after_start)
    ended_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))


@frozen(slots=False)
class Case:
    """A case as of ``version`` (the number of events applied to it).

    It holds what the rules decide on. The journal and the full history live in the events
    (:func:`casemgmt_core.journal`, :meth:`CaseManager.history`), so that a long-running case
    does not grow with every note.
    """

    case_id: str = field(validator=identifier)
    household: Household = field(validator=instance_of(Household))
    referral: Referral = field(validator=instance_of(Referral))
    state: CaseState = field(validator=enum_member(CaseState))
    opened_at: dt.datetime = field(validator=aware_datetime)
    state_entered_at: dt.datetime = field(validator=aware_datetime)
    episode_started_at: dt.datetime = field(validator=aware_datetime)
    version: int = field(default=0, validator=v.integer(0, 2**31 - 1))
    episode: int = field(default=1, validator=v.integer(1, 10_000))
    caseworker_id: str | None = field(default=None, validator=optional(identifier))
    consents: tuple[Consent, ...] = field(default=(), validator=items_of(Consent, limit=10_000))
    crisis_factors: frozenset[CrisisFactor] = field(default=frozenset(), validator=items_of(CrisisFactor))
    information_only: bool = field(default=False, validator=boolean)
    counselling_only: bool = field(default=False, validator=boolean)
    statutory_override: StatutoryOverride | None = field(
        default=None, validator=instance_of(StatutoryOverride, nullable=True)
    )
    mandatory_reports: tuple[MandatoryReport, ...] = field(
        default=(), validator=items_of(MandatoryReport, limit=10_000)
    )
    eligibility: EligibilityDecision | None = field(
        default=None, validator=optional(enum_member(EligibilityDecision))
    )
    needs: tuple[Need, ...] = field(default=(), validator=items_of(Need, limit=10_000))
    strengths: tuple[Strength, ...] = field(default=(), validator=items_of(Strength, limit=10_000))
    goals: tuple[Goal, ...] = field(default=(), validator=items_of(Goal, limit=10_000))
    service_items: tuple[ServiceItem, ...] = field(default=(), validator=items_of(ServiceItem, limit=10_000))
    conferences: tuple[CaseConference, ...] = field(
        default=(), validator=items_of(CaseConference, limit=10_000)
    )
    journal_size: int = field(default=0, validator=v.integer(0, 2**31 - 1))
    resume_state: CaseState | None = field(default=None, validator=optional(enum_member(CaseState)))
    closure: Closure | None = field(default=None, validator=instance_of(Closure, nullable=True))
    aftercare: AftercarePlan | None = field(default=None, validator=instance_of(AftercarePlan, nullable=True))
    handed_over_to: Agency | None = field(default=None, validator=instance_of(Agency, nullable=True))
    last_contact_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    plan_approved_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    plan_version: int = field(default=0, validator=v.integer(0, 10_000))
    """The number of the plan last approved (``approve_plan``), counted over the case's life."""
    reassessed_at: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    """When a reassessment was last completed (``revise_plan`` or ``resume_service``)."""
    screening: ScreeningResult | None = field(
        default=None, validator=instance_of(ScreeningResult, nullable=True)
    )
    previous_episode: EpisodeRef | None = field(
        default=None, validator=instance_of(EpisodeRef, nullable=True)
    )
    """The household's episode before this one: of this case (reopened) or of an earlier case."""
    team_id: str | None = field(default=None, validator=optional(identifier))
    approvals: tuple[Approval, ...] = field(default=(), validator=items_of(Approval, limit=10_000))
    case_limit_extended_to: dt.datetime | None = field(default=None, validator=optional(aware_datetime))
    """The episode's time limit as last extended (``extend_case``); ``None``: the policy's."""
    case_extensions: int = field(default=0, validator=v.integer(0, 10_000))
    referral_out: AgencyReferral | None = field(
        default=None, validator=instance_of(AgencyReferral, nullable=True)
    )
    """A referral to another agency awaiting its answer (``refer_out``)."""

    @property
    def household_id(self) -> str:
        return self.household.household_id

    def active_consents(self, scope: ConsentScope) -> tuple[Consent, ...]:
        return tuple(c for c in self.consents if c.scope is scope and c.active)

    def need(self, need_id: str) -> Need | None:
        for n in self.needs:
            if n.need_id == need_id:
                return n
        return None

    def service_item(self, item_id: str) -> ServiceItem | None:
        for s in self.service_items:
            if s.item_id == item_id:
                return s
        return None

    def goal(self, goal_id: str) -> Goal | None:
        for g in self.goals:
            if g.goal_id == goal_id:
                return g
        return None

    def approval(self, approval_id: str) -> Approval | None:
        for a in self.approvals:
            if a.approval_id == approval_id:
                return a
        return None

    @property
    def current_goals(self) -> tuple[Goal, ...]:
        """The plan's goals: all but the dropped ones."""
        return tuple(g for g in self.goals if g.dropped_at is None)
