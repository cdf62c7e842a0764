"""Clients: the list (and a new client), a client's page in tabs, and the client's own fields (edit,
archive, restore).

The page's tabs are links (`?tab=devices`): each loads only what it shows, in a fixed number of queries
whatever the number of rows, and works without JavaScript. An object is edited on its tab (`?tab=devices
&kind=devices&edit=acme-dc01`): the form loads that one object with its `version`, sent back with the
change, so a form left open while someone else changed the object is refused (`Stale`) and shown again
with the current values. The forms of the objects themselves are web/items.py's.
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure import clock
from tenure.agreements.changes import get_time_entry, time_paid
from tenure.billing.charges import list_charges
from tenure.book import history as changelog
from tenure.book import objects
from tenure.clients import changes
from tenure.db.engine import Database
from tenure.errors import Conflict, NotFound, Stale, TenureError, ValidationFailed
from tenure.vocabulary import CLIENT_CLASSES, SERVICES
from tenure.web import forms, queries
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, redirect, show
from tenure.web.forms import THINGS, FormState

TABS = ("overview", "agreements", "devices", "contacts", "backups", "time", "ledger", "invoices", "history")
TAB_KINDS = {tab: [t for t in THINGS.values() if t.tab == tab] for tab in TABS}
OFFSETS = ("ledger", "devices", "time", "invoices", "changes", "blocks")  # a list's page on its tab: ?devices=50

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/clients", "read"),
    ("POST", "/clients", "clients.edit"),
    ("GET", "/clients/{key}", "read"),
    ("POST", "/clients/{key}/edit", "clients.edit"),
    ("POST", "/clients/{key}/archive", "clients.edit"),
    ("POST", "/clients/{key}/restore", "clients.edit"),
]

Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def status_of(exc: TenureError) -> int:
    """A refused form's answer, as the API's: 422 invalid, 409 conflict, 412 stale, 404 gone."""
    return {ValidationFailed: 422, Conflict: 409, Stale: 412, NotFound: 404}.get(type(exc), 400)


def refused(name: str, fields: Any, exc: TenureError, values: dict[str, Any], **more: Any) -> FormState:
    """A form shown again after a refusal: what was typed, each problem beside its field."""
    if not isinstance(exc, ValidationFailed):
        return FormState(name, values, message=str(exc), **more)
    per, general = forms.sort_problems(exc.problems, fields)
    message = "not saved: " + ("see what is marked below" if per else "see below")
    return FormState(name, values, per, general, message, **more)


def client_page(
    db: Callable[[], Database],
    request: Request,
    who: Who,
    key: str,
    tab: str = "overview",
    kind: str | None = None,
    edit: str | None = None,
    state: FormState | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The client's page on one tab, with the forms its user may use; `state` is a refused form to show
    again (its values and problems), `edit` the object whose form is open."""
    today = clock.today()
    tab = tab if tab in TABS else "overview"
    if request.method != "GET":  # a refused form: the page is the tab's, and so are its links (its pagers)
        path = f"/clients/{quote(key)}"
        query = f"tab={tab}".encode()
        request = Request(
            {**request.scope, "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query}
        )
    offsets = {name: _offset(request, name) for name in OFFSETS}
    view, device_count = queries.client_view(db(), key, today)
    own = changes.get_client(db(), key)
    me = who[0]
    context: dict[str, Any] = {
        "client": view,
        "own": own,
        "device_count": device_count,
        "tab": tab,
        "tabs": TABS,
        "things": THINGS,
        "kinds": TAB_KINDS[tab],
        "specs": {"client": forms.CLIENT, "effective": forms.EFFECTIVE, "end": forms.END},
        "forms": {},
        "sources": {},
        "editing": None,
    }
    states: dict[str, FormState] = context["forms"]
    if tab == "overview":
        context |= {
            "ledger": queries.ledger_page(db(), key, today, 5, 0),
            "alerts": queries.alerts_page(db(), key, limit=10),
            "tickets": queries.tickets_page(db(), key, queue=True, limit=20),
            "runs": queries.runs_page(db(), key, limit=5),
            "pending_jobs": queries.pending_jobs(db(), key),
        }
        if me.may("clients.edit"):
            states["client"] = FormState("client", forms.shown(forms.CLIENT, own), version=own["version"])
            context["purgeable"] = not queries.has_history(db(), key)
    elif tab == "agreements":
        context |= {
            "items": {kind: objects.list_items(db(), key, kind) for kind in ("agreements", "retainer_deposits")},
            "billed": queries.billed_agreements(db(), key),
            "blocks": queries.blocks_page(db(), today, key, PAGE_SIZE, offsets["blocks"]),
        }
    elif tab == "devices":
        context |= {
            "devices": queries.devices_page(db(), key, PAGE_SIZE, offsets["devices"]),
            "items": {kind: objects.list_items(db(), key, kind) for kind in ("sites", "accounts", "mapping_rules")},
        }
        context["sources"]["sites"] = [s["key"] for s in context["items"]["sites"]]
    elif tab == "contacts":
        context["items"] = {"contacts": objects.list_items(db(), key, "contacts")}
    elif tab == "backups":
        context["jobs"] = queries.backup_jobs(db(), key)
        context["sources"]["devices"] = queries.choices(db(), key, "devices")
    elif tab == "time":
        context |= _time_tab(db, key, me, edit, state, offsets["time"], today, states)
    elif tab == "ledger":
        context["ledger"] = queries.ledger_page(db(), key, today, PAGE_SIZE, offsets["ledger"])
    elif tab == "invoices":
        context["invoices"] = queries.invoices_page(db(), key, limit=PAGE_SIZE, offset=offsets["invoices"])
    elif tab == "history":
        context |= _history(db, request, key, offsets["changes"])

    for thing in TAB_KINDS[tab]:
        if me.may(thing.permission):
            states[f"{thing.kind}-new"] = FormState(f"{thing.kind}-new", _new_values(thing.kind, today))
    editing = _editing(db, key, tab, kind, edit, state)
    if editing is not None and me.may(editing[0].permission):
        thing, item = editing
        states[f"{thing.kind}-edit"] = FormState(
            f"{thing.kind}-edit", forms.shown(thing.fields, item), version=item.get("version"), item=edit
        )
        if thing.kind == "agreements":
            states["agreements-end"] = FormState("agreements-end", {"end": item.get("end") or str(today)})
        context["editing"] = {"thing": thing, "item": item, "ident": thing.ident(item)}
        if "sites" in [f.source for f in thing.fields] and "sites" not in context["sources"]:
            context["sources"]["sites"] = queries.choices(db(), key, "sites")
    if state is not None:
        states[state.name] = state
    return show(request, who, "client.html", status_code=status, **context)


def _time_tab(
    db: Callable[[], Database], key: str, me: Any, edit: str | None, state: FormState | None, offset: int,
    today: Any, states: dict[str, FormState],
) -> dict[str, Any]:  # fmt: skip
    """The time tab: the entries (voided ones struck through) with how each is paid, the entry whose correction
    is open (`?tab=time&edit=ID`, or the one a refused correction was changing), and the client's charges."""
    context: dict[str, Any] = {
        "time": queries.time_page(db(), key, limit=PAGE_SIZE, offset=offset),
        "time_totals": queries.time_totals(db(), key),
        "paid": time_paid(db(), key),
        "services": SERVICES,
        "charges": list_charges(db(), key),
        "correcting": None,
    }
    if state is not None and state.name in ("time-edit", "time-void"):
        edit = state.item
    if edit and me.may("time.log"):
        if not edit.isdigit() or not 0 < int(edit) <= MAX_ID:
            raise NotFound(f"no time entry {edit!r}")
        entry = get_time_entry(db(), int(edit))
        if entry["client"] != key:
            raise NotFound(f"client {key!r} has no time entry {edit} (it is {entry['client']!r}'s)")
        context["correcting"] = entry
        states["time-edit"] = FormState("time-edit", forms.shown(forms.TIME_EDIT, entry), item=edit)
        states["time-void"] = FormState("time-void", item=edit)
    if me.may("time.log"):
        states["time-log"] = FormState("time-log", {"minutes": "30", "work_type": "remote_support", "day": str(today)})
    if me.may("agreements.edit"):
        states["charge-new"] = FormState("charge-new", {"date": str(today)})
    context["time_specs"] = {
        "log": forms.TIME_LOG, "edit": forms.TIME_EDIT, "void": forms.TIME_VOID, "charge": forms.CHARGE,
        "charge_void": forms.CHARGE_VOID,
    }  # fmt: skip
    return context


def _offset(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "0")
    return min(int(raw), 10_000_000) if raw.isdigit() else 0


def _new_values(kind: str, today: Any) -> dict[str, Any]:
    values = dict(forms.DEFAULTS.get(kind, {}))
    if kind == "agreements":
        values["start"] = str(today)
    elif kind == "blocks":
        values["purchased"] = str(today)
    elif kind == "retainer_deposits":
        values["date"] = str(today)
    return values


def _editing(
    db: Callable[[], Database], key: str, tab: str, kind: str | None, edit: str | None, state: FormState | None
) -> tuple[forms.Thing, dict[str, Any]] | None:
    """The object whose form is open on this tab: `?kind=…&edit=…`, or the one a refused form was changing."""
    if state is not None and state.item is not None:
        kind, edit = state.name.rsplit("-", 1)[0], state.item
    if not edit:
        return None
    thing = THINGS.get((kind or "").replace("-", "_")) or (TAB_KINDS[tab][0] if TAB_KINDS[tab] else None)
    if thing is None or thing.tab != tab or not thing.editable:
        return None
    return thing, objects.get_item(db(), key, thing.kind, edit)


def _history(db: Callable[[], Database], request: Request, key: str, offset: int) -> dict[str, Any]:
    """The client's change log (itself and everything it holds), or one object's (`?object=device&item=…`)."""
    name, item = request.query_params.get("object"), request.query_params.get("item")
    thing = next((t for t in THINGS.values() if t.history == name), None)
    if thing is not None and item:
        objects.get_item(db(), key, thing.kind, item)  # only this client's objects: NotFound otherwise
        found = changelog.history(db(), thing.history, item, PAGE_SIZE, offset)
        title = f"{thing.label} {item}"
    else:
        found = changelog.history(db(), "client", key, PAGE_SIZE, offset)
        title = None
    page = queries.Page(found["changes"], found["total"], True, PAGE_SIZE, offset)
    return {"changes": page, "history_of": title}


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]
    Editor = Annotated[Who, Depends(gate.form("clients.edit"))]

    def list_page(
        request: Request, who: Who, klass: str | None, q: str | None, archived: bool, offset: int,
        state: FormState | None = None, status: int = 200,
    ) -> HTMLResponse:  # fmt: skip
        klass = klass if klass in CLIENT_CLASSES else None
        found = queries.clients_page(db(), clock.today(), klass, q, PAGE_SIZE, offset, archived=archived)
        new = state or FormState("client-new")
        return show(
            request, who, "clients.html", status_code=status, page=found, klass=klass, q=q or "",
            classes=CLIENT_CLASSES, archived=archived, new=new, spec=forms.CLIENT_NEW,
        )  # fmt: skip

    @router.get("/clients", response_class=HTMLResponse)
    def clients(
        request: Request,
        who: Read,
        klass: Annotated[str | None, Query(alias="class", max_length=20)] = None,
        q: Annotated[str | None, Query(max_length=100)] = None,
        archived: Annotated[bool, Query()] = False,
        offset: Offset = 0,
    ) -> HTMLResponse:
        return list_page(request, who, klass, q, archived, offset)

    @router.post("/clients")
    def new_client(request: Request, who: Editor) -> Response:
        data = request.state.form
        body = forms.body_of(forms.CLIENT_NEW, data, creating=True)
        try:
            made = who[0].act(changes.add_client, db(), body)
        except (ValidationFailed, Conflict) as exc:
            state = refused("client-new", forms.CLIENT_NEW, exc, forms.typed(forms.CLIENT_NEW, data))
            return list_page(request, who, None, None, False, 0, state, status_of(exc))
        return redirect(f"/clients/{quote(made['key'])}", f"client {made['key']} added: {made['name']}")

    @router.get("/clients/{key}", response_class=HTMLResponse)
    def client(
        request: Request,
        key: str,
        who: Read,
        tab: Annotated[str, Query(max_length=20)] = "overview",
        kind: Annotated[str | None, Query(max_length=20)] = None,
        edit: Annotated[str | None, Query(max_length=100)] = None,
    ) -> HTMLResponse:
        return client_page(db, request, who, key, tab, kind, edit)

    @router.post("/clients/{key}/edit")
    def edit_client(request: Request, key: str, who: Editor) -> Response:
        data = request.state.form
        version = str(data.get("version") or "") or None
        current = changes.get_client(db(), key)
        body = forms.body_of(forms.CLIENT, data, creating=False, current=current)
        try:
            who[0].act(changes.edit_client, db(), key, body, version)
        except Stale as exc:
            now = changes.get_client(db(), key)
            state = FormState(
                "client", forms.shown(forms.CLIENT, now), message=str(exc), version=now["version"],
                yours=forms.differences(forms.CLIENT, forms.typed(forms.CLIENT, data), forms.shown(forms.CLIENT, now)),
            )  # fmt: skip
            return client_page(db, request, who, key, state=state, status=412)
        except (ValidationFailed, Conflict) as exc:
            state = refused("client", forms.CLIENT, exc, forms.typed(forms.CLIENT, data), version=version)
            return client_page(db, request, who, key, state=state, status=status_of(exc))
        return redirect(f"/clients/{quote(key)}", f"client {key} changed")

    @router.post("/clients/{key}/archive")
    def archive(request: Request, key: str, who: Editor) -> Response:
        purge = request.state.form.get("purge") == "1"
        try:
            done = who[0].act(changes.archive_client, db(), key, purge)
        except NotFound:
            raise
        except TenureError as exc:
            return redirect(f"/clients/{quote(key)}", str(exc), error=True)
        if done["outcome"] == "deleted":
            return redirect("/clients", f"client {key} deleted: it had no history")
        return redirect("/clients", f"client {key} archived: kept with its history, out of the lists")

    @router.post("/clients/{key}/restore")
    def restore(key: str, who: Editor) -> Response:
        who[0].act(changes.restore_client, db(), key)
        return redirect(f"/clients/{quote(key)}", f"client {key} restored: back in the lists")

    return router
