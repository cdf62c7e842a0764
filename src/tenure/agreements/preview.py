"""Who would pay for time before it is logged: the same allocation `log_time` runs, in a transaction that is
rolled back, so the time form can say "Nothing covers onsite: 45 min billed at 120.00/h" or "a former
client" before the entry is saved."""

import secrets
from datetime import date
from typing import Any

from tenure import clock
from tenure.agreements import rules
from tenure.agreements.models import TimeEntry
from tenure.agreements.service import allocate_clients, client_id_of, msp_settings, portion_json
from tenure.clients.service import client_views
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.vocabulary import SERVICES


class _Undo(Exception):
    """Carries the preview out of the unit of work, which rolls back on it."""

    def __init__(self, found: dict[str, Any]):
        super().__init__("preview")
        self.found = found


def preview_time(
    db: Database, client_key: str, minutes: int, work_type: str, day: date | None = None
) -> dict[str, Any]:
    """What logging `minutes` of `work_type` on `day` would do: the portions (who pays), the minutes rounded,
    and warnings in words (a former client, work nothing covers, a retainer at zero). Nothing is saved."""
    if work_type not in SERVICES:
        raise TenureError(f"work type {work_type!r} is not one of {', '.join(SERVICES)}")
    if not 0 < minutes <= 24 * 60:
        raise TenureError(f"minutes must be between 1 and 1440, not {minutes}")
    day = day or clock.today()
    try:
        with db.unit_of_work() as s:
            cid = client_id_of(s, client_key)
            views = client_views(s, day, keys=[client_key])
            klass = views[0].klass if views else None
            worlds, before = allocate_clients(s, [cid], max(day, clock.today()))
            retainer = worlds[cid].retainer_terms(day)
            on_hold = retainer is not None and before[cid].retainer_balance_on(day) <= 0
            key = f"preview-{secrets.token_hex(4)}"
            s.add(TimeEntry(client_id=cid, key=key, date=day, minutes=minutes, work_type=work_type, on_hold=on_hold))
            s.flush()
            _, after = allocate_clients(s, [cid], max(day, clock.today()))
            portions = [portion_json(p) for p in after[cid].portions_for(key)]
            rounded = rules.round_up(minutes, msp_settings(s).time_rounding_minutes)
            raise _Undo({"klass": klass, "on_hold": on_hold, "portions": portions, "rounded_minutes": rounded})
    except _Undo as undo:
        found = undo.found
    warnings = []
    if found["klass"] == "former":
        warnings.append(f"{client_key} is a former client: no agreement covers this time any more.")
    billed = [p for p in found["portions"] if p["layer"] not in ("included", "block", "retainer")]
    if billed:
        minutes_billed = sum(p["minutes"] for p in billed)
        amount = ", ".join(str(p["amount"]) for p in billed)
        warnings.append(
            f"Nothing covers {work_type.replace('_', ' ')} here: {minutes_billed} min would be billed "
            f"at {billed[0]['rate']}/h ({amount})."
        )
    if found["on_hold"]:
        warnings.append("The retainer is at zero: this time would be logged on hold.")
    return {
        "client": client_key,
        "minutes": minutes,
        "rounded_minutes": found["rounded_minutes"],
        "work_type": work_type,
        "date": day.isoformat(),
        "portions": found["portions"],
        "billable": bool(billed),
        "former_client": found["klass"] == "former",
        "warnings": warnings,
    }
