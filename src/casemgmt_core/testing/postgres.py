"""A throwaway PostgreSQL server for tests and benchmarks, and a fresh schema per test.

:func:`throwaway_cluster` runs Debian's server binaries (``/usr/lib/postgresql/*/bin``) on
127.0.0.1 at a free port, with its data in a temporary directory that is removed afterwards.
Run as root, the server runs as the ``postgres`` user (it refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ClusterError", "find_bindir", "schema_conninfo", "temporary_schema", "throwaway_cluster"]


class ClusterError(RuntimeError):
    """The throwaway server could not be started; the message says why and what to do."""


def find_bindir() -> Path:
    """The newest installed server's ``bin`` directory."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise ClusterError(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin (apt-get install postgresql), "
            "and CASEMGMT_TEST_POSTGRES_URL is not set"
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise ClusterError(f"{what} failed ({done.returncode}): {done.stderr.strip()}\n{tail}".strip())


@contextlib.contextmanager
def throwaway_cluster(*, durable: bool = False) -> Iterator[str]:
    """Start a server; yield its URL (user ``postgres``, no password, database ``postgres``).

    Unless ``durable``, fsync is off: nothing here needs to survive a power cut, and tests run
    faster (a benchmark of durable writes should pass ``durable=True``).
    """
    bindir = find_bindir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    top = Path(tempfile.mkdtemp(prefix="casemgmt-pg-"))
    data, log = top / "data", top / "server.log"
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30"]
    try:
        port = _start(bindir, prefix, top, durable, pg_ctl)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        try:
            _run([*pg_ctl, "-m", "immediate", "stop"], "pg_ctl stop")
        finally:
            shutil.rmtree(top, ignore_errors=True)


def _start(bindir: Path, prefix: list[str], top: Path, durable: bool, pg_ctl: list[str]) -> int:
    try:
        if prefix:
            shutil.chown(top, "postgres")
        initdb = [str(bindir / "initdb"), "-D", str(top / "data"), "-A", "trust", "-U", "postgres"]
        _run([*prefix, *initdb, "-E", "UTF8", "--locale=C", "--no-sync"], "initdb")
    except (OSError, LookupError) as exc:
        # LookupError: no ``postgres`` user to run the server as.
        raise ClusterError(f"cannot prepare a throwaway PostgreSQL server: {exc}") from exc
    settings = f"-h 127.0.0.1 -p {{port}} -k {top} -c max_connections=50"
    if not durable:
        settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    for attempt in range(3):  # another process may take the free port first
        port = _free_port()
        try:
            _run([*pg_ctl, "-o", settings.format(port=port), "start"], "pg_ctl start", top / "server.log")
            return port
        except ClusterError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def schema_conninfo(url: str, schema: str) -> str:
    """``url`` with ``schema`` first on the search path (where a store creates its tables)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    options = str(conninfo_to_dict(url).get("options") or "")
    return make_conninfo(url, options=f"{options} -c search_path={schema}".strip())


@contextlib.contextmanager
def temporary_schema(url: str) -> Iterator[str]:
    """A new empty schema on the server at ``url``; yields a conninfo using it, drops it after."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_conninfo(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
