"""The FastAPI application. Intake answers 2xx only once the payload is stored; errors are problem details
(`api/problems.py`), and `/openapi.json` says so: every error's body and content type, intake's request
bodies and bearer token, `/healthz`'s 503.

- `?wait=true` answers once the payload is processed: with the decisions for a token that may `read`
  (they name clients, agreements and coverage), only the count of each decision for an `intake` token.
- `/ping/<uuid>` stores a check-in only for a UUID a backup job has (404 and nothing stored otherwise;
  `tenure_intake_pings_refused_total` counts them); a body beyond `PING_BODY` (the log a job posts) is cut
  there, and the payload's meta says so (`truncated`, `body_bytes`): a check-in is never refused for its size.
- `/healthz` answers 503 `stalled` when the oldest payload waiting for the worker is older than
  `TENURE_INTAKE_STALL_SECONDS` (default 300).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from tenure import __version__, operations
from tenure.api import docs, problems, v1
from tenure.api.common import Decision
from tenure.api.notices_routes import notices_router
from tenure.api.problems import problem
from tenure.db.engine import Database, get_database
from tenure.intake.writer import IntakeWriter, KnownPings, Refused, Submission, ingest_now
from tenure.operations.http import health
from tenure.web import routes as web

# what a token needs to post payloads (accounts/users.py PERMISSIONS: its role's, bounded by its user's)
INTAKE = "intake.post"


MAX_BODY = 10 * 1024 * 1024  # an intake payload
PING_BODY = 10 * 1024  # what a check-in keeps of its body (the job's log), like Healthchecks
READS_DECISIONS = "read"  # what a token needs to see `?wait=true`'s decisions (clients, agreements, coverage)

Wait = Annotated[
    bool,
    Query(
        description="Process at once, then answer: the decisions for a token that may read them (owner, "
        "technician), the count of each decision for an intake token. Default: stored, the worker processes it."
    ),
]
RETRY_AFTER = 5  # seconds: how long a sender is asked to wait when the database could not store its payload
UNAVAILABLE = (
    "The database could not store the payload now (busy or unreachable): nothing was stored. "
    f"`Retry-After` says when to send it again ({RETRY_AFTER} s)."
)


def unavailable() -> HTTPException:
    """What a sender hears when storing failed for the database's sake, not the payload's: a busy SQLite
    write lock past its timeout, or a PostgreSQL that cannot be reached. Nothing was committed, so sending
    the same payload again is safe."""
    detail = "the database is busy or unreachable: nothing was stored; send the payload again"
    return HTTPException(503, f"{detail} in {RETRY_AFTER} s", headers={"Retry-After": str(RETRY_AFTER)})


INTAKE_ERRORS = problems.responses(
    401,
    403,
    413,
    422,
    503,
    descriptions={
        403: "The token may not post payloads.",
        413: f"The payload is larger than {MAX_BODY // (1024 * 1024)} MiB: nothing was stored.",
        422: "An empty payload, or a parameter that does not validate (`invalid-params`): nothing was stored.",
        503: UNAVAILABLE,
    },
)
BODIES = {  # what each intake endpoint reads: the request body of the OpenAPI document
    "alertmanager": ("application/json", "An Alertmanager webhook (version 4), as Alertmanager sends it."),
    "email": ("message/rfc822", "One raw RFC 822 message."),
    "event": ("application/json", "The generic JSON event (or a list of them)."),
    "tactical": ("application/json", "A Tactical RMM alert-action webhook body."),
    "restic": ("application/json", "The output of `restic backup --json` (JSON lines)."),
}


def _intake_doc(source: str) -> dict[str, Any]:
    media_type, description = BODIES[source]
    schema: dict[str, Any] = {"type": "string"} if media_type == "message/rfc822" else {}
    return {
        "requestBody": {"required": True, "description": description, "content": {media_type: {"schema": schema}}},
        "security": [{problems.BEARER: []}],
    }


class Receipt(BaseModel):
    """Intake's answer: the payload is stored (and, with `?wait=true`, processed)."""

    payload: int = Field(description="The stored payload's id.")
    state: Literal["stored", "processed"]
    decisions: list[Decision] | None = Field(None, description="`?wait=true`, for a token that may read them.")
    counts: dict[str, int] | None = Field(None, description="`?wait=true` for an intake token: decision -> count.")


