"""A host service that embeds the engine: FastAPI over the host's own database.

``create_app(engine)`` serves the cases of several centres from one database, in which the host
keeps its own tables too (``host.py``). Each write request is one transaction of the host: its
intake register and activity log rows, and the engine's case, events and outbox rows, commit or
roll back together (``SQLStore.using(connection)``). A refusal of the engine rolls back the
request's own rows but stays on record for audit.

Run it (uvicorn is not a dependency of the library): see ``README.md`` in this folder.
"""

import contextlib
import datetime as dt
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import casemgmt_core as cm
import casemgmt_core.json as cj
from casemgmt_core.adapters.async_sql import AsyncSQLStore
from casemgmt_core.adapters.sql import SQLStore, sqlite_engine

from . import host

__all__ = ["create_app", "demo_centres"]

log = logging.getLogger("casemgmt_example.service")

T = TypeVar("T")

#: The largest request body read, in bytes.
MAX_BODY = 256 * 1024
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: The HTTP status of each error of the library (the first class that matches, in this order).
STATUS: tuple[tuple[type[cm.CaseManagementError], int], ...] = (
    (cm.ConcurrencyConflict, 409),  # a StorageError: before it
    (cm.StorageError, 503),
    (cm.InvalidData, 422),
    (cm.AuthorizationDenied, 403),
    (cm.CaseNotFound, 404),  # also a case of another centre: its existence is not told
    (cm.TransitionRefused, 409),
    (cm.UnknownCommand, 409),
    (cm.DuplicateCase, 409),
)


def status_of(error: cm.CaseManagementError) -> int:
    return next((status for cls, status in STATUS if isinstance(error, cls)), 400)


class HostError(Exception):
    """An error of the host itself (not of the engine), with its HTTP status and JSON body."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(message)


def demo_centres() -> dict[str, cm.Policy]:
    """Two centres with policies of their own: Mapo closes a case only with a supervisor's approval."""
    mapo = cm.load_policy('programme = "mapo"\n[approvals.closure]\napproved_by = ["supervisor"]\n')
    return {"gangnam": cm.DEFAULT_POLICY, "mapo": mapo}


class Service:
    """What the endpoints share: the host's engine, the engine's store on it, the centres' policies.

    One store object serves every thread and every centre: ``store.for_tenant(centre)`` is a view
    of it for one centre, ``.using(connection)`` one inside the request's transaction.
    """

    def __init__(
        self,
        engine: Engine,
        store: SQLStore,
        centres: Mapping[str, cm.Policy],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.engine = engine
        self.store = store
        self.centres = dict(centres)
        self.clock = clock
        #: The asyncio side (``create_app(async_engine=...)``), opened when the app starts.
        self.async_engine: AsyncEngine | None = None
        self.async_store: AsyncSQLStore | None = None

    def policy(self, staff: host.Staff) -> cm.Policy:
        policy = self.centres.get(staff.centre)
        if policy is None:
            raise HostError(403, "not_permitted", "your centre is not served here")
        return policy

    def reader(self, staff: host.Staff) -> cm.CaseManager:
        """A manager for reading the staff member's centre's cases (a role of its policy needed)."""
        policy = self.policy(staff)
        if not policy.access.roles.get(staff.actor.role):
            raise HostError(403, "not_permitted", "your role may not read cases")
        return cm.CaseManager(self.store.for_tenant(staff.centre), policy=policy, clock=self.clock)

    def write(
        self,
        staff: host.Staff,
        case_id: str,
        request_id: str,
        work: Callable[[Connection, cm.CaseManager], T],
    ) -> T:
        """Run ``work`` in one transaction of the host, with a manager whose store writes in it.

        ``work`` writes the host's rows and calls the manager. If it raises anything, nothing of
        it stays: neither the host's rows nor the case, its events and its outbox rows. A refusal
        of the engine (an error of the library) is the exception: the refusal the engine recorded
        for this request is kept for audit, in the same transaction, after the request's own
        writes were rolled back.
        """
        policy = self.policy(staff)
        refusal: cm.CaseManagementError | None = None
        with host.transaction(self.engine) as conn:
            store = self.store.for_tenant(staff.centre).using(conn)
            # No notifier: the outbox relay sends after the commit, never for a rolled-back change.
            manager = cm.CaseManager(store, policy=policy, clock=self.clock)
            savepoint = conn.begin_nested()
            try:
                result = work(conn, manager)
            except cm.StorageError:
                raise  # the database failed or another writer won: roll back everything
            except cm.CaseManagementError as error:
                kept = self._recorded(manager, case_id, request_id)
                savepoint.rollback()
                for recorded in kept:
                    store.record_refusal(recorded)
                refusal = error
            else:
                savepoint.commit()
        if refusal is not None:
            raise refusal
        return result

    @staticmethod
    def _recorded(manager: cm.CaseManager, case_id: str, request_id: str) -> list[cm.Refusal]:
        try:
            return [r for r in manager.refusals(case_id) if r.correlation_id == request_id]
        except cm.InvalidData:  # a case id that is not one: nothing was recorded
            return []

    async def write_async(
        self,
        staff: host.Staff,
        case_id: str,
        request_id: str,
        work: Callable[[AsyncConnection, cm.AsyncCaseManager], Awaitable[T]],
    ) -> T:
        """:meth:`write` for asyncio: the same transaction, savepoint and refusals, awaited."""
        assert self.async_engine is not None and self.async_store is not None
        policy = self.policy(staff)
        refusal: cm.CaseManagementError | None = None
        async with self.async_engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                await conn.execution_options(casemgmt_write=True)
            async with conn.begin():
                store = self.async_store.for_tenant(staff.centre).using(conn)
                manager = cm.AsyncCaseManager(store, policy=policy, clock=self.clock)
                savepoint = await conn.begin_nested()
                try:
                    result = await work(conn, manager)
                except cm.StorageError:
                    raise
                except cm.CaseManagementError as error:
                    try:
                        recorded = await manager.refusals(case_id)
                    except cm.InvalidData:
                        recorded = ()
                    kept = [r for r in recorded if r.correlation_id == request_id]
                    await savepoint.rollback()
                    for one in kept:
                        await store.record_refusal(one)
                    refusal = error
                else:
                    await savepoint.commit()
        if refusal is not None:
            raise refusal
        return result


# -- dependencies ---------------------------------------------------------------------------------

basic = HTTPBasic(auto_error=False, realm="casemgmt example")


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def current_staff(
    request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]
) -> host.Staff:
    service = service_of(request)
    staff = None
    if credentials is not None:
        staff = host.authenticate(service.engine, credentials.username, credentials.password)
    if staff is None:
        raise HostError(
            401,
            "unauthenticated",
            "sign in with the user name and password of a member of staff",
            {"WWW-Authenticate": 'Basic realm="casemgmt example"'},
        )
    return staff


