"""A ticket's row says who opened it, and its history tells its creation from the row: no change-log row is
written for it (intake opens thousands in a storm), yet the history reads as before — who opened it, when,
in what state — for one ticket and among everything of its client, page after page."""

from __future__ import annotations

import json

from sqlalchemy import func, select, update

from tenure import clock
from tenure.book.demo import load_demo
from tenure.book.history import history
from tenure.db.changelog import ObjectChange
from tenure.db.engine import Database
from tenure.db.uow import as_actor
from tenure.desk import service as desk
from tenure.intake import service as intake
from tenure.triage.models import Ticket
from tests.support import demo_on_file, migrate


def _event(title: str, status: str = "firing") -> bytes:
    body = {"source": "probe", "client": "acme", "title": title, "status": status, "service": "monitoring"}
    return json.dumps(body | {"fingerprint": title}).encode()


def _logged_creations(db: Database) -> int:
    with db.reader() as s:
        query = select(func.count()).where(ObjectChange.object_type == "ticket", ObjectChange.action == "create")
        return s.scalar(query) or 0


def test_a_ticket_intake_opened_tells_who_opened_it_and_in_what_state(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    with as_actor("worker"):
        (opened,) = intake.ingest_many(db, "event", [_event("CPU high")])
    assert _logged_creations(db) == 0  # the row tells it
    with db.reader() as s:
        assert s.get(Ticket, opened.ticket).opened_by == "worker"

    (created,) = history(db, "ticket", str(opened.ticket))["changes"]
    assert (created["action"], created["actor"], created["at"]) == ("create", "worker", "2026-11-24T15:00:00+00:00")
    assert created["label"] == f"#{opened.ticket} CPU high"
    assert (created["after"]["status"], created["after"]["title"]) == ("new", "CPU high")

    clock.set_now("2026-11-24T16:00:00Z")
    intake.ingest_many(db, "event", [_event("CPU high", "resolved")])
    log = history(db, "ticket", str(opened.ticket))
    closed, created = log["changes"]
    assert (log["total"], closed["action"], created["action"]) == (2, "update", "create")
    # the creation shows the state the ticket was opened in, not the one it is in now
    assert created["after"]["status"] == "new" and closed["after"]["status"] == "closed"
    assert created["after"] == closed["before"]
    assert created["at"] == "2026-11-24T15:00:00+00:00"


def test_a_ticket_a_person_opens_names_them(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    with as_actor("user:terry"):
        ticket = desk.open_ticket(db, "acme", "Printer jammed")
    number = ticket["ticket"]
    assert ticket["opened_by"] == "user:terry" == desk.ticket_view(db, number)["opened_by"]
    assert _logged_creations(db) == 0
    with as_actor("user:olive"):
        desk.close_ticket(db, number)
    closed, created = history(db, "ticket", str(number))["changes"]
    assert (created["actor"], created["after"]["status"]) == ("user:terry", "new")
    assert (closed["actor"], closed["changed"]["status"]) == ("user:olive", ["new", "closed"])


def test_a_clients_history_holds_its_tickets_creations_in_order_page_by_page(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    before = history(db, "client", "acme", limit=1000)["total"]
    clock.set_now("2026-11-25T09:00:00Z")
    (disk,) = intake.ingest_many(db, "event", [_event("Disk low")])
    clock.set_now("2026-11-25T10:00:00Z")
    with as_actor("user:terry"):
        desk.close_ticket(db, disk.ticket)
        clock.set_now("2026-11-25T11:00:00Z")
        printer = desk.open_ticket(db, "acme", "Printer jammed")["ticket"]

    whole = history(db, "client", "acme", limit=1000)
    assert whole["total"] == before + 3 == len(whole["changes"])
    newest = [(c["action"], c["object"], c["id"], c["at"][:16]) for c in whole["changes"][:3]]
    assert newest == [
        ("create", "ticket", printer, "2026-11-25T11:00"),
        ("update", "ticket", disk.ticket, "2026-11-25T10:00"),
        ("create", "ticket", disk.ticket, "2026-11-25T09:00"),
    ]
    # one at a time, the same entries in the same order: none twice, none missed
    paged, offset = [], 0
    while offset is not None:
        page = history(db, "client", "acme", limit=2, offset=offset)
        assert page["total"] == whole["total"]
        paged += page["changes"]
        offset = page["next_offset"]
    assert paged == whole["changes"]


def test_a_ticket_opened_before_keeps_its_logged_creation_once(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    with as_actor("user:terry"):
        number = desk.open_ticket(db, "acme", "Old ticket")["ticket"]
    with db.unit_of_work() as s:  # as migration 0021 found a ticket: no opener on the row, its creation logged
        s.execute(update(Ticket).where(Ticket.id == number).values(opened_by=None))  # a statement: not logged
        ticket = s.get(Ticket, number)
        s.add(
            ObjectChange(
                time=ticket.opened_at, actor="user:terry", action="create", object_type="ticket", object_id=number,
                object_label=f"#{number} Old ticket", client_id=ticket.client_id, after={"title": "Old ticket"},
            )
        )  # fmt: skip
    log = history(db, "ticket", str(number))
    assert [(c["action"], c["actor"]) for c in log["changes"]] == [("create", "user:terry")]
    ours = [c for c in history(db, "client", "acme", limit=1000)["changes"] if c["object"] == "ticket"]
    assert [c["action"] for c in ours if c["id"] == number] == ["create"]


def test_going_back_before_0021_writes_the_creations_into_the_log(tmp_path):
    with demo_on_file(tmp_path / "back.db") as db:
        with as_actor("user:terry"):
            number = desk.open_ticket(db, "acme", "Printer jammed")["ticket"]
        migrate(db, "0020")
        with db.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT actor, object_label, time FROM object_change "
                f"WHERE object_type = 'ticket' AND action = 'create' AND object_id = {number}"
            ).all()
        assert [(actor, label) for actor, label, _ in rows] == [("user:terry", f"#{number} Printer jammed")]
