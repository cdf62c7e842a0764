"""Change one object of the book in place: create, read, change (only the fields sent), end or delete.

The body of every write is the object's shape in the book (`book/shapes.py`, validated by the book's own
pydantic models), so a change made here is accepted or refused exactly as the same object in an imported
book would be. Every object shows a `version`, a digest of its shape: a change sent with a version (or an
`If-Match` ETag) that is no longer current is refused as `Stale`, so two people editing one agreement
never overwrite each other unseen. Refusals name each field (`ValidationFailed`, places such as
`monthly_fee: …`) and change nothing.

Nothing a bookkeeper needs the history of is erased: deleting an agreement that was billed ends it, a
device is retired, a backup job retired, a vendor account closed; blocks and deposits are purchases and
are never deleted. Only what has no history is really deleted. The change log records every change.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement, Block, RetainerDeposit, TimeEntry
from tenure.agreements.service import allocate_clients, reopen_work_outside_its_agreements
from tenure.billing.models import Invoice, InvoiceLine
from tenure.book import schema
from tenure.book.shapes import AGREEMENTS, KINDS, Kind, Refs
from tenure.book.validate import _pydantic_problems
from tenure.bulk import collector_paused
from tenure.clients.models import BackupJob, Client, Device, Site
from tenure.db.engine import Database
from tenure.db.locks import hold
from tenure.errors import Conflict, NotFound, Stale, ValidationFailed
from tenure.msp.models import MspSettings

# the terms of an agreement that past invoices were computed from: once billed, they change only from a date
MONEY_TERMS = (
    "kind",
    "start",
    "monthly_fee",
    "included_hours",
    "overage_rate",
    "hourly_rate",
    "block_hours_per_month",
    "covers",
    "excludes",
)


def version_of(shape: dict[str, Any]) -> str:
    """A digest of what a person sees of the object: it changes whenever any of it changes."""
    text = json.dumps(shape, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sent_version(body: dict[str, Any], if_match: str | None) -> str | None:
    """The version a change was made on: `version` in the body, else the `If-Match` header (its quotes off)."""
    version = body.pop("version", None)
    if version is not None and not isinstance(version, str):
        raise ValidationFailed(["version: the text a read gave (`version`), or leave it out"])
    given = version or if_match
    if given is None or given.strip() == "*":  # `If-Match: *`: any current version will do
        return None
    return given.strip().removeprefix("W/").strip('"')


def kind_of(name: str) -> Kind:
    kind = KINDS.get(name.replace("-", "_"))
    if kind is None:
        raise NotFound(f"no kind of object {name!r}: one of {', '.join(k.path for k in KINDS.values())}")
    return kind


# --------------------------------------------------------------------------------------------- reading


def client_row(s: Session, key: str) -> Client:
    client = s.scalars(select(Client).where(Client.key == key)).first()
    if client is None:
        raise NotFound(f"no client {key!r}")
    return client


def refs_of(s: Session, client: Client) -> Refs:
    tiers = s.scalar(select(MspSettings.block_bonus).limit(1)) or []
    return Refs(
        client.id,
        {key: id_ for key, id_ in s.execute(select(Site.key, Site.id).where(Site.client_id == client.id))},
        {key: id_ for key, id_ in s.execute(select(Device.key, Device.id).where(Device.client_id == client.id))},
        [schema.BonusTier.model_validate(t) for t in tiers],
    )


def owner_of(db: Database, kind_name: str, key: str) -> str:
    """The client that holds the object of this key (agreements, devices, jobs… have keys unique across
    clients, so a person may name one without its client; a contact or rule is named by its id)."""
    kind = kind_of(kind_name)
    model = kind.model
    if not kind.keyed and not key.isdigit():
        raise NotFound(f"no {kind.label} {key!r}")
    named = model.key == key if kind.keyed else model.id == int(key)
    with db.reader() as s:
        holder = s.scalar(select(Client.key).join(model, model.client_id == Client.id).where(named))
    if holder is None:
        raise NotFound(f"no {kind.label} {key!r}")
    return str(holder)


def _row(s: Session, kind: Kind, client: Client, ident: str) -> Any:
    model = kind.model
    if kind.keyed:
        found = s.scalars(select(model).where(model.client_id == client.id, model.key == ident)).first()
    else:
        found = s.get(model, int(ident)) if ident.isdigit() else None
        found = found if found is not None and found.client_id == client.id else None
    if found is None:
        raise NotFound(f"client {client.key!r} has no {kind.label} {ident!r}")
    return found


def _extra(kind: Kind, row: Any) -> dict[str, Any]:
    """What is shown beside the shape and never written through it."""
    extra: dict[str, Any] = {} if kind.keyed else {"id": row.id}
    if hasattr(row, "active") and kind.name == "accounts":
        extra["active"] = row.active
    return extra


def item_json(kind: Kind, row: Any, refs: Refs) -> dict[str, Any]:
    shape = _shape(kind, row, refs)
    return {**shape, **_extra(kind, row), "version": version_of(shape)}


def _shape(kind: Kind, row: Any, refs: Refs) -> dict[str, Any]:
    """The row as the book writes it, money as strings and dates as ISO text."""
    item = kind.shape.model_validate(kind.view(row, refs))
    return item.model_dump(mode="json", exclude_none=True)


def list_items(db: Database, client_key: str, kind_name: str) -> list[dict[str, Any]]:
    kind = kind_of(kind_name)
    with db.reader() as s:
        client = client_row(s, client_key)
        refs = refs_of(s, client)
        rows = s.scalars(select(kind.model).where(kind.model.client_id == client.id).order_by(kind.model.id))
        return [item_json(kind, row, refs) for row in rows]


def list_all(db: Database, kind_name: str) -> list[dict[str, Any]]:
    """Every client's objects of a kind, each with its client, by client then age (one query for the rows,
    one per client for what converting them needs)."""
    kind = kind_of(kind_name)
    model = kind.model
    with db.reader() as s:
        rows = select(Client, model).join(model, model.client_id == Client.id).order_by(Client.key, model.id)
        found = s.execute(rows)
        refs: dict[int, Refs] = {}
        items = []
        for client, row in found:
            if client.id not in refs:
                refs[client.id] = refs_of(s, client)
            items.append({"client": client.key, **item_json(kind, row, refs[client.id])})
        return items


def get_item(db: Database, client_key: str, kind_name: str, ident: str) -> dict[str, Any]:
    kind = kind_of(kind_name)
    with db.reader() as s:
        client = client_row(s, client_key)
        return item_json(kind, _row(s, kind, client, ident), refs_of(s, client))


# ---------------------------------------------------------------------------------------------- writing


def validated(shape: type[BaseModel], data: Any) -> Any:
    """The object, or every problem with the field it is in."""
    if not isinstance(data, dict):
        raise ValidationFailed(["(body): an object of fields is expected"])
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_pydantic_problems(exc)) from None


def _references(kind: Kind, item: Any, refs: Refs) -> list[str]:
    problems = []
    if getattr(item, "site", None) and item.site not in refs.site_ids:
        problems.append(f"site: no site {item.site!r} in this client")
    if kind.name in ("backup_jobs", "time_entries") and item.device and item.device not in refs.device_ids:
        problems.append(f"device: no device {item.device!r} in this client")
    return problems


def _key_taken(s: Session, kind: Kind, key: str, client: Client) -> str | None:
    model = kind.model
    if kind.name in ("sites", "time_entries", "retainer_deposits"):  # keys unique within a client
        holder = s.scalar(select(model.id).where(model.client_id == client.id, model.key == key))
        return f"key: {key!r} already exists in this client" if holder else None
    holder_key = s.scalar(select(Client.key).join(model, model.client_id == Client.id).where(model.key == key))
    if holder_key is None:
        return None
    if holder_key == client.key:
        return f"key: {key!r} already exists in this client"
    return f"key: {key!r} already belongs to client {holder_key!r}"


def _same_as_another(s: Session, kind: Kind, item: Any, client: Client, row_id: int | None = None) -> str | None:
    """Objects without a key are told apart as the book tells them apart: a contact by its e-mail (or name),
    a mapping rule by its field and pattern; two alike would be one after a round trip through a book."""
    model = kind.model
    if kind.name == "contacts":
        ident = (item.email or item.name).lower()
        rows = s.execute(select(model.id, model.email, model.name).where(model.client_id == client.id))
        if any((r.email or r.name).lower() == ident and r.id != row_id for r in rows):
            return f"{'email' if item.email else 'name'}: this client has a contact {ident!r} already"
    if kind.name == "mapping_rules":
        same = (model.client_id == client.id, model.field == item.field, model.pattern == item.pattern)
        found = s.scalar(select(model.id).where(*same))
        if found is not None and found != row_id:
            return f"pattern: this client has the rule {item.field} = {item.pattern!r} already"
    return None


def _lock(s: Session, kind: Kind, client: Client) -> None:
    """Changes to one client's objects go one at a time, so a version checked is still current when written."""
    hold(s, f"change:{kind.name}", client.id, f"client {client.key!r}")


