"""The outbox page (/settings/outbox): mail sent, waiting and failed; sending again.

Every staff role reads the outbox (invoice mails and reminders included: billing.mailing records them as
notices like any other); who may `outbox.send` sends a failed message again, a waiting one now, or what is
due now. The same service functions as `tenure notices list|show|retry|send` and `/api/v1/outbox`.
"""

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.db.engine import Database
from tenure.db.paging import Page
from tenure.errors import Conflict, NotFound
from tenure.notices import outbox
from tenure.notices import service as notices
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, redirect, safe_next, show

PERMISSION = "outbox.send"
HERE = "/settings/outbox"

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", HERE, "read"),
    ("GET", HERE + "/{notice}", "read"),
    ("POST", HERE + "/{notice}/retry", PERMISSION),
    ("POST", HERE + "/send", PERMISSION),
]

State = Literal["waiting", "sending", "sent", "failed", "kept"]  # outbox.STATES
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID)]


def back_to(request: Request) -> str:
    """Where a form returns: the list as it was filtered (its `back` field), else the outbox."""
    target = safe_next(str(request.state.form.get("back") or "") or None)
    return target if target.startswith(HERE) else HERE


def sent_words(report: outbox.SendReport) -> str:
    return (
        f"{report.count('sent')} sent, {report.count('failed')} failed, "
        f"{report.count('waiting')} to be tried again later, {report.count('kept')} kept (no recipient)"
    )


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]
    Sender = Annotated[Who, Depends(gate.form(PERMISSION))]

    @router.get(HERE, response_class=HTMLResponse)
    def messages(
        request: Request,
        who: Read,
        state: State | None = None,
        client: Annotated[str, Query(max_length=100)] = "",
        kind: Annotated[str, Query(max_length=30)] = "",
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        client, kind = client.strip(), kind.strip()
        problem = None
        try:
            found = notices.outbox_page(db(), state, client or None, kind or None, PAGE_SIZE, offset)
        except NotFound as exc:  # a client key mistyped in the filter: say so on the page, not a 404
            problem, found = str(exc), Page([], 0, True, PAGE_SIZE, 0)
        return show(
            request, who, "outbox.html", page=found, state=state, client=client, kind=kind, problem=problem,
            state_counts=notices.outbox_counts(db()), states=outbox.STATES,
            back=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        )  # fmt: skip

    @router.get(HERE + "/{notice}", response_class=HTMLResponse)
    def message(request: Request, notice: NoticeId, who: Read) -> HTMLResponse:
        return show(request, who, "outbox_message.html", message=notices.show_notice(db(), notice),
                    back=request.url.path)  # fmt: skip

    @router.post(HERE + "/send")
    def send(request: Request, who: Sender) -> Response:
        report = who[0].act(outbox.send_due, db())
        if report.waiting_because:
            return redirect(back_to(request), f"nothing was sent: {report.waiting_because}", error=True)
        return redirect(back_to(request), sent_words(report), error=bool(report.count("failed")))

    @router.post(HERE + "/{notice}/retry")
    def retry(request: Request, notice: NoticeId, who: Sender) -> Response:
        try:
            who[0].act(outbox.requeue, db(), notice)  # NotFound: the 404 page
        except Conflict as exc:
            return redirect(back_to(request), str(exc), error=True)
        return redirect(
            back_to(request), f"message #{notice} goes out with the next send (the worker sends every few seconds)"
        )

    return router
