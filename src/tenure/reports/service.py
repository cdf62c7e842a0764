"""The owner's view as use cases: the profitability report, its trail (`--explain`), and the fit replay.

Everything is read in bulk, a fixed number of queries whatever the number of clients (the worlds of
`agreements.service.load_worlds`, one grouped count of the alerts that reached a person), then handed to
`reports.rules`.
Nothing here writes: a report and a fit read the database and leave it exactly as it was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import LedgerEntry
from tenure.agreements.rules import Allocation, Policy, first_of_next_month
from tenure.agreements.service import World, client_id_of, load_worlds, msp_settings, policy_of
from tenure.billing.models import Charge, Invoice, InvoiceLine
from tenure.billing.rules import FEE_KINDS
from tenure.billing.service import period_start
from tenure.bulk import collector_paused
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.intake.models import Alert
from tenure.money import fmt, round_cents
from tenure.msp.models import MspSettings
from tenure.reports import rules
from tenure.triage.rules import DEFAULT_UNPAID_MODEL, REACHES_A_PERSON, unpaid_minutes

CHUNK = 900


# ------------------------------------------------------------------------------------------- inputs


def month_window(first: str, last: str) -> rules.Window:
    """The window of whole months from `first` to `last` (YYYY-MM), both included."""
    start, stop = period_start(first), period_start(last)
    try:
        return rules.window(start, stop)
    except ValueError as exc:
        raise TenureError(f"--from {first} --to {last}: {exc}") from None


def economics_of(msp: MspSettings) -> rules.Economics:
    model = msp.unpaid_work_minutes or dict(DEFAULT_UNPAID_MODEL)
    return rules.Economics(msp.labor_cost_per_hour, msp.target_effective_rate, unpaid_minutes([], model).per_alert)


def catalog_offers(catalog: Iterable[Mapping[str, Any]]) -> list[rules.Offer]:
    try:
        return [rules.offer_from(raw) for raw in catalog]
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise TenureError(f"msp.catalog: an offer cannot be read ({exc}); fix it in the book") from None


def _moment(day: date) -> datetime:
    # alerts count in the month of their first sighting, in UTC, as the unpaid-work report counts them
    return datetime.combine(day, time(0), tzinfo=UTC)


def alert_counts(session: Session, win: rules.Window, client_ids: list[int] | None) -> dict[int, dict[str, int]]:
    """Alerts that reached a person (quote decisions; a forward costs no one's time) per client and month,
    in one grouped query (chunked by client when asked for some): a count per client and how many came
    before each month's end."""
    ends = [_moment(first_of_next_month(m)) for m in win.months]
    before = [func.sum(case((Alert.first_seen < end, 1), else_=0)) for end in ends[:-1]]
    query = (
        select(Alert.client_id, func.count(), *before)
        .where(
            Alert.decision.in_(sorted(REACHES_A_PERSON)),
            Alert.first_seen >= _moment(win.first),
            Alert.first_seen < ends[-1],
            Alert.client_id.is_not(None),
        )
        .group_by(Alert.client_id)
    )
    scopes = (
        [query]
        if client_ids is None
        else [query.where(Alert.client_id.in_(client_ids[i : i + CHUNK])) for i in range(0, len(client_ids), CHUNK)]
    )
    found: dict[int, dict[str, int]] = {}
    labels = win.labels
    for scoped in scopes:
        for cid, total, *cumulative in session.execute(scoped):
            if cid is None:
                continue
            counts, previous = {}, 0
            for label, upto in zip(labels, [*cumulative, total], strict=True):
                if int(upto) != previous:
                    counts[label] = int(upto) - previous
                previous = int(upto)
            found[cid] = counts
    return found


def charge_facts(
    session: Session, win: rules.Window, client_ids: list[int] | None
) -> dict[int, list[rules.ChargeFact]]:
    """The charges (not voided) dated in the window, per client, in one query (chunked when clients are named)."""
    query = select(Charge.client_id, Charge.date, Charge.amount, Charge.cost).where(
        Charge.voided_at.is_(None), Charge.date >= win.first, Charge.date <= win.last
    )
    scopes = (
        [query]
        if client_ids is None
        else [query.where(Charge.client_id.in_(client_ids[i : i + CHUNK])) for i in range(0, len(client_ids), CHUNK)]
    )
    found: dict[int, list[rules.ChargeFact]] = defaultdict(list)
    for scoped in scopes:
        for cid, day, amount, cost in session.execute(scoped):
            found[cid].append(rules.ChargeFact(day, amount, cost))
    return found


def _through(win: rules.Window) -> date:
    """Allocate as the ledger does (through today), and at least through the window. The layers pay work in
    date order, so what comes later never changes an earlier month."""
    return max(clock.today(), win.last)


# ------------------------------------------------------------------------------------------- shapes


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else fmt(amount)


def _exact(amount: Decimal) -> str:
    """An unrounded amount as a decimal string: exact where ten places hold it, and at least to the cent."""
    ten = amount.quantize(Decimal("1E-10"))
    shown = ten.normalize() if ten == amount else ten
    if shown.as_tuple().exponent > -2:  # type: ignore[operator]
        shown = shown.quantize(Decimal("0.01"))
    return format(shown, "f")


def _figures_json(f: rules.Figures) -> dict[str, Any]:
    return {
        "revenue": fmt(f.revenue),
        "minutes": f.minutes,
        "hours": fmt(round_cents(Decimal(f.minutes) / 60)),
        "cost": _money(f.cost),
        "margin": _money(f.margin),
        "effective_rate": _money(f.effective_rate),
        "flagged": f.flagged,
    }


def _month_json(m: rules.MonthFigures) -> dict[str, Any]:
    return {
        "month": m.month,
        **_figures_json(m.figures),
        "fees": fmt(m.fees),
        "usage": fmt(m.usage),
        "prepaid": fmt(m.prepaid),
        "work_minutes": m.work_minutes,
        "unpaid_minutes": m.unpaid_minutes,
        "alerts_reached_a_person": m.alerts,
        "charges": fmt(m.charges),
        "charge_cost": fmt(m.charge_cost),
    }


def client_json(c: rules.ClientFigures, name: str | None = None) -> dict[str, Any]:
    """INTERFACE.md's profitability client: money as decimal strings. `fees`, `usage` and `prepaid` of a
    month are shown to the cent; `revenue` is their exact sum rounded once, so it may differ from the sum
    of the shown parts by a cent."""
    return {
        "client": c.client,
        "name": name,
        **_figures_json(c.figures),
        "months": [_month_json(m) for m in c.months],
        "agreements": [
            {
                "agreement": a.agreement,
                "kind": a.kind,
                **_figures_json(a.figures),
                "months": [{"month": m.month, "revenue": fmt(m.revenue), "minutes": m.minutes} for m in a.months],
            }
            for a in c.agreements
        ],
    }


CSV_COLUMNS = (
    "client",
    "month",
    "revenue",
    "fees",
    "usage",
    "prepaid",
    "charges",
    "minutes",
    "work_minutes",
    "unpaid_minutes",
    "cost",
    "margin",
    "effective_rate",
    "flagged",
)


def csv_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per client and month."""
    rows = []
    for c in report["clients"]:
        for m in c["months"]:
            rows.append({"client": c["client"], **{k: m[k] for k in CSV_COLUMNS if k != "client"}})
    return rows


# ------------------------------------------------------------------------------------ profitability


def _compute(
    worlds: Mapping[int, World],
    win: rules.Window,
    policy: Policy,
    alerts: Mapping[int, Mapping[str, int]],
    economics: rules.Economics,
    charges: Mapping[int, Sequence[rules.ChargeFact]] | None = None,
) -> list[tuple[World, rules.ClientFigures, Allocation]]:
    through = _through(win)
    found = []
    for cid, world in sorted(worlds.items(), key=lambda item: item[1].key):
        allocation = world.allocate(policy, through)
        figures = rules.profitability(
            world.key, world.terms, world.blocks, allocation, win, alerts.get(cid, {}), economics,
            (charges or {}).get(cid, ()),
        )
        found.append((world, figures, allocation))
    return found


def profitability_report(db: Database, first: str, last: str, client: str | None = None) -> dict[str, Any]:
    """Revenue, time, cost, margin and effective rate per client, month and agreement over the window.

    Every client with revenue or time in the window (or just `client`, even without)."""
    win = month_window(first, last)
    with collector_paused():
        with db.reader() as s:
            msp = msp_settings(s)
            economics, policy = economics_of(msp), policy_of(msp)
            ids = [client_id_of(s, client)] if client else None
            worlds = load_worlds(s, ids)
            alerts = alert_counts(s, win, ids)
            charges = charge_facts(s, win, ids)
        rows = [
            client_json(figures, world.name)
            for world, figures, _ in _compute(worlds, win, policy, alerts, economics, charges)
            if client or figures.active
        ]
        del worlds
    return {
        "from": win.labels[0],
        "to": win.labels[-1],
        "labor_cost_per_hour": _money(economics.labor_cost_per_hour),
        "target_effective_rate": _money(economics.target_effective_rate),
        "minutes_per_alert": economics.minutes_per_alert,
        "clients": rows,
        "flagged": [r["client"] for r in rows if r["flagged"]],
    }


# ---------------------------------------------------------------------------------------- the trail


def _ledger(
    session: Session, client_id: int, win: rules.Window
) -> dict[tuple[str, str, int | None, int | None], list[int]]:
    """The client's ledger entries of the month by (account, cause type, cause id, block id)."""
    found: dict[tuple[str, str, int | None, int | None], list[int]] = defaultdict(list)
    le = LedgerEntry
    for entry_id, account, cause, cause_id, block_id in session.execute(
        select(le.id, le.account, le.cause_type, le.cause_id, le.block_id)
        .where(le.client_id == client_id, le.date >= win.first, le.date <= win.last)
        .order_by(le.id)
    ):
        found[(account, cause or "", cause_id, block_id)].append(entry_id)
    return found


def _fee_invoices(session: Session, agreement_ids: Sequence[int], win: rules.Window) -> dict[int, list[str]]:
    """Invoices (not void) whose fee lines billed service days of the month, per agreement id."""
    found: dict[int, list[str]] = defaultdict(list)
    if not agreement_ids:
        return found
    for agreement_id, number in session.execute(
        select(InvoiceLine.agreement_id, Invoice.number)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            InvoiceLine.agreement_id.in_(list(agreement_ids)),
            InvoiceLine.kind.in_(FEE_KINDS),
            Invoice.status != "void",
            InvoiceLine.service_from <= win.last,
            InvoiceLine.service_to >= win.first,
        )
        .order_by(Invoice.date, Invoice.number)
    ):
        if agreement_id is not None and number not in found[agreement_id]:
            found[agreement_id].append(number)
    return found


