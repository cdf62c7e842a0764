"""`tenure notices …` (the outbox, coverage statements) and `tenure maintenance …` (plans, what is due, the
calendar feeds)."""

from __future__ import annotations

from typing import Annotated

import typer

from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, err, new_table, out, print_json
from tenure.maintenance import service as maintenance
from tenure.notices import outbox
from tenure.notices import service as notices
from tenure.notices.render import hours

notices_app = typer.Typer(help="Notices: mail to clients and staff, sent and waiting.", no_args_is_help=True)
maintenance_app = typer.Typer(help="Proactive maintenance: plans, what is due, calendars.", no_args_is_help=True)
task_app = typer.Typer(help="Edit a maintenance task (a client's own, or the default plan's).", no_args_is_help=True)
maintenance_app.add_typer(task_app, name="task")

ClientOpt = Annotated[str | None, typer.Option("--client", help="Only this client (its key).", show_default=False)]


# ------------------------------------------------------------------------------------------ notices


@notices_app.command("list")
def list_(
    state: Annotated[str | None, typer.Option(help=f"One of {', '.join(outbox.STATES)}.")] = None,
    client: ClientOpt = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind (low_balance, monthly_maintenance, …).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 500,
    json_: JsonOpt = False,
) -> None:
    """What went out and what waits, newest first."""
    rows = notices.list_notices(db(), state, client, kind, limit)
    if json_:
        print_json({"notices": rows})
        return
    table = new_table(title="Notices")
    for column in ("id", "client", "kind", "state", "tries", "to", "subject", "created", "sent / next try"):
        table.add_column(column)
    for n in rows:
        when = n["sent_at"] or (n["not_before"] if n["state"] in ("waiting", "sending") else "") or ""
        table.add_row(
            str(n["id"]),
            n["client"] or "-",
            n["kind"],
            n["state"],
            str(n["attempts"]),
            ", ".join(n["to"]) or "(staff)",
            n["subject"],
            n["created_at"][:16],
            when[:16],
        )
    out.print(table)
    waiting = sum(1 for n in rows if n["state"] == "waiting")
    if waiting and (why := _why_waiting()):
        err.print(f"{waiting} waiting: {why}")


def _why_waiting() -> str | None:
    from tenure.notices.mailer import why_waiting

    return why_waiting()


@notices_app.command("show")
def show(notice: Annotated[int, typer.Argument(help="The notice's id.")], json_: JsonOpt = False) -> None:
    """One notice with its text (a preview from its template if it has not gone out yet)."""
    shown = notices.show_notice(db(), notice)
    if json_:
        print_json(shown)
        return
    out.print(
        f"#{shown['id']} {shown['kind']} [{shown['state']}] to {', '.join(shown['to']) or '(staff)'}", markup=False
    )
    out.print(f"Subject: {shown['subject']}", markup=False)
    if shown.get("error"):
        out.print(f"Error: {shown['error']}", markup=False)
    out.print("")
    out.print(shown["body_text"], markup=False, highlight=False)


@notices_app.command("send")
def send(now: NowOpt = None, json_: JsonOpt = False) -> None:
    """Send the mail that is due now (what the worker does every few seconds)."""
    apply_now(now)
    report = outbox.send_due(db())
    if json_:
        print_json(report.as_json())
        return
    if report.waiting_because:
        err.print(report.waiting_because)
        return
    for r in report.results:
        line = f"#{r.notice}: {r.state}" + (f" ({r.error})" if r.error else "")
        err.print(line, markup=False)
    err.print(
        f"{report.count('sent')} sent, {report.count('waiting')} to retry, {report.count('failed')} failed, "
        f"{report.count('kept')} kept (no recipient)"
    )


@notices_app.command("retry")
def retry(
    notice: Annotated[int, typer.Argument(help="A failed, kept or waiting notice's id.")], json_: JsonOpt = False
) -> None:
    """Send a failed (or kept) notice again, with the same Message-ID; a waiting one with the next send, its
    backoff cut short. A sent one is refused."""
    result = outbox.requeue(db(), notice)
    if json_:
        print_json(result.as_json())
    else:
        err.print(f"#{result.notice} waits to be sent")


