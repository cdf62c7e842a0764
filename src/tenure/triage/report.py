"""The unpaid-work report (seed 004's arithmetic), per client for one month.

Alerts suppressed and the minutes that avoided, uncovered alerts that reached a person and what they
cost, minutes of work never billed although the month was invoiced (written off), and the catalog
offer that would have covered the uncovered services, at its price.

"Would cover" comes from the fit replay (`reports.rules.replay`, DOMAIN.md "Fit"): every catalog agreement
whose covers hold all of the client's uncovered services is replayed as its only arrangement for the
month, on its real work; the offer named is the one with the **lowest total** among those under which the
client is worth serving (effective rate not below the target, no loss), else the one with the **best
margin** (`reports.rules.would_cover`). It says which in `chosen_by`, and what the month would have cost
the client under it (`total`) and the MSP's margin.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from tenure.agreements.frozen import frozen_keys
from tenure.agreements.models import FrozenAllocation, TimeEntry
from tenure.agreements.service import load_worlds, msp_settings
from tenure.billing.service import period_start
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.intake.models import Alert
from tenure.reports.service import covering_fits
from tenure.triage import rules


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
            billed[cid].update(frozen_keys(portions))
            if frozen_period == "final" or frozen_period > period:
                closed.add(cid)
        written_off: dict[int, int] = defaultdict(int)
        rounding = msp.time_rounding_minutes
        for cid, key, minutes in s.execute(
            select(TimeEntry.client_id, TimeEntry.key, TimeEntry.minutes).where(
                TimeEntry.date >= start, TimeEntry.date < end, TimeEntry.voided_at.is_(None)
            )
        ):
            if cid in closed and key not in billed[cid]:
                written_off[cid] += -(-minutes // rounding) * rounding
        wanted = {cid: services for cid, services in uncovered.items() if services}
        # the fit replays only this month's work, as the client's only arrangement: nothing else to load
        worlds = load_worlds(s, sorted(wanted), works_in=(start, end), with_frozen=False) if wanted else {}
        reached = {cid: rules.unpaid_minutes(d, model).reached for cid, d in decisions.items()}
        covers = covering_fits(worlds, wanted, reached, period, msp)
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
                "would_cover": covers.get(cid),
            }
        )
    totals = {
        k: sum(r[k] for r in rows)
        for k in ("suppressed", "minutes_avoided", "reached_a_person", "unpaid_minutes", "minutes_written_off")
    }
    return {"period": period, "minutes_per_alert": sum(model.values()), "clients": rows, "totals": totals}


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
