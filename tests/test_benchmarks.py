"""The benchmark scripts still run, on a workload small enough for the suite.

They check their own results (the store and the raw writes must leave identical rows), so a
run that exits cleanly means the figures they print are of the same work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_storage_benchmark_runs_and_reports_every_part() -> None:
    out = run(
        "storage.py", "--cases", "3", "--steps", "4", "--rounds", "1", "--no-postgres",
        "--sizes", "300", "--templates", "10",
    )  # fmt: skip
    assert "(i)  SQLStore.commit" in out
    assert "of which the statements alone" in out
    assert "(ii) CaseManager.handle" in out
    assert "the rows' text alone (no check)" in out
    assert "CaseManager.due(now)" in out
