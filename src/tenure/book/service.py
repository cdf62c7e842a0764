"""Import and export of the book. Import validates everything first, then writes in one transaction."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement, Block, LedgerEntry, RetainerDeposit, TimeEntry
from tenure.agreements.service import allocate_clients
from tenure.billing.models import Invoice
from tenure.book import schema
from tenure.book.validate import Known, parse, references
from tenure.bulk import chunks as _chunks
from tenure.clients.models import BackupJob, Client, Contact, Device, Site, VendorAccount
from tenure.db.engine import Database
from tenure.db.uow import current_actor
from tenure.errors import ValidationFailed
from tenure.intake.models import MappingRule
from tenure.msp.models import MspSettings

ACCOUNT_DETAILS = ("edition", "service", "sensors", "cloud_connectors", "agent_devices", "scheduled_reports", "users")
T = TypeVar("T")


def minutes(hours: Decimal | None) -> int | None:
    return None if hours is None else int(hours * 60)


def hours(minutes_: int | None) -> Decimal | None:
    return None if minutes_ is None else Decimal(minutes_) / 60


def bonus_hours(block_hours: Decimal, tiers: Sequence[schema.BonusTier]) -> Decimal:
    """The bonus of the largest tier whose min_hours ≤ the block's hours (DOMAIN.md)."""
    eligible = [t for t in tiers if t.min_hours <= block_hours]
    return max(eligible, key=lambda t: t.min_hours).bonus_hours if eligible else Decimal(0)


@dataclass
class ImportSummary:
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {"created": dict(self.created), "updated": dict(self.updated), "unchanged": dict(self.unchanged)}


def _by_key(session: Session, model: Any, column: Any, values: Iterable[Any]) -> dict[Any, Any]:
    """Existing rows whose `column` is in `values`, in a few chunked queries (never one per row)."""
    found: dict[Any, Any] = {}
    for chunk in _chunks(sorted(set(values))):
        for row in session.scalars(select(model).where(column.in_(chunk))):
            found[getattr(row, column.key)] = row
    return found


