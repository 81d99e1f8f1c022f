"""Simulated case transitions per second on one M/M/c model, four ways, in the same run.

    python benchmarks/simulation.py [--customers N] [--repeat R]

1. a hand-written ``heapq`` event loop (the floor: nothing but the queue);
2. SimPy (process-based, ``simpy.Resource``);
3. this package's event loop and caseworker pool, without rules (``mmc_queue``);
4. this package's caseflow model on the scenario reduced to M/M/c (``mmc_scenario``): every step
   of every case decided by the rule engine.

A queue-model customer makes three transitions (referred, assigned, done). Throughput is
reported as cases per second and as transitions per second; the ratio is the heapq loop's
cases per second over each contender's (lower is better, 1.0 is the heapq loop itself).
Each timing is the best of ``--repeat`` runs. Needs ``simpy`` (the benchmark only).
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from collections import deque
from collections.abc import Callable
from itertools import count

import simpy

from casemgmt_core.simulation import erlang_c, mmc_queue, mmc_scenario, run_replication

LAMBDA, MU, SERVERS = 0.9, 0.25, 4  # utilisation 0.9: a real queue forms
RULE_STATS: dict[str, float] = {}
"""Per case in the rule-engine run: commands decided, and transitions of the stage."""


def heapq_loop(customers: int, seed: int) -> tuple[int, float]:
    """Arrivals and departures on a heap; the queue a deque. Returns (customers, mean wait)."""
    rng = random.Random(seed)
    expo = rng.expovariate
    heap: list[tuple[float, int, int]] = []
    seq = count()
    queue: deque[float] = deque()
    busy, served, total_wait = 0, 0, 0.0
    heapq.heappush(heap, (expo(LAMBDA), next(seq), 0))
    while served < customers:
        now, _, kind = heapq.heappop(heap)
        if kind == 0:  # arrival
            heapq.heappush(heap, (now + expo(LAMBDA), next(seq), 0))
            if busy < SERVERS:
                busy += 1
                served += 1
                heapq.heappush(heap, (now + expo(MU), next(seq), 1))
            else:
                queue.append(now)
        elif queue:  # departure, next in line starts
            start = queue.popleft()
            total_wait += now - start
            served += 1
            heapq.heappush(heap, (now + expo(MU), next(seq), 1))
        else:
            busy -= 1
    return served, total_wait / served


def simpy_model(customers: int, seed: int) -> tuple[int, float]:
    rng = random.Random(seed)
    env = simpy.Environment()
    workers = simpy.Resource(env, capacity=SERVERS)
    waits: list[float] = []

    def case(env: simpy.Environment) -> object:
        arrived = env.now
        with workers.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(rng.expovariate(MU))

    def source(env: simpy.Environment) -> object:
        while True:
            yield env.timeout(rng.expovariate(LAMBDA))
            env.process(case(env))

    env.process(source(env))
    env.run(until=customers / LAMBDA)
    return len(waits), sum(waits) / len(waits)


def our_queue(customers: int, seed: int) -> tuple[int, float]:
    run = mmc_queue(LAMBDA, MU, SERVERS, horizon=customers / LAMBDA, seed=seed)
    return run.customers, run.mean_wait


def our_rules(customers: int, seed: int) -> tuple[int, float]:
    days = customers / LAMBDA
    scenario = mmc_scenario(LAMBDA, MU, SERVERS, horizon_days=days, warmup_days=0.0, replications=1)
    r = run_replication(scenario, seed)
    waits = [w for w in r.cases["first_wait"] if w == w]
    RULE_STATS["transitions"] = r.transitions / len(r.cases["case"])
    RULE_STATS["decisions"] = r.decisions / len(r.cases["case"])
    return len(waits), sum(waits) / len(waits)


def best(fn: Callable[[int, int], tuple[int, float]], customers: int, repeat: int) -> tuple[float, float]:
    """(cases per second, mean wait) of the fastest of ``repeat`` runs."""
    rate, wait = 0.0, float("nan")
    for r in range(repeat):
        began = time.perf_counter()
        n, w = fn(customers, r + 1)
        rate = max(rate, n / (time.perf_counter() - began))
        wait = w
    return rate, wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000, help="customers per queue-model run")
    parser.add_argument("--rule-customers", type=int, default=20_000, help="cases per rule-engine run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _, expected = erlang_c(LAMBDA, MU, SERVERS)
    print(f"M/M/{SERVERS}, lambda={LAMBDA}, mu={MU}: Erlang C mean wait {expected:.3f} days\n")
    rows = [
        ("heapq loop (hand-written)", heapq_loop, args.customers, 3.0),
        ("SimPy", simpy_model, args.customers, 3.0),
        ("casemgmt_core: queue model", our_queue, args.customers, 3.0),
        ("casemgmt_core: full rule engine", our_rules, args.rule_customers, None),
    ]
    floor = 0.0
    print(f"{'model':<34}{'cases/s':>12}{'transitions/s':>15}{'x heapq':>9}{'mean wait':>11}")
    for name, fn, n, per_case in rows:
        rate, wait = best(fn, n, args.repeat)
        per = per_case if per_case is not None else RULE_STATS["transitions"]
        floor = floor or rate
        print(f"{name:<34}{rate:>12,.0f}{rate * per:>15,.0f}{floor / rate:>9.1f}{wait:>11.3f}")
    print(
        f"\nThe rule engine decides {RULE_STATS['decisions']:.1f} commands per case "
        f"({RULE_STATS['transitions']:.1f} of them change the stage)."
    )


if __name__ == "__main__":
    main()
