"""Hypothesis profiles for the whole test suite, and the embedded stores as a fixture.

``default``: derandomised and without an example database, so that every run on every fresh
clone tries the same examples and the plain ``pytest`` command passes or fails the same way each
time. ``explore`` (``HYPOTHESIS_PROFILE=explore``): random, more examples, the local example
database: to look for new failures, not to gate anything. ``ci`` is a name for ``default`` kept
for old environments. See ``docs/testing.md``.

They are registered here, at the root of ``tests/``, because a ``@settings`` decorator inherits
the profile loaded when its module is imported, and pytest imports this file before any test
module of the suite.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import casemgmt_core as cm

# Hypothesis imports its patch writer when a test fails; on this interpreter that import warns
# (mypy_extensions.TypedDict), which ``filterwarnings = error`` would turn into an INTERNALERROR
# hiding the failure. Import it once here with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):  # libcst is optional
        import hypothesis.extra._patching  # noqa: F401

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
# Hypothesis's own defaults (a random seed, the example database in .hypothesis/), captured before
# "default" is registered below: that replaces them, and is loaded at once as the active profile.
_HYPOTHESIS = settings.get_profile("default")

DEFAULT = settings(
    _HYPOTHESIS,
    max_examples=120,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile("default", DEFAULT)
settings.register_profile("ci", DEFAULT)
settings.register_profile(
    "explore",
    _HYPOTHESIS,
    max_examples=600,
    stateful_step_count=80,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["memory", "sqlite"])
def embedded_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[cm.CaseStore]:
    """An empty store of each embedded kind."""
    store: cm.CaseStore = (
        cm.InMemoryStore() if request.param == "memory" else cm.SQLiteStore(str(tmp_path / "cases.db"))
    )
    yield store
    close = getattr(store, "close", None)
    if close is not None:
        close()
