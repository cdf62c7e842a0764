"""Time: the list of entries, and on the client's time tab logging time, correcting it, and charges.

- **Log** (`time.log`): the form on the client's time tab; the flash says which layer pays the work.
- **Correct** (`time.log`: a technician corrects time as they log it): `?tab=time&edit=ID` opens an entry's
  form (minutes, date, work type, technician, note, the client it moves to, a reason) and its void form (a
  reason, required): `agreements.changes.edit_time_entry` / `void_time_entry`, the same services as the API's
  `PATCH|DELETE /api/v1/time-entries/{id}`. A voided entry stays on the tab, struck through, and counts for
  nothing; it is not edited (409). The flash says how the entry is paid now and, when an invoice billed it
  already, that the next monthly invoice carries the correction as an `adjustment` line (DOMAIN.md "Billing").
- **Charges** (`agreements.edit`: the owner's and the bookkeeper's): parts, materials and one-off charges
  recorded with a date, an amount and their cost, billed in arrears on the next monthly invoice
  (`billing.charges`); voided with a reason (credited on the next invoice when one billed it).

Every form answers with post/redirect/get and a flash; a refusal shows the time tab again with the form as
it was typed and each problem beside its field.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.agreements.changes import edit_time_entry, entry_billed_by, get_time_entry, void_time_entry
from tenure.agreements.service import log_time
from tenure.billing.charges import add_charge, get_charge, void_charge
from tenure.db.engine import Database
from tenure.errors import Conflict, TenureError, ValidationFailed
from tenure.web import forms, queries
from tenure.web.clients import client_page, refused, status_of
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, paid_words, redirect, show, today_minus
from tenure.web.forms import FormState

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/time", "read"),
    ("POST", "/clients/{key}/time", "time.log"),
    ("POST", "/time-entries/{entry}", "time.log"),
    ("POST", "/time-entries/{entry}/void", "time.log"),
    ("POST", "/clients/{key}/charges", "agreements.edit"),
    ("POST", "/clients/{key}/charges/{item}/void", "agreements.edit"),
]

EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]
ChargeKey = Annotated[str, Path(min_length=1, max_length=100)]
FAR = "is too far from today"


def time_tab(key: str, anchor: str = "") -> str:
    return f"/clients/{quote(key)}?tab=time" + (f"#{anchor}" if anchor else "")


def _day(text: str, field: str, problems: list[str]) -> date | None:
    """A date typed in a form, within ten years back and a year ahead (as logging time checks it)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        problems.append(f"{field}: {text!r} is not a date (YYYY-MM-DD)")
        return None
    if not today_minus(3653) <= day <= today_minus(-366):
        problems.append(f"{field}: {day} {FAR}")
        return None
    return day


