"""The service desk (issue 18, "Tickets people work"): a phone call becomes a ticket, is assigned, worked with
notes and time against it, closed, and the time is billed by coverage on the next run; targets give due times
and breaches; closing a maintenance ticket records its task as done. Service, CLI and API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, create_user_token, set_active
from tenure.agreements.service import log_time
from tenure.api.app import create_app
from tenure.billing import service as billing
from tenure.book.service import import_book
from tenure.desk import rules
from tenure.desk import service as desk
from tenure.errors import NotFound, TenureError
from tenure.maintenance.models import MaintenanceOccurrence, MaintenanceTask
from tenure.maintenance.service import run_due
from tenure.vocabulary import ACTIVE_TICKET_STATUSES, TICKET_PRIORITIES, TICKET_STATUSES
from tests.test_billing import MANAGED, book

PASSWORD = "a long enough password"
ADHOC = {
    "key": "willow",
    "name": "Willow Dental",
    "devices": [{"key": "willow-ws1", "hostname": "WILLOW-WS1", "role": "workstation"}],
}


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def desk_db(db):
    clock.set_now("2026-11-10T09:00:00Z")
    import_book(db, book(dict(MANAGED, time_entries=[]), ADHOC))
    create_user(db, "ana", PASSWORD, "technician")
    create_user(db, "ben", PASSWORD, "technician")
    return db


# ------------------------------------------------------------------------------------------------ rules


@given(st.sampled_from(TICKET_STATUSES), st.sampled_from(TICKET_STATUSES))
def test_a_closed_ticket_moves_only_by_reopening_and_nothing_goes_back_to_new(current, target):
    allowed = current != "closed" and target not in ("new", current)
    try:
        rules.check_move(current, target)
        moved = True
    except rules.DeskError:
        moved = False
    assert moved == allowed


@given(st.sampled_from((*rules.TARGET_KINDS, "unknown")), st.sampled_from(TICKET_PRIORITIES))
def test_every_ticket_gets_a_response_before_its_resolution_and_a_more_urgent_one_sooner(kind, priority):
    opened = datetime(2026, 11, 10, 9, tzinfo=UTC)
    due = rules.due_times({}, kind, priority, opened)
    assert opened < due.respond_by < due.due_at
    if priority != "P1":
        more_urgent = TICKET_PRIORITIES[TICKET_PRIORITIES.index(priority) - 1]
        assert rules.due_times({}, kind, more_urgent, opened).due_at < due.due_at


def test_the_msps_targets_override_the_defaults_and_bad_ones_are_named():
    opened = datetime(2026, 11, 10, 9, tzinfo=UTC)
    due = rules.due_times({"managed": {"P1": {"resolution": 60}}}, "managed", "P1", opened)
    assert due.due_at == opened + timedelta(minutes=60) and due.respond_by == opened + timedelta(minutes=30)
    problems = rules.check_targets({"managed": {"P9": {}}, "gold": {}, "adhoc": {"P2": {"response": 0}}})
    assert problems == [
        "ticket_targets.managed.P9: not one of P1, P2, P3, P4",
        "ticket_targets.gold: not one of managed, monitoring, call_before_service, retainer, adhoc, default",
        "ticket_targets.adhoc.P2.response: must be a whole number of minutes above 0",
    ]
    assert rules.agreement_kind_for(["adhoc", "managed"]) == "managed" and rules.agreement_kind_for([]) == "default"


# ---------------------------------------------------------------------------------------------- service


def test_a_phone_ticket_is_assigned_worked_closed_and_its_time_billed_by_coverage(desk_db):
    db = desk_db
    opened = desk.open_ticket(db, "willow", "Printer jammed", kind="incident", priority="P2", device="WILLOW-WS1")
    n = opened["ticket"]
    assert (opened["status"], opened["device"], opened["priority"], opened["assignee"]) == (
        "new", "willow-ws1", "P2", None,
    )  # fmt: skip
    # willow has no agreement: the reactive targets (P2: answered in 4 hours, resolved in 2 days)
    assert opened["due_at"] == "2026-11-12T09:00:00+00:00" and not opened["breached"]
    assert desk.assign_ticket(db, n, "ana")["assignee"] == "ana"
    noted = desk.add_note(db, n, "Called back: coming on site at 2", public=True, author="ana")
    assert noted["notes"] == [
        {"at": "2026-11-10T09:00:00+00:00", "author": "ana", "public": True, "text": "Called back: coming on site at 2"}
    ]
    clock.set_now("2026-11-10T14:00:00Z")
    logged = log_time(db, "willow", 50, "onsite", technician="ana", ticket=n)
    assert logged.ticket == n and logged.portions[0]["layer"] == "billable"  # no coverage: billed by the hour
    assert desk.ticket_view(db, n)["status"] == "in_progress"  # work on a new ticket starts it
    desk.change_status(db, n, "resolved", note="roller replaced")
    closed = desk.close_ticket(db, n)
    assert closed["status"] == "closed" and closed["closed_at"] == "2026-11-10T14:00:00+00:00"
    view = desk.ticket_view(db, n)
    assert view["minutes"] == 50 and [(t["minutes"], t["paid_by"][0]["line_kind"]) for t in view["time"]] == [
        (50, "hourly")
    ]
    assert [n_["text"] for n_ in view["notes"]] == ["Called back: coming on site at 2", "roller replaced"]
    # the next billing run bills it by coverage: 50 minutes, rounded to 60, at the MSP's rate
    clock.set_now("2026-12-01T07:00:00Z")
    invoices = {i["client"]: i for i in billing.run_billing(db, "2026-12").invoices}
    lines = [line for line in invoices["willow"]["lines"] if line["kind"] == "hourly"]
    assert sum(line["minutes"] for line in lines) == 60


def test_covered_work_on_a_ticket_comes_from_the_included_hours(desk_db):
    db = desk_db
    n = desk.open_ticket(db, "acme", "Outlook will not start", priority="P1")["ticket"]
    assert desk.ticket_view(db, n)["due_at"] == "2026-11-10T13:00:00+00:00"  # managed P1: 4 hours
    log_time(db, "acme", 30, "remote_support", ticket=n)
    (entry,) = desk.ticket_view(db, n)["time"]
    assert [(p["layer"], p["agreement"]) for p in entry["paid_by"]] == [("included", "acme-m")]
    with pytest.raises(TenureError, match="another client's"):
        log_time(db, "willow", 30, "remote_support", ticket=n)


def test_reopen_and_the_moves_the_desk_refuses(desk_db):
    db = desk_db
    n = desk.open_ticket(db, "acme", "VPN drops")["ticket"]
    with pytest.raises(TenureError, match="reopen"):
        desk.reopen_ticket(db, n)
    desk.close_ticket(db, n, note="duplicate of another call")
    with pytest.raises(TenureError, match="closed: reopen it first"):
        desk.change_status(db, n, "in_progress")
    reopened = desk.reopen_ticket(db, n, note="it was not a duplicate")
    assert (reopened["status"], reopened["closed_at"]) == ("in_progress", None)
    with pytest.raises(TenureError, match="back to new"):
        desk.change_status(db, n, "new")
    with pytest.raises(NotFound):
        desk.assign_ticket(db, n, "nobody-here")
    set_active(db, "ben", False)
    with pytest.raises(TenureError, match="deactivated"):
        desk.assign_ticket(db, n, "ben")
    with pytest.raises(TenureError, match="priority 'P7'"):
        desk.open_ticket(db, "acme", "x", priority="P7")
    with pytest.raises(TenureError, match="kind 'outage'"):
        desk.open_ticket(db, "acme", "x", kind="outage")


def test_the_queue_filters_and_flags_breaches(desk_db):
    db = desk_db
    urgent = desk.open_ticket(db, "acme", "Server down", priority="P1", assignee="ana")["ticket"]
    slow = desk.open_ticket(db, "willow", "New mouse", kind="request", priority="P4")["ticket"]
    done = desk.open_ticket(db, "willow", "Password reset", assignee="ben")["ticket"]
    desk.close_ticket(db, done)
    clock.set_now("2026-11-10T14:00:00Z")  # 5 hours on: the P1's 4 hours are gone
    page = desk.tickets_page(db, queue=True)
    assert [t["ticket"] for t in page.items] == [slow, urgent]
    assert [t["ticket"] for t in desk.tickets_page(db, breached=True).items] == [urgent]
    assert desk.tickets_page(db, queue=True).items[1]["breach"] == "resolution"
    assert [t["ticket"] for t in desk.tickets_page(db, assignee="ana").items] == [urgent]
    assert [t["ticket"] for t in desk.tickets_page(db, assignee="").items] == [slow]
    assert [t["ticket"] for t in desk.tickets_page(db, status="closed").items] == [done]  # closed ones findable
    assert [t["ticket"] for t in desk.tickets_page(db, priority="P4", client="willow").items] == [slow]
    assert desk.tickets_page(db, status="all").total == 3


def test_a_slower_priority_moves_the_due_time(desk_db):
    db = desk_db
    n = desk.open_ticket(db, "acme", "Slow laptop", priority="P1")["ticket"]
    changed = desk.update_ticket(db, n, {"priority": "P4", "title": "Slow laptop (one user)"})
    assert changed["due_at"] == "2026-11-13T09:00:00+00:00" and changed["title"] == "Slow laptop (one user)"


def test_closing_a_maintenance_ticket_records_the_task_as_done(db):
    clock.set_now("2026-11-03T10:00:00Z")
    import_book(db, book(MANAGED))
    report = run_due(db, ["acme"])
    ticketed = [i for i in report.items if i.ticket]
    assert ticketed, "a managed client gets maintenance tickets"
    item = ticketed[0]
    view = desk.ticket_view(db, item.ticket)
    assert view["kind"] == "maintenance" and view["due_at"] is not None
    desk.close_ticket(db, item.ticket, note="patched and rebooted")
    with db.reader() as s:
        query = select(MaintenanceOccurrence).where(MaintenanceOccurrence.ticket_id == item.ticket)
        occurrence = s.scalars(query).one()
        assert occurrence.done_at == datetime(2026, 11, 3, 10, tzinfo=UTC)
    again = run_due(db, ["acme"])
    assert item.task not in {i.task for i in again.items}  # done: not due again until its next date


def test_closing_a_clients_own_maintenance_task_sets_its_last_done(db):
    clock.set_now("2026-11-03T10:00:00Z")
    import_book(db, book(MANAGED))
    run_due(db, ["acme"])
    with db.unit_of_work() as s:
        occurrence = s.scalars(select(MaintenanceOccurrence)).first()
        task = s.get(MaintenanceTask, occurrence.task_id)
        own = MaintenanceTask(
            client_id=occurrence.client_id, key=f"own-{task.key}", title=task.title, schedule=task.schedule
        )
        s.add(own)
        s.flush()
        occurrence.task_id, ticket = own.id, occurrence.ticket_id
    desk.change_status(db, ticket, "closed")
    with db.reader() as s:
        assert str(s.scalars(select(MaintenanceTask.last_done).where(MaintenanceTask.key.like("own-%"))).one()) == (
            "2026-11-03"
        )


# -------------------------------------------------------------------------------------------------- CLI


def test_the_command_line_works_a_ticket(desk_db, cli):
    opened = json.loads(cli("ticket", "open", "willow", "--title", "Phone: printer", "--priority", "P2",
                            "--device", "willow-ws1", "--json", "--now", "2026-11-10T09:00:00Z").stdout)  # fmt: skip
    n = str(opened["ticket"])
    assert set(opened) >= {"ticket", "client", "device", "kind", "priority", "status", "assignee", "title",
                           "billable", "alerts", "opened_at", "due_at", "closed_at", "minutes", "notes"}  # fmt: skip
    assert json.loads(cli("ticket", "assign", n, "ana", "--json").stdout)["assignee"] == "ana"
    noted = json.loads(cli("ticket", "note", n, "on my way", "--public", "--json").stdout)
    assert noted["notes"][0]["public"] and noted["notes"][0]["text"] == "on my way"
    cli("time", "log", "willow", "--minutes", "20", "--type", "onsite", "--ticket", n, "--now", "2026-11-10T10:00:00Z")
    assert json.loads(cli("ticket", "status", n, "waiting_on_client", "--json").stdout)["status"] == "waiting_on_client"
    assert json.loads(cli("ticket", "close", n, "--json").stdout)["status"] == "closed"
    shown = json.loads(cli("ticket", "show", n, "--json").stdout)
    assert shown["minutes"] == 20 and shown["time"][0]["paid_by"][0]["layer"] == "billable"
    assert json.loads(cli("ticket", "reopen", n, "--json").stdout)["status"] == "in_progress"
    listed = json.loads(cli("ticket", "list", "--assignee", "ana", "--json").stdout)["tickets"]
    assert [t["ticket"] for t in listed] == [int(n)]
    refused = cli("ticket", "status", n, "new", check=False)
    assert refused.returncode != 0 and refused.stderr.strip().count("\n") == 0 and "new" in refused.stderr
    wrong = cli("time", "log", "acme", "--minutes", "5", "--type", "onsite", "--ticket", n, check=False)
    assert wrong.returncode != 0 and "another client's" in wrong.stderr


# -------------------------------------------------------------------------------------------------- API


def test_the_api_opens_changes_notes_and_lists_tickets(desk_db):
    db = desk_db
    token, _ = create_user_token(db, "ana-token", None, "ana")
    reader = create_user(db, "rita", PASSWORD, "readonly") and create_user_token(db, "rita-token", None, "rita")[0]
    auth, read = {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {reader}"}
    with TestClient(create_app(db)) as http:
        made = http.post("/api/v1/tickets", json={"client": "acme", "title": "Phone: no mail", "priority": "P2"},
                         headers=auth)  # fmt: skip
        assert made.status_code == 201, made.text
        n = made.json()["ticket"]
        assert made.json()["status"] == "new" and made.json()["due_at"] == "2026-11-10T17:00:00+00:00"
        assert http.post("/api/v1/tickets", json={"client": "acme", "title": "x"}, headers=read).status_code == 403
        bad = http.post("/api/v1/tickets", json={"client": "acme", "title": "x", "priority": "P9"}, headers=auth)
        assert bad.status_code == 422
        patched = http.patch(f"/api/v1/tickets/{n}", json={"assignee": "ana", "status": "in_progress"}, headers=auth)
        assert (patched.json()["assignee"], patched.json()["status"]) == ("ana", "in_progress")
        noted = http.post(f"/api/v1/tickets/{n}/notes", json={"text": "mailbox full", "public": False}, headers=auth)
        assert noted.status_code == 201 and noted.json()["notes"][0]["author"] == "ana"
        logged = http.post("/api/v1/time-entries", json={"client": "acme", "minutes": 15, "work_type": "remote_support",
                                                          "ticket": n}, headers=auth)  # fmt: skip
        assert logged.status_code == 201 and logged.json()["ticket"] == n
        got = http.get(f"/api/v1/tickets/{n}", headers=read).json()
        assert got["minutes"] == 15 and got["time"][0]["paid_by"][0]["layer"] == "included"
        closing = http.patch(f"/api/v1/tickets/{n}", json={"status": "closed", "note": "emptied"}, headers=auth)
        assert closing.json()["status"] == "closed"
        refused = http.patch(f"/api/v1/tickets/{n}", json={"status": "resolved"}, headers=auth)
        assert refused.status_code == 422 and "reopen" in refused.json()["detail"]
        closed = http.get("/api/v1/tickets", params={"status": "closed", "assignee": "ana"}, headers=read).json()
        assert [t["ticket"] for t in closed["tickets"]] == [n] and closed["total"] == 1
        queue = http.get("/api/v1/tickets", params={"queue": "true"}, headers=read).json()
        assert all(t["status"] in ACTIVE_TICKET_STATUSES for t in queue["tickets"])
        assert http.get("/api/v1/tickets/999999", headers=read).status_code == 404
        assert http.post(f"/api/v1/tickets/{n}/reopen", headers=auth).json()["status"] == "in_progress"


# ------------------------------------------------------------------------------------------- migration


def test_the_migration_moves_tickets_of_before_to_the_desks_statuses_and_kinds(tmp_path):
    import sqlalchemy as sa
    from alembic import command

    from tenure.db.engine import alembic_config

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        config = alembic_config(connection)
        command.upgrade(config, "0012")
        connection.exec_driver_sql("INSERT INTO client (id, key, name, domains, billable_alerts, forward_alerts) "
                                   "VALUES (1, 'acme', 'Acme', '[]', 0, 0)")  # fmt: skip
        for n, (kind, status) in enumerate(
            [("alert", "open"), ("quote", "awaiting_approval"), ("maintenance", "handed_over"), ("request", "closed")],
            start=1,
        ):
            connection.exec_driver_sql(
                "INSERT INTO ticket (id, client_id, kind, status, title, billable, opened_at, alert_count) "
                f"VALUES ({n}, 1, '{kind}', '{status}', 't{n}', 0, '2026-11-01 00:00:00', 0)"
            )
        command.upgrade(config, "0013")
        rows = connection.exec_driver_sql("SELECT kind, status, priority FROM ticket ORDER BY id").all()
    assert [tuple(r) for r in rows] == [
        ("alert", "new", "P3"),
        ("alert", "awaiting_approval", "P3"),
        ("maintenance", "closed", "P3"),
        ("request", "closed", "P3"),
    ]


# ------------------------------------------------------------------------------------------------ pages


def test_time_logged_on_the_clients_time_tab_can_name_its_ticket(desk_db):
    from tenure.accounts.users import log_in
    from tenure.web.routes import SESSION_COOKIE

    db = desk_db
    n = desk.open_ticket(db, "willow", "Phone: scanner")["ticket"]
    opened = log_in(db, "ana", PASSWORD, "127.0.0.1")
    http = TestClient(create_app(db), base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    form = {"csrf": opened.csrf, "minutes": "25", "work_type": "remote_support", "note": "driver", "ticket": f"#{n}"}
    done = http.post("/clients/willow/time", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert desk.ticket_view(db, n)["minutes"] == 25
    wrong = http.post("/clients/acme/time", data=form, follow_redirects=True)
    assert "another client" in wrong.text and desk.ticket_view(db, n)["minutes"] == 25
    queue = http.get("/tickets", params={"status": "all", "client": "willow"})
    assert queue.status_code == 200 and f'data-ticket="{n}"' in queue.text
    page = http.get(f"/tickets/{n}")
    assert "Phone: scanner" in page.text and "25" in page.text and "billed at" in page.text
    assert http.get("/tickets/999999").status_code == 404
