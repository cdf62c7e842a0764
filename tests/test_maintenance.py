"""Proactive maintenance: the default plan (seed 001's list, once), tasks due → tickets for managed clients
once per occurrence, the monthly call-before-service notice with exact prices, nothing for adhoc and
prepaid clients, deferred items back next month, and the iCalendar feed (DST in the MSP's zone)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar
from sqlalchemy import func, select

from tenure import clock
from tenure.book.service import import_book
from tenure.maintenance import rules
from tenure.maintenance import service as maintenance
from tenure.maintenance.models import MaintenanceDecision, MaintenanceTask
from tenure.notices import links
from tenure.notices.models import Notice
from tenure.triage.models import Ticket
from tests.books import small

CHICAGO = ZoneInfo("America/Chicago")


def world() -> dict:
    """small()'s acme (managed, from 2026-01-01) and bravo, plus a call-before-service, an adhoc and a
    prepaid client."""
    book = small()
    book["clients"] += [
        {
            "key": "cedar",
            "name": "Cedar Law",
            "contacts": [
                {"name": "Ann Cedar", "email": "ann@cedarlaw.example", "roles": ["primary"]},
                {"name": "Bob Books", "email": "books@cedarlaw.example", "roles": ["billing"]},
            ],
            "agreements": [
                {
                    "key": "cedar-cbs",
                    "kind": "call_before_service",
                    "start": "2026-06-01",
                    "monthly_fee": "150.00",
                    "hourly_rate": "127.25",
                    "covers": ["monitoring", "backup_monitoring"],
                }
            ],
        },
        {
            "key": "dune",
            "name": "Dune Dental",
            "contacts": [{"name": "Dee", "email": "dee@dune.example", "roles": ["primary"]}],
            "agreements": [{"key": "dune-adhoc", "kind": "adhoc", "start": "2026-01-01", "hourly_rate": "150.00"}],
            "invoices": [{"date": "2026-10-10", "total": "300.00", "recurring": False, "paid": True}],
        },
        {
            "key": "pine",
            "name": "Pine Bakery",
            "contacts": [{"name": "Pat", "email": "pat@pine.example", "roles": ["primary", "billing"]}],
            "blocks": [{"key": "pine-b1", "purchased": "2026-10-01", "hours": 10, "price": "1200.00"}],
        },
    ]
    return book


@pytest.fixture
def loaded(db, monkeypatch):
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, world())
    clock.set_now("2026-12-02T15:00:00Z")  # a Wednesday, 09:00 in Chicago
    return db


def tickets(db, client: str | None = None) -> list[Ticket]:
    from tenure.clients.models import Client

    with db.reader() as s:
        query = select(Ticket).join(Client, Client.id == Ticket.client_id).where(Ticket.kind == "maintenance")
        if client:
            query = query.where(Client.key == client)
        return list(s.scalars(query.order_by(Ticket.id)))


def notices(db, kind: str = "monthly_maintenance") -> list[Notice]:
    with db.reader() as s:
        return list(s.scalars(select(Notice).where(Notice.kind == kind).order_by(Notice.id)))


# ---------------------------------------------------------------------------------------- the plan


def test_the_default_plan_is_seed_001s_list_written_once(loaded):
    # seed 001's list for managed and call-before-service clients, the monthly patching for monitoring ones
    assert maintenance.ensure_default_plan(loaded) == 2 * len(rules.DEFAULT_PLAN) + 1
    assert maintenance.ensure_default_plan(loaded) == 0
    with loaded.reader() as s:
        assert s.scalar(select(func.count()).select_from(MaintenanceTask)) == 15
    shown = maintenance.show_plan(loaded)["defaults"]
    assert set(shown) == {"managed", "call_before_service", "monitoring"}
    assert [t["key"] for t in shown["monitoring"]] == ["patches"]
    assert [t["key"] for t in shown["managed"]] == sorted(
        [
            "daily-review",
            "patches",
            "antivirus-review",
            "malware-check",
            "test-restore",
            "hardware-cleaning",
            "network-security",
        ]
    )
    every_six_months = [t for t in rules.DEFAULT_PLAN if "INTERVAL=6" in t.schedule]
    assert {t.key for t in every_six_months} == {"hardware-cleaning", "network-security"}


def test_schedules_are_rrules_or_cron_lines():
    assert rules.check_schedule("RRULE:FREQ=MONTHLY;BYMONTHDAY=1") is None
    assert rules.check_schedule("DTSTART:20260105T073000 RRULE:FREQ=WEEKLY;BYDAY=MO") is None
    assert rules.check_schedule("0 8 * * 1-5") is None
    assert "FREQ" in rules.check_schedule("RRULE:FREQ=FORTNIGHTLY")
    assert "interval" in rules.check_schedule("PT24H")
    # an RRULE without a time runs at 09:00 local all year, across the DST change of 2027-03-14
    schedule = rules.parse_task_schedule("RRULE:FREQ=WEEKLY;BYDAY=MO")
    found = rules.occurrences(
        schedule, CHICAGO, date(2027, 1, 1), datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 3, 23, tzinfo=UTC)
    )
    assert [o.astimezone(CHICAGO).hour for o in found] == [9, 9, 9, 9]  # Mondays 1, 8, 15, 22 March
    assert [o.hour for o in found] == [15, 15, 14, 14]  # CST, then CDT
    assert rules.price(30, Decimal("127.25")) == Decimal("63.63")  # 63.625, half-up once


# ---------------------------------------------------------------------------------------------- due


def test_managed_clients_get_a_ticket_per_occurrence_once(loaded):
    report = maintenance.run_due(loaded)
    acme = {t.title.rsplit(" (", 1)[0]: t for t in tickets(loaded, "acme")}
    assert len(acme) == 7 and report.tickets_opened == 8  # acme's seven, and cedar's covered daily review
    # acme's agreement covers monitoring and patching, not antivirus, maintenance, hardware, network security
    billable = {title.split(" ")[0] + " " + title.split(" ")[1]: t.billable for title, t in acme.items()}
    assert billable["Daily review"] is False and billable["Monthly patches"] is False
    assert billable["Monthly review"] is True and billable["Network security"] is True
    due = {i.task: i for i in report.items if i.client == "acme"}
    assert due["daily-review"].occurrence == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # 08:00 CST today
    assert due["patches"].occurrence == datetime(2026, 11, 11, 15, 0, tzinfo=UTC)  # second Wednesday, 09:00
    assert due["hardware-cleaning"].occurrence == datetime(2026, 7, 1, 14, 0, tzinfo=UTC)  # 6 months from January

    again = maintenance.run_due(loaded)
    assert again.tickets_opened == 0 and again.notices_written == 0
    assert len(tickets(loaded)) == 8
    assert {i.task for i in again.items if i.client == "acme"} == set(due)  # still due: the tickets are open

    clock.set_now("2026-12-03T15:00:00Z")  # the next morning: only the daily review again
    third = maintenance.run_due(loaded)
    assert third.tickets_opened == 2  # acme's and cedar's daily review
    assert len(tickets(loaded, "acme")) == 8

    with loaded.unit_of_work() as s:  # the patches are done
        ticket = s.get(Ticket, due["patches"].ticket)
        ticket.status = "closed"
    assert "patches" not in {i.task for i in maintenance.run_due(loaded).items if i.client == "acme"}


def test_a_round_works_a_few_clients_per_transaction_and_one_stopped_half_way_is_finished_once(loaded, monkeypatch):
    """The first round of a month opens thousands of tickets for a big MSP: one transaction would hold SQLite's
    write lock, and intake's writer with it, all along. Each chunk of clients commits on its own."""
    monkeypatch.setattr(maintenance, "DUE_CHUNK", 1)
    opened = maintenance._open_ticket

    def failing_for_cedar(s, plan, *args):
        if plan.key == "cedar":
            raise RuntimeError("the database went away")
        return opened(s, plan, *args)

    monkeypatch.setattr(maintenance, "_open_ticket", failing_for_cedar)
    with pytest.raises(RuntimeError):
        maintenance.run_due(loaded)
    assert len(tickets(loaded, "acme")) == 7 and tickets(loaded, "cedar") == []  # acme's chunk was committed
    monkeypatch.setattr(maintenance, "_open_ticket", opened)
    finished = maintenance.run_due(loaded)
    assert finished.tickets_opened == 1 and len(tickets(loaded)) == 8  # cedar's review; acme's not again


