"""Strategies and command builders shared by the property tests."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import strategies as st

from casemgmt_core import commands as c
from casemgmt_core.errors import InvalidData
from casemgmt_core.model import (
    Agency,
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
    ServiceItem,
    StatutoryGround,
    Strength,
)
from casemgmt_core.policy import Policy, load_policy

T = TypeVar("T")
UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REGIONS = ("R1", "R2", "R9")
PROVIDERS = (Agency("p-job", "Job centre"), Agency("p-health", "Health centre"), Agency("p-school"))
SERVICES = ("tutoring", "job_placement", "emergency_livelihood")
#: ``volunteer`` is in no access rule: every command it issues must be denied.
ROLES = ("supervisor", "caseworker", "intake_officer", "volunteer")
SUPERVISOR_ONLY = frozenset({"reopen", "approve_plan", "confirm_override"})

#: Programmes the machines run under: the default, one with a jurisdiction and elder abuse as a
#: statutory ground, one serving families with a child aged 6-13.
POLICIES: dict[str, Policy] = {
    "default": Policy(),
    "district": load_policy(
        'programme = "district"\n[eligibility]\njurisdiction = ["R1", "R2"]\n'
        "[statutory.elder_abuse]\nenabled = true\n"
    ),
    "child-network": load_policy(
        'programme = "child-network"\n[eligibility]\ntarget_child_age = [6, 13]\n'
        "[time_limits]\nservice_item_max_days = 120\n"
    ),
    "supervised": load_policy(
        'programme = "supervised"\n[statutory.child_abuse]\nconfirmation_within_hours = 24\n'
    ),
}

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

    def __init__(self, draw: Draw, now: dt.datetime, ids: itertools.count[int]) -> None:
        self.draw = draw
        self.now = now
        self.ids = ids

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

    def _hand_over(self, case: Case, valid: bool) -> c.Command:
        return c.HandOver(Agency(self.pick(valid, "other-centre", "")))

    def _redirect(self, case: Case, valid: bool) -> c.Command:
        return c.Redirect(choose(self.draw, SERVICES))

    def _decline(self, case: Case, valid: bool) -> c.Command:
        return c.Decline("no complex crisis")

    def _approve_plan(self, case: Case, valid: bool) -> c.Command:
        known = [x.conference_id for x in case.conferences]
        return c.ApprovePlan(self.pick(valid, choose(self.draw, [None, *known]), "CC-none"))

    def _start_reassessment(self, case: Case, valid: bool) -> c.Command:
        return c.StartReassessment("needs changed")

    def _declare_crisis(self, case: Case, valid: bool) -> c.Command:
        return c.DeclareCrisis("eviction notice")

    def _resolve_crisis(self, case: Case, valid: bool) -> c.Command:
        return c.ResolveCrisis("stable again")

    def _close(self, case: Case, valid: bool) -> c.Command:
        return c.Close(choose(self.draw, list(ClosureReason)))

    def _withdraw_consent(self, case: Case, valid: bool) -> c.Command | None:
        active = [x.consent_id for x in case.consents if x.active]
        if not active and valid:
            return None
        return c.WithdrawConsent(self.pick(valid, choose(self.draw, active or ["none"]), "no-such-consent"))

    def _start_aftercare(self, case: Case, valid: bool) -> c.Command:
        justification = choose(self.draw, ["fragile after closure", "fragile after closure", "", "  "])
        naive = self.now.replace(tzinfo=None) + dt.timedelta(days=30)
        return c.StartAftercare(justification, self.pick(valid, None, naive))

    def _reopen(self, case: Case, valid: bool) -> c.Command:
        return c.Reopen("the crisis came back")

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
        open_goals = [g.goal_id for g in case.goals if g.achieved_at is None]
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
            item = ServiceItem(
                item.item_id, item.need_id, item.service, item.provider, item.resource, item.start, item.start
            )
        return c.LinkService(item)

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
