"""The money facts of clients, allocated through the coverage layers and posted to the prepaid ledger.

`allocate_clients` loads everything the rules need for many clients in a few bulk queries, runs
`agreements.rules.allocate` per client, and posts to the ledger only what differs from what is already
there (a back-dated entry re-allocates its month: the difference is an `adjustment`, never an edit).
Low-balance notices are recorded here, one per threshold crossing and one at zero.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements import rules
from tenure.agreements.frozen import decode_portions
from tenure.agreements.models import Agreement, Block, FrozenAllocation, LedgerEntry, RetainerDeposit, TimeEntry
from tenure.bulk import chunks as _chunks
from tenure.clients.models import Client, Contact
from tenure.db.bulkwrite import insert_rows
from tenure.db.engine import Database
from tenure.db.locks import hold_inputs
from tenure.db.uow import current_actor
from tenure.errors import NotFound, TenureError
from tenure.money import ZERO, fmt
from tenure.msp.models import MspSettings
from tenure.notices.models import Notice
from tenure.text import one_line
from tenure.vocabulary import SERVICES

CHUNK = 900


# ------------------------------------------------------------------------------------------- the world


@dataclass
class World:
    """Everything the coverage rules need for one client, with the database ids behind each key."""

    client_id: int
    key: str
    name: str
    low_balance_minutes: int | None = None
    terms: list[rules.Terms] = field(default_factory=list)
    blocks: list[rules.PrepaidBlock] = field(default_factory=list)
    deposits: list[rules.Deposit] = field(default_factory=list)
    works: list[rules.Work] = field(default_factory=list)
    frozen: dict[str, tuple[rules.Portion, ...]] = field(default_factory=dict)
    frozen_monitoring: dict[tuple[str, str], rules.MonitoringMonth] = field(default_factory=dict)
    # corrected since an invoice billed them (edited, voided, moved to another client): what that invoice
    # counted, for the next one to credit (billing: `adjustment` lines); the entry itself is allocated afresh
    billed: dict[str, tuple[rules.Portion, ...]] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)  # live entries whose revision is not 0
    agreement_ids: dict[str, int] = field(default_factory=dict)
    block_ids: dict[str, int] = field(default_factory=dict)
    work_ids: dict[str, int] = field(default_factory=dict)

    def allocate(self, policy: rules.Policy, through: date) -> rules.Allocation:
        return rules.allocate(
            self.works,
            self.terms,
            self.blocks,
            self.deposits,
            policy,
            through=through,
            frozen=self.frozen,
            frozen_monitoring=self.frozen_monitoring,
        )

    def retainer_terms(self, day: date) -> rules.Terms | None:
        return next((t for t in self.terms if t.kind == "retainer" and t.active_on(day)), None)


def policy_of(msp: MspSettings) -> rules.Policy:
    tiers = tuple((Decimal(str(t["min_hours"])), Decimal(str(t["bonus_hours"]))) for t in msp.block_bonus)
    return rules.Policy(rounding_minutes=msp.time_rounding_minutes, hourly_rate=msp.hourly_rate, block_bonus=tiers)


def msp_settings(session: Session) -> MspSettings:
    msp = session.scalars(select(MspSettings).limit(1)).first()
    if msp is None:
        raise TenureError("the MSP is not set up yet: import a book (`tenure book import FILE`) or run `tenure demo`")
    return msp


def encode_month(m: rules.MonitoringMonth) -> list[Any]:
    return [m.agreement_key, m.month, m.date.isoformat(), m.paid_from_block, [list(d) for d in m.draws]]


def decode_month(row: list[Any]) -> rules.MonitoringMonth:
    agreement, month, day, paid, draws = row
    return rules.MonitoringMonth(agreement, month, date.fromisoformat(day), paid, tuple((b, m) for b, m in draws))


def load_worlds(
    session: Session,
    client_ids: list[int] | None = None,
    *,
    works_in: tuple[date, date] | None = None,
    with_frozen: bool = True,
) -> dict[int, World]:
    """The worlds of these clients (all when None) in one query per table (chunked), never one per row.

    `works_in` (first day, day after the last) loads only the time entries of that window, and
    `with_frozen=False` skips what invoices froze: for replays that need neither (the unpaid report's fit).

    Voided time entries count for nothing and are not loaded. What invoices froze is read row by row, the
    latest row of an entry winning; an entry whose revision differs from the one frozen, or that is no
    longer the client's live entry (voided, moved), was corrected after it was billed: its frozen portions
    go to `billed` (to be credited) and the entry, when live, is allocated afresh (`_corrections`).
    """
    query = select(Client.id, Client.key, Client.name, Client.low_balance_minutes)
    rows = []
    if client_ids is None:
        rows = list(session.execute(query))
    else:
        for chunk in _chunks(client_ids):
            rows += list(session.execute(query.where(Client.id.in_(chunk))))
    worlds = {cid: World(cid, key, name, low) for cid, key, name, low in rows}
    ids = list(worlds)

    def each(statement: Any, column: Any) -> Iterable[Any]:
        if client_ids is None:
            yield from session.execute(statement)
            return
        for chunk in _chunks(ids):
            yield from session.execute(statement.where(column.in_(chunk)))

    a = Agreement
    for row in each(
        select(
            a.client_id,
            a.id,
            a.key,
            a.kind,
            a.start,
            a.end,
            a.monthly_fee,
            a.included_minutes,
            a.overage_rate,
            a.hourly_rate,
            a.block_minutes_per_month,
            a.covers,
            a.excludes,
            a.billed_through,
            a.term_months,
            a.renewal,
            a.billing_interval_months,
        ).order_by(a.start, a.key),
        a.client_id,
    ):
        w = worlds[row.client_id]
        w.terms.append(
            rules.Terms(
                row.key,
                row.kind,
                row.start,
                rules.ends_by_term(row.start, row.end, row.term_months, row.renewal),
                row.monthly_fee,
                row.included_minutes,
                row.overage_rate,
                row.hourly_rate,
                row.block_minutes_per_month,
                frozenset(row.covers),
                frozenset(row.excludes),
                row.billed_through,
                row.term_months,
                row.renewal or "auto",
                row.billing_interval_months or 1,
            )
        )
        w.agreement_ids[row.key] = row.id
    b = Block
    for row in each(
        select(b.client_id, b.id, b.key, b.purchased, b.minutes, b.bonus_minutes, b.price, b.expires).order_by(
            b.purchased, b.key
        ),
        b.client_id,
    ):
        w = worlds[row.client_id]
        w.blocks.append(
            rules.PrepaidBlock(row.key, row.purchased, row.minutes, row.bonus_minutes, row.price, row.expires)
        )
        w.block_ids[row.key] = row.id
    d = RetainerDeposit
    for row in each(select(d.client_id, d.key, d.date, d.amount), d.client_id):
        worlds[row.client_id].deposits.append(rules.Deposit(row.key, row.date, row.amount))
    # the hot path (a million entries in a billing run): the driver's own cursor, dates parsed once in C
    driver = session.connection().connection.driver_connection
    sql = "SELECT client_id, id, key, date, minutes, work_type, revision FROM time_entry WHERE voided_at IS NULL"
    if works_in is not None:  # ISO dates made here, not user text: safe as literals, and no paramstyle to pick
        sql += f" AND date >= '{works_in[0].isoformat()}' AND date < '{works_in[1].isoformat()}'"
    batches = (
        [sql]
        if client_ids is None
        else [f"{sql} AND client_id IN ({','.join(str(int(i)) for i in chunk)})" for chunk in _chunks(ids)]
    )
    days: dict[Any, date] = {}  # a million entries fall on a few hundred days: each parsed once
    work, made = rules.Work, tuple.__new__  # a Work made in C: `Work(...)` runs Python for each of a million
    for statement in batches:
        for cid, entry_id, key, day, minutes, work_type, revision in driver.execute(statement).fetchall():  # type: ignore[union-attr]
            parsed = days.get(day)
            if parsed is None:
                parsed = days[day] = day if isinstance(day, date) else date.fromisoformat(day)
            w = worlds[cid]
            w.works.append(made(work, (key, parsed, minutes, work_type)))
            w.work_ids[key] = entry_id
            if revision:
                w.revisions[key] = revision
    f = FrozenAllocation
    frozen_rows = (
        each(select(f.client_id, f.portions, f.monitoring, f.revisions).order_by(f.id), f.client_id)
        if with_frozen
        else []
    )
    settled: dict[int, dict[str, int]] = defaultdict(dict)  # per client: work key -> revision frozen, when not 0
    for row in frozen_rows:
        w = worlds[row.client_id]
        grouped: dict[str, list[rules.Portion]] = defaultdict(list)
        for portion in decode_portions(row.portions):
            grouped[portion.work_key].append(portion)
        w.frozen.update({k: tuple(v) for k, v in grouped.items()})
        revisions = settled[row.client_id]
        if revisions:  # a later row froze these at revision 0
            for key in grouped.keys() & revisions.keys():
                if key not in (row.revisions or {}):
                    del revisions[key]
        for key, revision in (row.revisions or {}).items():
            revisions[key] = revision
            if key not in grouped:  # credited by this row, not billed again (yet): nothing of it is frozen
                w.frozen.pop(key, None)
        for encoded in row.monitoring:
            month = decode_month(encoded)
            w.frozen_monitoring[(month.agreement_key, month.month)] = month
    if with_frozen:
        for cid, w in worlds.items():
            _corrections(w, settled.get(cid, {}), whole=works_in is None)
    return worlds


def _corrections(world: World, settled: dict[str, int], whole: bool) -> None:
    """Move the frozen portions of entries corrected since they were billed to `world.billed`.

    Corrected: frozen at a revision other than the entry's own (edited since), or no longer a live entry of
    this client (voided, moved to another client); `whole` is False when only some entries were loaded, and
    then an entry not loaded is not taken for gone."""
    stale = set(world.frozen.keys() - world.work_ids.keys()) if whole else set()
    for key in (settled.keys() | world.revisions.keys()) & world.frozen.keys():
        if settled.get(key, 0) != world.revisions.get(key, 0) and key in world.work_ids:
            stale.add(key)
    for key in stale:
        world.billed[key] = world.frozen.pop(key)


# ---------------------------------------------------------------------------------------- the ledger

LedgerKey = tuple[str, str, int, int | None, date]  # account, cause type, cause id, block id, date


def _desired(world: World, allocation: rules.Allocation) -> dict[LedgerKey, tuple[str, int, Decimal]]:
    """What the ledger should hold for work, monitoring months and expiries: key -> (kind, minutes, amount)."""
    wanted: dict[LedgerKey, tuple[str, int, Decimal]] = {}

    def add(key: LedgerKey, kind: str, minutes: int, amount: Decimal) -> None:
        _, m, a = wanted.get(key, (kind, 0, ZERO))
        wanted[key] = (kind, m + minutes, a + amount)

    for move in allocation.block_moves:
        block_id = world.block_ids.get(move.block_key)
        if move.kind == "deduction" and move.ref in world.work_ids:
            add(("block", "time_entry", world.work_ids[move.ref], block_id, move.date), "deduction", move.minutes, ZERO)
        elif move.kind == "monitoring":
            agreement = move.ref.split("/")[0]
            if agreement in world.agreement_ids:
                add(
                    ("block", "monitoring", world.agreement_ids[agreement], block_id, move.date),
                    "monitoring",
                    move.minutes,
                    ZERO,
                )
        elif move.kind == "expiry" and block_id is not None:
            add(("block", "expiry", block_id, block_id, move.date), "expiry", move.minutes, ZERO)
    for rmove in allocation.retainer_moves:
        if rmove.kind == "deduction" and rmove.ref in world.work_ids:
            add(("retainer", "time_entry", world.work_ids[rmove.ref], None, rmove.date), "deduction", 0, rmove.amount)
    return wanted


def sync_ledger(session: Session, worlds: dict[int, World], allocations: dict[int, rules.Allocation]) -> int:
    """Post the differences between the allocations and the ledger; returns the number of entries posted."""
    entries = ledger_differences(session, worlds, allocations)
    post_ledger(session, entries)
    return len(entries)


def post_ledger(session: Session, entries: list[dict[str, Any]]) -> None:
    """Insert ledger entries (`ledger_differences`) in one statement."""
    if entries:
        session.flush()  # a block or deposit this transaction added is in the database before its entries
        insert_rows(session.connection(), LedgerEntry.__table__, entries)


def ledger_differences(
    session: Session, worlds: dict[int, World], allocations: dict[int, rules.Allocation]
) -> list[dict[str, Any]]:
    """The ledger entries that would bring the ledger to what the allocations say (read only)."""
    posted: dict[int, dict[LedgerKey, tuple[int, Decimal]]] = defaultdict(dict)
    le = LedgerEntry
    query = (
        select(
            le.client_id,
            le.account,
            le.cause_type,
            le.cause_id,
            le.block_id,
            le.date,
            func.sum(le.minutes),
            func.sum(le.amount),
        )
        .where(le.cause_type.in_(("time_entry", "monitoring", "expiry")))
        .group_by(le.client_id, le.account, le.cause_type, le.cause_id, le.block_id, le.date)
    )
    for chunk in _chunks(list(worlds)):
        for cid, account, cause, cause_id, block_id, day, minutes, amount in session.execute(
            query.where(le.client_id.in_(chunk))
        ):
            posted[cid][(account, cause, cause_id, block_id, day)] = (int(minutes or 0), amount or ZERO)
    now, actor = clock.now(), current_actor()
    entries: list[dict[str, Any]] = []
    for cid, world in worlds.items():
        wanted = _desired(world, allocations[cid])
        have = posted.get(cid, {})
        for key in wanted.keys() | have.keys():
            kind, minutes, amount = wanted.get(key, ("adjustment", 0, ZERO))
            had_minutes, had_amount = have.get(key, (0, ZERO))
            if minutes == had_minutes and amount == had_amount:
                continue
            account, cause, cause_id, block_id, day = key
            entries.append(
                {
                    "client_id": cid,
                    "account": account,
                    "block_id": block_id,
                    "kind": kind if key not in have else "adjustment",
                    "date": day,
                    "minutes": minutes - had_minutes,
                    "amount": amount - had_amount,
                    "cause_type": cause,
                    "cause_id": cause_id,
                    "note": "re-allocated" if key in have else None,
                    "recorded_at": now,
                    "actor": actor,
                }
            )
    return entries


# ------------------------------------------------------------------------------------------- notices


def _billing_contacts(session: Session, client_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(client_ids):
        for cid, email, roles in session.execute(
            select(Contact.client_id, Contact.email, Contact.roles).where(Contact.client_id.in_(chunk))
        ):
            if email and "billing" in roles:
                found[cid].append(email)
    return found


def record_balance_notices(
    session: Session, msp: MspSettings, worlds: dict[int, World], allocations: dict[int, rules.Allocation]
) -> int:
    """One notice per fall to or below the low-balance threshold and one at zero, for blocks; one when a
    retainer reaches zero. Keyed by the crossing's ordinal, so re-running records nothing twice."""
    rows = balance_notices(session, msp, worlds, allocations)
    post_notices(session, rows)
    return len(rows)


def post_notices(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(Notice), rows)


def balance_notices(
    session: Session, msp: MspSettings, worlds: dict[int, World], allocations: dict[int, rules.Allocation]
) -> list[dict[str, Any]]:
    """The notices `record_balance_notices` would record (read only)."""
    candidates = [cid for cid, w in worlds.items() if w.blocks or w.deposits]
    if not candidates:
        return []
    contacts = _billing_contacts(session, candidates)
    prefixes = [f"balance:{worlds[cid].key}:" for cid in candidates]
    existing = set()
    for start in range(0, len(prefixes), CHUNK):
        existing |= set(
            session.scalars(
                select(Notice.dedupe_key).where(
                    Notice.client_id.in_(candidates[start : start + CHUNK]),
                    Notice.kind.in_(("low_balance", "balance_zero", "retainer_zero")),
                )
            )
        )
    rows: list[dict[str, Any]] = []
    now = clock.now()
    for cid in candidates:
        world, allocation = worlds[cid], allocations[cid]
        threshold = world.low_balance_minutes if world.low_balance_minutes is not None else msp.low_balance_minutes
        seen: dict[str, int] = defaultdict(int)
        if world.blocks:
            for day, kind in rules.threshold_crossings(allocation.balance_series(), threshold):
                seen[kind] += 1
                key = f"balance:{world.key}:{kind}:{seen[kind]}"
                if key not in existing:
                    rows.append(_balance_notice(world, allocation, day, kind, key, contacts[cid], threshold, now))
        if world.deposits:
            balance, zeroes = ZERO, 0
            for move in sorted(allocation.retainer_moves, key=lambda m: m.date):
                before, balance = balance, balance + move.amount
                if before > 0 and balance <= 0:
                    zeroes += 1
                    key = f"balance:{world.key}:retainer:{zeroes}"
                    if key not in existing:
                        rows.append(_retainer_notice(world, move.date, key, contacts[cid], now))
    return rows


def _hours(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _balance_notice(
    world: World, allocation: rules.Allocation, day: date, kind: str, key: str, to: list[str], threshold: int, now: Any
) -> dict[str, Any]:
    balance = allocation.blocks_balance_on(day)
    burn = rules.burn_rate(allocation.block_usage(), day)
    run_out = rules.forecast_run_out(balance, burn, day)
    hours_per_week = (burn * 7 / 60).quantize(Decimal("0.1"))
    if kind == "zero":
        subject = f"{world.name}: your prepaid hours are used up"
        body = (
            f"On {day} the prepaid block balance of {world.name} reached zero. New work is billed by the "
            f"hour until a new block is bought."
        )
    else:
        subject = f"{world.name}: prepaid hours are running low ({_hours(balance)} left)"
        body = (
            f"On {day} the prepaid block balance of {world.name} fell to {_hours(balance)} hours, at or "
            f"below the {_hours(threshold)} threshold."
        )
    body += f" Over the last 90 days the block burned {hours_per_week} hours a week"
    body += f"; at that rate it runs out on {run_out}." if run_out and kind != "zero" else "."
    return {
        "client_id": world.client_id,
        "kind": "low_balance" if kind == "low" else "balance_zero",
        "dedupe_key": key,
        "to": to,
        "cc": [],
        "subject": subject,
        "body_text": body,
        "body_html": None,
        "data": {
            "date": day.isoformat(),
            "balance_minutes": balance,
            "burn_minutes_per_day": str(burn),
            "run_out": run_out.isoformat() if run_out else None,
            "audience": ["staff", "client"],
        },
        "state": "waiting",
        "attempts": 0,
        "created_at": now,
    }


def _retainer_notice(world: World, day: date, key: str, to: list[str], now: Any) -> dict[str, Any]:
    return {
        "client_id": world.client_id,
        "kind": "retainer_zero",
        "dedupe_key": key,
        "to": to,
        "cc": [],
        "subject": f"{world.name}: retainer used up, new work on hold",
        "body_text": (
            f"On {day} the retainer of {world.name} reached zero. New work is on hold until the "
            f"retainer is replenished."
        ),
        "body_html": None,
        "data": {"date": day.isoformat(), "audience": ["staff", "client"]},
        "state": "waiting",
        "attempts": 0,
        "created_at": now,
    }


# ------------------------------------------------------------------------------------------ use cases


def reopen_work_outside_its_agreements(session: Session, client_id: int) -> int:
    """Invoiced work an agreement paid or priced (its included hours, its rate) on a day the agreement no longer
    covers (its end set earlier, after the invoice) is paid again as the layers now say: each such entry's revision
    moves on, so the next invoice carries the difference as an `adjustment` line, as for an edited entry.
    How many entries that was."""
    spans = {
        key: (start, end)
        for key, start, end in session.execute(
            select(Agreement.key, Agreement.start, Agreement.end).where(Agreement.client_id == client_id)
        )
    }
    stale: set[str] = set()
    for (stored,) in session.execute(select(FrozenAllocation.portions).where(FrozenAllocation.client_id == client_id)):
        for portion in decode_portions(stored):
            if portion.agreement_key is None:  # a block, or the MSP's own rate: no agreement's dates to leave
                continue
            span = spans.get(portion.agreement_key)
            if span is None or portion.date < span[0] or (span[1] is not None and portion.date > span[1]):
                stale.add(portion.work_key)
    if not stale:
        return 0
    table = TimeEntry.__table__
    for keys in _chunks(sorted(stale)):
        session.execute(
            table.update()
            .where(table.c.client_id == client_id, table.c.key.in_(keys), table.c.voided_at.is_(None))
            .values(revision=table.c.revision + 1)
        )
    return len(stale)


def paid_now(session: Session, entries: list[TimeEntry]) -> dict[int, list[dict[str, Any]]]:
    """How each entry (by id) is paid now, worked out as allocation would as of today (or the latest entry's
    day), without posting anything: for a read. A voided entry is paid by nothing."""
    live = [e for e in entries if e.voided_at is None]
    if not live:
        return {e.id: [] for e in entries}
    policy = policy_of(msp_settings(session))
    through = max(clock.today(), max(e.date for e in live))
    worlds = load_worlds(session, sorted({e.client_id for e in live}))
    paid = {cid: w.allocate(policy, through) for cid, w in worlds.items()}
    return {
        e.id: [portion_json(p) for p in paid[e.client_id].portions_for(e.key)]
        if e.voided_at is None and e.client_id in paid
        else []
        for e in entries
    }


def allocate_clients(
    session: Session,
    client_ids: list[int] | None,
    through: date | None = None,
) -> tuple[dict[int, World], dict[int, rules.Allocation]]:
    """Allocate these clients' work as of `through` (today), post ledger differences, record notices."""
    msp = msp_settings(session)
    policy = policy_of(msp)
    through = through or clock.today()
    worlds = load_worlds(session, client_ids)
    allocations = {cid: w.allocate(policy, through) for cid, w in worlds.items()}
    sync_ledger(session, worlds, allocations)
    record_balance_notices(session, msp, worlds, allocations)
    return worlds, allocations


def client_id_of(session: Session, key: str) -> int:
    cid = session.scalars(select(Client.id).where(Client.key == key)).first()
    if cid is None:
        raise NotFound(f"no client {key!r} (see `tenure client list`)")
    return cid


@dataclass
class Logged:
    client: str
    key: str
    date: date
    minutes: int
    rounded_minutes: int
    work_type: str
    on_hold: bool
    portions: list[dict[str, Any]]
    id: int | None = None  # what `tenure time edit|void ID` and /time-entries/{id} name it by
    ticket: int | None = None  # the ticket the work was on

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client": self.client,
            "key": self.key,
            "date": self.date.isoformat(),
            "minutes": self.minutes,
            "rounded_minutes": self.rounded_minutes,
            "work_type": self.work_type,
            "on_hold": self.on_hold,
            "paid_by": self.portions,
            "ticket": self.ticket,
        }


def portion_json(p: rules.Portion) -> dict[str, Any]:
    return {
        "layer": p.layer,
        "minutes": p.minutes,
        "block": p.block_key,
        "agreement": p.agreement_key,
        "rate": None if p.rate is None else fmt(p.rate),
        "line_kind": p.line_kind,
        "amount": fmt(p.amount.quantize(Decimal("0.01"))),
    }


def log_time(
    db: Database,
    client_key: str,
    minutes: int,
    work_type: str,
    day: date | None = None,
    technician: str | None = None,
    note: str | None = None,
    ticket: int | None = None,
) -> Logged:
    """Record work, allocate it at once, and say which layer pays it (and whether the work is on hold).
    `ticket`: the work was on that ticket of the client's (a new ticket is in progress from then on); coverage
    still decides who pays."""
    if work_type not in SERVICES:
        raise TenureError(f"work type {work_type!r} is not one of {', '.join(SERVICES)}")
    if not 0 < minutes <= 24 * 60:
        raise TenureError(f"minutes must be between 1 and 1440, not {minutes}")
    if technician is not None:  # a name the book, the calendar feeds and mail carry on one line
        one_line(technician, "technician")
    day = day or clock.today()
    with db.unit_of_work() as s:
        hold_inputs(s)
        cid = client_id_of(s, client_key)
        on_ticket = _ticket_of(s, cid, client_key, ticket) if ticket is not None else None
        worlds, before = allocate_clients(s, [cid], max(day, clock.today()))
        world = worlds[cid]
        retainer = world.retainer_terms(day)
        on_hold = retainer is not None and before[cid].retainer_balance_on(day) <= 0
        entry = TimeEntry(
            client_id=cid,
            key=f"log-{secrets.token_hex(4)}",
            date=day,
            minutes=minutes,
            work_type=work_type,
            technician=technician,
            note=note,
            on_hold=on_hold,
            ticket_id=ticket,
            device_id=on_ticket.device_id if on_ticket is not None else None,
        )
        s.add(entry)
        s.flush()
        _, after = allocate_clients(s, [cid], max(day, clock.today()))
        portions = [portion_json(p) for p in after[cid].portions_for(entry.key)]
        rounded = rules.round_up(minutes, msp_settings(s).time_rounding_minutes)
        return Logged(client_key, entry.key, day, minutes, rounded, work_type, on_hold, portions, entry.id, ticket)


def _ticket_of(s: Session, client_id: int, client_key: str, number: int) -> Any:
    """The client's ticket `number` that time is logged against; a new one is in progress from now on."""
    from tenure.desk.service import change_status_in
    from tenure.triage.models import Ticket

    ticket = s.get(Ticket, number)
    if ticket is None:
        raise NotFound(f"no ticket #{number}")
    if ticket.client_id != client_id:
        raise TenureError(f"ticket #{number} is another client's, not {client_key}'s")
    if ticket.status == "new":
        change_status_in(s, ticket, "in_progress")
    return ticket


def reallocate_all(db: Database, through: date | None = None) -> None:
    with db.unit_of_work() as s:
        allocate_clients(s, None, through)
