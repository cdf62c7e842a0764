"""The owner's view as pages: profitability over a window of months, and the fit of catalog offers for a client.

Both need the `reports` permission (accounts/users.py: the owner only; margins and the labor cost are the
owner's figures). The pages read through `reports.service`, the same use cases as `tenure report
profitability` and `tenure report fit`, and draw their charts as inline SVG (no script, no style attribute:
the Content-Security-Policy allows neither inline). The fit replays every offer on the client's time, so it
is its own page, linked from the client page, never computed while the client page loads.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from tenure import clock
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError
from tenure.reports.service import fit_report, profitability_report
from tenure.web.common import PERIOD, Gate, Who, show

PERMISSION = "reports"
DEFAULT_MONTHS = 6  # the profitability page's default window: the last 6 complete months
FIT_MONTHS = 12  # the fit panel's window: the last 12 complete months
MAX_MONTHS = 36  # a page's window at most (the CLI and the API have no such limit)
SHOWN = 500  # clients listed on the page at most

# the pages of this module and the permission each needs (tests/test_web_owner.py walks it)
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/reports/profitability", PERMISSION),
    ("GET", "/clients/{key}/fit", PERMISSION),
]

# app.css's --bad and --muted, as presentation attributes (not style: the CSP's style-src holds); a shape so
# coloured has no `chart-bar` class, whose CSS fill would override the attribute
BAD = "#b42318"
MUTED = "#667085"


# ------------------------------------------------------------------------------------------ months


def _label(day: date) -> str:
    return day.strftime("%Y-%m")


def _months_back(day: date, n: int) -> date:
    index = day.year * 12 + day.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def last_complete_months(today: date, n: int) -> tuple[str, str]:
    """The last `n` whole months before today's month, as (first, last) YYYY-MM."""
    return _label(_months_back(today, n)), _label(_months_back(today, 1))


def _span(first: str, last: str) -> int:
    return (int(last[:4]) * 12 + int(last[5:7])) - (int(first[:4]) * 12 + int(first[5:7])) + 1


# ------------------------------------------------------------------------------------------ charts


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def margin_bars(rows: Sequence[tuple[str, str | None]], link: str = "#client-{label}") -> Markup:
    """Horizontal bars of each client's margin around a zero axis: a loss goes left, in red."""
    row, label_w, width = 22, 130, 460
    values = [(label, _dec(v)) for label, v in rows]
    low = min([Decimal(0)] + [v for _, v in values if v is not None])
    high = max([Decimal(0)] + [v for _, v in values if v is not None])
    span = (high - low) or Decimal(1)
    room = width - label_w - 80
    zero = label_w + float((-low) / span) * room
    height = row * len(values) + 4
    parts = [
        f'<svg class="chart margins" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="group" '
        f'aria-label="margin per client">'
        f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height}" stroke="{MUTED}" stroke-width="1"/>'
    ]
    for i, (label, value) in enumerate(values):
        y = i * row + 2
        text = escape(label)
        shown = "–" if value is None else f"{value:,.2f}"
        size = 0.0 if value is None else float(abs(value) / span) * room
        x = zero - size if value is not None and value < 0 else zero
        fill = f'class="chart-loss" fill="{BAD}"' if value is not None and value < 0 else 'class="chart-bar"'
        value_x = max(x, zero) + size + 6 if value is None or value >= 0 else zero + 6
        bar = (
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="chart-label">{text}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{size:.1f}" height="{row - 6}" rx="2" {fill}>'
            f"<title>{text}: margin {shown}</title></rect>"
            f'<text x="{value_x:.1f}" y="{y + 15}" class="chart-value">{shown}</text>'
        )
        parts.append(f'<a href="{escape(link.format(label=quote(label)))}">{bar}</a>')
    parts.append("</svg>")
    return Markup("".join(parts))


