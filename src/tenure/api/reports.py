"""REST API v1: reports."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from tenure.api.common import (
    PERIOD,
    Api,
)
from tenure.triage.report import unpaid_report


class UnpaidClient(BaseModel):
    model_config = ConfigDict(extra="allow")

    client: str
    alerts: int
    suppressed: int
    minutes_avoided: int
    reached_a_person: int
    unpaid_minutes: int
    minutes_written_off: int
    uncovered_services: list[str]
    would_cover: dict[str, Any] | None


class UnpaidReport(BaseModel):
    period: str
    minutes_per_alert: int
    clients: list[UnpaidClient]
    totals: dict[str, int]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, Read = api.db, api.principal("read")

    @route("GET", "/reports/unpaid", "read", tags=["reports"], response_model=UnpaidReport)
    def unpaid(_: Read, period: Annotated[str, Query(pattern=PERIOD, description="YYYY-MM")]) -> dict[str, Any]:
        """The unpaid-work report (DOMAIN.md) for one month."""
        return unpaid_report(db(), period)

    return router
