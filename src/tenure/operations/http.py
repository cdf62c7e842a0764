"""What an operator sees of the HTTP side: metrics, request logs, and errors as problem details.

- `/metrics` (open, like `/healthz`): Prometheus text format. `tenure_http_requests_total{method,route,
  status}` and `tenure_http_request_duration_seconds{method,route}` (a histogram) per route template, so
  `/api/v1/invoices/2026-00001` counts under `/api/v1/invoices/{number}` (a path no route matches counts as
  `unmatched`, a method other than the standard ones as `other`: the series stay bounded whatever is sent);
  `tenure_intake_payloads_stored_total{source}` (payloads this process acknowledged: intake answers 2xx
  only once a payload is stored); `tenure_intake_pings_refused_total` (check-ins at a UUID no backup job
  has: nothing stored); `tenure_intake_payloads{state}` (read from the database at scrape time, so every
  process agrees: `stored` is the backlog the worker has yet to process, `quarantined` what could not be
  read or matched), and from the same reading `tenure_intake_unprocessed_payloads` and
  `tenure_intake_oldest_unprocessed_seconds` (the age of the oldest stored payload, 0 without one: a
  stalled worker shows as a growing age; `/healthz` answers 503 past `TENURE_INTAKE_STALL_SECONDS`).
- One JSON line per request on stderr (logger `tenure.http`): time, method, path, route, status,
  duration_ms, actor (who, once known), client address, request id (`X-Request-ID` when sent). A path that
  is a credential (`/n/<token>`, `/calendar/<token>.ics`, `/ping/<uuid>`) is logged as a short prefix and
  `…`.
- Every error is RFC 9457 problem details (`api/problems.py`): a request that does not validate gets 422
  with `invalid-params` (`name`, `in`, `reason` per field); unknown paths and methods 404/405, a 405 with
  `Allow` naming every method the path takes. Pages (not `/api/...`) get the web app's HTML error page
  instead when it is installed.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenure import __version__, clock
from tenure.api.problems import API_PREFIXES, problem
from tenure.db.engine import Database
from tenure.intake.models import RawPayload
from tenure.settings import get_settings

INTAKE_PREFIX = "/api/v1/intake/"
# the methods counted under their own name: anything else a client sends is counted as `other`
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
# paths that are credentials: the signed link, the calendar feed's token, the job's UUID (a ping's secret)
SECRET_PATH = re.compile(r"(?P<head>/n/|/calendar/|/ping/)(?P<secret>[^/]+?)(?P<tail>\.ics)?(?P<rest>/.*)?")

log = logging.getLogger("tenure.http")


# -------------------------------------------------------------------------------------------- logs


class _JsonLines(logging.Handler):
    """Each record as one JSON object per line on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "event": record.getMessage(),
            }
            line.update(getattr(record, "fields", {}))
            sys.stderr.write(json.dumps(line, default=str) + "\n")
        except Exception:  # a log line must never break a request
            self.handleError(record)


def configure_logging() -> None:
    if not any(isinstance(h, _JsonLines) for h in log.handlers):
        log.addHandler(_JsonLines())
    log.setLevel(logging.INFO)
    log.propagate = False


