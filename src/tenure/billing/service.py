"""Billing: the monthly run, prepayment invoices, the final invoice, and an invoice's life.

The run allocates every client's work (agreements.service), asks billing.rules for the lines, and saves
one invoice per client dated the 1st, keyed by (client, period) so a rerun finds it and changes nothing.
The work an invoice counted on is frozen (FrozenAllocation) so later re-allocation never rewrites it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from tenure import clock
from tenure.agreements import rules as coverage
from tenure.agreements.frozen import decode_portions, encode_portions, portions_json
from tenure.agreements.models import Agreement, Block, FrozenAllocation, LedgerEntry, RetainerDeposit, TimeEntry
from tenure.agreements.service import (
    World,
    allocate_clients,
    balance_notices,
    client_id_of,
    encode_month,
    ledger_differences,
    load_worlds,
    msp_settings,
    policy_of,
    post_ledger,
    post_notices,
    sync_ledger,
)
from tenure.billing import rules
from tenure.billing.models import Charge, Invoice, InvoiceLine
from tenure.bulk import collector_paused
from tenure.clients.models import Client
from tenure.db import fanout
from tenure.db.bulkwrite import insert_rows, insert_with_ids
from tenure.db.changelog import record_created
from tenure.db.engine import Database, JsonText
from tenure.db.locks import hold, hold_inputs, hold_inputs_alone
from tenure.db.uow import current_actor
from tenure.errors import NotFound, TenureError, ValidationFailed, check_choices
from tenure.money import ZERO, fmt, to_money
from tenure.settings import get_settings
from tenure.text import spreadsheet_safe
from tenure.vocabulary import FEE_KINDS

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
CHUNK = 900


def period_start(period: str) -> date:
    match = PERIOD.match(period)
    if not match:
        raise TenureError(f"period {period!r} is not YYYY-MM (e.g. 2026-11)")
    return date(int(match[1]), int(match[2]), 1)


# ------------------------------------------------------------------------------------------ shapes


def _line_json(line: rules.Line | InvoiceLine) -> dict[str, Any]:
    return {
        "kind": line.kind,
        "description": line.description,
        "quantity": str(line.quantity),
        "unit_price": fmt(line.unit_price),
        "amount": fmt(line.amount),
        "service_from": line.service_from.isoformat() if line.service_from else None,
        "service_to": line.service_to.isoformat() if line.service_to else None,
        "minutes": line.minutes,
    }


def invoice_json(invoice: Invoice, client_key: str) -> dict[str, Any]:
    """INTERFACE.md's invoice shape; money as decimal strings."""
    return {
        "number": invoice.number,
        "client": client_key,
        "kind": invoice.kind,
        "date": invoice.date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "status": invoice.status,
        "total": fmt(invoice.total),
        "period": invoice.period,
        "lines": [_line_json(line) for line in invoice.lines],
    }


@dataclass
class RunResult:
    period: str
    invoices: list[dict[str, Any]]
    skipped: int  # clients that already had this period's invoice

    def as_json(self) -> dict[str, Any]:
        total = sum((Decimal(i["total"]) for i in self.invoices), ZERO)
        return {
            "period": self.period,
            "created": len(self.invoices),
            "already_invoiced": self.skipped,
            "total": fmt(total),
            "invoices": self.invoices,
        }


# --------------------------------------------------------------------------------------- internals


class _Numbers:
    """Invoice numbers YYYY-NNNNN, in sequence per year of the invoice date. The year's numbers are locked
    until the transaction ends, so two writers (a run and a block bought meanwhile) never take the same one."""

    def __init__(self, session: Session):
        self.session = session
        self.last: dict[int, int] = {}

    def next(self, day: date) -> str:
        year = day.year
        if year not in self.last:
            hold(self.session, "invoice-number", year, f"invoice numbering for {year}")
            numbers = self.session.scalars(
                select(Invoice.number).where(Invoice.number.like(f"{year}-%"), Invoice.imported.is_(False))
            )
            self.last[year] = max((int(n.split("-", 1)[1]) for n in numbers if n.split("-", 1)[1].isdigit()), default=0)
        self.last[year] += 1
        return f"{year}-{self.last[year]:05d}"


