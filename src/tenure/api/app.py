"""The FastAPI application. Intake answers 2xx only once the payload is stored; errors are problem details."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tenure import __version__, operations
from tenure.api import v1
from tenure.api.notices_routes import notices_router
from tenure.db.engine import Database, get_database
from tenure.errors import NotFound, TenureError
from tenure.intake.writer import IntakeWriter, Refused, Submission, ingest_now
from tenure.web import routes as web

PROBLEM = "application/problem+json"
# who may post payloads (the REST API's own table of roles is in accounts/users.py)
INTAKE = {"owner", "technician", "intake"}


Wait = Annotated[bool, Query(description="Process at once and return the decisions (default: the worker does).")]
Bearer = Annotated[str | None, Header(alias="Authorization", description="Bearer <intake token>")]


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """RFC 9457 problem details."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type=PROBLEM,
    )


def create_app(database: Database | None = None) -> FastAPI:
    app = FastAPI(
        docs_url=None,  # FastAPI's Swagger and ReDoc pages load from a CDN: pages here work offline
        redoc_url=None,
        title="Tenure",
        version=__version__,
        description="Intake endpoints and the REST API of Tenure. `/api/v1/...` needs `Authorization: "
        "Bearer <token>` (`tenure token create`).",
    )

    def db() -> Database:
        return database or get_database()

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

    writers: list[IntakeWriter] = []

    def writer() -> IntakeWriter:
        if not writers:  # one per application: it owns the thread that commits intake in batches
            writers.append(IntakeWriter(db()))
        return writers[0]

    async def accept(
        request: Request,
        source: str,
        meta: dict[str, Any],
        wait: bool,
        open_: bool = False,
    ) -> JSONResponse:
        body = await _body(request)
        if not body and source != "ping":
            raise HTTPException(422, f"an empty {source} payload")
        token = None
        if not open_:
            scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise HTTPException(401, "a valid API token is required (Authorization: Bearer …)")
            token = token.strip()
        submission = Submission(source, body, request.headers.get("content-type"), meta, token, frozenset(INTAKE))
        try:
            if wait:  # stored and processed in one transaction, then answered
                payload, outcomes = await run_in_threadpool(ingest_now, db(), submission)
                answer = {"payload": payload, "state": "processed", "decisions": [o.as_json() for o in outcomes]}
            else:
                payload = await asyncio.wrap_future(writer().submit(submission))  # stored and committed
                answer = {"payload": payload, "state": "stored"}
        except Refused as refused:
            raise HTTPException(refused.status, str(refused)) from None
        return JSONResponse(answer, status_code=200 if open_ else 202)

    for source, path in (
        ("alertmanager", "alertmanager"),
        ("email", "email"),
        ("event", "events"),
        ("tactical", "tactical"),
    ):

        async def endpoint(
            request: Request, wait: Wait = False, authorization: Bearer = None, source: str = source
        ) -> JSONResponse:
            return await accept(request, source, {}, wait)

        app.post(f"/api/v1/intake/{path}", status_code=202, summary=f"Receive a {source} payload", tags=["intake"])(
            endpoint
        )

    @app.post("/api/v1/intake/restic", status_code=202, tags=["intake"], summary="Receive restic backup --json output")
    async def restic(
        request: Request,
        wait: Wait = False,
        job: str | None = None,
        host: str | None = None,
        client: str | None = None,
        exit_code: int | None = None,
        authorization: Bearer = None,
    ) -> JSONResponse:
        meta = {
            k: v
            for k, v in {"job": job, "host": host, "client": client, "exit_code": exit_code}.items()
            if v is not None
        }
        return await accept(request, "restic", meta, wait)

    async def check_in(request: Request, uuid: str, signal: str | None) -> JSONResponse:
        # open like Healthchecks' ping URLs: the job's UUID is the secret
        path = f"/ping/{uuid}" + (f"/{signal}" if signal else "")
        return await accept(request, "ping", {"path": path}, False, open_=True)

    async def ping(request: Request, uuid: str) -> JSONResponse:
        return await check_in(request, uuid, None)

    async def ping_signal(request: Request, uuid: str, signal: str) -> JSONResponse:
        return await check_in(request, uuid, signal)

    for method in ("GET", "POST"):
        app.add_api_route(
            "/ping/{uuid}",
            ping,
            methods=[method],
            tags=["intake"],
            summary="Backup job check-in",
            operation_id=f"ping_{method.lower()}",
        )
        app.add_api_route(
            "/ping/{uuid}/{signal}",
            ping_signal,
            methods=[method],
            tags=["intake"],
            summary="Backup job start (/start), failure (/fail) or exit code (/<0-255>)",
            operation_id=f"ping_signal_{method.lower()}",
        )

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        with db().reader() as s:
            s.connection().exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    v1.install(app, db)  # REST API v1: clients, agreements, time, invoices, alerts, tickets, runs, reports
    web.install(app, db)  # pages, log-in, static assets
    operations.install(app, db)  # /metrics, JSON request logs, problem details for every error
    app.include_router(notices_router(db))  # signed-link pages and calendar feeds (no account)
    return app


MAX_BODY = 10 * 1024 * 1024


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"payloads are limited to {MAX_BODY // (1024 * 1024)} MiB")
    return body
