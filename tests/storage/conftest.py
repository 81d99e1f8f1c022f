"""PostgreSQL for the storage tests: ``CASEMGMT_TEST_POSTGRES_URL`` if set, else a throwaway
server started here. Without either the tests fail (they never skip)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from casemgmt_core.testing.postgres import ClusterError, temporary_schema, throwaway_cluster


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("CASEMGMT_TEST_POSTGRES_URL")
    if url:
        try:
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            pytest.fail(f"CASEMGMT_TEST_POSTGRES_URL is set but the server cannot be reached: {exc}")
        yield url
        return
    try:
        cluster = throwaway_cluster()
        started = cluster.__enter__()
    except ClusterError as exc:
        pytest.fail(
            "PostgreSQL tests need a server: set CASEMGMT_TEST_POSTGRES_URL, or install the server "
            f"packages (apt-get install postgresql) so that one can be started here. {exc}"
        )
    try:
        yield started
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture
def postgres_conninfo(postgres_url: str) -> Iterator[str]:
    """A fresh, empty schema for one test."""
    with temporary_schema(postgres_url) as conninfo:
        yield conninfo