def _after_money(s: Session, kind: Kind, client: Client) -> None:
    if kind.money:
        s.flush()
        from tenure.book.service import post_prepaid_ledger  # the importer's own posting: one way to do it

        post_prepaid_ledger(s, [client.id])
        if kind.name == "agreements":  # an end set earlier: invoiced work past it is paid again, as it now falls
            reopen_work_outside_its_agreements(s, client.id)
        s.flush()
        with collector_paused():  # a busy client's work would set off full collections (agreements/changes.py)
            allocate_clients(s, [client.id])


def create_item(db: Database, client_key: str, kind_name: str, body: Any) -> dict[str, Any]:
    """A new object from its book shape."""
    kind = kind_of(kind_name)
    if kind.name in ("blocks", "retainer_deposits"):
        return _purchase(db, client_key, kind, body)
    item = validated(kind.shape, body)
    with db.unit_of_work() as s:
        client = client_row(s, client_key)
        _lock(s, kind, client)
        refs = refs_of(s, client)
        problems = _references(kind, item, refs)
        if kind.keyed and (taken := _key_taken(s, kind, item.key, client)):
            problems.append(taken)
        if not kind.keyed and (same := _same_as_another(s, kind, item, client)):
            problems.append(same)
        if problems:
            raise ValidationFailed(problems)
        row = kind.model(**kind.values(item, refs))
        s.add(row)
        _after_money(s, kind, client)
        s.flush()
        return item_json(kind, row, refs)