def _alerts(session: Session, client_id: int, win: rules.Window) -> list[rules.AlertFact]:
    a = Alert
    return [
        rules.AlertFact(alert_id, decision, service, title, first_seen)
        for alert_id, decision, service, title, first_seen in session.execute(
            select(a.id, a.decision, a.service, a.title, a.first_seen)
            .where(
                a.client_id == client_id,
                a.decision.in_(sorted(REACHES_A_PERSON)),
                a.first_seen >= _moment(win.first),
                a.first_seen < _moment(first_of_next_month(win.last)),
            )
            .order_by(a.first_seen, a.id)
        )
    ]


def explain(db: Database, client: str, month: str) -> dict[str, Any]:
    """Every figure of one client's month with its source: fee lines (agreement, the invoices that billed
    those days), portions (time entry, layer, minutes, rate, amount; ledger entries of block and retainer
    draws), monitoring months and block draws (block, price per hour, ledger entries), unpaid-work alerts."""
    win = month_window(month, month)
    with db.reader() as s:
        msp = msp_settings(s)
        economics, policy = economics_of(msp), policy_of(msp)
        cid = client_id_of(s, client)
        world = load_worlds(s, [cid])[cid]
        alerts = _alerts(s, cid, win)
        ledger = _ledger(s, cid, win)
        invoices = _fee_invoices(s, list(world.agreement_ids.values()), win)
        charges = charge_facts(s, win, [cid]).get(cid, [])
    allocation = world.allocate(policy, _through(win))
    trail = rules.explain(
        world.key, world.terms, world.blocks, world.works, allocation, win.first, alerts, economics, charges
    )
    return trail_json(trail, world, ledger, invoices)


