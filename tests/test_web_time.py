"""The client's time tab (web/time.py): time logged, then corrected (edited, moved to another client, voided
with a reason) by a technician, and charges recorded and voided by the owner or the bookkeeper. Each form as
a browser sends it (its fields read from the page), each answer checked by what the page and the flash say,
and by what the services hold."""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from typing import Any

import pytest

from tenure import clock
from tenure.agreements.changes import get_time_entry
from tenure.agreements.service import log_time
from tenure.billing import service
from tenure.billing.charges import add_charge, get_charge, list_charges
from tenure.book.service import import_book
from tenure.web import queries
from tests.books import small
from tests.test_web import flash, people, quick_hashes  # noqa: F401  (fixtures: signed-in users, quick hashes)
from tests.test_web_changes import action_of, field, form_fields, page_of, problems, send

pytestmark = pytest.mark.db


@pytest.fixture
def book(people):  # noqa: F811
    import_book(people["db"], small())
    return people


def row(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{re.escape(row_id)}".*?</tr>', page, re.S)
    assert found, f"no row #{row_id}"
    return unescape(found.group(0))


def text(html: str) -> str:
    """What a person reads: the markup without its tags."""
    return unescape(re.sub(r"<[^>]+>", "", html))


def entry_rows(page: str) -> dict[int, str]:
    """The time tab's rows by entry id."""
    return {
        int(m.group(1)): unescape(m.group(0))
        for m in re.finditer(r'<tr id="time-[^"]+" data-entry="(\d+)".*?</tr>', page, re.S)
    }


def log_on_the_page(http: Any, client: str, **typed: str) -> tuple[int, Any]:
    """Log time with the form of the client's time tab; the id of the entry it made."""
    tab = page_of(http, f"/clients/{client}?tab=time")
    before = set(entry_rows(tab))
    logged = http.post(action_of(tab, "log-time"), data=form_fields(tab, "log-time") | typed)
    assert logged.status_code == 200 and "logged" in flash(logged)[0], logged.text[:500]
    (made,) = set(entry_rows(logged.text)) - before
    return made, logged


def editing(http: Any, client: str, entry: int) -> str:
    return page_of(http, f"/clients/{client}?tab=time&edit={entry}")


# ------------------------------------------------------------------------------------------------ corrections


def test_logged_time_is_corrected_and_the_flash_says_how_it_is_paid_now(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    entry, logged = log_on_the_page(tech, "acme", minutes="30", work_type="remote_support", note="printer")
    assert flash(logged) == [f"logged 30 min of remote_support on {clock.today()}: 30 min included (acme-managed)"]
    assert "30 min included (acme-managed)" in entry_rows(logged.text)[entry]  # how it is paid, on its row
    assert f'data-edit="{entry}"' in entry_rows(logged.text)[entry]

    page = editing(tech, "acme", entry)
    assert 'value="30"' in field(page, "minutes", "time-edit-form")
    assert 'value="acme"' in field(page, "client", "time-edit-form")

    # refused: each problem beside its field, what was typed kept, nothing changed
    refused = send(tech, page, "time-edit-form", minutes="0", note="printer and scanner", reason="typo")
    assert refused.status_code == 422
    assert problems(field(refused.text, "minutes", "time-edit-form"))
    assert ">printer and scanner</textarea>" in field(refused.text, "note", "time-edit-form")
    assert not problems(field(refused.text, "note", "time-edit-form"))
    assert 'aria-current="page" class="current">Time<' in refused.text
    assert get_time_entry(db, entry)["minutes"] == 30
    blank = send(tech, page, "time-edit-form", date="")
    assert blank.status_code == 422 and problems(field(blank.text, "date", "time-edit-form")) == ["is required"]

    # malware cleanup is excluded from the agreement: the block pays it now
    done = send(tech, page, "time-edit-form", minutes="50", work_type="malware_cleanup", reason="it was a cleanup")
    assert flash(done) == [f"time entry {entry} corrected (minutes, work type): paid 60 min from block acme-b1"]
    assert "60 min from block acme-b1" in entry_rows(done.text)[entry]
    now = get_time_entry(db, entry)
    assert (now["minutes"], now["work_type"], now["note"], now["edit_reason"]) == (
        50, "malware_cleanup", "printer", "it was a cleanup",
    )  # fmt: skip
    same = send(tech, editing(tech, "acme", entry), "time-edit-form")
    assert flash(same) == [f"time entry {entry}: nothing to change"]


def test_a_voided_entry_needs_a_reason_is_struck_through_counts_for_nothing_and_is_not_edited(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    entry, logged = log_on_the_page(tech, "acme", minutes="45", work_type="onsite")
    totals = re.search(r'id="time-totals".*?</p>', logged.text, re.S).group(0)
    assert "<strong>2</strong> entries" in totals and "<strong>2:15</strong> h logged" in totals  # 90 + 45 min

    page = editing(tech, "acme", entry)
    refused = send(tech, page, "time-void-form", reason="  ")
    assert refused.status_code == 422
    assert problems(field(refused.text, "reason", "time-void-form")) == ["say why the entry is voided"]
    assert not get_time_entry(db, entry)["voided"]

    voided = send(tech, page, "time-void-form", reason="logged twice")
    assert flash(voided) == [f"time entry {entry} voided (logged twice): it stays on record and counts for nothing"]
    shown = entry_rows(voided.text)[entry]
    assert 'class="voided"' in shown and "voided</span> logged twice" in shown
    assert "data-edit" not in shown  # no edit link any more
    totals = re.search(r'id="time-totals".*?</p>', voided.text, re.S).group(0)
    assert "<strong>1</strong> entries" in totals and "<strong>1:30</strong> h logged" in totals
    assert "<strong>1</strong> voided, not counted" in totals
    assert get_time_entry(db, entry)["void_reason"] == "logged twice"

    # the list (the API's too) keeps it, marked: never dropped silently
    listed = {t["id"]: t for t in queries.time_page(db, "acme").items}
    assert listed[entry]["voided"] and listed[entry]["void_reason"] == "logged twice"
    assert not listed[min(listed)]["voided"]
    assert "voided</span> logged twice" in page_of(tech, "/time?client=acme")

    # a voided entry is not edited: the form of the page opened before is refused, and says why
    again = send(tech, page, "time-edit-form", minutes="60")
    assert again.status_code == 409 and "was voided (logged twice)" in unescape(again.text)
    assert get_time_entry(db, entry)["minutes"] == 45
    assert 'id="time-edit-form"' not in again.text and 'id="entry-voided"' in again.text
    twice = send(tech, page, "time-void-form", reason="again")
    assert flash(twice) == [f"time entry {entry} was voided already (logged twice)"]


def test_time_logged_on_the_wrong_client_moves_to_the_right_one(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    entry, _ = log_on_the_page(tech, "acme", minutes="60", work_type="remote_support", note="bread oven PC")
    page = editing(tech, "acme", entry)

    unknown = send(tech, page, "time-edit-form", client="nobody")
    assert unknown.status_code == 422
    assert problems(field(unknown.text, "client", "time-edit-form")) == ["no client 'nobody'"]
    assert 'value="nobody"' in field(unknown.text, "client", "time-edit-form")
    assert get_time_entry(db, entry)["client"] == "acme"

    moved = send(tech, page, "time-edit-form", client="bravo", reason="wrong client")
    now = get_time_entry(db, entry)
    assert now["client"] == "bravo"
    # bravo holds a retainer with nothing deposited: the hour is billed at its rate
    assert flash(moved) == [
        f"time entry {entry} moved to bravo (as {now['key']}): paid 60 min billed at 110.00/h (110.00, retainer)"
    ]
    assert entry not in entry_rows(moved.text)  # back on acme's tab: no longer there
    assert "bread oven PC" in entry_rows(page_of(tech, "/clients/bravo?tab=time"))[entry]
    assert tech.get(f"/clients/acme?tab=time&edit={entry}").status_code == 404  # bravo's now


def test_a_correction_of_an_invoiced_month_is_said_to_go_on_the_next_invoice(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    log_time(db, "bravo", 60, "remote_support", date(2026, 10, 5), "terry", "October's visit")
    (november,) = [i for i in service.run_billing(db, "2026-11").invoices if i["client"] == "bravo"]
    (entry,) = entry_rows(page_of(tech, "/clients/bravo?tab=time"))
    page = editing(tech, "bravo", entry)
    assert f"Invoice {november['number']} billed it" in text(page)  # the open entry says so
    assert f"invoice {november['number']}" in text(entry_rows(page)[entry])

    voided = send(tech, page, "time-void-form", reason="billed to the wrong client")
    assert flash(voided) == [
        f"time entry {entry} voided (billed to the wrong client): it stays on record and counts for nothing. "
        f"Invoice {november['number']} billed it and stays as it is: the next invoice credits it as an adjustment"
    ]
    assert f"invoice {november['number']} billed it: credited on the next invoice" in entry_rows(voided.text)[entry]
    clock.set_now("2026-12-01T07:00:00Z")
    (december,) = [i for i in service.run_billing(db, "2026-12").invoices if i["client"] == "bravo"]
    assert [(line["kind"], line["amount"]) for line in december["lines"]] == [("adjustment", "-110.00")]


# ------------------------------------------------------------------------------------------------ charges


def test_charges_are_added_refused_beside_their_fields_and_voided_with_a_reason(book):
    db = book["db"]
    keeper, _ = book["signed"]["bookkeeper"]
    tab = page_of(keeper, "/clients/acme?tab=time")
    assert 'id="new-charge"' in tab and "No charge." in tab

    refused = send(keeper, tab, "charge-new-form", description="", amount="a lot", cost="95")
    assert refused.status_code == 422
    assert problems(field(refused.text, "description", "charge-new-form")) == ["say what is charged"]
    assert problems(field(refused.text, "amount", "charge-new-form"))
    assert 'value="a lot"' in field(refused.text, "amount", "charge-new-form")
    assert 'value="95"' in field(refused.text, "cost", "charge-new-form")
    assert '<details class="form-card" id="new-charge" open>' in refused.text
    assert list_charges(db, "acme") == []

    added = send(
        keeper, tab, "charge-new-form", description="Replacement SSD", amount="180.00", cost="95.00",
        date="2026-11-20", quantity="1",
    )  # fmt: skip
    assert flash(added) == [
        "charge ch-20261120-1 added: Replacement SSD, 180.00 on 2026-11-20: billed on the next monthly invoice"
    ]
    ssd = row(added.text, "charges-ch-20261120-1")
    assert "Replacement SSD" in ssd and "180.00" in ssd and "95.00" in ssd and "next invoice" in ssd

    no_reason = keeper.post(
        action_of(added.text, "charge-void-ch-20261120-1"), data=form_fields(added.text, "charge-void-ch-20261120-1")
    )
    assert no_reason.status_code == 422
    assert problems(field(no_reason.text, "reason", "charge-void-ch-20261120-1")) == ["say why the charge is voided"]
    assert not get_charge(db, "acme", "ch-20261120-1")["voided"]
    voided = send(keeper, added.text, "charge-void-ch-20261120-1", reason="returned unused")
    assert flash(voided) == ["charge ch-20261120-1 voided: it will not be billed"]
    ssd = row(voided.text, "charges-ch-20261120-1")
    assert 'class="voided"' in ssd and "returned unused" in ssd and "never billed" in ssd
    assert 'id="charge-void-ch-20261120-1"' not in voided.text


def test_a_billed_charge_says_its_invoice_and_voided_is_credited_on_the_next_one(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    add_charge(db, "bravo", "Cable run", "85.50", cost="30.00", date=date(2026, 10, 28), key="cable")
    (november,) = [i for i in service.run_billing(db, "2026-11").invoices if i["client"] == "bravo"]
    tab = page_of(owner, "/clients/bravo?tab=time")
    assert f"invoice {november['number']}" in text(row(tab, "charges-cable"))
    voided = send(owner, tab, "charge-void-cable", reason="cable was the client's own")
    assert flash(voided) == [
        f"charge cable voided: invoice {november['number']} billed it, the next invoice credits it"
    ]
    assert "credited on the next invoice" in row(voided.text, "charges-cable")


# ------------------------------------------------------------------------------------------------ roles


def test_only_technicians_correct_time_and_only_owner_and_bookkeeper_record_charges(book):
    db = book["db"]
    tech, tech_csrf = book["signed"]["technician"]
    entry, _ = log_on_the_page(tech, "acme", minutes="30", work_type="onsite")
    add_charge(db, "acme", "Toner", "60.00", key="toner")

    tab = page_of(tech, "/clients/acme?tab=time")
    assert 'id="new-charge"' not in tab and 'id="charge-void-toner"' not in tab  # listed, not changed
    assert "Toner" in row(tab, "charges-toner")
    assert (
        tech.post("/clients/acme/charges", data={"csrf": tech_csrf, "description": "x", "amount": "1"}).status_code
        == 403
    )
    assert tech.post("/clients/acme/charges/toner/void", data={"csrf": tech_csrf, "reason": "x"}).status_code == 403

    for role in ("bookkeeper", "readonly"):
        http, csrf = book["signed"][role]
        seen = page_of(http, f"/clients/acme?tab=time&edit={entry}")
        assert "data-edit=" not in seen and 'id="time-edit-form"' not in seen and 'id="log-time"' not in seen
        assert http.post(f"/time-entries/{entry}", data={"csrf": csrf, "minutes": "600"}).status_code == 403
        assert http.post(f"/time-entries/{entry}/void", data={"csrf": csrf, "reason": "x"}).status_code == 403
    readonly, csrf = book["signed"]["readonly"]
    assert 'id="new-charge"' not in page_of(readonly, "/clients/acme?tab=time")
    assert readonly.post("/clients/acme/charges/toner/void", data={"csrf": csrf, "reason": "x"}).status_code == 403
    assert get_time_entry(db, entry)["minutes"] == 30 and not get_time_entry(db, entry)["voided"]
    assert not get_charge(db, "acme", "toner")["voided"]

    # the security token is checked first; an entry that does not exist is not found
    assert tech.post(f"/time-entries/{entry}/void", data={"reason": "x"}).status_code == 403
    assert tech.post("/time-entries/999999/void", data={"csrf": tech_csrf, "reason": "x"}).status_code == 404
