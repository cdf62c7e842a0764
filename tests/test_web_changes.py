"""Changing things in place from the client's page (web/clients.py, web/items.py): each form as a browser
sends it (its fields read from the page itself), accepted and redirected with a message, refused with each
problem beside its field and nothing changed, refused when stale (and shown with the current values), and
refused to a role that may not."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest

from tenure.book import objects
from tenure.book.service import import_book
from tenure.clients import changes
from tests.books import small
from tests.test_web import STAFF, flash, people, quick_hashes  # noqa: F401  (fixtures: signed-in users, quick hashes)

pytestmark = pytest.mark.db


# ------------------------------------------------------------------------------------------ a browser's forms


class _Form(HTMLParser):
    """What a browser sends for one form of a page: its inputs' values, ticked boxes, chosen options."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.found = form_id, False, False
        self.fields: list[tuple[str, str]] = []
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = self.found = True
        if not self.inside or ("name" not in a and tag not in ("option",)):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value") or "on"))
            elif kind not in ("submit", "button"):
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select, self.options = a["name"], []
        elif tag == "option" and self.select is not None:
            self.options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self.textarea, self.text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "select" and self.select is not None:
            chosen = [v for v, selected in self.options if selected] or [v for v, _ in self.options[:1]]
            self.fields += [(self.select, v) for v in chosen]
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self.fields.append((self.textarea, self.text))
            self.textarea = None
        elif tag == "form":
            self.inside = False


def form_fields(page: str, form_id: str) -> dict[str, Any]:
    """The form's fields as a browser would send them (a name sent more than once: a list)."""
    parser = _Form(form_id)
    parser.feed(page)
    assert parser.found, f"no form #{form_id} on the page:\n{page[:3000]}"
    data: dict[str, Any] = {}
    for name, value in parser.fields:
        if name in data:
            data[name] = [*data[name], value] if isinstance(data[name], list) else [data[name], value]
        else:
            data[name] = value
    return data


def action_of(page: str, form_id: str) -> str:
    found = re.search(rf'<form method="post" action="([^"]+)"[^>]*id="{form_id}"', page)
    assert found, f"no form #{form_id}"
    return unescape(found.group(1))


def field(page: str, name: str, form_id: str | None = None) -> str:
    """A field's box on the page (label, input, its problems), in one form when named."""
    if form_id:
        page = re.search(rf'<form [^>]*id="{form_id}"[^>]*>(.*?)</form>', page, re.S).group(1)
    found = re.search(rf'<div class="field[^"]*" data-field="{name}">(.*?)</div>', page, re.S)
    assert found, f"no field {name}"
    return found.group(0)


def problems(box: str) -> list[str]:
    return [unescape(p) for p in re.findall(r'class="field-problem"[^>]*>(.*?)</p>', box)]


def send(http: Any, page: str, form_id: str, **changes_: Any) -> Any:
    """Fill in a form of the page as a person would and send it (following the redirect)."""
    data = form_fields(page, form_id) | changes_
    return http.post(action_of(page, form_id), data={k: v for k, v in data.items() if v is not None})


@pytest.fixture
def book(people):  # noqa: F811
    import_book(people["db"], small())
    return people


def page_of(http: Any, url: str) -> str:
    answer = http.get(url)
    assert answer.status_code == 200, (url, answer.text[:500])
    return answer.text


# ------------------------------------------------------------------------------------------------ clients