def test_a_monitoring_client_gets_its_monthly_patching_and_nothing_else(db, monkeypatch):
    # seed 001: "a monitoring/patch service for as low as $100 per month": the fee pays the monthly patches
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    book = small()
    book["clients"] = [
        {
            "key": "harbor",
            "name": "Harbor Law",
            "contacts": [{"name": "Hal", "email": "hal@harbor.example", "roles": ["primary"]}],
            "agreements": [
                {
                    "key": "harbor-watch",
                    "kind": "monitoring",
                    "start": "2026-09-01",
                    "monthly_fee": "100.00",
                    "block_hours_per_month": 2,
                    "covers": ["monitoring", "patching"],
                }
            ],
        }
    ]
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, book)
    clock.set_now("2026-12-02T15:00:00Z")
    report = maintenance.run_due(db)
    (ticket,) = tickets(db, "harbor")
    assert ticket.title.startswith("Monthly patches") and ticket.billable is False  # covered: the fee pays it
    assert [(i.task, i.action) for i in report.items] == [("patches", "ticket")]
    assert maintenance.run_due(db).tickets_opened == 0  # once per occurrence


def test_call_before_service_clients_get_one_monthly_notice_with_prices(loaded):
    report = maintenance.run_due(loaded)
    assert report.notices_written == 1
    (notice,) = notices(loaded)
    assert notice.to == ["ann@cedarlaw.example"] and notice.state == "waiting"
    assert notice.subject == "Cedar Law: recommended maintenance for December 2026"
    items = {i["task"]: i for i in notice.data["items"]}
    # 127.25 an hour: each estimate × rate, half-up once
    assert {k: i["price"] for k, i in items.items()} == {
        "antivirus-review": "63.63",
        "malware-check": "63.63",
        "hardware-cleaning": "254.50",  # June + 6 months: December
        "network-security": "254.50",
        "patches": "127.25",
        "test-restore": "63.63",
    }
    assert notice.data["total"] == "827.14" and notice.data["rate"] == "127.25"
    assert "daily-review" not in items  # monitoring: covered by the fee, a ticket instead
    assert [t.billable for t in tickets(loaded, "cedar")] == [False]
    for item in items.values():
        assert item["approve"].startswith("http://127.0.0.1:8000/n/") and item["approve"] in notice.body_text
        assert item["defer"] in notice.body_html
    assert "$63.63" in notice.body_text and "$827.14" in notice.body_html
    assert "Example IT" in notice.body_html  # in the MSP's name
    with loaded.reader() as s:
        decisions = list(s.scalars(select(MaintenanceDecision)))
    assert len(decisions) == 6 and {d.month for d in decisions} == {"2026-12"}
    assert all(d.answer is None and d.notice_id == notice.id for d in decisions)

    again = maintenance.run_due(loaded)
    assert again.notices_written == 0 and len(notices(loaded)) == 1
    listed = [i for i in again.items if i.client == "cedar" and i.action == "notice"]
    assert len(listed) == 6 and all(i.notice == notice.id for i in listed)


