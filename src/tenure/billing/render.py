"""Invoices as HTML and PDF, both from one template (PDF through WeasyPrint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from tenure.agreements.service import msp_settings
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.money import grouped

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())
_env.filters["money"] = grouped  # the client's copy, as the pages: thousands separators


def invoice_html(db: Database, invoice: dict[str, Any]) -> str:
    with db.reader() as s:
        msp = msp_settings(s)
        client = s.scalars(select(Client).where(Client.key == invoice["client"])).one()
        return _env.get_template("invoice.html").render(invoice=invoice, client=client, msp=msp)


def invoice_pdf(db: Database, invoice: dict[str, Any]) -> bytes:
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: the system's Pango is missing
        raise TenureError(f"PDF needs WeasyPrint and Pango ({exc}); HTML works without them: use --html") from None
    pdf: bytes = HTML(string=invoice_html(db, invoice)).write_pdf()
    return pdf


def statement_html(statement: dict[str, Any]) -> str:
    """A statement of account (billing.mailing.statement) as the client gets it."""
    return _env.get_template("statement.html").render(st=statement)


def statement_pdf(statement: dict[str, Any]) -> bytes:
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: the system's Pango is missing
        raise TenureError(f"PDF needs WeasyPrint and Pango ({exc}); the statement's page works without them") from None
    pdf: bytes = HTML(string=statement_html(statement)).write_pdf()
    return pdf