def _by_client(session: Session, model: Any, client_ids: list[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    for chunk in _chunks(client_ids):
        for row in session.scalars(select(model).where(model.client_id.in_(chunk))):
            found[row.client_id].append(row)
    return found


class _Importer:
    def __init__(self, session: Session, book: schema.Book):
        self.s = session
        self.book = book
        self.summary = ImportSummary()

    def upsert(self, kind: str, existing: Any, model: type[T], values: dict[str, Any]) -> T:
        """Create the row, or set only the fields that differ (so an unchanged book logs nothing)."""
        if existing is None:
            row = model(**values)
            self.s.add(row)
            self.summary.created[kind] += 1
            return row
        changed = False
        for name, value in values.items():
            if getattr(existing, name) != value:
                setattr(existing, name, value)
                changed = True
        (self.summary.updated if changed else self.summary.unchanged)[kind] += 1
        return existing  # type: ignore[no-any-return]

    def known(self) -> Known:
        """Sites and devices the database already holds for the book's clients (a book may refer to them)."""
        clients = _by_key(self.s, Client, Client.key, [c.key for c in self.book.clients])
        owner = {row.id: key for key, row in clients.items()}
        found: Known = defaultdict(lambda: {"sites": set(), "devices": set()})
        for model, name in ((Site, "sites"), (Device, "devices")):
            for rows in _by_client(self.s, model, list(owner)).values():
                for row in rows:
                    found[owner[row.client_id]][name].add(row.key)
        return found

    def conflicts(self) -> list[str]:
        """Keys that already belong to another client: importing would move them silently."""
        problems = []
        clients = _by_key(self.s, Client, Client.key, [c.key for c in self.book.clients])
        owner = {row.id: key for key, row in clients.items()}
        for name, model in (
            ("agreements", Agreement),
            ("blocks", Block),
            ("devices", Device),
            ("accounts", VendorAccount),
            ("backup_jobs", BackupJob),
        ):
            wanted = {
                item.key: (c, i, client.key)
                for c, client in enumerate(self.book.clients)
                for i, item in enumerate(getattr(client, name))
            }
            for key, row in _by_key(self.s, model, model.key, wanted).items():
                c, i, client_key = wanted[key]
                holder = owner.get(row.client_id) or self.s.get(Client, row.client_id).key  # type: ignore[union-attr]
                if holder != client_key:
                    problems.append(f"clients[{c}].{name}[{i}].key: {key!r} already belongs to client {holder!r}")
        return problems

    def run(self) -> ImportSummary:
        self.settings()
        clients = _by_key(self.s, Client, Client.key, [c.key for c in self.book.clients])
        rows = {}
        for data in self.book.clients:
            rows[data.key] = self.upsert(
                "clients",
                clients.get(data.key),
                Client,
                {
                    "key": data.key,
                    "name": data.name,
                    "domains": data.domains,
                    "billable_alerts": data.billable_alerts,
                    "forward_alerts": data.forward_alerts,
                    "low_balance_minutes": minutes(data.low_balance_hours),
                    "notes": data.notes,
                },
            )
        self.s.flush()
        ids = [row.id for row in rows.values()]
        existing = {
            model: _by_client(self.s, model, ids)
            for model in (
                Contact,
                Site,
                Agreement,
                Block,
                RetainerDeposit,
                Device,
                VendorAccount,
                BackupJob,
                TimeEntry,
                Invoice,
                MappingRule,
            )
        }
        for data in self.book.clients:
            client = rows[data.key]
            have = {model: existing[model].get(client.id, []) for model in existing}
            self.client_children(client, data, have)
        self.s.flush()
        self.post_prepaid_ledger(ids)
        self.s.flush()
        # the book's time, blocks and deposits are paid through the coverage layers at once
        allocate_clients(self.s, ids)
        return self.summary

    def settings(self) -> None:
        msp = self.book.msp
        current = self.s.scalars(select(MspSettings).limit(1)).first()
        self.upsert(
            "msp",
            current,
            MspSettings,
            {
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
            },
        )

    def client_children(self, client: Client, data: schema.Client, have: dict[Any, list[Any]]) -> None:
        cid = client.id
        contacts = {(c.email or c.name).lower(): c for c in have[Contact]}
        for c in data.contacts:
            self.upsert(
                "contacts",
                contacts.get((c.email or c.name).lower()),
                Contact,
                {"client_id": cid, "name": c.name, "email": c.email, "phone": c.phone, "roles": c.roles},
            )
        sites = {s.key: s for s in have[Site]}
        for s in data.sites:
            sites[s.key] = self.upsert(
                "sites", sites.get(s.key), Site, {"client_id": cid, "key": s.key, "name": s.name, "address": s.address}
            )
        agreements = {a.key: a for a in have[Agreement]}
        for a in data.agreements:
            self.upsert(
                "agreements",
                agreements.get(a.key),
                Agreement,
                {
                    "client_id": cid,
                    "key": a.key,
                    "kind": a.kind,
                    "start": a.start,
                    "end": a.end,
                    "monthly_fee": a.monthly_fee,
                    "included_minutes": minutes(a.included_hours),
                    "overage_rate": a.overage_rate,
                    "hourly_rate": a.hourly_rate,
                    "block_minutes_per_month": minutes(a.block_hours_per_month),
                    "covers": a.covers,
                    "excludes": a.excludes,
                    "term_months": a.term_months,
                    "billed_through": a.billed_through,
                },
            )
        blocks = {b.key: b for b in have[Block]}
        for b in data.blocks:
            bonus = b.bonus_hours if b.bonus_hours is not None else bonus_hours(b.hours, self.book.msp.block_bonus)
            self.upsert(
                "blocks",
                blocks.get(b.key),
                Block,
                {
                    "client_id": cid,
                    "key": b.key,
                    "purchased": b.purchased,
                    "minutes": minutes(b.hours),
                    "bonus_minutes": minutes(bonus),
                    "price": b.price,
                    "expires": b.expires,
                    "imported": True,
                },
            )
        deposits = {d.key: d for d in have[RetainerDeposit]}
        for key, d in _derived_keys(data.retainer_deposits, lambda d: d.key, lambda d: f"dep-{d.date}"):
            self.upsert(
                "retainer_deposits",
                deposits.get(key),
                RetainerDeposit,
                {"client_id": cid, "key": key, "date": d.date, "amount": d.amount, "imported": True},
            )
        self.s.flush()  # site ids for devices
        devices = {d.key: d for d in have[Device]}
        for d in data.devices:
            devices[d.key] = self.upsert(
                "devices",
                devices.get(d.key),
                Device,
                {
                    "client_id": cid,
                    "key": d.key,
                    "hostname": d.hostname,
                    "site_id": sites[d.site].id if d.site else None,
                    "role": d.role,
                    "os": d.os,
                    "features": d.features,
                    "checks": d.checks,
                    "rmm_vendor": d.rmm.vendor if d.rmm else None,
                    "rmm_id": d.rmm.id if d.rmm else None,
                    "active": d.active,
                },
            )
        accounts = {a.key: a for a in have[VendorAccount]}
        for a in data.accounts:
            details = {k: getattr(a, k) for k in ACCOUNT_DETAILS if getattr(a, k) is not None}
            self.upsert(
                "accounts",
                accounts.get(a.key),
                VendorAccount,
                {
                    "client_id": cid,
                    "key": a.key,
                    "kind": a.kind,
                    "vendor": a.vendor,
                    "external_id": a.external_id,
                    "url": a.url,
                    "details": details,
                },
            )
        self.s.flush()  # device ids for jobs and time
        jobs = {j.key: j for j in have[BackupJob]}
        for j in data.backup_jobs:
            self.upsert(
                "backup_jobs",
                jobs.get(j.key),
                BackupJob,
                {
                    "client_id": cid,
                    "key": j.key,
                    "device_id": devices[j.device].id if j.device else None,
                    "product": j.product,
                    "name": j.name,
                    "schedule": j.schedule,
                    "timezone": j.timezone,
                    "grace_minutes": j.grace_minutes,
                    "ping_uuid": j.ping_uuid,
                    "status": j.status,
                },
            )
        entries = {t.key: t for t in have[TimeEntry]}
        for t in data.time_entries:
            self.upsert(
                "time_entries",
                entries.get(t.key),
                TimeEntry,
                {
                    "client_id": cid,
                    "key": t.key,
                    "date": t.date,
                    "minutes": t.minutes,
                    "work_type": t.work_type,
                    "technician": t.technician,
                    "note": t.note,
                    "device_id": devices[t.device].id if t.device else None,
                },
            )
        invoices = {v.number: v for v in have[Invoice]}
        terms = timedelta(days=self.book.msp.payment_terms_days)
        for number, v in _derived_keys(data.invoices, lambda v: v.number, lambda v: f"{data.key}-{v.date}"):
            self.upsert(
                "invoices",
                invoices.get(number),
                Invoice,
                {
                    "client_id": cid,
                    "number": number,
                    "kind": "monthly",
                    "period": None,
                    "date": v.date,
                    "due_date": v.date + terms,
                    "status": "paid" if v.paid else "issued",
                    "total": v.total,
                    "imported": True,
                    "recurring": v.recurring,
                },
            )
        rules = {(r.field, r.pattern): r for r in have[MappingRule]}
        for r in data.mapping_rules:
            self.upsert(
                "mapping_rules",
                rules.get((r.field, r.pattern)),
                MappingRule,
                {"client_id": cid, "field": r.field, "pattern": r.pattern},
            )

    def post_prepaid_ledger(self, client_ids: list[int]) -> None:
        """Purchases, bonuses and deposits as ledger entries; a changed figure gets an adjustment entry."""
        posted_minutes: dict[tuple[int, str], int] = defaultdict(int)
        posted_amount: dict[int, Decimal] = defaultdict(Decimal)
        for chunk in _chunks(client_ids):
            for block_id, kind, total in self.s.execute(
                select(LedgerEntry.block_id, LedgerEntry.kind, func.sum(LedgerEntry.minutes))
                .where(LedgerEntry.client_id.in_(chunk), LedgerEntry.cause_type == "block")
                .group_by(LedgerEntry.block_id, LedgerEntry.kind)
            ):
                posted_minutes[(block_id, "bonus" if kind == "bonus" else "purchase")] += int(total)
            for deposit_id, total in self.s.execute(
                select(LedgerEntry.cause_id, func.sum(LedgerEntry.amount))
                .where(LedgerEntry.client_id.in_(chunk), LedgerEntry.cause_type == "retainer_deposit")
                .group_by(LedgerEntry.cause_id)
            ):
                posted_amount[deposit_id] += total  # SUM keeps the column's Money type
        entries: list[LedgerEntry] = []
        now, actor = clock.now(), current_actor()
        for chunk in _chunks(client_ids):
            for block in self.s.scalars(select(Block).where(Block.client_id.in_(chunk))):
                for part, want in (("purchase", block.minutes), ("bonus", block.bonus_minutes)):
                    have = posted_minutes.get((block.id, part))
                    if have == want or (have is None and want == 0):
                        continue
                    kind = part if have is None else "adjustment"
                    entries.append(
                        LedgerEntry(
                            client_id=block.client_id,
                            account="block",
                            block_id=block.id,
                            kind=kind,
                            date=block.purchased,
                            minutes=want - (have or 0),
                            cause_type="block",
                            cause_id=block.id,
                            note=None if have is None else f"{part} changed by book import",
                            recorded_at=now,
                            actor=actor,
                        )
                    )
            for deposit in self.s.scalars(select(RetainerDeposit).where(RetainerDeposit.client_id.in_(chunk))):
                have_amount = posted_amount.get(deposit.id)
                if have_amount == deposit.amount:
                    continue
                entries.append(
                    LedgerEntry(
                        client_id=deposit.client_id,
                        account="retainer",
                        kind="deposit" if have_amount is None else "adjustment",
                        date=deposit.date,
                        amount=deposit.amount - (have_amount or 0),
                        cause_type="retainer_deposit",
                        cause_id=deposit.id,
                        recorded_at=now,
                        actor=actor,
                    )
                )
        self.s.add_all(entries)


def _derived_keys(items: Sequence[T], given: Any, derive: Any) -> list[tuple[str, T]]:
    """Keys for items that may omit one: the item's own, else derived (`-2`, `-3` on repeats)."""
    seen: Counter[str] = Counter()
    keyed = []
    for item in items:
        key = given(item)
        if not key:
            base = derive(item)
            seen[base] += 1
            key = base if seen[base] == 1 else f"{base}-{seen[base]}"
        keyed.append((key, item))
    return keyed


def import_book(db: Database, data: Any) -> ImportSummary:
    book = parse(data)
    with db.unit_of_work() as session:
        importer = _Importer(session, book)
        problems = references(book, importer.known()) + importer.conflicts()
        if problems:
            raise ValidationFailed(problems)
        return importer.run()


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def export_book(db: Database) -> dict[str, Any]:
    """The whole MSP as a book; importing it gives the same data."""
    with db.reader() as s:
        msp = s.scalars(select(MspSettings).limit(1)).first()
        if msp is None:
            raise ValidationFailed(["(book): nothing to export yet: import a book or run `tenure demo`"])
        clients = list(s.scalars(select(Client).order_by(Client.key)))
        ids = [c.id for c in clients]
        children = {
            model: _by_client(s, model, ids)
            for model in (
                Contact,
                Site,
                Agreement,
                Block,
                RetainerDeposit,
                Device,
                VendorAccount,
                BackupJob,
                TimeEntry,
                Invoice,
                MappingRule,
            )
        }
        site_keys = {site.id: site.key for rows in children[Site].values() for site in rows}
        device_keys = {d.id: d.key for rows in children[Device].values() for d in rows}
        book_clients = []
        for c in clients:

            def rows(model: Any, order: Any, cid: int = c.id) -> list[Any]:
                return sorted(children[model].get(cid, []), key=order)

            book_clients.append(
                _clean(
                    {
                        "key": c.key,
                        "name": c.name,
                        "domains": c.domains,
                        "billable_alerts": c.billable_alerts or None,
                        "forward_alerts": c.forward_alerts or None,
                        "low_balance_hours": hours(c.low_balance_minutes),
                        "notes": c.notes,
                        "contacts": [
                            _clean({"name": x.name, "email": x.email, "phone": x.phone, "roles": x.roles})
                            for x in rows(Contact, lambda x: x.id)
                        ],
                        "sites": [
                            _clean({"key": x.key, "name": x.name, "address": x.address})
                            for x in rows(Site, lambda x: x.id)
                        ],
                        "agreements": [
                            _clean(
                                {
                                    "key": a.key,
                                    "kind": a.kind,
                                    "start": a.start,
                                    "end": a.end,
                                    "monthly_fee": a.monthly_fee,
                                    "included_hours": hours(a.included_minutes),
                                    "overage_rate": a.overage_rate,
                                    "hourly_rate": a.hourly_rate,
                                    "block_hours_per_month": hours(a.block_minutes_per_month),
                                    "covers": a.covers,
                                    "excludes": a.excludes,
                                    "term_months": a.term_months,
                                    "billed_through": a.billed_through,
                                }
                            )
                            for a in rows(Agreement, lambda x: (x.start, x.key))
                        ],
                        "blocks": [
                            _clean(
                                {
                                    "key": b.key,
                                    "purchased": b.purchased,
                                    "hours": hours(b.minutes),
                                    "price": b.price,
                                    "expires": b.expires,
                                    "bonus_hours": hours(b.bonus_minutes),
                                }
                            )
                            for b in rows(Block, lambda x: (x.purchased, x.key))
                        ],
                        "retainer_deposits": [
                            {"key": d.key, "date": d.date, "amount": d.amount}
                            for d in rows(RetainerDeposit, lambda x: (x.date, x.key))
                        ],
                        "devices": [
                            _clean(
                                {
                                    "key": d.key,
                                    "hostname": d.hostname,
                                    "site": site_keys.get(d.site_id) if d.site_id else None,
                                    "role": d.role,
                                    "os": d.os,
                                    "features": d.features,
                                    "checks": d.checks,
                                    "rmm": {"vendor": d.rmm_vendor, "id": d.rmm_id}
                                    if d.rmm_vendor and d.rmm_id
                                    else None,
                                    "active": None if d.active else False,
                                }
                            )
                            for d in rows(Device, lambda x: x.key)
                        ],
                        "accounts": [
                            _clean(
                                {
                                    "key": a.key,
                                    "kind": a.kind,
                                    "vendor": a.vendor,
                                    "external_id": a.external_id,
                                    "url": a.url,
                                    **a.details,
                                }
                            )
                            for a in rows(VendorAccount, lambda x: x.key)
                        ],
                        "backup_jobs": [
                            _clean(
                                {
                                    "key": j.key,
                                    "device": device_keys.get(j.device_id) if j.device_id else None,
                                    "product": j.product,
                                    "name": j.name,
                                    "schedule": j.schedule,
                                    "timezone": j.timezone,
                                    "grace_minutes": j.grace_minutes,
                                    "ping_uuid": j.ping_uuid,
                                    "status": j.status,
                                }
                            )
                            for j in rows(BackupJob, lambda x: x.key)
                        ],
                        "time_entries": [
                            _clean(
                                {
                                    "key": t.key,
                                    "date": t.date,
                                    "minutes": t.minutes,
                                    "work_type": t.work_type,
                                    "technician": t.technician,
                                    "note": t.note,
                                    "device": device_keys.get(t.device_id) if t.device_id else None,
                                }
                            )
                            for t in rows(TimeEntry, lambda x: (x.date, x.key))
                        ],
                        "invoices": [
                            {
                                "number": v.number,
                                "date": v.date,
                                "total": v.total,
                                "recurring": v.recurring,
                                "paid": v.status == "paid",
                            }
                            for v in rows(Invoice, lambda x: (x.date, x.number))
                            if v.imported
                        ],
                        "mapping_rules": [
                            {"field": r.field, "pattern": r.pattern} for r in rows(MappingRule, lambda x: x.id)
                        ],
                    }
                )
            )
        document = {
            "version": 1,
            "msp": _clean(
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
                }
            ),
            "clients": book_clients,
        }
    # through the schema once more, so the export is exactly what import accepts (money as strings)
    return schema.Book.model_validate(document).model_dump(mode="json", exclude_none=True, exclude_defaults=True)
