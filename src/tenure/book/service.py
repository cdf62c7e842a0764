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
from tenure.billing.models import Charge, Invoice
from tenure.book import schema
from tenure.book.shapes import (
    ACCOUNTS,
    AGREEMENTS,
    BACKUP_JOBS,
    BLOCKS,
    CHARGES,
    CONTACTS,
    DEPOSITS,
    DEVICES,
    MAPPING_RULES,
    SITES,
    TIME_ENTRIES,
    Kind,
    Refs,
    client_values,
    client_view,
    msp_values,
    msp_view,
)
from tenure.book.shapes import clean as _clean
from tenure.book.validate import Known, parse, references
from tenure.bulk import chunks as _chunks
from tenure.clients.models import BackupJob, Client, Contact, Device, Site, VendorAccount
from tenure.db.engine import Database
from tenure.db.locks import hold_inputs
from tenure.db.uow import current_actor
from tenure.errors import ValidationFailed
from tenure.intake.models import MappingRule
from tenure.msp.models import MspSettings

T = TypeVar("T")


def _get(item: Any, name: str) -> Any:
    """A field of a row or of a row's values."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name)


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
        return problems + self.billed_charges(owner)

    def billed_charges(self, owner: dict[int, str]) -> list[str]:
        """A charge an invoice billed keeps its amount and date: the invoice never changes (void the charge and
        add a new one, credited and billed on the next invoice)."""
        problems = []
        ids = {key: cid for cid, key in owner.items()}
        for chunk in _chunks(list(owner)):
            query = select(Charge).where(Charge.client_id.in_(chunk), Charge.invoice_id.is_not(None))
            billed = {(row.client_id, row.key): row for row in self.s.scalars(query)}
            for c, client in enumerate(self.book.clients):
                for i, item in enumerate(client.charges):
                    row = billed.get((ids.get(client.key, -1), item.key))
                    if row is not None and (row.amount, row.date) != (item.amount, item.date):
                        problems.append(
                            f"clients[{c}].charges[{i}]: charge {item.key!r} was billed already; its amount and date "
                            "stay (void it and add a new charge)"
                        )
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
                client_values(data),
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
                Charge,
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
        self.upsert("msp", current, MspSettings, msp_values(msp))

    def client_children(self, client: Client, data: schema.Client, have: dict[Any, list[Any]]) -> None:
        refs = Refs(client.id, bonus_tiers=self.book.msp.block_bonus)

        def upsert_all(kind: Kind, items: Sequence[Any], ident: Any, extra: dict[str, Any] | None = None) -> None:
            existing = {ident(row): row for row in have[kind.model]}
            for item in items:
                values = kind.values(item, refs) | (extra or {})
                row = self.upsert(kind.name, existing.get(ident(values)), kind.model, values)
                existing[ident(values)] = row

        upsert_all(CONTACTS, data.contacts, lambda x: (_get(x, "email") or _get(x, "name")).lower())
        upsert_all(SITES, data.sites, lambda x: _get(x, "key"))
        upsert_all(AGREEMENTS, data.agreements, lambda x: _get(x, "key"))
        upsert_all(BLOCKS, data.blocks, lambda x: _get(x, "key"), {"imported": True})
        deposits = [d.model_copy(update={"key": key}) for key, d in _derived_keys(
            data.retainer_deposits, lambda d: d.key, lambda d: f"dep-{d.date}"
        )]  # fmt: skip
        upsert_all(DEPOSITS, deposits, lambda x: _get(x, "key"), {"imported": True})
        self.s.flush()  # site ids for devices
        refs.site_ids = {row.key: row.id for row in self.s.scalars(select(Site).where(Site.client_id == client.id))}
        upsert_all(DEVICES, data.devices, lambda x: _get(x, "key"))
        upsert_all(ACCOUNTS, data.accounts, lambda x: _get(x, "key"))
        self.s.flush()  # device ids for jobs and time
        devices = select(Device.key, Device.id).where(Device.client_id == client.id)
        refs.device_ids = {key: id_ for key, id_ in self.s.execute(devices)}
        upsert_all(BACKUP_JOBS, data.backup_jobs, lambda x: _get(x, "key"))
        upsert_all(TIME_ENTRIES, data.time_entries, lambda x: _get(x, "key"))
        upsert_all(CHARGES, data.charges, lambda x: _get(x, "key"))
        invoices = {v.number: v for v in have[Invoice]}
        terms = timedelta(days=self.book.msp.payment_terms_days)
        for number, v in _derived_keys(data.invoices, lambda v: v.number, lambda v: f"{data.key}-{v.date}"):
            self.upsert(
                "invoices",
                invoices.get(number),
                Invoice,
                {
                    "client_id": client.id,
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
        upsert_all(MAPPING_RULES, data.mapping_rules, lambda x: (_get(x, "field"), _get(x, "pattern")))

    def post_prepaid_ledger(self, client_ids: list[int]) -> None:
        post_prepaid_ledger(self.s, client_ids)


def post_prepaid_ledger(session: Session, client_ids: list[int]) -> None:
    """Purchases, bonuses and deposits as ledger entries; a changed figure gets an adjustment entry."""
    posted_minutes: dict[tuple[int, str], int] = defaultdict(int)
    posted_amount: dict[int, Decimal] = defaultdict(Decimal)
    for chunk in _chunks(client_ids):
        for block_id, kind, total in session.execute(
            select(LedgerEntry.block_id, LedgerEntry.kind, func.sum(LedgerEntry.minutes))
            .where(LedgerEntry.client_id.in_(chunk), LedgerEntry.cause_type == "block")
            .group_by(LedgerEntry.block_id, LedgerEntry.kind)
        ):
            posted_minutes[(block_id, "bonus" if kind == "bonus" else "purchase")] += int(total)
        for deposit_id, total in session.execute(
            select(LedgerEntry.cause_id, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.client_id.in_(chunk), LedgerEntry.cause_type == "retainer_deposit")
            .group_by(LedgerEntry.cause_id)
        ):
            posted_amount[deposit_id] += total  # SUM keeps the column's Money type
    entries: list[LedgerEntry] = []
    now, actor = clock.now(), current_actor()
    for chunk in _chunks(client_ids):
        for block in session.scalars(select(Block).where(Block.client_id.in_(chunk))):
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
                        note=None if have is None else f"{part} changed",
                        recorded_at=now,
                        actor=actor,
                    )
                )
        for deposit in session.scalars(select(RetainerDeposit).where(RetainerDeposit.client_id.in_(chunk))):
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
    session.add_all(entries)


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
        hold_inputs(session)
        importer = _Importer(session, book)
        problems = references(book, importer.known()) + importer.conflicts()
        if problems:
            raise ValidationFailed(problems)
        return importer.run()


def import_client(db: Database, data: Any) -> ImportSummary:
    """One client, with whatever it has, imported as a one-client book under the MSP's current settings:
    accepted and refused exactly as in a whole book; problems are named from the client down."""
    with db.reader() as s:
        msp = s.scalars(select(MspSettings).limit(1)).first()
        if msp is None:
            raise ValidationFailed(["(msp): Tenure has no MSP settings yet: import a book or run `tenure demo`"])
        document = {"version": 1, "msp": msp_view(msp), "clients": [data]}
    try:
        return import_book(db, document)
    except ValidationFailed as exc:
        raise ValidationFailed([p.removeprefix("clients[0].") for p in exc.problems]) from None


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
                Charge,
                Invoice,
                MappingRule,
            )
        }
        book_clients = []
        for c in clients:

            def rows(model: Any, order: Any, cid: int = c.id) -> list[Any]:
                # voided time entries and charges stay on record and out of the book
                live = (r for r in children[model].get(cid, []) if getattr(r, "voided_at", None) is None)
                return sorted(live, key=order)

            refs = Refs(
                c.id,
                {x.key: x.id for x in children[Site].get(c.id, [])},
                {x.key: x.id for x in children[Device].get(c.id, [])},
            )

            def views(kind: Kind, order: Any, refs: Refs = refs, rows: Any = rows) -> list[dict[str, Any]]:
                return [kind.view(row, refs) for row in rows(kind.model, order)]

            book_clients.append(
                _clean(
                    {
                        **client_view(c),
                        "contacts": views(CONTACTS, lambda x: x.id),
                        "sites": views(SITES, lambda x: x.id),
                        "agreements": views(AGREEMENTS, lambda x: (x.start, x.key)),
                        "blocks": views(BLOCKS, lambda x: (x.purchased, x.key)),
                        "retainer_deposits": views(DEPOSITS, lambda x: (x.date, x.key)),
                        "devices": views(DEVICES, lambda x: x.key),
                        "accounts": views(ACCOUNTS, lambda x: x.key),
                        "backup_jobs": views(BACKUP_JOBS, lambda x: x.key),
                        "time_entries": views(TIME_ENTRIES, lambda x: (x.date, x.key)),
                        "charges": views(CHARGES, lambda x: (x.date, x.key)),
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
                        "mapping_rules": views(MAPPING_RULES, lambda x: x.id),
                    }
                )
            )
        document = {
            "version": 1,
            "msp": msp_view(msp),
            "clients": book_clients,
        }
    # through the schema once more, so the export is exactly what import accepts (money as strings); a value
    # the database holds and a book refuses (a name with a line break, from before it was refused) is named
    try:
        book = parse(document)
    except ValidationFailed as failed:
        raise ValidationFailed(
            [f"cannot export {problem} (correct it, then export again)" for problem in failed.problems]
        ) from None
    return book.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
