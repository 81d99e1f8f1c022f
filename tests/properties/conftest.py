"""The transition coverage gate for the property tests (the Hypothesis profiles are in
``tests/conftest.py``).

Once the tests marked ``coverage_source`` for every source in
:data:`~tests.properties.coverage.REQUIRED_SOURCES` were selected, the run fails if any
transition or guard outcome of the lifecycle definition was never exercised, and the coverage
table is printed at the end. Running other tests alone (``pytest tests/test_engine.py``, or one
property test by node id) leaves the gate unarmed.
"""

from __future__ import annotations

import pytest

from ..storage.conftest import postgres_conninfo, postgres_url  # noqa: F401  (the storage tests' server)
from .coverage import RECORDED, REQUIRED_SOURCES, missing, table

_ARMED = pytest.StashKey[bool]()
_GAP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "coverage_source(name): the test feeds the transition coverage gate as `name`"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    selected = {m.args[0] for item in session.items for m in item.iter_markers("coverage_source")}
    session.config.stash[_ARMED] = selected >= REQUIRED_SOURCES
    RECORDED.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.stash.get(_ARMED, False):
        return
    gap = missing(RECORDED)
    if gap:
        session.config.stash[_GAP] = gap.describe()
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not config.stash.get(_ARMED, False):
        return
    terminalreporter.write_sep("=", "transition and guard coverage (property tests)")
    for line in table(RECORDED):
        terminalreporter.write_line(line)
    gap = config.stash.get(_GAP, "")
    if gap:
        terminalreporter.write_sep("=", "coverage gate FAILED", red=True)
        for line in gap.splitlines():
            terminalreporter.write_line(line, red=True)
        terminalreporter.write_line(
            "Every transition and guard outcome of the lifecycle needs a property test: add it to "
            "the reference model (tests/properties/reference.py) and a recipe to the tour.",
            red=True,
        )