def _prior_fee_lines(session: Session, client_ids: list[int] | None) -> dict[int, list[rules.Line]]:
    """Fee, catch-up, monitoring and credit lines of every non-void invoice: the days already billed."""
    query = (
        select(
            Invoice.client_id,
            Agreement.key,
            InvoiceLine.kind,
            InvoiceLine.service_from,
            InvoiceLine.service_to,
            InvoiceLine.amount,
        )
        .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
        .join(Agreement, Agreement.id == InvoiceLine.agreement_id)
        .where(Invoice.status != "void", InvoiceLine.kind.in_((*rules.FEE_KINDS, "credit")))
    )
    found: dict[int, list[rules.Line]] = defaultdict(list)
    scopes: Iterable[Any] = (
        [query]
        if client_ids is None
        else (query.where(Invoice.client_id.in_(client_ids[i : i + CHUNK])) for i in range(0, len(client_ids), CHUNK))
    )
    for scoped in scopes:
        for cid, key, kind, start, end, amount in session.execute(scoped):
            found[cid].append(rules.Line(kind, "", Decimal(1), amount, amount, key, start, end))
    return found


def _new_invoice(
    world: World, kind: str, day: date, terms_days: int, lines: list[rules.Line], number: str, period: str | None
) -> Invoice:
    invoice = Invoice(
        number=number,
        client_id=world.client_id,
        kind=kind,
        period=period,
        date=day,
        due_date=rules.due_date(day, terms_days),
        status="draft",
        total=sum((line.amount for line in lines), ZERO),
    )
    invoice.lines = [
        InvoiceLine(
            position=i + 1,
            kind=line.kind,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            agreement_id=world.agreement_ids.get(line.agreement_key) if line.agreement_key else None,
            service_from=line.service_from,
            service_to=line.service_to,
            minutes=line.minutes,
        )
        for i, line in enumerate(lines)
    ]
    return invoice


@dataclass
class _Freezer:
    """Collects what a run froze and writes it in one statement (not one per client) once invoice ids exist."""

    session: Session
    period: str
    pending: list[tuple[int, int | None, str, list[Any], dict[str, int]]] = field(default_factory=list)

    def add(self, client: _Settled, invoice_id: int | None) -> None:
        """What `client`'s invoice (None: no invoice, nothing to bill) froze: its encoded portions, its
        monitoring months, and the entry revisions settled (`_work_lines`), kept beside the portions."""
        if client.portions != "[]" or client.months or client.revisions:
            months = [encode_month(m) for m in client.months]
            self.pending.append((client.world.client_id, invoice_id, client.portions, months, client.revisions))

    def write(self) -> None:
        """Insert a row per client; a client whose row for the period exists (a rerun) has it extended."""
        if not self.pending:
            return
        ids = [cid for cid, *_ in self.pending]
        existing = {}
        for start in range(0, len(ids), CHUNK):
            for row in self.session.scalars(
                select(FrozenAllocation).where(
                    FrozenAllocation.period == self.period, FrozenAllocation.client_id.in_(ids[start : start + CHUNK])
                )
            ):
                existing[row.client_id] = row
        rows, now = [], clock.now()
        for cid, invoice_id, portions, months, revisions in self.pending:
            row = existing.get(cid)
            if row is None:
                rows.append(
                    {
                        "client_id": cid,
                        "period": self.period,
                        "invoice_id": invoice_id,
                        "portions": JsonText(portions),
                        "monitoring": months,
                        "revisions": revisions,
                        "created_at": now,
                    }
                )
            else:  # what this run settled again (a corrected entry) replaces what the row held of it
                settled = decode_portions(orjson.loads(portions))
                again = {p.work_key for p in settled} | revisions.keys()
                kept = [p for p in decode_portions(row.portions) if p.work_key not in again]
                row.portions, row.monitoring = encode_portions([*kept, *settled]), [*row.monitoring, *months]
                row.revisions = {k: v for k, v in (row.revisions or {}).items() if k not in again} | revisions
                row.invoice_id = row.invoice_id or invoice_id
        insert_rows(self.session.connection(), FrozenAllocation.__table__, rows)


@dataclass
class _Draft:
    values: dict[str, Any]  # the invoice's columns
    settled: _Settled  # its client's part of the run: lines, what the invoice freezes, the charges it bills
    id: int | None = None

    @property
    def world(self) -> World:
        return self.settled.world

    @property
    def lines(self) -> list[rules.Line]:
        return self.settled.lines


