"""The MSP's settings page: its own settings (name, currency, rates, terms…) and its catalog of offers.

Every staff role reads the page; only who may `settings.edit` (the owner) changes it. The forms post the
book's `msp:` shape to `msp/changes.py`, the same services as the API's: post/redirect/get with a flash,
a refusal shown again with each problem beside its field (422), a form whose settings or offer changed since
it was opened refused (412) and shown with the current values beside what the person had typed. The
settings' tables (the block bonus, the unpaid-work thresholds) are changed through a book or the API.
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.db.engine import Database
from tenure.errors import Conflict, Stale, TenureError, ValidationFailed
from tenure.msp import changes
from tenure.web import forms
from tenure.web.clients import refused, status_of
from tenure.web.common import Gate, Who, redirect, show
from tenure.web.forms import FormState

PERMISSION = "settings.edit"

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/settings", "read"),
    ("POST", "/settings", PERMISSION),
    ("POST", "/settings/offers", PERMISSION),
    ("POST", "/settings/offers/{item}", PERMISSION),
    ("POST", "/settings/offers/{item}/remove", PERMISSION),
]


def _required(fields: tuple[forms.Field, ...], body: dict[str, Any]) -> None:
    """A required setting left blank is refused here: the service would keep (or default) it silently."""
    missing = [f"{f.name}: is required" for f in fields if f.required and not f.new_only and body.get(f.name) is None]
    if missing:
        raise ValidationFailed(missing)


def settings_page(
    db: Callable[[], Database], request: Request, who: Who, edit: str | None = None,
    state: FormState | None = None, status: int = 200,
) -> HTMLResponse:  # fmt: skip
    """The page; `state` a refused form to show again, `edit` the offer whose form is open."""
    current = changes.get_settings(db())
    offers = changes.list_offers(db())
    states: dict[str, FormState] = {}
    editing = None
    if state is not None and state.name == "offer-edit":
        edit = state.item
    if who[0].may(PERMISSION):
        states["settings"] = FormState("settings", forms.shown(forms.MSP, current), version=current["version"])
        states["offer-new"] = FormState("offer-new")
        editing = next((o for o in offers if o["key"] == edit), None) if edit else None
        if editing is not None:
            states["offer-edit"] = FormState(
                "offer-edit", forms.shown(forms.OFFER, editing), version=editing["version"], item=editing["key"]
            )
    if state is not None:
        states[state.name] = state
    return show(
        request, who, "settings.html", status_code=status, settings=current, offers=offers, forms=states,
        specs={"msp": forms.MSP, "offer": forms.OFFER}, editing=editing, sources={},
    )  # fmt: skip


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]
    Editor = Annotated[Who, Depends(gate.form(PERMISSION))]

    @router.get("/settings", response_class=HTMLResponse)
    def settings(request: Request, who: Read, edit: Annotated[str | None, Query(max_length=100)] = None) -> Response:
        return settings_page(db, request, who, edit)

    @router.post("/settings")
    def edit_settings(request: Request, who: Editor) -> Response:
        data = request.state.form
        version = str(data.get("version") or "") or None
        mine = forms.typed(forms.MSP, data)
        current = changes.get_settings(db())
        body = forms.body_of(forms.MSP, data, creating=False, current=current)
        try:
            _required(forms.MSP, body)
            who[0].act(changes.edit_settings, db(), body, version)
        except Stale as exc:
            now = changes.get_settings(db())
            shown = forms.shown(forms.MSP, now)
            state = FormState("settings", shown, message=str(exc), version=now["version"],
                              yours=forms.differences(forms.MSP, mine, shown))  # fmt: skip
            return settings_page(db, request, who, state=state, status=412)
        except (ValidationFailed, Conflict) as exc:
            state = refused("settings", forms.MSP, exc, mine, version=version)
            return settings_page(db, request, who, state=state, status=status_of(exc))
        return redirect("/settings", "settings changed")

    @router.post("/settings/offers")
    def add_offer(request: Request, who: Editor) -> Response:
        data = request.state.form
        body = forms.body_of(forms.OFFER, data, creating=True)
        try:
            made = who[0].act(changes.add_offer, db(), body)
        except (ValidationFailed, Conflict) as exc:
            state = refused("offer-new", forms.OFFER, exc, forms.typed(forms.OFFER, data))
            return settings_page(db, request, who, state=state, status=status_of(exc))
        return redirect(f"/settings#offer-{quote(made['key'])}", f"offer {made['key']} added to the catalog")

    @router.post("/settings/offers/{item}")
    def edit_offer(request: Request, item: str, who: Editor) -> Response:
        data = request.state.form
        version = str(data.get("version") or "") or None
        mine = forms.typed(forms.OFFER, data)
        current = changes.get_offer(db(), item)  # or 404
        body = forms.body_of(forms.OFFER, data, creating=False, current=current)
        try:
            who[0].act(changes.edit_offer, db(), item, body, version)
        except Stale as exc:
            now = changes.get_offer(db(), item)
            shown = forms.shown(forms.OFFER, now)
            state = FormState("offer-edit", shown, message=str(exc), version=now["version"], item=item,
                              yours=forms.differences(forms.OFFER, mine, shown))  # fmt: skip
            return settings_page(db, request, who, state=state, status=412)
        except (ValidationFailed, Conflict) as exc:
            state = refused("offer-edit", forms.OFFER, exc, mine, version=version, item=item)
            return settings_page(db, request, who, state=state, status=status_of(exc))
        return redirect(f"/settings#offer-{quote(item)}", f"offer {item} changed")

    @router.post("/settings/offers/{item}/remove")
    def remove_offer(item: str, who: Editor) -> Response:
        changes.get_offer(db(), item)  # or 404
        try:
            who[0].act(changes.remove_offer, db(), item)
        except TenureError as exc:
            return redirect(f"/settings?edit={quote(item)}#offer-edit", str(exc), error=True)
        return redirect("/settings#offers", f"offer {item} removed from the catalog")

    return router
