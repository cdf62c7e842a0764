"""A form the server refuses is shown again (422) with what the person typed and the field marked
(`aria-invalid`, the problem beside it), never a redirect that loses the input: logging time (on the client's
time tab and on a ticket), opening a ticket, a note on a ticket, a quote; and, already so, charges, the client's
things (items) and the offboarding start."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from tenure.agreements.models import TimeEntry
from tenure.book.service import import_book
from tenure.desk import service as desk
from tests.books import small
from tests.test_web import people, quick_hashes  # noqa: F401  (fixtures: signed-in users, quick hashes)
from tests.test_web_changes import field, form_fields, page_of, problems

pytestmark = pytest.mark.db


@pytest.fixture
def book(people):  # noqa: F811
    import_book(people["db"], small())
    return people


def refused(http: Any, page: str, form_id: str, **typed: str) -> Any:
    """Send the page's form with `typed` filled in; the answer must be the page again, 422."""
    action = unescape(page.split(f'id="{form_id}"')[0].rsplit('action="', 1)[1].split('"', 1)[0])
    answer = http.post(action, data=form_fields(page, form_id) | typed, follow_redirects=False)
    assert answer.status_code == 422, (answer.status_code, answer.headers.get("location"), answer.text[:500])
    return answer.text


def marked(page: str, form_id: str, name: str) -> list[str]:
    """The field's problems; the field must be marked invalid."""
    box = field(page, name, form_id)
    assert 'aria-invalid="true"' in box, box
    found = problems(box)
    assert found, box
    return found


def kept(page: str, form_id: str, **typed: str) -> None:
    """Each typed value is in the re-rendered form, as the person left it."""
    shown = form_fields(page, form_id)
    for name, value in typed.items():
        assert shown.get(name) == value, (name, shown.get(name), value)


def entries(db: Any) -> int:
    from sqlalchemy import func, select

    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(TimeEntry))


def test_time_logged_on_the_client_tab_with_a_bad_ticket_keeps_what_was_typed(book):
    tech, _ = book["signed"]["technician"]
    before = entries(book["db"])
    tab = page_of(tech, "/clients/acme?tab=time")
    typed = {"minutes": "45", "work_type": "onsite", "ticket": "#99999", "note": "replaced the switch in the closet"}
    again = refused(tech, tab, "log-time", **typed)
    kept(again, "log-time", **typed)
    assert "no ticket #99999" in marked(again, "log-time", "ticket")[0]
    assert entries(book["db"]) == before  # nothing saved

    too_long = refused(tech, tab, "log-time", minutes="2000", note="a day and a half")
    kept(too_long, "log-time", minutes="2000", note="a day and a half")
    assert "1440" in marked(too_long, "log-time", "minutes")[0]


def test_a_ticket_opened_for_an_unknown_client_keeps_its_title_and_description(book):
    tech, _ = book["signed"]["technician"]
    queue = page_of(tech, "/tickets")
    typed = {"client": "nobody-here", "title": "Reception PC will not boot", "description": "Since the power cut",
             "kind": "request", "priority": "P1", "device": "ACME-WS01"}  # fmt: skip
    again = refused(tech, queue, "open-ticket-form", **typed)
    kept(again, "open-ticket-form", **typed)
    assert "nobody-here" in marked(again, "open-ticket-form", "client")[0]
    assert 'id="ticket-queue"' in again  # the queue is still there, under the form

    untitled = refused(tech, queue, "open-ticket-form", client="acme", title="  ", description="no title given")
    kept(untitled, "open-ticket-form", client="acme", description="no title given")
    marked(untitled, "open-ticket-form", "title")


def test_an_empty_note_is_refused_beside_its_box_and_keeps_the_public_tick(book):
    tech, _ = book["signed"]["technician"]
    ticket = desk.open_ticket(book["db"], "acme", "Printer jams")["ticket"]
    page = page_of(tech, f"/tickets/{ticket}")
    again = refused(tech, page, "note-form", text="   ", public="1")
    assert form_fields(again, "note-form").get("public") == "1"  # still ticked
    assert "text" in marked(again, "note-form", "text")[0]
    assert 'id="ticket-notes"' in again and "No note yet." in again