def request_id(x_request_id: Annotated[str | None, Header()] = None) -> str:
    """The request's id: the client's ``X-Request-ID`` (its retry of the same request is then
    applied once) or a new one. It is the correlation id of the events the request records."""
    if x_request_id is None:
        return uuid.uuid4().hex
    if not REQUEST_ID.fullmatch(x_request_id):
        raise cm.InvalidData(
            "is not a request id", field="X-Request-ID", allowed="1 to 64 letters, digits, '.', '_' or '-'"
        )
    return x_request_id


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def json_body(request: Request) -> Any:
    """The request body as JSON data (read here, at most :data:`MAX_BODY` bytes)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise cm.InvalidData(f"is larger than {MAX_BODY} bytes", field="body")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise cm.InvalidData("is not JSON", field="body", allowed="a JSON object") from None


Staff = Annotated[host.Staff, Depends(current_staff)]
RequestId = Annotated[str, Depends(request_id)]
Body = Annotated[Any, Depends(json_body)]
Services = Annotated[Service, Depends(service_of)]


# -- OpenAPI --------------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: The body of the host's own errors (sign-in, its permissions, a request id used twice).
HOST_ERROR_SCHEMA: dict[str, Any] = {
    "title": "HostError",
    "description": "An error of the host service itself, not of the engine.",
    "type": "object",
    "properties": {
        "code": {"type": "string", "enum": ["unauthenticated", "not_permitted", "duplicate_request"]},
        "message": {"type": "string"},
    },
    "required": ["code", "message"],
    "additionalProperties": False,
}

_EITHER = {"oneOf": [_ref("CaseManagementError"), _ref("HostError")]}
_ERRORS: dict[int, tuple[dict[str, Any], str]] = {
    401: (_ref("HostError"), "Unknown user or wrong password"),
    403: (_EITHER, "The user's role may not do this"),
    404: (_ref("CaseManagementError"), "No such case in the user's centre"),
    409: (_EITHER, "Refused: a guard, a command that does not apply now, a duplicate, a concurrent change"),
    422: (_ref("CaseManagementError"), "Invalid data: the error's field names the place"),
    503: (_ref("CaseManagementError"), "The case store is not available"),
}


def _operation(
    ok: int, ok_schema: dict[str, Any], ok_words: str, errors: tuple[int, ...], body: str | None = None
) -> dict[str, Any]:
    responses = {str(ok): _json(ok_schema, ok_words)}
    for status in errors:
        responses[str(status)] = _json(*_ERRORS[status])
    extra: dict[str, Any] = {"responses": responses}
    if body is not None:
        extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return extra


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the library's JSON Schemas as its components."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in {**cj.schemas(), "HostError": HOST_ERROR_SCHEMA}.items():
        if name in schemas:
            raise RuntimeError(f"two schemas named {name}")
        schemas[name] = schema
    app.openapi_schema = document
    return document


# -- the application ------------------------------------------------------------------------------


def create_app(
    engine: Engine,
    centres: Mapping[str, cm.Policy] | None = None,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    table_prefix: str = "casemgmt_",
    schema: str | None = None,
    create_tables: bool = True,
    async_engine: AsyncEngine | None = None,
) -> FastAPI:
    """The service over ``engine``, the host's own database.

    ``centres`` maps each centre (a tenant of the store) to its policy (default:
    :func:`demo_centres`). The engine's tables get ``table_prefix`` (and ``schema``);
    ``create_tables=False`` leaves them to a DBA (``casemgmt db sql``) and only checks them.
    ``async_engine`` (an asyncio engine on the same database) adds
    ``POST /async/cases/{case_id}/commands``, served by ``AsyncCaseManager``.
    """
    host.create_tables(engine)
    store = SQLStore(engine, table_prefix=table_prefix, schema=schema, create_tables=create_tables)
    service = Service(engine, store, demo_centres() if centres is None else centres, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if async_engine is not None:
            # The tables exist (the blocking store made or checked them): only check them.
            service.async_store = await AsyncSQLStore.open(
                async_engine, table_prefix=table_prefix, schema=schema, create_tables=False
            )
            service.async_engine = async_engine
        yield

    app = FastAPI(
        title="Case management service (example host)",
        version=cm.__version__,
        description="Crisis-household integrated case management, embedded in a host service.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.exception_handler(cm.CaseManagementError)
    def library_error(request: Request, error: cm.CaseManagementError) -> JSONResponse:
        status = status_of(error)
        body = error.to_dict()
        if status == 503:
            # What failed stays in the server: the body says only that the store is unavailable.
            body = {
                "code": body["code"],
                "message": "the case store is not available",
                "labels": body["labels"],
            }
            log.error("storage error on %s %s", request.method, request.url.path)
        else:
            log.info("refused %s %s: %s", request.method, request.url.path, error.code)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(HostError)
    def host_error(request: Request, error: HostError) -> JSONResponse:
        body = {"code": error.code, "message": error.message}
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    @app.exception_handler(host.DuplicateRequest)
    def duplicate_request(request: Request, error: host.DuplicateRequest) -> JSONResponse:
        log.info("duplicate request %s on %s", error.request_id, request.url.path)
        body = {
            "code": "duplicate_request",
            "message": "this request id was used before; nothing was changed",
        }
        return JSONResponse(body, status_code=409)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own checks (query and path parameters) answer in the library's error shape.
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or None
        invalid = cm.InvalidData(str(first.get("msg", "is invalid")), field=where)
        return JSONResponse(invalid.to_dict(), status_code=422)

    @app.post(
        "/cases",
        status_code=201,
        openapi_extra=_operation(
            201, _ref("Case"), "The case, opened", (401, 403, 409, 422, 503), body="OpenCaseRequest"
        ),
    )
    def open_case(staff: Staff, rid: RequestId, body: Body) -> JSONResponse:
        """Open a case for a referred household (the intake register numbers it)."""
        opening = cj.open_case_from_dict(body)
        case_id = opening.case_id or uuid.uuid4().hex
        intake: list[int] = []

        def work(conn: Connection, manager: cm.CaseManager) -> cm.Case:
            now = manager.clock()
            intake.append(host.register_intake(conn, staff, case_id, opening.referral.channel.value, now))
            case = manager.open_case(
                opening.household, opening.referral, actor=staff.actor, case_id=case_id, correlation_id=rid
            )
            host.record_activity(conn, rid, staff, case, "open", now)
            return case

        case = service.write(staff, case_id, rid, work)
        log.info(
            "opened case %s (intake %d) by %s at %s", case.case_id, intake[0], staff.username, staff.centre
        )
        headers = {"Location": f"/cases/{case.case_id}", "X-Intake-No": str(intake[0]), "X-Request-ID": rid}
        return JSONResponse(cj.to_dict(case), status_code=201, headers=headers)

    @app.post(
        "/cases/{case_id}/commands",
        openapi_extra=_operation(
            200, _ref("Case"), "The case after the command", (401, 403, 404, 409, 422, 503), body="Command"
        ),
    )
    def handle(case_id: str, staff: Staff, rid: RequestId, body: Body) -> JSONResponse:
        """Apply a command to a case: ``{"command": <event name>, <its fields>}``."""
        command = cj.command_from_dict(body)

        def work(conn: Connection, manager: cm.CaseManager) -> cm.Case:
            case = manager.handle(case_id, command, actor=staff.actor, correlation_id=rid)
            host.record_activity(conn, rid, staff, case, command.event, manager.clock())
            return case

        case = service.write(staff, case_id, rid, work)
        log.info("case %s: %s by %s -> version %d", case.case_id, command.event, staff.username, case.version)
        return JSONResponse(cj.to_dict(case), headers={"X-Request-ID": rid})

    if async_engine is not None:

        @app.post(
            "/async/cases/{case_id}/commands",
            openapi_extra=_operation(
                200,
                _ref("Case"),
                "The case after the command",
                (401, 403, 404, 409, 422, 503),
                body="Command",
            ),
        )
        async def handle_async(case_id: str, staff: Staff, rid: RequestId, body: Body) -> JSONResponse:
            """``POST /cases/{case_id}/commands`` on the event loop (``AsyncCaseManager``)."""
            command = cj.command_from_dict(body)

            async def work(conn: AsyncConnection, manager: cm.AsyncCaseManager) -> cm.Case:
                case = await manager.handle(case_id, command, actor=staff.actor, correlation_id=rid)
                now = manager.clock()
                # The host's helpers are written for a blocking connection: run them on this one.
                await conn.run_sync(
                    lambda sync: host.record_activity(sync, rid, staff, case, command.event, now)
                )
                return case

            case = await service.write_async(staff, case_id, rid, work)
            log.info(
                "case %s: %s by %s -> version %d", case.case_id, command.event, staff.username, case.version
            )
            return JSONResponse(cj.to_dict(case), headers={"X-Request-ID": rid})

    @app.get(
        "/cases/{case_id}",
        openapi_extra=_operation(200, _ref("Case"), "The case", (401, 403, 404, 422, 503)),
    )
    def get_case(case_id: str, staff: Staff) -> JSONResponse:
        """The case, as the stores write it."""
        return JSONResponse(cj.to_dict(service.reader(staff).get(case_id)))

    @app.get(
        "/due",
        openapi_extra=_operation(
            200, {"type": "array", "items": _ref("DueItem")}, "What is due, by deadline", (401, 403, 422, 503)
        ),
    )
    def due(
        staff: Staff,
        at: Annotated[dt.datetime | None, Query(description="ISO 8601 with an offset; default: now")] = None,
        mine: Annotated[bool, Query(description="only the cases whose caseworker is the user")] = False,
    ) -> JSONResponse:
        """What is due or overdue in the user's centre."""
        if at is not None and at.utcoffset() is None:
            raise cm.InvalidData(
                "must have a UTC offset", field="query.at", allowed="e.g. 2026-03-02T09:30:00+09:00"
            )
        manager = service.reader(staff)
        query = cm.CaseQuery(caseworker_id=staff.username) if mine else None
        items = manager.due(at, query=query)
        return JSONResponse([cj.to_dict(item) for item in items])

    return app


