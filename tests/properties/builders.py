"""Strategies and command builders shared by the property tests."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

from attrs import evolve
from hypothesis import strategies as st

from casemgmt_core import commands as c
from casemgmt_core.errors import InvalidData
from casemgmt_core.model import (
    Agency,
    ApprovalStatus,
    ApprovalStep,
    Case,
    CaseConference,
    ClosureReason,
    Consent,
    ConsentGiver,
    ConsentScope,
    CrisisFactor,
    Goal,
    Household,
    JournalKind,
    Member,
    Need,
    NeedDomain,
    Referral,
    ReferralChannel,
    ResourceKind,
    ScreeningReason,
    ServiceItem,
    StatutoryGround,
    Strength,
)
from casemgmt_core.policy import AccessRules, Policy, load_policy

from . import reference

T = TypeVar("T")
UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REGIONS = ("R1", "R2", "R9")
PROVIDERS = (Agency("p-job", "Job centre"), Agency("p-health", "Health centre"), Agency("p-school"))
SERVICES = ("tutoring", "job_placement", "emergency_livelihood")
#: ``volunteer`` is in no access rule: every command it issues must be denied.
ROLES = ("supervisor", "caseworker", "intake_officer", "team_lead", "volunteer")
#: Events only a supervisor may issue under the default access rules.
SUPERVISOR_ONLY = frozenset(
    {"reopen", "approve_plan", "confirm_override", "extend_case", "approve", "reject"}
)
AGENCIES = (*PROVIDERS, Agency("p-housing", "Housing agency"))
WORKERS = ("w-1", "w-2", "w-3")
TEAMS = ("team-north", "team-south")

_APPROVALS = load_policy(
    'programme = "approvals"\n[time_limits]\ncase_max = "3 months"\nservice_item_max = "P1M"\n'
    'service_extension = "2 weeks"\ncase_extension = "1 month"\nmax_case_extensions = 1\n'
    "[approvals.plan]\nby_conference = true\n[approvals.closure]\n[approvals.case_extension]\n"
    "[approvals.service_extension]\n[approvals.aftercare]\n"
    '[episodes]\naftercare_after = ["goals_met", "self_reliant", "maximum_duration", "unreachable"]\n'
)
#: A team lead may decide approvals by the access table, yet no approval rule names the role
#: (the loader refuses the reverse, a rule naming a role the access table does not allow).
_TEAM_LEAD_ACCESS = AccessRules(
    {**_APPROVALS.access.roles, "team_lead": frozenset({"request_approval", "approve", "reject"})}
)

#: Programmes the machines run under: the default; one with a jurisdiction, elder abuse as a
#: statutory ground and its own after-care and consent rules for episodes; one serving families
#: with a child aged 6-13 on a calendar with summer time; one with short limits where every step
#: that can need an approval needs one (the plan by a case conference).
POLICIES: dict[str, Policy] = {
    "default": Policy(),
    "district": load_policy(
        'programme = "district"\n[eligibility]\njurisdiction = ["R1", "R2"]\n'
        "[statutory.elder_abuse]\nenabled = true\n"
        '[episodes]\naftercare_after = ["goals_met", "self_reliant"]\n'
        'reconfirm_consents = ["service_provision", "sharing"]\n'
    ),
    "child-network": load_policy(
        'programme = "child-network"\ntime_zone = "America/New_York"\n'
        "[eligibility]\ntarget_child_age = [6, 13]\n"
        "[time_limits]\nservice_item_max_days = 120\nmax_service_extensions = 2\n"
        'service_extension = "2 months"\n'
    ),
    "supervised": load_policy(
        'programme = "supervised"\n[statutory.child_abuse]\nconfirmation_within_hours = 24\n'
    ),
    "approvals": evolve(_APPROVALS, access=_TEAM_LEAD_ACCESS),
}

DEFAULT = POLICIES["default"]

Draw = Callable[[st.SearchStrategy[Any]], Any]


@st.composite
def households(draw: Draw, household_id: str | None = None) -> Household:
    """A household of one or two adults and up to three minors; a minor's guardian is an adult
    of the household, or (sometimes) none is recorded."""
    hid = household_id or draw(st.sampled_from(["H1", "H2", "H3"]))
    adults = [
        Member(f"a{i}", draw(st.dates(dt.date(1940, 1, 1), dt.date(2005, 12, 31))), relation="parent")
        for i in range(draw(st.integers(1, 2)))
    ]
    guardians = [a.member_id for a in adults]
    minors = [
        Member(
            f"m{i}",
            draw(st.dates(dt.date(2009, 1, 1), dt.date(2025, 12, 31))),
            relation="child",
            guardian_id=draw(st.sampled_from([*guardians, guardians[0], None])),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return Household(hid, (*adults, *minors), draw(st.sampled_from(REGIONS)), draw(st.booleans()))


@st.composite
def referrals(draw: Draw, at: dt.datetime = T0) -> Referral:
    """A referral; one from a school, hospital, police or agency sometimes lacks the referring
    agency (which the engine must refuse as invalid data)."""
    channel = draw(st.sampled_from(ReferralChannel))
    agency = draw(st.sampled_from([None, Agency("school-7", "Elementary school"), Agency("police-3")]))
    return Referral(channel, at, agency)


def choose(draw: Draw, options: list[T] | tuple[T, ...]) -> T:
    return draw(st.sampled_from(list(options)))


def chance(draw: Draw, one_in: int) -> bool:
    return bool(draw(st.integers(1, one_in)) == 1)


class Maker:
    """Builds a command for an event and a case: referentially valid (ids that exist, new ids
    that do not, aware datetimes, non-empty text) unless ``valid`` is false, in which case
    anything may be wrong. Returns ``None`` when no valid command exists (e.g. nothing to end)."""

    def __init__(
        self, draw: Draw, now: dt.datetime, ids: itertools.count[int], policy: Policy = DEFAULT
    ) -> None:
        self.draw = draw
        self.now = now
        self.ids = ids
        self.policy = policy

    def new(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    def pick(self, valid: bool, good: T, *bad: T) -> T:
        if valid or not bad or not chance(self.draw, 2):
            return good
        return choose(self.draw, bad)

    def build(self, event: str, case: Case, *, valid: bool = True) -> c.Command | None:
        """The command, or ``None``: nothing valid to build, or the values drawn were refused
        when the command was built (the boundary's first check; no engine call to make)."""
        method = getattr(self, f"_{event}", None)
        if method is None:
            command_type = c.COMMAND_TYPES[event]
            return command_type()
        try:
            result: c.Command | None = method(case, valid)
        except InvalidData:
            assert not valid, f"a valid {event} was refused when built"
            return None
        return result

    def exit_reason(self, case: Case, valid: bool, *, hand_over: bool = False) -> ScreeningReason | None:
        """A screening exit's reason: none (the rules' finding is recorded) where a rule fails,
        a failing rule, or the caseworker's word; invalid: the exit of an eligible household
        without a reason, a rule that holds, or ``eligible``."""
        failing = reference.screening_failures(case, self.policy, self.now)
        exits: list[ScreeningReason | None] = [
            r for r in ScreeningReason if r is not ScreeningReason.ELIGIBLE
        ]
        if hand_over:
            return self.pick(valid, choose(self.draw, [None, *exits]), ScreeningReason.ELIGIBLE)
        word = [r for r in exits if r not in reference.CHECKABLE]
        good: list[ScreeningReason | None] = [*([None] * 3 if failing else []), *failing, *word]
        holding = [r for r in sorted(reference.CHECKABLE) if r not in failing]
        bad: list[ScreeningReason | None] = [ScreeningReason.ELIGIBLE, *holding, *([] if failing else [None])]
        return self.pick(valid, choose(self.draw, good), *bad)

    def _hand_over(self, case: Case, valid: bool) -> c.Command:
        agency = Agency(self.pick(valid, choose(self.draw, ["other-centre", "dream-start"]), ""))
        return c.HandOver(agency, self.exit_reason(case, valid, hand_over=True))

    def _redirect(self, case: Case, valid: bool) -> c.Command:
        return c.Redirect(choose(self.draw, SERVICES), self.exit_reason(case, valid))

    def _refer_to_counselling(self, case: Case, valid: bool) -> c.Command:
        return c.ReferToCounselling(self.exit_reason(case, valid))

    def _decline(self, case: Case, valid: bool) -> c.Command:
        return c.Decline("no complex crisis", self.exit_reason(case, valid))

    def approved(self, case: Case, step: ApprovalStep, subject: str = "") -> list[str]:
        """Approvals of ``step`` about ``subject`` that were approved and not yet used."""
        return [
            a.approval_id
            for a in case.approvals
            if (a.step, a.subject, a.status) == (step, subject, ApprovalStatus.APPROVED)
        ]

    def named_approval(self, case: Case, valid: bool, step: ApprovalStep, subject: str = "") -> str | None:
        """Usually none (the engine finds it); sometimes the approval a step will use: an approved
        one, where the policy asks for it (a step never names one it does not use)."""
        needed = step in self.policy.approvals or step is ApprovalStep.SERVICE_EXTENSION
        good = self.approved(case, step, subject) if needed else []
        other = [a.approval_id for a in case.approvals if a.step is step and a.approval_id not in good]
        named = choose(self.draw, [None, None, *good])
        return self.pick(valid, named, "A-none", *other)

    def _approve_plan(self, case: Case, valid: bool) -> c.Command:
        known = [x.conference_id for x in case.conferences]
        conference = self.pick(valid, choose(self.draw, [None, *known]), "CC-none")
        if not valid and chance(self.draw, 4):
            return c.ApprovePlan(conference, version=1)
        return c.ApprovePlan(conference, approval_id=self.named_approval(case, valid, ApprovalStep.PLAN))

    def _start_reassessment(self, case: Case, valid: bool) -> c.Command:
        return c.StartReassessment("needs changed")

    def _declare_crisis(self, case: Case, valid: bool) -> c.Command:
        return c.DeclareCrisis("eviction notice")

    def _resolve_crisis(self, case: Case, valid: bool) -> c.Command:
        return c.ResolveCrisis("stable again")

    def _close(self, case: Case, valid: bool) -> c.Command:
        named = self.named_approval(case, valid, ApprovalStep.CLOSURE)
        return c.Close(choose(self.draw, list(ClosureReason)), named)

    def _withdraw_consent(self, case: Case, valid: bool) -> c.Command | None:
        active = [x.consent_id for x in case.consents if x.active]
        if not active and valid:
            return None
        return c.WithdrawConsent(self.pick(valid, choose(self.draw, active or ["none"]), "no-such-consent"))

    def _start_aftercare(self, case: Case, valid: bool) -> c.Command:
        justification = choose(self.draw, ["fragile after closure", "fragile after closure", "", "  "])
        naive = self.now.replace(tzinfo=None) + dt.timedelta(days=30)
        until = self.pick(valid, choose(self.draw, [None, None, self.now + dt.timedelta(days=90)]), naive)
        return c.StartAftercare(
            justification, until, self.named_approval(case, valid, ApprovalStep.AFTERCARE)
        )

    def _reopen(self, case: Case, valid: bool) -> c.Command:
        grounds = self.pick(valid, "the crisis came back", "", " ")
        lapsed = self.pick(valid, (), tuple(x.consent_id for x in case.consents[:1]) or ("K1",))
        return c.Reopen(grounds, lapsed)

    def _revise_goal(self, case: Case, valid: bool) -> c.Command | None:
        open_goals = [g.goal_id for g in case.goals if g.open]
        if not open_goals and valid:
            return None
        goal = self.pick(valid, choose(self.draw, open_goals or ["G-none"]), "G-none")
        needs = [n.need_id for n in case.needs]
        chosen = self.draw(st.lists(st.sampled_from(needs), max_size=2, unique=True)) if needs else []
        reason = self.pick(valid, "the family asked for a smaller step", "", "  ")
        return c.ReviseGoal(goal, "a smaller first step", reason, self.pick(valid, chosen, ["N-none"]))

    def _drop_goal(self, case: Case, valid: bool) -> c.Command | None:
        kept = [g.goal_id for g in case.goals if g.dropped_at is None]
        if not kept and valid:
            return None
        goal = self.pick(valid, choose(self.draw, kept or ["G-none"]), "G-none")
        return c.DropGoal(goal, self.pick(valid, "no longer wanted", ""))

    def _extend_service(self, case: Case, valid: bool) -> c.Command | None:
        running = [s for s in case.service_items if s.active]
        if not running and valid:
            return None
        if not running:
            return c.ExtendService("S-none", "still needed")
        item = choose(self.draw, running)
        current = max(reference.item_limit(case, item.item_id, self.policy), self.now)
        days = choose(self.draw, [None, None, 1, 14, 60, 200, 400])
        until = None if days is None else current + dt.timedelta(days=days)
        until = self.pick(valid, until, current, current - dt.timedelta(days=1))
        named = self.named_approval(case, valid, ApprovalStep.SERVICE_EXTENSION, item.item_id)
        return c.ExtendService(item.item_id, self.pick(valid, "still needed", ""), until, named)

    def _extend_case(self, case: Case, valid: bool) -> c.Command:
        current = max(reference.case_limit(case, self.policy), self.now)
        days = choose(self.draw, [None, None, 1, 20, 100, 400])
        until = None if days is None else current + dt.timedelta(days=days)
        until = self.pick(valid, until, current)
        named = self.named_approval(case, valid, ApprovalStep.CASE_EXTENSION)
        return c.ExtendCase(self.pick(valid, "the debts take longer", " "), until, named)

    def _request_approval(self, case: Case, valid: bool) -> c.Command | None:
        step = choose(self.draw, list(ApprovalStep))
        items = [s.item_id for s in case.service_items]
        if step is ApprovalStep.SERVICE_EXTENSION:
            if not items and valid:
                return None
            subject = choose(self.draw, items or ["S-none"])
        else:
            subject = ""
        waiting = [
            a
            for a in case.approvals
            if (a.step, a.subject, a.status) == (step, subject, ApprovalStatus.PENDING)
        ]
        if waiting and valid:
            return None
        taken = [a.approval_id for a in case.approvals]
        approval_id = self.pick(valid, self.new("A"), *taken)
        subject = self.pick(valid, subject, "S-none" if subject else choose(self.draw, items or ["S1"]))
        return c.RequestApproval(approval_id, step, subject, choose(self.draw, ["", "see the plan"]))

    def _decision(self, case: Case, valid: bool) -> tuple[str, str | None]:
        waiting = [a.approval_id for a in case.approvals if a.status is ApprovalStatus.PENDING]
        known = [a.approval_id for a in case.approvals]
        approval_id = choose(self.draw, [*waiting, *waiting, *waiting, *known, "A-none"])
        held = [x.conference_id for x in case.conferences if x.held]
        unheld = [x.conference_id for x in case.conferences if not x.held]
        conference = self.pick(valid, choose(self.draw, [None, *held, *held]), "CC-none", *unheld)
        return approval_id, conference

    def _approve(self, case: Case, valid: bool) -> c.Command:
        approval_id, conference = self._decision(case, valid)
        return c.Approve(approval_id, choose(self.draw, ["", "agreed"]), conference)

    def _reject(self, case: Case, valid: bool) -> c.Command:
        approval_id, conference = self._decision(case, valid)
        return c.Reject(approval_id, self.pick(valid, "not enough evidence", "", "  "), conference)

    def _transfer(self, case: Case, valid: bool) -> c.Command:
        worker = choose(self.draw, [None, *(w for w in WORKERS if w != case.caseworker_id)])
        team = choose(self.draw, [None, *(t for t in TEAMS if t != case.team_id)])
        if worker is None and team is None:
            worker = next(w for w in WORKERS if w != case.caseworker_id)
        note = self.pick(valid, "knows the family; debts are the priority", "", " ")
        if not valid and chance(self.draw, 3):
            return choose(
                self.draw,
                [
                    c.TransferCase(note, case.caseworker_id, case.team_id),
                    c.TransferCase(note, worker, team, from_caseworker_id="w-9"),
                ],
            )
        return c.TransferCase(note, worker, team)

    def _refer_out(self, case: Case, valid: bool) -> c.Command:
        return c.ReferOut(
            choose(self.draw, AGENCIES), choose(self.draw, ["", "specialised debt counselling"])
        )

    def _referral_accepted(self, case: Case, valid: bool) -> c.Command:
        return c.ReferralAccepted(choose(self.draw, ["", "AG-2026-7"]))

    def _referral_declined(self, case: Case, valid: bool) -> c.Command:
        return c.ReferralDeclined(self.pick(valid, "no capacity this quarter", "", " "))

    def _assign(self, case: Case, valid: bool) -> c.Command:
        return c.AssignCaseworker(self.pick(valid, choose(self.draw, ["w-1", "w-2"]), ""))

    def _record_crisis_factor(self, case: Case, valid: bool) -> c.Command:
        return c.RecordCrisisFactor(choose(self.draw, list(CrisisFactor)))

    def _record_intake_findings(self, case: Case, valid: bool) -> c.Command:
        return c.RecordIntakeFindings(chance(self.draw, 6), chance(self.draw, 6), "stable housing")

    def consent(self, case: Case, scope: ConsentScope, *, honest: bool = True) -> Consent:
        """A consent of ``scope`` for a random member: given by the right person when ``honest``."""
        members = case.household.members
        subject = choose(self.draw, members)
        minor = subject.member_id.startswith("m")
        if honest and minor and subject.guardian_id is not None:
            giver, by = ConsentGiver.GUARDIAN, subject.guardian_id
        elif honest:
            subject = next((m for m in members if not m.member_id.startswith("m")), subject)
            giver, by = ConsentGiver.PERSON, subject.member_id
        else:
            giver = choose(self.draw, list(ConsentGiver))
            by = choose(self.draw, [m.member_id for m in members] + ["stranger"])
        agency = choose(self.draw, PROVIDERS).id if scope is ConsentScope.SHARING else None
        return Consent(self.new("K"), scope, by, giver, subject.member_id, self.now, agency)

    def _record_consent(self, case: Case, valid: bool) -> c.Command:
        consent = self.consent(case, choose(self.draw, list(ConsentScope)), honest=not chance(self.draw, 3))
        if not valid and chance(self.draw, 2):
            taken = [x.consent_id for x in case.consents]
            broken = choose(
                self.draw,
                [
                    Consent(
                        choose(self.draw, taken or ["K"]),
                        consent.scope,
                        consent.given_by,
                        consent.giver,
                        consent.subject_id,
                        consent.given_at,
                        consent.agency_id,
                    ),
                    Consent(
                        consent.consent_id,
                        ConsentScope.SHARING,
                        consent.given_by,
                        consent.giver,
                        consent.subject_id,
                        consent.given_at,
                    ),
                    Consent(
                        consent.consent_id,
                        consent.scope,
                        consent.given_by,
                        consent.giver,
                        consent.subject_id,
                        consent.given_at.replace(tzinfo=None),
                        consent.agency_id,
                    ),
                ],
            )
            return c.RecordConsent(broken)
        return c.RecordConsent(consent)

    def _invoke_override(self, case: Case, valid: bool) -> c.Command:
        ground = choose(self.draw, list(StatutoryGround))
        return c.InvokeStatutoryOverride(ground, member_for(ground, case, self.draw))

    def _file_report(self, case: Case, valid: bool) -> c.Command:
        pending = [r.ground for r in case.mandatory_reports if not r.filed]
        ground = choose(self.draw, pending) if pending and chance(self.draw, 2) else None
        ground = ground or choose(self.draw, list(StatutoryGround))
        return c.FileMandatoryReport(ground, self.pick(valid, self.new("REF-"), "", "  "))

    def _record_need(self, case: Case, valid: bool) -> c.Command:
        taken = [n.need_id for n in case.needs]
        need_id = self.pick(valid, self.new("N"), *taken)
        return c.RecordNeed(Need(need_id, choose(self.draw, list(NeedDomain))))

    def _record_strength(self, case: Case, valid: bool) -> c.Command:
        member = choose(self.draw, [None, *(m.member_id for m in case.household.members)])
        return c.RecordStrength(Strength("a helpful neighbour", member))

    def _set_goal(self, case: Case, valid: bool) -> c.Command:
        needs = [n.need_id for n in case.needs]
        chosen = self.draw(st.lists(st.sampled_from(needs), max_size=2, unique=True)) if needs else []
        return c.SetGoal(Goal(self.new("G"), "back in work", self.pick(valid, chosen, ["N-none"])))

    def _achieve_goal(self, case: Case, valid: bool) -> c.Command | None:
        open_goals = [g.goal_id for g in case.goals if g.achieved_at is None and g.dropped_at is None]
        if not open_goals and valid:
            return None
        return c.AchieveGoal(self.pick(valid, choose(self.draw, open_goals or ["G-none"]), "G-none"))

    def _schedule_conference(self, case: Case, valid: bool) -> c.Command:
        when = self.now + dt.timedelta(days=self.draw(st.integers(0, 30)))
        taken = [x.conference_id for x in case.conferences]
        conference_id = self.pick(valid, self.new("CC"), *taken)
        return c.ScheduleConference(CaseConference(conference_id, when, ("lead-1",), ("school-7",)))

    def _hold_conference(self, case: Case, valid: bool) -> c.Command | None:
        pending = [x.conference_id for x in case.conferences if not x.held]
        if not pending and valid:
            return None
        return c.HoldConference(
            self.pick(valid, choose(self.draw, pending or ["CC-none"]), "CC-none"), "agreed"
        )

    def service_item(self, case: Case, need_id: str) -> ServiceItem:
        days = self.draw(st.one_of(st.none(), st.integers(1, 60), st.integers(100, 400)))
        limit = None if days is None else self.now + dt.timedelta(days=days)
        return ServiceItem(
            self.new("S"),
            need_id,
            choose(self.draw, SERVICES),
            choose(self.draw, PROVIDERS),
            choose(self.draw, list(ResourceKind)),
            self.now,
            limit,
        )

    def _link_service(self, case: Case, valid: bool) -> c.Command | None:
        needs = [n.need_id for n in case.needs]
        if not needs and valid:
            return None
        item = self.service_item(case, self.pick(valid, choose(self.draw, needs or ["N-none"]), "N-none"))
        if not valid and chance(self.draw, 3):
            item = choose(
                self.draw,
                [
                    evolve(item, time_limit=item.start),
                    evolve(item, extensions=1),
                    evolve(item, item_id=choose(self.draw, [s.item_id for s in case.service_items] or ["S"])),
                ],
            )
        return c.LinkService(item, self.pick(valid, None, "A-none"))

    def _end_service(self, case: Case, valid: bool) -> c.Command | None:
        running = [s.item_id for s in case.service_items if s.active]
        if not running and valid:
            return None
        return c.EndService(self.pick(valid, choose(self.draw, running or ["S-none"]), "S-none"), "done")

    def _record_journal(self, case: Case, valid: bool) -> c.Command:
        member = choose(self.draw, [None, *(m.member_id for m in case.household.members)])
        return c.RecordJournal(
            choose(self.draw, list(JournalKind)),
            self.pick(valid, "the family moved to a smaller flat", "", "   "),
            self.pick(valid, member, "nobody"),
        )


def role_for(event: str) -> str:
    """The least role allowed to issue ``event`` under the default access rules."""
    return "supervisor" if event in SUPERVISOR_ONLY else "caseworker"


def member_for(ground: StatutoryGround, case: Case, draw: Draw) -> str | None:
    """Sometimes name the member an override is about (any member: the guard judges)."""
    return choose(draw, [None, None, *(m.member_id for m in case.household.members)])
