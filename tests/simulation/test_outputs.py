"""Event logs, summaries, files, plots and the command line."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pm4py
import pytest

from casemgmt_core import CaseQuery, CaseState, open_store, replay
from casemgmt_core.cli import main
from casemgmt_core.simulation import PM4PY_COLUMNS, Scenario, SimulationResult, simulate
from casemgmt_core.simulation.plots import plot_all
from casemgmt_core.simulation.report import markdown_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result(small: Scenario) -> SimulationResult:
    return simulate(small, seed=21, workers=1)


def test_the_event_log_has_pm4py_columns_and_loads_in_pm4py(result: SimulationResult) -> None:
    log = result.event_log()
    assert list(log.columns[:4]) == list(PM4PY_COLUMNS)
    assert str(log["time:timestamp"].dt.tz) is not None
    first = log.groupby("case:concept:name").first()
    assert set(first["concept:name"]) == {"open"}
    event_log = pm4py.convert_to_event_log(log)
    assert len(event_log) == log["case:concept:name"].nunique()
    dfg, starts, _ = pm4py.discover_dfg(log)
    assert set(starts) == {"open"}
    assert dfg[("open", "assign")] > 0


def test_csv_and_parquet_round_trip_for_pm4py(result: SimulationResult, tmp_path: Path) -> None:
    files = result.write(tmp_path)
    from_parquet = pd.read_parquet(files["event_log.parquet"])
    pd.testing.assert_frame_equal(from_parquet, result.event_log())
    from_csv = pd.read_csv(files["event_log.csv"])
    from_csv["time:timestamp"] = pd.to_datetime(from_csv["time:timestamp"], utc=True)
    formatted = pm4py.format_dataframe(from_csv)
    assert len(pm4py.get_start_activities(formatted)) == 1
    assert (tmp_path / "summary.csv").exists()


def test_summaries_carry_intervals_across_replications(result: SimulationResult) -> None:
    s = result.summary().set_index(["metric", "key"])
    for key in [("wait_days_mean", ""), ("time_in_state_days", "assessment"), ("over_case_limit_share", "")]:
        row = s.loc[key]
        assert row["replications"] == 3
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    shares = s.loc["outcome_share"]["mean"]
    assert math.isclose(shares.sum(), 1.0, rel_tol=1e-9)
    assessment = s.loc[("time_in_state_days", "assessment")]
    assert 8 < assessment["mean"] < 20  # gamma with mean 14 in the scenario
    caseload = result.caseload()
    assert (caseload["held"] <= 4 * 25).all()
    assert list(caseload.columns[:4]) == ["day", "held", "held_ci_low", "held_ci_high"]


def test_warmup_deletion_drops_the_early_cases(result: SimulationResult) -> None:
    later = SimulationResult(
        result.scenario.with_(warmup_days=400.0), result.replications, result.seed
    ).summary()
    first = result.summary()
    pick = (first["metric"] == "arrivals_per_year") & (first["key"] == "")
    assert later.loc[pick, "mean"].item() != first.loc[pick, "mean"].item()


def test_the_report_and_plots_are_written(result: SimulationResult, tmp_path: Path) -> None:
    plots = plot_all(result, tmp_path)
    for path in plots.values():
        assert path.read_bytes().startswith(PNG)
    text = markdown_report(result, plots={"Caseload": "caseload.png"})
    assert "Little's law" in text
    assert "![Caseload](caseload.png)" in text
    assert "| select | service_consent | consent_missing |" in text
    assert "## Time limits" in text
    assert "| maximum_duration_closures |" in text
    assert "case limit 12 months" in text


def test_the_simulate_command_writes_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "tiny.toml"
    baseline = (Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "baseline.toml").read_text()
    scenario.write_text(
        baseline.replace("horizon_days = 2555", "horizon_days = 300").replace(
            "warmup_days = 730", "warmup_days = 50"
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code = main(
        ["simulate", str(scenario), "--out", str(out), "--replications", "2", "--seed", "4", "--workers", "1"]
    )
    assert code == 0
    for name in (
        "report.md",
        "event_log.csv",
        "event_log.parquet",
        "summary.csv",
        "caseload.png",
        "outcomes.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert "replications: 2, seed 4" in (out / "report.md").read_text(encoding="utf-8")
    printed = capsys.readouterr().out
    assert "wrote" in printed
    # The first replication is also committed through the embedded default store, and audits clean.
    assert "hash chain verified" in printed
    store = open_store(f"sqlite:///{out / 'cases.db'}")
    report = store.verify()
    assert report.ok
    assert f"stored replication 1: {report.cases_checked} cases, {report.events_checked} events" in printed
    closed = store.find(CaseQuery(state=CaseState.CLOSED, limit=5)).items
    assert closed
    assert all(replay(store.events(c.case_id)) == c for c in closed)


def test_the_simulate_command_can_skip_or_redirect_the_store(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    baseline = (Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "baseline.toml").read_text()
    short = baseline.replace("horizon_days = 2555", "horizon_days = 120").replace(
        "warmup_days = 730", "warmup_days = 20"
    )
    scenario.write_text(short, encoding="utf-8")
    args = ["simulate", str(scenario), "--replications", "1", "--workers", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--no-store"]) == 0
    assert not (tmp_path / "a" / "cases.db").exists()
    elsewhere = tmp_path / "elsewhere.db"
    assert main([*args, "--out", str(tmp_path / "b"), "--store", f"sqlite:///{elsewhere}"]) == 0
    assert open_store(f"sqlite:///{elsewhere}").verify().events_checked > 0
    assert main([*args, "--out", str(tmp_path / "c"), "--store", "ftp://nowhere"]) == 2


def test_the_simulate_command_reports_a_bad_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[staff]\ncaseworkers = -1\n", encoding="utf-8")
    assert main(["simulate", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "caseworkers" in capsys.readouterr().err