def trail_json(
    trail: rules.Trail,
    world: World,
    ledger: Mapping[tuple[str, str, int | None, int | None], list[int]],
    invoices: Mapping[int, list[str]],
) -> dict[str, Any]:
    agreement_ids, block_ids, work_ids = world.agreement_ids, world.block_ids, world.work_ids

    def draw_json(d: rules.DrawItem) -> dict[str, Any]:
        block_id = block_ids.get(d.block)
        if d.kind == "monitoring":
            cause = ("block", "monitoring", agreement_ids.get(d.ref.split("/")[0]), block_id)
        else:
            cause = ("block", "time_entry", work_ids.get(d.ref), block_id)
        return {
            "block": d.block,
            "block_id": block_id,
            "kind": d.kind,
            "ref": d.ref,
            "date": d.date.isoformat(),
            "minutes": d.minutes,
            "price_per_hour": _exact(d.price_per_hour),
            "value": _exact(d.value),
            "ledger_entries": list(ledger.get(cause, [])),
        }

    def work_json(w: rules.WorkItem) -> dict[str, Any]:
        work_id = work_ids.get(w.work_key)
        entries: list[int] = []
        if w.layer == "block":
            entries = list(ledger.get(("block", "time_entry", work_id, block_ids.get(w.block or "")), []))
        elif w.layer == "retainer":
            entries = list(ledger.get(("retainer", "time_entry", work_id, None), []))
        return {
            "time_entry": w.work_key,
            "time_entry_id": work_id,
            "date": w.date.isoformat(),
            "work_type": w.work_type,
            "layer": w.layer,
            "minutes": w.minutes,
            "rate": _money(w.rate),
            "line_kind": w.line_kind,
            "agreement": w.agreement,
            "agreement_id": agreement_ids.get(w.agreement) if w.agreement else None,
            "block": w.block,
            "block_id": block_ids.get(w.block) if w.block else None,
            "price_per_hour": None if w.price_per_hour is None else _exact(w.price_per_hour),
            "amount": _exact(w.amount),
            "ledger_entries": entries,
        }

    m = trail.month
    return {
        "client": trail.client,
        "month": m.month,
        **_figures_json(m.figures),
        "exact_revenue": _exact(m.exact_revenue),
        "fees_total": fmt(m.fees),
        "usage_total": _exact(m.usage),
        "prepaid_total": _exact(m.prepaid),
        "work_minutes": m.work_minutes,
        "unpaid_minutes": m.unpaid_minutes,
        "minutes_per_alert": trail.minutes_per_alert,
        "fees": [
            {
                "agreement": f.agreement,
                "agreement_id": agreement_ids.get(f.agreement),
                "kind": f.kind,
                "service_from": f.service_from.isoformat(),
                "service_to": f.service_to.isoformat(),
                "description": f.description,
                "amount": fmt(f.amount),
                "invoices": list(invoices.get(agreement_ids.get(f.agreement, -1), [])),
            }
            for f in trail.fees
        ],
        "work": [work_json(w) for w in trail.work],
        "monitoring": [
            {
                "agreement": mm.agreement,
                "agreement_id": agreement_ids.get(mm.agreement),
                "month": mm.month,
                "paid_from_block": mm.paid_from_block,
                "value": _exact(mm.value),
                "draws": [draw_json(d) for d in mm.draws],
            }
            for mm in trail.monitoring
        ],
        "block_draws": [draw_json(d) for d in trail.draws],
        "alerts": [
            {
                "alert": a.id,
                "decision": a.decision,
                "service": a.service,
                "title": a.title,
                "first_seen": a.first_seen.isoformat(),
                "minutes": trail.minutes_per_alert,
            }
            for a in trail.alerts
        ],
    }


