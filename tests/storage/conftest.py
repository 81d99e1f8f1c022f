"""PostgreSQL and MariaDB for the storage tests: ``CASEMGMT_TEST_POSTGRES_URL`` (and
``CASEMGMT_TEST_MARIADB_URL``) if set, else a throwaway server started here. Without either the
tests fail (they never skip). ``engine`` is a host's engine on each of the three databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine

from casemgmt_core.adapters.sql import sqlite_engine
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


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """MariaDB for the storage tests: ``CASEMGMT_TEST_MARIADB_URL`` if set, else a throwaway
    server started here. Without either the tests fail (they never skip)."""
    from casemgmt_core.testing.mariadb import ServerError, check_server, throwaway_server

    url = os.environ.get("CASEMGMT_TEST_MARIADB_URL")
    if url:
        problem = None
        try:
            check_server(url)
        except ServerError as exc:  # its message holds no password
            problem = str(exc)
        if problem is not None:  # failed outside the handler: no traceback showing the URL
            pytest.fail(
                f"CASEMGMT_TEST_MARIADB_URL is set but the server cannot be reached: {problem}", pytrace=False
            )
        yield url
        return
    try:
        server = throwaway_server()
        started = server.__enter__()
    except (ServerError, ImportError) as exc:
        pytest.fail(
            "MariaDB tests need a server: set CASEMGMT_TEST_MARIADB_URL, or install the server "
            f"packages (apt-get install mariadb-server) so that one can be started here. {exc}"
        )
    try:
        yield started
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def mariadb_database(mariadb_url: str) -> Iterator[str]:
    """A fresh, empty database for one test: its URL."""
    from casemgmt_core.testing.mariadb import temporary_database

    with temporary_database(mariadb_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The host's engine, to an empty database (schema), owned and disposed of by the test."""
    if request.param == "sqlite":
        made = sqlite_engine(tmp_path / "host.db")
    elif request.param == "postgresql":
        conninfo: str = request.getfixturevalue("postgres_conninfo")

        def connect() -> Any:
            return psycopg.connect(conninfo)

        made = create_engine("postgresql+psycopg://", creator=connect)
    else:
        url: str = request.getfixturevalue("mariadb_database")
        made = create_engine(url, connect_args={"charset": "utf8mb4"})
    yield made
    made.dispose()
