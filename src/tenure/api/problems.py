"""Problem details (RFC 9457), shared by every HTTP module: the one shape of an error, and how the OpenAPI
document says so.

- `problem(status, detail)` answers a problem document (`application/problem+json`).
- `ProblemDetails` is its schema (`type`, `title`, `status`, `detail`, and `invalid-params` on a 422).
- `responses(401, 403, ...)` is what a route passes as `responses=`: each status documented as a problem
  document, with the description of `DESCRIPTIONS` unless given.
- `install(app)` finishes the app's OpenAPI document: the schemas above in `components`, FastAPI's own 422
  (a list of pydantic errors, which the server never sends) replaced by the problem document the validation
  handler does send (operations/http.py), the bearer security scheme, and `security` on every `/api/v1`
  operation.

Paths under `API_PREFIXES` answer errors as problem documents; the others are pages, which answer the web
app's HTML error page instead (operations/http.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

PROBLEM = "application/problem+json"
API_PREFIXES = ("/api/", "/ping/", "/healthz", "/metrics", "/openapi.json", "/docs", "/redoc")
BEARER = "HTTPBearer"  # the security scheme's name in the document (FastAPI's, as REST API v1 always had)
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Payload Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
DESCRIPTIONS = {
    400: "The request cannot be read.",
    401: "No valid token (missing, unknown or revoked). The answer carries `WWW-Authenticate: Bearer`.",
    403: "The token's role may not do this.",
    404: "No such thing.",
    409: "A conflicting change: try again.",
    412: "A stale write: the object changed since it was read.",
    413: "The body is too large.",
    422: "The request does not validate: `invalid-params` names each field at fault (`name`, `in`, `reason`).",
    429: "Too many requests: try again later.",
    503: "The service cannot answer now.",
}
_REF = "#/components/schemas/"


class InvalidParam(BaseModel):
    """One field at fault."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(description="The field, dotted for a nested one (`lines.0.amount`).")
    in_: str = Field(alias="in", description="Where it is: `path`, `query`, `header` or `body`.")
    reason: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, the body of every error of the API (`application/problem+json`)."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = Field("about:blank", description="Always `about:blank`: the status says what kind of error.")
    title: str = Field(description="The status's name (`Not Found`).")
    status: int
    detail: str = Field(description="What was wrong, for a person.")
    invalid_params: list[InvalidParam] | None = Field(
        None, alias="invalid-params", description="On a 422: each field at fault."
    )


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    """A problem document answer (`extra`: more members, e.g. `invalid-params`; `title` overrides the
    status's name)."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse({**body, **extra}, status_code=status, media_type=PROBLEM)


def problem_response(description: str, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One documented response whose body is a problem document."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": f"{_REF}ProblemDetails"}}},
    }
    if headers:
        response["headers"] = dict(headers)
    return response


def responses(*statuses: int, descriptions: Mapping[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status a problem document (`descriptions` override `DESCRIPTIONS`)."""
    described = {**DESCRIPTIONS, **(descriptions or {})}
    wanted = [*statuses, *(s for s in (descriptions or {}) if s not in statuses)]
    out: dict[int | str, dict[str, Any]] = {}
    for status in wanted:
        headers = None
        if status == 401:
            headers = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
        out[status] = problem_response(described.get(status, TITLES.get(status, "Error")), headers)
    return out


def html_response(description: str) -> dict[str, Any]:
    """One documented response whose body is an HTML page (the pages behind links, errors of pages)."""
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _schemas() -> dict[str, Any]:
    schema = ProblemDetails.model_json_schema(ref_template=_REF + "{model}", by_alias=True)
    defs = schema.pop("$defs", {})
    return {**defs, "ProblemDetails": schema}


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def _operations(doc: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in methods and isinstance(operation, dict):
                yield path, method, operation


def _uses(doc: Any, ref: str) -> bool:
    if isinstance(doc, dict):
        return doc.get("$ref") == ref or any(_uses(v, ref) for v in doc.values())
    if isinstance(doc, list):
        return any(_uses(v, ref) for v in doc)
    return False


def _free(parameter: dict[str, Any]) -> bool:
    """A parameter no value of which fails validation: an unconstrained string, present when required."""
    schema = parameter.get("schema", {})
    return (
        schema.get("type") == "string"
        and set(schema) <= {"type", "title", "description"}
        and (parameter.get("in") == "path" or not parameter.get("required"))
    )


def finish(doc: dict[str, Any], bodiless: frozenset[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """Make the document say what the server answers (in place; returns it). `bodiless`: the (path, method)
    of operations whose body FastAPI does not validate: FastAPI's 422 is dropped from those whose parameters
    cannot fail validation either (a token or a UUID in the path), since none is ever sent."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_schemas())
    components.setdefault("securitySchemes", {}).setdefault(
        BEARER,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `tenure token create NAME --role ROLE [--user USER]`",
        },
    )
    validation = {"$ref": f"{_REF}HTTPValidationError"}
    for path, method, operation in _operations(doc):
        answers = operation.setdefault("responses", {})
        default = answers.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
        for answer in answers.values():  # `"model": ProblemDetails` lands under the route's own media type
            content = answer.get("content", {})
            if content.get("application/json", {}).get("schema") == {"$ref": f"{_REF}ProblemDetails"}:
                content[PROBLEM] = content.pop("application/json")
        never = (path, method) in bodiless and all(_free(p) for p in operation.get("parameters", []))
        if default == validation and never:
            del answers["422"]
        elif default == validation:  # FastAPI's own: the handler sends a problem document (a page: HTML)
            answers["422"] = (
                problem_response(DESCRIPTIONS[422])
                if _is_api(path)
                else html_response("The request does not validate (an HTML page).")
            )
        if path.startswith("/api/v1/") and not operation.get("security"):
            operation["security"] = [{BEARER: []}]
    for name in ("HTTPValidationError", "ValidationError"):  # in this order: the first refers to the second
        rest = {**doc, "components": {**components, "schemas": {k: v for k, v in schemas.items() if k != name}}}
        if name in schemas and not _uses(rest, _REF + name):
            del schemas[name]
    return doc


def install(app: FastAPI) -> None:
    """Finish the app's OpenAPI document (`finish`) when it is first built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            bodiless = frozenset(
                (route.path_format, method.lower())
                for route in app.routes
                if isinstance(route, APIRoute) and route.body_field is None
                for method in route.methods or ()
            )
            app.openapi_schema = finish(build(), bodiless)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
