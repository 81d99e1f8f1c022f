"""The case lifecycle, defined once and declaratively.

:data:`DEFINITION` lists every transition: the event that triggers it, the states it leaves
from, where it goes (``None`` for an event that records data without changing state), the
guards that must allow it, and for an event with several destinations the branch condition
(named ``if_…``) that picks one. The definition is loaded into a :class:`transitions.Machine`,
which validates it and draws it (:func:`to_mermaid`, :func:`to_dot`); the engine's hot path uses
:data:`TABLE`, a plain dictionary compiled once from that machine. No machine is built per case.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from attrs import frozen
from transitions import Machine

from . import commands as c
from .errors import CaseManagementError
from .guards import GUARDS, Guard
from .model import Case, CaseState, ConsentScope

__all__ = [
    "ACTIVE_STATES",
    "DEFINITION",
    "EVENTS",
    "FINAL_STATES",
    "INITIAL_STATE",
    "LIMITED_EVENTS",
    "LIVE_STATES",
    "TABLE",
    "CompiledTransition",
    "DiagramUnavailable",
    "TransitionSpec",
    "allowed_events",
    "build_machine",
    "to_dot",
    "to_mermaid",
    "transition_triples",
]

S = CaseState
INITIAL_STATE = S.REFERRED

#: States in which the household is being worked with; crisis intervention can start from each.
ACTIVE_STATES = (S.INTAKE, S.SCREENING, S.ASSESSMENT, S.PLANNING, S.SERVICE, S.REASSESSMENT)
#: States from which nothing leads on: the household went elsewhere.
FINAL_STATES = (S.REDIRECTED, S.GENERAL_COUNSELLING, S.DECLINED, S.HANDED_OVER)
_OPEN = (S.REFERRED, *ACTIVE_STATES, S.CRISIS)
#: States in which the case is a household's current episode: a household has at most one.
LIVE_STATES = frozenset((*_OPEN, S.AFTERCARE))
_WORKING = (S.ASSESSMENT, S.PLANNING, S.SERVICE, S.REASSESSMENT)
_EXIT_GUARDS = ("no_statutory_duty", "reports_filed")
_AFTER_INTAKE = (*_WORKING, S.CRISIS)

#: Events that move a case on or give it new work. Past the episode's time limit these are
#: refused (guard ``within_case_limit``, reason ``case_limit_reached``) in every active stage:
#: the case can still be recorded, wound down, closed, put into crisis intervention or extended.
LIMITED_EVENTS = frozenset(
    {
        "complete_intake",
        "select",
        "record_need",
        "record_strength",
        "complete_assessment",
        "set_goal",
        "revise_goal",
        "approve_plan",
        "link_service",
        "extend_service",
        "start_reassessment",
        "revise_plan",
        "resume_service",
    }
)


@frozen
class TransitionSpec:
    event: str
    sources: tuple[CaseState, ...]
    dest: CaseState | None
    guards: tuple[str, ...] = ()
    branch: str | None = None


def _t(
    event: str,
    sources: Iterable[CaseState],
    dest: CaseState | None,
    guards: Iterable[str] = (),
    branch: str | None = None,
) -> TransitionSpec:
    return TransitionSpec(event, tuple(sources), dest, tuple(guards), branch)


_DEFINED: tuple[TransitionSpec, ...] = (
    # referral and intake
    _t("start_intake", [S.REFERRED], S.INTAKE),
    _t("hand_over", [S.REFERRED, S.INTAKE, S.SCREENING], S.HANDED_OVER, ["reports_filed"]),
    _t("complete_intake", [S.INTAKE], S.SCREENING, ["crisis_factors_recorded"]),
    # screening and its exits
    _t("select", [S.SCREENING], S.ASSESSMENT, ["eligibility", "service_consent", "not_managed_elsewhere"]),
    _t("redirect", [S.SCREENING], S.REDIRECTED, _EXIT_GUARDS),
    _t("refer_to_counselling", [S.SCREENING], S.GENERAL_COUNSELLING, _EXIT_GUARDS),
    _t("decline", [S.INTAKE, S.SCREENING], S.DECLINED, _EXIT_GUARDS),
    # assessment, planning, service and monitoring, reassessment
    _t("complete_assessment", [S.ASSESSMENT], S.PLANNING, ["data_consent", "needs_recorded"]),
    _t("approve_plan", [S.PLANNING], S.SERVICE, ["service_consent", "plan_has_goals", "approval"]),
    _t("start_reassessment", [S.SERVICE], S.REASSESSMENT),
    _t("revise_plan", [S.REASSESSMENT], S.PLANNING),
    _t("resume_service", [S.REASSESSMENT], S.SERVICE, ["service_consent"]),
    # crisis intervention from any active stage, then back to that stage
    _t("declare_crisis", ACTIVE_STATES, S.CRISIS),
    *(
        _t("resolve_crisis", [S.CRISIS], state, branch=f"if_resuming_{state.value}")
        for state in ACTIVE_STATES
    ),
    # closure, after-care, recurrence
    _t("close", [*_WORKING, S.CRISIS], S.CLOSED, ["closure_reason_fits", "reports_filed", "approval"]),
    _t(
        "withdraw_consent",
        [*ACTIVE_STATES, S.CRISIS, S.AFTERCARE],
        S.CLOSED,
        branch="if_last_service_consent",
    ),
    _t("withdraw_consent", [*ACTIVE_STATES, S.CRISIS, S.AFTERCARE], None),
    _t("start_aftercare", [S.CLOSED], S.AFTERCARE, ["aftercare_justified", "approval"]),
    _t("complete_aftercare", [S.AFTERCARE], S.CLOSED),
    _t("reopen", [S.CLOSED, S.AFTERCARE], S.INTAKE, ["reopenable"]),
    # referral to another agency after intake: accepted, the case closes as transferred
    _t("refer_out", _AFTER_INTAKE, None, ["sharing_consent", "no_referral_pending"]),
    _t("referral_accepted", _AFTER_INTAKE, S.CLOSED, ["referral_pending", "reports_filed"]),
    _t("referral_declined", _AFTER_INTAKE, None, ["referral_pending"]),
    # records that do not change the stage
    _t("assign", [*_OPEN, S.AFTERCARE], None),
    _t("transfer", [*_OPEN, S.AFTERCARE], None),
    _t("record_crisis_factor", _OPEN, None),
    _t("record_intake_findings", [S.INTAKE, S.SCREENING], None),
    _t("record_consent", [*_OPEN, S.AFTERCARE], None, ["valid_consent_giver"]),
    _t("invoke_override", _OPEN, None, ["ground_enabled", "statutory_subject"]),
    _t("confirm_override", _OPEN, None, ["override_awaiting_confirmation"]),
    _t("file_report", _OPEN, None, ["report_pending", "report_delivered"]),
    _t("record_need", _WORKING, None, ["data_consent"]),
    _t("record_strength", _WORKING, None, ["data_consent"]),
    _t("set_goal", [S.PLANNING, S.REASSESSMENT], None, ["service_consent"]),
    _t("revise_goal", [S.PLANNING, S.REASSESSMENT], None, ["service_consent"]),
    _t("drop_goal", [S.PLANNING, S.REASSESSMENT], None),
    _t("achieve_goal", [S.SERVICE, S.REASSESSMENT], None),
    _t("schedule_conference", [*_WORKING, S.CRISIS], None),
    _t("hold_conference", [*_WORKING, S.CRISIS], None),
    _t(
        "link_service",
        [S.PLANNING, S.SERVICE, S.CRISIS],
        None,
        ["sharing_consent", "service_not_duplicated", "within_time_limit", "relink_justified"],
    ),
    _t("end_service", [S.PLANNING, S.SERVICE, S.REASSESSMENT, S.CRISIS], None),
    _t(
        "extend_service",
        [S.PLANNING, S.SERVICE, S.REASSESSMENT, S.CRISIS],
        None,
        ["extension_within_policy", "extension_justified"],
    ),
    _t("extend_case", [*ACTIVE_STATES, S.CRISIS], None, ["approval", "extension_within_policy"]),
    # approvals: requested, then approved or rejected (after closure too, for after-care)
    _t("request_approval", [*_OPEN, S.CLOSED, S.AFTERCARE], None),
    _t("approve", [*_OPEN, S.CLOSED, S.AFTERCARE], None, ["approval_pending"]),
    _t("reject", [*_OPEN, S.CLOSED, S.AFTERCARE], None, ["approval_pending"]),
    _t("record_journal", [*_OPEN, S.AFTERCARE], None),
)


def _limited(t: TransitionSpec) -> TransitionSpec:
    """``t`` with the case time limit first among its guards, if it is limited work."""
    if t.event not in LIMITED_EVENTS:
        return t
    return TransitionSpec(t.event, t.sources, t.dest, ("within_case_limit", *t.guards), t.branch)


DEFINITION: tuple[TransitionSpec, ...] = tuple(_limited(t) for t in _DEFINED)


#: Every event name, ``open`` included (it creates the case in the initial state).
EVENTS: tuple[str, ...] = ("open", *dict.fromkeys(t.event for t in DEFINITION))
if set(EVENTS) != set(c.COMMAND_TYPES):
    raise LookupError(f"lifecycle and commands disagree: {set(EVENTS) ^ set(c.COMMAND_TYPES)}")

Branch = Callable[[Case, c.Command], bool]


def _resuming(state: CaseState) -> Branch:
    return lambda case, command: case.resume_state is state


def _last_service_consent(case: Case, command: c.Command) -> bool:
    assert isinstance(command, c.WithdrawConsent)
    if case.statutory_override is not None:
        return False
    withdrawn = next((x for x in case.consents if x.consent_id == command.consent_id), None)
    if withdrawn is None or withdrawn.scope is not ConsentScope.SERVICE_PROVISION:
        return False
    return not any(
        x.scope is ConsentScope.SERVICE_PROVISION and x.active and x.consent_id != command.consent_id
        for x in case.consents
    )


BRANCHES: Mapping[str, Branch] = {
    "if_last_service_consent": _last_service_consent,
    **{f"if_resuming_{s.value}": _resuming(s) for s in ACTIVE_STATES},
}


def _machine_config() -> dict[str, Any]:
    transitions = [
        {
            "trigger": t.event,
            "source": [s.value for s in t.sources],
            "dest": t.dest.value if t.dest is not None else None,
            "conditions": ([t.branch] if t.branch else []) + list(t.guards),
        }
        for t in DEFINITION
    ]
    return {
        "states": [s.value for s in CaseState],
        "transitions": transitions,
        "initial": INITIAL_STATE.value,
        "auto_transitions": False,
        "send_event": True,
    }


def build_machine() -> Machine:
    """The lifecycle as a :class:`transitions.Machine` (validates every state and event name)."""
    return Machine(model=None, **_machine_config())


@frozen
class CompiledTransition:
    event: str
    source: CaseState
    dest: CaseState | None
    guard_names: tuple[str, ...]
    guards: tuple[Guard, ...]
    branch: Branch | None


def _compile(machine: Machine) -> dict[tuple[CaseState, str], tuple[CompiledTransition, ...]]:
    table: dict[tuple[CaseState, str], tuple[CompiledTransition, ...]] = {}
    for name, event in machine.events.items():
        for source, candidates in event.transitions.items():
            compiled = []
            for t in candidates:
                names = [str(cond.func) for cond in t.conditions]
                branch_names = [n for n in names if n in BRANCHES]
                guard_names = tuple(n for n in names if n not in BRANCHES)
                unknown = [n for n in guard_names if n not in GUARDS]
                if unknown:
                    raise LookupError(f"lifecycle: {name} from {source} names unknown guards {unknown}")
                compiled.append(
                    CompiledTransition(
                        name,
                        CaseState(source),
                        CaseState(t.dest) if t.dest else None,
                        guard_names,
                        tuple(GUARDS[n] for n in guard_names),
                        BRANCHES[branch_names[0]] if branch_names else None,
                    )
                )
            table[(CaseState(source), name)] = tuple(compiled)
    return table


#: ``(state, event) -> candidate transitions``, first matching branch wins.
TABLE = _compile(build_machine())

_ALLOWED: dict[CaseState, tuple[str, ...]] = {
    s: tuple(sorted(e for (src, e) in TABLE if src is s)) for s in CaseState
}


def allowed_events(state: CaseState) -> tuple[str, ...]:
    """The events a case in ``state`` may receive (before guards)."""
    return _ALLOWED[state]


def transition_triples() -> frozenset[tuple[str | None, str, str]]:
    """Every ``(source, event, destination)`` of the definition, ``open`` included.

    An event that records data without changing the stage has its source as destination.
    Opening has no source (``None``).
    """
    triples: set[tuple[str | None, str, str]] = {(None, "open", INITIAL_STATE.value)}
    for (source, event), candidates in TABLE.items():
        for t in candidates:
            triples.add((source.value, event, (t.dest or source).value))
    return frozenset(triples)


@functools.cache
def _graph_machine(engine: Literal["mermaid", "graphviz"], internal: bool) -> Any:
    from transitions.extensions import GraphMachine

    config = _machine_config()
    if not internal:
        config["transitions"] = [t for t in config["transitions"] if t["dest"] is not None]
    # transitions writes the Mermaid title between "---" lines: as YAML front matter it needs a key.
    title = "casemgmt_core case lifecycle"
    return GraphMachine(
        graph_engine=engine,
        show_conditions=True,
        title=f"title: {title}" if engine == "mermaid" else title,
        **config,
    )


def to_mermaid(*, include_records: bool = False) -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``; records that keep the stage are left out
    unless ``include_records``."""
    return str(_graph_machine("mermaid", include_records).get_graph().draw(None))


class DiagramUnavailable(CaseManagementError, ImportError):
    """A diagram format needs a package that is not installed; the message names the extra."""

    code = "diagram_unavailable"


def to_dot(*, include_records: bool = False) -> str:
    """The lifecycle as Graphviz DOT source.

    Needs the ``graphviz`` Python package (``pip install 'casemgmt-core[diagrams]'``), not the
    Graphviz programs: only the source is produced. Without the package this raises
    :class:`DiagramUnavailable` (an :class:`ImportError` too) rather than returning another format.
    """
    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise DiagramUnavailable(_NO_GRAPHVIZ) from None
    machine = _graph_machine("graphviz", include_records)
    # transitions falls back to Mermaid when it cannot use graphviz: never pass that off as DOT.
    if not getattr(machine, "graph_cls", type).__module__.endswith("diagrams_graphviz"):
        _graph_machine.cache_clear()
        raise DiagramUnavailable(_NO_GRAPHVIZ)
    return str(machine.get_graph().source)


_NO_GRAPHVIZ = "the DOT diagram needs the graphviz Python package: pip install 'casemgmt-core[diagrams]'"
