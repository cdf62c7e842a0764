"""Clients as people see them: class, agreements, devices and balances, as of a date."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tenure.agreements.models import Agreement, Block, LedgerEntry, RetainerDeposit, TimeEntry
from tenure.billing.models import Invoice
from tenure.bulk import collector_paused
from tenure.clients.models import Client, Device
from tenure.clients.rules import ClassFacts, FeeAgreement, client_class
from tenure.db.engine import Database
from tenure.errors import NotFound
from tenure.money import ZERO, fmt
from tenure.offboarding.models import OffboardingRun
from tenure.vocabulary import FEE_KINDS


@dataclass
class ClientView:
    id: int
    key: str
    name: str
    klass: str
    agreements: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    block_balance_minutes: int = 0
    retainer_balance: Decimal = ZERO

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "class": self.klass,
            "agreements": self.agreements,
            "devices": self.devices,
            "block_balance_minutes": self.block_balance_minutes,
            "retainer_balance": fmt(self.retainer_balance),
        }


AGREEMENT_COLUMNS = (
    "client_id",
    "key",
    "kind",
    "start",
    "end",
    "monthly_fee",
    "included_minutes",
    "overage_rate",
    "hourly_rate",
    "block_minutes_per_month",
    "covers",
    "excludes",
    "term_months",
    "renewal",
    "billing_interval_months",
)


def _agreement_json(a: Any) -> dict[str, Any]:
    return {
        "key": a.key,
        "kind": a.kind,
        "start": a.start.isoformat(),
        "end": a.end.isoformat() if a.end else None,
        "monthly_fee": fmt(a.monthly_fee) if a.monthly_fee is not None else None,
        "included_minutes": a.included_minutes,
        "overage_rate": fmt(a.overage_rate) if a.overage_rate is not None else None,
        "hourly_rate": fmt(a.hourly_rate) if a.hourly_rate is not None else None,
        "block_minutes_per_month": a.block_minutes_per_month,
        "covers": a.covers,
        "excludes": a.excludes,
        "term_months": a.term_months,
        "renewal": a.renewal,
        "billing_interval_months": a.billing_interval_months,
    }


def block_balances(session: Session, day: date, client_ids: list[int] | None = None) -> dict[int, int]:
    """Minutes left on each client's unexpired blocks on `day`: the sum of their ledger entries."""
    query = (
        select(LedgerEntry.client_id, func.sum(LedgerEntry.minutes))
        .join(Block, Block.id == LedgerEntry.block_id)
        .where(
            LedgerEntry.account == "block",
            LedgerEntry.date <= day,
            Block.purchased <= day,
            or_(Block.expires.is_(None), Block.expires >= day),
        )
        .group_by(LedgerEntry.client_id)
    )
    if client_ids is not None:
        query = query.where(LedgerEntry.client_id.in_(client_ids))
    return {cid: int(total or 0) for cid, total in session.execute(query)}


def retainer_balances(session: Session, day: date, client_ids: list[int] | None = None) -> dict[int, Decimal]:
    query = (
        select(LedgerEntry.client_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.account == "retainer", LedgerEntry.date <= day)
        .group_by(LedgerEntry.client_id)
    )
    if client_ids is not None:
        query = query.where(LedgerEntry.client_id.in_(client_ids))
    # SUM keeps the column's Money type: the database adds integer cents, Python gets a Decimal
    return {cid: total or ZERO for cid, total in session.execute(query)}


def _first_activity(session: Session, client_ids: list[int]) -> dict[int, date]:
    found: dict[int, date] = {}
    for start in range(0, len(client_ids), 500):
        found |= _first_activity_of(session, client_ids[start : start + 500])
    return found


def _first_activity_of(session: Session, client_ids: list[int]) -> dict[int, date]:
    dated = (
        (Agreement, Agreement.start),
        (Block, Block.purchased),
        (RetainerDeposit, RetainerDeposit.date),
        (TimeEntry, TimeEntry.date),
        (Invoice, Invoice.date),
    )
    # one correlated MIN per table and client, each a seek on the table's client index: for time entries, the
    # (client, date) index read in date order up to the first live entry (a grouped MIN over the IN list read
    # every time entry of every undecided client, voided or not; agreements, blocks and deposits are few)
    firsts = [
        select(func.min(column))
        .where(model.client_id == Client.id, *([TimeEntry.voided_at.is_(None)] if model is TimeEntry else []))
        .scalar_subquery()
        for model, column in dated
    ]
    found: dict[int, date] = {}
    for cid, *dates in session.execute(select(Client.id, *firsts).where(Client.id.in_(client_ids))):
        known = [d if isinstance(d, date) else date.fromisoformat(str(d)) for d in dates if d is not None]
        if known:
            found[cid] = min(known)
    return found