def test_adhoc_prepaid_and_other_clients_get_no_maintenance(loaded):
    report = maintenance.run_due(loaded)
    assert {i.client for i in report.items} == {"acme", "cedar"}
    for key in ("dune", "pine", "bravo"):
        assert tickets(loaded, key) == []
        assert maintenance.show_plan(loaded, key)["tasks"] == []
    assert maintenance.show_plan(loaded, "dune")["class"] == "adhoc"
    assert maintenance.show_plan(loaded, "pine")["class"] == "prepaid"
    assert len(notices(loaded)) == 1


def test_a_clients_own_task_overrides_the_default(loaded):
    maintenance.set_task(
        loaded, "patches", client="acme", schedule="RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=7;BYMINUTE=0", estimate_minutes=45
    )
    maintenance.set_task(loaded, "hardware-cleaning", client="acme", active=False)
    plan = {t["key"]: t for t in maintenance.show_plan(loaded, "acme")["tasks"]}
    assert plan["patches"]["own"] and plan["patches"]["estimate_minutes"] == 45
    assert plan["patches"]["title"].startswith("Monthly patches")  # the rest comes from the default
    assert "hardware-cleaning" not in plan
    cedar = {t["key"]: t for t in maintenance.show_plan(loaded, "cedar")["tasks"]}
    assert cedar["patches"]["schedule"] == "RRULE:FREQ=MONTHLY;BYDAY=2WE" and not cedar["patches"]["own"]
    report = maintenance.run_due(loaded)
    acme = {i.task: i for i in report.items if i.client == "acme"}
    assert acme["patches"].occurrence == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # Monday 07:00 CST
    assert "hardware-cleaning" not in acme
    with pytest.raises(Exception, match="RRULE"):
        maintenance.set_task(loaded, "patches", client="acme", schedule="RRULE:FREQ=SOMETIMES")


