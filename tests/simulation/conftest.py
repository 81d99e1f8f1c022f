"""Small scenarios for fast tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from casemgmt_core.simulation import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "examples" / "scenarios" / "baseline.toml"


@pytest.fixture(scope="session")
def baseline() -> Scenario:
    return load_scenario(BASELINE)


@pytest.fixture(scope="session")
def small(baseline: Scenario) -> Scenario:
    """The baseline over 500 days with 3 replications: enough of every path, quick to run."""
    return baseline.with_(horizon_days=500.0, warmup_days=100.0, replications=3)
