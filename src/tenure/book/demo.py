"""The demo MSP: every agreement kind and every client class, with a few months of real-looking work.

Dates hang off an anchor month fixed on the first run (kept in `meta`), so running the demo again, even
months later, changes nothing.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from tenure import clock
from tenure.book.service import ImportSummary, import_book
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.msp.models import Meta
from tenure.offboarding.models import OffboardingRun

MANAGED_COVERS = [
    "monitoring",
    "backup_monitoring",
    "patching",
    "antivirus",
    "maintenance",
    "remote_support",
    "onsite",
    "incident",
]
WORK = [
    ("remote_support", 30, 90),
    ("incident", 45, 180),
    ("maintenance", 30, 120),
    ("onsite", 60, 240),
    ("malware_cleanup", 60, 150),
    ("training", 30, 60),
    ("project", 60, 240),
]
TECHS = ["terry", "rick", "dana"]


def _anchor(db: Database) -> date:
    with db.unit_of_work() as session:
        row = session.get(Meta, "demo_anchor")
        if row is None:
            row = Meta(key="demo_anchor", value=clock.today().replace(day=1).isoformat())
            session.add(row)
        return date.fromisoformat(row.value)


def _work(
    rng: random.Random, client: str, months: list[date], per_month: int, kinds: list[str] | None = None
) -> list[dict[str, Any]]:
    entries = []
    for month in months:
        days = ((month + relativedelta(months=1)) - month).days
        for n in range(per_month):
            work_type, low, high = rng.choice([w for w in WORK if kinds is None or w[0] in kinds])
            entries.append(
                {
                    "key": f"{client}-{month:%Y%m}-{n + 1:02d}",
                    "date": month.replace(day=rng.randint(1, days)),
                    "minutes": rng.randrange(low, high + 1, 5),
                    "work_type": work_type,
                    "technician": rng.choice(TECHS),
                    "note": f"{work_type.replace('_', ' ')} for {client}",
                }
            )
    return entries


def _devices(client: str, site: str, servers: int, workstations: int, rmm: bool = True) -> list[dict[str, Any]]:
    devices = []
    for n in range(servers):
        devices.append(
            {
                "key": f"{client}-srv{n + 1:02d}",
                "hostname": f"{client.upper()}-SRV{n + 1:02d}",
                "site": site,
                "role": "server",
                "os": "Windows Server 2022",
                "features": ["patching", "remote_control", "antivirus", "automated_tasks", "backup"],
                "checks": ["disk_space", "cpu", "memory", "backup_job", "windows_update"],
            }
        )
    for n in range(workstations):
        devices.append(
            {
                "key": f"{client}-ws{n + 1:02d}",
                "hostname": f"{client.upper()}-WS{n + 1:02d}",
                "site": site,
                "role": "workstation",
                "os": "Windows 11 Pro",
                "features": ["patching", "remote_control", "antivirus"],
                "checks": ["disk_space", "antivirus_status"],
            }
        )
    if rmm:
        for i, device in enumerate(devices):
            device["rmm"] = {"vendor": "tacticalrmm", "id": f"{client}-agent-{i + 1}"}
    return devices


def demo_book(anchor: date) -> dict[str, Any]:
    """The demo as a book; `anchor` is the first day of the month the demo was first loaded."""
    rng = random.Random(20050319)  # seed 001's date: the same demo everywhere
    m = lambda k: anchor + relativedelta(months=k)  # noqa: E731  (month arithmetic, read as m(-3))
    recent = [m(-3), m(-2), m(-1)]
    msp = {
        "name": "Northwind MSP",
        "currency": "USD",
        "timezone": "America/Chicago",
        "hourly_rate": "150.00",
        "payment_terms_days": 10,
        "time_rounding_minutes": 15,
        "block_bonus": [{"min_hours": 20, "bonus_hours": 2}, {"min_hours": 50, "bonus_hours": 7}],
        "low_balance_hours": 3,
        "unused_prepaid": "refund",
        "labor_cost_per_hour": "45.00",
        "target_effective_rate": "100.00",
        "minimum_block_hours": 10,
        "intake_address": "alerts@northwind-msp.example",
        "catalog": [
            {
                "key": "essentials",
                "name": "Managed Essentials",
                "kind": "managed",
                "monthly_fee": "300.00",
                "included_hours": 2,
                "overage_rate": "120.00",
                "hourly_rate": "120.00",
                "covers": ["incident", "remote_support", "maintenance", "monitoring"],
                "excludes": ["malware_cleanup"],
            },
            {
                "key": "watch",
                "name": "Monitoring & patching",
                "kind": "monitoring",
                "monthly_fee": "100.00",
                "block_hours_per_month": 2,
                "covers": ["monitoring", "patching"],
            },
            {"key": "block-20", "name": "20-hour block", "block_hours": 20, "price": "2400.00"},
            {"key": "block-50", "name": "50-hour block", "block_hours": 50, "price": "5750.00"},
        ],
    }
    clients: list[dict[str, Any]] = [
        {
            "key": "acme",
            "name": "Acme Dental",
            "domains": ["acmedental.example"],
            "contacts": [
                {"name": "Jo Smith", "email": "jo@acmedental.example", "roles": ["primary", "billing", "admin"]},
                {"name": "Sam Reyes", "email": "sam@acmedental.example", "roles": ["technical"]},
            ],
            "sites": [{"key": "main", "name": "Main office"}],
            "agreements": [
                {
                    "key": "acme-managed",
                    "kind": "managed",
                    "start": m(-6),
                    "monthly_fee": "1200.00",
                    "included_hours": 10,
                    "overage_rate": "120.00",
                    "hourly_rate": "120.00",
                    "covers": MANAGED_COVERS,
                    "excludes": ["malware_cleanup"],
                    "term_months": 12,
                    "billed_through": m(0) - relativedelta(days=1),
                }
            ],
            "devices": _devices("acme", "main", 2, 8),
            "accounts": [
                {
                    "key": "acme-rmm",
                    "kind": "rmm",
                    "vendor": "tacticalrmm",
                    "external_id": "7",
                    "url": "https://rmm.northwind-msp.example",
                },
                {
                    "key": "acme-siem",
                    "kind": "siem",
                    "vendor": "blumira",
                    "edition": "SIEM Pro",
                    "sensors": 1,
                    "cloud_connectors": 2,
                    "agent_devices": 5,
                    "scheduled_reports": 3,
                    "users": 4,
                },
                {"key": "acme-backup", "kind": "backup", "vendor": "restic", "external_id": "/srv/restic/acme"},
                {"key": "acme-mail", "kind": "hosted", "vendor": "microsoft365", "service": "email"},
            ],
            "backup_jobs": [
                {
                    "key": "acme-srv01-nightly",
                    "device": "acme-srv01",
                    "product": "veeam",
                    "name": "SRV01 nightly",
                    "schedule": "0 22 * * *",
                    "timezone": "America/Chicago",
                    "grace_minutes": 120,
                },
                {
                    "key": "acme-srv02-restic",
                    "device": "acme-srv02",
                    "product": "restic",
                    "name": "SRV02 files",
                    "schedule": "0 */6 * * *",
                    "timezone": "America/Chicago",
                    "grace_minutes": 60,
                    "ping_uuid": "5f2b7c1e-8d4a-4e43-9b8e-2f1c0a9d7e61",
                },
            ],
            "time_entries": _work(rng, "acme", recent, 9),
        },
        {
            "key": "harbor",
            "name": "Harbor Law Group",
            "domains": ["harborlaw.example"],
            "contacts": [{"name": "Lee Park", "email": "lee@harborlaw.example", "roles": ["primary", "billing"]}],
            "sites": [{"key": "office", "name": "Office"}],
            "agreements": [
                {
                    "key": "harbor-watch",
                    "kind": "monitoring",
                    "start": m(-5),
                    "monthly_fee": "100.00",
                    "block_hours_per_month": 2,
                    "covers": ["monitoring", "patching"],
                    "billed_through": m(-4) - relativedelta(days=1),
                }
            ],
            "blocks": [
                {
                    "key": "harbor-b1",
                    "purchased": m(-5),
                    "hours": 20,
                    "price": "2400.00",
                    "expires": m(7) - relativedelta(days=1),
                }
            ],
            "devices": _devices("harbor", "office", 1, 4),
            "accounts": [{"key": "harbor-rmm", "kind": "rmm", "vendor": "tacticalrmm", "external_id": "9"}],
            "time_entries": _work(rng, "harbor", recent, 2, ["remote_support", "maintenance", "incident"]),
        },
        {
            "key": "cedar",
            "name": "Cedar Architects",
            "domains": ["cedar-arch.example"],
            "contacts": [
                {"name": "Ana Cruz", "email": "ana@cedar-arch.example", "roles": ["primary", "billing", "admin"]}
            ],
            "agreements": [{"key": "cedar-retainer", "kind": "retainer", "start": m(-5), "hourly_rate": "125.00"}],
            "retainer_deposits": [
                {"key": "cedar-dep1", "date": m(-5), "amount": "1500.00"},
                {"key": "cedar-dep2", "date": m(-2), "amount": "1000.00"},
            ],
            "devices": _devices("cedar", None, 1, 6),  # type: ignore[arg-type]
            "time_entries": _work(rng, "cedar", recent, 4, ["remote_support", "incident", "maintenance", "project"]),
        },
        {
            "key": "pine",
            "name": "Pine Veterinary Clinic",
            "domains": ["pinevet.example"],
            "contacts": [{"name": "Dr. Kim Lau", "email": "kim@pinevet.example", "roles": ["primary", "billing"]}],
            "sites": [{"key": "clinic", "name": "Clinic"}],
            "agreements": [
                {
                    "key": "pine-cbs",
                    "kind": "call_before_service",
                    "start": m(-4),
                    "monthly_fee": "75.00",
                    "hourly_rate": "150.00",
                    "covers": ["monitoring"],
                }
            ],
            "devices": _devices("pine", "clinic", 1, 3),
            "backup_jobs": [
                {
                    "key": "pine-srv01-hyper",
                    "device": "pine-srv01",
                    "product": "synology",
                    "name": "Hyper Backup to C2",
                    "schedule": "30 1 * * *",
                    "timezone": "America/Chicago",
                }
            ],
            "time_entries": _work(rng, "pine", recent, 2, ["maintenance", "remote_support"]),
        },
        {
            "key": "maple",
            "name": "Maple Street Bakery",
            "domains": ["maplebakery.example"],
            "contacts": [
                {"name": "Chris Doyle", "email": "chris@maplebakery.example", "roles": ["primary", "billing"]}
            ],
            "agreements": [{"key": "maple-adhoc", "kind": "adhoc", "start": m(-10), "hourly_rate": "150.00"}],
            "devices": _devices("maple", None, 0, 3, rmm=False),  # type: ignore[arg-type]
            "time_entries": _work(rng, "maple", [m(-2)], 2, ["remote_support", "incident"]),
            "invoices": [
                {"number": "OLD-1041", "date": m(-8) + relativedelta(days=4), "total": "225.00"},
                {"number": "OLD-1107", "date": m(-3) + relativedelta(days=9), "total": "450.00"},
            ],
        },
        {
            "key": "birch",
            "name": "Birch Residence",
            "domains": ["birchfamily.example"],
            "contacts": [{"name": "Pat Birch", "email": "pat@birchfamily.example", "roles": ["primary", "billing"]}],
            "invoices": [{"number": "OLD-1122", "date": m(-5) + relativedelta(days=14), "total": "150.00"}],
        },
        {
            "key": "willow",
            "name": "Willow Accounting",
            "domains": ["willowcpa.example"],
            "contacts": [{"name": "Morgan Hale", "email": "morgan@willowcpa.example", "roles": ["primary", "billing"]}],
            "blocks": [{"key": "willow-b1", "purchased": m(-3), "hours": 50, "price": "5750.00"}],
            "devices": _devices("willow", None, 1, 5),  # type: ignore[arg-type]
            "time_entries": _work(rng, "willow", recent, 3, ["remote_support", "incident", "maintenance"]),
        },
        {
            "key": "oak",
            "name": "Oak Florists",
            "domains": ["oakflorists.example"],
            "contacts": [{"name": "Robin Oakes", "email": "robin@oakflorists.example", "roles": ["primary"]}],
            "invoices": [{"number": "OLD-0877", "date": m(-20), "total": "300.00"}],
        },
        {
            "key": "spruce",
            "name": "Spruce Logistics",
            "domains": ["sprucelog.example"],
            "contacts": [
                {"name": "Val Stone", "email": "val@sprucelog.example", "roles": ["primary", "billing", "admin"]}
            ],
            "agreements": [
                {
                    "key": "spruce-managed",
                    "kind": "managed",
                    "start": m(-18),
                    "end": m(-2) - relativedelta(days=1),
                    "monthly_fee": "900.00",
                    "included_hours": 6,
                    "overage_rate": "130.00",
                    "covers": MANAGED_COVERS,
                    "billed_through": m(-2) - relativedelta(days=1),
                }
            ],
            "invoices": [{"number": "OLD-1150", "date": m(-3), "total": "900.00", "recurring": True}],
        },
        {
            "key": "elm",
            "name": "Elm Street Cafe",
            "domains": ["elmcafe.example"],
            "contacts": [{"name": "Jamie Elm", "email": "jamie@elmcafe.example", "roles": ["primary"]}],
        },
    ]
    for client in clients:
        for device in client.get("devices", []):
            if device.get("site") is None:
                device.pop("site", None)
    return {"version": 1, "msp": msp, "clients": clients}


def load_demo(db: Database) -> ImportSummary:
    anchor = _anchor(db)
    summary = import_book(db, _jsonable(demo_book(anchor)))
    _spruce_offboarded(db, anchor - relativedelta(months=2) - relativedelta(days=1))
    _alerts(db)
    return summary


DEMO_ALERTS = [
    ("acme", "Disk C: on ACME-SRV01 below 10%", "monitoring", "ACME-SRV01"),
    ("acme", "Windows updates failing on ACME-WS04", "patching", "ACME-WS04"),
    ("maple", "Printer offline at the front counter", "monitoring", None),
    ("birch", "Home router rebooted 5 times today", "monitoring", None),
    ("spruce", "Agent SPRUCE-SRV01 still reporting: CPU high", "monitoring", None),
    ("pine", "Disk space low on PINE-SRV01", "monitoring", "PINE-SRV01"),
]


def _alerts(db: Database) -> None:
    """A few alerts through real intake, once: the triage queue is not empty on a first look."""
    from tenure.intake import service as intake  # intake depends on the book; imported late

    with db.reader() as session:
        if session.get(Meta, "demo_alerts") is not None:
            return
    bodies = [
        json.dumps(
            {
                "source": "demo-monitor",
                "client": client,
                "title": title,
                "service": service,
                "status": "firing",
                "severity": "warning",
                **({"host": host} if host else {}),
            }
        ).encode()
        for client, title, service, host in DEMO_ALERTS
    ]
    intake.ingest_many(db, "event", bodies)
    with db.unit_of_work() as session:
        session.add(Meta(key="demo_alerts", value="loaded"))


def _spruce_offboarded(db: Database, end_of_service: date) -> None:
    """Spruce left two months ago: a completed offboarding run makes it `former`."""
    with db.unit_of_work() as session:
        spruce = session.scalars(select(Client).where(Client.key == "spruce")).one()
        done = session.scalars(select(OffboardingRun).where(OffboardingRun.client_id == spruce.id)).first()
        if done is None:
            finished = datetime.combine(end_of_service, time(17), tzinfo=clock.now().tzinfo)
            session.add(
                OffboardingRun(
                    client_id=spruce.id,
                    state="done",
                    end_of_service=end_of_service,
                    reason="client_cancelled",
                    answers={
                        "end_of_service": end_of_service.isoformat(),
                        "reason": "client_cancelled",
                        "access": "remote",
                        "agent_deployment": "group_policy",
                        "moving_to": "other_msp",
                        "delete_data": False,
                    },
                    created_at=finished - relativedelta(days=14),
                    completed_at=finished,
                    lessons={"reason_codes": ["price"], "change": "offer a smaller managed tier"},
                )
            )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
