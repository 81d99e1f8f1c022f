from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from attrs import fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemgmt_core import InvalidData, PolicyError
from casemgmt_core.durations import Duration
from casemgmt_core.model import ClosureReason, ReferralChannel, StatutoryGround
from casemgmt_core.simulation import (
    Arrivals,
    Distribution,
    Durations,
    Households,
    Outcomes,
    Rates,
    Scenario,
    ScenarioError,
    Staff,
    check_access,
    load_scenario,
)


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
    with pytest.raises(ScenarioError, match=r"scenario\.policy\.time_limits\.case_max: ") as info:
        load_scenario('[policy.time_limits]\ncase_max = "-3 months"\n')
    assert info.value.field == "scenario.policy.time_limits.case_max"


@pytest.mark.parametrize("value", ["-3", "true", '"365"'])
def test_a_bad_legacy_time_limit_is_reported_under_the_key_written(value: str) -> None:
    # The version 0.1 name is still read (as whole days): a problem names the key the file has.
    error = _refusal(f"[policy.time_limits]\ncase_max_days = {value}\n")
    assert error.field == "scenario.policy.time_limits.case_max_days"


def test_the_policy_time_limits_are_calendar_durations(baseline: Scenario) -> None:
    limits = baseline.policy.time_limits
    assert limits.case_max == Duration(12, 0)
    assert limits.max_case_extensions == 2
    assert baseline.outcomes.p_extend_case_at_limit == 0.2
    legacy = load_scenario("[policy.time_limits]\ncase_max_days = 365\n")
    assert legacy.policy.time_limits.case_max == Duration(0, 365)


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


# -- strict, bounded loading -------------------------------------------------------------------


def _refusal(source: Any, base_dir: Path | None = None) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(source, base_dir=base_dir)
    error = info.value
    assert len(error.fields) == len(error.problems)
    return error


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("replications = true", "scenario.replications"),
        ("replications = 3.0", "scenario.replications"),
        ("replications = '3'", "scenario.replications"),
        ("horizon_days = true", "scenario.horizon_days"),
        ("horizon_days = '700'", "scenario.horizon_days"),
        ("name = 7", "scenario.name"),
        ("start = 2026-01-01", "scenario.start"),
        ("start = '2026-01-01T09:00:00'", "scenario.start"),
        ("[staff]\ncaseworkers = 4.0", "scenario.staff.caseworkers"),
        ("[staff]\nqueue = 'FIFO'", "scenario.staff.queue"),
        ("[outcomes]\np_extend_case_at_limit = true", "scenario.outcomes.p_extend_case_at_limit"),
        ("[outcomes]\np_extend_case_at_limit = '0.2'", "scenario.outcomes.p_extend_case_at_limit"),
        ("[outcomes]\np_extend_service_at_limit = false", "scenario.outcomes.p_extend_service_at_limit"),
        ("[households]\np_consent = true", "scenario.households.p_consent"),
        ("[households]\ncrisis_factor_counts = 'abc'", "scenario.households.crisis_factor_counts"),
        ("[households]\ncrisis_factor_counts = [1, '2']", "scenario.households.crisis_factor_counts[1]"),
        ("[arrivals.rates_per_day]\nwalk_in = true", "scenario.arrivals.rates_per_day.walk_in"),
        ("[arrivals.rates_per_day]\nWALK_IN = 1.0", "scenario.arrivals.rates_per_day.WALK_IN"),
        ("[durations]\nintake = { dist = 'constant', value = true }", "scenario.durations.intake"),
        ("arrivals = 'poisson'", "scenario.arrivals"),
        ("policy = 'strict'", "scenario.policy"),
        ("policy_file = 3", "scenario.policy_file"),
    ],
)
def test_nothing_in_a_scenario_is_coerced(text: str, field: str) -> None:
    assert _refusal(text).field == field


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("horizon_days = 0\nwarmup_days = 0", "scenario.horizon_days"),
        ("horizon_days = 36501", "scenario.horizon_days"),
        ("horizon_days = inf", "scenario.horizon_days"),
        ("horizon_days = nan", "scenario.horizon_days"),
        ("warmup_days = -1", "scenario.warmup_days"),
        ("replications = 0", "scenario.replications"),
        ("replications = 1001", "scenario.replications"),
        ("seed = -1", "scenario.seed"),
        ("seed = 9223372036854775808", "scenario.seed"),
        ("sample_every_days = 0.001", "scenario.sample_every_days"),
        (f"name = '{'n' * 201}'", "scenario.name"),
        ('description = "two\\nlines"', "scenario.description"),
        ("start = 1800-01-01T00:00:00Z", "scenario.start"),
        ("start = 2200-06-01T00:00:00Z\nhorizon_days = 100\nwarmup_days = 0", "scenario.horizon_days"),
        ("[staff]\ncaseworkers = 0", "scenario.staff.caseworkers"),
        ("[staff]\ncaseload_cap = 1001", "scenario.staff.caseload_cap"),
        ("[households]\np_child = 1.5", "scenario.households.p_child"),
        ("[households]\np_child = nan", "scenario.households.p_child"),
        ("[households]\ncrisis_factor_counts = []", "scenario.households.crisis_factor_counts"),
        ("[households]\ncrisis_factor_counts = [1e300, 1e300]", "scenario.households.crisis_factor_counts"),
        (f"[households]\ncrisis_factor_counts = {[1] * 13}", "scenario.households.crisis_factor_counts"),
        ("[rates]\ncrisis_per_day = 1e-320", "scenario.rates.crisis_per_day"),
        ("[rates]\ncrisis_per_day = 2.0", "scenario.rates.crisis_per_day"),
        ("[arrivals.rates_per_day]\nwalk_in = 1e-320", "scenario.arrivals.rates_per_day"),
        ("[arrivals.rates_per_day]\nwalk_in = 1001", "scenario.arrivals.rates_per_day"),
        ("[durations]\nintake = { dist = 'constant', value = 36501 }", "scenario.durations.intake"),
        ("[durations]\nintake = { dist = 'empirical', values = [1, 99999] }", "scenario.durations.intake"),
        ("[outcomes.dropout_reasons]\ndeath = -1", "scenario.outcomes.dropout_reasons"),
        ("[outcomes]\np_extend_case_at_limit = 1.5", "scenario.outcomes.p_extend_case_at_limit"),
        ("[outcomes]\np_extend_case_at_limit = -0.1", "scenario.outcomes.p_extend_case_at_limit"),
        ("[outcomes]\np_extend_case_at_limit = nan", "scenario.outcomes.p_extend_case_at_limit"),
        ("[outcomes]\np_extend_service_at_limit = 2", "scenario.outcomes.p_extend_service_at_limit"),
        ("[outcomes]\np_extend_service_at_limit = inf", "scenario.outcomes.p_extend_service_at_limit"),
    ],
)
def test_every_scenario_value_is_bounded(text: str, field: str) -> None:
    assert _refusal(text).field == field


