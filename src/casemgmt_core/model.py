"""The domain model: immutable ``attrs`` classes and the vocabularies they use.

A :class:`Case` is never mutated: each accepted command yields events, and the new case is the
old one with those events applied (:func:`casemgmt_core.apply`). Korean and English labels of the
enumerations live in ``labels.toml``, not here.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from attrs import field, frozen

__all__ = [
    "Actor",
    "Agency",
    "AftercarePlan",
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


@frozen
class Actor:
    """Who issues a command. ``role`` is matched against the access policy."""

    id: str
    role: str


@frozen
class Agency:
    id: str
    name: str = ""


@frozen
class Member:
    """A household member. A minor's consent is given by ``guardian_id`` (another member)."""

    member_id: str
    birth_date: dt.date
    name: str = ""
    relation: str = ""
    guardian_id: str | None = None

    def age_on(self, day: dt.date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


@frozen
class Household:
    household_id: str
    members: tuple[Member, ...] = field(converter=tuple)
    region: str = ""
    """Administrative area of residence (e.g. the 읍·면·동 code); matched against the jurisdiction."""
    low_income: bool = False
    """Basic-livelihood recipient or near-poor: gives priority, never a condition."""

    def member(self, member_id: str) -> Member | None:
        for m in self.members:
            if m.member_id == member_id:
                return m
        return None


@frozen
class Referral:
    channel: ReferralChannel
    received_at: dt.datetime
    referring_agency: Agency | None = None
    referrer_note: str = ""


@frozen
class Consent:
    consent_id: str
    scope: ConsentScope
    given_by: str
    """The member who signed (the person, or the guardian of a minor)."""
    giver: ConsentGiver
    subject_id: str
    """The member the consent is about."""
    given_at: dt.datetime
    agency_id: str | None = None
    """With ``ConsentScope.SHARING``: the one agency the data may be shared with."""
    withdrawn_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


@frozen
class StatutoryOverride:
    """A recorded use of a statutory duty to intervene without consent."""

    ground: StatutoryGround
    legal_basis: str
    actor_id: str
    invoked_at: dt.datetime


@frozen
class MandatoryReport:
    """The report to the competent authority that a statutory override obliges."""

    ground: StatutoryGround
    authority: str
    due_at: dt.datetime
    reference: str | None = None
    filed_at: dt.datetime | None = None


@frozen
class Need:
    need_id: str
    domain: NeedDomain
    description: str = ""


@frozen
class Strength:
    description: str
    member_id: str | None = None


@frozen
class Goal:
    goal_id: str
    description: str
    need_ids: tuple[str, ...] = field(default=(), converter=tuple)
    achieved_at: dt.datetime | None = None


@frozen
class ServiceItem:
    """One service linked to a provider for one need (formal or informal resource)."""

    item_id: str
    need_id: str
    service: str
    """What is provided, e.g. ``tutoring`` or ``emergency_livelihood``: the duplicate check's key."""
    provider: Agency
    resource: ResourceKind
    start: dt.datetime
    time_limit: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    outcome: str = ""

    @property
    def active(self) -> bool:
        return self.ended_at is None


@frozen
class CaseConference:
    conference_id: str
    scheduled_for: dt.datetime
    participants: tuple[str, ...] = field(default=(), converter=tuple)
    joint_with: tuple[str, ...] = field(default=(), converter=tuple)
    """Other bodies joining (e.g. a school, for a joint conference)."""
    held: bool = False
    decisions: str = ""


@frozen
class JournalEntry:
    kind: JournalKind
    text: str
    recorded_at: dt.datetime
    author_id: str
    member_id: str | None = None


@frozen
class Closure:
    reason: ClosureReason
    closed_at: dt.datetime


@frozen
class AftercarePlan:
    justification: str
    started_at: dt.datetime
    until: dt.datetime
    ended_at: dt.datetime | None = None


@frozen(slots=False)
class Case:
    """A case as of ``version`` (the number of events applied to it).

    It holds what the rules decide on. The journal and the full history live in the events
    (:func:`casemgmt_core.journal`, :meth:`CaseManager.history`), so that a long-running case
    does not grow with every note.
    """

    case_id: str
    household: Household
    referral: Referral
    state: CaseState
    opened_at: dt.datetime
    state_entered_at: dt.datetime
    episode_started_at: dt.datetime
    version: int = 0
    episode: int = 1
    caseworker_id: str | None = None
    consents: tuple[Consent, ...] = ()
    crisis_factors: frozenset[CrisisFactor] = frozenset()
    information_only: bool = False
    counselling_only: bool = False
    statutory_override: StatutoryOverride | None = None
    mandatory_reports: tuple[MandatoryReport, ...] = ()
    eligibility: EligibilityDecision | None = None
    needs: tuple[Need, ...] = ()
    strengths: tuple[Strength, ...] = ()
    goals: tuple[Goal, ...] = ()
    service_items: tuple[ServiceItem, ...] = ()
    conferences: tuple[CaseConference, ...] = ()
    journal_size: int = 0
    resume_state: CaseState | None = None
    closure: Closure | None = None
    aftercare: AftercarePlan | None = None
    handed_over_to: Agency | None = None
    last_contact_at: dt.datetime | None = None
    plan_approved_at: dt.datetime | None = None

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
