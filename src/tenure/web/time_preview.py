"""Who would pay for time before it is saved: the time form asks `GET /clients/{key}/time/preview` as its
fields change (app.js) and shows the answer beside the button (a former client, work nothing covers)."""

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from tenure.agreements.preview import preview_time
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError
from tenure.web.common import Gate, Who, paid_words, secure_headers

ROUTES: list[tuple[str, str, str | None]] = [("GET", "/clients/{key}/time/preview", "time.log")]


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)

    @router.get("/clients/{key}/time/preview")
    def preview(
        key: str,
        who: Annotated[Who, Depends(gate.page("time.log"))],
        minutes: Annotated[int, Query(ge=1, le=1440)] = 30,
        work_type: Annotated[str, Query(max_length=40)] = "remote_support",
        day: Annotated[date | None, Query()] = None,
    ) -> JSONResponse:
        try:
            found = preview_time(db(), key, minutes, work_type, day)
        except NotFound as exc:
            response = JSONResponse({"problem": str(exc)}, status_code=404)
        except TenureError as exc:
            response = JSONResponse({"problem": str(exc)}, status_code=422)
        else:
            response = JSONResponse(found | {"paid": paid_words(found["portions"])})
        secure_headers(response)
        return response

    return router
