from __future__ import annotations

from pathlib import Path

import pytest

from casemgmt_core import InvalidData, PolicyError
from casemgmt_core.model import ClosureReason, ReferralChannel, StatutoryGround
from casemgmt_core.simulation import Distribution, Scenario, ScenarioError, check_access, load_scenario


def test_the_baseline_scenario_loads_with_its_policy(baseline: Scenario) -> None:
    assert baseline.name == "baseline"
    assert baseline.staff.caseworkers == 4
    assert baseline.arrivals.rates_per_day[ReferralChannel.CALL_CENTRE_129] == 0.05
    assert baseline.durations.assessment == Distribution.parse({"dist": "gamma", "mean": 14, "sd": 7})
    assert baseline.policy.statutory_rule(StatutoryGround.DOMESTIC_VIOLENCE) is not None
    assert baseline.outcomes.dropout_reasons[ClosureReason.DEATH] == 0.05
    assert baseline.start.utcoffset() is not None


def test_every_problem_is_reported_at_once_as_a_typed_error() -> None:
    text = """
    horizon_days = "long"
    colour = "blue"
    [staff]
    caseworkers = 0
    [households]
    p_consent = 1.5
    [durations]
    intake = { dist = "weibull", mean = 3 }
    [arrivals.rates_per_day]
    carrier_pigeon = 1.0
    """
    with pytest.raises(ScenarioError) as info:
        load_scenario(text)
    error = info.value
    assert isinstance(error, PolicyError)
    assert isinstance(error, InvalidData)
    assert error.code == "scenario_error"
    joined = " | ".join(error.problems)
    for fragment in ("horizon_days", "colour", "caseworkers", "p_consent", "weibull", "carrier_pigeon"):
        assert fragment in joined, fragment


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"dist": "exponential"}, "missing: mean"),
        ({"dist": "exponential", "mean": 0}, "mean > 0"),
        ({"dist": "uniform", "low": 3, "high": 1}, "low <= high"),
        ({"dist": "gamma", "mean": 3, "sd": 1, "shape": 2}, "unknown: shape"),
        ({"dist": "constant", "value": -1}, ">= 0"),
        ({"dist": "empirical", "values": []}, "non-empty"),
        (7, "must be a table"),
    ],
)
def test_a_bad_distribution_says_what_would_fit(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Distribution.parse(raw)


def test_warmup_must_end_before_the_horizon() -> None:
    with pytest.raises(ScenarioError, match="warmup_days"):
        load_scenario("horizon_days = 100\nwarmup_days = 100\n")


def test_policy_problems_are_reported_under_policy() -> None:
    with pytest.raises(ScenarioError, match=r"policy: .*case_max_days"):
        load_scenario("[policy.time_limits]\ncase_max_days = -3\n")


def test_a_policy_that_denies_what_the_model_does_is_refused_up_front() -> None:
    scenario = load_scenario('[policy.access]\nsupervisor = ["*"]\ncaseworker = ["assign"]\n')
    with pytest.raises(ScenarioError, match="role 'caseworker' may not 'start_intake'"):
        check_access(scenario)


def test_arrivals_from_a_table_are_read_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "arrivals.csv").write_text("day,channel\n3.5,school\n1,walk_in\n", encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text('[arrivals]\nprocess = "table"\ntable = "arrivals.csv"\n', encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.arrivals.table == ((1.0, ReferralChannel.WALK_IN), (3.5, ReferralChannel.SCHOOL))


def test_a_bad_arrivals_table_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("day,channel\n1,fax\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="line 2"):
        load_scenario('[arrivals]\nprocess = "table"\ntable = "a.csv"\n', base_dir=tmp_path)


def test_scenarios_are_immutable_values() -> None:
    a = Scenario()
    b = a.with_(replications=3)
    assert a.replications == 10
    assert b.replications == 3
    with pytest.raises(ValueError, match="replications"):
        a.with_(replications=0)
