"""What every router of REST API v1 shares: authentication and permissions, paging, common parameters,
problem documents for the service layer's errors.

Each feature has its own router module (`api/clients.py`, `api/invoices.py`, …), a function
`router(api: Api) -> APIRouter` over the same `Api`: `api.db()` is the database, `api.require(permission)`
the dependency that authenticates the token and checks its right, `api.route(...)` declares an operation
with the permission it needs (listed as `x-permission` in `/openapi.json`).
"""

from collections.abc import Callable
from datetime import date as Date
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from tenure import clock
from tenure.accounts.users import Principal, token_principal
from tenure.api.problems import problem
from tenure.api.problems import responses as problem_responses
from tenure.db.engine import Database
from tenure.errors import Busy, Conflict, NotFound, Stale, TenureError, ValidationFailed
from tenure.web import queries

KEY = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
NUMBER = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
PERIOD = r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$"  # YYYY-MM, years 1900 to 2999
TEXT = r"^[^\x00]*$"
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL

bearer = HTTPBearer(auto_error=False, description="An API token: `tenure token create NAME --role ROLE [--user USER]`")

PROBLEMS = problem_responses(401, 403, 422)  # problem documents (application/problem+json)
NOT_FOUND = problem_responses(404)
WRITES = problem_responses(
    404,
    409,
    412,
    descriptions={
        409: "The object as it stands does not allow this (the detail says what to do instead).",
        412: "A stale write: the object changed since its `version` (or `If-Match` ETag) was read.",
    },
)


class PageMeta(BaseModel):
    total: int = Field(description="Rows matching the filters (capped at 10,000 unless count=exact).")
    total_exact: bool
    limit: int
    offset: int
    next_offset: int | None


Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
BigLimit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]  # what /alerts and /tickets always took
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")]
Count = Annotated[
    Literal["capped", "exact"], Query(description="`exact` counts every matching row (slower on big tables).")
]
ClientKey = Annotated[str | None, Query(min_length=1, max_length=100, pattern=KEY, description="A client's key.")]
PeriodQ = Annotated[str | None, Query(pattern=PERIOD, description="YYYY-MM")]


def invalid(name: str, where: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"loc": (where, name), "msg": reason, "type": "value_error"}])


def within_reason(day: Date, name: str, where: str) -> None:
    """Dates that drive allocation stay within ten years back and one year ahead of today."""
    today = clock.today()
    if not today - timedelta(days=3653) <= day <= today + timedelta(days=366):
        raise invalid(name, where, f"{day.isoformat()} is too far from today ({today.isoformat()})")


def page(name: str, found: queries.Page) -> dict[str, Any]:
    return {name: found.items} | found.meta()


class Api:
    """The database and the authentication every router of v1 uses."""

    def __init__(self, db: Callable[[], Database]):
        self.db = db

    def require(self, permission: str) -> Any:
        db = self.db

        def check(
            request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
        ) -> Principal:
            principal = token_principal(db(), credentials.credentials.strip()) if credentials else None
            if principal is None:
                raise HTTPException(401, "a valid API token is required (Authorization: Bearer …)")
            request.state.actor = principal.actor
            if not principal.may(permission):
                raise HTTPException(403, f"{principal.described} may not do this (needs {permission})")
            return principal

        return check

    def route(self, router: APIRouter, method: str, path: str, permission: str, **kwargs: Any) -> Callable[..., Any]:
        extra = {"x-permission": permission} | kwargs.pop("openapi_extra", {})
        return router.api_route(path, methods=[method], openapi_extra=extra, **kwargs)

    def router(self) -> tuple[APIRouter, Callable[..., Callable[[Any], Any]]]:
        """A feature's router, and `route(method, path, permission, **kwargs)` that declares its operations."""
        router = new_router()

        def route(method: str, path: str, permission: str, **kwargs: Any) -> Callable[[Any], Any]:
            return self.route(router, method, path, permission, **kwargs)

        return router, route

    def principal(self, permission: str) -> Any:
        """`Annotated[Principal, …]` for a parameter: the caller, allowed `permission`."""
        return Annotated[Principal, Depends(self.require(permission))]


class Decision(BaseModel):
    """Intake's decision on one alert (`intake.service.Outcome`): on an intake endpoint's receipt and a replay."""

    alert: int | None
    client: str | None
    device: str | None
    fingerprint: str
    decision: str = Field(description="ticket, quote, forward, suppress, orphaned, pending or quarantine")
    ticket: int | None
    reason: str
    payload: int
    status: str


def new_router() -> APIRouter:
    return APIRouter(prefix="/api/v1", responses=PROBLEMS)


# the service layer's refusals and the status each answers (a subclass is matched before its base)
STATUS_OF: dict[type[TenureError], int] = {NotFound: 404, Conflict: 409, Busy: 409, Stale: 412, TenureError: 422}


def install_problems(app: FastAPI) -> None:
    """The service layer's refusals as problem documents: nothing there (404), a field at fault (422,
    `invalid-params`), any other refusal (422), a conflict with the object as it stands (409), a stale write
    (412), a lock held too long (409)."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        status = next(STATUS_OF[kind] for kind in type(exc).__mro__ if kind in STATUS_OF)
        return problem(status, str(exc))

    for error in STATUS_OF:
        app.add_exception_handler(error, refused)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # a fault of ours, not the caller's: a script reading the API still gets a problem document (the error
        # itself goes to the server's log, as before), and a page the plain answer a browser shows
        if request.url.path.startswith("/api/"):
            return problem(500, "Tenure could not complete this request; the server's log has the error")
        return PlainTextResponse("Internal Server Error", status_code=500)

    @app.exception_handler(ValidationFailed)
    async def validation_failed(request: Request, exc: ValidationFailed) -> JSONResponse:
        params = []
        for text in exc.problems:
            name, sep, reason = text.partition(": ")
            params.append({"name": name if sep else "(body)", "in": "body", "reason": reason if sep else text})
        return problem(422, str(exc), **{"invalid-params": params})
