"""A throwaway MariaDB server for tests and benchmarks, and a fresh database per test.

:func:`throwaway_server` runs Debian's server (``mariadbd``, set up by ``mariadb-install-db``) on
127.0.0.1 at a free port, with its data directory, socket and pid file in a temporary directory
that is removed afterwards. Run as root, the server runs as the ``mysql`` user (it refuses to run
as root). It yields a SQLAlchemy URL (``mysql+pymysql://casemgmt:PASSWORD@127.0.0.1:PORT/casemgmt_test``)
for a user with a random password who may create databases; :func:`temporary_database` gives each
test its own. Needs ``pymysql`` (``casemgmt-core[mariadb]``).

Messages never hold a URL's password.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymysql.connections import Connection
    from pymysql.cursors import Cursor

__all__ = [
    "DATABASE",
    "ServerError",
    "check_server",
    "database_url",
    "find_server",
    "temporary_database",
    "throwaway_server",
]

#: The database a started server holds, as CI's ``.ci/mariadb.sh`` names it.
DATABASE = "casemgmt_test"
_USER = "casemgmt"
_STARTUP_SECONDS = 60.0


class ServerError(RuntimeError):
    """The throwaway server could not be started or reached; the message says why and what to do."""


def find_server() -> tuple[Path, Path]:
    """The paths of ``mariadbd`` and ``mariadb-install-db``."""
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    install = shutil.which("mariadb-install-db")
    if not server or not install:
        raise ServerError(
            "no MariaDB server (mariadbd and mariadb-install-db; apt-get install mariadb-server), "
            "and CASEMGMT_TEST_MARIADB_URL is not set"
        )
    return Path(server), Path(install)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _connect(url: str, *, database: str | None = None, timeout: int = 10) -> Connection[Cursor]:
    """A pymysql connection (autocommit) to the server at ``url``; ``database`` overrides the URL's."""
    import pymysql
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    return pymysql.connect(
        host=parts.host or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=database if database is not None else parts.database,
        charset="utf8mb4",
        connect_timeout=timeout,
        autocommit=True,
    )


def _scrub(text: str, url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # an unparsable URL: show none of it
        return text.replace(url, "<url>")
    return text.replace(str(password), "***") if password else text


def check_server(url: str) -> None:
    """Connect to ``url`` once; :class:`ServerError` (without the password) if that fails."""
    try:
        _connect(url).close()
    except Exception as exc:  # pymysql's errors, a bad URL
        raise ServerError(
            _scrub(f"cannot reach the MariaDB server: {type(exc).__name__}: {exc}", url)
        ) from None


def database_url(url: str, database: str) -> str:
    """``url`` naming ``database`` instead (the password kept, as a connection needs it)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


@contextlib.contextmanager
def throwaway_server(*, durable: bool = False) -> Iterator[str]:
    """Start a server; yield its URL (user ``casemgmt`` with a random password, database
    :data:`DATABASE`, utf8mb4). Stopped, and its files removed, on exit.

    Unless ``durable``, InnoDB does not flush its log at each commit: nothing here needs to
    survive a power cut, and tests run faster.
    """
    server, install = find_server()
    top = Path(tempfile.mkdtemp(prefix="casemgmt-mariadb-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        user = _prepare(install, top)
        process, port = _start(server, top, user, durable)
        password = secrets.token_hex(16)
        _bootstrap(top / "mariadb.sock", password)
        yield f"mysql+pymysql://{_USER}:{password}@127.0.0.1:{port}/{DATABASE}"
    finally:
        try:
            if process is not None:
                _stop(process)
        finally:
            shutil.rmtree(top, ignore_errors=True)


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-2000:]
        raise ServerError(f"{what} failed ({done.returncode}): {output}")


def _prepare(install: Path, top: Path) -> list[str]:
    """Create the data directory; the ``--user`` option the server needs (as root: ``mysql``)."""
    user: list[str] = []
    try:
        if os.geteuid() == 0:
            shutil.chown(top, "mysql")
            user = ["--user=mysql"]
    except (OSError, LookupError) as exc:  # LookupError: no ``mysql`` user to run the server as
        raise ServerError(f"cannot prepare a throwaway MariaDB server: {exc}") from exc
    _run(
        [
            str(install),
            "--no-defaults",
            *user,
            f"--datadir={top / 'data'}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ],
        "mariadb-install-db",
    )
    return user


def _start(server: Path, top: Path, user: list[str], durable: bool) -> tuple[subprocess.Popen[bytes], int]:
    log = top / "error.log"
    for attempt in range(3):  # another process may take the free port first
        port = _free_port()
        command = [
            str(server),
            "--no-defaults",
            *user,
            f"--datadir={top / 'data'}",
            f"--tmpdir={top}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--socket={top / 'mariadb.sock'}",
            f"--pid-file={top / 'mariadb.pid'}",
            f"--log-error={log}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=100",
            f"--innodb-flush-log-at-trx-commit={1 if durable else 0}",
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _wait_ready(process, top / "mariadb.sock"):
            return process, port
        _stop(process)
        if attempt == 2:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerError(f"mariadbd did not start:\n{tail}".strip())
    raise AssertionError("unreachable")


def _wait_ready(process: subprocess.Popen[bytes], sock: Path) -> bool:
    import pymysql

    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if sock.exists():
            try:
                pymysql.connect(unix_socket=str(sock), user="root", connect_timeout=5).close()
            except pymysql.Error:
                pass
            else:
                return True
        time.sleep(0.2)
    return False


def _bootstrap(sock: Path, password: str) -> None:
    import pymysql

    connection = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            cursor.execute(f"CREATE USER '{_USER}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            # Every privilege: the tests create and drop a database per test.
            cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{_USER}'@'127.0.0.1'")
    finally:
        connection.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@contextlib.contextmanager
def temporary_database(url: str) -> Iterator[str]:
    """A new empty database (utf8mb4) on the server at ``url``; yields a URL naming it, drops it after."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    connection = _connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        connection.close()
    try:
        yield database_url(url, name)
    finally:
        connection = _connect(url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            connection.close()
