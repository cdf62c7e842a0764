"""REST API v1: the outbox: mail sent, waiting and failed, and sending it again.

Every notice Tenure records (balance notices, maintenance lists, invoice mails and reminders, statements, …)
waits in the outbox until the worker sends it over SMTP (notices/outbox.py). The same service functions as
`tenure notices list|show|send|retry`.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from tenure.api.common import MAX_ID, NOT_FOUND, WRITES, Api, ClientKey, Count, Limit, Offset, PageMeta, page
from tenure.notices import outbox
from tenure.notices import service as notices

State = Literal["waiting", "sending", "sent", "failed", "kept"]  # outbox.STATES
Kind = Annotated[
    str | None,
    Query(min_length=1, max_length=30, pattern=r"^[a-z_]+$", description="A kind: invoice, low_balance, quote, …"),
]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID, description="The message's id (the notice's).")]


class OutboxMessage(BaseModel):
    id: int
    kind: str = Field(description="What it is: invoice, invoice_reminder, statement, low_balance, quote, …")
    client: str | None = Field(description="The client's key (none for mail only to staff).")
    to: list[str]
    cc: list[str] = []
    subject: str
    state: State = Field(
        description="`waiting` to be sent (again), `sending` now, `sent`, `failed` for good, "
        "`kept` on record unsent (no recipient)."
    )
    attempts: int = Field(description="Attempts to send it so far.")
    error: str | None = Field(description="The last attempt's error (or a note on a sent one).")
    created_at: str
    sent_at: str | None
    next_attempt_at: str | None = Field(description="When a waiting message is tried next (none: at once).")
    message_id: str | None = Field(description="Fixed at the first attempt, the same on every retry.")
    invoice: str | None = Field(None, description="The invoice an invoice mail or reminder is for.")


class OutboxMessageFull(OutboxMessage):
    body_text: str = Field(description="The text the message carries (its HTML version has the same words).")
    preview: bool = Field(description="Not rendered for sending yet: the text is a preview from its template.")


class OutboxPage(PageMeta):
    messages: list[OutboxMessage]


class SendOut(BaseModel):
    sent: int = Field(description="Accepted by the SMTP server in this round.")
    failed: int = Field(description="Failed for good in this round (refused, or out of attempts).")
    waiting: int = Field(description="Tried in this round and waiting to be tried again later.")
    kept: int = Field(description="With no recipient: kept on record unsent.")
    waiting_because: str | None = Field(description="Why nothing was sent at all (mail is not configured).")
    messages: list[dict[str, Any]] = Field(description="Each message tried: notice, state, attempts, error.")


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db = api.db
    Read = api.principal("read")
    Sender = api.principal("outbox.send")

    @route("GET", "/outbox", "read", tags=["outbox"], response_model=OutboxPage, responses=NOT_FOUND,
           summary="Mail sent, waiting and failed, newest first")  # fmt: skip
    def messages(
        _: Read,
        state: State | None = None,
        client: ClientKey = None,
        kind: Kind = None,
        limit: Limit = 50,
        offset: Offset = 0,
        count: Count = "capped",
    ) -> dict[str, Any]:
        found = notices.outbox_page(db(), state, client, kind, limit, offset, exact=count == "exact")
        return page("messages", found)

    @route("POST", "/outbox/send", "outbox.send", tags=["outbox"], response_model=SendOut,
           summary="Send what is due now (what the worker does every few seconds)")  # fmt: skip
    def send(principal: Sender) -> dict[str, Any]:
        report = principal.act(outbox.send_due, db())
        shown = report.as_json()
        return {
            "sent": shown["sent"],
            "failed": shown["failed"],
            "waiting": shown["retrying"],
            "kept": shown["kept"],
            "waiting_because": shown["waiting_because"],
            "messages": shown["notices"],
        }

    @route("GET", "/outbox/{notice}", "read", tags=["outbox"], response_model=OutboxMessageFull,
           responses=NOT_FOUND, summary="A message with its text (a preview if it has not gone out yet)")  # fmt: skip
    def message(notice: NoticeId, _: Read) -> dict[str, Any]:
        return notices.show_notice(db(), notice)

    @route("POST", "/outbox/{notice}/retry", "outbox.send", tags=["outbox"], response_model=OutboxMessage,
           responses=WRITES, summary="Send a failed message again, or a waiting one now (409 once sent)")  # fmt: skip
    def retry(notice: NoticeId, principal: Sender) -> dict[str, Any]:
        principal.act(outbox.requeue, db(), notice)
        return notices.outbox_message(db(), notice)

    return router
