"""Lists that do not hide rows (issue 18): `alert list`, `ticket list` and `invoice list` print a page
(`--limit`, `--offset`, or `--all`) and say on stderr when more rows exist than they printed; `--now` works
before or after the subcommand."""

from __future__ import annotations

import json

from tenure import clock
from tenure.billing import service as billing
from tenure.book.service import import_book
from tenure.cli.main import now_first
from tenure.intake import service as intake
from tests.books import small


def alerts(db, n: int) -> None:
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, small())
    for i in range(n):
        body = {"source": "probe", "client": "acme", "title": f"Disk full {i}", "status": "firing"}
        intake.ingest(db, "event", json.dumps(body).encode())


def test_alert_list_says_when_more_rows_exist_and_pages_through_them(db, cli):
    alerts(db, 5)
    first = cli("alert", "list", "--limit", "2", "--json")
    page = json.loads(first.stdout)["alerts"]
    assert len(page) == 2
    assert "more exist" in first.stderr and "--offset 2" in first.stderr and "--all" in first.stderr
    seen = [a["alert"] for a in page]
    for offset in (2, 4):
        more = cli("alert", "list", "--limit", "2", "--offset", str(offset), "--json")
        seen += [a["alert"] for a in json.loads(more.stdout)["alerts"]]
    assert len(seen) == len(set(seen)) == 5  # pages neither skip nor repeat a row
    assert "more exist" not in more.stderr  # the last page says nothing
    everything = cli("alert", "list", "--all", "--json")
    assert [a["alert"] for a in json.loads(everything.stdout)["alerts"]] == seen
    assert everything.stderr == ""
    exact = cli("alert", "list", "--limit", "5", "--json")  # exactly as many as asked: nothing more to say
    assert len(json.loads(exact.stdout)["alerts"]) == 5 and exact.stderr == ""
    bad = cli("alert", "list", "--limit", "0", check=False)
    assert bad.returncode != 0 and "--limit" in bad.stderr


def test_ticket_and_invoice_lists_page_the_same_way(db, cli):
    alerts(db, 1)
    clock.set_now("2026-12-01T07:00:00Z")
    billing.run_billing(db, "2026-12")
    invoices = json.loads(cli("invoice", "list", "--all", "--json").stdout)["invoices"]
    assert len(invoices) >= 2
    first = cli("invoice", "list", "--limit", "1", "--json")
    assert [i["number"] for i in json.loads(first.stdout)["invoices"]] == [invoices[0]["number"]]
    assert "invoices: printed 1" in first.stderr and "more exist" in first.stderr
    second = cli("invoice", "list", "--limit", "1", "--offset", "1", "--json")
    assert [i["number"] for i in json.loads(second.stdout)["invoices"]] == [invoices[1]["number"]]
    table = cli("invoice", "list", "--limit", "1")  # the table too: the note goes to stderr, not into the table
    assert invoices[0]["number"] in table.stdout and "more exist" in table.stderr

    tickets = json.loads(cli("ticket", "list", "--all", "--json").stdout)["tickets"]
    assert len(tickets) >= 1
    one = cli("ticket", "list", "--limit", "1", "--offset", str(len(tickets) - 1), "--json")
    assert [t["ticket"] for t in json.loads(one.stdout)["tickets"]] == [tickets[-1]["ticket"]]
    assert one.stderr == ""


def test_now_is_accepted_before_or_after_the_subcommand(db, cli):
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, small())
    opened = cli("ticket", "open", "acme", "--title", "Server down", "--priority", "P1", "--json", "--now",
                 "2026-12-01T07:00:00Z")  # fmt: skip
    assert json.loads(opened.stdout)["opened_at"].startswith("2026-12-01T07:00")

    def breached(*args: str) -> bool:
        (row,) = json.loads(cli(*args).stdout)["tickets"]
        return row["breached"]

    # `ticket list` has no --now of its own: the clock still moves, wherever the option is written
    assert not breached("ticket", "list", "--json", "--now", "2026-12-01T07:05:00Z")
    assert breached("ticket", "list", "--json", "--now=2026-12-05T07:00:00Z")
    assert breached("ticket", "--now", "2026-12-05T07:00:00Z", "list", "--json")
    assert not breached("--now", "2026-12-01T07:05:00Z", "ticket", "list", "--json")
    invoices = cli("invoice", "list", "--json", "--now", "2026-12-01T07:00:00Z")  # once "No such option"
    assert "invoices" in json.loads(invoices.stdout)
    bad = cli("invoice", "list", "--now", "yesterday-ish", check=False)
    assert bad.returncode != 0 and "--now" in bad.stderr


def test_now_first_moves_only_the_clock_option():
    assert now_first(["ticket", "list", "--now", "2026-12-01", "--json"]) == [
        "--now",
        "2026-12-01",
        "ticket",
        "list",
        "--json",
    ]
    assert now_first(["report", "unpaid", "--now=2026-12-01"]) == ["--now=2026-12-01", "report", "unpaid"]
    # after `--` everything is data, however it looks
    assert now_first(["ticket", "note", "5", "--", "--now", "x"]) == ["ticket", "note", "5", "--", "--now", "x"]
    assert now_first(["--now", "2026-12-01", "demo"]) == ["--now", "2026-12-01", "demo"]
    assert now_first(["demo", "--now"]) == ["demo", "--now"]  # no value: typer says what is missing
