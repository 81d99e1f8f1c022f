"""The example host service (``examples/fastapi_service``) through HTTP, on SQLite and PostgreSQL:
a journey, the host's transaction around the engine's writes, tenants, sign-in and roles, bad
payloads, the OpenAPI document, and concurrent requests."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import psycopg
import pytest
from examples.fastapi_service import app as service_app
from examples.fastapi_service import host
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

import casemgmt_core as cm
import casemgmt_core.json as cj
from casemgmt_core.adapters.sql import SQLStore, sqlite_engine

with warnings.catch_warnings():
    # Starlette asks for its fork of httpx; the pinned httpx works the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

T0 = dt.datetime(2026, 3, 2, 0, 30, tzinfo=dt.UTC)
NAME = "김민수"
BIRTH = dt.date(1987, 5, 14)
PASSWORD = "correct horse battery staple"
STAFF = {
    # username: (centre, title)
    "kim": ("gangnam", "social_worker"),
    "lee": ("gangnam", "team_lead"),
    "rae": ("gangnam", "reception"),
    "vol": ("gangnam", "volunteer"),
    "park": ("mapo", "social_worker"),
    "choi": ("mapo", "team_lead"),
}


class Clock:
    """The service's clock: moved by hand; optionally holds the first ``hold`` callers until all
    of them have called (the manager reads its clock after loading the case)."""

    def __init__(self) -> None:
        self.now = T0
        self._lock = threading.Lock()
        self._barrier: threading.Barrier | None = None
        self._left = 0

    def hold(self, callers: int) -> None:
        self._barrier, self._left = threading.Barrier(callers, timeout=20), callers

    def __call__(self) -> dt.datetime:
        with self._lock:
            barrier = self._barrier if self._left > 0 else None
            self._left -= 1
        if barrier is not None:
            barrier.wait()
        return self.now


def household(household_id: str = "HH-1") -> cm.Household:
    return cm.Household(
        household_id,
        [
            cm.Member("mother", BIRTH, name=NAME, relation="mother"),
            cm.Member("son", dt.date(2016, 9, 2), name="김준", relation="son", guardian_id="mother"),
        ],
        region="11680-101",
    )


def opening(household_id: str = "HH-1", case_id: str | None = None) -> dict[str, Any]:
    body = {
        "household": cj.to_dict(household(household_id)),
        "referral": cj.to_dict(cm.Referral(cm.ReferralChannel.WALK_IN, T0)),
    }
    if case_id is not None:
        body["case_id"] = case_id
    return body


def consent(scope: cm.ConsentScope) -> cm.RecordConsent:
    return cm.RecordConsent(cm.Consent(scope.value, scope, "mother", cm.ConsentGiver.PERSON, "mother", T0))


#: From referral to an approved plan (the last one by a supervisor).
JOURNEY: list[tuple[str, cm.Command]] = [
    ("kim", cm.AssignCaseworker("kim", team_id="gangnam")),
    ("kim", cm.StartIntake()),
    ("kim", cm.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS)),
    ("kim", cm.RecordCrisisFactor(cm.CrisisFactor.DEBT)),
    ("kim", consent(cm.ConsentScope.SERVICE_PROVISION)),
    ("kim", consent(cm.ConsentScope.PERSONAL_DATA)),
    ("kim", cm.CompleteIntake()),
    ("kim", cm.Select()),
    ("kim", cm.RecordNeed(cm.Need("N1", cm.NeedDomain.EMPLOYMENT, "re-employment"))),
    ("kim", cm.CompleteAssessment()),
    ("kim", cm.SetGoal(cm.Goal("G1", "back in work within six months", ["N1"]))),
    ("lee", cm.ApprovePlan()),
]


class Host:
    """The service under test, its database and a client that signs in as any member of staff."""

    def __init__(self, engine: Engine, client: TestClient, clock: Clock) -> None:
        self.engine = engine
        self.client = client
        self.clock = clock
        self.store: SQLStore = client.app.state.service.store  # type: ignore[attr-defined]

    def open(
        self, user: str = "kim", household_id: str = "HH-1", case_id: str | None = None, **headers: str
    ) -> httpx.Response:
        return self.client.post(
            "/cases", json=opening(household_id, case_id), auth=(user, PASSWORD), headers=headers
        )

    def do(
        self, case_id: str, command: cm.Command | Any, user: str = "kim", **headers: str
    ) -> httpx.Response:
        body = cj.to_dict(command) if isinstance(command, cm.Command) else command
        return self.client.post(
            f"/cases/{case_id}/commands", json=body, auth=(user, PASSWORD), headers=headers
        )

    def get(self, path: str, user: str = "kim", **params: str) -> httpx.Response:
        return self.client.get(path, auth=(user, PASSWORD), params=params)

    def count(self, table: str, **where: str) -> int:
        clause = " AND ".join(f"{k} = :{k}" for k in where) or "1 = 1"
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {clause}"), where).scalar_one())

    def rows(self, case_id: str) -> dict[str, int]:
        """How many rows the engine and the host hold for the case."""
        return {
            "events": self.count("casemgmt_events", case_id=case_id),
            "outbox": self.count("casemgmt_outbox", case_id=case_id),
            "cases": self.count("casemgmt_cases", case_id=case_id),
            "intake": self.count("host_referral_intake", case_id=case_id),
            "activity": self.count("host_activity", case_id=case_id),
        }


def _postgres_engine(conninfo: str) -> Engine:
    return create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(conninfo),
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = sqlite_engine(tmp_path / "host.db")
    else:
        made = _postgres_engine(request.getfixturevalue("postgres_conninfo"))
    try:
        yield made
    finally:
        made.dispose()


def _serve(engine: Engine, clock: Clock, *, raise_server_exceptions: bool = True) -> Iterator[Host]:
    app = service_app.create_app(engine, service_app.demo_centres(), clock=clock)
    for username, (centre, title) in STAFF.items():
        host.add_staff(engine, username, PASSWORD, centre=centre, title=title, n=16)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield Host(engine, client, clock)


@pytest.fixture
def service(engine: Engine) -> Iterator[Host]:
    yield from _serve(engine, Clock())


def opened(service: Host, household_id: str = "HH-1", user: str = "kim") -> str:
    response = service.open(user, household_id)
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    return case_id


# -- a journey ----------------------------------------------------------------------------------


def test_a_case_from_referral_to_service_and_what_is_due(
    service: Host, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    case_schema = jsonschema.Draft202012Validator(cj.json_schema("case"))
    due_schema = jsonschema.Draft202012Validator(cj.json_schema("due_item"))

    response = service.open()
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    assert response.headers["Location"] == f"/cases/{case_id}"
    assert response.headers["X-Intake-No"].isdigit()
    case_schema.validate(response.json())
    assert response.json()["state"] == "referred"

    for user, command in JOURNEY:
        response = service.do(case_id, command, user)
        assert response.status_code == 200, (command.event, response.text)
        case_schema.validate(response.json())
    # A refusal on the way (a guard), as a JSON body:
    refused = service.do(case_id, cm.StartIntake())
    assert refused.status_code == 409
    assert refused.json()["code"] == "unknown_command"

    body = service.get(f"/cases/{case_id}").json()
    assert body["state"] == "service"
    assert body["version"] == len(JOURNEY) + 1
    assert cj.case_from_dict(body) == service.store.for_tenant("gangnam").load(case_id)
    assert service.rows(case_id) == {
        "events": len(JOURNEY) + 1,
        "outbox": 1,  # the assignment, for the relay to deliver after the commit
        "cases": 1,
        "intake": 1,
        "activity": len(JOURNEY) + 1,
    }
    assert service.store.for_tenant("gangnam").verify().ok

    later = (T0 + dt.timedelta(days=40)).isoformat()
    due = service.get("/due", at=later)
    assert due.status_code == 200
    for item in due.json():
        due_schema.validate(item)
    assert {"case_id": case_id, "kind": "no_contact"}.items() <= due.json()[0].items()
    assert any(i["case_id"] == case_id and i["overdue"] for i in due.json())
    assert service.get("/due", "kim", at=later, mine="true").json() == due.json()
    assert service.get("/due", "lee", at=later, mine="true").json() == []
    assert service.get("/due", at="2026-05-01T00:00:00").json()["field"] == "query.at"  # no offset

    # Nothing personal in the logs.
    assert "opened case" in caplog.text
    assert NAME not in caplog.text
    assert BIRTH.isoformat() not in caplog.text


# -- the host's transaction -------------------------------------------------------------------------


def test_a_request_that_fails_after_the_engine_wrote_leaves_nothing(
    service: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = opened(service)
    assert service.do(case_id, cm.AssignCaseworker("kim"), **{"X-Request-ID": "req-1"}).status_code == 200
    before = service.rows(case_id)
    seen: list[dict[str, int]] = []
    record = host.record_activity

    def record_and_look(conn: Any, *args: Any) -> None:
        # Inside the request's transaction, after the engine's commit (a savepoint of it).
        seen.append({t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES})
        record(conn, *args)

    monkeypatch.setattr(host, "record_activity", record_and_look)
    # The same request id again: the engine applies the command, then the host's own insert
    # fails on its unique request id, and the whole transaction rolls back.
    again = service.do(case_id, cm.AssignCaseworker("park"), **{"X-Request-ID": "req-1"})
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_request"
    assert seen[0]["casemgmt_events"] == before["events"] + 1
    assert seen[0]["casemgmt_outbox"] == before["outbox"] + 1
    assert service.rows(case_id) == before
    assert service.get(f"/cases/{case_id}").json()["caseworker_id"] == "kim"


TABLES = ("casemgmt_events", "casemgmt_outbox", "casemgmt_cases")


def test_an_unexpected_failure_of_the_host_rolls_the_engine_back(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in _serve(engine, Clock(), raise_server_exceptions=False):
        case_id = opened(service)
        before = service.rows(case_id)

        def broken(*args: Any) -> None:
            raise RuntimeError("the host's own database work failed")

        monkeypatch.setattr(host, "record_activity", broken)
        response = service.do(case_id, cm.AssignCaseworker("kim"))
        assert response.status_code == 500
        assert service.rows(case_id) == before
        assert service.store.for_tenant("gangnam").load(case_id).version == 1
        failed_open = service.open(household_id="HH-2", case_id="C-never")
        assert failed_open.status_code == 500
        assert service.rows("C-never") == dict.fromkeys(before, 0)


def test_an_engine_refusal_rolls_back_the_host_rows_and_stays_on_record(service: Host) -> None:
    first = opened(service)
    # The household already has a live case: the intake register row written before the engine
    # refused goes, the refusal is kept for audit.
    duplicate = service.open(case_id="C-second", **{"X-Request-ID": "dup-1"})
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "duplicate_case"
    assert duplicate.json()["existing_case_id"] == first
    assert service.rows("C-second") == dict.fromkeys(service.rows("C-second"), 0)
    assert service.count("host_referral_intake") == 1
    gangnam = service.store.for_tenant("gangnam")
    [refusal] = gangnam.refusals("C-second")
    assert (refusal.code, refusal.correlation_id, refusal.actor_id) == ("duplicate_case", "dup-1", "kim")

    # A guard refuses a command: no activity row, the refusal on record, the case unchanged.
    assert service.do(first, cm.StartIntake()).status_code == 200
    before = service.rows(first)
    refused = service.do(first, cm.CompleteIntake(), **{"X-Request-ID": "guard-1"})
    assert refused.status_code == 409
    assert refused.json()["guard"] == "crisis_factors_recorded"
    assert service.rows(first) == before
    assert [(r.code, r.correlation_id) for r in gangnam.refusals(first)] == [
        ("transition_refused", "guard-1")
    ]


# -- tenants ------------------------------------------------------------------------------------------


def test_a_centre_sees_nothing_of_another(service: Host) -> None:
    case_id = opened(service)
    for response in (
        service.get(f"/cases/{case_id}", "park"),
        service.do(case_id, cm.StartIntake(), "park"),
        service.do(case_id, cm.StartIntake(), "choi"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "case_not_found"
        assert NAME not in response.text
    assert service.get(f"/cases/{case_id}").json()["version"] == 1
    assert service.do(case_id, cm.StartIntake()).status_code == 200  # the no-contact clock runs
    later = (T0 + dt.timedelta(days=40)).isoformat()
    assert service.get("/due", "park", at=later).json() == []
    assert service.get("/due", "kim", at=later).json() != []
    # The same household and the same case id in the other centre are another case.
    other = service.open("park", case_id=case_id)
    assert other.status_code == 201, other.text
    assert service.do(case_id, cm.StartIntake(), "park").json()["state"] == "intake"
    assert service.get(f"/cases/{case_id}").json()["state"] == "intake"
    assert service.get(f"/cases/{case_id}", "park").json()["version"] == 2


def test_each_centre_has_its_policy(service: Host) -> None:
    # Mapo closes a case only with a supervisor's approval; Gangnam (the defaults) at once.
    results = {}
    for worker, lead in (("kim", "lee"), ("park", "choi")):
        case_id = opened(service, user=worker)
        centre = STAFF[worker][0]
        for user, command in [("kim", cm.AssignCaseworker(worker, team_id=centre)), *JOURNEY[1:]]:
            assert service.do(case_id, command, worker if user == "kim" else lead).status_code == 200
        results[worker] = service.do(case_id, cm.Close(cm.ClosureReason.MOVED_AWAY), worker)
    assert results["kim"].status_code == 200, results["kim"].text
    assert results["kim"].json()["state"] == "closed"
    assert results["park"].status_code == 409
    assert results["park"].json()["reason"] == "approval_missing"


# -- users ---------------------------------------------------------------------------------------------


def test_unknown_users_and_wrong_passwords_are_401(service: Host) -> None:
    case_id = opened(service)
    for auth in (None, ("nobody", PASSWORD), ("kim", "wrong"), ("", "")):
        response = service.client.get(f"/cases/{case_id}", auth=auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert response.json()["code"] == "unauthenticated"
    response = service.client.post("/cases", json=opening("HH-9"), auth=("nobody", PASSWORD))
    assert response.status_code == 401
    assert service.count("host_referral_intake") == 1


def test_a_role_that_may_not_is_403_with_the_error_body(service: Host) -> None:
    case_id = opened(service, user="rae")  # reception opens cases and takes intake
    assert service.do(case_id, cm.StartIntake(), "rae").status_code == 200
    denied = service.do(case_id, cm.Select(), "rae")
    assert denied.status_code == 403
    body = denied.json()
    assert body["code"] == "authorization_denied"
    assert (body["role"], body["event"], body["actor_id"]) == ("intake_officer", "select", "rae")
    assert body["allowed_roles"] == ["caseworker", "supervisor"]
    assert body["labels"]["en"]
    assert [r.code for r in service.store.for_tenant("gangnam").refusals(case_id)] == ["authorization_denied"]
    # A title without a role in the policy: no commands, and no reading of personal data.
    volunteer = service.open("vol", "HH-2")
    assert volunteer.status_code == 403
    assert volunteer.json()["code"] == "authorization_denied"
    assert service.count("host_referral_intake") == 1
    reading = service.get(f"/cases/{case_id}", "vol")
    assert reading.status_code == 403
    assert reading.json()["code"] == "not_permitted"
    assert NAME not in reading.text


# -- bad payloads -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"NaN", "body"),
        (b"[" * 100_000, "body"),
        (b"[]", "command"),
        (b'{"need": {}}', "command.command"),
        (b'{"command": "fly"}', "command.command"),
        (b'{"command": "record_need", "need": {"need_id": "N1", "domain": "moon"}}', "command.need.domain"),
        (b'{"command": "record_need", "need": {"need_id": 7, "domain": "housing"}}', "command.need.need_id"),
        (b'{"command": "start_intake", "extra": 1}', "command"),
        (b'{"command": "open", "case_id": "C", "household": {}, "referral": {}}', "command.household"),
    ],
)
def test_a_bad_command_is_422_naming_the_field(service: Host, body: bytes, field: str) -> None:
    case_id = opened(service)
    response = service.client.post(
        f"/cases/{case_id}/commands",
        content=body,
        auth=("kim", PASSWORD),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_data"
    assert response.json()["field"] is not None
    assert response.json()["field"].startswith(field)
    assert service.rows(case_id)["events"] == 1


def test_a_bad_opening_is_422_naming_the_field_without_personal_data(service: Host) -> None:
    good = opening()
    wrong_birth = {**good, "household": {**good["household"]}}
    wrong_birth["household"]["members"] = [{**good["household"]["members"][0], "birth_date": "1987-13-45"}]
    naive = {**good, "referral": {**good["referral"], "received_at": "2026-03-02T09:30:00"}}
    cases = [
        ({"household": good["household"]}, "open_case.referral"),
        (wrong_birth, "open_case.household.members[0].birth_date"),
        (naive, "open_case.referral.received_at"),
        ({**good, "case_id": " padded "}, "open_case.case_id"),
    ]
    for body, field in cases:
        response = service.client.post("/cases", json=body, auth=("kim", PASSWORD))
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
        assert NAME not in response.text
        assert "1987-13-45" not in response.text
    assert service.count("host_referral_intake") == 0
    too_big = service.client.post("/cases", content=b" " * (service_app.MAX_BODY + 1), auth=("kim", PASSWORD))
    assert (too_big.status_code, too_big.json()["field"]) == (422, "body")
    bad_id = service.open(**{"X-Request-ID": "no spaces allowed"})
    assert (bad_id.status_code, bad_id.json()["field"]) == (422, "X-Request-ID")
    assert service.get("/due", at="yesterday").json()["field"] == "query.at"


# -- failures of the store ----------------------------------------------------------------------------


def test_a_failing_store_is_503_without_details(service: Host, caplog: pytest.LogCaptureFixture) -> None:
    case_id = opened(service)
    with service.engine.begin() as conn:
        conn.execute(text("ALTER TABLE casemgmt_events RENAME TO casemgmt_events_away"))
    response = service.do(case_id, cm.StartIntake())
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "code": "storage_error",
        "message": "the case store is not available",
        "labels": body["labels"],
    }
    assert service.count("host_activity", case_id=case_id) == 1  # only the opening's
    assert NAME not in caplog.text


# -- the OpenAPI document --------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _rebase(node: Any) -> Any:
    """``node`` with its references to components made references to ``$defs``."""
    if isinstance(node, dict):
        return {
            k: v.replace("#/components/schemas/", "#/$defs/") if k == "$ref" else _rebase(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase(x) for x in node]
    return node


def test_the_openapi_document_has_the_librarys_schemas_as_components(service: Host) -> None:
    document = service.client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    components = document["components"]["schemas"]
    library = cj.schemas()
    for name, schema in library.items():
        assert components[name] == schema
    assert "HostError" in components
    for ref in _refs(document):
        assert ref.removeprefix("#/components/schemas/") in components
    paths = document["paths"]
    body_of = {
        ("/cases", "post"): "OpenCaseRequest",
        ("/cases/{case_id}/commands", "post"): "Command",
    }
    for (path, method), name in body_of.items():
        operation = paths[path][method]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{name}"
        }
    commands = paths["/cases/{case_id}/commands"]["post"]["responses"]
    assert commands["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Case")
    assert commands["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/CaseManagementError")
    due = paths["/due"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert due["items"]["$ref"].endswith("/DueItem")
    assert "HTTPBasic" in document["components"]["securitySchemes"]
    # The components validate what the service answers.
    case_id = opened(service)
    schema = {"$ref": "#/$defs/Case", "$defs": _rebase(components)}
    jsonschema.Draft202012Validator(schema).validate(service.get(f"/cases/{case_id}").json())


# -- concurrency ----------------------------------------------------------------------------------------


def test_concurrent_requests_for_different_cases_all_succeed(service: Host) -> None:
    case_ids = [opened(service, f"HH-{n}") for n in range(8)]
    commands: list[cm.Command] = [
        cm.AssignCaseworker("kim"),
        cm.StartIntake(),
        cm.RecordCrisisFactor(cm.CrisisFactor.JOB_LOSS),
        consent(cm.ConsentScope.SERVICE_PROVISION),
        consent(cm.ConsentScope.PERSONAL_DATA),
        cm.CompleteIntake(),
    ]

    def run(case_id: str) -> list[int]:
        return [service.do(case_id, command).status_code for command in commands]

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(run, case_ids))
    assert statuses == [[200] * len(commands)] * 8
    for case_id in case_ids:
        assert service.get(f"/cases/{case_id}").json()["state"] == "screening"
        assert service.rows(case_id)["activity"] == len(commands) + 1
    assert service.store.for_tenant("gangnam").verify().ok


def _race(service: Host, case_id: str, make: Callable[[], cm.Command]) -> list[httpx.Response]:
    start = threading.Barrier(2)

    def one(_: int) -> httpx.Response:
        start.wait(timeout=20)
        return service.do(case_id, make())

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(2)))


def test_two_writers_of_one_case_one_wins(service: Host) -> None:
    for _ in range(3):
        case_id = opened(service, f"HH-race-{_}")
        responses = _race(service, case_id, cm.StartIntake)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409], [r.text for r in responses]
        [lost] = [r for r in responses if r.status_code == 409]
        assert lost.json()["code"] in ("concurrency_conflict", "unknown_command")
        assert service.rows(case_id)["events"] == 2
        assert service.rows(case_id)["activity"] == 2


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_two_writers_who_read_the_same_version_one_gets_a_concurrency_conflict(engine: Engine) -> None:
    clock = Clock()
    for service in _serve(engine, clock):
        case_id = opened(service)
        clock.hold(2)  # both requests load version 1 before either decides
        responses = _race(service, case_id, cm.StartIntake)
        assert sorted(r.status_code for r in responses) == [200, 409]
        [lost] = [r for r in responses if r.status_code == 409]
        body = lost.json()
        assert (body["code"], body["expected_version"], body["actual_version"]) == (
            "concurrency_conflict",
            1,
            2,
        )
        assert service.rows(case_id)["events"] == 2


# -- the module itself -------------------------------------------------------------------------------------


def test_the_module_imports_without_a_server_and_makes_its_app_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module("examples.fastapi_service.app")
    assert "app" not in vars(module)
    monkeypatch.setenv("CASEMGMT_EXAMPLE_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        app = module.app
        assert app.title.startswith("Case management service")
        assert (tmp_path / "demo.db").exists()
    finally:
        made = vars(module).pop("app", None)
        if made is not None:
            made.state.service.engine.dispose()


# -- the asyncio endpoint ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_the_async_endpoint_runs_the_same_transaction(engine: Engine, request: pytest.FixtureRequest) -> None:
    conninfo = request.getfixturevalue("postgres_conninfo")
    async_engine = create_async_engine(
        "postgresql+psycopg://",
        async_creator=lambda: psycopg.AsyncConnection.connect(conninfo),
        hide_parameters=True,
    )
    app = service_app.create_app(engine, service_app.demo_centres(), clock=Clock(), async_engine=async_engine)
    for username, (centre, title) in STAFF.items():
        host.add_staff(engine, username, PASSWORD, centre=centre, title=title, n=16)
    try:
        with TestClient(app) as client:
            service = Host(engine, client, Clock())

            def do(case_id: str, command: cm.Command, user: str = "kim", **headers: str) -> httpx.Response:
                return client.post(
                    f"/async/cases/{case_id}/commands",
                    json=cj.to_dict(command),
                    auth=(user, PASSWORD),
                    headers=headers,
                )

            case_id = opened(service)
            for user, command in JOURNEY[:3]:
                response = do(case_id, command, user)
                assert response.status_code == 200, response.text
            assert response.json()["state"] == "intake"
            # A refusal: the request's rows roll back, the refusal stays on record.
            before = service.rows(case_id)
            refused = do(case_id, cm.Select(), **{"X-Request-ID": "async-guard"})
            assert refused.status_code == 409
            assert refused.json()["code"] == "unknown_command"
            assert service.rows(case_id) == before
            refusals = service.store.for_tenant("gangnam").refusals(case_id)
            assert [(r.code, r.correlation_id) for r in refusals] == [("unknown_command", "async-guard")]
            # The host's insert fails after the engine wrote: nothing stays.
            assert do(case_id, cm.AssignCaseworker("park"), **{"X-Request-ID": "async-1"}).status_code == 200
            before = service.rows(case_id)
            again = do(case_id, cm.AssignCaseworker("kim"), **{"X-Request-ID": "async-1"})
            assert (again.status_code, again.json()["code"]) == (409, "duplicate_request")
            assert service.rows(case_id) == before
            # Other centres, other roles.
            assert do(case_id, cm.StartIntake(), "park").status_code == 404
            assert do(case_id, cm.DeclareCrisis("fire"), "vol").status_code == 403
            # Two concurrent writers of one case on the event loop: one wins.
            second = opened(service, "HH-async")
            with ThreadPoolExecutor(2) as pool:
                racing = list(pool.map(lambda _: do(second, cm.StartIntake()), range(2)))
            assert sorted(r.status_code for r in racing) == [200, 409]
            assert service.store.for_tenant("gangnam").verify().ok
            assert "/async/cases/{case_id}/commands" in client.get("/openapi.json").json()["paths"]
    finally:
        asyncio.run(async_engine.dispose())
