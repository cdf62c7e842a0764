"""The web app: server-rendered pages over the same services as the CLI and the API, one router per feature.

`install(app, db)` (called by api/app.py) includes every feature's router and answers a page's errors in
HTML. `ROUTES` is every page and form with the permission it needs (None: open), gathered from the feature
modules' own tables; tests/test_web.py walks it against every role.

    shell.py        the frame of every page: the search box's answers, the navigation's counts
    common.py       rendering, flash and redirects, the checks of a page and a form (CSRF), static assets
    session.py      log in, log out
    dashboard.py    the dashboard, the unpaid-work report
    clients.py      the client list (and a new client), a client's page in tabs, the client's own fields
    items.py        what a client holds, changed on its tabs: agreements, devices, contacts, sites,
                    vendor accounts, backup jobs, intake mapping rules; blocks bought, retainer deposits
    time.py         time entries; on a client's time tab: logging time, correcting it (edit, move, void),
                    charges (add, void)
    desk.py         the ticket queue with filters (my tickets, closed ones), a ticket's page and its forms
    quotes.py       a quote on a ticket, mailed to the client with signed Approve / Decline links
    triage.py       the triage queue, tickets' actions, alerts
    billing.py      billing runs, invoices
    offboarding.py  offboarding runs and their steps
    owner.py        the owner's view: profitability, the fit of catalog offers
    settings.py     the MSP's settings and its catalog of offers

Pages are HTML + one CSS + one small JS file (keyboard shortcuts), all served by the package: no CDN, they
work offline. Charts are inline SVG (web/charts.py). Lists are paginated (web/queries.py).
"""

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from tenure.db.engine import Database
from tenure.errors import NotFound
from tenure.web import (
    billing,
    clients,
    common,
    dashboard,
    desk,
    items,
    maintenance,
    offboarding,
    outbox,
    owner,
    quarantine,
    quotes,
    session,
    settings,
    shell,
    time,
    time_preview,
    triage,
    users,
)
from tenure.web.common import (
    FLASH_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginRequired,
    Refused,
    error_page,
    redirect,
    render,
)

# desk and quotes before triage: their /tickets/{n}/notes, /assign, /quote ... before triage's /tickets/{n}/{action}
FEATURES = (
    common, session, shell, dashboard, clients, items, time, time_preview, desk, quotes, triage, billing,
    offboarding, owner, maintenance, users, outbox, quarantine, settings,
)

# every page and form, and the permission it needs (None: open). tests/test_web.py walks this table.
ROUTES: list[tuple[str, str, str | None]] = [route for feature in FEATURES for route in feature.ROUTES]


def make_router(db: Callable[[], Database]) -> APIRouter:
    """Every feature's pages in one router (their routes themselves, in the features' order: one flat table
    to match a request against, and to walk)."""
    router = APIRouter(include_in_schema=False)
    for feature in FEATURES:
        router.routes.extend(feature.make_router(db).routes)
    return router


def install(app: FastAPI, db: Callable[[], Database]) -> None:
    app.include_router(make_router(db))
    app.state.html_errors = error_page
    app.state.web_db = db  # an error page finds who is signed in, to keep the navigation

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return error_page(request, exc.status, exc.detail)

    # a page's NotFound is an HTML 404; the API keeps its problem details (api/app.py)
    api_not_found = app.exception_handlers.get(NotFound)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api/") or api_not_found is None:
            if api_not_found is not None:
                return await api_not_found(request, exc)
            return Response(status_code=404)
        return error_page(request, 404, str(exc))


__all__ = [
    "FLASH_COOKIE",
    "LOGIN_CSRF_COOKIE",
    "ROUTES",
    "SESSION_COOKIE",
    "error_page",
    "install",
    "make_router",
    "redirect",
    "render",
]
