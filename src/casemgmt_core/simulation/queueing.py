"""The M/M/c queue: Erlang's formula, the caseflow scenario reduced to it, and the bare queue.

They validate the simulator (the reduced scenario must reproduce Erlang C) and measure it: the
bare queue runs on the same event loop and caseworker pool as the caseflow model, without rules.
"""

from __future__ import annotations

import math

import numpy as np
from attrs import frozen

from ..model import ReferralChannel
from .distributions import Distribution, sampler
from .kernel import EventLoop, Pool
from .scenario import Arrivals, Durations, Households, Outcomes, Rates, Scenario, Staff

__all__ = ["QueueRun", "erlang_c", "mmc_queue", "mmc_scenario"]


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> tuple[float, float]:
    """``(probability of waiting, mean wait)`` of a stable M/M/c queue (time in the rates' unit)."""
    a = arrival_rate / service_rate
    rho = a / servers
    if not 0 < rho < 1:
        raise ValueError(f"the queue is unstable: utilisation {rho:.3f} must be below 1")
    # The Erlang B recursion, then C from B: stable for many servers.
    b = 1.0
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    p_wait = b / (1 - rho * (1 - b))
    return p_wait, p_wait / (servers * service_rate - arrival_rate)


def mmc_scenario(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    *,
    horizon_days: float = 2000.0,
    warmup_days: float = 200.0,
    replications: int = 10,
    seed: int = 1,
) -> Scenario:
    """The caseflow scenario reduced to M/M/c: Poisson referrals, ``servers`` caseworkers with a
    caseload cap of 1, every household consents and is eligible, every stage but the service
    cycle takes no time, and the first review closes the case (no crises, no recurrence).
    The rules still decide every step; only the randomness is reduced."""
    zero = Distribution.constant(0.0)
    return Scenario(
        name=f"M/M/{servers}",
        horizon_days=horizon_days,
        warmup_days=warmup_days,
        replications=replications,
        seed=seed,
        arrivals=Arrivals("poisson", {ReferralChannel.WALK_IN: arrival_rate}),
        households=Households(
            crisis_factor_counts=(0.0, 1.0),
            p_consent=1.0,
            p_child=0.0,
            p_child_abuse=0.0,
            p_elder_abuse=0.0,
            p_domestic_violence=0.0,
            p_information_only=0.0,
            p_counselling_only=0.0,
            p_out_of_jurisdiction=0.0,
            p_managed_elsewhere=0.0,
        ),
        staff=Staff(caseworkers=servers, caseload_cap=1),
        durations=Durations(
            intake=zero,
            screening=zero,
            assessment=zero,
            planning=zero,
            service_cycle=Distribution.exponential(1 / service_rate),
            reassessment=zero,
        ),
        rates=Rates(crisis_per_day=0.0, consent_withdrawal_per_day=0.0),
        outcomes=Outcomes(p_goals_met_per_cycle=1.0, p_aftercare=0.0, p_recurrence=0.0),
    )


@frozen
class QueueRun:
    customers: int
    """Customers served after the warm-up."""
    mean_wait: float
    events: int
    """Events the loop ran."""


def mmc_queue(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    *,
    horizon: float,
    warmup: float = 0.0,
    seed: int | np.random.SeedSequence = 0,
) -> QueueRun:
    """The bare M/M/c queue on the simulator's :class:`EventLoop` and :class:`Pool` (no rules)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    arrivals_rng, service_rng = (np.random.default_rng(s) for s in ss.spawn(2))
    gap = sampler(Distribution.exponential(1 / arrival_rate), arrivals_rng)
    service = sampler(Distribution.exponential(1 / service_rate), service_rng)
    loop = EventLoop()
    waits: list[float] = []

    def depart(server: int) -> None:
        pool.release(server)

    def grant(arrived: float, server: int) -> None:
        if arrived >= warmup:
            waits.append(loop.now - arrived)
        loop.after(service(), depart, server)

    pool = Pool(loop, servers, 1, grant)

    def arrive(_: object) -> None:
        pool.request(loop.now)
        loop.after(gap(), arrive)

    loop.at(gap(), arrive)
    events = loop.run(horizon)
    mean = math.fsum(waits) / len(waits) if waits else math.nan
    return QueueRun(len(waits), mean, events)
