"""Time entries changed in place: edited (any field, even the client it was logged on) or voided, with a reason.

DOMAIN.md, "Billing": a correction to work is never an edit of an invoice. What happens to the money:

- **a month not invoiced yet**: the entry is simply allocated again with the client's other work; the ledger
  gets `adjustment` entries for what moved (`agreements.service.sync_ledger` posts differences, never edits);
- **a month already invoiced**: the invoice stays as it is. The entry's `revision` moves on (every change of
  client, date, minutes, work type or void bumps it, `agreements.models`), so the revision its invoice froze
  no longer matches: `load_worlds` hands the portions that invoice counted to `World.billed` and allocates the
  entry afresh. Prepaid time it used is given back (or taken) through the ledger at once; the next monthly
  invoice of the client carries the difference of billable money as `adjustment` lines (billing.rules), and
  freezes the revision it settled, so nothing is credited or billed twice.

A voided entry stays in the database (`voided_at`, `void_reason`) and counts for nothing: no allocation,
report or class reads it. Only the client it belongs to (and the one it moves to) is allocated again.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements import rules
from tenure.agreements.frozen import frozen_keys
from tenure.agreements.models import FrozenAllocation, TimeEntry
from tenure.agreements.service import (
    allocate_clients,
    client_id_of,
    load_worlds,
    msp_settings,
    paid_now,
    policy_of,
    portion_json,
)
from tenure.billing.models import Invoice
from tenure.book import schema
from tenure.book.objects import sent_version, version_of
from tenure.bulk import collector_paused
from tenure.clients.models import Client, Device
from tenure.db.engine import Database
from tenure.db.locks import hold
from tenure.db.uow import as_actor
from tenure.errors import Conflict, NotFound, Stale, ValidationFailed
from tenure.msp.models import MspSettings

EDITABLE = ("date", "minutes", "work_type", "technician", "note", "device", "client")
REASON_MAX = 500


def _entry(s: Session, entry_id: int) -> TimeEntry:
    entry = s.get(TimeEntry, entry_id)
    if entry is None:
        raise NotFound(f"no time entry {entry_id} (see the client's time entries)")
    return entry


def _clients_of(db: Database, entry_id: int, changes: Any = None) -> set[int]:
    """The clients a change of the entry touches (its own, and the one it moves to), read before the change's
    transaction: its locks must be its first statements (tenure.db.locks)."""
    with db.reader() as s:
        found = {_entry(s, entry_id).client_id}
        if isinstance(changes, dict) and isinstance(changes.get("client"), str):
            target = s.scalar(select(Client.id).where(Client.key == changes["client"]))
            if target is not None:
                found.add(target)
    return found


def _locked_entry(s: Session, entry_id: int, client_ids: set[int]) -> TimeEntry:
    """One change at a time per client (the same lock the book's in-place changes take), lowest id first; then
    the entry as the last change left it (moved meanwhile to a client not locked: try again)."""
    for cid in sorted(client_ids):
        hold(s, "change:time_entries", cid, f"the time entries of client {cid}")
    entry = _entry(s, entry_id)
    if entry.client_id not in client_ids:
        raise Conflict(f"time entry {entry_id} was moved to another client meanwhile: read it again and retry")
    return entry


def _reason(reason: str | None, required: bool) -> str | None:
    text = (reason or "").strip()
    if not text:
        if required:
            raise ValidationFailed(["reason: say why the entry is voided"])
        return None
    if len(text) > REASON_MAX or any(ord(c) < 32 for c in text):
        raise ValidationFailed([f"reason: one line of at most {REASON_MAX} characters"])
    return text


def time_entry_json(s: Session, entry: TimeEntry, portions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A time entry as people and scripts see it: the book's fields, its id and state, and how it is paid."""
    client_key = s.scalar(select(Client.key).where(Client.id == entry.client_id))
    device_key = s.scalar(select(Device.key).where(Device.id == entry.device_id)) if entry.device_id else None
    rounding = msp_settings(s).time_rounding_minutes
    document = {
        "id": entry.id,
        "key": entry.key,
        "client": client_key,
        "date": entry.date.isoformat(),
        "minutes": entry.minutes,
        "rounded_minutes": 0 if entry.voided_at else rules.round_up(entry.minutes, rounding),
        "work_type": entry.work_type,
        "technician": entry.technician,
        "note": entry.note,
        "device": device_key,
        "ticket": entry.ticket_id,
        "on_hold": entry.on_hold,
        "voided": entry.voided_at is not None,
        "voided_at": entry.voided_at.isoformat() if entry.voided_at else None,
        "void_reason": entry.void_reason,
        "edit_reason": entry.edit_reason,
        "revision": entry.revision,
        "paid_by": portions or [],
    }
    # the entry's own fields, not who pays it (that moves with other work): a change is made on what was read
    document["version"] = version_of({k: v for k, v in document.items() if k != "paid_by"})
    return document


def _allocate(s: Session, entry: TimeEntry, client_ids: set[int], through: date) -> list[dict[str, Any]]:
    """Allocate these clients again (ledger differences posted) and say how the entry is paid now. The cyclic
    collector is paused meanwhile: a busy client's work and portions (tens of thousands of namedtuples) would
    otherwise set off a full collection of the whole process, half the time of a void."""
    with collector_paused():
        _, allocations = allocate_clients(s, sorted(client_ids), through)
    if entry.voided_at is not None:
        return []
    return [portion_json(p) for p in allocations[entry.client_id].portions_for(entry.key)]


def get_time_entry(db: Database, entry_id: int) -> dict[str, Any]:
    """One time entry (`time_entry_json`), voided or not, with how it is paid now."""
    with db.reader() as s:
        entry = _entry(s, entry_id)
        return time_entry_json(s, entry, paid_now(s, [entry])[entry.id])


def _validated(s: Session, entry: TimeEntry, changes: dict[str, Any]) -> tuple[schema.TimeEntry, Client]:
    """The entry as it would be after `changes`, validated as the book validates a time entry; and its client."""
    if not isinstance(changes, dict):
        raise ValidationFailed(["(body): an object of fields is expected"])
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(
            [f"{name}: cannot be changed here (one of {', '.join(EDITABLE)} can)" for name in unknown]
        )
    client = s.get(Client, entry.client_id)
    assert client is not None
    if "client" in changes:
        wanted = changes["client"]
        moved = s.scalars(select(Client).where(Client.key == wanted)).first() if isinstance(wanted, str) else None
        if moved is None:
            raise ValidationFailed([f"client: no client {wanted!r}"])
        client = moved
    device_key = s.scalar(select(Device.key).where(Device.id == entry.device_id)) if entry.device_id else None
    if "client" in changes and client.id != entry.client_id and "device" not in changes:
        device_key = None  # a device belongs to the client the entry leaves
    current = {
        "key": entry.key,
        "date": entry.date,
        "minutes": entry.minutes,
        "work_type": entry.work_type,
        "technician": entry.technician,
        "note": entry.note,
        "device": device_key,
    }
    merged = current | {k: v for k, v in changes.items() if k != "client"}
    try:
        item = schema.TimeEntry.model_validate({k: v for k, v in merged.items() if v is not None})
    except ValidationError as exc:
        from tenure.book.validate import _pydantic_problems

        raise ValidationFailed(_pydantic_problems(exc)) from None
    if item.device is not None:
        found = s.scalar(select(Device.id).where(Device.client_id == client.id, Device.key == item.device))
        if found is None:
            raise ValidationFailed([f"device: no device {item.device!r} in client {client.key!r}"])
    return item, client


def _free_key(s: Session, client_id: int, key: str) -> str:
    """`key` when the client has no entry of that key and no invoice of it froze one; else `key-2`, `key-3`…"""
    taken = set(s.scalars(select(TimeEntry.key).where(TimeEntry.client_id == client_id, TimeEntry.key.like(f"{key}%"))))
    for portions, revisions in s.execute(
        select(FrozenAllocation.portions, FrozenAllocation.revisions).where(FrozenAllocation.client_id == client_id)
    ):
        taken |= {k for k in [*frozen_keys(portions), *(revisions or {})] if k.startswith(key)}
    candidate, n = key, 1
    while candidate in taken:
        n += 1
        candidate = f"{key}-{n}"
    return candidate


def edit_time_entry(
    db: Database,
    entry_id: int,
    changes: dict[str, Any],
    actor: str | None = None,
    reason: str | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Change a time entry in place: any of `date`, `minutes`, `work_type`, `technician`, `note`, `device`
    (a device key of the entry's client, or None) and `client` (a client key: work logged on the wrong client
    moves, keeping its key unless the new client has one like it (then `key-2`…); its ticket link goes, and
    its device unless one of the new client's is given). Validated as the book validates a time entry; a
    refusal (`ValidationFailed`, each problem with its field) changes nothing. A voided entry cannot be
    edited (`Conflict`); an unknown id is `NotFound`.

    Both clients concerned are allocated again at once (prepaid balances move through `adjustment` ledger
    entries); work already invoiced is corrected on the next monthly invoice (module docstring). `actor` is
    who made the change in the change log (default: the caller's), `reason` is kept on the entry
    (`edit_reason`) and so in the change log. Returns the entry as `time_entry_json` shows it, with how it
    is paid now.
    """
    why = _reason(reason, required=False)
    if isinstance(changes, dict):  # the version it was read at (`version`, or `If-Match`): not a field to change
        changes = dict(changes)
        if_match = sent_version(changes, if_match)
    targets = _clients_of(db, entry_id, changes)
    with as_actor(actor) if actor else nullcontext(), db.unit_of_work() as s:
        entry = _locked_entry(s, entry_id, targets)
        if entry.voided_at is not None:
            raise Conflict(f"time entry {entry.id} ({entry.key}) was voided: log the work again instead")
        if if_match is not None and if_match != time_entry_json(s, entry)["version"]:
            raise Stale(f"time entry {entry.id} was changed since version {if_match}: read it again and reapply")
        item, client = _validated(s, entry, changes)
        before = (entry.client_id, entry.date)
        device_id = None
        if item.device is not None:
            device_id = s.scalar(select(Device.id).where(Device.client_id == client.id, Device.key == item.device))
        values: dict[str, Any] = {
            "date": item.date,
            "minutes": item.minutes,
            "work_type": item.work_type,
            "technician": item.technician,
            "note": item.note,
            "device_id": device_id,
        }
        if client.id != entry.client_id:
            values["client_id"] = client.id
            values["key"] = _free_key(s, client.id, entry.key)
            values["ticket_id"] = None  # the ticket is the other client's
        changed = {name: value for name, value in values.items() if getattr(entry, name) != value}
        if changed:
            for name, value in changed.items():
                setattr(entry, name, value)
            entry.edit_reason = why
            s.flush()
        through = max(clock.today(), before[1], entry.date)
        return time_entry_json(s, entry, _allocate(s, entry, {before[0], entry.client_id}, through))


def void_time_entry(db: Database, entry_id: int, reason: str, actor: str | None = None) -> dict[str, Any]:
    """Void a time entry, saying why: it stays on record (`voided_at`, `void_reason`) and counts for nothing.

    The client's work is allocated again at once (prepaid time it used comes back as `adjustment` ledger
    entries); if an invoice billed it, the next monthly invoice credits it (`adjustment` lines). Voiding a
    voided entry changes nothing and returns it as it is. `reason` is required (`ValidationFailed`)."""
    why = _reason(reason, required=True)
    targets = _clients_of(db, entry_id)
    with as_actor(actor) if actor else nullcontext(), db.unit_of_work() as s:
        entry = _locked_entry(s, entry_id, targets)
        if entry.voided_at is not None:
            return time_entry_json(s, entry)
        entry.voided_at = clock.now()
        entry.void_reason = why
        s.flush()
        _allocate(s, entry, {entry.client_id}, max(clock.today(), entry.date))
        return time_entry_json(s, entry)


# -------------------------------------------------------------------------------- how work is paid now


def _billed_by(s: Session, cid: int) -> dict[str, str]:
    """Work key -> the number of the last invoice whose frozen allocation counted it (voided invoices release
    theirs)."""
    f = FrozenAllocation
    rows = s.execute(
        select(f.portions, Invoice.number)
        .join(Invoice, Invoice.id == f.invoice_id)
        .where(f.client_id == cid)
        .order_by(f.id)
    )
    found: dict[str, str] = {}
    for portions, number in rows:
        for work_key in frozen_keys(portions):
            found[str(work_key)] = number
    return found


def time_paid(db: Database, client: str) -> dict[str, dict[str, Any]]:
    """How each time entry of a client is paid now, by entry key, as the ledger and the next invoice see it
    (allocated afresh, nothing written): `portions` (`portion_json`), `invoice` (the invoice that billed it as
    it stands) and `adjusted` (the invoice that billed it before it was corrected or voided: the next monthly
    invoice carries the difference as an `adjustment` line). A voided entry has no portions."""
    with db.reader() as s:
        cid = client_id_of(s, client)
        settings = s.scalars(select(MspSettings).limit(1)).first()
        if settings is None:
            return {}
        world = load_worlds(s, [cid])[cid]
        billed_by = _billed_by(s, cid) if world.frozen or world.billed else {}
    through = max([clock.today(), *(w.date for w in world.works)])
    by_work = world.allocate(policy_of(settings), through).portions_by_work()
    found: dict[str, dict[str, Any]] = {}
    for key in world.work_ids.keys() | world.billed.keys():
        found[key] = {
            "portions": [portion_json(p) for p in by_work.get(key, ())],
            "invoice": billed_by.get(key) if key in world.frozen else None,
            "adjusted": billed_by.get(key) if key in world.billed else None,
        }
    return found


def entry_billed_by(db: Database, entry_id: int) -> str | None:
    """The invoice that billed a time entry (its month was invoiced), or None: a correction of it is carried
    by the next monthly invoice as an `adjustment` line."""
    with db.reader() as s:
        entry = s.get(TimeEntry, entry_id)
        if entry is None:
            return None
        return _billed_by(s, entry.client_id).get(entry.key)
