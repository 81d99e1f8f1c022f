"""Replications give the same output whatever runs them: this process, a process pool, or Dask."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from distributed import Client, LocalCluster

from casemgmt_core.simulation import Scenario, simulate


def _logs_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)


def test_a_process_pool_gives_the_same_output_as_one_process(small: Scenario) -> None:
    seen: list[tuple[int, int]] = []
    inline = simulate(small, seed=11, workers=1, progress=lambda done, total: seen.append((done, total)))
    pooled = simulate(small, seed=11, workers=2)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [r.index for r in pooled.replications] == [0, 1, 2]
    _logs_equal(inline.event_log(), pooled.event_log())
    pd.testing.assert_frame_equal(inline.summary(), pooled.summary())


def test_replications_differ_from_each_other_and_the_seed_matters(small: Scenario) -> None:
    run = simulate(small, seed=11, workers=1)
    logs = [r.log["time"] for r in run.replications]
    assert logs[0] != logs[1]
    other = simulate(small, seed=12, workers=1)
    assert other.replications[0].log["time"] != logs[0]


def test_any_executor_will_do(small: Scenario) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = simulate(small, seed=5, replications=2, executor=pool)
    _logs_equal(threaded.event_log(), simulate(small, seed=5, replications=2, workers=1).event_log())


def test_replications_run_on_a_dask_cluster(small: Scenario) -> None:
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        on_dask = simulate(small, seed=3, executor=client.get_executor(pure=False))
    _logs_equal(on_dask.event_log(), simulate(small, seed=3, workers=1).event_log())
