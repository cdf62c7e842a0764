"""A prepaid ledger's entries explained as `tenure client show` explains them: each entry's cause in words and
the page that shows it (the time entry and its note, the agreement's month, the block, the invoice), the
rounding of time deducted ("50 min logged → 60 min deducted, rounded up to 30 min"), a block's expiry.

Only the entries of one page are explained: a handful of bulk queries by id, whatever the ledger's length."""

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from tenure.agreements.models import Agreement, Block, RetainerDeposit, TimeEntry
from tenure.agreements.rules import round_up
from tenure.billing.models import Invoice
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.msp.models import MspSettings


def _ids(items: list[dict[str, Any]]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = defaultdict(set)
    for item in items:
        kind, _, ident = (item.get("cause") or "").partition(":")
        if kind and ident.isdigit():
            found[kind].add(int(ident))
    return found


def rounding_words(logged: int, deducted: int, unit: int) -> str:
    """How minutes logged became minutes deducted from a block."""
    rounded = round_up(logged, unit) if logged >= 0 else logged
    if deducted == logged:
        return f"{logged} min logged → {deducted} min deducted"
    if deducted == rounded:
        return f"{logged} min logged → {deducted} min deducted, rounded up to {unit} min"
    return f"{logged} min logged (rounded up to {unit} min: {rounded}) → {deducted} min from this block"


def explain(db: Database, client: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`items` (ledger entries as web/queries.ledger_page makes them) with `cause_label`, `cause_page`,
    `rounding` (time deducted) and `block_expires` added."""
    ids = _ids(items)
    base = f"/clients/{client}"
    with db.reader() as s:
        unit = s.scalar(select(MspSettings.time_rounding_minutes).limit(1)) or 1
        times = (
            {
                r.id: r
                for r in s.execute(
                    select(
                        TimeEntry.id,
                        TimeEntry.key,
                        TimeEntry.minutes,
                        TimeEntry.work_type,
                        TimeEntry.note,
                        TimeEntry.date,
                        TimeEntry.voided_at,
                    ).where(TimeEntry.id.in_(ids["time_entry"]))
                )
            }
            if ids["time_entry"]
            else {}
        )
        agreements = dict(
            s.execute(select(Agreement.id, Agreement.key).where(Agreement.id.in_(ids["monitoring"] | ids["agreement"])))
            .tuples()
            .all()
        )
        block_keys = {i["block"] for i in items if i.get("block")}
        blocks = {
            r.key: r
            for r in s.execute(
                select(Block.id, Block.key, Block.expires).where(
                    Block.client_id == select(Client.id).where(Client.key == client).scalar_subquery(),
                    Block.key.in_(block_keys) | Block.id.in_(ids["block"] | ids["expiry"]),
                )
            )
        }
        block_by_id = {r.id: r for r in blocks.values()}
        deposits = dict(
            s.execute(
                select(RetainerDeposit.id, RetainerDeposit.key).where(RetainerDeposit.id.in_(ids["retainer_deposit"]))
            )
            .tuples()
            .all()
        )
        invoices = dict(
            s.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(ids["invoice"]))).tuples().all()
        )
    shown = []
    for item in items:
        kind, _, ident = (item.get("cause") or "").partition(":")
        cid = int(ident) if ident.isdigit() else None
        label, page, rounding = None, None, None
        if kind == "time_entry" and cid in times:
            t = times[cid]
            label = (
                f"time {t.key}, {t.date.isoformat()} ({t.work_type.replace('_', ' ')}"
                + (f": {t.note})" if t.note else ")")
                + (", voided" if t.voided_at else "")
            )
            page = f"{base}?tab=time#time-{t.key}"
            if item.get("account") == "block" and item.get("minutes", 0) < 0:
                rounding = rounding_words(t.minutes, -item["minutes"], unit)
        elif kind in ("monitoring", "agreement") and cid in agreements:
            label = (
                f"monitoring month of {agreements[cid]}, {item['date'][:7]}"
                if kind == "monitoring"
                else (f"agreement {agreements[cid]}")
            )
            page = f"{base}?tab=agreements"
        elif kind in ("block", "expiry") and cid in block_by_id:
            key = block_by_id[cid].key
            label = f"block {key} expired" if kind == "expiry" else f"block {key} bought"
            page = f"{base}?tab=agreements"
        elif kind == "retainer_deposit" and cid in deposits:
            label, page = f"deposit {deposits[cid]}", f"{base}?tab=agreements"
        elif kind == "invoice" and cid in invoices:
            label, page = f"invoice {invoices[cid]}", f"/invoices/{invoices[cid]}"
        block = blocks.get(item.get("block") or "")
        expires = block.expires.isoformat() if block is not None and block.expires else None
        shown.append(item | {"cause_label": label, "cause_page": page, "rounding": rounding, "block_expires": expires})
    return shown
