"""What an operator sees of the HTTP side: metrics, request logs, and errors as problem details.

- `/metrics` (open, like `/healthz`): Prometheus text format. `tenure_http_requests_total{method,route,
  status}` and `tenure_http_request_duration_seconds{method,route}` (a histogram) per route template, so
  `/api/v1/invoices/2026-00001` counts under `/api/v1/invoices/{number}`; `tenure_intake_payloads_stored_total
  {source}` (payloads this process acknowledged: intake answers 2xx only once a payload is stored);
  `tenure_intake_payloads{state}` (read from the database at scrape time, so every process agrees: `stored`
  is the backlog the worker has yet to process, `quarantined` what could not be read or matched).
- One JSON line per request on stderr (logger `tenure.http`): time, method, path, route, status,
  duration_ms, actor (who, once known), client address, request id (`X-Request-ID` when sent).
- Every error is RFC 9457 problem details: a request that does not validate gets 422 with `invalid-params`
  (`name`, `in`, `reason` per field); unknown paths and methods 404/405. Pages (not `/api/...`) get the web
  app's HTML error page instead when it is installed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenure import __version__
from tenure.db.engine import Database
from tenure.intake.models import RawPayload

PROBLEM = "application/problem+json"
API_PREFIXES = ("/api/", "/ping/", "/healthz", "/metrics", "/openapi.json", "/docs", "/redoc")
INTAKE_PREFIX = "/api/v1/intake/"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
}

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
        self.registry.register(_Backlog(db))


class _Backlog:
    """Payloads by state, read from the database at scrape time (two index range counts)."""

    def __init__(self, db: Callable[[], Database]):
        self.db = db

    def describe(self) -> list[Any]:
        return [GaugeMetricFamily("tenure_intake_payloads", "Intake payloads by state.", labels=["state"])]

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "tenure_intake_payloads",
            "Intake payloads by state: stored (waiting for the worker) and quarantined (unreadable or unmatched).",
            labels=["state"],
        )
        with self.db().reader() as s:
            for state in ("stored", "quarantined"):
                n = s.scalar(select(func.count()).select_from(RawPayload).where(RawPayload.state == state))
                family.add_metric([state], float(n or 0))
        yield family


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
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            path = scope.get("path", "")
            if path.startswith(INTAKE_PREFIX) and 200 <= status < 300:
                self.metrics.stored.labels(path.removeprefix(INTAKE_PREFIX)).inc()
            headers = dict(scope.get("headers") or [])
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": method,
                        "path": path,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "actor": (scope.get("state") or {}).get("actor"),
                        "client": client[0] if client else None,
                        "request_id": headers.get(b"x-request-id", b"").decode("latin-1")[:100] or uuid.uuid4().hex,
                    }
                },
            )


# ---------------------------------------------------------------------------------------- problems


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _reason(error: dict[str, Any]) -> dict[str, str]:
    loc = [str(part) for part in error.get("loc", ())]
    where = loc[0] if loc else "request"
    name = ".".join(loc[1:]) or where
    return {"name": name, "in": where, "reason": str(error.get("msg", "is not valid"))}


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
        if _is_page(request):
            return request.app.state.html_errors(request, exc.status_code, str(exc.detail))
        response = problem(exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    app.state.version = __version__
