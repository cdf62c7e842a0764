"""REST API v1: the MSP's settings (`/msp`), its catalog of offers (`/catalog`) and every client's intake
mapping rules (`/mapping-rules`), in the shape of the book's `msp:` and `clients[].mapping_rules`."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tenure.api.common import KEY, MAX_ID, NOT_FOUND, WRITES, Api, new_router
from tenure.api.objects import IfMatch, tagged
from tenure.book import objects, schema
from tenure.msp import changes

Fields = Annotated[dict[str, Any], Body(description="Only the fields that change, in the book's shape.")]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(min_length=1, max_length=100, pattern=KEY, description="The client it places alerts on.")
    field: str = Field(description="sender, sender_domain, hostname, subject or label:NAME.")
    pattern: str = Field(min_length=1, max_length=500)


def router(api: Api) -> APIRouter:
    router = new_router()
    db = api.db
    Read = api.principal("read")
    Owner = api.principal("settings.edit")
    Inventory = api.principal("inventory.edit")
    OfferPath = Annotated[str, Path(max_length=100, pattern=KEY, description="The offer's key.")]

    @api.route(router, "GET", "/msp", "read", tags=["settings"], responses=NOT_FOUND, summary="The MSP's settings")
    def settings(_: Read) -> JSONResponse:
        return tagged(changes.get_settings(db()))

    @api.route(router, "PATCH", "/msp", "settings.edit", tags=["settings"], responses=WRITES,
               summary="Change the MSP's settings: only those sent (a new rate re-prices unbilled work)")  # fmt: skip
    async def edit_settings(body: Fields, principal: Owner, if_match: IfMatch = None) -> JSONResponse:
        return tagged(await run_in_threadpool(principal.act, changes.edit_settings, db(), body, if_match))

    @api.route(router, "GET", "/catalog", "read", tags=["settings"], summary="The offers `report fit` replays")
    def catalog(_: Read) -> list[dict[str, Any]]:
        return changes.list_offers(db())

    @api.route(router, "POST", "/catalog", "settings.edit", tags=["settings"], status_code=201, responses=WRITES,
               summary="Add an offer to the catalog")  # fmt: skip
    async def add_offer(body: schema.CatalogOffer, principal: Owner) -> JSONResponse:
        data = body.model_dump(mode="json", exclude_unset=True)
        return tagged(await run_in_threadpool(principal.act, changes.add_offer, db(), data), 201)

    @api.route(router, "GET", "/catalog/{key}", "read", tags=["settings"], responses=NOT_FOUND, summary="An offer")
    def offer(key: OfferPath, _: Read) -> JSONResponse:
        return tagged(changes.get_offer(db(), key))

    @api.route(router, "PATCH", "/catalog/{key}", "settings.edit", tags=["settings"], responses=WRITES,
               summary="Change an offer: only the fields sent")  # fmt: skip
    async def edit_offer(key: OfferPath, body: Fields, principal: Owner, if_match: IfMatch = None) -> JSONResponse:
        return tagged(await run_in_threadpool(principal.act, changes.edit_offer, db(), key, body, if_match))

    @api.route(router, "DELETE", "/catalog/{key}", "settings.edit", tags=["settings"], responses=WRITES,
               summary="Remove an offer (only a proposal: nothing was billed from it)")  # fmt: skip
    async def remove_offer(key: OfferPath, principal: Owner) -> dict[str, Any]:
        return await run_in_threadpool(principal.act, changes.remove_offer, db(), key)

    @api.route(router, "GET", "/mapping-rules", "read", tags=["inventory"],
               summary="Every client's intake mapping rules (they outrank hostnames and domains)")  # fmt: skip
    def rules(_: Read) -> list[dict[str, Any]]:
        return objects.list_all(db(), "mapping_rules")

    @api.route(router, "POST", "/mapping-rules", "inventory.edit", tags=["inventory"], status_code=201,
               responses=WRITES, summary="A rule that places alerts on a client")  # fmt: skip
    async def add_rule(body: RuleIn, principal: Inventory) -> JSONResponse:
        shape = {"field": body.field, "pattern": body.pattern}
        made = await run_in_threadpool(principal.act, objects.create_item, db(), body.client, "mapping_rules", shape)
        return tagged({"client": body.client, **made}, 201)

    @api.route(router, "DELETE", "/mapping-rules/{rule}", "inventory.edit", tags=["inventory"], responses=WRITES,
               summary="Remove a mapping rule")  # fmt: skip
    async def remove_rule(rule: Annotated[int, Path(ge=1, le=MAX_ID)], principal: Inventory) -> dict[str, Any]:
        client = objects.owner_of(db(), "mapping_rules", str(rule))
        return await run_in_threadpool(principal.act, objects.remove_item, db(), client, "mapping_rules", str(rule))

    return router