def test_a_new_client_from_the_list_then_its_page(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    listing = page_of(owner, "/clients")
    assert 'id="new-client"' in listing and "New client" in listing

    # refused: each problem beside its field, what was typed kept, nothing made
    refused = send(owner, listing, "client-new-form", key="fern bakery", name="", domains="fern.example")
    assert refused.status_code == 422
    assert problems(field(refused.text, "key", "client-new-form")) and not problems(field(refused.text, "domains"))
    assert problems(field(refused.text, "name", "client-new-form")) == ["is required"]
    assert 'value="fern bakery"' in field(refused.text, "key") and 'value="fern.example"' in refused.text
    assert '<details class="form-card" id="new-client" open>' in refused.text
    assert owner.get("/clients/fern", follow_redirects=False).status_code == 404

    taken = send(owner, listing, "client-new-form", key="acme", name="Another Acme")
    assert taken.status_code == 422 and "exists already" in " ".join(problems(field(taken.text, "key")))

    made = send(owner, listing, "client-new-form", key="fern", name="Fern Bakery", domains="fern.example, fern.test")
    assert made.status_code == 200 and str(made.url).endswith("/clients/fern")
    assert flash(made) == ["client fern added: Fern Bakery"]
    assert "<h1>Fern Bakery" in made.text and "fern.example, fern.test" in made.text
    assert changes.get_client(db, "fern")["domains"] == ["fern.example", "fern.test"]

    for role in ("technician", "bookkeeper", "readonly"):
        http, csrf = book["signed"][role]
        assert 'id="new-client"' not in page_of(http, "/clients")
        answer = http.post("/clients", data={"csrf": csrf, "key": "nope", "name": "Nope"})
        assert answer.status_code == 403 and "may not" in answer.text
    assert owner.get("/clients/nope").status_code == 404


def test_the_client_is_edited_in_place(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    page = page_of(owner, "/clients/acme")
    assert 'id="edit-client"' in page

    refused = send(owner, page, "client-form", name="  ", notes="kept")
    assert refused.status_code == 422
    assert problems(field(refused.text, "name", "client-form"))
    assert ">kept</textarea>" in refused.text  # what was typed is kept
    assert changes.get_client(db, "acme")["name"] == "Acme Dental" and "notes" not in changes.get_client(db, "acme")

    done = send(owner, page, "client-form", name="Acme Dental Group", billable_alerts="1", notes="two offices")
    assert flash(done) == ["client acme changed"]
    assert "<h1>Acme Dental Group" in done.text and "two offices" in done.text
    now = changes.get_client(db, "acme")
    assert (now["name"], now["billable_alerts"], now["domains"]) == ("Acme Dental Group", True, ["acmedental.example"])

    # the first page's form is stale now: refused, shown with the current values and what was typed
    stale = send(owner, page, "client-form", name="Acme Old Name")
    assert stale.status_code == 412 and "was changed since" in stale.text
    assert 'value="Acme Dental Group"' in field(stale.text, "name", "client-form")
    assert "Acme Old Name" in stale.text  # "you had changed"
    assert changes.get_client(db, "acme")["name"] == "Acme Dental Group"

    for role in ("technician", "bookkeeper", "readonly"):
        http, csrf = book["signed"][role]
        assert 'id="client-form"' not in page_of(http, "/clients/acme")
        answer = http.post("/clients/acme/edit", data={"csrf": csrf, "name": "Hijacked"})
        assert answer.status_code == 403
    assert changes.get_client(db, "acme")["name"] == "Acme Dental Group"


def test_a_client_is_archived_and_restored_and_only_one_without_history_purged(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    page = page_of(owner, "/clients/acme")
    assert 'id="archive"' in page and 'id="purge"' not in page  # acme has history
    archived = owner.post("/clients/acme/archive", data=form_fields(page, "archive-client-form"))
    assert "client acme archived" in flash(archived)[0]
    assert 'href="/clients/acme"' not in page_of(owner, "/clients")
    assert 'href="/clients/acme"' in page_of(owner, "/clients?archived=true")
    shown = page_of(owner, "/clients/acme")
    assert 'id="archived"' in shown and 'id="restore-client"' in shown
    tech, tech_csrf = book["signed"]["technician"]
    assert tech.post("/clients/acme/restore", data={"csrf": tech_csrf}).status_code == 403
    restored = owner.post("/clients/acme/restore", data={"csrf": book["signed"]["owner"][1]})
    assert "restored" in flash(restored)[0] and 'href="/clients/acme"' in page_of(owner, "/clients")

    changes.add_client(db, {"key": "oops", "name": "Typo Inc"})
    empty = page_of(owner, "/clients/oops")
    assert 'id="purge"' in empty
    purged = owner.post("/clients/oops/archive", data=form_fields(empty, "purge-client-form"))
    assert "client oops deleted" in flash(purged)[0]
    assert owner.get("/clients/oops").status_code == 404


# ------------------------------------------------------------------------------------------------ agreements


def test_an_agreement_is_added_refused_beside_its_fields_and_ended(book):
    db = book["db"]
    keeper, _ = book["signed"]["bookkeeper"]  # agreements are the owner's and the bookkeeper's
    tab = page_of(keeper, "/clients/bravo?tab=agreements")
    assert 'id="new-agreements"' in tab

    refused = send(keeper, tab, "agreements-new-form", key="bravo-care", kind="managed", start="2026-12-01")
    assert refused.status_code == 422
    for name in ("monthly_fee", "included_hours"):  # a managed agreement needs both: said beside each
        assert any("needs monthly_fee" in p for p in problems(field(refused.text, name, "agreements-new-form")))
    assert 'value="bravo-care"' in refused.text
    assert [a["key"] for a in objects.list_items(db, "bravo", "agreements")] == ["bravo-retainer"]

    added = send(
        keeper, tab, "agreements-new-form", key="bravo-care", kind="managed", start="2026-12-01",
        monthly_fee="300", included_hours="2", covers=["monitoring", "patching"],
    )  # fmt: skip
    assert flash(added) == ["agreement bravo-care added"]
    row = re.search(r'<tr id="agreements-bravo-care".*?</tr>', added.text, re.S).group(0)
    assert "300.00" in row and "Monitoring, Patching" in row  # services as words
    made = objects.get_item(db, "bravo", "agreements", "bravo-care")
    assert (made["monthly_fee"], made["included_hours"], made["covers"]) == ("300.00", 2, ["monitoring", "patching"])

    editing = page_of(keeper, "/clients/bravo?tab=agreements&kind=agreements&edit=bravo-care")
    assert 'id="delete-agreement"' in editing  # never billed: it may be deleted
    wrong_end = send(keeper, editing, "agreements-end-form", end="2026-11-01")
    assert wrong_end.status_code == 422
    assert any("before start" in p for p in problems(field(wrong_end.text, "end", "agreements-end-form")))
    ended = send(keeper, editing, "agreements-end-form", end="2027-05-31")
    assert flash(ended) == ["agreement bravo-care ends 2027-05-31"]
    assert "2027-05-31" in re.search(r'<tr id="agreements-bravo-care".*?</tr>', ended.text, re.S).group(0)
    # the form opened before the end was set is stale now
    stale = send(keeper, editing, "agreements-edit-form", monthly_fee="350.00")
    assert stale.status_code == 412 and "was changed since" in stale.text
    assert 'value="2027-05-31"' in field(stale.text, "end", "agreements-edit-form")
    assert objects.get_item(db, "bravo", "agreements", "bravo-care")["monthly_fee"] == "300.00"

    tech, tech_csrf = book["signed"]["technician"]
    assert 'id="new-agreements"' not in page_of(tech, "/clients/bravo?tab=agreements")
    data = {"csrf": tech_csrf, "key": "x", "kind": "adhoc", "start": "2026-12-01"}
    assert tech.post("/clients/bravo/agreements", data=data).status_code == 403
    assert (
        tech.post("/clients/bravo/agreements/bravo-care/end", data={"csrf": tech_csrf, "end": "2026-12-01"}).status_code
        == 403
    )
    assert objects.get_item(db, "bravo", "agreements", "bravo-care")["end"] == "2027-05-31"


def test_a_billed_agreements_fee_changes_from_a_date_the_form_asks_for(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    editing = page_of(owner, "/clients/acme?tab=agreements&kind=agreements&edit=acme-managed")
    assert 'data-field="effective"' in editing and 'id="delete-agreement"' not in editing  # billed elsewhere

    asked = send(owner, editing, "agreements-edit-form", monthly_fee="1500.00")
    assert asked.status_code == 409 and "change only from a date" in unescape(asked.text)
    assert problems(field(asked.text, "effective", "agreements-edit-form")) == ["give the first day of the new terms"]
    assert 'value="1500.00"' in field(asked.text, "monthly_fee", "agreements-edit-form")  # kept as typed
    assert objects.get_item(db, "acme", "agreements", "acme-managed")["monthly_fee"] == "1200.00"

    # sending the form as it came back, with the date: the new terms are a new agreement from that day
    split = send(owner, asked.text, "agreements-edit-form", effective="2026-12-01")
    assert flash(split) == [
        "agreement acme-managed ends the day before 2026-12-01; its new terms are agreement "
        "acme-managed-from-2026-12-01 from 2026-12-01"
    ]
    old = objects.get_item(db, "acme", "agreements", "acme-managed")
    new = objects.get_item(db, "acme", "agreements", "acme-managed-from-2026-12-01")
    assert (old["end"], old["monthly_fee"], new["monthly_fee"]) == ("2026-11-30", "1200.00", "1500.00")
    assert new["covers"] == old["covers"]  # the boxes' order did not count as a change

    # a change that is not a money term needs no date
    editing = page_of(owner, "/clients/acme?tab=agreements&kind=agreements&edit=acme-managed-from-2026-12-01")
    renamed = send(owner, editing, "agreements-edit-form", term_months="12")
    assert flash(renamed) == ["agreement acme-managed-from-2026-12-01 changed"]


# ------------------------------------------------------------------------------------------------- inventory


def test_devices_are_added_changed_and_retired(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    tab = page_of(tech, "/clients/acme?tab=devices")
    assert '<option value="main">main</option>' in field(tab, "site", "devices-new-form")

    refused = send(tech, tab, "devices-new-form", key="acme-lt9", hostname="", role="workstation", os="Windows 11")
    assert refused.status_code == 422
    assert problems(field(refused.text, "hostname", "devices-new-form"))
    assert 'value="Windows 11"' in field(refused.text, "os", "devices-new-form")
    assert "acme-lt9" not in [d["key"] for d in objects.list_items(db, "acme", "devices")]

    added = send(
        tech, tab, "devices-new-form", key="acme-lt9", hostname="ACME-LT9", site="main", features="patching backup"
    )
    assert flash(added) == ["device acme-lt9 added"]
    assert 'id="devices-acme-lt9"' in added.text
    assert objects.get_item(db, "acme", "devices", "acme-lt9")["features"] == ["patching", "backup"]

    editing = page_of(tech, "/clients/acme?tab=devices&kind=devices&edit=acme-lt9")
    changed = send(tech, editing, "devices-edit-form", os="Windows 11 Pro", checks="disk_space, cpu")
    assert flash(changed) == ["device acme-lt9 changed"]
    device = objects.get_item(db, "acme", "devices", "acme-lt9")
    assert (device["os"], device["checks"], device["hostname"]) == ("Windows 11 Pro", ["disk_space", "cpu"], "ACME-LT9")
    stale = send(tech, editing, "devices-edit-form", os="Linux")
    assert stale.status_code == 412 and 'value="Windows 11 Pro"' in field(stale.text, "os", "devices-edit-form")
    assert objects.get_item(db, "acme", "devices", "acme-lt9")["os"] == "Windows 11 Pro"

    gone = tech.post(action_of(editing, "devices-remove-form"), data=form_fields(editing, "devices-remove-form"))
    assert flash(gone) == ["device acme-lt9 retired"]
    assert "retired" in re.search(r'<tr id="devices-acme-lt9".*?</tr>', gone.text, re.S).group(0)
    assert objects.get_item(db, "acme", "devices", "acme-lt9")["active"] is False

    for role in ("bookkeeper", "readonly"):
        http, csrf = book["signed"][role]
        assert 'id="new-devices"' not in page_of(http, "/clients/acme?tab=devices")
        answer = http.post("/clients/acme/devices/acme-dc01", data={"csrf": csrf, "hostname": "X"})
        assert answer.status_code == 403
        assert http.post("/clients/acme/devices/acme-dc01/remove", data={"csrf": csrf}).status_code == 403
    assert objects.get_item(db, "acme", "devices", "acme-dc01")["hostname"] == "ACME-DC01"


def test_contacts_are_added_edited_and_removed(book):
    db = book["db"]
    owner, _ = book["signed"]["owner"]
    tab = page_of(owner, "/clients/acme?tab=contacts")
    refused = send(owner, tab, "contacts-new-form", name="Ana Lee", email="not-an-address", roles=["technical"])
    assert refused.status_code == 422
    assert problems(field(refused.text, "email", "contacts-new-form")) and not problems(field(refused.text, "name"))
    assert 'value="technical" checked' in field(refused.text, "roles", "contacts-new-form")
    assert [c["name"] for c in objects.list_items(db, "acme", "contacts")] == ["Jo Smith"]

    added = send(owner, tab, "contacts-new-form", name="Ana Lee", email="ana@acmedental.example", roles=["technical"])
    assert flash(added) == ["contact Ana Lee added"]
    ana = next(c for c in objects.list_items(db, "acme", "contacts") if c["name"] == "Ana Lee")

    editing = page_of(owner, f"/clients/acme?tab=contacts&kind=contacts&edit={ana['id']}")
    edited = send(owner, editing, "contacts-edit-form", phone="555-0100", roles=["technical", "billing"])
    assert flash(edited) == ["contact Ana Lee changed"]
    now = objects.get_item(db, "acme", "contacts", str(ana["id"]))
    assert now["phone"] == "555-0100" and sorted(now["roles"]) == ["billing", "technical"]
    stale = send(owner, editing, "contacts-edit-form", phone="555-0199")
    assert stale.status_code == 412 and 'value="555-0100"' in field(stale.text, "phone", "contacts-edit-form")

    editing = page_of(owner, f"/clients/acme?tab=contacts&kind=contacts&edit={ana['id']}")
    removed = owner.post(action_of(editing, "contacts-remove-form"), data=form_fields(editing, "contacts-remove-form"))
    assert flash(removed) == ["contact Ana Lee deleted"]
    assert [c["name"] for c in objects.list_items(db, "acme", "contacts")] == ["Jo Smith"]

    keeper, csrf = book["signed"]["bookkeeper"]
    jo = objects.list_items(db, "acme", "contacts")[0]
    assert keeper.post(f"/clients/acme/contacts/{jo['id']}", data={"csrf": csrf, "name": "X"}).status_code == 403


def test_sites_and_vendor_accounts_are_added_and_edited(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    tab = page_of(tech, "/clients/acme?tab=devices")
    site = send(tech, tab, "sites-new-form", key="annex", name="Annex", address="2 Side St")
    assert flash(site) == ["site annex added"]
    editing = page_of(tech, "/clients/acme?tab=devices&kind=sites&edit=annex")
    assert flash(send(tech, editing, "sites-edit-form", name="North annex")) == ["site annex changed"]
    assert objects.get_item(db, "acme", "sites", "annex")["name"] == "North annex"
    # a site with devices is not removed: said, and nothing changed
    main = page_of(tech, "/clients/acme?tab=devices&kind=sites&edit=main")
    kept = tech.post(action_of(main, "sites-remove-form"), data=form_fields(main, "sites-remove-form"))
    assert "has devices" in flash(kept)[0] and objects.get_item(db, "acme", "sites", "main")

    refused = send(tech, tab, "accounts-new-form", key="acme-m365", kind="hosted", vendor="", users="-2")
    assert refused.status_code == 422
    assert problems(field(refused.text, "vendor", "accounts-new-form"))
    assert problems(field(refused.text, "users", "accounts-new-form"))
    added = send(tech, tab, "accounts-new-form", key="acme-m365", kind="hosted", vendor="microsoft365", service="email")
    assert flash(added) == ["vendor account acme-m365 added"]
    editing = page_of(tech, "/clients/acme?tab=devices&kind=accounts&edit=acme-m365")
    assert flash(send(tech, editing, "accounts-edit-form", users="12")) == ["vendor account acme-m365 changed"]
    account = objects.get_item(db, "acme", "accounts", "acme-m365")
    assert (account["users"], account["service"]) == (12, "email")
    closed = tech.post(action_of(editing, "accounts-remove-form"), data=form_fields(editing, "accounts-remove-form"))
    assert flash(closed) == ["vendor account acme-m365 closed"]

    readonly, csrf = book["signed"]["readonly"]
    assert readonly.post("/clients/acme/sites", data={"csrf": csrf, "key": "x", "name": "X"}).status_code == 403


def test_a_pending_backup_job_is_activated_paused_and_retired(book):
    db = book["db"]
    tech, _ = book["signed"]["technician"]
    tab = page_of(tech, "/clients/acme?tab=backups")
    assert '<option value="acme-dc01">acme-dc01</option>' in field(tab, "device", "backup_jobs-new-form")
    refused = send(tech, tab, "backup_jobs-new-form", key="nas-copy", name="NAS copy", product="", grace_minutes="x")
    assert refused.status_code == 422
    assert problems(field(refused.text, "product", "backup_jobs-new-form"))
    assert problems(field(refused.text, "grace_minutes", "backup_jobs-new-form"))

    added = send(
        tech, tab, "backup_jobs-new-form", key="nas-copy", name="NAS copy", product="synology", status="pending"
    )
    assert flash(added) == ["backup job nas-copy added"]
    assert "backup job(s) wait for an answer" in page_of(tech, "/clients/acme")

    def row(page: str) -> str:
        return re.search(r'<tr id="backup_jobs-nas-copy".*?</tr>', page, re.S).group(0)

    def buttons(page: str) -> list[str]:
        return re.findall(r'data-job-action="(\w+)"', row(page))

    pending = page_of(tech, "/clients/acme?tab=backups")
    assert 'data-status="pending"' in row(pending) and buttons(pending) == ["activate", "pause", "retire"]
    activate = re.search(r'<form method="post" action="([^"]+/activate)"', row(pending)).group(1)
    answer = {"csrf": book["signed"]["technician"][1], "status": "pending"}
    active = tech.post(activate, data=answer)
    assert flash(active) == ["backup job nas-copy is active"]
    assert buttons(active.text) == ["pause", "retire"]
    assert objects.get_item(db, "acme", "backup_jobs", "nas-copy")["status"] == "active"
    # the page that showed it pending is stale: its answer is refused, nothing done
    again = tech.post(activate.replace("/activate", "/retire"), data=answer)
    assert "is active now" in flash(again)[0]
    assert objects.get_item(db, "acme", "backup_jobs", "nas-copy")["status"] == "active"
    paused = tech.post(activate.replace("/activate", "/pause"), data=answer | {"status": "active"})
    assert flash(paused) == ["backup job nas-copy is paused"] and buttons(paused.text) == ["activate", "retire"]

    keeper, csrf = book["signed"]["bookkeeper"]
    assert "data-job-action" not in page_of(keeper, "/clients/acme?tab=backups")
    assert keeper.post(activate, data={"csrf": csrf}).status_code == 403
    assert objects.get_item(db, "acme", "backup_jobs", "nas-copy")["status"] == "paused"
    # another client's job is not answered through this client's page
    assert tech.post("/clients/bravo/backup-jobs/nas-copy/activate", data=answer).status_code == 404


# ------------------------------------------------------------------------------------------------ the tabs


def test_every_tab_shows_what_it_holds_and_readonly_sees_no_form(book):
    owner, _ = book["signed"]["owner"]
    readonly, _ = book["signed"]["readonly"]
    expected = {
        "overview": ["acme-managed", "Open tickets", "Prepaid ledger"],
        "agreements": ["acme-managed", "acme-b1"],
        "devices": ["ACME-DC01", "Main office", "acme-siem"],
        "contacts": ["Jo Smith", "jo@acmedental.example"],
        "backups": ["dc01-nightly", "DC01 nightly"],
        "time": ["monthly patches", 'id="log-time"'],
        "ledger": ["acme-b1", "deposit"],
        "invoices": ["Invoices"],
        "history": ["acme-managed", "system", "added"],
    }
    for tab, texts in expected.items():
        page = page_of(owner, f"/clients/acme?tab={tab}")
        assert f'id="tab-{tab}" aria-current="page"' in page, tab
        for text in texts:
            assert text in page, (tab, text)
        assert "TIME-CORRECTIONS" not in page  # the place kept for them is not shown
        seen = page_of(readonly, f"/clients/acme?tab={tab}")
        assert not re.search(r'<form method="post" action="/clients/', seen), tab  # no form that changes anything
    assert page_of(owner, "/clients/acme?tab=nonsense").count('aria-current="page"') == 1  # the overview


def test_the_history_tab_says_who_changed_what_before_and_after(book):
    owner, _ = book["signed"]["owner"]
    editing = page_of(owner, "/clients/acme?tab=devices&kind=devices&edit=acme-dc01")
    assert 'href="/clients/acme?tab=history&amp;object=device&amp;item=acme-dc01"' in editing
    send(owner, editing, "devices-edit-form", os="Windows Server 2022")
    history = page_of(owner, "/clients/acme?tab=history")
    first = re.search(r'<tr class="change-update">.*?</tr>', history, re.S).group(0)
    assert "user:owner" in first and "acme-dc01" in first
    assert "<del>Windows Server 2019</del> → <ins>Windows Server 2022</ins>" in first
    own = page_of(owner, "/clients/acme?tab=history&object=device&item=acme-dc01")
    assert "History of device acme-dc01" in own and "Windows Server 2022" in own and "Jo Smith" not in own
    assert owner.get("/clients/bravo?tab=history&object=device&item=acme-dc01").status_code == 404


def test_a_refused_form_shows_its_tab_whose_links_stay_on_the_tab(book):
    db = book["db"]
    many = [{"key": f"bravo-ws{i:02d}", "hostname": f"BRAVO-WS{i:02d}"} for i in range(60)]
    import_book(db, small() | {"clients": [{"key": "bravo", "name": "Bravo Bakery", "devices": many}]})
    tech, _ = book["signed"]["technician"]
    tab = page_of(tech, "/clients/bravo?tab=devices")
    assert 'href="/clients/bravo?tab=devices&amp;devices=50" rel="next"' in tab
    refused = send(tech, tab, "devices-new-form", key="bravo-ws00", hostname="DUPLICATE")
    assert refused.status_code == 422 and "already exists" in " ".join(problems(field(refused.text, "key")))
    assert 'href="/clients/bravo?tab=devices&amp;devices=50" rel="next"' in refused.text
    assert 'aria-current="page" class="current">Devices<' in refused.text
    assert tech.get("/clients/bravo?tab=devices&devices=50").text.count('<tr id="devices-') == 10


def test_an_invoice_page_says_who_issued_and_voided_it(book):
    from tenure.billing.service import run_billing

    db = book["db"]
    owner, csrf = book["signed"]["owner"]
    number = run_billing(db, "2026-11").invoices[0]["number"]
    for action in ("issue", "void"):
        owner.post(f"/invoices/{number}/{action}", data={"csrf": csrf})
    shown = page_of(owner, f"/invoices/{number}")
    rows = re.findall(r'<tr class="change-update">.*?</tr>', shown, re.S)
    assert len(rows) == 2 and all("user:owner" in row for row in rows)
    assert "<del>Issued</del> → <ins>Void</ins>" in rows[0] and "<del>Draft</del> → <ins>Issued</ins>" in rows[1]