class Health(BaseModel):
    status: Literal["ok", "stalled", "starting"] = Field(
        description="`starting` (503) for the first seconds of `tenure serve`, while the application is built"
    )
    unprocessed: int = Field(description="Payloads stored and not yet processed by the worker.")
    oldest_unprocessed_seconds: int = Field(description="How long the oldest of them has waited (0 without one).")


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
        response = problem(exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    writers: list[IntakeWriter] = []

    def writer() -> IntakeWriter:
        if not writers:  # one per application: it owns the thread that commits intake in batches
            writers.append(IntakeWriter(db()))
        return writers[0]

    known: list[KnownPings] = []

    def known_ping(uuid: str) -> bool:
        if not known:  # per application, like the writer: its cache of the UUIDs found
            known.append(KnownPings(db()))
        return known[0](uuid)

    async def accept(request: Request, source: str, meta: dict[str, Any], wait: bool) -> JSONResponse:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # refused before its body is read
            raise HTTPException(401, "a valid API token is required (Authorization: Bearer …)")
        body = await _body(request)
        if not body:
            raise HTTPException(422, f"an empty {source} payload")
        submission = Submission(source, body, request.headers.get("content-type"), meta, token.strip(), INTAKE)
        try:
            if wait:  # stored and processed in one transaction, then answered
                done = await run_in_threadpool(ingest_now, db(), submission)
                answer: dict[str, Any] = {"payload": done.payload, "state": "processed"}
                if READS_DECISIONS in done.granted:
                    answer["decisions"] = [o.as_json() for o in done.outcomes]
                else:  # a machine's token: how it went, not whose alert it was
                    answer["counts"] = dict(Counter(o.decision for o in done.outcomes))
            else:
                payload = await asyncio.wrap_future(writer().submit(submission))  # stored and committed
                answer = {"payload": payload, "state": "stored"}
        except Refused as refused:
            raise HTTPException(refused.status, str(refused)) from None
        except OperationalError as exc:
            raise unavailable() from exc
        return JSONResponse(answer, status_code=202)

    def intake_endpoint(source: str) -> Callable[..., Coroutine[Any, Any, JSONResponse]]:
        async def endpoint(request: Request, wait: Wait = False) -> JSONResponse:
            return await accept(request, source, {}, wait)

        return endpoint

    for source, path in (
        ("alertmanager", "alertmanager"),
        ("email", "email"),
        ("event", "events"),
        ("tactical", "tactical"),
    ):
        app.post(
            f"/api/v1/intake/{path}",
            status_code=202,
            summary=f"Receive a {source} payload",
            tags=["intake"],
            response_model=Receipt,
            response_model_exclude_none=True,
            responses=INTAKE_ERRORS,
            openapi_extra=_intake_doc(source),
        )(intake_endpoint(source))

    @app.post(
        "/api/v1/intake/restic",
        status_code=202,
        tags=["intake"],
        summary="Receive restic backup --json output",
        response_model=Receipt,
        response_model_exclude_none=True,
        responses=INTAKE_ERRORS,
        openapi_extra=_intake_doc("restic"),
    )
    async def restic(
        request: Request,
        wait: Wait = False,
        job: str | None = None,
        host: str | None = None,
        client: str | None = None,
        exit_code: int | None = None,
    ) -> JSONResponse:
        meta = {
            k: v
            for k, v in {"job": job, "host": host, "client": client, "exit_code": exit_code}.items()
            if v is not None
        }
        return await accept(request, "restic", meta, wait)

    async def check_in(request: Request, uuid: str, signal: str | None) -> JSONResponse:
        # open like Healthchecks' ping URLs: the job's UUID is the secret, and only a job's UUID stores anything
        if not await run_in_threadpool(known_ping, uuid):
            request.state.ping_refused = True
            raise HTTPException(404, "no backup job checks in at this address")
        meta: dict[str, Any] = {"path": f"/ping/{uuid}" + (f"/{signal}" if signal else "")}
        body, size = await _ping_body(request)
        if size > len(body):  # the start of the log is what a person reads: the check-in itself is kept
            meta |= {"truncated": True, "body_bytes": size}
        submission = Submission("ping", body, request.headers.get("content-type"), meta, None, INTAKE)
        try:
            payload = await asyncio.wrap_future(writer().submit(submission))  # stored and committed
        except OperationalError as exc:
            raise unavailable() from exc
        return JSONResponse({"payload": payload, "state": "stored"})

    async def ping(request: Request, uuid: str) -> JSONResponse:
        return await check_in(request, uuid, None)

    async def ping_signal(request: Request, uuid: str, signal: str) -> JSONResponse:
        return await check_in(request, uuid, signal)

    ping_errors = problems.responses(
        404, 503, descriptions={404: "No backup job has this UUID: nothing was stored.", 503: UNAVAILABLE}
    )
    for method in ("GET", "POST"):
        extra: dict[str, Any] = {}
        if method == "POST":
            log = f"The job's output (optional), kept up to {PING_BODY // 1024} KiB."
            extra = {"requestBody": {"required": False, "description": log, "content": {"text/plain": {}}}}
        app.add_api_route(
            "/ping/{uuid}",
            ping,
            methods=[method],
            tags=["intake"],
            summary="Backup job check-in",
            operation_id=f"ping_{method.lower()}",
            response_model=Receipt,
            response_model_exclude_none=True,
            responses=ping_errors,
            openapi_extra=extra,
        )
        app.add_api_route(
            "/ping/{uuid}/{signal}",
            ping_signal,
            methods=[method],
            tags=["intake"],
            summary="Backup job start (/start), failure (/fail) or exit code (/<0-255>)",
            operation_id=f"ping_signal_{method.lower()}",
            response_model=Receipt,
            response_model_exclude_none=True,
            responses=ping_errors,
            openapi_extra=extra,
        )

    @app.get(
        "/healthz",
        tags=["operations"],
        response_model=Health,
        responses={
            503: {
                "model": Health,
                "description": "Stalled: payloads wait longer than the threshold; or starting: not ready yet.",
            }
        },
        summary="Health (open): 503 when intake has stalled",
    )
    def healthz() -> JSONResponse:
        answer, status = health(db())
        return JSONResponse(answer, status_code=status)

    v1.install(app, db)  # REST API v1: clients, agreements, time, invoices, alerts, tickets, runs, reports
    web.install(app, db)  # pages, log-in, static assets
    docs.install(app)  # /docs: the API's interactive documentation, served offline
    operations.install(app, db)  # /metrics, JSON request logs, problem details for every error
    app.include_router(notices_router(db))  # signed-link pages and calendar feeds (no account)
    problems.install(app)  # /openapi.json says what the server answers
    return app


def _too_large(request: Request, limit: int) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > limit


async def _body(request: Request) -> bytes:
    """The body, read up to MAX_BODY: a larger one is refused without being held in memory."""
    refusal = HTTPException(413, f"payloads are limited to {MAX_BODY // (1024 * 1024)} MiB")
    if _too_large(request, MAX_BODY):
        raise refusal
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise refusal
        chunks.append(chunk)
    return b"".join(chunks)


async def _ping_body(request: Request) -> tuple[bytes, int]:
    """The first PING_BODY bytes of a check-in's body, and the body's size (read up to MAX_BODY, beyond
    which the rest is left unread)."""
    kept = bytearray()
    size = 0
    async for chunk in request.stream():
        if len(kept) < PING_BODY:
            kept += chunk[: PING_BODY - len(kept)]
        size += len(chunk)
        if size > MAX_BODY:
            break
    declared = request.headers.get("content-length", "")
    return bytes(kept), max(size, int(declared) if declared.isdigit() else 0)
