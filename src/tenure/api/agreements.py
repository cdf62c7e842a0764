"""REST API v1: agreements and prepaid blocks, read across clients (each client's are changed under
`/clients/{key}/agreements|blocks|retainer-deposits`)."""

from datetime import date as Date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tenure import clock
from tenure.api.common import (
    NOT_FOUND,
    Api,
    ClientKey,
    Limit,
    Offset,
    PageMeta,
    page,
)
from tenure.api.objects import object_routes
from tenure.vocabulary import AgreementKind
from tenure.web import queries


class AgreementTerms(BaseModel):
    key: str
    kind: str
    start: str
    end: str | None
    monthly_fee: str | None
    included_minutes: int | None
    overage_rate: str | None
    hourly_rate: str | None
    block_minutes_per_month: int | None
    covers: list[str]
    excludes: list[str]


class AgreementOut(AgreementTerms):
    client: str


class AgreementPage(PageMeta):
    agreements: list[AgreementOut]


class BlockOut(BaseModel):
    key: str
    client: str
    purchased: str
    hours: str
    bonus_hours: str
    price: str
    expires: str | None
    expired: bool
    balance_minutes: int


class BlockPage(PageMeta):
    blocks: list[BlockOut]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, Read = api.db, api.principal("read")

    @route("GET", "/agreements", "read", tags=["agreements"], response_model=AgreementPage, responses=NOT_FOUND)
    def agreements(
        _: Read,
        client: ClientKey = None,
        kind: AgreementKind | None = None,
        active_on: Annotated[Date | None, Query(description="Only agreements active on this day.")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Agreements by key."""
        return page("agreements", queries.agreements_page(db(), client, kind, active_on, limit, offset))

    @route("GET", "/blocks", "read", tags=["agreements"], response_model=BlockPage, responses=NOT_FOUND)
    def blocks(_: Read, client: ClientKey = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        """Prepaid blocks, newest first, with the minutes left on each today."""
        return page("blocks", queries.blocks_page(db(), clock.today(), client, limit, offset))

    object_routes(api, router, ("agreements", "blocks", "retainer_deposits"), "agreements.edit", "agreements")

    return router
