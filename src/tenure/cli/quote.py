"""`tenure ticket quote N --amount A --description T`: a quote the client approves or declines by mail
(desk/mail/quotes.py). Registered onto `ticket_app` (cli/intake.py) by cli/main.py."""

from __future__ import annotations

from typing import Annotated

import typer

from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, err, out, print_json
from tenure.cli.intake import ticket_app


@ticket_app.command("quote")
def quote(
    number: Annotated[int, typer.Argument(help="The ticket's number.", min=1, show_default=False)],
    amount: Annotated[str, typer.Option(help="The price, e.g. 150.00.", show_default=False)],
    description: Annotated[str, typer.Option(help="The work the price is for.", show_default=False)],
    author: Annotated[str | None, typer.Option(help="Who quotes (default: you).", show_default=False)] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Quote work on a ticket: mailed to the client's primary contact with signed Approve / Decline links;
    the ticket waits in awaiting_approval until the client answers."""
    apply_now(now)
    from tenure.desk.mail.quotes import write_quote  # here: it brings the mail stack, which `ticket list` does not need

    result = write_quote(db(), number, amount, description, author)
    if json_:
        print_json(result)
        return
    to = ", ".join(result["to"]) or "nobody (no contact with an e-mail address: kept on record)"
    out.print(f"quote {result['amount']} on ticket #{number} for {to}: {result['description']}", markup=False)
    if result["state"] == "waiting":
        err.print("it goes out with the outbox (`tenure notices send`, or the worker)")
