"""The examples run as tests: each asserts its own story and exits cleanly."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STORIES = [
    "walkthrough.py",
    "child_abuse_without_consent.py",
    "duplicate_hand_over.py",
    "extension_after_reassessment.py",
    "reopened_episode.py",
]


@pytest.mark.parametrize("name", STORIES)
def test_example_story_runs(name: str) -> None:
    module = runpy.run_path(str(ROOT / "examples" / name))
    case = module["run"]()
    assert case.version > 1


@pytest.mark.parametrize("name", STORIES)
def test_example_runs_as_a_script(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("case ")