def masked(path: str) -> str:
    """The path as the log shows it: a credential in it cut to a short prefix and `…`."""
    found = SECRET_PATH.fullmatch(path)
    if found is None:
        return path
    secret = found["secret"]
    shown = secret[: min(6, len(secret) // 2)]
    return f"{found['head']}{shown}…{found['tail'] or ''}{found['rest'] or ''}"


# ----------------------------------------------------------------------------------------- metrics


class Metrics:
    def __init__(self, db: Callable[[], Database]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tenure_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tenure_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.stored = Counter(
            "tenure_intake_payloads_stored",
            "Intake payloads this process stored and acknowledged, by source endpoint.",
            ["source"],
            registry=self.registry,
        )
        self.pings_refused = Counter(
            "tenure_intake_pings_refused",
            "Check-ins refused because no backup job has their UUID (nothing was stored).",
            registry=self.registry,
        )
        self.registry.register(_Backlog(db))


class Backlog(NamedTuple):
    unprocessed: int  # payloads stored and not yet processed
    oldest_seconds: float  # the age of the oldest of them (0 without one)


def intake_backlog(db: Database) -> Backlog:
    """The worker's backlog, read at once: a count over the `(state, id)` index's range of stored payloads,
    and the first of them in that index. Ids are drawn when a payload is stored, in the order payloads
    arrive, so the lowest stored id is the oldest payload waiting; its age is read from `clock.now()`."""
    waiting = RawPayload.state == "stored"
    with db.reader() as s:
        count = s.scalar(select(func.count()).select_from(RawPayload).where(waiting)) or 0
        first = s.scalar(select(RawPayload.received_at).where(waiting).order_by(RawPayload.id).limit(1))
    age = max(0.0, (clock.now() - first).total_seconds()) if first is not None else 0.0
    return Backlog(int(count), age)


def health(db: Database) -> tuple[dict[str, Any], int]:
    """`/healthz`'s answer and status: 503 `stalled` when the oldest payload waits longer than the threshold."""
    backlog = intake_backlog(db)
    stalled = backlog.oldest_seconds > get_settings().intake_stall_seconds
    answer = {
        "status": "stalled" if stalled else "ok",
        "oldest_unprocessed_seconds": int(backlog.oldest_seconds),
        "unprocessed": backlog.unprocessed,
    }
    return answer, 503 if stalled else 200


class _Backlog:
    """Payloads by state, read from the database at scrape time (index range counts, one index lookup)."""

    def __init__(self, db: Callable[[], Database]):
        self.db = db

    def describe(self) -> list[Any]:
        return [
            GaugeMetricFamily("tenure_intake_payloads", "Intake payloads by state.", labels=["state"]),
            GaugeMetricFamily("tenure_intake_unprocessed_payloads", "Intake payloads not yet processed."),
            GaugeMetricFamily("tenure_intake_oldest_unprocessed_seconds", "Age of the oldest unprocessed payload."),
        ]

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "tenure_intake_payloads",
            "Intake payloads by state: stored (waiting for the worker) and quarantined (unreadable or unmatched).",
            labels=["state"],
        )
        backlog = intake_backlog(self.db())
        with self.db().reader() as s:
            quarantined = s.scalar(
                select(func.count()).select_from(RawPayload).where(RawPayload.state == "quarantined")
            )
        family.add_metric(["stored"], float(backlog.unprocessed))
        family.add_metric(["quarantined"], float(quarantined or 0))
        yield family
        yield GaugeMetricFamily(
            "tenure_intake_unprocessed_payloads",
            "Intake payloads stored and not yet processed by the worker.",
            value=float(backlog.unprocessed),
        )
        yield GaugeMetricFamily(
            "tenure_intake_oldest_unprocessed_seconds",
            "Age of the oldest intake payload not yet processed (0 without one): it grows when the worker stalls.",
            value=backlog.oldest_seconds,
        )


def _template(scope: Scope) -> str:
    """The route template that answered (never the raw path: metric series stay bounded), or `unmatched`.
    FastAPI names its own routes in the scope; a plain Starlette route of the app (`/openapi.json`) is
    looked up again."""
    path = getattr(scope.get("route"), "path", None)
    if path is None and scope.get("endpoint") is not None:
        for candidate in getattr(scope.get("router"), "routes", ()):
            template = getattr(candidate, "path", None)
            if template and candidate.matches(scope)[0] is not Match.NONE:
                path = template
                break
    return path or "unmatched"


class Observe:
    """Pure ASGI middleware: a metric sample and a JSON log line for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            elapsed = time.perf_counter() - began
            route = _template(scope)
            method = scope.get("method", "")
            label = method if method in METHODS else "other"
            self.metrics.requests.labels(label, route, str(status)).inc()
            self.metrics.latency.labels(label, route).observe(elapsed)
            if route.startswith(INTAKE_PREFIX) and 200 <= status < 300:
                self.metrics.stored.labels(route.removeprefix(INTAKE_PREFIX)).inc()
            state = scope.get("state") or {}
            if state.get("ping_refused"):
                self.metrics.pings_refused.inc()
            headers = dict(scope.get("headers") or [])
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": method[:20],
                        "path": masked(scope.get("path", "")),
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "actor": state.get("actor"),
                        "client": client[0] if client else None,
                        "request_id": headers.get(b"x-request-id", b"").decode("latin-1")[:100] or uuid.uuid4().hex,
                    }
                },
            )


# ---------------------------------------------------------------------------------------- problems


def _reason(error: dict[str, Any]) -> dict[str, str]:
    loc = [str(part) for part in error.get("loc", ())]
    where = loc[0] if loc else "request"
    name = ".".join(loc[1:]) or where
    return {"name": name, "in": where, "reason": str(error.get("msg", "is not valid"))}


def _allowed(request: Request) -> str:
    """Every method the request's path takes (Starlette names only those of the first route matching it): each
    standard method asked of the app's routes, included routers too."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in sorted(METHODS)
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not any(path.startswith(p) for p in API_PREFIXES) and callable(
        getattr(request.app.state, "html_errors", None)
    )


def install(app: FastAPI, db: Callable[[], Database]) -> None:
    """Metrics, request logs and problem details for validation and routing errors."""
    configure_logging()
    metrics = Metrics(db)
    app.add_middleware(Observe, metrics=metrics)

    @app.get("/metrics", tags=["operations"], response_class=Response, summary="Prometheus metrics (open)")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
        params = [_reason(e) for e in exc.errors()]
        if _is_page(request):
            return request.app.state.html_errors(request, 422, "; ".join(f"{p['name']}: {p['reason']}" for p in params))
        detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params[:3]) or "the request does not validate"
        return problem(422, detail, **{"invalid-params": params})

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(request) or headers.get("Allow", "")
        if _is_page(request):
            response: Response = request.app.state.html_errors(request, exc.status_code, str(exc.detail))
        else:
            response = problem(exc.status_code, str(exc.detail))
        for name, value in headers.items():
            response.headers[name] = value
        return response

    app.state.version = __version__