def _purchase(db: Database, client_key: str, kind: Kind, body: Any) -> dict[str, Any]:
    """A block or a deposit made in Tenure is a purchase: ledger entries and its own prepayment invoice,
    as `tenure block buy` and `tenure retainer deposit` make them."""
    from tenure.billing.service import buy_block, deposit

    item = validated(kind.shape, body)
    if item.key is not None:
        with db.reader() as s:
            if taken := _key_taken(s, kind, item.key, client_row(s, client_key)):
                raise ValidationFailed([taken])
    if kind.name == "blocks":
        if item.bonus_hours is not None:
            raise ValidationFailed(["bonus_hours: a block bought now gets the MSP's bonus table; leave it out"])
        buy_block(db, client_key, item.hours, item.price, item.purchased, item.expires, item.key)
        key = str(item.key)
    else:
        deposit(db, client_key, item.amount, item.date, item.key)
        with db.reader() as s:  # without a key of its own, the deposit is named by its day and number
            newest = select(RetainerDeposit.key).where(RetainerDeposit.client_id == client_row(s, client_key).id)
            key = item.key or str(s.scalar(newest.order_by(RetainerDeposit.id.desc()).limit(1)))
    return get_item(db, client_key, kind.name, key)


def patch_item(
    db: Database,
    client_key: str,
    kind_name: str,
    ident: str,
    body: Any,
    if_match: str | None = None,
    effective: date | None = None,
) -> dict[str, Any]:
    """Change only the fields sent (`null` clears an optional field). `if_match` (or `version` in the body)
    must be the object's current version when given. An agreement already billed changes its money terms
    only from a date (`effective`): it ends the day before and a new agreement carries the new terms, so
    every past invoice stays explained by the agreement it was made from."""
    kind = kind_of(kind_name)
    if not isinstance(body, dict):
        raise ValidationFailed(["(body): an object of fields is expected"])
    body = dict(body)
    if_match = sent_version(body, if_match)
    with db.unit_of_work() as s:
        client = client_row(s, client_key)
        _lock(s, kind, client)
        row = _row(s, kind, client, ident)
        refs = refs_of(s, client)
        current = _shape(kind, row, refs)
        if if_match is not None and if_match != version_of(current):
            raise Stale(
                f"{kind.label} {ident!r} was changed since version {if_match}: "
                "read it again and reapply the change"
            )
        if kind.keyed and "key" in body and body["key"] != current.get("key"):
            raise ValidationFailed(["key: a key cannot be changed (it is how other records and books name it)"])
        item = validated(kind.shape, {k: v for k, v in {**current, **body}.items() if v is not None})
        problems = _references(kind, item, refs)
        if not kind.keyed and (same := _same_as_another(s, kind, item, client, row.id)):
            problems.append(same)
        if problems:
            raise ValidationFailed(problems)
        wanted = _shape_of(kind, item)
        moved = [f for f in MONEY_TERMS if wanted.get(f) != current.get(f)] if kind is AGREEMENTS else []
        if moved and _billed(s, row):
            if effective is None:
                raise Conflict(
                    f"agreement {row.key!r} was billed: {', '.join(moved)} change only from a date, the first "
                    "day of the new terms (`effective`; `--from` on the command line), so past invoices stay "
                    "explained"
                )
            return _split_agreement(s, client, row, item, effective, refs)
        for name, value in kind.values(item, refs).items():
            if getattr(row, name) != value:
                setattr(row, name, value)
        _after_money(s, kind, client)
        s.flush()
        return item_json(kind, row, refs)


