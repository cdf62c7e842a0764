"""The invoice CSV opens in a spreadsheet as data: a cell that would run as a formula is escaped (OWASP: a
leading `'`), and money stays numbers, negative amounts included."""

from __future__ import annotations

import copy
import csv
from datetime import date

from tenure import clock
from tenure.billing import service
from tenure.book.service import import_book
from tests.test_billing import MANAGED, book

FORMULAS = ['=HYPERLINK("http://evil.example","pay here")', "+1+2", "-2+3", "@SUM(A1:A9)", "=1", "-"]


def test_the_invoice_csv_escapes_formulas_and_keeps_negative_amounts_numbers(db, cli, tmp_path):
    client = copy.deepcopy(MANAGED)
    client["time_entries"] = []
    # invoices from a former system: their numbers are free text
    client["invoices"] = [
        {"number": number, "date": f"2026-0{n + 1}-10", "total": "10.00"} for n, number in enumerate(FORMULAS)
    ]
    import_book(db, book(client))
    clock.set_now("2026-11-01T07:00:00Z")
    service.run_billing(db, "2026-11")
    clock.set_now("2026-11-16T09:00:00Z")
    final = service.final_invoice(db, "acme", date(2026, 11, 15))
    assert [line["amount"] for line in final["lines"]] == ["-600.00"]  # half of November credited

    target = tmp_path / "invoices.csv"
    cli("invoice", "export", str(target))
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    numbers = [row["number"] for row in rows if row["description"] == "imported invoice"]
    assert numbers == ["'" + number for number in FORMULAS]
    (credit,) = [row for row in rows if row["line_kind"] == "credit"]
    assert (credit["amount"], credit["unit_price"], credit["invoice_total"]) == ("-600.00", "-600.00", "-600.00")
    for row in rows:  # nothing else a spreadsheet would run
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), row
            assert not value.startswith("-") or value.replace(".", "", 1).lstrip("-").isdigit(), row


def test_an_invoice_downloads_as_pdf_and_csv_from_its_page_and_the_api_and_its_copy_has_a_way_back(db, monkeypatch):
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from tenure.accounts import users
    from tenure.accounts.users import create_user, create_user_token, log_in
    from tenure.api.app import create_app
    from tenure.web.routes import SESSION_COOKIE

    client = copy.deepcopy(MANAGED)
    client["time_entries"] = []
    import_book(db, book(client))
    clock.set_now("2026-11-01T07:00:00Z")
    number = service.run_billing(db, "2026-11").invoices[0]["number"]
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    create_user(db, "books", "a long enough password", "bookkeeper")
    token, _ = create_user_token(db, "books-token", None, "books")
    session = log_in(db, "books", "a long enough password", "127.0.0.1")
    expected = service.csv_text(service.csv_rows([service.get_invoice(db, number)]))
    with TestClient(create_app(db), cookies={SESSION_COOKIE: session.secret}) as http:
        page = http.get(f"/invoices/{number}")
        assert f'href="/invoices/{number}/pdf"' in page.text and f'href="/invoices/{number}/csv"' in page.text
        for source in (f"/invoices/{number}", f"/api/v1/invoices/{number}"):
            headers = {"Authorization": f"Bearer {token}"} if source.startswith("/api") else {}
            pdf = http.get(f"{source}/pdf", headers=headers)
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
            assert pdf.headers["content-disposition"] == f'attachment; filename="invoice-{number}.pdf"'
            lines = http.get(f"{source}/csv", headers=headers)
            assert lines.status_code == 200 and lines.headers["content-type"].startswith("text/csv")
            assert lines.text == expected and lines.text.startswith("number,client,kind")
            assert http.get(f"{source[:-len(number)]}NOPE-1/pdf", headers=headers).status_code == 404
        copy_page = http.get(f"/invoices/{number}/document")
        assert f'<a href="/invoices/{number}">← Back to invoice {number}</a>' in copy_page.text
