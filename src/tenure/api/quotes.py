"""REST API v1: a quote on a ticket, mailed to the client's primary contact with signed Approve / Decline
links (desk/mail/quotes.py). The client answers through the links, without an account."""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from tenure.accounts.users import Principal
from tenure.api.common import MAX_ID, TEXT, WRITES, Api
from tenure.desk.mail.quotes import write_quote


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, le=10_000_000, decimal_places=2, description="The price, e.g. `\"150.00\"`.")
    description: str = Field(min_length=1, max_length=2000, pattern=TEXT, description="The work it is for.")


class QuoteOut(BaseModel):
    ticket: int
    quote: int = Field(description="The quote's notice (`tenure notices show`).")
    status: str = Field(description="The ticket's status: `awaiting_approval` until the client answers.")
    amount: str
    description: str
    to: list[str] = Field(description="Who it goes to: the client's primary contact.")
    state: str = Field(description="The mail's state: `waiting` for the outbox, or `kept` with no address.")
    subject: str


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, require = api.db, api.require

    @route("POST", "/tickets/{ticket}/quote", "tickets.work", tags=["tickets"], status_code=201,
           response_model=QuoteOut, responses=WRITES,
           summary="Quote work on a ticket: mailed to the client with Approve / Decline links")  # fmt: skip
    def quote(
        ticket: Annotated[int, Path(ge=1, le=MAX_ID, description="The ticket's number.")],
        body: QuoteIn,
        principal: Annotated[Principal, Depends(require("tickets.work"))],
    ) -> dict[str, Any]:
        author = principal.username or principal.token_name
        return principal.act(write_quote, db(), ticket, body.amount, body.description, author)

    return router
