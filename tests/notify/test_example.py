"""The webhook example runs as a program and checks its own delivery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver.py"


def test_webhook_example_delivers_once() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "3 requests, 1 effect(s)" in done.stdout
    assert "attempt 1 failed" in done.stderr  # the logged retry
    assert "INFO casemgmt_core.notify: notification" in done.stderr
