"""REST API v1: clients (signed, changed, archived), their inventory (contacts, sites, devices, vendor
accounts, backup jobs, mapping rules) and prepaid ledger."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tenure import clock
from tenure.api.agreements import AgreementTerms
from tenure.api.common import (
    KEY,
    NOT_FOUND,
    TEXT,
    WRITES,
    Api,
    Limit,
    Offset,
    PageMeta,
    page,
)
from tenure.api.objects import IfMatch, object_routes, tagged
from tenure.book import objects, schema
from tenure.clients import changes
from tenure.vocabulary import ClientClass
from tenure.web import queries


class DeviceOut(BaseModel):
    key: str
    hostname: str
    role: str
    os: str | None = None
    active: bool = True
    last_seen: str | None = None


class ClientSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    key: str
    name: str
    klass: str = Field(alias="class", description="The client's class today (DOMAIN.md).")
    agreements: list[AgreementTerms]
    block_balance_minutes: int
    retainer_balance: str
    device_count: int


class ClientOut(ClientSummary):
    devices: list[DeviceOut] = Field(description="The first 100 active devices; see /clients/{key}/devices.")
    version: str = Field(description="The client's own fields' version, also its ETag: send it as `If-Match`.")


class ClientPage(PageMeta):
    clients: list[ClientSummary]


class DevicePage(PageMeta):
    devices: list[DeviceOut]


class LedgerEntryOut(BaseModel):
    date: str
    account: str
    kind: str
    block: str | None
    cause: str | None
    note: str | None
    minutes: int | None = None
    balance_minutes: int | None = None
    amount: str | None = None
    balance: str | None = None


class LedgerPage(PageMeta):
    entries: list[LedgerEntryOut]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, Read = api.db, api.principal("read")

    @route("GET", "/clients", "read", tags=["clients"], response_model=ClientPage, summary="Clients with their class")
    def clients(
        _: Read,
        klass: Annotated[ClientClass | None, Query(alias="class", description="Only clients of this class.")] = None,
        q: Annotated[str | None, Query(max_length=100, pattern=TEXT, description="Part of a key or a name.")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        return page("clients", queries.clients_page(db(), clock.today(), klass, q, limit, offset))

    @route(
        "GET",
        "/clients/{key}",
        "read",
        tags=["clients"],
        response_model=ClientOut,
        responses=NOT_FOUND,
        summary="A client: class, agreements, balances, devices",
    )
    def client(key: Annotated[str, Path(max_length=100, pattern=KEY)], _: Read) -> JSONResponse:
        view, devices = queries.client_view(db(), key, clock.today())
        first = queries.devices_page(db(), key, 100, 0).items
        # its version (and ETag), so the first change of it can be made on what was read (412 if it moved on)
        version = changes.get_client(db(), key)["version"]
        return tagged(queries.client_summary(view, devices) | {"devices": first, "version": version})

    @route(
        "GET",
        "/clients/{key}/devices",
        "read",
        tags=["clients"],
        response_model=DevicePage,
        responses=NOT_FOUND,
        summary="A client's devices",
    )
    def devices(
        key: Annotated[str, Path(max_length=100, pattern=KEY)], _: Read, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        return page("devices", queries.devices_page(db(), key, limit, offset))

    @route(
        "GET",
        "/clients/{key}/ledger",
        "read",
        tags=["clients"],
        response_model=LedgerPage,
        responses=NOT_FOUND,
        summary="A client's prepaid ledger, newest first, with running balances",
    )
    def ledger(
        key: Annotated[str, Path(max_length=100, pattern=KEY)], _: Read, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        return page("entries", queries.ledger_page(db(), key, clock.today(), limit, offset))

    # ------------------------------------------------------------------------------ changing clients

    Editor = api.principal("clients.edit")
    KeyPath = Annotated[str, Path(max_length=100, pattern=KEY)]

    @route("POST", "/clients", "clients.edit", tags=["clients"], status_code=201, responses=WRITES,
           summary="Sign a new client: its shape in the book, with whatever it already has")  # fmt: skip
    async def add_client(body: schema.Client, principal: Editor) -> JSONResponse:
        data = body.model_dump(mode="json", exclude_unset=True)
        return tagged(await run_in_threadpool(principal.act, changes.add_client, db(), data), 201)

    @route("PATCH", "/clients/{key}", "clients.edit", tags=["clients"], responses=WRITES,
           summary="Change a client's own fields: only those sent")  # fmt: skip
    async def edit_client(
        key: KeyPath,
        body: Annotated[dict[str, Any], Body(description="name, domains, notes, billable_alerts, …")],
        principal: Editor,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        return tagged(await run_in_threadpool(principal.act, changes.edit_client, db(), key, body, if_match))

    @route("DELETE", "/clients/{key}", "clients.edit", tags=["clients"], responses=WRITES,
           summary="Archive a client (kept with its history); `purge=true` deletes one with no history")  # fmt: skip
    async def archive_client(
        key: KeyPath,
        principal: Editor,
        purge: Annotated[bool, Query(description="Delete it: only a client with no history at all.")] = False,
    ) -> dict[str, Any]:
        return await run_in_threadpool(principal.act, changes.archive_client, db(), key, purge)

    @route("POST", "/clients/{key}/restore", "clients.edit", tags=["clients"], responses=WRITES,
           summary="Bring an archived client back into the lists")  # fmt: skip
    async def restore_client(key: KeyPath, principal: Editor) -> JSONResponse:
        return tagged(await run_in_threadpool(principal.act, changes.restore_client, db(), key))

    # ------------------------------------------------------------------------------ inventory

    inventory = ("contacts", "sites", "devices", "accounts", "backup_jobs", "mapping_rules")
    object_routes(api, router, inventory, "inventory.edit", "inventory")
    Inventory = api.principal("inventory.edit")

    def job_answer(action: str) -> Callable[..., Any]:
        async def answer(key: KeyPath, principal: Inventory) -> JSONResponse:
            return tagged(await run_in_threadpool(principal.act, objects.set_job_status, db(), key, action))

        return answer

    for action, summary in (
        ("activate", "Activate a backup job: Tenure watches it (a pending job waits for this)"),
        ("pause", "Pause a backup job: results recorded, nothing ticketed or missed"),
        ("retire", "Retire a backup job: no longer expected"),
    ):
        route("POST", f"/backup-jobs/{{key}}/{action}", "inventory.edit", tags=["inventory"], responses=WRITES,
              name=f"{action}_backup_job", summary=summary)(job_answer(action))  # fmt: skip

    return router
