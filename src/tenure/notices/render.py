"""Notices and link pages from Jinja2 templates (`templates/`): an HTML and a plain-text body per notice
kind, in the MSP's name; `generic` serves a kind without its own. Pages are whole HTML documents with
inline styles and no external assets."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader, TemplateNotFound, select_autoescape
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"
log = logging.getLogger("tenure.notices")
_SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "EUR": "€", "GBP": "£"}


def money(value: Any, currency: str = "USD") -> str:
    """'$1,234.50' (or '1,234.50 CHF' for a currency without a symbol here)."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{amount:,.2f}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def hours(minutes: Any) -> str:
    """Minutes as hours and minutes: 90 → '1 h 30 min', 120 → '2 h', 45 → '45 min'."""
    total = int(minutes or 0)
    sign, total = ("-" if total < 0 else ""), abs(total)
    h, m = divmod(total, 60)
    if h and m:
        return f"{sign}{h} h {m:02d} min"
    return f"{sign}{h} h" if h else f"{sign}{m} min"


def long_date(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return f"{value.day} {value:%B %Y}"
    return str(value)


def paragraphs(text: str | None) -> Markup:
    """Plain text as HTML: blank lines separate paragraphs, lines starting with '- ' make a list."""
    blocks = re.split(r"\n\s*\n", (text or "").strip())
    out: list[str] = []
    for block in blocks:
        lines = block.splitlines()
        if lines and all(line.lstrip().startswith("- ") for line in lines):
            items = "".join(f"<li>{escape(line.lstrip()[2:])}</li>" for line in lines)
            out.append(f'<ul style="margin:0 0 14px 20px;padding:0">{items}</ul>')
        elif block:
            out.append(f'<p style="margin:0 0 14px">{"<br>".join(str(escape(line)) for line in lines)}</p>')
    return Markup("".join(out))


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]) if autoescape else False,
        undefined=ChainableUndefined,  # a field another part did not record renders empty, never fails a send
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters |= {"money": money, "hours": hours, "long_date": long_date, "paragraphs": paragraphs}
    return env


_ENV = _environment(True)


def _template(kind: str, extension: str) -> Any:
    try:
        return _ENV.get_template(f"{kind}.{extension}")
    except TemplateNotFound:
        return _ENV.get_template(f"generic.{extension}")


def has_template(kind: str) -> bool:
    return (TEMPLATES / f"{kind}.html").exists()


def render_notice(kind: str, context: dict[str, Any]) -> tuple[str, str]:
    """(plain text, HTML) of a notice of this kind; the generic template if the kind's cannot render."""
    try:
        text = _template(kind, "txt").render(**context)
        html = _template(kind, "html").render(**context)
    except Exception:
        if kind == "generic":
            raise
        log.exception("the %s template failed; the notice goes out with the generic one", kind)
        return render_notice("generic", context)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n", html


@dataclass
class Page:
    """A page answering a signed link."""

    status: int
    title: str
    message: str  # plain text, paragraphs
    msp_name: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)
    form: dict[str, Any] | None = None  # {"button", "note": label or None, "choices": [(value, label)], "field"}
    tone: str = "info"  # info | ok | warn | error


def render_page(page: Page) -> str:
    return _ENV.get_template("page.html").render(page=page)
