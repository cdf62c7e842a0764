"""What every page shares: rendering, redirects with a flash message, the checks of a page and of a form,
the static assets and the security headers.

Sign-in opens a server-side session (accounts/users.py); every page needs the `read` permission and every
form its own. Every POST form carries the session's CSRF token in a hidden field `csrf`, checked before
anything else (`Gate.form`); the log-in form, which has no session yet, checks a double-submit cookie
instead (web/session.py). Changes run under `as_actor(user)` (`Principal.act`).

Pages are HTML + one CSS + one small JS file, all served by the package: no CDN, they work offline.
"""

import hashlib
import pathlib
import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tenure import __version__, clock
from tenure.accounts.users import Principal, csrf_ok, session_principal
from tenure.db.engine import Database
from tenure.maintenance.rules import describe_schedule
from tenure.money import grouped
from tenure.offboarding import service as offboarding
from tenure.web.words import MONEY_FIELDS, VOCABULARY_FIELDS, codes, spelled, words

HERE = pathlib.Path(__file__).parent
SESSION_COOKIE = "tenure_session"
LOGIN_CSRF_COOKIE = "tenure_login_csrf"
FLASH_COOKIE = "tenure_flash"
STATIC = {
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
PAGE_SIZE = 50
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
PERIOD = re.compile(r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$")  # YYYY-MM, years 1900 to 2999

Who = tuple[Principal, str]  # the signed-in user and the session's CSRF token

ROUTES: list[tuple[str, str, str | None]] = [("GET", "/static/{name}", None)]


class LoginRequired(Exception):
    pass


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


# ------------------------------------------------------------------------------------------ rendering


def _minutes(value: int | None) -> str:
    if value is None:
        return ""
    sign = "-" if value < 0 else ""
    value = abs(int(value))
    return f"{sign}{value // 60}:{value % 60:02d}"


def _brief(value: Any, width: int = 80, name: str | None = None) -> str:
    """A value of the change log in a few words: lists joined, nothing as a dash, long text cut; the value of
    a vocabulary field (`name`: kind, status, covers…) as words."""
    if value is None or value == "" or value == [] or value == {}:
        text = "–"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif name in VOCABULARY_FIELDS and isinstance(value, (str, list)):
        text = words(value)
    elif name in MONEY_FIELDS and isinstance(value, (str, int, float, Decimal)):
        text = money(value)
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{str(k).replace('_', ' ')} {_brief(v, width, str(k))}" for k, v in value.items())
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def paid_words(portions: list[dict[str, Any]] | None) -> str:
    """How a time entry is paid, in words, from its portions (`agreements.service.portion_json`): the layers of
    DOMAIN.md ("How an hour of work is paid") in order."""
    words = []
    for p in portions or ():
        minutes, layer = p["minutes"], p["layer"]
        if layer == "included":
            words.append(f"{minutes} min included ({p['agreement']})")
        elif layer == "block":
            words.append(f"{minutes} min from block {p['block']}")
        elif layer == "retainer":
            words.append(f"{minutes} min from the retainer ({money(p['amount'])})")
        else:
            kind = f", {p['line_kind']}" if p.get("line_kind") else ""
            words.append(f"{minutes} min billed at {money(p['rate'])}/h ({money(p['amount'])}{kind})")
    return "; ".join(words) or "nothing yet"


money = grouped  # an amount with thousands separators (tenure.money.grouped): everywhere money shows


def _static_version() -> str:
    digest = hashlib.sha256()
    for name in sorted(STATIC):
        digest.update((HERE / "static" / name).read_bytes())
    return digest.hexdigest()[:12]


def with_query(request: Request, **changes: Any) -> str:
    """The current page's URL with some parameters changed (None removes one); with its path, so a page shown
    in answer to a form (its URL the form's) still links to itself."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return request.url.path + ("?" + urlencode(params) if params else "")


env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["hm"] = _minutes
env.filters["brief"] = _brief
env.filters["paid"] = paid_words
env.filters["words"] = words
env.filters["codes"] = codes
env.filters["spelled"] = spelled
env.filters["money"] = money
env.filters["schedule"] = describe_schedule  # a maintenance task's RRULE or cron line, in words
env.globals["version"] = __version__
env.globals["PHASES"] = offboarding.PHASES
env.globals["with_query"] = with_query
STATIC_VERSION = _static_version()


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    principal: Principal | None = None,
    csrf: str | None = None,
    **context: Any,
) -> HTMLResponse:
    flash = request.cookies.get(FLASH_COOKIE)
    if principal is not None and "attention" not in context:
        context["attention"] = _attention(request)
    html = env.get_template(template).render(
        request=request,
        me=principal,
        csrf=csrf,
        flash=read_flash(flash),
        static_version=STATIC_VERSION,
        today=clock.today(),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    secure_headers(response)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _attention(request: Request) -> dict[str, int]:
    """The navigation's counts (web/shell.py), from the database the page's gate used; none without one."""
    db = getattr(request.state, "db", None)
    if db is None:
        return {}
    from tenure.web.shell import attention  # the shell's queries import this module

    try:
        return attention(db())
    except Exception:  # a count beside a link never costs the page itself
        return {}


def show(request: Request, who: Who, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page for the signed-in user (the nav, and the CSRF token its forms carry)."""
    return render(request, template, status_code, principal=who[0], csrf=who[1], **context)


def secure_headers(response: Response, csp: str = CSP) -> None:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def read_flash(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    kind, _, text = raw.partition(":")
    return {"kind": "error" if kind == "error" else "ok", "text": unquote(text)[:500]}


def redirect(url: str, message: str | None = None, error: bool = False) -> RedirectResponse:
    """See other (303), with a message the next page shows once: post/redirect/get."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(
            FLASH_COOKIE,
            f"{'error' if error else 'ok'}:{quote(message[:500])}",
            httponly=True,
            samesite="lax",
            path="/",
        )
    return response


def safe_next(target: str | None) -> str:
    """A local path to go back to, never another site (`//host`, `/\\host`, or with blanks browsers drop)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(c.isspace() or not c.isprintable() for c in target)
        or len(target) > 2000
    ):
        return "/"
    return target


def today_minus(days: int) -> date:
    return clock.today() - timedelta(days=days)


def this_period() -> str:
    return clock.today().strftime("%Y-%m")


def error_page(request: Request, status: int, detail: str) -> Response:
    """The HTML answer to a page's error (operations/http.py calls it for pages)."""
    if status == 401:
        return redirect(f"/login?next={quote(request.url.path)}")
    titles = {403: "Not allowed", 404: "Not found", 405: "Not allowed here", 422: "Not understood"}
    title = titles.get(status, "Something went wrong")
    who = _error_viewer(request)
    principal, csrf = who if who else (None, None)
    return render(
        request, "error.html", status_code=status, principal=principal, csrf=csrf, title=title, detail=detail,
        advice=ERROR_ADVICE.get(status, ERROR_ADVICE[500]), status=status,
    )


ERROR_ADVICE = {
    403: "Your role does not allow this. Ask the owner to change your role (Settings), or go back.",
    404: "It may have been renamed, archived or never existed. Search for it with the box above, or open the list.",
    405: "This address is a form's: open the page the form is on and send it from there.",
    422: "Something in the address or the form was not understood: go back, check what you typed and send again.",
    500: "Nothing was changed. Try again in a moment; if it happens again, tell the owner what you were doing.",
}


def _error_viewer(request: Request) -> Who | None:
    """Who sees an error page: the signed-in user, so the page keeps the navigation (none if not signed in)."""
    db = getattr(request.state, "db", None) or getattr(request.app.state, "web_db", None)
    if db is None:
        return None
    try:
        return Gate(db).signed_in(request)
    except Exception:  # an error page never fails for want of a session
        return None


# ------------------------------------------------------------------------------------------ the checks


class Gate:
    """Who may see a page or send a form: a session, the CSRF token of a form, the permission."""

    def __init__(self, db: Callable[[], Database]):
        self.db = db

    def signed_in(self, request: Request) -> Who | None:
        request.state.db = self.db  # the frame's counts and an error page's navigation read from it too
        found = session_principal(self.db(), request.cookies.get(SESSION_COOKIE))
        if found is None:
            return None
        request.state.actor = found.principal.actor
        return found.principal, found.csrf

    def page(self, permission: str) -> Any:
        """A dependency: the signed-in user, who must be allowed `permission`."""

        def check(request: Request) -> Who:
            found = self.signed_in(request)
            if found is None:
                raise LoginRequired()
            refuse_unless(found[0], permission)
            return found

        return check

    def form(self, permission: str) -> Any:
        """A dependency for a POST form: signed in, its CSRF token, then `permission`. The form's fields are
        left on `request.state.form` for endpoints that read more than their declared fields."""

        async def check(request: Request) -> Who:
            found = await run_in_threadpool(self.signed_in, request)
            if found is None:
                raise LoginRequired()
            data = await request.form()
            if not csrf_ok(found[1], str(data.get("csrf") or "")):
                raise Refused(403, "the form's security token is missing or stale: reload the page and try again")
            refuse_unless(found[0], permission)
            request.state.form = data
            return found

        return check


def refuse_unless(principal: Principal, permission: str) -> None:
    if not principal.may(permission):
        raise Refused(403, f"a {principal.role} may not do this (it needs {permission})")


# ------------------------------------------------------------------------------------------ static assets


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/static/{name}")
    def static(name: str, request: Request) -> Response:
        if name not in STATIC:
            raise Refused(404, f"no asset {name!r}")
        etag = f'"{STATIC_VERSION}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name], headers=headers)

    return router
