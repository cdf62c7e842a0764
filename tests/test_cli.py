"""The command line as a user drives it: a subprocess, real database, JSON on stdout, one-line errors."""

from __future__ import annotations

import json

import yaml

from tenure.money import grouped
from tests.books import small

DEMO_CLASSES = {
    "acme": "agreement",
    "harbor": "agreement",
    "pine": "agreement",
    "cedar": "prepaid",
    "willow": "prepaid",
    "maple": "adhoc",
    "birch": "adhoc",
    "oak": "lapsed",
    "spruce": "former",
    "elm": "prospect",
}


def test_demo_twice_changes_nothing_and_covers_every_class_and_kind(cli):
    first = json.loads(cli("demo", "--json").stdout)
    exported = cli("book", "export", "--json").stdout
    second = json.loads(cli("demo", "--json").stdout)
    assert sum(first["created"].values()) > 100
    assert second["created"] == {} and second["updated"] == {}
    assert cli("book", "export", "--json").stdout == exported

    listed = json.loads(cli("client", "list", "--json").stdout)
    classes = {c["key"]: c["class"] for c in listed["clients"]}
    assert classes == DEMO_CLASSES
    kinds = {a["kind"] for c in listed["clients"] for a in c["agreements"]}
    assert kinds == {"managed", "monitoring", "call_before_service", "retainer", "adhoc"}
    book = json.loads(exported)
    assert sum(len(c.get("time_entries", [])) for c in book["clients"]) >= 40
    assert any(c.get("backup_jobs") for c in book["clients"]) and any(c.get("accounts") for c in book["clients"])


def test_class_is_computed_as_of_now(cli):
    cli("demo")
    anchor_year = json.loads(cli("client", "list", "--json").stdout)["as_of"][:4]
    past = json.loads(cli("--now", "2000-01-01", "client", "list", "--json").stdout)
    assert {c["class"] for c in past["clients"]} == {"prospect"}
    assert past["as_of"] == "2000-01-01"
    via_env = json.loads(cli("client", "list", "--json", env={"TENURE_NOW": "2000-01-01T12:00:00Z"}).stdout)
    assert via_env == past
    assert anchor_year != "2000"


def test_client_show_explains_the_balance_entry_by_entry(cli):
    cli("demo")
    shown = json.loads(cli("client", "show", "harbor", "--json").stdout)
    assert shown["key"] == "harbor" and shown["class"] == "agreement"
    assert set(shown) >= {"key", "name", "class", "agreements", "devices", "block_balance_minutes", "retainer_balance"}
    assert shown["block_balance_minutes"] == sum(e["minutes"] for e in shown["ledger"] if e["account"] == "block")
    assert [e["kind"] for e in shown["ledger"]][:2] == ["purchase", "bonus"]
    table = cli("client", "show", "harbor").stdout
    assert "Harbor Law Group" in table and "Prepaid ledger" in table


def test_book_round_trip_through_files_and_a_bad_book_is_one_line_and_changes_nothing(cli, tmp_path):
    good = tmp_path / "book.yaml"
    good.write_text(yaml.safe_dump(small()))
    cli("book", "import", str(good))
    exported = tmp_path / "out.json"
    cli("book", "export", str(exported))
    assert json.loads(exported.read_text())["clients"][0]["key"] == "acme"

    bad_book = small()
    bad_book["clients"][0]["agreements"][0]["kind"] = "manged"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(bad_book))
    result = cli("book", "import", str(bad), check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "clients[0].agreements[0].kind: 'manged' is not one of 'managed'" in lines[0]
    assert cli("book", "export", "--json").stdout.strip() == exported.read_text().strip()


def test_errors_are_one_line_with_a_non_zero_exit(cli, tmp_path):
    missing = cli("client", "show", "nobody", check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no client 'nobody'" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nmsp: [unclosed\n")
    result = cli("book", "import", str(broken), check=False)
    assert result.returncode == 1 and "broken.yaml:" in result.stderr and "not valid YAML" in result.stderr
    # an unquoted date that is no date: the file, its line and column, and what is wrong with it
    no_date = tmp_path / "no-date.yaml"
    no_date.write_text("version: 1\nmsp:\n  name: X\n  founded: 2027-13-45\n")
    result = cli("book", "import", str(no_date), check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    said = "no-date.yaml:4:12: not valid YAML ('2027-13-45' is not a date or time (month must be in 1..12))"
    assert said in result.stderr
    nowhere = tmp_path / "no-such-dir" / "tenure.db"
    lost = cli("client", "list", check=False, env={"TENURE_DATABASE_URL": f"sqlite:///{nowhere}"})
    assert lost.returncode == 1 and lost.stderr.count("\n") == 1
    assert f"its directory {nowhere.parent} does not exist" in lost.stderr
    bad_now = cli("--now", "yesterday", "client", "list", check=False)
    assert bad_now.returncode != 0 and "--now" in bad_now.stderr


def test_schema_is_json_schema_of_the_book(cli):
    schema = json.loads(cli("book", "schema").stdout)
    assert schema["title"] == "Book" and "clients" in schema["properties"]
    kinds = schema["$defs"]["Agreement"]["properties"]["kind"]["enum"]
    assert "call_before_service" in kinds


def test_a_bookkeepers_month_end_from_the_command_line(cli, tmp_path):
    cli("demo")
    run = json.loads(cli("--now", "2026-12-01T07:00:00Z", "billing", "run", "--period", "2026-12", "--json").stdout)
    assert run["created"] >= 3
    invoice = run["invoices"][0]
    assert set(invoice) >= {"number", "client", "kind", "date", "due_date", "status", "total", "lines"}
    assert set(invoice["lines"][0]) >= {"kind", "description", "quantity", "unit_price", "amount"}
    assert invoice["date"] == "2026-12-01" and invoice["kind"] == "monthly"
    again = json.loads(cli("--now", "2026-12-01T07:00:00Z", "billing", "run", "--period", "2026-12", "--json").stdout)
    assert again["created"] == 0

    number = invoice["number"]
    html, pdf, csv_file = tmp_path / "i.html", tmp_path / "i.pdf", tmp_path / "december.csv"
    cli("invoice", "show", number, "--html", str(html), "--pdf", str(pdf))
    assert number in html.read_text() and grouped(invoice["total"]) in html.read_text()  # 1,350.00
    assert pdf.read_bytes().startswith(b"%PDF")
    cli("invoice", "export", str(csv_file), "--period", "2026-12")
    assert csv_file.read_text().splitlines()[0].startswith("number,client,kind,date")
    cli("invoice", "issue", number)
    listed = json.loads(cli("invoice", "list", "--status", "issued", "--json").stdout)["invoices"]
    assert [i["number"] for i in listed] == [number]
    refused = cli("invoice", "pay", "nope", check=False)
    assert refused.returncode == 1 and "no invoice 'nope'" in refused.stderr


def test_logging_time_says_which_layer_pays(cli):
    cli("demo")
    logged = json.loads(cli("time", "log", "willow", "--minutes", "50", "--type", "remote_support", "--json").stdout)
    assert logged["rounded_minutes"] == 60
    assert [p["layer"] for p in logged["paid_by"]] == ["block"]
    bad = cli("time", "log", "willow", "--minutes", "50", "--type", "gardening", check=False)
    assert bad.returncode == 1 and "work type 'gardening' is not one of" in bad.stderr
