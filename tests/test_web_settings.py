"""Purchases and intake rules on the client's page (web/items.py), and the MSP's settings page (web/settings.py):
each form as a browser sends it (filled from the page), accepted with a message, refused beside its field,
refused when stale, and refused to a role that may not."""

from __future__ import annotations

from html import unescape

import pytest

from tenure.billing.service import list_invoices
from tenure.book import objects
from tenure.book.service import import_book
from tenure.msp import changes
from tests.books import small
from tests.test_web import flash, people, quick_hashes  # noqa: F401  (fixtures: signed-in users, quick hashes)
from tests.test_web_changes import field, form_fields, page_of, problems, send

pytestmark = pytest.mark.db


@pytest.fixture
def book(people):  # noqa: F811
    import_book(people["db"], small())
    return people


def _prepayments(db, client: str) -> list[dict]:
    return [i for i in list_invoices(db, client) if i["kind"] == "prepayment"]


# ------------------------------------------------------------------------------------- blocks and deposits


def test_buying_a_block_shows_it_with_its_balance_and_makes_a_prepayment_invoice(book):
    db = book["db"]
    owner, _ = book["signed"]["bookkeeper"]
    before = len(_prepayments(db, "acme"))
    tab = page_of(owner, "/clients/acme?tab=agreements")
    assert "blocks-new-form" in tab and 'id="purchases-note"' in tab
    assert "blocks-remove-form" not in tab and "/blocks/acme-b1" not in tab  # a purchase is never deleted here

    done = send(owner, tab, "blocks-new-form", key="acme-b2", hours="10", price="1250.00", expires="2027-11-30")
    assert done.status_code == 200 and flash(done) == ["block acme-b2 added"]
    row = done.text.split('id="blocks-acme-b2"', 1)[1].split("</tr>", 1)[0]
    assert "1,250.00" in row and "10:00" in row  # its balance: 10 hours left (no bonus tier in the small book)
    assert objects.get_item(db, "acme", "blocks", "acme-b2")["purchased"] == "2026-11-24"
    assert len(_prepayments(db, "acme")) == before + 1


