"""`tenure ticket open|show|assign|note|status|close|reopen`: tickets people work (desk.service).

Registered onto `ticket_app` (cli/intake.py, which keeps `ticket list`) by cli/main.py. Each command prints the
ticket (or with `--json` exactly the ticket's JSON document, INTERFACE.md "Tickets").
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, out, print_json
from tenure.cli.intake import ticket_app
from tenure.vocabulary import TICKET_KINDS, TICKET_PRIORITIES, TICKET_STATUSES

Number = Annotated[int, typer.Argument(help="The ticket's number.", min=1, show_default=False)]
NoteOpt = Annotated[str | None, typer.Option("--note", help="An internal note saying why.", show_default=False)]


def _desk() -> Any:
    """The desk's service, imported when one of these commands runs, not when `ticket list` does."""
    from tenure.desk import service

    return service


def _paid(portions: list[dict[str, Any]]) -> str:
    words = [
        f"{p['minutes']} min {p['layer']}"
        + (f" ({p['block'] or p['agreement']})" if p.get("block") or p.get("agreement") else "")
        + (f" at {p['rate']}/h" if p.get("rate") else "")
        for p in portions
    ]
    return "; ".join(words) or "not yet allocated"


def _print(ticket: dict[str, Any], json_: bool, done: str | None = None) -> None:
    if json_:
        print_json(ticket)
        return
    if done:
        out.print(done)
    t = ticket
    due = f"due {t['due_at'][:16].replace('T', ' ')}" if t.get("due_at") else "no due time"
    breach = f"  BREACHED ({t['breach']} target)" if t.get("breached") else ""
    out.print(f"#{t['ticket']} {t['title']}", markup=False)
    out.print(
        f"  {t['client']}{' / ' + t['device'] if t.get('device') else ''} · {t['kind']} · {t['priority']} · "
        f"{t['status']} · {t['assignee'] or 'unassigned'} · {due}{breach}",
        markup=False,
    )
    opener = f" by {t['opened_by']}" if t.get("opened_by") else ""
    out.print(f"  opened {t['opened_at'][:16].replace('T', ' ')}{opener} · {t['minutes']} min logged"
              + (" · billable" if t["billable"] else ""), markup=False)  # fmt: skip
    if t.get("description"):
        out.print(f"  {t['description']}", markup=False)
    for entry in t.get("time", []):
        out.print(f"  time {entry['date']}: {entry['minutes']} min {entry['work_type']} "
                  f"({entry['technician'] or '-'}): {_paid(entry['paid_by'])}", markup=False)  # fmt: skip
    for n in t.get("notes", []):
        out.print(f"  [{n['at'][:16].replace('T', ' ')}] {n['author']} ({'public' if n['public'] else 'internal'}): "
                  f"{n['text']}", markup=False)  # fmt: skip


@ticket_app.command("open")
def open_(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    title: Annotated[str, typer.Option(help="What it is about (one line).", show_default=False)],
    device: Annotated[str | None, typer.Option(help="The device's key or hostname.", show_default=False)] = None,
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(TICKET_KINDS)}.")] = "incident",
    priority: Annotated[str, typer.Option(help=f"One of {', '.join(TICKET_PRIORITIES)}.")] = "P3",
    description: Annotated[str | None, typer.Option(help="The details.", show_default=False)] = None,
    assignee: Annotated[str | None, typer.Option(help="A user's name.", show_default=False)] = None,
    billable: Annotated[bool, typer.Option("--billable", help="The client pays for it whatever it covers.")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Open a ticket by hand (a phone call): its due times follow the MSP's targets."""
    apply_now(now)
    ticket = _desk().open_ticket(
        db(), client, title, kind=kind, priority=priority, device=device, description=description,
        assignee=assignee, billable=billable,
    )  # fmt: skip
    _print(ticket, json_, f"opened ticket #{ticket['ticket']}")


@ticket_app.command("show")
def show(number: Number, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """A ticket: its notes, and the time logged on it with who paid each entry."""
    apply_now(now)
    _print(_desk().ticket_view(db(), number), json_)


@ticket_app.command("assign")
def assign(
    number: Number,
    user: Annotated[str | None, typer.Argument(help="A user's name; leave out with --nobody.")] = None,
    nobody: Annotated[bool, typer.Option("--nobody", help="Unassign it.")] = False,
    note: NoteOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Give the ticket to a user (or to nobody)."""
    apply_now(now)
    if not user and not nobody:
        raise typer.BadParameter("name a user, or say --nobody", param_hint="USER")
    ticket = _desk().assign_ticket(db(), number, None if nobody else user, note)
    _print(ticket, json_, f"ticket #{number} is {ticket['assignee'] or 'unassigned'}'s")


@ticket_app.command("note")
def note(
    number: Number,
    text: Annotated[str, typer.Argument(help="The note.", show_default=False)],
    public: Annotated[bool, typer.Option("--public", help="The client sees it (default: internal).")] = False,
    author: Annotated[str | None, typer.Option(help="Who wrote it (default: you).", show_default=False)] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add a note to a ticket, internal or public."""
    apply_now(now)
    ticket = _desk().add_note(db(), number, text, public, author)
    _print(ticket, json_, f"{'public' if public else 'internal'} note added to ticket #{number}")


@ticket_app.command("status")
def status(
    number: Number,
    to: Annotated[str, typer.Argument(help=f"One of {', '.join(TICKET_STATUSES[1:])}.", show_default=False)],
    note: NoteOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Move a ticket to another status (closing a maintenance ticket records its task as done)."""
    apply_now(now)
    ticket = _desk().change_status(db(), number, to, note)
    _print(ticket, json_, f"ticket #{number} is {ticket['status']}")


@ticket_app.command("close")
def close(number: Number, note: NoteOpt = None, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """Close a ticket (a maintenance ticket's task is recorded as done)."""
    apply_now(now)
    ticket = _desk().close_ticket(db(), number, note)
    _print(ticket, json_, f"ticket #{number} is closed")


@ticket_app.command("reopen")
def reopen(number: Number, note: NoteOpt = None, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """Reopen a closed or resolved ticket: it is in progress again."""
    apply_now(now)
    ticket = _desk().reopen_ticket(db(), number, note)
    _print(ticket, json_, f"ticket #{number} is {ticket['status']} again")