def _insert_drafts(s: Session, drafts: list[_Draft]) -> None:
    """Invoices, their lines and their change-log rows in a few bulk statements (a run makes thousands), ids
    reserved up front (tenure.db.bulkwrite)."""
    if not drafts:
        return
    ids = insert_with_ids(s.connection(), Invoice.__table__, [d.values for d in drafts])
    lines = []
    for draft, invoice_id in zip(drafts, ids, strict=True):
        draft.id = invoice_id
        for position, line in enumerate(draft.lines, start=1):
            lines.append(
                {
                    "invoice_id": draft.id,
                    "position": position,
                    "kind": line.kind,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "amount": line.amount,
                    "agreement_id": draft.world.agreement_ids.get(line.agreement_key) if line.agreement_key else None,
                    "service_from": line.service_from,
                    "service_to": line.service_to,
                    "minutes": line.minutes,
                }
            )
    insert_rows(s.connection(), InvoiceLine.__table__, lines)
    record_created(
        s,
        "invoice",
        [
            {"id": d.id, "label": d.values["number"], "client_id": d.world.client_id, "after": d.values | {"id": d.id}}
            for d in drafts
        ],
    )


def _draft_json(draft: _Draft) -> dict[str, Any]:
    v = draft.values
    return {
        "number": v["number"],
        "client": draft.world.key,
        "kind": v["kind"],
        "date": v["date"].isoformat(),
        "due_date": v["due_date"].isoformat(),
        "status": v["status"],
        "total": fmt(v["total"]),
        "period": v["period"],
        "lines": [_line_json(line) for line in draft.lines],
    }


def _unfrozen(
    world: World,
    allocation: coverage.Allocation,
    before: date | None,
    months_through: date | None,
) -> tuple[list[coverage.Portion], list[coverage.MonitoringMonth]]:
    every = allocation.portions  # by date: the last is the latest
    if not world.frozen and (not every or before is None or every[-1].date < before):
        portions = list(every)  # nothing frozen, nothing too late: a first run's common case, no test per portion
    else:
        portions = [p for p in every if p.work_key not in world.frozen and (before is None or p.date < before)]
    months = [
        m
        for m in allocation.monitoring
        if (m.agreement_key, m.month) not in world.frozen_monitoring
        and (months_through is None or m.date <= months_through)
    ]
    return portions, months


def _work_lines(world: World, portions: list[coverage.Portion]) -> tuple[list[rules.Line], dict[str, int]]:
    """The lines of work not billed before (`portions`): usage lines for entries billed the first time, and
    for entries corrected since an invoice billed them (`world.billed`) `adjustment` lines of what is owed
    now less what was billed (an entry moved to a date not yet billed is credited now, billed in its month).
    Returns the lines and the revisions the frozen row keeps: the corrected entries' (settled now) and those
    of entries billed at a revision other than 0."""
    stale = world.billed
    if not stale and not world.revisions:  # the common case, a million times in a run: nothing to look up
        return rules.usage_lines(portions), {}
    fresh = [p for p in portions if p.work_key not in stale]
    lines = rules.usage_lines(fresh)
    revisions = {key: world.revisions.get(key, 0) for key in stale}
    if stale:
        rebilled = [p for p in portions if p.work_key in stale]
        lines += rules.adjustment_lines([p for ps in stale.values() for p in ps], rebilled)
    for p in portions:
        if p.work_key in world.revisions:
            revisions[p.work_key] = world.revisions[p.work_key]
    return lines, revisions


@dataclass
class _OpenCharges:
    """Charges not billed yet (`due`) and charges voided after an invoice billed them (`withdrawn`), per
    client, each with its id."""

    due: dict[int, list[tuple[int, rules.Charge]]] = field(default_factory=lambda: defaultdict(list))
    withdrawn: dict[int, list[tuple[int, rules.Charge]]] = field(default_factory=lambda: defaultdict(list))

    def lines(self, client_id: int) -> tuple[list[rules.Line], list[int], list[int]]:
        due, withdrawn = self.due.get(client_id, []), self.withdrawn.get(client_id, [])
        if not due and not withdrawn:
            return [], [], []
        lines = rules.charge_lines([c for _, c in due], [c for _, c in withdrawn])
        return lines, [i for i, _ in due], [i for i, _ in withdrawn]


