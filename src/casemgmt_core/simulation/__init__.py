"""Caseflow simulation with the production rules: a fast discrete-event simulator for research.

Households are referred (Poisson by channel, or from a table), wait for a caseworker with room
in the caseload, and go through the lifecycle one command at a time, each decided by
:func:`casemgmt_core.decide` under the scenario's policy, time limits, extensions and approvals
included. Typical use::

    from casemgmt_core.simulation import load_scenario, simulate

    result = simulate(load_scenario(Path("examples/scenarios/baseline.toml")))
    result.summary()          # measures with confidence intervals across replications
    result.event_log()        # pm4py-ready event log (pandas)

Needs the ``simulation`` extra (numpy, pandas, matplotlib, tqdm).
"""

from .caseflow import (
    ACTORS,
    ReplicationResult,
    SimulationFlowError,
    check_access,
    needed_events,
    run_replication,
)
from .distributions import Distribution
from .kernel import EventLoop, Pool
from .queueing import QueueRun, erlang_c, mmc_queue, mmc_scenario
from .results import PM4PY_COLUMNS, STAGES, SimulationResult, parquet_available
from .runner import Progress, simulate
from .scenario import (
    Arrivals,
    Durations,
    Households,
    Outcomes,
    Rates,
    Scenario,
    ScenarioError,
    Staff,
    load_scenario,
)
from .stats import Interval, confidence_interval, t_quantile

__all__ = [
    "ACTORS",
    "PM4PY_COLUMNS",
    "STAGES",
    "Arrivals",
    "Distribution",
    "Durations",
    "EventLoop",
    "Households",
    "Interval",
    "Outcomes",
    "Pool",
    "Progress",
    "QueueRun",
    "Rates",
    "ReplicationResult",
    "Scenario",
    "ScenarioError",
    "SimulationFlowError",
    "SimulationResult",
    "Staff",
    "check_access",
    "confidence_interval",
    "erlang_c",
    "load_scenario",
    "mmc_queue",
    "mmc_scenario",
    "needed_events",
    "parquet_available",
    "run_replication",
    "simulate",
    "t_quantile",
]
