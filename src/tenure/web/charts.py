"""Charts as inline SVG: no script, no external library, readable without colour (every bar is labelled).

Each chart has a title (what it counts, for a screen reader too), its axis drawn, and the axis named (`axis`:
"clients", "amount invoiced"). A chart whose bars are links is a group of links, not an image (an image may
not hold links a keyboard reaches)."""

from __future__ import annotations

from collections.abc import Callable
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


def _open(width: int, height: int, title: str, linked: bool) -> str:
    role = "group" if linked else "img"
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="{role}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def bars(
    items: list[tuple[str, Number]],
    link: str | None = None,
    money: bool = False,
    title: str = "bar chart",
    axis: str | None = None,
    shown: Callable[[str], str] = str,
) -> Markup:
    """Horizontal bars, one per (label, value); `link` formats each bar's target with {label}; `axis` names
    what the bars measure (written under them); `shown` writes a label as a person reads it (a code as words)."""
    top = max((v for _, v in items), default=0) or 1
    plot = ROW * len(items) + 4
    height = plot + (18 if axis else 0)
    room = WIDTH - LABEL - 70
    parts = [
        _open(WIDTH, height, title, bool(link)),
        f'<line x1="{LABEL}" y1="0" x2="{LABEL}" y2="{plot}" class="chart-axis"/>',
    ]
    if axis:
        parts.append(f'<text x="{LABEL}" y="{height - 4}" class="chart-axis-label">{escape(axis)} →</text>')
    for i, (label, value) in enumerate(items):
        y = i * ROW + 2
        width = max(0.0, room * float(value) / float(top))
        text = escape(shown(str(label)))
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


def columns(
    items: list[tuple[str, Number]],
    money: bool = False,
    height: int = 160,
    title: str = "column chart",
    axis: str | None = None,
) -> Markup:
    """Vertical columns, one per (label, value), labelled below and valued above; `axis` names what the
    columns measure (written above them)."""
    top = max((v for _, v in items), default=0) or 1
    n = max(1, len(items))
    step = WIDTH / n
    room = height - 44 - (14 if axis else 0)
    parts = [
        _open(WIDTH, height, title, False),
        f'<line x1="0" y1="{height - 22}" x2="{WIDTH}" y2="{height - 22}" class="chart-axis"/>',
    ]
    if axis:
        parts.append(f'<text x="0" y="11" class="chart-axis-label">↑ {escape(axis)}</text>')
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