def _open_charges(session: Session, client_ids: list[int] | None, before: date | None) -> _OpenCharges:
    """Charges dated before `before` (all, when None) that no standing invoice billed, and voided charges
    an invoice billed and none credited yet: in one query (chunked when clients are named)."""
    c = Charge
    query = select(
        c.id, c.client_id, c.key, c.date, c.description, c.amount, c.quantity, c.cost, c.voided_at, c.invoice_id
    ).where(
        ((c.voided_at.is_(None)) & (c.invoice_id.is_(None)) & (c.date < (before or date.max)))
        | ((c.voided_at.is_not(None)) & (c.invoice_id.is_not(None)) & (c.credit_invoice_id.is_(None)))
    )
    scopes: Iterable[Any] = (
        [query]
        if client_ids is None
        else (query.where(c.client_id.in_(client_ids[i : i + CHUNK])) for i in range(0, len(client_ids), CHUNK))
    )
    found = _OpenCharges()
    for scoped in scopes:
        for row in session.execute(scoped.order_by(c.date, c.key)):
            charge = rules.Charge(row.key, row.date, row.description, row.amount, row.quantity, row.cost)
            (found.due if row.voided_at is None else found.withdrawn)[row.client_id].append((row.id, charge))
    return found


def _mark_charges(session: Session, invoice_id: int, billed: list[int], credited: list[int]) -> None:
    """The invoice that billed these charges, and the one that credited these voided ones (once each: a
    charge another writer marked meanwhile is left as it is)."""
    if billed:
        session.execute(
            update(Charge).where(Charge.id.in_(billed), Charge.invoice_id.is_(None)).values(invoice_id=invoice_id)
        )
    if credited:
        session.execute(
            update(Charge)
            .where(Charge.id.in_(credited), Charge.credit_invoice_id.is_(None))
            .values(credit_invoice_id=invoice_id)
        )


# ------------------------------------------------------------------------------------ the monthly run


@dataclass
class _Settled:
    """One client's part of a monthly run, worked out in whichever process settled its shard: what to write."""

    world: World  # its key and ids only: the works and the frozen portions are left behind (`_bare`)
    lines: list[rules.Line]
    portions: str  # what it freezes, as stored: JSON text (agreements.frozen.portions_json), "[]" for nothing
    months: list[coverage.MonitoringMonth]
    revisions: dict[str, int]
    charges: list[int]  # charges the invoice bills
    credits: list[int]  # charges voided after they were billed, credited on it


@dataclass
class _Shard:
    """What a run settled for some of its clients: the ledger entries and notices to post, each client's part."""

    ledger: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    clients: list[_Settled]


def _bare(world: World) -> World:
    return World(world.client_id, world.key, world.name, agreement_ids=world.agreement_ids)


def _settle(s: Session, client_ids: list[int] | None, start: date, invoiced: set[int]) -> _Shard:
    """Allocate these clients' work (all, when None) and work out the period's lines, ledger entries, notices and
    frozen portions, writing nothing: the run writes every shard's results together (tenure.db.fanout)."""
    msp = msp_settings(s)
    policy = policy_of(msp)
    worlds = load_worlds(s, client_ids)
    through = max(clock.today(), start)
    allocations = {cid: w.allocate(policy, through) for cid, w in worlds.items()}
    ledger = ledger_differences(s, worlds, allocations)
    notices = balance_notices(s, msp, worlds, allocations)
    prior = _prior_fee_lines(s, client_ids)
    charges = _open_charges(s, client_ids, start)
    settled = [
        _settle_client(world, allocations[cid], start, prior[cid], charges, start)
        for cid, world in worlds.items()
        if cid not in invoiced
    ]
    return _Shard(ledger, notices, settled)


def _settle_client(
    world: World,
    allocation: coverage.Allocation,
    month: date,
    prior: list[rules.Line],
    charges: _OpenCharges,
    before: date | None,
) -> _Settled:
    """A client's lines on the invoice dated `month` (its fees, the work not billed yet dated before `before`,
    all when None, and its open charges) and what that invoice freezes."""
    lines: list[rules.Line] = []
    for terms in world.terms:
        months = {m.month: m for m in allocation.monitoring if m.agreement_key == terms.key}
        lines += rules.fee_lines(terms, month, rules.net_billed(prior, terms.key), months)
        lines += rules.credits_billed_back(terms, month, rules.over_credited(prior, terms.key))
    portions, months_done = _unfrozen(world, allocation, before=before, months_through=before)
    work, revisions = _work_lines(world, portions)
    charged, billed, credited = charges.lines(world.client_id)
    frozen = portions_json(portions)  # in the shard's process: the writing process gets one string per client
    return _Settled(_bare(world), lines + work + charged, frozen, months_done, revisions, billed, credited)


CLIENTS_PER_PROCESS = 500  # the fewest clients worth a process of their own in a run
SHARDS_PER_PROCESS = 8  # shards are taken one at a time: a process that starts late or runs slow takes fewer


