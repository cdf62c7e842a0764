"""The forms that change what a client holds, on its page's tabs: agreements (add, change, end, delete one
never billed), devices (retire), contacts, sites, vendor accounts (close), backup jobs (activate, pause,
retire), intake mapping rules (remove), and purchases: a block bought, a retainer deposit recorded (each its
own prepayment invoice; never changed nor deleted here: a purchase is voided through its invoice).

Each form posts the object's shape in the book to `book/objects.py`, the same services as the API's, and
answers with post/redirect/get and a flash message. A refusal shows the tab again with the form as the
person left it and each problem beside its field (422); a form whose object changed since it was opened is
refused (412) and shown with the current values; a billed agreement's money terms change only from a date,
and the form then asks for it (409).
"""

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from tenure.book import objects
from tenure.db.engine import Database
from tenure.errors import Conflict, NotFound, Stale, TenureError, ValidationFailed
from tenure.web import forms
from tenure.web.clients import client_page, refused, status_of
from tenure.web.common import Gate, Who, redirect
from tenure.web.forms import THINGS, FormState, Thing

JOB_ACTIONS = ("activate", "pause", "retire")
AGREEMENTS = THINGS["agreements"]

ROUTES: list[tuple[str, str, str | None]] = [
    *[
        route
        for t in THINGS.values()
        for route in (
            ("POST", f"/clients/{{key}}/{t.path}", t.permission),
            *([("POST", f"/clients/{{key}}/{t.path}/{{item}}", t.permission)] if t.editable else []),
            *([("POST", f"/clients/{{key}}/{t.path}/{{item}}/remove", t.permission)] if t.removal else []),
        )
    ],
    ("POST", "/clients/{key}/agreements/{item}/end", AGREEMENTS.permission),
    *[("POST", f"/clients/{{key}}/backup-jobs/{{item}}/{action}", "inventory.edit") for action in JOB_ACTIONS],
]


def tab_url(key: str, thing: Thing, ident: str | None = None, editing: bool = False) -> str:
    url = f"/clients/{quote(key)}?tab={thing.tab}"
    if editing and ident is not None:
        return url + f"&kind={thing.path}&edit={quote(ident)}#edit"
    return url + (f"#{thing.kind}-{quote(ident)}" if ident is not None else "")


def named(thing: Thing, item: Mapping[str, Any]) -> str:
    if thing.kind == "mapping_rules":
        return f"{item.get('field')} = {item.get('pattern')!r}"
    return str(item.get("name") or item.get("id")) if thing.kind == "contacts" else str(item.get("key"))


def from_a_date(item: str, refusal: str) -> str:
    """The refusal of a billed agreement's new money terms, as the form answers it: with the date it asks for."""
    moved = re.search(r"billed: (.+?) change only from a date", refusal)
    if moved is None:
        return refusal
    terms = ", ".join(name.replace("_", " ") for name in moved.group(1).split(", "))
    return (
        f"agreement {item} was billed: its {terms} change only from a date, so its past invoices stay explained. "
        "Give the first day of the new terms below: the agreement ends the day before, and a new agreement "
        "carries the new terms from that day."
    )


