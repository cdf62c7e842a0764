"""The owner's pages (web/owner.py): profitability over a window and the fit of catalog offers, for the
owner only (the `reports` permission of accounts/users.py), with their figures straight from the report
services and their charts as inline SVG."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest

from tenure import clock
from tenure.accounts.users import PERMISSIONS
from tenure.book.service import import_book
from tenure.reports.service import fit_report, profitability_report
from tenure.web.common import money
from tenure.web.owner import ROUTES, best_offer, last_complete_months
from tests.books import small
from tests.test_web import STAFF, people, quick_hashes  # noqa: F401  (fixtures: signed-in users, quick hashes)

pytestmark = pytest.mark.db


def row_of(page: str, client: str) -> str:
    found = re.search(rf'<tr id="client-{client}"[^>]*>(.*?)</tr>', page, re.S)
    assert found, page[:3000]
    return found.group(0)


def test_the_default_window_is_the_last_complete_months():
    from datetime import date

    assert last_complete_months(date(2026, 11, 24), 6) == ("2026-05", "2026-10")
    assert last_complete_months(date(2026, 1, 1), 12) == ("2025-01", "2025-12")
    assert all(permission in PERMISSIONS for _, _, permission in ROUTES)


def test_the_owner_sees_profitability_with_the_reports_figures(people):  # noqa: F811
    db = people["db"]
    import_book(db, small())
    http, _ = people["signed"]["owner"]
    page = http.get("/reports/profitability")
    assert page.status_code == 200, page.text
    assert "2026-05 to 2026-10" in page.text
    report = profitability_report(db, "2026-05", "2026-10")
    assert report["clients"], report
    text = html.unescape(page.text)
    for c in report["clients"]:
        row = html.unescape(row_of(page.text, c["client"]))
        for field in ("revenue", "hours", "cost", "margin", "effective_rate"):
            if c[field] is not None:
                assert f">{c[field]}<" in row or f">{money(c[field])}<" in row, (field, row)  # money: 1,234.50
        assert ("below target" in row) == c["flagged"]
        assert ('class="flagged"' in row) == c["flagged"]
        assert row.count("<svg") == 1 and "effective rate by month" in row
        assert row.count("<rect") == len(c["months"])  # one column (or no-time mark) per month
    assert 'aria-label="margin per client"' in text
    assert "<script" not in page.text.split("</head>")[1]  # charts are SVG, no script
    assert "style=" not in page.text  # the CSP forbids inline style
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    # the nav links to it
    assert 'href="/reports/profitability"' in http.get("/").text

    one = http.get("/reports/profitability?from=2026-10&to=2026-10")
    october = profitability_report(db, "2026-10", "2026-10")
    for c in october["clients"]:
        assert f">{money(c['revenue'])}<" in row_of(one.text, c["client"])


def test_a_bad_window_is_explained_not_a_crash(people):  # noqa: F811
    http, _ = people["signed"]["owner"]
    for query in ("from=2026-13&to=2026-14", "from=2026-10&to=2026-01", "from=2020-01&to=2026-10"):
        page = http.get(f"/reports/profitability?{query}")
        assert page.status_code == 200 and 'class="flash error"' in page.text, query


def test_only_the_owner_may_see_the_owners_pages(people):  # noqa: F811
    import_book(people["db"], small())
    for role in STAFF:
        http, _ = people["signed"][role]
        for _, path, permission in ROUTES:
            answer = http.get(path.replace("{key}", "acme"), follow_redirects=False)
            allowed = role in PERMISSIONS[permission]
            assert answer.status_code == (200 if allowed else 403), (role, path, answer.text[:500])
        nav = http.get("/").text
        assert ('href="/reports/profitability"' in nav) == (role == "owner")
        assert ('href="/clients/acme/fit"' in http.get("/clients/acme").text) == (role == "owner")
    answer = people["anonymous"].get("/reports/profitability", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_the_fit_page_shows_each_catalog_offer_and_marks_the_best(people):  # noqa: F811
    db = people["db"]
    import_book(db, small())
    http, _ = people["signed"]["owner"]
    client = http.get("/clients/acme")
    assert 'href="/clients/acme/fit"' in client.text
    page = http.get("/clients/acme/fit")
    assert page.status_code == 200, page.text
    first, last = last_complete_months(clock.today(), 12)
    report = fit_report(db, "acme", first, last)
    assert f"{first} to {last}" in page.text
    assert f"<strong>{Decimal(report['actual']):,.2f}</strong>" in page.text  # thousands separated
    assert "invoiced or would invoice" in page.text and "actually paid" not in page.text
    assert len(report["offers"]) == 2
    best = best_offer(report["offers"])
    for o in report["offers"]:
        found = re.search(rf'<tr id="offer-{o["offer"]}"[^>]*>(.*?)</tr>', page.text, re.S)
        assert found, page.text[:3000]
        row = html.unescape(found.group(0))
        assert f">{money(o['total'])}<" in row and f">{money(o['difference'])}<" in row
        if o["margin"] is not None:
            assert f">{money(o['margin'])}<" in row  # with its separators
        assert (">best margin<" in row) == (o["offer"] == best)
    assert page.text.count(">best margin<") == 1
    assert "<svg" in page.text and "style=" not in page.text
    assert http.get("/clients/nobody/fit").status_code == 404