@notices_app.command("coverage")
def coverage(
    client: ClientOpt = None,
    again: Annotated[
        bool, typer.Option("--again", help="Write a new statement even if one went out this year.")
    ] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write a dated coverage statement to every client that is not monitored (once a year unless --again)."""
    apply_now(now)
    results = notices.coverage_statements(db(), client, again)
    if json_:
        print_json({"statements": [r.as_json() for r in results]})
        return
    table = new_table(title="Coverage statements")
    for column in ("client", "status", "notice", "state", "why"):
        table.add_column(column)
    for r in results:
        table.add_row(r.client, r.status, str(r.notice or ""), r.state or "", r.reason or "")
    out.print(table)


# -------------------------------------------------------------------------------------- maintenance


@maintenance_app.command("due")
def due(
    client: ClientOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show; open no ticket, write no notice.")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Maintenance due as of now, and what it became: a ticket (managed clients, once per occurrence) or an
    item of the month's call-before-service notice. The worker does the same every few minutes."""
    apply_now(now)
    report = maintenance.run_due(db(), [client] if client else None, dry_run)
    if json_:
        print_json(report.as_json())
        return
    table = new_table(title=f"Maintenance due as of {report.as_of:%Y-%m-%d %H:%M} UTC")
    for column in ("client", "plan", "task", "due", "becomes", "ticket", "notice", "answer", "price / time"):
        table.add_column(column)
    for i in report.items:
        table.add_row(
            i.client,
            i.plan,
            i.title,
            f"{i.occurrence:%Y-%m-%d %H:%M}" if i.occurrence else report.month,
            i.action.replace("_", " ") + (" (new)" if i.new else ""),
            f"#{i.ticket} {i.ticket_status or ''}" if i.ticket else "",
            f"#{i.notice}" if i.notice else "",
            i.answer or "",
            str(i.price) if i.price is not None else (hours(i.minutes) if i.minutes else ""),
        )
    out.print(table)
    err.print(f"{report.tickets_opened} ticket(s) opened, {report.notices_written} monthly notice(s) written")


@maintenance_app.command("plan")
def plan(client: ClientOpt = None, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """The default plans per agreement kind, or a client's plan (its own tasks replacing the defaults)."""
    apply_now(now)
    shown = maintenance.show_plan(db(), client)
    if json_:
        print_json(shown)
        return
    groups = (
        shown["defaults"] if client is None else {f"{shown['client']} ({shown['plan'] or 'no plan'})": shown["tasks"]}
    )
    for title, tasks in groups.items():
        table = new_table(title=f"Plan: {title}")
        for column in ("key", "title", "service", "schedule", "estimate", "technician", "next", "becomes"):
            table.add_column(column)
        for t in tasks:
            table.add_row(
                t["key"] + (" *" if t["own"] else ""),
                t["title"] + ("" if t["active"] else " (off)"),
                t["service"],
                t["schedule"],
                hours(t["estimate_minutes"]),
                t["technician"] or "",
                (t["next"] or "")[:16],
                (t["action"] or "").replace("_", " "),
            )
        out.print(table)


@task_app.command("set")
def task_set(
    key: Annotated[str, typer.Argument(help="The task's key (daily-review, patches, … or a new one).")],
    client: ClientOpt = None,
    kind: Annotated[str | None, typer.Option(help="Edit the default plan of this agreement kind instead.")] = None,
    title: Annotated[str | None, typer.Option(help="What the task is.")] = None,
    schedule: Annotated[
        str | None, typer.Option(help="RRULE:FREQ=MONTHLY;BYMONTHDAY=1 or a cron line, in the MSP's time zone.")
    ] = None,
    estimate: Annotated[int | None, typer.Option(help="Estimated minutes (prices the monthly notice).")] = None,
    service: Annotated[str | None, typer.Option(help="The service it is (coverage decides who pays).")] = None,
    technician: Annotated[str | None, typer.Option(help="Who does it (their calendar feed).")] = None,
    active: Annotated[bool | None, typer.Option("--on/--off", help="Switch the task on or off.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Create or change a task. With --client it is the client's own (it replaces the default task of the same
    key for that client, starting from its values); with --kind it is the default plan's."""
    shown = maintenance.set_task(
        db(),
        key,
        client=client,
        kind=kind,
        title=title,
        schedule=schedule,
        estimate_minutes=estimate,
        service=service,
        technician=technician,
        active=active,
    )
    if json_:
        print_json(shown)
    else:
        err.print(f"{'created' if shown['created'] else 'updated'} task {shown['task']}: {shown['schedule']}")


@maintenance_app.command("calendar-url")
def calendar_url(
    client: ClientOpt = None,
    technician: Annotated[
        str | None, typer.Option(help="A technician: a user, or a name on time entries or maintenance tasks.")
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Revoke every address of this feed handed out so far; print the new one.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """The address of an iCalendar feed of maintenance, for a client or a technician (prints the path).
    With --rotate, the addresses handed out before stop working (404) and a new one is printed."""
    found = maintenance.calendar_feed(db(), client=client, technician=technician, rotate=rotate)
    if json_:
        print_json({"path": found["path"], "url": found["url"], "rotated": found["rotated"]})
    else:
        typer.echo(found["path"])
        if rotate:
            err.print("every earlier address of this calendar is revoked")
