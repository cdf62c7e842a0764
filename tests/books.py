"""Books for tests: a small, complete one in INTERFACE.md's shape."""

from __future__ import annotations

import copy
from typing import Any

SMALL: dict[str, Any] = {
    "version": 1,
    "msp": {
        "name": "Example IT",
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
        "catalog": [
            {
                "key": "essentials",
                "kind": "managed",
                "monthly_fee": "300.00",
                "included_hours": 2,
                "overage_rate": "120.00",
                "hourly_rate": "120.00",
                "covers": ["incident", "remote_support", "maintenance", "monitoring"],
                "excludes": ["malware_cleanup"],
            },
            {"key": "block-20", "block_hours": 20, "price": "2400.00"},
        ],
        "intake_address": "alerts@example-it.example",
    },
    "clients": [
        {
            "key": "acme",
            "name": "Acme Dental",
            "domains": ["acmedental.example"],
            "contacts": [
                {"name": "Jo Smith", "email": "jo@acmedental.example", "roles": ["primary", "billing", "admin"]}
            ],
            "sites": [{"key": "main", "name": "Main office"}],
            "agreements": [
                {
                    "key": "acme-managed",
                    "kind": "managed",
                    "start": "2026-01-01",
                    "monthly_fee": "1200.00",
                    "included_hours": 10,
                    "overage_rate": "120.00",
                    "hourly_rate": "120.00",
                    "covers": ["monitoring", "backup_monitoring", "patching", "remote_support"],
                    "excludes": ["malware_cleanup"],
                    "billed_through": "2026-08-31",
                }
            ],
            "blocks": [
                {"key": "acme-b1", "purchased": "2026-09-01", "hours": 20, "price": "2400.00", "expires": "2027-08-31"}
            ],
            "retainer_deposits": [{"date": "2026-10-01", "amount": "1000.00"}],
            "devices": [
                {
                    "key": "acme-dc01",
                    "hostname": "ACME-DC01",
                    "site": "main",
                    "role": "server",
                    "os": "Windows Server 2019",
                    "features": ["patching", "antivirus"],
                    "checks": ["disk_space", "cpu"],
                    "rmm": {"vendor": "tacticalrmm", "id": "agent-1"},
                }
            ],
            "accounts": [
                {"key": "acme-rmm", "kind": "rmm", "vendor": "tacticalrmm", "external_id": "7"},
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
            ],
            "backup_jobs": [
                {
                    "key": "dc01-nightly",
                    "device": "acme-dc01",
                    "product": "veeam",
                    "name": "DC01 nightly",
                    "schedule": "0 22 * * *",
                    "grace_minutes": 120,
                }
            ],
            "time_entries": [
                {
                    "key": "t1",
                    "date": "2026-10-03",
                    "minutes": 90,
                    "work_type": "maintenance",
                    "technician": "terry",
                    "note": "monthly patches",
                }
            ],
            "invoices": [{"date": "2025-12-10", "total": "300.00", "recurring": False, "paid": True}],
        },
        {
            "key": "bravo",
            "name": "Bravo Bakery",
            "agreements": [
                {"key": "bravo-retainer", "kind": "retainer", "start": "2026-02-01", "hourly_rate": "110.00"}
            ],
        },
    ],
}


def small() -> dict[str, Any]:
    return copy.deepcopy(SMALL)
