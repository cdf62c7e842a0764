"""One object's shape in the book, both ways: a validated book item to the row's values, and a row back to
the item. The book's import and export use these, and so does every change made in place (the API, the
pages, the command line), so all of them accept, refuse and show exactly the same things.

Each kind of object a client owns is a `Kind`: its list's name in the book, its pydantic model, its table,
what identifies one (`key`, or the row id for contacts and mapping rules, which have no key), and the two
conversions. Conversions need a little context (`Refs`): the client's sites and devices by key and by id,
and the MSP's bonus table for blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from tenure.agreements.models import Agreement, Block, RetainerDeposit, TimeEntry
from tenure.agreements.rules import ends_by_term
from tenure.billing.models import Charge
from tenure.book import schema
from tenure.clients.models import BackupJob, Contact, Device, Site, VendorAccount
from tenure.intake.models import MappingRule

# an account's fields kept in its `details`; the hand-over's password is a column of its own, never in the book
ACCOUNT_DETAILS = (
    "edition",
    "service",
    "sensors",
    "cloud_connectors",
    "agent_devices",
    "scheduled_reports",
    "users",
    "handover_repository",
    "handover_tag",
)


def minutes(hours: Decimal | None) -> int | None:
    return None if hours is None else int(hours * 60)


def hours(minutes_: int | None) -> Decimal | None:
    return None if minutes_ is None else Decimal(minutes_) / 60


def bonus_hours(block_hours: Decimal, tiers: Sequence[schema.BonusTier]) -> Decimal:
    """The bonus of the largest tier whose `min_hours` the block reaches (DOMAIN.md)."""
    reached = [t for t in tiers if block_hours >= t.min_hours]
    return max(reached, key=lambda t: t.min_hours).bonus_hours if reached else Decimal(0)


def clean(values: dict[str, Any]) -> dict[str, Any]:
    """What a book leaves out: nothing, empty lists and empty mappings."""
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def msp_values(msp: schema.Msp) -> dict[str, Any]:
    """The MSP's settings as `msp_settings` holds them."""
    return {
        "name": msp.name,
        "currency": msp.currency,
        "timezone": msp.timezone,
        "hourly_rate": msp.hourly_rate,
        "payment_terms_days": msp.payment_terms_days,
        "time_rounding_minutes": msp.time_rounding_minutes,
        "low_balance_minutes": minutes(msp.low_balance_hours),
        "unused_prepaid": msp.unused_prepaid,
        "labor_cost_per_hour": msp.labor_cost_per_hour,
        "target_effective_rate": msp.target_effective_rate,
        "intake_address": msp.intake_address,
        "minimum_block_hours": msp.minimum_block_hours and int(msp.minimum_block_hours),
        "block_bonus": [t.model_dump(mode="json") for t in sorted(msp.block_bonus, key=lambda t: t.min_hours)],
        "catalog": [o.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for o in msp.catalog],
        "unpaid_work_minutes": msp.unpaid_work_minutes.model_dump() if msp.unpaid_work_minutes else {},
        "term_notice_days": msp.term_notice_days,
        "reminder_days": list(msp.reminder_days),
        "ticket_targets": dict(msp.ticket_targets),
    }


def msp_view(msp: Any) -> dict[str, Any]:
    """The MSP's settings (a `msp_settings` row) as the book writes them."""
    return clean(
        {
            "name": msp.name,
            "currency": msp.currency,
            "timezone": msp.timezone,
            "hourly_rate": msp.hourly_rate,
            "payment_terms_days": msp.payment_terms_days,
            "time_rounding_minutes": msp.time_rounding_minutes,
            "block_bonus": msp.block_bonus,
            "low_balance_hours": hours(msp.low_balance_minutes),
            "unused_prepaid": msp.unused_prepaid,
            "labor_cost_per_hour": msp.labor_cost_per_hour,
            "target_effective_rate": msp.target_effective_rate,
            "minimum_block_hours": msp.minimum_block_hours,
            "catalog": msp.catalog,
            "intake_address": msp.intake_address,
            "unpaid_work_minutes": msp.unpaid_work_minutes,
            "term_notice_days": msp.term_notice_days,
        }
    ) | _reminder_days(msp) | ({"ticket_targets": msp.ticket_targets} if msp.ticket_targets else {})


def _reminder_days(msp: Any) -> dict[str, Any]:
    """Written only when not the default, so a book without them reads back the same (and [] stays [])."""
    days = list(msp.reminder_days if msp.reminder_days is not None else [1, 7, 14])
    return {} if days == [1, 7, 14] else {"reminder_days": days}


CLIENT_ALIKE = ("key", "name", "domains", "notes")


def client_values(c: schema.Client) -> dict[str, Any]:
    """A client's own fields as the `client` table holds them (its objects are kinds of their own)."""
    return {
        **_same(c, CLIENT_ALIKE),
        "billable_alerts": c.billable_alerts,
        "forward_alerts": c.forward_alerts,
        "low_balance_minutes": minutes(c.low_balance_hours),
    }