# ---------------------------------------------------------------------------------------------- fit


def fit_json(fit: rules.Fit, actual: Decimal) -> dict[str, Any]:
    o = fit.offer
    return {
        "offer": o.key,
        "name": o.name,
        "kind": o.kind,
        "total": fmt(fit.total),
        "margin": _money(fit.figures.margin),
        "difference": fmt(fit.total - actual),
        "fees": fmt(fit.fees),
        "usage": fmt(fit.usage),
        "blocks": {
            "bought": len(fit.blocks_bought),
            "money": fmt(fit.block_money),
            "dates": [b.purchased.isoformat() for b in fit.blocks_bought],
            "minutes_left": fit.blocks_left_minutes,
        }
        if o.is_block
        else None,
        "minutes": fit.figures.minutes,
        "cost": _money(fit.figures.cost),
        "effective_rate": _money(fit.figures.effective_rate),
        "flagged": fit.figures.flagged,
        "months": [
            {
                "month": m.month,
                "total": fmt(m.total),
                "fees": fmt(m.fees),
                "usage": fmt(m.total - m.fees - m.blocks),
                "blocks": fmt(m.blocks),
                "minutes": m.minutes,
            }
            for m in fit.months
        ],
        "lines": [
            {
                "kind": line.kind,
                "description": line.description,
                "minutes": line.minutes,
                "rate": fmt(line.unit_price),
                "amount": fmt(line.amount),
            }
            for line in fit.lines
        ],
    }