def test_a_refused_block_shows_the_problem_beside_its_field_and_what_was_typed(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    tab = page_of(owner, "/clients/acme?tab=agreements")
    refused = send(owner, tab, "blocks-new-form", key="acme-b3", hours="0", price="10.00")
    assert refused.status_code == 422
    box = field(refused.text, "hours", "blocks-new-form")
    assert problems(box) and 'value="0"' in box
    assert not problems(field(refused.text, "price", "blocks-new-form"))
    assert form_fields(refused.text, "blocks-new-form")["key"] == "acme-b3"
    assert "acme-b3" not in [b["key"] for b in objects.list_items(db, "acme", "blocks")]


def test_a_retainer_deposit_is_listed_raises_the_balance_and_makes_a_prepayment_invoice(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    before = len(_prepayments(db, "bravo"))
    tab = page_of(owner, "/clients/bravo?tab=agreements")
    done = send(owner, tab, "retainer_deposits-new-form", amount="500.00", key="bravo-d1")
    assert done.status_code == 200 and flash(done) == ["retainer deposit bravo-d1 added"]
    assert 'id="retainer_deposits-bravo-d1"' in done.text
    assert "retainer <strong>500.00</strong>" in done.text
    assert len(_prepayments(db, "bravo")) == before + 1


def test_a_technician_may_not_buy_a_block_nor_sees_the_form(book):
    tech, csrf = book["signed"]["technician"]
    assert "blocks-new-form" not in page_of(tech, "/clients/acme?tab=agreements")
    answer = tech.post("/clients/acme/blocks", data={"csrf": csrf, "key": "x", "purchased": "2026-11-24",
                                                     "hours": "5", "price": "500"})  # fmt: skip
    assert answer.status_code == 403


# ------------------------------------------------------------------------------------------- mapping rules


def test_a_mapping_rule_added_then_removed(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    tab = page_of(tech, "/clients/acme?tab=devices")
    refused = send(tech, tab, "mapping_rules-new-form", field="from", pattern="x")
    assert refused.status_code == 422 and problems(field(refused.text, "field", "mapping_rules-new-form"))

    done = send(tech, tab, "mapping_rules-new-form", field="sender_domain", pattern="acme-mail.example")
    assert done.status_code == 200
    assert [unescape(m) for m in flash(done)] == ["mapping rule sender_domain = 'acme-mail.example' added"]
    rule = next(r for r in objects.list_items(db, "acme", "mapping_rules") if r["pattern"] == "acme-mail.example")
    assert f'id="mapping_rules-{rule["id"]}"' in done.text

    edit = page_of(tech, f"/clients/acme?tab=devices&kind=mapping-rules&edit={rule['id']}")
    gone = send(tech, edit, "mapping_rules-remove-form")
    assert gone.status_code == 200
    assert [unescape(m) for m in flash(gone)] == ["mapping rule sender_domain = 'acme-mail.example' deleted"]
    assert all(r["id"] != rule["id"] for r in objects.list_items(db, "acme", "mapping_rules"))


# ------------------------------------------------------------------------------------------------ settings


def test_the_settings_form_changes_the_payment_terms_and_a_stale_one_is_refused(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    page = page_of(owner, "/settings")
    assert form_fields(page, "settings-form")["payment_terms_days"] == "10"

    done = send(owner, page, "settings-form", payment_terms_days="21")
    assert done.status_code == 200 and flash(done) == ["settings changed"]
    assert changes.get_settings(db)["payment_terms_days"] == 21

    refused = send(owner, page_of(owner, "/settings"), "settings-form", name="")
    assert refused.status_code == 422 and problems(field(refused.text, "name", "settings-form"))

    stale = send(owner, page, "settings-form", payment_terms_days="45")  # the page read before the change
    assert stale.status_code == 412
    assert form_fields(stale.text, "settings-form")["payment_terms_days"] == "21"
    assert "45" in stale.text.split('class="yours"', 1)[1].split("</div>", 1)[0]
    assert changes.get_settings(db)["payment_terms_days"] == 21


def test_an_offer_added_edited_and_removed(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    page = page_of(owner, "/settings")
    refused = send(owner, page, "offer-new-form", key="block-5", block_hours="5")
    assert refused.status_code == 422 and "block offer needs both" in refused.text

    added = send(owner, page, "offer-new-form", key="block-5", name="Five hours", block_hours="5", price="650.00")
    assert added.status_code == 200 and flash(added) == ["offer block-5 added to the catalog"]
    assert 'id="offer-block-5"' in added.text

    edit = page_of(owner, "/settings?edit=block-5")
    changed = send(owner, edit, "offer-edit-form", price="600.00")
    assert changed.status_code == 200 and flash(changed) == ["offer block-5 changed"]
    assert changes.get_offer(db, "block-5")["price"] == "600.00"
    stale = send(owner, edit, "offer-edit-form", price="550.00")
    assert stale.status_code == 412 and changes.get_offer(db, "block-5")["price"] == "600.00"

    gone = send(owner, page_of(owner, "/settings?edit=block-5"), "offer-remove-form")
    assert gone.status_code == 200 and flash(gone) == ["offer block-5 removed from the catalog"]
    assert "block-5" not in [o["key"] for o in changes.list_offers(db)]


def test_every_role_reads_the_settings_only_the_owner_changes_them(book):
    tech, csrf = book["signed"]["technician"]
    page = page_of(tech, "/settings")
    assert 'id="settings-read"' in page and "settings-form" not in page and "offer-new-form" not in page
    assert 'href="/settings"' in page
    for url in ("/settings", "/settings/offers", "/settings/offers/essentials", "/settings/offers/essentials/remove"):
        answer = tech.post(url, data={"csrf": csrf, "payment_terms_days": "1", "key": "x"})
        assert answer.status_code == 403, url