def client_view(c: Any) -> dict[str, Any]:
    """A `client` row's own fields as the book writes them."""
    return clean(
        {
            **_same(c, CLIENT_ALIKE),
            "billable_alerts": c.billable_alerts or None,
            "forward_alerts": c.forward_alerts or None,
            "low_balance_hours": hours(c.low_balance_minutes),
        }
    )


@dataclass
class Refs:
    """What converting one client's objects needs to know beyond the object itself."""

    client_id: int
    site_ids: dict[str, int] = field(default_factory=dict)  # key -> id
    device_ids: dict[str, int] = field(default_factory=dict)
    bonus_tiers: Sequence[schema.BonusTier] = ()

    def site_key(self, site_id: int | None) -> str | None:
        return next((k for k, v in self.site_ids.items() if v == site_id), None) if site_id else None

    def device_key(self, device_id: int | None) -> str | None:
        return next((k for k, v in self.device_ids.items() if v == device_id), None) if device_id else None


@dataclass(frozen=True)
class Kind:
    """One kind of object a client owns, as the book, the API and the forms see it."""

    name: str  # its list in a client of the book: "devices", "backup_jobs"
    label: str  # one of them, in words: "device", "backup job"
    shape: type[BaseModel]
    model: type[Any]
    values: Callable[[Any, Refs], dict[str, Any]]  # a validated item -> the row's columns
    view: Callable[[Any, Refs], dict[str, Any]]  # a row -> the item, as the book writes it
    keyed: bool = True  # identified by `key`; else by the row's id
    money: bool = False  # a change moves money: the client's work is allocated again

    @property
    def path(self) -> str:
        """Its segment in a URL: `backup-jobs`."""
        return self.name.replace("_", "-")

    def ident(self, row: Any) -> str:
        return str(row.key if self.keyed else row.id)


def _contact_values(c: schema.Contact, refs: Refs) -> dict[str, Any]:
    return {"client_id": refs.client_id, "name": c.name, "email": c.email, "phone": c.phone, "roles": c.roles}


def _contact_view(x: Contact, refs: Refs) -> dict[str, Any]:
    return clean({"name": x.name, "email": x.email, "phone": x.phone, "roles": x.roles})


def _site_values(s: schema.Site, refs: Refs) -> dict[str, Any]:
    return {"client_id": refs.client_id, "key": s.key, "name": s.name, "address": s.address}


def _site_view(x: Site, refs: Refs) -> dict[str, Any]:
    return clean({"key": x.key, "name": x.name, "address": x.address})


def _same(source: Any, names: Sequence[str]) -> dict[str, Any]:
    """Fields the book and the table name and hold alike."""
    return {name: getattr(source, name) for name in names}


# per kind: the fields alike on both sides; the others are converted below
AGREEMENT_ALIKE = ("key", "kind", "start", "monthly_fee", "overage_rate", "hourly_rate", "covers", "excludes")
AGREEMENT_TERMS = ("term_months", "renewal", "billing_interval_months", "billed_through")
BLOCK_ALIKE = ("key", "purchased", "price", "expires")
DEVICE_ALIKE = ("key", "hostname", "role", "os", "features", "checks")
JOB_ALIKE = ("key", "product", "name", "schedule", "timezone", "grace_minutes", "ping_uuid", "status")
TIME_ALIKE = ("key", "date", "minutes", "work_type", "technician", "note")
CHARGE_ALIKE = ("key", "date", "description", "quantity", "amount", "cost")
ACCOUNT_ALIKE = ("key", "kind", "vendor", "external_id", "url")


def _agreement_values(a: schema.Agreement, refs: Refs) -> dict[str, Any]:
    return {
        "client_id": refs.client_id,
        **_same(a, AGREEMENT_ALIKE + AGREEMENT_TERMS),
        "end": ends_by_term(a.start, a.end, a.term_months, a.renewal),  # `renewal: ends`: the term's last day
        "included_minutes": minutes(a.included_hours),
        "block_minutes_per_month": minutes(a.block_hours_per_month),
    }


def _agreement_view(a: Agreement, refs: Refs) -> dict[str, Any]:
    return clean(
        {
            **_same(a, (*AGREEMENT_ALIKE, "end")),
            "included_hours": hours(a.included_minutes),
            "block_hours_per_month": hours(a.block_minutes_per_month),
            **_same(a, AGREEMENT_TERMS),
        }
    )


def _block_values(b: schema.Block, refs: Refs) -> dict[str, Any]:
    bonus = b.bonus_hours if b.bonus_hours is not None else bonus_hours(b.hours, refs.bonus_tiers)
    return {"client_id": refs.client_id, **_same(b, BLOCK_ALIKE), "minutes": minutes(b.hours),
            "bonus_minutes": minutes(bonus)}  # fmt: skip


def _block_view(b: Block, refs: Refs) -> dict[str, Any]:
    return clean({**_same(b, BLOCK_ALIKE), "hours": hours(b.minutes), "bonus_hours": hours(b.bonus_minutes)})