def _shape_of(kind: Kind, item: Any) -> dict[str, Any]:
    return dict(item.model_dump(mode="json", exclude_none=True))


def _billed(s: Session, agreement: Agreement) -> bool:
    """Whether any invoice that stands (not void) has a line from this agreement, or another system billed it."""
    if agreement.billed_through is not None:
        return True
    line = (
        select(InvoiceLine.id)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(InvoiceLine.agreement_id == agreement.id, Invoice.status != "void")
    )
    return bool(s.scalar(select(exists(line))))


def _split_agreement(
    s: Session, client: Client, old: Agreement, item: schema.Agreement, effective: date, refs: Refs
) -> dict[str, Any]:
    if effective <= old.start:
        raise ValidationFailed([f"effective: {effective} is not after the agreement's start {old.start}"])
    if old.end is not None and effective > old.end:
        raise ValidationFailed([f"effective: {effective} is after the agreement's end {old.end}"])
    key = f"{old.key}-from-{effective}"
    if taken := _key_taken(s, AGREEMENTS, key, client):
        raise Conflict(f"the new terms' agreement exists already ({taken})")
    # days the former system billed already (its `billed_through`) stay billed under the new terms' agreement too:
    # Tenure bills each day that no earlier invoice billed, once
    carried = old.billed_through if old.billed_through is not None and old.billed_through >= effective else None
    new = item.model_copy(update={"key": key, "start": effective, "billed_through": carried})
    row = Agreement(**AGREEMENTS.values(new, refs))
    s.add(row)
    old.end = effective - timedelta(days=1)
    _after_money(s, AGREEMENTS, client)
    s.flush()
    return item_json(AGREEMENTS, row, refs)