def fit_report(
    db: Database, client: str, first: str, last: str, catalog: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Each catalog offer (or `catalog`, given) replayed as the client's only arrangement for the window,
    beside what the client actually paid for it. Reads only; the replay happens in memory."""
    win = month_window(first, last)
    with db.reader() as s:
        msp = msp_settings(s)
        economics, policy = economics_of(msp), policy_of(msp)
        offers = catalog_offers(msp.catalog if catalog is None else catalog)
        cid = client_id_of(s, client)
        world = load_worlds(s, [cid])[cid]
        alerts = alert_counts(s, win, [cid]).get(cid, {})
    with collector_paused():
        allocation = world.allocate(policy, _through(win))
        actual = rules.profitability(world.key, world.terms, world.blocks, allocation, win, alerts, economics)
        fits = [rules.replay(offer, world.works, win, policy, alerts, economics) for offer in offers]
    paid = actual.figures.revenue
    return {
        "client": world.key,
        "name": world.name,
        "from": win.labels[0],
        "to": win.labels[-1],
        "actual": fmt(paid),
        "actual_margin": _money(actual.figures.margin),
        "actual_effective_rate": _money(actual.figures.effective_rate),
        "minutes": actual.figures.minutes,
        "cost": _money(actual.figures.cost),
        "arrangement": [t.key for t in world.terms if t.start <= win.last and (t.end is None or t.end >= win.first)]
        + [b.key for b in world.blocks if b.purchased <= win.last],
        "offers": [fit_json(f, paid) for f in fits],
    }


# ----------------------------------------------------------------------------- the unpaid-work report


def covering_fits(
    worlds: Mapping[int, World],
    services: Mapping[int, set[str]],
    reached: Mapping[int, int],
    month: str,
    msp: MspSettings,
) -> dict[int, dict[str, Any] | None]:
    """For the unpaid-work report: per client, the catalog offer that would have covered its uncovered
    services in `month` (`rules.would_cover` over the fit replay of every covering offer), or None."""
    win = month_window(month, month)
    economics, policy = economics_of(msp), policy_of(msp)
    offers = catalog_offers(msp.catalog)
    found: dict[int, dict[str, Any] | None] = {}
    for cid, wanted in services.items():
        candidates = rules.covering(offers, wanted)
        world = worlds.get(cid)
        if not candidates or world is None:
            found[cid] = None
            continue
        alerts = {win.labels[0]: reached.get(cid, 0)}
        fits = [rules.replay(o, world.works, win, policy, alerts, economics) for o in candidates]
        chosen = rules.would_cover(fits)
        if chosen is None:
            found[cid] = None
            continue
        fit, how = chosen
        found[cid] = {
            "offer": fit.offer.key,
            "kind": fit.offer.kind,
            "monthly_fee": _money(fit.offer.monthly_fee),
            "total": fmt(fit.total),
            "margin": _money(fit.figures.margin),
            "effective_rate": _money(fit.figures.effective_rate),
            "chosen_by": how,
        }
    return found
