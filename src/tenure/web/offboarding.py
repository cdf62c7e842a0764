"""Offboarding runs: the list, one run by phase, and the answers a person gives a step (done with a note,
retry, approve, skip with a reason) or the whole run (continue: do every step that is due now)."""

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.accounts.users import Principal
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.offboarding import service as offboarding
from tenure.web import queries
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, redirect, show

# a step's answers: (verb, permission, the form field that carries its text)
ANSWERS = (
    ("done", "offboarding.work", "note"),
    ("retry", "offboarding.work", None),
    ("approve", "offboarding.decide", "note"),
    ("skip", "offboarding.decide", "reason"),
)

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/offboarding", "read"),
    ("GET", "/offboarding/{run}", "read"),
    *[("POST", f"/offboarding/{{run}}/{verb}", permission) for verb, permission, _ in ANSWERS],
    ("POST", "/offboarding/{run}/continue", "offboarding.work"),
]


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]

    @router.get("/offboarding", response_class=HTMLResponse)
    def runs(
        request: Request,
        who: Read,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        return show(request, who, "runs.html", page=queries.runs_page(db(), limit=PAGE_SIZE, offset=offset))

    @router.get("/offboarding/{run}", response_class=HTMLResponse)
    def run(
        request: Request,
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Read,
        phase: Annotated[int | None, Query(ge=1, le=7)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        return show(request, who, "run.html", run=queries.run_page(db(), run, phase, offset))

    def answer(run: int, verb: str, who: Principal, step: str, text: str | None) -> Response:
        back = f"/offboarding/{run}"
        try:
            _, message = who.act(offboarding.answer, db(), verb, queries.run_client(db(), run), step, text)
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back + f"#step-{quote(step)}", message)

    def step_answer(verb: str, permission: str, field: str | None) -> Callable[..., Response]:
        def endpoint(
            run: Annotated[int, Path(ge=1, le=MAX_ID)],
            who: Annotated[Who, Depends(gate.form(permission))],
            step: Annotated[str, Form(max_length=200)],
            note: Annotated[str, Form(max_length=2000)] = "",
            reason: Annotated[str, Form(max_length=2000)] = "",
        ) -> Response:
            text = {"note": note, "reason": reason}.get(field or "", "").strip() or None
            return answer(run, verb, who[0], step, text)

        endpoint.__name__ = f"offboarding_{verb}"
        return endpoint

    for verb, permission, field in ANSWERS:
        router.post(f"/offboarding/{{run}}/{verb}")(step_answer(verb, permission, field))

    @router.post("/offboarding/{run}/continue")
    def run_continue(
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Annotated[Who, Depends(gate.form("offboarding.work"))],
    ) -> Response:
        back = f"/offboarding/{run}"
        try:
            status = who[0].act(offboarding.apply, db(), queries.run_client(db(), run), None)
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back, f"ran {status['ran']} step(s); the run is {status['state']}")

    return router
