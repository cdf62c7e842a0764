"""REST API v1: alerts with their decisions."""

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from tenure.api.common import (
    NOT_FOUND,
    Api,
    BigLimit,
    ClientKey,
    Count,
    Offset,
    PageMeta,
    page,
)
from tenure.web import queries


class AlertOut(BaseModel):
    alert: int
    client: str | None
    device: str | None
    fingerprint: str
    decision: str
    ticket: int | None
    reason: str
    status: str
    service: str
    title: str
    count: int
    first_seen: str
    last_seen: str


class AlertPage(PageMeta):
    alerts: list[AlertOut]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, Read = api.db, api.principal("read")

    @route("GET", "/alerts", "read", tags=["alerts"], response_model=AlertPage, responses=NOT_FOUND)
    def alerts(
        _: Read,
        client: ClientKey = None,
        decision: Literal["ticket", "quote", "forward", "suppress", "orphaned", "pending"] | None = None,
        status: Literal["firing", "resolved"] | None = None,
        limit: BigLimit = 100,
        offset: Offset = 0,
        count: Count = "capped",
    ) -> dict[str, Any]:
        """Alerts with their decisions, newest first."""
        return page("alerts", queries.alerts_page(db(), client, decision, status, limit, offset, count == "exact"))

    return router
