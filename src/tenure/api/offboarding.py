"""REST API v1: offboarding runs and their steps."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from tenure.api.common import (
    MAX_ID,
    NOT_FOUND,
    Api,
    ClientKey,
    Limit,
    Offset,
    PageMeta,
    page,
)
from tenure.web import queries


class RunOut(BaseModel):
    run: int
    client: str
    state: str
    end_of_service: str
    reason: str | None
    created_at: str
    completed_at: str | None
    steps: int
    counts: dict[str, int]


class RunPage(PageMeta):
    runs: list[RunOut]


class StepOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str
    phase: int
    title: str
    kind: str
    depends_on: list[str]
    target: dict[str, Any]
    instructions: str | None
    action: str | None
    state: str
    attempts: int
    not_before: str | None
    waiting_on: str | None
    error: str | None
    note: str | None
    done_by: str | None
    done_at: str | None
    result: dict[str, Any]
    attempt_log: list[dict[str, Any]] = []


class RunDetail(RunOut):
    answers: dict[str, Any]
    waiting_on: list[str]
    phases: dict[str, str]
    step_list: list[StepOut]


class StepsOut(BaseModel):
    run: int
    steps: list[StepOut]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, Read = api.db, api.principal("read")

    @route("GET", "/offboarding/runs", "read", tags=["offboarding"], response_model=RunPage, responses=NOT_FOUND)
    def runs(
        _: Read,
        client: ClientKey = None,
        state: Literal["planned", "running", "waiting", "done", "failed"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Offboarding runs, newest first, with their steps counted by state."""
        return page("runs", queries.runs_page(db(), client, state, limit, offset))

    @route(
        "GET", "/offboarding/runs/{run}", "read", tags=["offboarding"], response_model=RunDetail, responses=NOT_FOUND
    )
    def run(run: Annotated[int, Path(ge=1, le=MAX_ID)], _: Read) -> dict[str, Any]:
        """A run with every step, its state, and each attempt."""
        return queries.run_detail(db(), run)

    @route(
        "GET",
        "/offboarding/runs/{run}/steps",
        "read",
        tags=["offboarding"],
        response_model=StepsOut,
        responses=NOT_FOUND,
    )
    def steps(
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        _: Read,
        phase: Annotated[int | None, Query(ge=1, le=7)] = None,
        state: Literal["pending", "running", "waiting", "done", "skipped", "failed"] | None = None,
    ) -> dict[str, Any]:
        """A run's steps (filtered by phase or state), each with its attempts."""
        detail = queries.run_detail(db(), run)
        chosen = [
            st
            for st in detail["step_list"]
            if (phase is None or st["phase"] == phase) and (state is None or st["state"] == state)
        ]
        return {"run": run, "steps": chosen}

    return router