@collector_paused()  # tens of thousands of small rows and views, none of them in a cycle (tenure.bulk)
def client_views(
    session: Session, day: date, keys: list[str] | None = None, with_devices: bool = True, archived: bool = False
) -> list[ClientView]:
    """Every client (or those of `keys`) with its class on `day`: a fixed number of queries, never one per client.
    Archived clients are left out of "every client" unless `archived`."""
    query = select(Client.id, Client.key, Client.name).order_by(Client.key)
    if keys is not None:
        query = query.where(Client.key.in_(keys))
    elif not archived:
        query = query.where(Client.archived_at.is_(None))
    clients = session.execute(query).all()
    ids = None if keys is None else [c.id for c in clients]

    def scoped(q: Any, column: Any) -> Any:
        return q if ids is None else q.where(column.in_(ids))

    agreements: dict[int, list[Any]] = defaultdict(list)
    columns = [getattr(Agreement, c) for c in AGREEMENT_COLUMNS]
    for row in session.execute(scoped(select(*columns), Agreement.client_id).order_by(Agreement.start, Agreement.key)):
        agreements[row.client_id].append(row)
    invoices: dict[int, list[date]] = defaultdict(list)
    for cid, invoiced in session.execute(
        scoped(
            select(Invoice.client_id, Invoice.date).where(Invoice.status != "void", Invoice.date <= day),
            Invoice.client_id,
        )
    ):
        invoices[cid].append(invoiced)
    offboarded = dict(
        session.execute(
            scoped(
                select(OffboardingRun.client_id, func.max(OffboardingRun.end_of_service))
                .where(OffboardingRun.state == "done")
                .group_by(OffboardingRun.client_id),
                OffboardingRun.client_id,
            )
        ).all()
    )
    devices: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if with_devices:
        for cid, key, hostname, role in session.execute(
            scoped(
                select(Device.client_id, Device.key, Device.hostname, Device.role)
                .where(Device.active)
                .order_by(Device.key),
                Device.client_id,
            )
        ):
            devices[cid].append({"key": key, "hostname": hostname, "role": role})
    blocks = block_balances(session, day, ids)
    retainers = retainer_balances(session, day, ids)

    facts = {
        cid: ClassFacts(
            offboarded_on=offboarded.get(cid),
            fee_agreements=tuple(
                FeeAgreement(a.start, a.end, a.monthly_fee or ZERO) for a in agreements[cid] if a.kind in FEE_KINDS
            ),
            prepaid_minutes=blocks.get(cid, 0),
            retainer_balance=retainers.get(cid, ZERO),
            invoice_dates=tuple(invoices[cid]),
            first_activity=None,
        )
        for cid, _, _ in clients
    }
    # the earliest record only decides lapsed vs prospect: read it just for the clients no other rule classifies
    undecided = [cid for cid, f in facts.items() if client_class(f, day) == "prospect"]
    for cid, first in _first_activity(session, undecided).items():
        facts[cid] = replace(facts[cid], first_activity=first)

    views = []
    for cid, key, name in clients:
        views.append(
            ClientView(
                id=cid,
                key=key,
                name=name,
                klass=client_class(facts[cid], day),
                agreements=[_agreement_json(a) for a in agreements[cid]],
                devices=devices[cid],
                block_balance_minutes=blocks.get(cid, 0),
                retainer_balance=retainers.get(cid, ZERO),
            )
        )
    return views


def list_clients(db: Database, day: date, klass: str | None = None, archived: bool = False) -> list[ClientView]:
    with db.reader() as session:
        views = client_views(session, day, archived=archived)
    return [v for v in views if klass is None or v.klass == klass]


def _cause_labels(session: Session, client_id: int) -> dict[tuple[str | None, int | None], str]:
    """What each ledger entry points at, in words: the time entry, the agreement's month, the block."""
    labels: dict[tuple[str | None, int | None], str] = {}
    for entry_id, key, work_type, note, voided in session.execute(
        select(TimeEntry.id, TimeEntry.key, TimeEntry.work_type, TimeEntry.note, TimeEntry.voided_at).where(
            TimeEntry.client_id == client_id
        )
    ):
        label = f"time {key} ({work_type.replace('_', ' ')}{': ' + note if note else ''})"
        labels[("time_entry", entry_id)] = label + (", voided" if voided else "")
    for agreement_id, key in session.execute(
        select(Agreement.id, Agreement.key).where(Agreement.client_id == client_id)
    ):
        labels[("monitoring", agreement_id)] = f"monitoring month of {key}"
    for block_id, key in session.execute(select(Block.id, Block.key).where(Block.client_id == client_id)):
        labels[("block", block_id)] = f"block {key}"
        labels[("expiry", block_id)] = f"block {key} expired"
    for deposit_id, key in session.execute(
        select(RetainerDeposit.id, RetainerDeposit.key).where(RetainerDeposit.client_id == client_id)
    ):
        labels[("retainer_deposit", deposit_id)] = f"deposit {key}"
    for invoice_id, number in session.execute(select(Invoice.id, Invoice.number).where(Invoice.client_id == client_id)):
        labels[("invoice", invoice_id)] = f"invoice {number}"
    return labels


def show_client(db: Database, key: str, day: date) -> tuple[ClientView, list[dict[str, Any]]]:
    """The client and its prepaid ledger, entry by entry with the running balance."""
    with db.reader() as session:
        views = client_views(session, day, keys=[key])
        if not views:
            raise NotFound(f"no client {key!r} (see `tenure client list`)")
        view = views[0]
        block_keys = dict(session.execute(select(Block.id, Block.key).where(Block.client_id == view.id)).all())
        labels = _cause_labels(session, view.id)
        ledger = []
        running = {"block": 0, "retainer": ZERO}
        for entry in session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.client_id == view.id, LedgerEntry.date <= day)
            .order_by(LedgerEntry.date, LedgerEntry.id)
        ):
            item: dict[str, Any] = {
                "date": entry.date.isoformat(),
                "account": entry.account,
                "kind": entry.kind,
                "block": block_keys.get(entry.block_id) if entry.block_id else None,
                "cause": f"{entry.cause_type}:{entry.cause_id}" if entry.cause_type else None,
                "cause_label": labels.get((entry.cause_type, entry.cause_id)),
                "note": entry.note,
            }
            if entry.account == "block":
                running["block"] += entry.minutes
                item |= {"minutes": entry.minutes, "balance_minutes": running["block"]}
            else:
                running["retainer"] += entry.amount
                item |= {"amount": fmt(entry.amount), "balance": fmt(running["retainer"])}
            ledger.append(item)
    return view, ledger
