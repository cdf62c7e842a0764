"""REST API v1: finding things by what a person would type (the pages' search box answers the same)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tenure import search
from tenure.api.common import Api


class Hit(BaseModel):
    kind: Literal["client", "contact", "device", "invoice", "ticket", "alert"]
    label: str = Field(description="What was found, as a person names it (a client's name, a hostname, ...).")
    detail: str = Field(description="Which client it belongs to, its state.")
    page: str = Field(description="The page (path) that shows it.")


class Found(BaseModel):
    query: str
    hits: list[Hit]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, Read = api.db, api.principal("read")

    @route("GET", "/search", "read", tags=["search"], response_model=Found)
    def find(
        _: Read,
        q: Annotated[
            str,
            Query(
                min_length=1,
                max_length=search.MAX_QUERY,
                description="Part of a client's or contact's name, the start of a hostname or an invoice "
                "number, a ticket or alert number (`#42`).",
            ),
        ],
    ) -> dict[str, Any]:
        """Clients, contacts, devices, invoices, tickets and alerts matching `q`, a few of each kind."""
        return {"query": q, "hits": search.find(db(), q)}

    return router
