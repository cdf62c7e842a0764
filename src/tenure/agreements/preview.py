"""Who would pay for time before it is logged: the same allocation `log_time` runs, in a transaction that is
rolled back, so the time form can say "Nothing covers onsite: 45 min billed at 120.00/h" or "a former
client" before the entry is saved."""

import secrets
from datetime import date
from typing import Any

from tenure import clock
from tenure.agreements import rules
from tenure.agreements.models import TimeEntry
from tenure.agreements.service import Logged, allocate_clients, client_id_of, msp_settings, portion_json
from tenure.agreements.service import _ticket_of as ticket_of  # the very check `log_time` makes
from tenure.clients.service import client_views
from tenure.db.engine import Database
from tenure.errors import TenureError, ValidationFailed
from tenure.text import problem as text_problem
from tenure.vocabulary import SERVICES


class _Undo(Exception):
    """Carries the preview out of the unit of work, which rolls back on it."""

    def __init__(self, found: dict[str, Any]):
        super().__init__("preview")
        self.found = found


def preview_time(
    db: Database,
    client_key: str,
    minutes: int,
    work_type: str,
    day: date | None = None,
    *,
    technician: str | None = None,
    ticket: int | None = None,
) -> dict[str, Any]:
    """What logging `minutes` of `work_type` on `day` would do: the portions (who pays), the minutes rounded,
    and warnings in words (a former client, work nothing covers, a retainer at zero). Nothing is saved.
    `technician` and `ticket`, when given, are checked as `log_time` checks them (a preview refuses what the
    log would), though neither changes who pays."""
    if work_type not in SERVICES:
        raise TenureError(f"work type {work_type!r} is not one of {', '.join(SERVICES)}")
    if not 0 < minutes <= 24 * 60:
        raise TenureError(f"minutes must be between 1 and 1440, not {minutes}")
    if technician is not None and (wrong := text_problem(technician)) is not None:
        raise ValidationFailed([f"technician: {wrong}"])  # the API names the field of the body at fault
    day = day or clock.today()
    try:
        with db.unit_of_work() as s:
            cid = client_id_of(s, client_key)
            if ticket is not None:  # its move to in progress is rolled back with the rest
                ticket_of(s, cid, client_key, ticket)
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
    former = found["klass"] == "former"
    return {
        "client": client_key,
        "minutes": minutes,
        "rounded_minutes": found["rounded_minutes"],
        "work_type": work_type,
        "date": day.isoformat(),
        "portions": found["portions"],
        "billable": bool(_billed(found["portions"])),
        "former_client": former,
        "warnings": time_warnings(client_key, work_type, found["portions"], found["on_hold"], former),
    }


def _billed(portions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in portions if p["layer"] not in ("included", "block", "retainer")]


def time_warnings(
    client_key: str,
    work_type: str,
    portions: list[dict[str, Any]],
    on_hold: bool,
    former_client: bool,
    saved: bool = False,
) -> list[str]:
    """The warnings in words for time on `client_key` paid by `portions`: before it is saved (a preview), or
    of time just logged (`saved`: said as done, not as what would happen)."""
    would = "is" if saved else "would be"
    warnings = []
    if former_client:
        warnings.append(f"{client_key} is a former client: no agreement covers this time any more.")
    billed = _billed(portions)
    if billed:
        minutes_billed = sum(p["minutes"] for p in billed)
        amount = ", ".join(str(p["amount"]) for p in billed)
        # an agreement that covers the work but whose month's included hours are used up bills it as overage
        used_up = all(p.get("line_kind") == "overage" for p in billed)
        work = work_type.replace("_", " ")
        why = "The month's included hours are used up" if used_up else f"Nothing covers {work} here"
        warnings.append(f"{why}: {minutes_billed} min {would} billed at {billed[0]['rate']}/h ({amount}).")
    if on_hold:
        warnings.append(f"The retainer is at zero: this time {would} logged on hold.")
    return warnings


def logged_warnings(logged: Logged) -> list[str]:
    """The warnings of time just logged, from what `log_time` answered (no second pass of the allocation).
    Whether the client is a former one is not among them: `log_time` does not work out the client's class,
    so only a preview says so (the time is still said to be billed, as nothing covers a former client)."""
    return time_warnings(logged.client, logged.work_type, logged.portions, logged.on_hold, False, saved=True)
