"""The web app: server-rendered pages over the same services as the CLI and the API.

Sign-in opens a server-side session (accounts/users.py); every page needs the `read` permission and every
form its own (`ROUTES` below is the table, walked by tests/test_web.py). Every POST form carries the
session's CSRF token in a hidden field `csrf`, checked before anything else; the log-in form, which has no
session yet, checks a double-submit cookie instead. Changes run under `as_actor(user)`.

Pages are HTML + one CSS + one small JS file (keyboard shortcuts), all served by the package: no CDN, they
work offline. Charts are inline SVG (web/charts.py). Lists are paginated (web/queries.py).
"""

import hashlib
import pathlib
import re
import secrets
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tenure import __version__, clock
from tenure.accounts.users import (
    LIFETIME,
    BadCredentials,
    Principal,
    TooManyAttempts,
    any_user,
    csrf_ok,
    log_in,
    log_out,
    session_principal,
)
from tenure.agreements.service import log_time
from tenure.billing.render import invoice_html
from tenure.billing.service import change_status, get_invoice, run_billing
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError
from tenure.offboarding import service as offboarding
from tenure.vocabulary import CLIENT_CLASSES, SERVICES
from tenure.web import charts, queries
from tenure.web.tickets import change_ticket

HERE = pathlib.Path(__file__).parent
SESSION_COOKIE = "tenure_session"
LOGIN_CSRF_COOKIE = "tenure_login_csrf"
FLASH_COOKIE = "tenure_flash"
STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
PAGE_SIZE = 50
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
PERIOD = re.compile(r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$")  # YYYY-MM, years 1900 to 2999

# every page and form, and the permission it needs (None: open). tests/test_web.py walks this table.
ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/login", None),
    ("POST", "/login", None),
    ("POST", "/logout", "read"),
    ("GET", "/", "read"),
    ("GET", "/clients", "read"),
    ("GET", "/clients/{key}", "read"),
    ("POST", "/clients/{key}/time", "time.log"),
    ("GET", "/triage", "read"),
    ("POST", "/tickets/{ticket}/{action}", "tickets.work"),
    ("GET", "/alerts", "read"),
    ("GET", "/time", "read"),
    ("GET", "/billing", "read"),
    ("POST", "/billing/run", "billing.run"),
    ("POST", "/billing/issue", "invoices.change"),
    ("GET", "/invoices/{number}", "read"),
    ("GET", "/invoices/{number}/document", "read"),
    ("POST", "/invoices/{number}/{action}", "invoices.change"),
    ("GET", "/offboarding", "read"),
    ("GET", "/offboarding/{run}", "read"),
    ("POST", "/offboarding/{run}/done", "offboarding.work"),
    ("POST", "/offboarding/{run}/retry", "offboarding.work"),
    ("POST", "/offboarding/{run}/continue", "offboarding.work"),
    ("POST", "/offboarding/{run}/approve", "offboarding.decide"),
    ("POST", "/offboarding/{run}/skip", "offboarding.decide"),
    ("GET", "/reports/unpaid", "read"),
    ("GET", "/static/{name}", None),
]


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


def _static_version() -> str:
    digest = hashlib.sha256()
    for name in sorted(STATIC):
        digest.update((HERE / "static" / name).read_bytes())
    return digest.hexdigest()[:12]


env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["hm"] = _minutes
env.globals["version"] = __version__
env.globals["PHASES"] = offboarding.PHASES


