"""The simulator reduced to an M/M/c queue reproduces Erlang C, and Little's law holds."""

from __future__ import annotations

from casemgmt_core.simulation import confidence_interval, erlang_c, mmc_queue, mmc_scenario, simulate

LAMBDA, MU, SERVERS = 0.7, 0.25, 4  # utilisation 0.7; Erlang C mean wait about 1.7 days


def test_the_rule_driven_mmc_scenario_matches_erlang_c() -> None:
    scenario = mmc_scenario(LAMBDA, MU, SERVERS, horizon_days=1500, warmup_days=100, replications=10, seed=2)
    result = simulate(scenario, workers=2)
    s = result.summary().set_index(["metric", "key"])
    _, expected_wait = erlang_c(LAMBDA, MU, SERVERS)
    wait = s.loc[("wait_days_mean", "")]
    assert wait["ci_low"] <= expected_wait <= wait["ci_high"]
    assert wait["ci_high"] - wait["ci_low"] < expected_wait  # the interval is informative
    hold = s.loc[("hold_days_mean", "")]
    assert hold["ci_low"] <= 1 / MU <= hold["ci_high"]
    little = result.littles_law().set_index("system")
    for system in ("queue", "caseload"):
        assert (
            little.loc[system, "gap_ci_low"] <= 0 <= little.loc[system, "gap_ci_high"]
            or abs(little.loc[system, "relative_gap"]) < 0.01
        )


def test_the_bare_queue_on_the_same_kernel_matches_erlang_c() -> None:
    waits = [
        mmc_queue(LAMBDA, MU, SERVERS, horizon=20_000, warmup=500, seed=seed).mean_wait for seed in range(10)
    ]
    _, expected_wait = erlang_c(LAMBDA, MU, SERVERS)
    assert expected_wait in confidence_interval(waits)


def test_erlang_c_known_values() -> None:
    # One server: M/M/1, P(wait) = rho and Wq = rho / (mu - lambda).
    p, w = erlang_c(0.5, 1.0, 1)
    assert abs(p - 0.5) < 1e-12
    assert abs(w - 1.0) < 1e-12
    # Two servers, a = 1: P(wait) = 1/3, Wq = P / (c mu - lambda) = 1/3.
    p, w = erlang_c(1.0, 1.0, 2)
    assert abs(p - 1 / 3) < 1e-12
    assert abs(w - 1 / 3) < 1e-12