def remove_item(
    db: Database, client_key: str, kind_name: str, ident: str, end: date | None = None
) -> dict[str, Any]:
    """Delete where that is honest, else end, retire or close; says which (`outcome`)."""
    kind = kind_of(kind_name)
    with db.unit_of_work() as s:
        client = client_row(s, client_key)
        _lock(s, kind, client)
        row = _row(s, kind, client, ident)
        refs = refs_of(s, client)
        outcome = _remove(s, kind, row, end or clock.today())
        _after_money(s, kind, client)
        s.flush()
        shown = {} if outcome == "deleted" else item_json(kind, row, refs)
        return {"outcome": outcome, kind.label.replace(" ", "_"): ident, **shown}


def _remove(s: Session, kind: Kind, row: Any, day: date) -> str:
    if kind.name == "agreements":
        if not _billed(s, row):
            s.delete(row)
            return "deleted"
        if day < row.start:  # its last day before its first: a mistake to say, not one to mend silently
            raise ValidationFailed(
                [f"end: {day} is before the agreement's start ({row.start}); its last day is {row.start} or later"]
            )
        if row.end is None or row.end > day:
            row.end = day
        return "ended"
    if kind.name == "devices":
        row.active = False
        return "retired"
    if kind.name == "backup_jobs":
        row.status = "retired"
        return "retired"
    if kind.name == "accounts":
        row.active = False
        return "closed"
    if kind.name in ("blocks", "retainer_deposits"):
        raise Conflict(
            f"a {kind.label} is a purchase and is never deleted: void its prepayment invoice, "
            "or settle it at offboarding"
        )
    if kind.name == "time_entries":
        raise Conflict("a time entry is voided with a reason, never deleted: `tenure time void ID --reason …`")
    if kind.name == "sites" and s.scalar(select(func.count()).select_from(Device).where(Device.site_id == row.id)):
        raise Conflict(f"site {row.key!r} has devices: move them to another site first")
    s.delete(row)
    return "deleted"


# ------------------------------------------------------------------------------------------- jobs' states

JOB_ACTIONS = {"activate": "active", "pause": "paused", "retire": "retired"}


def set_job_status(db: Database, job_key: str, action: str) -> dict[str, Any]:
    """Answer a backup job: `activate` (a pending job Tenure now watches), `pause`, `retire`."""
    if action not in JOB_ACTIONS:
        raise ValidationFailed([f"action: {action!r} is not one of {', '.join(JOB_ACTIONS)}"])
    with db.unit_of_work() as s:
        job = s.scalars(select(BackupJob).where(BackupJob.key == job_key)).first()
        if job is None or job.client_id is None:
            raise NotFound(f"no backup job {job_key!r}")
        client = s.get(Client, job.client_id)
        assert client is not None
        job.status = JOB_ACTIONS[action]
        if action == "activate" and job.activated_at is None:
            job.activated_at = clock.now()
        s.flush()
        return {"client": client.key, **item_json(KINDS["backup_jobs"], job, refs_of(s, client))}


# --------------------------------------------------------------------------------------------- clients

CLIENT_FIELDS = ("key", "name", "domains", "billable_alerts", "forward_alerts", "low_balance_hours", "notes")


def has_history(s: Session, client_id: int) -> bool:
    """Anything a bookkeeper or the service desk would need to see again."""
    from tenure.intake.models import Alert
    from tenure.offboarding.models import OffboardingRun
    from tenure.triage.models import Ticket

    for model in (Agreement, Block, RetainerDeposit, TimeEntry, Invoice, Alert, Ticket, OffboardingRun):
        if s.scalar(select(exists(select(model.id).where(model.client_id == client_id)))):
            return True
    return False
