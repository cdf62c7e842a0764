"""The book, hardened: a hand-over set on the command line goes round export and import without its password;
a name with a line break is refused at its place (and cannot break a notice); a book too large or an alias
bomb is refused before it costs memory."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tenure.agreements.service import log_time
from tenure.book import files
from tenure.book.service import export_book, import_book
from tenure.clients.models import Client, VendorAccount
from tenure.connectors.registry import handover_of
from tenure.db.changelog import ObjectChange
from tenure.errors import TenureError, ValidationFailed
from tenure.notices.mailer import MailConfig, Outgoing, build_message
from tests.books import small

KEY = "test-secret-key-for-sealed-secrets-0123456789"
MSP_PASSWORD = "msp-repository-password-81723"
CLIENT_PASSWORD = "client-repository-password-55190"
REPOSITORY = "sftp:backup@nas.acmedental.example:/srv/restic/acme"
SEALED = "gAAAAA"  # how every Fernet token (a sealed secret) begins


def with_restic_account() -> dict:
    book = small()
    book["clients"][0]["accounts"].append(
        {"key": "acme-backup", "kind": "backup", "vendor": "restic", "external_id": "/srv/restic/acme"}
    )
    return book


def test_a_handover_goes_round_export_and_import_without_its_password(db, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TENURE_SECRET_KEY", KEY)
    env = {"TENURE_SECRET_KEY": KEY}
    import_book(db, with_restic_account())
    cli("account", "set-secret", "acme-backup", input=MSP_PASSWORD, env=env)
    cli(
        "account", "set-handover", "acme-backup", "--repository", REPOSITORY, "--tag", "acme",
        input=CLIENT_PASSWORD, env=env,
    )  # fmt: skip

    first = tmp_path / "book.yaml"
    cli("book", "export", str(first), env=env)
    text = first.read_text(encoding="utf-8")
    (account,) = [a for a in export_book(db)["clients"][0]["accounts"] if a["key"] == "acme-backup"]
    assert account["handover_repository"] == REPOSITORY and account["handover_tag"] == "acme"
    assert MSP_PASSWORD not in text and CLIENT_PASSWORD not in text and SEALED not in text

    # into a fresh database, and out again: the same book
    fresh = {**env, "TENURE_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    cli("book", "import", str(first), env=fresh)
    again = tmp_path / "again.yaml"
    cli("book", "export", str(again), env=fresh)
    assert again.read_text(encoding="utf-8") == text

    # imported back where it came from, the book changes nothing: the hand-over keeps its password
    cli("book", "import", str(first), env=env)
    with db.reader() as s:
        stored = s.scalars(select(VendorAccount).where(VendorAccount.key == "acme-backup")).one()
        plan = handover_of(stored)
        logged = [
            json.dumps([c.before, c.after])
            for c in s.scalars(select(ObjectChange).where(ObjectChange.object_type == "vendor_account"))
        ]
    assert plan is not None
    assert (plan.target.location, plan.target.password) == (REPOSITORY, CLIENT_PASSWORD)
    assert plan.filters == ("--tag", "acme")
    assert plan.source.password == MSP_PASSWORD
    assert logged and not any(SEALED in row or CLIENT_PASSWORD in row for row in logged)


def test_a_handover_address_holding_a_password_is_refused(db, cli):
    import_book(db, with_restic_account())
    refused = cli(
        "account", "set-handover", "acme-backup", "--repository", "rest:https://acme:hunter2@backup.example/acme",
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: --repository: the address holds a password")
    assert len(refused.stderr.strip().splitlines()) == 1
    book = with_restic_account()
    book["clients"][0]["accounts"][-1]["handover_repository"] = "rest:https://acme:hunter2@backup.example/acme"
    with pytest.raises(ValidationFailed, match=r"clients\[0\]\.accounts\[2\]\.handover_repository: the address"):
        import_book(db, book)


LINE_BREAKS = [
    (lambda b: b["clients"][0].update(name="Acme Dental\r\nBcc: everyone@example.com"), "clients[0].name"),
    (lambda b: b["clients"][0]["contacts"][0].update(name="Jo\nSmith"), "clients[0].contacts[0].name"),
    (
        lambda b: b["clients"][0]["contacts"][0].update(email="jo@acmedental.example\r\nBcc: x@evil.example"),
        "clients[0].contacts[0].email",
    ),
    (lambda b: b["clients"][0]["sites"][0].update(name="Main\roffice"), "clients[0].sites[0].name"),
    (lambda b: b["clients"][0]["devices"][0].update(hostname="ACME\x00DC01"), "clients[0].devices[0].hostname"),
    (lambda b: b["msp"].update(name="Example IT\nReply-To: x@evil.example"), "msp.name"),
]


@pytest.mark.parametrize(("spoil", "place"), LINE_BREAKS, ids=[p for _, p in LINE_BREAKS])
def test_a_line_break_in_a_name_is_refused_at_its_place(db, spoil, place):
    import_book(db, small())
    before = export_book(db)
    book = copy.deepcopy(small())
    spoil(book)
    with pytest.raises(ValidationFailed) as caught:
        import_book(db, book)
    assert [p for p in caught.value.problems if p.startswith(f"{place}: must be one line")], caught.value.problems
    assert export_book(db) == before


def test_the_command_line_names_the_place_of_a_line_break(db, cli, tmp_path):
    book = small()
    book["clients"][0]["name"] = "Acme Dental\nBcc: everyone@example.com"
    path = tmp_path / "book.json"
    path.write_text(json.dumps(book), encoding="utf-8")
    refused = cli("book", "import", str(path), check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: clients[0].name: must be one line without control characters")
    assert len(refused.stderr.strip().splitlines()) == 1


def test_time_logged_under_a_technician_with_a_line_break_is_refused(db):
    import_book(db, small())
    with pytest.raises(TenureError, match="technician: must be one line without control characters"):
        log_time(db, "acme", 30, "maintenance", date(2026, 11, 2), technician="terry\nBcc: x@evil.example")
    assert all(entry["technician"] == "terry" for entry in export_book(db)["clients"][0]["time_entries"])


def test_a_name_stored_with_a_line_break_before_is_named_at_export(db):
    import_book(db, small())
    with db.unit_of_work() as s:  # as an older version let it in
        s.scalars(select(Client).where(Client.key == "acme")).one().name = "Acme\nDental"
    with pytest.raises(ValidationFailed, match=r"cannot export clients\[0\]\.name: must be one line"):
        export_book(db)


def test_a_line_break_stored_before_cannot_add_a_header_or_stop_a_notice():
    config = MailConfig("smtp", "mail.example", 25, None, None, "it@example-it.example")
    item = Outgoing(
        notice_id=7,
        kind="low_balance",
        message_id="<tenure.notice.7@example-it.example>",
        to=["jo@acmedental.example"],
        cc=[],
        bcc=[],
        subject="Acme Dental\r\nBcc: everyone@example.com: 2 hours left",
        text="Hello",
        html=None,
        msp_name="Example IT\nReply-To: x@evil.example",
    )
    sent = build_message(item, config, datetime(2026, 11, 2, tzinfo=UTC)).as_bytes()
    headers = sent.split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in headers and b"\nReply-To:" not in headers
    assert b"Subject: Acme Dental  Bcc: everyone@example.com: 2 hours left" in headers


# ------------------------------------------------------------------------------------ size and aliases


def test_a_book_larger_than_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(25 * 1024 * 1024)  # 25 MiB (sparse: nothing written)
    with pytest.raises(TenureError, match=r"huge.yaml: the file is 25 MiB, more than the limit of 20 MiB"):
        files.load(path)


def test_the_limit_is_a_setting_and_the_command_line_says_it_in_one_line(db, cli, tmp_path):
    path = tmp_path / "book.json"
    path.write_text(json.dumps(small()), encoding="utf-8")
    size = path.stat().st_size
    refused = cli("book", "import", str(path), check=False, env={"TENURE_BOOK_MAX_BYTES": "1024"})
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert f"the file is {size / 1024:.1f} KiB, more than the limit of 1 KiB (TENURE_BOOK_MAX_BYTES)" in refused.stderr
    assert cli("book", "import", str(path)).returncode == 0


BOMB = """\
version: 1
msp: {name: Example IT, hourly_rate: "150.00"}
lol: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
clients:
  - {key: acme, name: Acme, domains: *h}