def test_a_huge_number_in_a_distribution_is_a_scenario_error() -> None:
    error = _refusal({"durations": {"intake": {"dist": "constant", "value": 10**400}}})
    assert error.field == "scenario.durations.intake"


def test_a_run_ending_at_the_models_last_date_still_loads() -> None:
    # The default policy's longest period: a year's case with two extensions of six months
    # (months counted as 31 days), and a day for the time zone: 745 days.
    scenario = load_scenario("start = 2198-09-01T00:00:00Z\nhorizon_days = 100\nwarmup_days = 0")
    assert scenario.start.year == 2198
    with pytest.raises(ScenarioError, match="745 days"):
        load_scenario("start = 2198-10-01T00:00:00Z\nhorizon_days = 100\nwarmup_days = 0")


def test_the_models_last_date_counts_every_extension_the_policy_allows() -> None:
    text = "start = 2198-09-01T00:00:00Z\nhorizon_days = 100\nwarmup_days = 0\n[policy.time_limits]\n"
    assert load_scenario(text + "max_case_extensions = 2").start.year == 2198
    error = _refusal(text + "max_case_extensions = 3")
    assert error.field == "scenario.horizon_days"
    assert "931 days" in error.problems[0]


def test_the_removed_close_at_case_limit_says_what_replaced_it() -> None:
    error = _refusal("[outcomes]\nclose_at_case_limit = true\np_extend_case_at_limit = 2")
    assert error.fields == (
        "scenario.outcomes.close_at_case_limit",
        "scenario.outcomes.p_extend_case_at_limit",
    )
    assert "p_extend_case_at_limit" in error.problems[0]
    assert "binds" in error.problems[0]