def test_deferred_and_unanswered_items_come_back_next_month(loaded):
    maintenance.run_due(loaded)
    (december,) = notices(loaded)
    ids = {i["task"]: i["decision"] for i in december.data["items"]}
    assert maintenance.answer(loaded, ids["hardware-cleaning"], "deferred")[0]
    recorded, view = maintenance.answer(loaded, ids["antivirus-review"], "approved", "please do")
    assert recorded and view.ticket is not None
    assert not maintenance.answer(loaded, ids["antivirus-review"], "deferred")[0]  # answered once
    (approved,) = [t for t in tickets(loaded, "cedar") if t.id == view.ticket]
    assert approved.billable and "approved by Cedar Law" in approved.title
    # network-security is left unanswered

    clock.set_now("2027-01-04T15:00:00Z")
    report = maintenance.run_due(loaded)
    assert report.notices_written == 1
    january = notices(loaded)[-1]
    items = {i["task"]: i for i in january.data["items"]}
    assert items["hardware-cleaning"]["carried_from"] == "2026-12"  # deferred: back, though not due in January
    assert items["network-security"]["carried_from"] == "2026-12"  # unanswered: back too
    assert items["hardware-cleaning"]["price"] == "254.50"
    assert items["antivirus-review"]["carried_from"] is None  # due again in January on its own
    assert "test-restore" in items
    with loaded.reader() as s:
        old = s.get(MaintenanceDecision, ids["network-security"])
        assert old.answer == "superseded"  # its December link now says so
        assert s.get(MaintenanceDecision, ids["hardware-cleaning"]).answer == "deferred"


def test_maintenance_due_on_the_command_line(loaded, cli):
    first = json.loads(cli("maintenance", "due", "--json", "--now", "2026-12-02T15:00:00Z").stdout)
    assert first["tickets_opened"] == 8 and first["notices_written"] == 1
    assert {d["client"] for d in first["due"]} == {"acme", "cedar"}
    prices = {d["task"]: d["price"] for d in first["due"] if d["action"] == "notice"}
    assert prices["patches"] == "127.25"
    second = json.loads(cli("maintenance", "due", "--json", "--now", "2026-12-02T15:05:00Z").stdout)
    assert second["tickets_opened"] == 0 and second["notices_written"] == 0
    only = json.loads(cli("maintenance", "due", "--client", "dune", "--json", "--now", "2026-12-02T15:05:00Z").stdout)
    assert only["due"] == []
    listed = json.loads(cli("notices", "list", "--client", "cedar", "--json").stdout)["notices"]
    assert [n["kind"] for n in listed] == ["monthly_maintenance"] and listed[0]["state"] == "waiting"
    missing = cli("maintenance", "due", "--client", "nobody", check=False)
    assert missing.returncode == 1 and "nobody" in missing.stderr


# ----------------------------------------------------------------------------------------- calendar


def http(db) -> TestClient:
    from tenure.api.app import create_app

    return TestClient(create_app(db))


