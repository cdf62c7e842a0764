"""Pages behind signed links (`/n/<token>`) and the maintenance calendar feeds (`/calendar/<token>.ics`).

Open (no account, no API token): the signed token is the credential. Pages are server-rendered HTML with
inline styles and no external assets; they are never cached or indexed and send no referrer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from tenure.api.problems import html_response
from tenure.api.problems import responses as problem_responses
from tenure.db.engine import Database
from tenure.maintenance.ical import feed
from tenure.notices.links import LinkInvalid
from tenure.notices.pages import open_link, submit_link
from tenure.notices.render import Page, render_page

MAX_FORM = 16 * 1024
HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise HTTPException(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items() if values}


def _html(page: Page) -> HTMLResponse:
    return HTMLResponse(render_page(page), status_code=page.status, headers=HEADERS)


# what a link's page answers besides 200: a page for the person who opened it (notices/pages.py)
LINK_PAGES: dict[int | str, dict[str, Any]] = {
    400: html_response("Not a valid link (cut in two by a mail program, or tampered with): an HTML page."),
    404: html_response("What the link was for is no longer on the list: an HTML page."),
    409: html_response("The link was answered already: an HTML page saying when and how."),
    410: html_response("The link has expired: an HTML page."),
}


def notices_router(database: Callable[[], Database]) -> APIRouter:
    """The router, given how the app finds its database (`create_app`'s own `db()`)."""
    router = APIRouter(tags=["notices"])

    @router.get(
        "/n/{token}", response_class=HTMLResponse, summary="The page behind a signed link", responses=LINK_PAGES
    )
    def link_page(token: str) -> HTMLResponse:
        return _html(open_link(database(), token))

    @router.post(
        "/n/{token}",
        response_class=HTMLResponse,
        summary="Answer a signed link",
        responses={**LINK_PAGES, **problem_responses(413, descriptions={413: "The form is larger than 16 KiB."})},
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
            }
        },
    )
    def link_answer(token: str, form: dict[str, str] = Depends(_form)) -> HTMLResponse:
        return _html(submit_link(database(), token, form))

    @router.get(
        "/calendar/{token}.ics",
        summary="Maintenance calendar (iCalendar) of a client or a technician",
        response_class=Response,
        responses={
            200: {"content": {"text/calendar": {}}},
            **problem_responses(404, descriptions={404: "No calendar at this address (an unknown or altered token)."}),
        },
    )
    def calendar(token: str) -> Response:
        try:
            body = feed(database(), token)
        except LinkInvalid:
            raise HTTPException(404, "no calendar at this address") from None
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Cache-Control": "private, max-age=300",
                "Content-Disposition": 'inline; filename="maintenance.ics"',
            },
        )

    return router