def _query(request: Request, **changes: Any) -> str:
    """The current URL's query with some parameters changed (None removes one)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + urlencode(params) if params else request.url.path


env.globals["with_query"] = _query


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    principal: Principal | None = None,
    csrf: str | None = None,
    **context: Any,
) -> HTMLResponse:
    flash = request.cookies.get(FLASH_COOKIE)
    html = env.get_template(template).render(
        request=request,
        me=principal,
        csrf=csrf,
        flash=_read_flash(flash),
        static_version=STATIC_VERSION,
        today=clock.today(),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    _secure_headers(response)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _secure_headers(response: Response, csp: str = CSP) -> None:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def _read_flash(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    kind, _, text = raw.partition(":")
    from urllib.parse import unquote

    return {"kind": "error" if kind == "error" else "ok", "text": unquote(text)[:500]}


def redirect(url: str, message: str | None = None, error: bool = False) -> RedirectResponse:
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


def _safe_next(target: str | None) -> str:
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


STATIC_VERSION = _static_version()


# ------------------------------------------------------------------------------------------ the router


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def signed_in(request: Request) -> tuple[Principal, str] | None:
        found = session_principal(db(), request.cookies.get(SESSION_COOKIE))
        if found is None:
            return None
        request.state.actor = found.principal.actor
        return found.principal, found.csrf

    def page(permission: str) -> Any:
        def check(request: Request) -> tuple[Principal, str]:
            found = signed_in(request)
            if found is None:
                raise LoginRequired()
            if not found[0].may(permission):
                raise Refused(403, f"a {found[0].role} may not do this (it needs {permission})")
            return found

        return check

    def form(permission: str) -> Any:
        async def check(request: Request) -> tuple[Principal, str]:
            found = await run_in_threadpool(signed_in, request)
            if found is None:
                raise LoginRequired()
            data = await request.form()
            if not csrf_ok(found[1], str(data.get("csrf") or "")):
                raise Refused(403, "the form's security token is missing or stale: reload the page and try again")
            if not found[0].may(permission):
                raise Refused(403, f"a {found[0].role} may not do this (it needs {permission})")
            return found

        return check

    Read = Annotated[tuple[Principal, str], Depends(page("read"))]

    def show(request: Request, who: tuple[Principal, str], template: str, **context: Any) -> HTMLResponse:
        return render(request, template, principal=who[0], csrf=who[1], **context)

    # --------------------------------------------------------------------------------- static assets

    @router.get("/static/{name}")
    def static(name: str, request: Request) -> Response:
        if name not in STATIC:
            raise Refused(404, f"no asset {name!r}")
        etag = f'"{STATIC_VERSION}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name], headers=headers)

    # ---------------------------------------------------------------------------------- log-in/out

    def login_page(request: Request, status: int = 200, error: str | None = None, username: str = "") -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        response = render(
            request,
            "login.html",
            status_code=status,
            login_csrf=token,
            error=error,
            username=username,
            next=_safe_next(request.query_params.get("next")),
            first_run=not any_user(db()),
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/login",
        )
        return response

    @router.get("/login")
    def login_form(request: Request) -> Response:
        if signed_in(request) is not None:
            return redirect(_safe_next(request.query_params.get("next")))
        return login_page(request)

    @router.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=100)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        csrf: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
            return login_page(request, 403, "the log-in form expired: try again", username)
        ip = request.client.host if request.client else "unknown"
        try:
            opened = log_in(db(), username, password, ip, request.headers.get("user-agent"))
        except TooManyAttempts as exc:
            response = login_page(request, 429, str(exc), username)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except BadCredentials as exc:
            return login_page(request, 401, str(exc), username)
        request.state.actor = opened.principal.actor
        response = redirect(_safe_next(next))
        response.set_cookie(
            SESSION_COOKIE,
            opened.secret,
            max_age=int(LIFETIME.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @router.post("/logout")
    def logout(request: Request, who: Annotated[tuple[Principal, str], Depends(form("read"))]) -> Response:
        log_out(db(), request.cookies.get(SESSION_COOKIE))
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ---------------------------------------------------------------------------------- dashboard

    @router.get("/", response_class=HTMLResponse)
    def dashboard(request: Request, who: Read) -> HTMLResponse:
        today = clock.today()
        views = queries.all_views(db(), today)
        classes = queries.class_counts(views)
        unpaid = queries.unpaid_this_month(db(), today)
        totals = queries.invoice_totals_by_month(db(), 6, today)
        queue = queries.tickets_page(db(), queue=True, limit=10)
        return show(
            request,
            who,
            "dashboard.html",
            classes=classes,
            clients=len(views),
            class_chart=charts.bars([(k, v) for k, v in classes.items()], link="/clients?class={label}"),
            low=queries.low_balances(db(), today, views),
            unpaid=unpaid,
            decision_chart=charts.bars(list(unpaid["decisions"].items()), link="/alerts?decision={label}"),
            month_chart=charts.columns(list(totals), money=True),
            queue=queue,
            runs=queries.open_runs(db()),
        )

    # ---------------------------------------------------------------------------------- clients

    @router.get("/clients", response_class=HTMLResponse)
    def clients(
        request: Request,
        who: Read,
        klass: Annotated[str | None, Query(alias="class", max_length=20)] = None,
        q: Annotated[str | None, Query(max_length=100)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        klass = klass if klass in CLIENT_CLASSES else None
        found = queries.clients_page(db(), clock.today(), klass, q, PAGE_SIZE, offset)
        return show(request, who, "clients.html", page=found, klass=klass, q=q or "", classes=CLIENT_CLASSES)

    @router.get("/clients/{key}", response_class=HTMLResponse)
    def client(
        request: Request,
        key: str,
        who: Read,
        ledger: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        devices: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        today = clock.today()
        view, device_count = queries.client_view(db(), key, today)
        return show(
            request,
            who,
            "client.html",
            client=view,
            device_count=device_count,
            ledger=queries.ledger_page(db(), key, today, PAGE_SIZE, ledger),
            devices=queries.devices_page(db(), key, PAGE_SIZE, devices),
            alerts=queries.alerts_page(db(), key, limit=20),
            time=queries.time_page(db(), key, limit=20),
            invoices=queries.invoices_page(db(), key, limit=20),
            tickets=queries.tickets_page(db(), key, queue=True, limit=20),
            runs=queries.runs_page(db(), key, limit=5),
            services=SERVICES,
        )

    @router.post("/clients/{key}/time")
    def client_time(
        request: Request,
        key: str,
        who: Annotated[tuple[Principal, str], Depends(form("time.log"))],
        minutes: Annotated[int, Form(ge=1, le=1440)],
        work_type: Annotated[str, Form(max_length=30)],
        day: Annotated[date | None, Form()] = None,
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        back = f"/clients/{quote(key)}"
        if day is not None and not today_minus(3653) <= day <= today_minus(-366):
            return redirect(back, f"{day} is too far from today", error=True)
        try:
            logged = who[0].act(log_time, db(), key, minutes, work_type, day, who[0].username, note.strip() or None)
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        paid = ", ".join(f"{p['minutes']} min {p['layer']}" for p in logged.portions) or "nothing yet"
        return redirect(back, f"logged {logged.minutes} min of {logged.work_type} on {logged.date}: {paid}")

    # ---------------------------------------------------------------------------------- triage

    @router.get("/triage", response_class=HTMLResponse)
    def triage(
        request: Request,
        who: Read,
        client: Annotated[str | None, Query(max_length=100)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        try:
            found = queries.tickets_page(db(), client or None, queue=True, limit=PAGE_SIZE, offset=offset)
        except NotFound:
            found = queries.Page([], 0, True, PAGE_SIZE, offset)
        return show(request, who, "triage.html", page=found, client=client or "")

    @router.post("/tickets/{ticket}/{action}")
    def ticket_action(
        request: Request,
        ticket: Annotated[int, Path(ge=1, le=MAX_ID)],
        action: str,
        who: Annotated[tuple[Principal, str], Depends(form("tickets.work"))],
        back: Annotated[str, Form(max_length=2000)] = "/triage",
    ) -> Response:
        try:
            done = who[0].act(change_ticket, db(), ticket, action)
        except TenureError as exc:
            return redirect(_safe_next(back), str(exc), error=True)
        return redirect(_safe_next(back), f"ticket #{done['ticket']} is {done['status']}")

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts(
        request: Request,
        who: Read,
        client: Annotated[str | None, Query(max_length=100)] = None,
        decision: Annotated[str | None, Query(max_length=20)] = None,
        status: Annotated[str | None, Query(max_length=20)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        found = queries.alerts_page(db(), client or None, decision or None, status or None, PAGE_SIZE, offset)
        return show(request, who, "alerts.html", page=found, client=client or "", decision=decision, status=status)

    @router.get("/time", response_class=HTMLResponse)
    def time_entries(
        request: Request,
        who: Read,
        client: Annotated[str | None, Query(max_length=100)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        found = queries.time_page(db(), client or None, limit=PAGE_SIZE, offset=offset)
        return show(request, who, "time.html", page=found, client=client or "")

    # ---------------------------------------------------------------------------------- billing

    @router.get("/billing", response_class=HTMLResponse)
    def billing(
        request: Request,
        who: Read,
        period: Annotated[str | None, Query(max_length=7)] = None,
        status: Annotated[str | None, Query(max_length=10)] = None,
        client: Annotated[str | None, Query(max_length=100)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        if period and not PERIOD.fullmatch(period):
            return show(
                request,
                who,
                "billing.html",
                page=queries.Page([], 0, True, PAGE_SIZE, offset),
                period=period,
                status=status,
                client=client,
                problem=f"period {period!r} is not YYYY-MM",
                next_period=_next_period(),
            )
        try:
            found = queries.invoices_page(db(), client or None, period or None, status or None, None, PAGE_SIZE, offset)
        except TenureError as exc:
            found = queries.Page([], 0, True, PAGE_SIZE, offset)
            return show(
                request,
                who,
                "billing.html",
                page=found,
                period=period,
                status=status,
                client=client,
                problem=str(exc),
                next_period=_next_period(),
            )
        return show(
            request,
            who,
            "billing.html",
            page=found,
            period=period,
            status=status,
            client=client,
            problem=None,
            next_period=_next_period(),
        )

    @router.post("/billing/run")
    def billing_run(
        request: Request,
        who: Annotated[tuple[Principal, str], Depends(form("billing.run"))],
        period: Annotated[str, Form(max_length=7)],
    ) -> Response:
        if not PERIOD.fullmatch(period):
            return redirect("/billing", f"period {period!r} is not YYYY-MM", error=True)
        start = date(int(period[:4]), int(period[5:7]), 1)
        if not today_minus(3653) <= start <= today_minus(-366):
            return redirect("/billing", f"{period} is too far from today", error=True)
        try:
            result = who[0].act(run_billing, db(), period).as_json()
        except TenureError as exc:
            return redirect("/billing", str(exc), error=True)
        return redirect(
            f"/billing?period={period}&status=draft",
            f"billing run {period}: {result['created']} invoice(s) made, total {result['total']}; "
            f"{result['already_invoiced']} client(s) already invoiced",
        )

    @router.post("/billing/issue")
    async def billing_issue(
        request: Request, who: Annotated[tuple[Principal, str], Depends(form("invoices.change"))]
    ) -> Response:
        data = await request.form()
        numbers = [str(n) for n in data.getlist("number")][: PAGE_SIZE * 2]
        back = _safe_next(str(data.get("back") or "/billing"))
        issued, problems = 0, []
        for number in numbers:
            try:
                await run_in_threadpool(who[0].act, change_status, db(), number, "issue")
                issued += 1
            except TenureError as exc:
                problems.append(str(exc))
        message = f"{issued} invoice(s) issued" + (f"; {len(problems)} refused: {problems[0]}" if problems else "")
        return redirect(back, message, error=bool(problems) and not issued)

    @router.get("/invoices/{number}", response_class=HTMLResponse)
    def invoice(request: Request, number: str, who: Read) -> HTMLResponse:
        return show(request, who, "invoice.html", invoice=get_invoice(db(), number))

    @router.get("/invoices/{number}/document", response_class=HTMLResponse)
    def invoice_document(request: Request, number: str, who: Read) -> HTMLResponse:
        response = HTMLResponse(invoice_html(db(), get_invoice(db(), number)))
        _secure_headers(response, CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"))
        return response

    @router.post("/invoices/{number}/{action}")
    def invoice_action(
        request: Request,
        number: str,
        action: str,
        who: Annotated[tuple[Principal, str], Depends(form("invoices.change"))],
    ) -> Response:
        back = f"/invoices/{quote(number)}"
        if action not in ("issue", "pay", "void"):
            raise Refused(404, f"no invoice action {action!r}")
        try:
            done = who[0].act(change_status, db(), number, action)
        except NotFound:
            raise
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back, f"invoice {done['number']} is {done['status']}")

    # ---------------------------------------------------------------------------------- offboarding

    @router.get("/offboarding", response_class=HTMLResponse)
    def runs(
        request: Request,
        who: Read,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        return show(request, who, "runs.html", page=queries.runs_page(db(), limit=PAGE_SIZE, offset=offset))

    @router.get("/offboarding/{run}", response_class=HTMLResponse)
    def run(
        request: Request,
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Read,
        phase: Annotated[int | None, Query(ge=1, le=7)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        return show(request, who, "run.html", run=queries.run_page(db(), run, phase, offset))

    def answer(run: int, verb: str, who: Principal, step: str, text: str | None) -> Response:
        back = f"/offboarding/{run}"
        try:
            _, message = who.act(offboarding.answer, db(), verb, queries.run_client(db(), run), step, text)
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back + f"#step-{quote(step)}", message)

    def step_answer(verb: str, permission: str, field: str | None) -> Callable[..., Response]:
        def endpoint(
            run: Annotated[int, Path(ge=1, le=MAX_ID)],
            who: Annotated[tuple[Principal, str], Depends(form(permission))],
            step: Annotated[str, Form(max_length=200)],
            note: Annotated[str, Form(max_length=2000)] = "",
            reason: Annotated[str, Form(max_length=2000)] = "",
        ) -> Response:
            text = {"note": note, "reason": reason}.get(field or "", "").strip() or None
            return answer(run, verb, who[0], step, text)

        endpoint.__name__ = f"offboarding_{verb}"
        return endpoint

    for verb, permission, field in (
        ("done", "offboarding.work", "note"),
        ("retry", "offboarding.work", None),
        ("approve", "offboarding.decide", "note"),
        ("skip", "offboarding.decide", "reason"),
    ):
        router.post(f"/offboarding/{{run}}/{verb}")(step_answer(verb, permission, field))

    @router.post("/offboarding/{run}/continue")
    def run_continue(
        request: Request,
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Annotated[tuple[Principal, str], Depends(form("offboarding.work"))],
    ) -> Response:
        back = f"/offboarding/{run}"
        try:
            status = who[0].act(offboarding.apply, db(), queries.run_client(db(), run), None)
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back, f"ran {status['ran']} step(s); the run is {status['state']}")

    # ---------------------------------------------------------------------------------- reports

    @router.get("/reports/unpaid", response_class=HTMLResponse)
    def unpaid(
        request: Request,
        who: Read,
        period: Annotated[str | None, Query(max_length=7)] = None,
    ) -> HTMLResponse:
        period = period or clock.today().strftime("%Y-%m")
        report, problem = None, f"period {period!r} is not YYYY-MM"
        if PERIOD.fullmatch(period):
            try:
                report, problem = queries.unpaid_report_cached(db(), period), None
            except TenureError as exc:
                report, problem = None, str(exc)
        return show(request, who, "unpaid.html", report=report, period=period, problem=problem)

    return router


def today_minus(days: int) -> date:
    return clock.today() - timedelta(days=days)


def _next_period() -> str:
    return clock.today().strftime("%Y-%m")


def error_page(request: Request, status: int, detail: str) -> Response:
    """The HTML answer to a page's error (operations/http.py calls it for pages)."""
    if status == 401:
        return redirect(f"/login?next={quote(request.url.path)}")
    titles = {403: "Not allowed", 404: "Not found", 405: "Not allowed here", 422: "Not understood"}
    title = titles.get(status, "Something went wrong")
    return render(request, "error.html", status_code=status, title=title, detail=detail)


def install(app: FastAPI, db: Callable[[], Database]) -> None:
    app.include_router(make_router(db))
    from tenure.web import owner  # the owner's pages (a local import: web/owner.py imports this module)
    app.include_router(owner.make_router(db))
    app.state.html_errors = error_page

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
