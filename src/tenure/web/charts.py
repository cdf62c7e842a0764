"""Charts as inline SVG: no script, no external library, readable without colour (every bar is labelled)."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from urllib.parse import quote

from markupsafe import Markup

ROW = 22
LABEL = 130
WIDTH = 420


Number = Decimal | float | int  # money stays Decimal: only the drawing is done in floats


def _number(value: Number, money: bool) -> str:
    return f"{value:,.2f}" if money else f"{value:,.0f}"


def bars(items: list[tuple[str, Number]], link: str | None = None, money: bool = False) -> Markup:
    """Horizontal bars, one per (label, value); `link` formats each bar's target with {label}."""
    top = max((v for _, v in items), default=0) or 1
    height = ROW * len(items) + 4
    room = WIDTH - LABEL - 70
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="bar chart">'
    ]
    for i, (label, value) in enumerate(items):
        y = i * ROW + 2
        width = max(0.0, room * float(value) / float(top))
        text = escape(str(label))
        bar = (
            f'<text x="{LABEL - 6}" y="{y + 15}" text-anchor="end" class="chart-label">{text}</text>'
            f'<rect x="{LABEL}" y="{y + 3}" width="{width:.1f}" height="{ROW - 6}" rx="2" class="chart-bar">'
            f"<title>{text}: {_number(value, money)}</title></rect>"
            f'<text x="{LABEL + width + 6:.1f}" y="{y + 15}" class="chart-value">{_number(value, money)}</text>'
        )
        if link:
            href = escape(link.format(label=quote(str(label))))
            bar = f'<a href="{href}">{bar}</a>'
        parts.append(bar)
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(items: list[tuple[str, Number]], money: bool = False, height: int = 160) -> Markup:
    """Vertical columns, one per (label, value), labelled below and valued above."""
    top = max((v for _, v in items), default=0) or 1
    n = max(1, len(items))
    step = WIDTH / n
    room = height - 44
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="column chart">'
    ]
    for i, (label, value) in enumerate(items):
        h = max(0.0, room * float(value) / float(top))
        x = i * step + step * 0.15
        w = step * 0.7
        y = height - 22 - h
        text = escape(str(label))
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="2" class="chart-bar">'
            f"<title>{text}: {_number(value, money)}</title></rect>"
            f'<text x="{x + w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="chart-label">{text}</text>'
            f'<text x="{x + w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" class="chart-value">'
            f"{_number(value, money)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