def test_problems_in_a_policy_file_are_located_under_policy_file(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("[time_limits]\ncase_max_days = true\n", encoding="utf-8")
    error = _refusal('policy_file = "p.toml"', base_dir=tmp_path)
    assert error.field == "scenario.policy_file.time_limits.case_max_days"


def test_a_policy_file_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    assert _refusal('policy_file = "."', base_dir=tmp_path).field == "scenario.policy_file"
    assert _refusal('policy_file = "a\\u0000b"', base_dir=tmp_path).field == "scenario.policy_file"


@pytest.mark.parametrize(
    ("csv_bytes", "fragment"),
    [
        (b"day,channel\ninf,school\n", "line 2"),
        (b"day,channel\nnan,school\n", "line 2"),
        (b"day,channel\n1e9,school\n", "line 2"),
        (b"day,channel\n1\n", "columns"),
        (b"when,channel\n1,school\n", "columns"),
        (b"day,channel\n1,sch\xf6ol\n", "not UTF-8"),
        (b"day,channel\n", "no arrivals"),
    ],
)
def test_a_bad_arrivals_table_is_a_scenario_error(tmp_path: Path, csv_bytes: bytes, fragment: str) -> None:
    (tmp_path / "a.csv").write_bytes(csv_bytes)
    error = _refusal('[arrivals]\nprocess = "table"\ntable = "a.csv"\n', base_dir=tmp_path)
    assert error.field == "scenario.arrivals.table"
    assert fragment in error.problems[0]


@pytest.mark.parametrize(
    "source",
    [{1: 2}, {"staff": {None: 1}}, {"durations": {"intake": {("dist",): "constant"}}}, 42, b"name = 'x'"],
)
def test_scenario_sources_are_text_paths_or_string_keyed_mappings(source: Any) -> None:
    assert _refusal(source).field is not None


def test_huge_deep_or_undecodable_scenarios_are_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(b"# padding\n" * (1 << 20))
    started = time.perf_counter()
    assert "bytes allowed" in _refusal(path).problems[0]
    assert "deep" in _refusal("a = " + "[" * 10_000 + "]" * 10_000).problems[0]
    assert "deep" in _refusal("a" + ".a" * 20_000 + " = 1").problems[0]
    assert time.perf_counter() - started < 1
    path.write_bytes(b"name = '\xff'\n")
    assert "not UTF-8" in _refusal(path).problems[0]


_SCENARIO_KEYS = sorted(
    {
        *(
            a.name
            for cls in (Scenario, Arrivals, Households, Staff, Durations, Rates, Outcomes)
            for a in fields(cls)
        ),
        *(c.value for c in ReferralChannel),
        *(r.value for r in ClosureReason),
        "policy_file",
        "dist",
        "mean",
        "sd",
        "value",
        "values",
        "low",
        "high",
        "constant",
        "empirical",
        "time_limits",
        "case_max_days",
    }
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.floats(0, 40_000)
    | st.text(max_size=12)
    | st.sampled_from(_SCENARIO_KEYS)
)
_KEYS = st.sampled_from(_SCENARIO_KEYS) | st.text(max_size=8) | st.integers() | st.none() | st.floats()
_JSON_LIKE = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=24,
)
_PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _outcome(source: Any, base_dir: Path) -> Scenario | ScenarioError:
    try:
        return load_scenario(source, base_dir=base_dir)
    except ScenarioError as error:
        return error


def _loads_or_refuses(source: Any, base_dir: Path) -> None:
    result = _outcome(source, base_dir)  # any other exception fails the test
    if isinstance(result, ScenarioError):
        assert result.problems
        assert len(result.fields) == len(result.problems)
        assert all(f is None or f.startswith("scenario") for f in result.fields)
    else:
        assert isinstance(result, Scenario)


@_PROPERTY
@given(doc=_JSON_LIKE)
def test_any_json_like_value_gives_a_scenario_or_a_scenario_error(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _loads_or_refuses(doc, Path(folder))


@_PROPERTY
@given(doc=st.dictionaries(st.sampled_from(sorted(a.name for a in fields(Scenario))), _JSON_LIKE))
def test_any_value_under_the_known_keys_gives_a_scenario_or_a_scenario_error(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _loads_or_refuses(doc, Path(folder))


@_PROPERTY
@given(content=st.binary(max_size=400) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_any_file_gives_a_scenario_or_a_scenario_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.toml"
        path.write_bytes(content)
        _loads_or_refuses(path, Path(folder))