def corrections(values: Mapping[str, str], current: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of the correction form that differ from the entry as it stands, in `edit_time_entry`'s shape:
    a blank technician or note clears it; a blank minutes or date is refused as missing; the client moves it."""
    problems: list[str] = []
    typed: dict[str, Any] = {}
    minutes = values.get("minutes", "").strip()
    typed["minutes"] = int(minutes) if minutes.isdigit() else (minutes or None)
    day = values.get("date", "").strip()
    typed["date"] = None if not day else (d.isoformat() if (d := _day(day, "date", problems)) else day)
    typed["work_type"] = values.get("work_type", "").strip() or None
    for name in ("technician", "note"):
        typed[name] = values.get(name, "").strip() or None
    if problems:
        raise ValidationFailed(problems)
    missing = [f"{name}: is required" for name in ("minutes", "date", "work_type") if typed[name] is None]
    if missing:
        raise ValidationFailed(missing)
    changes = {name: value for name, value in typed.items() if value != current.get(name)}
    client = values.get("client", "").strip()
    if client and client != current["client"]:
        changes["client"] = client
    return changes


def logged_fields(values: Mapping[str, str]) -> tuple[int, date | None, int | None]:
    """Minutes, day and ticket of a time-logging form as `log_time` takes them; ValidationFailed names each
    field that is not (the work type is the service's to check)."""
    problems: list[str] = []
    text = values.get("minutes", "").strip()
    minutes = int(text) if text.isdigit() else 0
    if not 1 <= minutes <= 1440:
        problems.append(f"minutes: {text!r} is not from 1 to 1440 minutes" if text else "minutes: is required")
    day = _day(values.get("day", "").strip(), "day", problems)
    typed = values.get("ticket", "").strip()
    number = typed.lstrip("#")
    if number and (not number.isdigit() or not 1 <= int(number) <= MAX_ID):
        problems.append(f"ticket: {typed!r} is not a ticket number")
    if problems:
        raise ValidationFailed(problems)
    return minutes, day, int(number) if number else None


def typed_again(name: str, fields: Sequence[forms.Field], exc: TenureError, values: dict[str, Any]) -> FormState:
    """A form refused by a service, shown again as typed with each problem beside the field it names."""
    per, general = forms.beside_fields(getattr(exc, "problems", None) or [str(exc)], fields)
    message = "not saved: " + ("see what is marked below" if per else "see below")
    return FormState(name, values, per, general, message)


def _changed(changes: Mapping[str, Any]) -> str:
    return ", ".join(name.replace("_", " ") for name in changes if name != "client")


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Worker = Annotated[Who, Depends(gate.form("time.log"))]
    Bookkeeper = Annotated[Who, Depends(gate.form("agreements.edit"))]

    @router.get("/time", response_class=HTMLResponse)
    def time_entries(
        request: Request,
        who: Annotated[Who, Depends(gate.page("read"))],
        client: Annotated[str | None, Query(max_length=100)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        found = queries.time_page(db(), client or None, limit=PAGE_SIZE, offset=offset)
        return show(request, who, "time.html", page=found, client=client or "")

    @router.post("/clients/{key}/time")
    def client_time(request: Request, key: str, who: Worker) -> Response:
        values = forms.typed(forms.TIME_LOG, request.state.form)
        try:
            minutes, day, number = logged_fields(values)
            logged = who[0].act(
                log_time, db(), key, minutes, values["work_type"], day, who[0].username,
                values["note"].strip() or None, number,
            )  # fmt: skip
        except TenureError as exc:
            return again(request, who, key, typed_again("time-log", forms.TIME_LOG, exc, values), exc, 422)
        return redirect(
            time_tab(key, f"time-{logged.key}"),
            f"logged {logged.minutes} min of {logged.work_type} on {logged.date}: {paid_words(logged.portions)}",
        )

    # ------------------------------------------------------------------------------ corrections

    def again(request: Request, who: Who, key: str, state: FormState, exc: TenureError, status: int = 0) -> Response:
        return client_page(db, request, who, key, "time", state=state, status=status or status_of(exc))

    @router.post("/time-entries/{entry}")
    def correct_time(request: Request, entry: EntryId, who: Worker) -> Response:
        values = forms.typed(forms.TIME_EDIT, request.state.form)
        current = get_time_entry(db(), entry)  # NotFound: 404
        key = current["client"]
        reason = values["reason"].strip() or None
        try:
            if current["voided"]:
                raise Conflict(
                    f"time entry {entry} was voided ({current['void_reason']}): it is not changed; log the work again"
                )
            changes = corrections(values, current)
            if not changes:
                return redirect(time_tab(key, f"time-{current['key']}"), f"time entry {entry}: nothing to change")
            billed = entry_billed_by(db(), entry)
            done = who[0].act(edit_time_entry, db(), entry, changes, None, reason)
        except (ValidationFailed, Conflict) as exc:
            return again(request, who, key, refused("time-edit", forms.TIME_EDIT, exc, values, item=str(entry)), exc)
        paid = paid_words(done["paid_by"])
        if done["client"] != key:
            text = f"time entry {entry} moved to {done['client']} (as {done['key']}): paid {paid}"
            if _changed(changes):
                text += f"; also changed: {_changed(changes)}"
            back = time_tab(key)
        else:
            text = f"time entry {entry} corrected ({_changed(changes)}): paid {paid}"
            back = time_tab(key, f"time-{done['key']}")
        if billed:
            text += (
                f". Invoice {billed} billed its month already and stays as it is: the next invoice carries any "
                "difference as an adjustment (prepaid time moves in the ledger at once)"
            )
        return redirect(back, text)

    @router.post("/time-entries/{entry}/void")
    def void_time(request: Request, entry: EntryId, who: Worker) -> Response:
        reason = str(request.state.form.get("reason") or "").strip()
        current = get_time_entry(db(), entry)  # NotFound: 404
        key = current["client"]
        back = time_tab(key, f"time-{current['key']}")
        if current["voided"]:
            return redirect(back, f"time entry {entry} was voided already ({current['void_reason']})")
        try:
            billed = entry_billed_by(db(), entry)
            who[0].act(void_time_entry, db(), entry, reason)
        except ValidationFailed as exc:
            state = refused("time-void", forms.TIME_VOID, exc, {"reason": reason}, item=str(entry))
            return again(request, who, key, state, exc)
        text = f"time entry {entry} voided ({reason}): it stays on record and counts for nothing"
        if billed:
            text += f". Invoice {billed} billed it and stays as it is: the next invoice credits it as an adjustment"
        return redirect(back, text)

    # ------------------------------------------------------------------------------ charges

    @router.post("/clients/{key}/charges")
    def new_charge(request: Request, key: str, who: Bookkeeper) -> Response:
        values = forms.typed(forms.CHARGE, request.state.form)
        problems: list[str] = []
        day = _day(values["date"].strip(), "date", problems)
        try:
            if problems:
                raise ValidationFailed(problems)
            made = who[0].act(
                add_charge, db(), key, values["description"], values["amount"].strip() or None,
                values["cost"].strip() or None, day, None, values["quantity"].strip() or None,
            )  # fmt: skip
        except ValidationFailed as exc:
            return again(request, who, key, refused("charge-new", forms.CHARGE, exc, values), exc)
        return redirect(
            time_tab(key, f"charges-{made['key']}"),
            f"charge {made['key']} added: {made['description']}, {made['amount']} on {made['date']}: "
            "billed on the next monthly invoice",
        )

    @router.post("/clients/{key}/charges/{item}/void")
    def void_a_charge(request: Request, key: str, item: ChargeKey, who: Bookkeeper) -> Response:
        reason = str(request.state.form.get("reason") or "").strip()
        current = get_charge(db(), key, item)  # NotFound: 404
        back = time_tab(key, f"charges-{item}")
        if current["voided"]:
            return redirect(back, f"charge {item} was voided already")
        try:
            if not reason:
                raise ValidationFailed(["reason: say why the charge is voided"])
            done = who[0].act(void_charge, db(), key, item, reason)
        except ValidationFailed as exc:
            state = refused("charge-void", forms.CHARGE_VOID, exc, {"reason": reason}, item=item)
            return again(request, who, key, state, exc)
        if done["invoice"]:
            billed = f"invoice {done['invoice']} billed it, the next invoice credits it"
            return redirect(back, f"charge {item} voided: {billed}")
        return redirect(back, f"charge {item} voided: it will not be billed")

    return router