def test_a_quote_with_a_bad_price_keeps_its_description(book):
    tech, _ = book["signed"]["technician"]
    ticket = desk.open_ticket(book["db"], "acme", "New firewall")["ticket"]
    page = page_of(tech, f"/tickets/{ticket}")
    typed = {"amount": "12.999", "description": "A 24-port switch, fitted"}
    again = refused(tech, page, "quote-form", **typed)
    kept(again, "quote-form", **typed)
    assert "decimals" in marked(again, "quote-form", "amount")[0]
    assert '<details class="form-card" id="quote" open>' in again  # the form is open, not folded away


def test_time_logged_on_a_ticket_with_a_date_too_far_keeps_the_note(book):
    tech, _ = book["signed"]["technician"]
    ticket = desk.open_ticket(book["db"], "acme", "Slow laptop")["ticket"]
    page = page_of(tech, f"/tickets/{ticket}")
    typed = {"minutes": "50", "work_type": "remote_support", "day": "1999-01-01", "note": "cleaned up startup"}
    again = refused(tech, page, "ticket-log-time", **typed)
    kept(again, "ticket-log-time", **typed)
    assert "too far" in marked(again, "ticket-log-time", "day")[0]


def test_a_charge_without_an_amount_keeps_its_description(book):
    owner, _ = book["signed"]["owner"]
    tab = page_of(owner, "/clients/acme?tab=time")
    typed = {"description": "Toner cartridge", "amount": "lots", "cost": "40.00"}
    again = refused(owner, tab, "charge-new-form", **typed)
    kept(again, "charge-new-form", **typed)
    marked(again, "charge-new-form", "amount")


def test_a_device_with_a_bad_key_keeps_its_hostname(book):
    tech, _ = book["signed"]["technician"]
    tab = page_of(tech, "/clients/acme?tab=devices")
    typed = {"key": "has spaces", "hostname": "ACME-NEW01", "os": "Windows 11"}
    again = refused(tech, tab, "devices-new-form", **typed)
    kept(again, "devices-new-form", **typed)
    marked(again, "devices-new-form", "key")


def test_an_offboarding_start_with_a_bad_e_mail_keeps_the_answers(book):
    owner, _ = book["signed"]["owner"]
    page = page_of(owner, "/clients/acme/offboarding")
    typed = {"end_of_service": "2026-12-31", "moving_to": "other_msp", "new_contact_name": "Ivy North",
             "new_contact_email": "not an address", "closeout_notes": "agreed the handover"}  # fmt: skip
    again = refused(owner, page, "offboarding-start", **typed)
    kept(again, "offboarding-start", **typed)
    marked(again, "offboarding-start", "new_contact_email")


def test_many_steps_answered_without_a_note_keep_the_ticked_boxes_and_what_was_typed(book):
    owner, _ = book["signed"]["owner"]
    page = page_of(owner, "/clients/acme/offboarding")
    answers = {"end_of_service": "2026-12-31", "moving_to": "other_msp", "new_contact_name": "Ivy North",
               "new_contact_email": "ivy@north.example"}  # fmt: skip
    started = owner.post("/clients/acme/offboarding", data=form_fields(page, "offboarding-start") | answers,
                         follow_redirects=False)  # fmt: skip
    assert started.status_code == 303, started.text[:500]
    run = page_of(owner, started.headers["location"])
    step = re.search(r'data-step-pick="([^"]+)"', run).group(1)
    data = form_fields(run, "bulk") | {"step": step, "note": "  ", "assignee": "dana", "action": "done"}
    again = owner.post(started.headers["location"] + "/many", data=data, follow_redirects=False)
    assert again.status_code == 422, (again.status_code, again.headers.get("location"))
    assert re.search(rf'value="{re.escape(step)}"[^>]*data-step-pick="[^"]+" checked', again.text)
    assert 'id="bulk-assignee"' in again.text and 'value="dana"' in again.text
    note = re.search(r'<input name="note" id="bulk-note"[^>]*>', again.text).group(0)
    assert 'aria-invalid="true"' in note and 'id="bulk-note-problem"' in again.text
