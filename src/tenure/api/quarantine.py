"""REST API v1: payloads waiting in quarantine with their reason, and replaying them.

What waits is what intake could not read, or read and matched to no client (`intake/service.py`); an
unmatched payload's alerts come with the fields a mapping rule (`/mapping-rules`) could match, so a script
can write the rule and replay, as `tenure intake replay [ID…]` does.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from tenure.api.common import MAX_ID, Api, Decision, Limit, Offset, PageMeta, page
from tenure.intake import service
from tenure.web import queries


class SuggestedRule(BaseModel):
    field: str
    pattern: str


class WaitingAlert(BaseModel):
    title: str
    status: str
    service: str
    fields: dict[str, str] = Field(
        description="What a mapping rule could match, by the rule's field names: hostname, sender, "
        "sender_domain, subject, label:NAME."
    )
    suggested: SuggestedRule | None = Field(description="The rule a person would most likely write for it.")
    matches_now: str | None = Field(description="The client the rules as they stand place it on: replay it.")


class WaitingPayload(BaseModel):
    payload: int
    source: str
    received_at: str
    kind: str = Field(description="unmatched (no client matched), unreadable, or failed (refused on the way in).")
    reason: str
    bytes: int
    alert_count: int = Field(description="Alerts it holds (0 when it cannot be read).")
    alerts: list[WaitingAlert] = Field(description=f"The first {service.ALERTS_SHOWN} of them.")


class QuarantinePage(PageMeta):
    quarantined: list[WaitingPayload]


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payloads: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, max_length=5000, description="The payloads to process again; absent: everything waiting."
    )


class ReplayOut(BaseModel):
    decisions: list[Decision]
    placed: int = Field(description="Alerts now placed on a client (each with its triage decision).")
    waiting: int = Field(description="Payloads still waiting in quarantine, in all.")


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db = api.db
    Read = api.principal("read")
    Inventory = api.principal("inventory.edit")

    @route("GET", "/quarantine", "read", tags=["intake"], response_model=QuarantinePage,
           summary="What waits in quarantine and why, oldest first")  # fmt: skip
    def waiting(_: Read, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        items, total = service.quarantine_page(db(), limit, offset)
        return page("quarantined", queries.Page(items, total, True, limit, offset))

    @route("POST", "/quarantine/replay", "inventory.edit", tags=["intake"], response_model=ReplayOut,
           summary="Process quarantined payloads again (after a mapping rule or a parser fix)")  # fmt: skip
    async def replay(principal: Inventory, body: Annotated[ReplayIn | None, Body()] = None) -> dict[str, Any]:
        # none named: everything waiting; an empty list names nothing (a script's filter that found nothing)
        named = body.payloads if body is not None else None
        outcomes = await run_in_threadpool(principal.act, service.replay, db(), named)
        return {
            "decisions": [o.as_json() for o in outcomes],
            "placed": sum(1 for o in outcomes if o.client),
            "waiting": await run_in_threadpool(service.quarantine_count, db()),
        }

    return router