def rate_sparkline(months: Sequence[Mapping[str, Any]], target: str | None) -> Markup:
    """A small column per month of the effective hourly rate, beside a dashed line at the target rate; a
    month below the target is red, a month without time has no column (its title says so)."""
    width, height, pad = 12 * max(1, len(months)) + 4, 34, 2
    rates = [_dec(m.get("effective_rate")) for m in months]
    goal = _dec(target)
    top = max([r for r in rates if r is not None] + ([goal] if goal is not None else []) + [Decimal(1)])
    room = height - 2 * pad
    parts = [
        f'<svg class="chart spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="effective rate by month">'
    ]
    for i, (m, rate) in enumerate(zip(months, rates, strict=True)):
        x = pad + i * 12
        if rate is None:
            parts.append(
                f'<rect x="{x}" y="{height - pad - 1}" width="9" height="1" fill="{MUTED}">'
                f"<title>{escape(m['month'])}: no time</title></rect>"
            )
            continue
        h = max(1.0, float(rate / top) * room) if rate > 0 else 1.0
        below = goal is not None and rate < goal
        fill = f'class="chart-below" fill="{BAD}"' if below else 'class="chart-bar"'
        note = " (below target)" if below else ""
        parts.append(
            f'<rect x="{x}" y="{height - pad - h:.1f}" width="9" height="{h:.1f}" {fill}>'
            f"<title>{escape(m['month'])}: {rate:,.2f}/hour{note}</title></rect>"
        )
    if goal is not None:
        y = height - pad - float(goal / top) * room
        parts.append(
            f'<line x1="0" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="{MUTED}" stroke-width="1" '
            f'stroke-dasharray="3 2"><title>target {goal:,.2f}/hour</title></line>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def total_bars(actual: str, offers: Sequence[Mapping[str, Any]], best: str | None) -> Markup:
    """What the client paid beside what each offer would have cost it, one bar each."""
    row, label_w, width = 22, 170, 480
    items = [("invoiced or would invoice", Decimal(actual), False)] + [
        (o["offer"], Decimal(o["total"]), o["offer"] == best) for o in offers
    ]
    top = max([v for _, v, _ in items] + [Decimal(1)])
    room = width - label_w - 90
    height = row * len(items) + 4
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="what the client would pay">'
    ]
    for i, (label, value, mark) in enumerate(items):
        y = i * row + 2
        size = max(0.0, float(value / top) * room)
        text = escape(label + (" ★" if mark else ""))
        fill = f'class="chart-actual" fill="{MUTED}"' if i == 0 else 'class="chart-bar"'
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="chart-label">{text}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{size:.1f}" height="{row - 6}" rx="2" {fill}>'
            f"<title>{text}: {value:,.2f}</title></rect>"
            f'<text x="{label_w + size + 6:.1f}" y="{y + 15}" class="chart-value">{value:,.2f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def best_offer(offers: Sequence[Mapping[str, Any]]) -> str | None:
    """The offer under which the MSP's margin is highest (ties: the lower total, then the key), as the
    unpaid-work report's `best_margin` chooses; none without an offer."""
    if not offers:
        return None

    def rank(o: Mapping[str, Any]) -> tuple[Decimal, Decimal, str]:
        total = Decimal(o["total"])
        margin = total if o["margin"] is None else Decimal(o["margin"])
        return (-margin, total, o["offer"])

    return min(offers, key=rank)["offer"]


# ------------------------------------------------------------------------------------------ the router


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    Owner = Annotated[Who, Depends(Gate(db).page(PERMISSION))]

    @router.get("/reports/profitability", response_class=HTMLResponse)
    def profitability(
        request: Request,
        who: Owner,
        first: Annotated[str | None, Query(alias="from", max_length=7)] = None,
        last: Annotated[str | None, Query(alias="to", max_length=7)] = None,
    ) -> HTMLResponse:
        default_first, default_last = last_complete_months(clock.today(), DEFAULT_MONTHS)
        first, last = first or default_first, last or (first if first else default_last)
        report, problem = None, None
        if not PERIOD.fullmatch(first) or not PERIOD.fullmatch(last):
            problem = f"from {first!r} to {last!r}: each is YYYY-MM"
        elif _span(first, last) < 1:
            problem = f"the window ends ({last}) before it starts ({first})"
        elif _span(first, last) > MAX_MONTHS:
            problem = f"{_span(first, last)} months is more than this page shows ({MAX_MONTHS}); use the CLI or the API"
        else:
            try:
                report = profitability_report(db(), first, last)
            except TenureError as exc:
                problem = str(exc)
        rows: list[dict[str, Any]] = []
        chart = None
        if report is not None:
            target = report["target_effective_rate"]
            rows = [c | {"spark": rate_sparkline(c["months"], target)} for c in report["clients"][:SHOWN]]
            chart = margin_bars([(c["client"], c["margin"]) for c in rows]) if rows else None
        return show(
            request, who, "profitability.html", report=report, rows=rows, chart=chart, first=first, last=last,
            problem=problem, shown=SHOWN,
        )  # fmt: skip

    @router.get("/clients/{key}/fit", response_class=HTMLResponse)
    def fit(request: Request, key: str, who: Owner) -> HTMLResponse:
        first, last = last_complete_months(clock.today(), FIT_MONTHS)
        report, problem = None, None
        try:
            report = fit_report(db(), key, first, last)
        except NotFound:
            raise
        except TenureError as exc:
            problem = str(exc)
        best = best_offer(report["offers"]) if report else None
        chart = total_bars(report["actual"], report["offers"], best) if report else None
        return show(
            request, who, "fit.html", key=key, report=report, best=best, chart=chart, first=first, last=last,
            problem=problem,
        )  # fmt: skip

    return router