# -- running it -------------------------------------------------------------------------------------


def engine_from_environment() -> Engine:
    """The database of ``CASEMGMT_EXAMPLE_DATABASE_URL`` (default: ``sqlite:///fastapi_service.db``)."""
    url = os.environ.get("CASEMGMT_EXAMPLE_DATABASE_URL", "sqlite:///fastapi_service.db")
    if url.startswith("sqlite:///"):
        return sqlite_engine(url.removeprefix("sqlite:///") or ":memory:")
    return create_engine(url, hide_parameters=True, pool_pre_ping=True)


def __getattr__(name: str) -> Any:
    # ``app`` is made on first use (``uvicorn examples.fastapi_service.app:app``), so that
    # importing this module opens no database.
    if name == "app":
        made = create_app(engine_from_environment())
        globals()["app"] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """``python -m examples.fastapi_service.app add-staff NAME --centre C --title T``: adds a member
    of staff to the database of :func:`engine_from_environment` (the password is asked for)."""
    import argparse
    import getpass

    parser = argparse.ArgumentParser(prog="python -m examples.fastapi_service.app")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-staff", help="add a member of staff")
    add.add_argument("username")
    add.add_argument("--centre", required=True, choices=sorted(demo_centres()))
    add.add_argument("--title", required=True, choices=sorted(host.ROLES))
    args = parser.parse_args(argv)
    engine = engine_from_environment()
    try:
        host.create_tables(engine)
        password = getpass.getpass(f"password for {args.username}: ")
        host.add_staff(engine, args.username, password, centre=args.centre, title=args.title)
    finally:
        engine.dispose()
    print(f"added {args.username} ({args.title}) at {args.centre}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
