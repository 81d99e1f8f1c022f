"""The host system's own side: its staff and their titles, its centres, its own tables.

Nothing here belongs to the engine. A welfare system that embeds ``casemgmt_core`` already has
users, organisation units and business records of its own; this module stands for them: a staff
table with password hashes, the intake register in which reception numbers each referral, and
an activity log of who did what through the service (whose request id is the service's
idempotency key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Iterator

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
)
from sqlalchemy import exc as sa_exc

import casemgmt_core as cm

metadata = MetaData()

staff_table = Table(
    "host_staff",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password", String(256), nullable=False),  # scrypt$n$r$p$salt$digest
    Column("centre", String(64), nullable=False),
    Column("title", String(32), nullable=False),
)

#: The centre's intake register: reception numbers every referral it takes in.
intake_table = Table(
    "host_referral_intake",
    metadata,
    Column("intake_no", Integer, primary_key=True, autoincrement=True),
    Column("centre", String(64), nullable=False),
    Column("case_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("received_by", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("centre", "case_id"),
)

#: Who did what through the service. ``request_id`` is unique: a request sent twice is applied once.
activity_table = Table(
    "host_activity",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("centre", String(64), nullable=False),
    Column("case_id", String(128), nullable=False),
    Column("username", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("case_version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

#: The host's job titles and the role each has in the engine's policies. A title without a role
#: here (or with a role a centre's policy does not list) may sign in but do nothing with cases.
ROLES = {
    "social_worker": "caseworker",
    "team_lead": "supervisor",
    "reception": "intake_officer",
    "volunteer": "volunteer",
}


class DuplicateRequest(Exception):
    """A request id that was already used: the request is not applied a second time."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"request {request_id!r} was already applied")


class Staff:
    """A signed-in member of staff: the host's user, with the centre they work for."""

    __slots__ = ("centre", "title", "username")

    def __init__(self, username: str, centre: str, title: str) -> None:
        self.username = username
        self.centre = centre
        self.title = title

    @property
    def actor(self) -> cm.Actor:
        """The engine's view of this user: the id goes into every event, the role is checked
        against the centre's policy, and the centre's staff work as one team (a case assigned
        with ``team_id`` set to the centre is shared by them; the engine's default access rule)."""
        return cm.Actor(self.username, ROLES.get(self.title, self.title), frozenset({self.centre}))

    def __repr__(self) -> str:
        return f"Staff({self.username!r}, centre={self.centre!r}, title={self.title!r})"


# -- passwords --------------------------------------------------------------------------------


def hash_password(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """An scrypt hash with its parameters and salt, to store in place of the password."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        again = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(again.hex(), digest)


#: Checked when the user is unknown, so that an unknown name takes as long as a wrong password.
_NOBODY = hash_password("nobody", n=2**14)


# -- the host's tables ----------------------------------------------------------------------------


def create_tables(engine: Engine) -> None:
    """The host's own tables (a real host has its own migrations for these)."""
    metadata.create_all(engine)


def add_staff(
    engine: Engine, username: str, password: str, *, centre: str, title: str, n: int = 2**14
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(staff_table).values(
                username=username, password=hash_password(password, n=n), centre=centre, title=title
            )
        )


def authenticate(engine: Engine, username: str, password: str) -> Staff | None:
    """The member of staff with this name and password, else ``None``."""
    with engine.connect() as conn:
        row = conn.execute(
            select(staff_table.c.password, staff_table.c.centre, staff_table.c.title).where(
                staff_table.c.username == username
            )
        ).first()
    if row is None:
        check_password(password, _NOBODY)
        return None
    if not check_password(password, row.password):
        return None
    return Staff(username, row.centre, row.title)


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction of the host: committed if the block ends normally, else rolled back.

    On SQLite (an engine made by ``casemgmt_core.adapters.sql.sqlite_engine``) the transaction
    begins with ``BEGIN IMMEDIATE``: concurrent requests then queue for the database's write lock
    instead of failing when they first write after reading.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(casemgmt_write=True)
        with conn.begin():
            yield conn


def register_intake(conn: Connection, staff: Staff, case_id: str, channel: str, at: dt.datetime) -> int:
    """The intake register's row for a new referral; its reception number."""
    result = conn.execute(
        insert(intake_table).values(
            centre=staff.centre, case_id=case_id, channel=channel, received_by=staff.username, received_at=at
        )
    )
    (number,) = result.inserted_primary_key or (None,)
    return int(number)


def record_activity(
    conn: Connection, request_id: str, staff: Staff, case: cm.Case, action: str, at: dt.datetime
) -> None:
    """The activity log's row for a request that changed a case.

    Raises :class:`DuplicateRequest` if the request id was used before: the caller's transaction
    then rolls back, the engine's changes with it.
    """
    try:
        conn.execute(
            insert(activity_table).values(
                request_id=request_id,
                centre=staff.centre,
                case_id=case.case_id,
                username=staff.username,
                action=action,
                case_version=case.version,
                at=at,
            )
        )
    except sa_exc.IntegrityError:
        raise DuplicateRequest(request_id) from None
