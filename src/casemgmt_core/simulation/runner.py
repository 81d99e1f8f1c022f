"""Running replications, in parallel through any :class:`concurrent.futures.Executor`."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed

import numpy as np

from .caseflow import ReplicationResult, check_access, run_replication
from .results import SimulationResult
from .scenario import Scenario

__all__ = ["Progress", "simulate"]

Progress = Callable[[int, int], object]
"""Called as ``progress(done, total)`` each time a replication finishes."""


def simulate(
    scenario: Scenario,
    *,
    replications: int | None = None,
    seed: int | None = None,
    executor: Executor | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run ``replications`` independent replications of ``scenario`` (default: the scenario's).

    Replication ``i`` draws from the ``i``-th stream that ``numpy.random.SeedSequence(seed)``
    spawns, so the output depends only on the scenario and the seed, never on the executor or
    the order in which replications finish. Without ``executor``, replications run in a process
    pool of ``workers`` processes (default: one per CPU); ``workers=1`` runs them in this process.
    A Dask cluster works the same way: ``executor=client.get_executor(pure=False)``.
    """
    check_access(scenario)
    n = scenario.replications if replications is None else replications
    if n < 1:
        raise ValueError("replications must be at least 1")
    root = scenario.seed if seed is None else seed
    seeds = np.random.SeedSequence(root).spawn(n)
    results: list[ReplicationResult] = []
    if executor is None and (workers == 1 or n == 1):
        for i, s in enumerate(seeds):
            results.append(run_replication(scenario, s, i))
            if progress is not None:
                progress(i + 1, n)
    elif executor is None:
        count = workers or min(n, os.cpu_count() or 1)
        with ProcessPoolExecutor(max_workers=count) as pool:
            results = _collect(pool, scenario, seeds, progress)
    else:
        results = _collect(executor, scenario, seeds, progress)
    results.sort(key=lambda r: r.index)
    return SimulationResult(scenario, results, root)


def _collect(
    executor: Executor,
    scenario: Scenario,
    seeds: list[np.random.SeedSequence],
    progress: Progress | None,
) -> list[ReplicationResult]:
    futures: list[Future[ReplicationResult]] = [
        executor.submit(run_replication, scenario, s, i) for i, s in enumerate(seeds)
    ]
    results = []
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            results.append(future.result())
            if progress is not None:
                progress(done, len(futures))
    finally:
        for future in futures:
            future.cancel()
    return results