def _deposit_values(d: schema.RetainerDeposit, refs: Refs) -> dict[str, Any]:
    return {"client_id": refs.client_id, "key": d.key or f"dep-{d.date}", "date": d.date, "amount": d.amount}


def _deposit_view(d: RetainerDeposit, refs: Refs) -> dict[str, Any]:
    return {"key": d.key, "date": d.date, "amount": d.amount}


def _device_values(d: schema.Device, refs: Refs) -> dict[str, Any]:
    return {
        "client_id": refs.client_id,
        **_same(d, DEVICE_ALIKE),
        "site_id": refs.site_ids[d.site] if d.site else None,
        "rmm_vendor": d.rmm.vendor if d.rmm else None,
        "rmm_id": d.rmm.id if d.rmm else None,
        "active": d.active,
    }


def _device_view(d: Device, refs: Refs) -> dict[str, Any]:
    return clean(
        {
            **_same(d, DEVICE_ALIKE),
            "site": refs.site_key(d.site_id),
            "rmm": {"vendor": d.rmm_vendor, "id": d.rmm_id} if d.rmm_vendor and d.rmm_id else None,
            "active": None if d.active else False,
        }
    )


def _account_values(a: schema.Account, refs: Refs) -> dict[str, Any]:
    return {
        "client_id": refs.client_id,
        **_same(a, ACCOUNT_ALIKE),
        "details": {k: getattr(a, k) for k in ACCOUNT_DETAILS if getattr(a, k) is not None},
    }


def _account_view(a: VendorAccount, refs: Refs) -> dict[str, Any]:
    details = {k: v for k, v in (a.details or {}).items() if k in ACCOUNT_DETAILS}
    return clean(_same(a, ACCOUNT_ALIKE) | details)


def _job_values(j: schema.BackupJob, refs: Refs) -> dict[str, Any]:
    device_id = refs.device_ids[j.device] if j.device else None
    return {"client_id": refs.client_id, **_same(j, JOB_ALIKE), "device_id": device_id}


def _job_view(j: BackupJob, refs: Refs) -> dict[str, Any]:
    return clean({**_same(j, JOB_ALIKE), "device": refs.device_key(j.device_id)})


def _time_values(t: schema.TimeEntry, refs: Refs) -> dict[str, Any]:
    device_id = refs.device_ids[t.device] if t.device else None
    return {"client_id": refs.client_id, **_same(t, TIME_ALIKE), "device_id": device_id}


def _time_view(t: TimeEntry, refs: Refs) -> dict[str, Any]:
    return clean({**_same(t, TIME_ALIKE), "device": refs.device_key(t.device_id)})


def _charge_values(c: schema.Charge, refs: Refs) -> dict[str, Any]:
    return {"client_id": refs.client_id, **_same(c, CHARGE_ALIKE)}


def _charge_view(c: Charge, refs: Refs) -> dict[str, Any]:
    return clean(_same(c, CHARGE_ALIKE))


def _rule_values(r: schema.MappingRule, refs: Refs) -> dict[str, Any]:
    return {"client_id": refs.client_id, "field": r.field, "pattern": r.pattern}


def _rule_view(r: MappingRule, refs: Refs) -> dict[str, Any]:
    return {"field": r.field, "pattern": r.pattern}


CONTACTS = Kind("contacts", "contact", schema.Contact, Contact, _contact_values, _contact_view, keyed=False)
SITES = Kind("sites", "site", schema.Site, Site, _site_values, _site_view)
AGREEMENTS = Kind(
    "agreements", "agreement", schema.Agreement, Agreement, _agreement_values, _agreement_view, money=True
)
BLOCKS = Kind("blocks", "block", schema.Block, Block, _block_values, _block_view, money=True)
DEPOSITS = Kind(
    "retainer_deposits", "retainer deposit", schema.RetainerDeposit, RetainerDeposit, _deposit_values, _deposit_view,
    money=True,
)  # fmt: skip
DEVICES = Kind("devices", "device", schema.Device, Device, _device_values, _device_view)
ACCOUNTS = Kind("accounts", "vendor account", schema.Account, VendorAccount, _account_values, _account_view)
BACKUP_JOBS = Kind("backup_jobs", "backup job", schema.BackupJob, BackupJob, _job_values, _job_view)
TIME_ENTRIES = Kind("time_entries", "time entry", schema.TimeEntry, TimeEntry, _time_values, _time_view, money=True)
# billed once by the monthly run, voided rather than deleted: changed in place through billing.charges
# (add_charge, void_charge), so not among KINDS, whose generic changes would delete one or edit a billed one
CHARGES = Kind("charges", "charge", schema.Charge, Charge, _charge_values, _charge_view)
MAPPING_RULES = Kind(
    "mapping_rules", "mapping rule", schema.MappingRule, MappingRule, _rule_values, _rule_view, keyed=False
)

EVERY_KIND = (CONTACTS, SITES, AGREEMENTS, BLOCKS, DEPOSITS, DEVICES, ACCOUNTS, BACKUP_JOBS, TIME_ENTRIES)
KINDS: dict[str, Kind] = {k.name: k for k in (*EVERY_KIND, MAPPING_RULES)}
