from __future__ import annotations

import math

import numpy as np
import pytest

from casemgmt_core.simulation import Distribution, EventLoop, Pool, confidence_interval, t_quantile
from casemgmt_core.simulation.distributions import sampler


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    loop = EventLoop()
    seen: list[str] = []
    loop.at(2.0, seen.append, "c")
    loop.at(1.0, seen.append, "a")
    loop.at(1.0, seen.append, "b")
    loop.at(5.0, seen.append, "late")
    assert loop.run(3.0) == 3
    assert seen == ["a", "b", "c"]
    assert loop.now == 3.0
    assert len(loop) == 1


def test_the_pool_caps_caseloads_and_serves_urgent_requests_first() -> None:
    loop = EventLoop()
    granted: list[tuple[str, int]] = []
    pool = Pool(loop, servers=2, cap=1, grant=lambda item, server: granted.append((item, server)))
    for item in ("a", "b", "c"):
        pool.request(item)
    pool.request("urgent", urgent=True)
    assert granted == [("a", 0), ("b", 1)]
    assert pool.waiting == 2
    pool.release(1)
    pool.release(0)
    assert granted[2:] == [("urgent", 1), ("c", 0)]
    assert pool.held == 2


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.7062), (2, 4.3027), (3, 3.1824), (9, 2.2622), (29, 2.0452), (2000, 1.9612)]
)
def test_t_quantiles_match_the_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)


def test_confidence_intervals_cover_the_mean_at_their_level() -> None:
    rng = np.random.default_rng(0)
    hits = sum(0.0 in confidence_interval(rng.normal(0.0, 1.0, 5).tolist()) for _ in range(2000))
    assert 0.93 < hits / 2000 < 0.97
    one = confidence_interval([3.0])
    assert one.mean == 3.0
    assert math.isinf(one.half_width)


@pytest.mark.parametrize(
    "raw",
    [
        {"dist": "exponential", "mean": 4.0},
        {"dist": "gamma", "mean": 4.0, "sd": 2.0},
        {"dist": "lognormal", "mean": 4.0, "sd": 3.0},
        {"dist": "uniform", "low": 2.0, "high": 6.0},
        {"dist": "triangular", "low": 1.0, "mode": 4.0, "high": 7.0},
        {"dist": "empirical", "values": [2, 4, 6]},
        {"dist": "constant", "value": 4.0},
    ],
)
def test_samplers_draw_with_the_stated_mean(raw: dict[str, object]) -> None:
    dist = Distribution.parse(raw)
    draw = sampler(dist, np.random.default_rng(1))
    values = [draw() for _ in range(20_000)]
    assert dist.mean == pytest.approx(4.0)
    assert np.mean(values) == pytest.approx(4.0, rel=0.03)
    assert min(values) >= 0