@collector_paused()  # around the call: the run's million objects are freed before the collector resumes
def run_billing(db: Database, period: str) -> RunResult:
    """DOMAIN.md's monthly run: fees in advance (prorated, catch-up, credits), usage of earlier months in
    arrears, one invoice per client dated the 1st. Idempotent per period: a second run of the period at the
    same time waits for the first (tenure.db.locks), then finds its invoices and changes nothing.

    Clients are settled in shards on every core (`billing_processes`, tenure.db.fanout), each shard reading
    what the run reads, and written here in one transaction, in the order of their keys."""
    start = period_start(period)
    with db.unit_of_work() as s:
        hold(s, "billing-run", start.year * 100 + start.month, f"the billing run of {period}")
        hold_inputs_alone(s, f"the billing run of {period}")  # nothing it reads changes until it commits
        msp = msp_settings(s)
        invoiced = set(
            s.scalars(
                select(Invoice.client_id).where(
                    Invoice.period == period, Invoice.kind == "monthly", Invoice.status != "void"
                )
            )
        )
        # by key (sorted here, as each shard's clients are: not in the database's collation): invoices are
        # numbered in the order of their clients' keys, so shards cut as runs of keys are written one after the
        # other as each comes in, while the children work the next ones
        ids = [cid for cid, _ in sorted(s.execute(select(Client.id, Client.key)).all(), key=lambda c: c[1])]
        parts = fanout.processes(get_settings().billing_processes, len(ids), CLIENTS_PER_PROCESS)
        shards = [None] if parts == 1 else fanout.cut(ids, parts * SHARDS_PER_PROCESS)  # None: whole tables
        writer = _RunWriter(s, period, start, msp.payment_terms_days)
        with fanout.results(db, s, _settle, shards, start, invoiced, processes=parts) as settled:
            for shard in settled:
                writer.write(shard)
        return RunResult(period, writer.invoices, len(invoiced))


class _RunWriter:
    """Writes a run's shards in the order of their clients' keys: ledger entries, notices, invoices (numbered
    in that order), what each froze, the charges billed."""

    def __init__(self, s: Session, period: str, start: date, payment_terms_days: int) -> None:
        self.s, self.period, self.start, self.terms = s, period, start, payment_terms_days
        self.numbers = _Numbers(s)
        self.invoices: list[dict[str, Any]] = []  # what the run made, for its answer

    def write(self, shard: _Shard) -> None:
        s, start = self.s, self.start
        post_ledger(s, shard.ledger)
        post_notices(s, shard.notices)
        drafts: list[_Draft] = []
        frozen_only: list[_Settled] = []
        for client in sorted(shard.clients, key=lambda c: c.world.key):
            if not client.lines:  # nothing to bill, but what paid this work is settled all the same
                frozen_only.append(client)
                continue
            values = {
                "number": self.numbers.next(start),
                "client_id": client.world.client_id,
                "kind": "monthly",
                "period": self.period,
                "date": start,
                "due_date": rules.due_date(start, self.terms),
                "status": "draft",
                "total": sum((line.amount for line in client.lines), ZERO),
                "imported": False,
                "recurring": False,
            }
            drafts.append(_Draft(values, client))
        _insert_drafts(s, drafts)
        freezer = _Freezer(s, self.period)
        for draft in drafts:
            assert draft.id is not None
            freezer.add(draft.settled, draft.id)
            _mark_charges(s, draft.id, draft.settled.charges, draft.settled.credits)
        for client in frozen_only:
            freezer.add(client, None)
        freezer.write()
        self.invoices += [_draft_json(d) for d in drafts]


# --------------------------------------------------------------------------------------- prepayments


def _prepayment(s: Session, world: World, day: date, line: rules.Line) -> Invoice:
    msp = msp_settings(s)
    invoice = _new_invoice(world, "prepayment", day, msp.payment_terms_days, [line], _Numbers(s).next(day), None)
    s.add(invoice)
    return invoice


def _allocate_off_hold(s: Session, cid: int) -> None:
    """The client's work allocated again after a purchase or deposit; work logged on hold (the retainer at
    zero) that the new hours or money now pay is on hold no more."""
    _, allocations = allocate_clients(s, [cid])
    for entry in s.scalars(
        select(TimeEntry).where(TimeEntry.client_id == cid, TimeEntry.on_hold, TimeEntry.voided_at.is_(None))
    ):
        if not [p for p in allocations[cid].portions_for(entry.key) if p.line_kind == "retainer"]:
            entry.on_hold = False