def feed(db, path: str) -> Calendar:
    response = http(db).get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def test_the_client_calendar_recurs_as_scheduled_across_dst(loaded):
    clock.set_now("2027-02-20T15:00:00Z")  # DST starts in Chicago on 2027-03-14
    calendar = feed(loaded, links.calendar_path(client="cedar"))
    events = list(calendar.walk("VEVENT"))
    assert any(tz["TZID"] == "America/Chicago" for tz in calendar.walk("VTIMEZONE"))
    (antivirus,) = [e for e in events if "antivirus console" in str(e["SUMMARY"])]
    start = antivirus.decoded("DTSTART")
    assert start.tzinfo is not None and str(antivirus["DTSTART"].params["TZID"]) == "America/Chicago"
    assert antivirus.decoded("DURATION").total_seconds() == 30 * 60
    rule = rrulestr(antivirus["RRULE"].to_ical().decode(), dtstart=start.replace(tzinfo=CHICAGO))
    march, april = rule.between(datetime(2027, 2, 20, tzinfo=UTC), datetime(2027, 4, 15, tzinfo=UTC))
    assert (march.astimezone(UTC).hour, april.astimezone(UTC).hour) == (15, 14)  # 09:00 CST, then 09:00 CDT
    assert march.astimezone(CHICAGO).hour == april.astimezone(CHICAGO).hour == 9
    # the cron task is expanded: each weekday at 08:00 local for the next 90 days
    daily = sorted(e.decoded("DTSTART") for e in events if "Daily review" in str(e["SUMMARY"]))
    assert 60 <= len(daily) <= 66 and all(d.astimezone(CHICAGO).hour == 8 for d in daily)
    before = next(d for d in daily if d.date() == date(2027, 3, 12))
    after = next(d for d in daily if d.date() == date(2027, 3, 15))
    assert (before.astimezone(UTC).hour, after.astimezone(UTC).hour) == (14, 13)
    assert all(d.astimezone(UTC) >= datetime(2027, 2, 20, 15, tzinfo=UTC) for d in daily)
    assert len({str(e["UID"]) for e in events}) == len(events)


def test_the_technician_calendar_holds_their_tasks(loaded):
    maintenance.set_task(loaded, "patches", client="cedar", technician="sam")
    terry = list(feed(loaded, links.calendar_path(technician="terry")).walk("VEVENT"))
    # terry logged acme's time: acme's tasks without a technician of their own are his
    assert terry and all(str(e["SUMMARY"]).startswith("Acme Dental:") for e in terry)
    sam = list(feed(loaded, links.calendar_path(technician="sam")).walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in sam] == [
        "Cedar Law: Monthly patches (service packs, updates, security fixes) on servers and workstations"
    ]
    assert "monthly list" in str(sam[0]["DESCRIPTION"])
    assert list(feed(loaded, links.calendar_path(technician="nobody")).walk("VEVENT")) == []
    path = links.calendar_path(client="cedar")
    tampered = path.replace(".ics", "x.ics")
    assert http(loaded).get(tampered).status_code == 404


@pytest.mark.parametrize(
    ("schedule", "said"),
    [
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=1", "every month on the 1st at 09:00"),
        ("RRULE:FREQ=MONTHLY;INTERVAL=6;BYMONTHDAY=1", "every 6 months on the 1st at 09:00"),
        ("RRULE:FREQ=MONTHLY;BYDAY=2WE", "every month on the 2nd Wednesday at 09:00"),
        ("DTSTART:20260101T073000 RRULE:FREQ=MONTHLY;BYDAY=-1FR", "every month on the last Friday at 07:30"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=7", "every week on Monday, Thursday at 07:00"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=18;BYMINUTE=30", "every month on the last day at 18:30"),
        ("0 8 * * 1-5", "weekdays at 08:00"),
        ("30 2 1 * *", "every month on the 1st at 02:30"),
        ("0 3 * * 0", "every Sunday at 03:00"),
        ("RRULE:FREQ=MONTHLY;COUNT=3", "RRULE:FREQ=MONTHLY;COUNT=3"),  # more than the words say: shown as written
        ("*/5 * * * *", "*/5 * * * *"),
    ],
)
def test_a_schedule_reads_as_words_or_as_written(schedule, said):
    from tenure.maintenance.rules import describe_schedule

    assert describe_schedule(schedule) == said


RULES = r"RRULE:FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)(;[A-Z]{5,10}=[-+0-9A-Z,]{1,8}){0,4}"


@given(st.text(min_size=1, max_size=80) | st.from_regex(RULES, fullmatch=True))
def test_any_schedule_text_reads_as_something(text):
    from tenure.maintenance.rules import describe_schedule

    assert describe_schedule(text)  # words, or the schedule itself: never an error on the page