"""


def test_an_alias_bomb_is_refused(db, cli, tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB, encoding="utf-8")  # 700 bytes that stand for 43 million domains
    refused = cli("book", "import", str(path), check=False)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "bomb.yaml: not a book: its aliases (*name) expand to more than" in refused.stderr
    itself = tmp_path / "itself.yaml"
    itself.write_text("version: 1\nmsp: &m {name: X, hourly_rate: '1', catalog: [*m]}\n", encoding="utf-8")
    with pytest.raises(TenureError, match="an alias"):
        files.load(itself)


def test_a_book_may_still_use_an_alias_or_two(db, tmp_path):
    path = Path(tmp_path / "book.yaml")
    path.write_text(
        """\
version: 1
msp: {name: Example IT, hourly_rate: "150.00"}
clients:
  - key: acme
    name: Acme
    agreements:
      - {key: acme-m, kind: monitoring, start: 2026-01-01, monthly_fee: "100.00", covers: &watch [monitoring, patching]}
  - key: bravo
    name: Bravo
    agreements:
      - {key: bravo-m, kind: monitoring, start: 2026-01-01, monthly_fee: "100.00", covers: *watch}
""",
        encoding="utf-8",
    )
    import_book(db, files.load(path))
    assert [c["agreements"][0]["covers"] for c in export_book(db)["clients"]] == [["monitoring", "patching"]] * 2