def _money_given(field: str, value: Decimal, below: str, zero: bool = False) -> Decimal:
    """An amount given by a person, in whole cents and not below zero (nor zero unless `zero`); the refusal
    names the field (`price: ...`), as a form or an option shows it."""
    try:
        amount = to_money(value)
    except ValueError as exc:
        raise ValidationFailed([f"{field}: {exc}"]) from None
    if amount < 0 or (amount == 0 and not zero):
        raise ValidationFailed([f"{field}: {below}, not {amount}"])
    return amount


def buy_block(
    db: Database,
    client_key: str,
    hours: Decimal,
    price: Decimal,
    day: date | None = None,
    expires: date | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """A block bought in Tenure: ledger purchase and bonus, and its own prepayment invoice."""
    day = day or clock.today()
    price = _money_given("price", price, "a block's price is not negative", zero=True)
    minutes = hours * 60
    if minutes <= 0 or minutes != minutes.to_integral_value():
        raise ValidationFailed([f"hours: a block is a positive whole number of minutes, not {hours} hours"])
    if expires is not None and expires < day:
        raise ValidationFailed([f"expires: the block would expire ({expires}) before it is bought ({day})"])
    with db.unit_of_work() as s:
        hold_inputs(s)
        msp = msp_settings(s)
        cid = client_id_of(s, client_key)
        world = load_worlds(s, [cid])[cid]
        has_fee = any(t.kind in FEE_KINDS and t.active_on(day) and (t.monthly_fee or 0) > 0 for t in world.terms)
        if msp.minimum_block_hours and not has_fee and hours < msp.minimum_block_hours:
            raise TenureError(f"clients with no agreement buy blocks of at least {msp.minimum_block_hours} hours")
        bonus = coverage.bonus_minutes(int(minutes), policy_of(msp).block_bonus)
        key = key or f"{client_key}-b{len(world.blocks) + 1}-{day:%Y%m%d}"
        block = Block(
            client_id=cid,
            key=key,
            purchased=day,
            minutes=int(minutes),
            bonus_minutes=bonus,
            price=price,
            expires=expires,
            imported=False,
        )
        s.add(block)
        s.flush()
        now, actor = clock.now(), current_actor()
        s.add_all(
            [
                LedgerEntry(
                    client_id=cid,
                    account="block",
                    block_id=block.id,
                    kind=kind,
                    date=day,
                    minutes=m,
                    cause_type="block",
                    cause_id=block.id,
                    recorded_at=now,
                    actor=actor,
                )
                for kind, m in (("purchase", block.minutes), ("bonus", bonus))
                if m
            ]
        )
        bonus_text = f" + {Decimal(bonus) / 60:g} bonus hours" if bonus else ""
        line = rules.Line(
            "block_purchase",
            f"Prepaid block {key}: {hours:g} hours{bonus_text}",
            Decimal(1),
            price,
            price,
            service_from=day,
            minutes=int(minutes),
        )
        invoice = _prepayment(s, world, day, line)
        s.flush()
        _allocate_off_hold(s, cid)
        return invoice_json(invoice, client_key)


def deposit(
    db: Database, client_key: str, amount: Decimal, day: date | None = None, key: str | None = None
) -> dict[str, Any]:
    """Money paid into the retainer: a ledger deposit and its own prepayment invoice."""
    day = day or clock.today()
    amount = _money_given("amount", amount, "a deposit is a positive amount of money")
    with db.unit_of_work() as s:
        hold_inputs(s)
        cid = client_id_of(s, client_key)
        world = load_worlds(s, [cid])[cid]
        count = s.scalar(select(func.count()).select_from(RetainerDeposit).where(RetainerDeposit.client_id == cid))
        row = RetainerDeposit(client_id=cid, key=key or f"dep-{day}-{(count or 0) + 1}", date=day, amount=amount)
        s.add(row)
        s.flush()
        s.add(
            LedgerEntry(
                client_id=cid,
                account="retainer",
                kind="deposit",
                date=day,
                amount=amount,
                cause_type="retainer_deposit",
                cause_id=row.id,
                recorded_at=clock.now(),
                actor=current_actor(),
            )
        )
        line = rules.Line("deposit", f"Retainer deposit {row.key}", Decimal(1), amount, amount, service_from=day)
        invoice = _prepayment(s, world, day, line)
        s.flush()
        _allocate_off_hold(s, cid)
        return invoice_json(invoice, client_key)


# ------------------------------------------------------------------------------------ the final invoice


def final_invoice(db: Database, client_key: str, end: date) -> dict[str, Any]:
    """End every agreement on `end`, bill all usage not yet invoiced and credit fees billed past the end,
    and settle unused prepaid time by the MSP's `unused_prepaid` policy. Idempotent per client."""
    with db.unit_of_work() as s:
        hold_inputs(s)
        cid = client_id_of(s, client_key)
        existing = s.scalars(
            select(Invoice)
            .options(selectinload(Invoice.lines))
            .where(Invoice.client_id == cid, Invoice.kind == "final", Invoice.status != "void")
        ).first()
        if existing is not None:
            return invoice_json(existing, client_key)
        for agreement in s.scalars(select(Agreement).where(Agreement.client_id == cid)):
            if agreement.start > end:
                raise TenureError(f"agreement {agreement.key} starts {agreement.start}, after the end {end}")
            if agreement.end is None or agreement.end > end:
                agreement.end = end  # logged in the change log with who ended it
        s.flush()
        msp = msp_settings(s)
        worlds = load_worlds(s, [cid])
        world = worlds[cid]
        latest_work = max((w.date for w in world.works), default=end)
        through = max(clock.today(), end, latest_work)
        allocation = world.allocate(policy_of(msp), through)
        sync_ledger(s, worlds, {cid: allocation})
        prior = _prior_fee_lines(s, [cid])[cid]
        settled = _settle_client(world, allocation, end.replace(day=1), prior, _open_charges(s, [cid], None), None)
        lines = list(settled.lines)
        balances = {b.key: allocation.block_balance_on(b.key, through) for b in world.blocks}
        retainer = allocation.retainer_balance_on(through)
        lines += rules.settlement_lines(balances, world.blocks, retainer, msp.unused_prepaid)  # type: ignore[arg-type]
        day = max(clock.today(), end)
        invoice = _new_invoice(world, "final", day, msp.payment_terms_days, lines, _Numbers(s).next(day), None)
        s.add(invoice)
        s.flush()
        now, actor = clock.now(), current_actor()
        settle = [
            LedgerEntry(
                client_id=cid,
                account="block",
                block_id=world.block_ids[key],
                kind="settlement",
                date=day,
                minutes=-left,
                cause_type="invoice",
                cause_id=invoice.id,
                note=f"{msp.unused_prepaid} at offboarding",
                recorded_at=now,
                actor=actor,
            )
            for key, left in balances.items()
            if left > 0
        ]
        if retainer > 0:
            settle.append(
                LedgerEntry(
                    client_id=cid,
                    account="retainer",
                    kind="settlement",
                    date=day,
                    amount=-retainer,
                    cause_type="invoice",
                    cause_id=invoice.id,
                    note=f"{msp.unused_prepaid} at offboarding",
                    recorded_at=now,
                    actor=actor,
                )
            )
        s.add_all(settle)
        freezer = _Freezer(s, "final")
        freezer.add(settled, invoice.id)
        freezer.write()
        _mark_charges(s, invoice.id, settled.charges, settled.credits)
        s.flush()
        return invoice_json(invoice, client_key)


# ---------------------------------------------------------------------------------- an invoice's life

INVOICE_STATUSES = ("draft", "issued", "paid", "void")
INVOICE_KINDS = ("monthly", "prepayment", "final")
TRANSITIONS = {"issue": ({"draft"}, "issued"), "pay": ({"issued"}, "paid"), "void": ({"draft", "issued"}, "void")}


def change_status(db: Database, number: str, action: str) -> dict[str, Any]:
    """draft → issued → paid, or void. Voiding releases the work the invoice froze and reverses its
    settlement, so the next run (or a rerun of the period) bills it again on a new invoice. Issuing mails
    the invoice (billing.mailing.issue_one answers with its mail); paying or voiding stops its reminders."""
    from tenure.billing import mailing  # mailing builds on this module

    allowed, target = TRANSITIONS[action]
    with db.unit_of_work() as s:
        hold_inputs(s)  # a voided invoice is billed again by the next run
        invoice = s.scalars(
            select(Invoice).options(selectinload(Invoice.lines)).where(Invoice.number == number)
        ).first()
        if invoice is None:
            raise NotFound(f"no invoice {number!r} (see `tenure invoice list`)")
        if invoice.imported:
            raise TenureError(f"invoice {number} came from a former system; it is history, not Tenure's to change")
        if invoice.status not in allowed:
            raise TenureError(
                f"invoice {number} is {invoice.status}; only a {' or '.join(sorted(allowed))} invoice can be {target}"
            )
        invoice.status = target
        if target == "issued":
            invoice.issued_at = clock.now()
            mailing.on_issue(s, invoice)  # the mail waits in the outbox, committed with the issue
        elif target == "paid":
            invoice.paid_at = clock.now()
            mailing.on_settled(s, invoice)
        else:
            mailing.on_settled(s, invoice)
            s.execute(delete(FrozenAllocation).where(FrozenAllocation.invoice_id == invoice.id))
            # its charges are billed again, and its credits of voided charges given again, by the next invoice
            s.execute(update(Charge).where(Charge.invoice_id == invoice.id).values(invoice_id=None))
            s.execute(update(Charge).where(Charge.credit_invoice_id == invoice.id).values(credit_invoice_id=None))
            reversals = [
                {
                    "client_id": e.client_id,
                    "account": e.account,
                    "block_id": e.block_id,
                    "kind": "reversal",
                    "date": e.date,
                    "minutes": -e.minutes,
                    "amount": -e.amount,
                    "cause_type": "invoice",
                    "cause_id": invoice.id,
                    "reverses_id": e.id,
                    "note": f"invoice {number} voided",
                    "recorded_at": clock.now(),
                    "actor": current_actor(),
                }
                for e in s.scalars(
                    select(LedgerEntry).where(
                        LedgerEntry.cause_type == "invoice",
                        LedgerEntry.cause_id == invoice.id,
                        LedgerEntry.kind == "settlement",
                    )
                )
            ]
            if reversals:
                s.execute(insert(LedgerEntry), reversals)
        key = s.scalar(select(Client.key).where(Client.id == invoice.client_id))
        return invoice_json(invoice, key or "")


def list_invoices(
    db: Database,
    client: str | None = None,
    period: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Invoices, oldest first; `limit`/`offset` take one page of them (by date, then number: stable). A
    status or kind no invoice can have is refused, not answered with nothing."""
    check_choices(("status", status, INVOICE_STATUSES), ("kind", kind, INVOICE_KINDS))
    with db.reader() as s:
        query = (
            select(Invoice, Client.key)
            .join(Client, Client.id == Invoice.client_id)
            .options(selectinload(Invoice.lines))
            .order_by(Invoice.date, Invoice.number)
            .limit(limit)
            .offset(offset)
        )
        if client:
            client_id_of(s, client)
            query = query.where(Client.key == client)
        if period:
            start = period_start(period)
            query = query.where(Invoice.date >= start, Invoice.date < start + relativedelta(months=1))
        if status:
            query = query.where(Invoice.status == status)
        if kind:
            query = query.where(Invoice.kind == kind)
        return [invoice_json(invoice, key) for invoice, key in s.execute(query)]


def get_invoice(db: Database, number: str) -> dict[str, Any]:
    with db.reader() as s:
        row = s.execute(
            select(Invoice, Client.key)
            .join(Client, Client.id == Invoice.client_id)
            .options(selectinload(Invoice.lines))
            .where(Invoice.number == number)
        ).first()
        if row is None:
            raise NotFound(f"no invoice {number!r} (see `tenure invoice list`)")
        return invoice_json(row[0], row[1])


CSV_COLUMNS = (
    "number",
    "client",
    "kind",
    "date",
    "due_date",
    "status",
    "line",
    "line_kind",
    "description",
    "quantity",
    "unit_price",
    "amount",
    "invoice_total",
)


def csv_text(rows: list[dict[str, str]]) -> str:
    """`csv_rows` as one CSV document with its header: `invoice export`, an invoice's download."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def csv_rows(invoices: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per line, for accounting tools (an invoice without lines gets one row of its total). A cell a
    spreadsheet would run as a formula (`=…`, `+…`, `@…`) is escaped with a leading `'`; amounts such as
    `-12.50` stay numbers (tenure.text.spreadsheet_safe)."""
    rows = []
    for inv in invoices:
        base = {k: inv[k] for k in ("number", "client", "kind", "date", "due_date", "status")}
        for n, line in enumerate(inv["lines"] or [None], start=1):
            rows.append(
                base
                | {
                    "line": str(n) if line else "",
                    "line_kind": line["kind"] if line else "",
                    "description": line["description"] if line else "imported invoice",
                    "quantity": line["quantity"] if line else "1",
                    "unit_price": line["unit_price"] if line else inv["total"],
                    "amount": line["amount"] if line else inv["total"],
                    "invoice_total": inv["total"],
                }
            )
    return [{column: spreadsheet_safe(value) for column, value in row.items()} for row in rows]
