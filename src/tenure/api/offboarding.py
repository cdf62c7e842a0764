"""REST API v1: offboarding runs and their steps."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

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
from tenure.offboarding import service as offboarding
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
    owner: str | None = None


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


class StartIn(BaseModel):
    client: Annotated[str, Field(min_length=1, max_length=100)]
    answers: dict[str, Any]
    owner: Annotated[str | None, Field(max_length=200)] = None


class AnswerIn(BaseModel):
    note: Annotated[str | None, Field(max_length=2000)] = None
    reason: Annotated[str | None, Field(max_length=2000)] = None


class ManyIn(AnswerIn):
    keys: Annotated[list[Annotated[str, Field(max_length=200)]] | None, Field(max_length=100_000)] = None
    device: Annotated[str | None, Field(max_length=200)] = None
    phase: Annotated[int | None, Field(ge=1, le=7)] = None


class AssignIn(BaseModel):
    keys: Annotated[list[Annotated[str, Field(max_length=200)]] | None, Field(max_length=100_000)] = None
    device: Annotated[str | None, Field(max_length=200)] = None
    phase: Annotated[int | None, Field(ge=1, le=7)] = None
    assignee: Annotated[str | None, Field(max_length=200)] = None


# a step's answers over the API and who may give them
VERBS = (
    ("approve", "offboarding.decide"),
    ("done", "offboarding.work"),
    ("skip", "offboarding.decide"),
    ("retry", "offboarding.work"),
)


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

    def principal_for(permission: str) -> Any:
        return api.principal(permission)

    @route(
        "POST",
        "/offboarding/runs",
        "offboarding.decide",
        tags=["offboarding"],
        status_code=201,
        responses=NOT_FOUND,
        summary="Start a client's offboarding run from its answers",
    )
    def start_run(body: StartIn, who: principal_for("offboarding.decide")) -> dict[str, Any]:  # type: ignore[valid-type]
        """Starts the run (the answers as the answers file has them; a refusal names each field as
        `answers.<field>`), then does every step due now, as `tenure offboard apply`."""
        status = who.act(offboarding.start, db(), body.client, body.answers, body.owner)
        return {key: value for key, value in status.items() if key != "steps"} | {
            "steps": [
                {name: st.get(name) for name in ("key", "phase", "kind", "state", "not_before", "assignee")}
                for st in status["steps"]
            ]
        }

    def step_answer(verb: str, permission: str) -> Callable[..., dict[str, Any]]:
        def answer(
            run: Annotated[int, Path(ge=1, le=MAX_ID)],
            key: Annotated[str, Path(min_length=1, max_length=200)],
            who: principal_for(permission),  # type: ignore[valid-type]
            body: AnswerIn | None = None,
        ) -> dict[str, Any]:
            text = (body.note or body.reason) if body else None
            return who.act(offboarding.answer_run, db(), verb, run, key, text)

        answer.__name__ = f"offboarding_step_{verb}"
        return answer

    for verb, permission in VERBS:
        route(
            "POST",
            f"/offboarding/runs/{{run}}/steps/{{key}}/{verb}",
            permission,
            tags=["offboarding"],
            responses=NOT_FOUND,
            summary=f"{verb.capitalize()} one step of a run",
        )(step_answer(verb, permission))

    def many(verb: str, permission: str) -> Callable[..., dict[str, Any]]:
        def answer_many(
            run: Annotated[int, Path(ge=1, le=MAX_ID)], body: ManyIn, who: principal_for(permission)  # type: ignore[valid-type]
        ) -> dict[str, Any]:
            chosen = offboarding.Selection(tuple(body.keys or ()), body.device, body.phase)
            return who.act(offboarding.bulk, db(), verb, run, chosen, body.note or body.reason)

        answer_many.__name__ = f"offboarding_steps_{verb}"
        return answer_many

    for verb, permission in (("done", "offboarding.work"), ("skip", "offboarding.decide")):
        route(
            "POST",
            f"/offboarding/runs/{{run}}/steps/{verb}",
            permission,
            tags=["offboarding"],
            responses=NOT_FOUND,
            summary=f"Many steps of a run {verb} at once: by keys, by device or by phase, with one note",
        )(many(verb, permission))

    @route(
        "POST",
        "/offboarding/runs/{run}/steps/assign",
        "offboarding.work",
        tags=["offboarding"],
        responses=NOT_FOUND,
        summary="Name who is to do steps of a run: by keys, by device or by phase",
    )
    def assign_steps(
        run: Annotated[int, Path(ge=1, le=MAX_ID)], body: AssignIn, who: principal_for("offboarding.work")  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        chosen = offboarding.Selection(tuple(body.keys or ()), body.device, body.phase)
        return who.act(offboarding.assign, db(), run, chosen, body.assignee)

    return router
