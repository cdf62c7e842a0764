"""The FastAPI application. Intake answers 2xx only once the payload is stored; errors are problem details."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from tenure import __version__
from tenure.accounts.service import TokenInfo, authenticate
from tenure.db.engine import Database, get_database
from tenure.errors import NotFound, TenureError
from tenure.intake import service as intake
from tenure.triage.service import list_alerts, list_tickets

PROBLEM = "application/problem+json"
# who may call what: intake tokens may only post payloads
READERS = {"owner", "technician", "bookkeeper", "readonly"}
INTAKE = {"owner", "technician", "intake"}


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """RFC 9457 problem details."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type=PROBLEM,
    )


def create_app(database: Database | None = None) -> FastAPI:
    app = FastAPI(
        title="Tenure",
        version=__version__,
        description="Intake endpoints and the REST API of Tenure. `/api/v1/...` needs `Authorization: "
        "Bearer <token>` (`tenure token create`).",
    )

    def db() -> Database:
        return database or get_database()

    def token(roles: set[str]) -> Any:
        def check(authorization: Annotated[str | None, Header()] = None) -> TokenInfo:
            scheme, _, value = (authorization or "").partition(" ")
            info = authenticate(db(), value.strip()) if scheme.lower() == "bearer" else None
            if info is None:
                raise HTTPException(401, "a valid API token is required (Authorization: Bearer …)")
            if info.role not in roles:
                raise HTTPException(403, f"a {info.role} token may not do this")
            return info

        return check

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large"}
        response = problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, "Not Found", str(exc))

    @app.exception_handler(TenureError)
    async def bad_request(request: Request, exc: TenureError) -> JSONResponse:
        return problem(422, "Unprocessable Content", str(exc))

    def accept(source: str, body: bytes, content_type: str | None, meta: dict[str, Any], wait: bool) -> dict[str, Any]:
        if not body and source != "ping":
            raise HTTPException(422, f"an empty {source} payload")
        payload = intake.receive(db(), source, body, content_type, meta)  # stored and committed: now we may answer
        answer: dict[str, Any] = {"payload": payload, "state": "stored"}
        if wait:
            answer["decisions"] = [o.as_json() for o in intake.process(db(), [payload])]
            answer["state"] = "processed"
        return answer

    Wait = Annotated[bool, Query(description="Process at once and return the decisions (default: the worker does).")]

    for source, path in (
        ("alertmanager", "alertmanager"),
        ("email", "email"),
        ("event", "events"),
        ("tactical", "tactical"),
    ):

        def endpoint(
            request: Request,
            body: bytes = Depends(_body),
            wait: Wait = False,
            _: TokenInfo = Depends(token(INTAKE)),
            source: str = source,
        ) -> JSONResponse:
            return JSONResponse(accept(source, body, request.headers.get("content-type"), {}, wait), status_code=202)

        app.post(f"/api/v1/intake/{path}", status_code=202, summary=f"Receive a {source} payload", tags=["intake"])(
            endpoint
        )

    @app.post("/api/v1/intake/restic", status_code=202, tags=["intake"], summary="Receive restic backup --json output")
    def restic(
        request: Request,
        body: bytes = Depends(_body),
        wait: Wait = False,
        job: str | None = None,
        host: str | None = None,
        client: str | None = None,
        exit_code: int | None = None,
        _: TokenInfo = Depends(token(INTAKE)),
    ) -> JSONResponse:
        meta = {
            k: v
            for k, v in {"job": job, "host": host, "client": client, "exit_code": exit_code}.items()
            if v is not None
        }
        return JSONResponse(accept("restic", body, request.headers.get("content-type"), meta, wait), status_code=202)

    @app.api_route("/ping/{uuid}", methods=["GET", "POST", "HEAD"], tags=["intake"], summary="Backup job check-in")
    @app.api_route(
        "/ping/{uuid}/{signal}",
        methods=["GET", "POST", "HEAD"],
        tags=["intake"],
        summary="Backup job start, failure or exit code",
    )
    def ping(request: Request, uuid: str, signal: str | None = None, body: bytes = Depends(_body)) -> JSONResponse:
        # open like Healthchecks' ping URLs: the job's UUID is the secret
        path = f"/ping/{uuid}" + (f"/{signal}" if signal else "")
        return JSONResponse(accept("ping", body, None, {"path": path}, False), status_code=200)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        with db().reader() as s:
            s.connection().exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    @app.get("/api/v1/alerts", tags=["alerts"])
    def alerts(
        client: str | None = None,
        decision: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        _: TokenInfo = Depends(token(READERS)),
    ) -> dict[str, Any]:
        return {"alerts": list_alerts(db(), client, decision, status, limit)}

    @app.get("/api/v1/tickets", tags=["tickets"])
    def tickets(
        client: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        _: TokenInfo = Depends(token(READERS)),
    ) -> dict[str, Any]:
        return {"tickets": list_tickets(db(), client, status, limit)}

    return app


MAX_BODY = 10 * 1024 * 1024


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"payloads are limited to {MAX_BODY // (1024 * 1024)} MiB")
    return body
