"""Charges: parts, materials and other one-off charges (DOMAIN.md "Charges and terms").

A charge is recorded with a date, a description, an amount (what the client pays, in all), optionally a
quantity and its cost to the MSP (the owner's view counts it). It is billed in arrears, like overage: on the
monthly invoice of the month after its date, or the next one to run when that one was already made, as a
line of kind `charge`, exactly once (`Charge.invoice_id`; voiding that invoice releases it). A charge is
never deleted: voided before it was billed it is simply never billed; voided after, the next invoice credits
it with an `adjustment` line.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.service import client_id_of
from tenure.billing.models import Charge, Invoice
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.db.locks import hold
from tenure.errors import Conflict, NotFound, ValidationFailed
from tenure.money import fmt, to_money

DESCRIPTION_MAX = 500


def charge_json(charge: Charge, client_key: str, invoices: dict[int, str] | None = None) -> dict[str, Any]:
    """A charge as the book shows it, with its state: the invoice that billed it, and the one that credited
    it once voided (numbers, or None)."""
    numbers = invoices or {}
    return {
        "key": charge.key,
        "client": client_key,
        "date": charge.date.isoformat(),
        "description": charge.description,
        "quantity": None if charge.quantity is None else str(charge.quantity),
        "amount": fmt(charge.amount),
        "cost": None if charge.cost is None else fmt(charge.cost),
        "voided": charge.voided_at is not None,
        "voided_at": charge.voided_at.isoformat() if charge.voided_at else None,
        "void_reason": charge.void_reason,
        "invoice": numbers.get(charge.invoice_id) if charge.invoice_id else None,
        "credit_invoice": numbers.get(charge.credit_invoice_id) if charge.credit_invoice_id else None,
    }


def _numbers(s: Session, charges: list[Charge]) -> dict[int, str]:
    ids = {i for c in charges for i in (c.invoice_id, c.credit_invoice_id) if i is not None}
    if not ids:
        return {}
    return dict(s.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(ids))).tuples().all())


def _money(value: Any, field: str, problems: list[str]) -> Decimal | None:
    if value is None:
        return None
    try:
        if isinstance(value, float | bool):
            raise ValueError
        amount = to_money(value)
    except (ValueError, TypeError, InvalidOperation):
        problems.append(f"{field}: {value!r} is not an amount of money (a decimal string such as \"120.00\")")
        return None
    if amount < 0:
        problems.append(f"{field}: {amount} is negative")
    return amount


def _one_line(text: str | None, field: str, limit: int, problems: list[str]) -> str | None:
    value = (text or "").strip()
    if not value:
        return None
    if len(value) > limit or any(ord(c) < 32 for c in value):
        problems.append(f"{field}: one line of at most {limit} characters")
    return value


def add_charge(
    db: Database,
    client_key: str,
    description: str,
    amount: Decimal | str,
    cost: Decimal | str | None = None,
    date: date | None = None,
    key: str | None = None,
    quantity: Decimal | str | None = None,
) -> dict[str, Any]:
    """Record a charge for a client (default date: today; default key `ch-YYYYMMDD-N`). `amount` is what the
    client pays in all, `cost` what it cost the MSP, `quantity` only describes it (the invoice shows a unit
    price when it divides the amount to the cent). Refused with every problem named (`ValidationFailed`);
    billed by the next monthly run whose month is after its date. Returns `charge_json`."""
    problems: list[str] = []
    text = _one_line(description, "description", DESCRIPTION_MAX, problems)
    if text is None and not problems:
        problems.append("description: say what is charged")
    money = _money(amount, "amount", problems)
    if money is None and amount is None:
        problems.append("amount: is required")
    spent = _money(cost, "cost", problems)
    count: Decimal | None = None
    if quantity is not None:
        try:
            count = Decimal(str(quantity))
            if not count.is_finite() or count <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            problems.append(f"quantity: {quantity!r} is not a positive number")
    day = date or clock.today()
    if key is not None and not _is_key(key):
        problems.append(f"key: {key!r} is not a key (letters, digits and . _ : @ -, up to 100)")
    if problems:
        raise ValidationFailed(problems)
    assert text is not None and money is not None
    with db.reader() as s:
        cid = client_id_of(s, client_key)
    with db.unit_of_work() as s:
        hold(s, "change:charges", cid, f"the charges of client {client_key!r}")  # first: tenure.db.locks
        if key is None:
            n = s.scalar(select(func.count()).select_from(Charge).where(Charge.client_id == cid)) or 0
            key = f"ch-{day:%Y%m%d}-{n + 1}"
            while s.scalar(select(Charge.id).where(Charge.client_id == cid, Charge.key == key)) is not None:
                n += 1
                key = f"ch-{day:%Y%m%d}-{n + 1}"
        elif s.scalar(select(Charge.id).where(Charge.client_id == cid, Charge.key == key)) is not None:
            raise ValidationFailed([f"key: {key!r} already exists in this client"])
        charge = Charge(
            client_id=cid, key=key, date=day, description=text, quantity=count, amount=money, cost=spent
        )
        s.add(charge)
        s.flush()
        return charge_json(charge, client_key)


def _is_key(key: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}", key))


def _charge(s: Session, client_key: str, key: str) -> tuple[Charge, int]:
    cid = client_id_of(s, client_key)
    charge = s.scalars(select(Charge).where(Charge.client_id == cid, Charge.key == key)).first()
    if charge is None:
        raise NotFound(f"client {client_key!r} has no charge {key!r}")
    return charge, cid


def void_charge(db: Database, client_key: str, key: str, reason: str | None = None) -> dict[str, Any]:
    """Void a charge: never billed if it was not yet; credited on the next invoice (`adjustment`) if it was.
    It stays on record with `voided_at` and the reason. Voiding it again changes nothing."""
    problems: list[str] = []
    why = _one_line(reason, "reason", 500, problems)
    if problems:
        raise ValidationFailed(problems)
    with db.reader() as s:
        _, cid = _charge(s, client_key, key)
    with db.unit_of_work() as s:
        hold(s, "change:charges", cid, f"the charges of client {client_key!r}")  # first: tenure.db.locks
        charge, _ = _charge(s, client_key, key)
        if charge.voided_at is None:
            charge.voided_at = clock.now()
            charge.void_reason = why
            s.flush()
        return charge_json(charge, client_key, _numbers(s, [charge]))


EDITABLE = ("date", "description", "amount", "cost", "quantity")


def edit_charge(db: Database, client_key: str, key: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change a charge in place: any of `date`, `description`, `amount`, `cost`, `quantity` (`None` clears
    cost and quantity). A charge an invoice billed keeps its amount and date (`Conflict`: void it and add a
    new one); a voided charge is not changed. Refusals name every field (`ValidationFailed`)."""
    if not isinstance(changes, dict):
        raise ValidationFailed(["(body): an object of fields is expected"])
    fields = ", ".join(EDITABLE)
    problems = [f"{name}: cannot be changed (one of {fields} can)" for name in changes if name not in EDITABLE]
    values: dict[str, Any] = {}
    if "description" in changes:
        values["description"] = _one_line(changes["description"], "description", DESCRIPTION_MAX, problems)
        if values["description"] is None and not problems:
            problems.append("description: say what is charged")
    if "amount" in changes:
        values["amount"] = _money(changes["amount"], "amount", problems)
        if values["amount"] is None and not problems:
            problems.append("amount: is required")
    if "cost" in changes:
        values["cost"] = _money(changes["cost"], "cost", problems)
    if "quantity" in changes and changes["quantity"] is not None:
        try:
            values["quantity"] = Decimal(str(changes["quantity"]))
            if not values["quantity"].is_finite() or values["quantity"] <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            problems.append(f"quantity: {changes['quantity']!r} is not a positive number")
    elif "quantity" in changes:
        values["quantity"] = None
    if "date" in changes:
        try:
            given = changes["date"]
            values["date"] = given if isinstance(given, date) else date.fromisoformat(given)
        except (TypeError, ValueError):
            problems.append(f"date: {changes['date']!r} is not a date (YYYY-MM-DD)")
    if problems:
        raise ValidationFailed(problems)
    with db.reader() as s:
        _, cid = _charge(s, client_key, key)
    with db.unit_of_work() as s:
        hold(s, "change:charges", cid, f"the charges of client {client_key!r}")  # first: tenure.db.locks
        charge, _ = _charge(s, client_key, key)
        if charge.voided_at is not None:
            raise Conflict(f"charge {key!r} was voided: add a new one")
        moved = [name for name in ("amount", "date") if name in values and values[name] != getattr(charge, name)]
        if charge.invoice_id is not None and moved:
            raise Conflict(
                f"charge {key!r} was billed already: its {' and '.join(moved)} {'stay' if len(moved) > 1 else 'stays'} "
                "as billed (void it and add a new charge: credited and billed on the next invoice)"
            )
        for name, value in values.items():
            if getattr(charge, name) != value:
                setattr(charge, name, value)
        s.flush()
        return charge_json(charge, client_key, _numbers(s, [charge]))


def get_charge(db: Database, client_key: str, key: str) -> dict[str, Any]:
    with db.reader() as s:
        charge, _ = _charge(s, client_key, key)
        return charge_json(charge, client_key, _numbers(s, [charge]))


def list_charges(db: Database, client_key: str | None = None, voided: bool = True) -> list[dict[str, Any]]:
    """Charges by date (of one client, or all), voided ones too unless `voided` is False."""
    with db.reader() as s:
        query = select(Charge, Client.key).join(Client, Client.id == Charge.client_id).order_by(Charge.date, Charge.key)
        if client_key is not None:
            query = query.where(Charge.client_id == client_id_of(s, client_key))
        if not voided:
            query = query.where(Charge.voided_at.is_(None))
        rows = list(s.execute(query).tuples())
        numbers = _numbers(s, [c for c, _ in rows])
        return [charge_json(c, k, numbers) for c, k in rows]
