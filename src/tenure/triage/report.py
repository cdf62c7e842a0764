"""The unpaid-work report (seed 004's arithmetic), per client for one month.

Alerts suppressed and the minutes that avoided, uncovered alerts that reached a person and what they
cost, minutes of work never billed although the month was invoiced (written off), and the catalog
offer that would have covered the uncovered services, at its price.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from tenure.agreements.models import FrozenAllocation, TimeEntry
from tenure.agreements.service import msp_settings
from tenure.billing.service import period_start
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.intake.models import Alert
from tenure.triage import rules
from tenure.vocabulary import AGREEMENT_KINDS


def _covering_offer(catalog: list[dict[str, Any]], services: set[str]) -> dict[str, Any] | None:
    """The cheapest catalog agreement whose covers hold every uncovered service (none when no offer does)."""
    offers = [
        o
        for o in catalog
        if o.get("kind") in AGREEMENT_KINDS
        and services
        and services <= set(o.get("covers", [])) - set(o.get("excludes", []))
    ]
    if not offers:
        return None
    best = min(offers, key=lambda o: (Decimal(str(o.get("monthly_fee") or "0")), o["key"]))
    return {"offer": best["key"], "kind": best["kind"], "monthly_fee": best.get("monthly_fee")}


def unpaid_report(db: Database, period: str) -> dict[str, Any]:
    start = period_start(period)
    end = start + relativedelta(months=1)
    with db.reader() as s:
        msp = msp_settings(s)
        model = msp.unpaid_work_minutes or dict(rules.DEFAULT_UNPAID_MODEL)
        keys = dict(s.execute(select(Client.id, Client.key)).all())
        decisions: dict[int, list[str]] = defaultdict(list)
        uncovered: dict[int, set[str]] = defaultdict(set)
        for cid, decision, service in s.execute(
            select(Alert.client_id, Alert.decision, Alert.service).where(
                Alert.first_seen >= _moment(start), Alert.first_seen < _moment(end), Alert.client_id.is_not(None)
            )
        ):
            decisions[cid].append(decision)
            if decision in ("suppress", "quote", "forward"):
                uncovered[cid].add(service)
        # work of the month that no invoice took, although a later run closed the month: written off
        billed: dict[int, set[str]] = defaultdict(set)
        closed: set[int] = set()
        for cid, portions, frozen_period in s.execute(
            select(FrozenAllocation.client_id, FrozenAllocation.portions, FrozenAllocation.period)
        ):
            billed[cid] |= {p[0] for p in portions}
            if frozen_period == "final" or frozen_period > period:
                closed.add(cid)
        written_off: dict[int, int] = defaultdict(int)
        rounding = msp.time_rounding_minutes
        for cid, key, minutes in s.execute(
            select(TimeEntry.client_id, TimeEntry.key, TimeEntry.minutes).where(
                TimeEntry.date >= start, TimeEntry.date < end
            )
        ):
            if cid in closed and key not in billed[cid]:
                written_off[cid] += -(-minutes // rounding) * rounding
    rows = []
    for cid in sorted(set(decisions) | set(written_off), key=lambda c: keys[c]):
        work = rules.unpaid_minutes(decisions[cid], model)
        rows.append(
            {
                "client": keys[cid],
                "alerts": len(decisions[cid]),
                "suppressed": work.suppressed,
                "minutes_avoided": work.minutes_avoided,
                "reached_a_person": work.reached,
                "unpaid_minutes": work.minutes,
                "minutes_written_off": written_off.get(cid, 0),
                "uncovered_services": sorted(uncovered[cid]),
                "would_cover": _covering_offer(msp.catalog, uncovered[cid]),
            }
        )
    totals = {
        k: sum(r[k] for r in rows)
        for k in ("suppressed", "minutes_avoided", "reached_a_person", "unpaid_minutes", "minutes_written_off")
    }
    return {"period": period, "minutes_per_alert": sum(model.values()), "clients": rows, "totals": totals}


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
