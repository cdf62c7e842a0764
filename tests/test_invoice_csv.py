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