def _date(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed([f"{field}: {text!r} is not a date (YYYY-MM-DD)"]) from None


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)

    def stale(
        request: Request, who: Who, key: str, thing: Thing, item: str, exc: Stale, mine: dict[str, Any]
    ) -> Response:
        """The form again with the object as it is now, what the person had typed beside it."""
        now = objects.get_item(db(), key, thing.kind, item)
        current = forms.shown(thing.fields, now)
        state = FormState(
            f"{thing.kind}-edit", current, message=str(exc), version=now.get("version"), item=item,
            yours=forms.differences(thing.fields, mine, current),
        )  # fmt: skip
        return client_page(db, request, who, key, thing.tab, state=state, status=412)

    def add(thing: Thing) -> Callable[..., Response]:
        def endpoint(request: Request, key: str, who: Annotated[Who, Depends(gate.form(thing.permission))]) -> Response:
            data = request.state.form
            body = forms.body_of(thing.fields, data, creating=True)
            try:
                made = who[0].act(objects.create_item, db(), key, thing.kind, body)
            except (ValidationFailed, Conflict) as exc:
                state = refused(f"{thing.kind}-new", thing.fields, exc, forms.typed(thing.fields, data))
                return client_page(db, request, who, key, thing.tab, state=state, status=status_of(exc))
            return redirect(tab_url(key, thing, thing.ident(made)), f"{thing.label} {named(thing, made)} added")

        endpoint.__name__ = f"add_{thing.kind}"
        return endpoint

    def change(thing: Thing) -> Callable[..., Response]:
        fields = thing.fields + ((forms.EFFECTIVE,) if thing is AGREEMENTS else ())

        def endpoint(
            request: Request, key: str, item: str, who: Annotated[Who, Depends(gate.form(thing.permission))]
        ) -> Response:
            data = request.state.form
            version = str(data.get("version") or "") or None
            mine = forms.typed(fields, data)
            current = objects.get_item(db(), key, thing.kind, item)
            body = forms.body_of(thing.fields, data, creating=False, current=current)
            try:
                effective = _date(str(data.get("effective") or "").strip(), "effective")
                done = who[0].act(objects.patch_item, db(), key, thing.kind, item, body, version, effective)
            except Stale as exc:
                return stale(request, who, key, thing, item, exc, mine)
            except (ValidationFailed, Conflict) as exc:
                asks_date = isinstance(exc, Conflict) and thing is AGREEMENTS
                state = refused(f"{thing.kind}-edit", fields, exc, mine, version=version, item=item,
                                effective=asks_date or bool(mine.get("effective")))  # fmt: skip
                if asks_date:
                    state.message = from_a_date(item, str(exc))
                    state.problems.setdefault("effective", []).append("give the first day of the new terms")
                return client_page(db, request, who, key, thing.tab, state=state, status=status_of(exc))
            if thing is AGREEMENTS and done["key"] != item:
                return redirect(
                    tab_url(key, thing, done["key"]),
                    f"agreement {item} ends the day before {done['start']}; its new terms are agreement "
                    f"{done['key']} from {done['start']}",
                )
            return redirect(tab_url(key, thing, thing.ident(done)), f"{thing.label} {named(thing, done)} changed")

        endpoint.__name__ = f"change_{thing.kind}"
        return endpoint

    def remove(thing: Thing) -> Callable[..., Response]:
        def endpoint(
            request: Request, key: str, item: str, who: Annotated[Who, Depends(gate.form(thing.permission))]
        ) -> Response:
            current = objects.get_item(db(), key, thing.kind, item)
            try:
                done = who[0].act(objects.remove_item, db(), key, thing.kind, item)
            except NotFound:
                raise
            except TenureError as exc:
                return redirect(tab_url(key, thing, item, editing=True), str(exc), error=True)
            return redirect(tab_url(key, thing), f"{thing.label} {named(thing, current)} {done['outcome']}")

        endpoint.__name__ = f"remove_{thing.kind}"
        return endpoint

    for thing in THINGS.values():
        router.post(f"/clients/{{key}}/{thing.path}")(add(thing))
        if thing.editable:
            router.post(f"/clients/{{key}}/{thing.path}/{{item}}")(change(thing))
        if thing.removal:
            router.post(f"/clients/{{key}}/{thing.path}/{{item}}/remove")(remove(thing))

    @router.post("/clients/{key}/agreements/{item}/end")
    def end_agreement(
        request: Request, key: str, item: str, who: Annotated[Who, Depends(gate.form(AGREEMENTS.permission))]
    ) -> Response:
        data = request.state.form
        version = str(data.get("version") or "") or None
        last = str(data.get("end") or "").strip()
        fields = (forms.END,)
        objects.get_item(db(), key, "agreements", item)
        try:
            if not last:
                raise ValidationFailed(["end: give the agreement's last day"])
            _date(last, "end")
            who[0].act(objects.patch_item, db(), key, "agreements", item, {"end": last}, version)
        except Stale as exc:
            return stale(request, who, key, AGREEMENTS, item, exc, {})
        except (ValidationFailed, Conflict) as exc:
            state = refused("agreements-end", fields, exc, {"end": last}, version=version, item=item)
            return client_page(db, request, who, key, "agreements", state=state, status=status_of(exc))
        return redirect(tab_url(key, AGREEMENTS, item), f"agreement {item} ends {last}")

    def job(action: str) -> Callable[..., Response]:
        def endpoint(
            request: Request, key: str, item: str, who: Annotated[Who, Depends(gate.form("inventory.edit"))]
        ) -> Response:
            seen = str(request.state.form.get("status") or "")
            current = objects.get_item(db(), key, "backup_jobs", item)  # this client's, or 404
            back = tab_url(key, THINGS["backup_jobs"], item)
            if seen and seen != current["status"]:
                return redirect(
                    back, f"backup job {item} is {current['status']} now (changed since the page was shown): "
                    "nothing done", error=True,
                )  # fmt: skip
            try:
                done = who[0].act(objects.set_job_status, db(), item, action)
            except TenureError as exc:
                return redirect(back, str(exc), error=True)
            return redirect(back, f"backup job {item} is {done['status']}")

        endpoint.__name__ = f"backup_job_{action}"
        return endpoint

    for action in JOB_ACTIONS:
        router.post(f"/clients/{{key}}/backup-jobs/{{item}}/{action}")(job(action))

    return router
