"""The dashboard (clients by class, the queue, low balances, unpaid work, invoiced months) and the full
unpaid-work report."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tenure import clock
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.web import charts, queries
from tenure.web.common import PERIOD, Gate, Who, show
from tenure.web.words import words

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/", "read"),
    ("GET", "/reports/unpaid", "read"),
]


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    Read = Annotated[Who, Depends(Gate(db).page("read"))]

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
            class_chart=charts.bars(
                [(k, v) for k, v in classes.items()],
                link="/clients?class={label}",
                title="clients by class",
                axis="number of clients",
                shown=words,
            ),
            low=queries.low_balances(db(), today, views),
            unpaid=unpaid,
            decision_chart=charts.bars(
                list(unpaid["decisions"].items()),
                link="/alerts?decision={label}",
                title="alerts this month by what became of them",
                axis="number of alerts",
                shown=words,
            ),
            month_chart=charts.columns(
                list(totals), money=True, title="amount invoiced per month", axis="amount invoiced"
            ),
            queue=queue,
            runs=queries.open_runs(db()),
        )

    @router.get("/reports/unpaid", response_class=HTMLResponse)
    def unpaid(
        request: Request,
        who: Read,
        period: Annotated[str | None, Query(max_length=7)] = None,
    ) -> HTMLResponse:
        period = period or clock.today().strftime("%Y-%m")
        report: dict[str, Any] | None = None
        problem: str | None = f"period {period!r} is not YYYY-MM"
        if PERIOD.fullmatch(period):
            try:
                report, problem = queries.unpaid_report_cached(db(), period), None
            except TenureError as exc:
                report, problem = None, str(exc)
        return show(request, who, "unpaid.html", report=report, period=period, problem=problem)

    return router
