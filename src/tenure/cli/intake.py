"""`tenure intake FILE…`, `tenure intake replay`, `tenure alert list`, `tenure ticket list`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tenure.cli.common import (
    LIST_LIMIT,
    AllOpt,
    JsonOpt,
    LimitOpt,
    NowOpt,
    OffsetOpt,
    apply_now,
    db,
    err,
    new_table,
    out,
    paged,
    print_json,
)
from tenure.triage.service import DECISIONS, TICKET_STATUSES, list_alerts, list_tickets
from tenure.vocabulary import INTAKE_SOURCES

if TYPE_CHECKING:
    from rich.table import Table

alert_app = typer.Typer(help="Alerts and the decision triage made for each.", no_args_is_help=True)
ticket_app = typer.Typer(help="Tickets opened by triage, maintenance or people.", no_args_is_help=True)


def _intake() -> Any:
    """Intake's service, imported when a command feeds or replays payloads: it brings every parser and the
    mail reader, which `ticket list` and `alert list` (in the same groups) do not need."""
    from tenure.intake import service

    return service


def _decisions_table(outcomes: list[dict[str, Any]]) -> Table:
    table = new_table(title="Decisions")
    for column in ("payload", "client", "device", "status", "decision", "ticket", "reason"):
        table.add_column(column)
    for o in outcomes:
        table.add_row(
            str(o["payload"]),
            o["client"] or "-",
            o["device"] or "-",
            o["status"],
            o["decision"],
            str(o["ticket"] or ""),
            o["reason"],
        )
    return table


def intake(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Payload files (one payload each); or `replay [ID…]`; or `quarantine`.", show_default=False
        ),
    ],
    source: Annotated[str | None, typer.Option(help=f"One of {', '.join(INTAKE_SOURCES)}.")] = None,
    exit_code: Annotated[int | None, typer.Option(help="restic: the exit code of `restic backup --json`.")] = None,
    job: Annotated[str | None, typer.Option(help="restic: the backup job's name.")] = None,
    host: Annotated[str | None, typer.Option(help="restic: the host it backed up.")] = None,
    client: Annotated[str | None, typer.Option(help="restic: the client's key.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help=f"quarantine: print at most this many (default {LIST_LIMIT}).")
    ] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="quarantine: skip this many first.")] = 0,
    all_: Annotated[bool, typer.Option("--all", help="quarantine: print every payload (no --limit).")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Feed payload files through intake exactly as the HTTP endpoints do and print each alert's decision.

    `tenure intake replay [ID…]` processes quarantined payloads again (after a parser or mapping rule was
    fixed); `tenure intake quarantine` lists them, oldest first, as the quarantine page and
    `GET /api/v1/quarantine` do: why each waits, what a mapping rule could match, the rule to write, and the
    client the rules place it on now (`--limit`, `--offset` and `--all` page the list).
    """
    apply_now(now)
    _refuse_what_does_not_apply(
        files[0],
        paging={"--limit": limit is not None, "--offset": offset != 0, "--all": all_},
        feeding={
            "--source": source is not None,
            "--exit-code": exit_code is not None,
            "--job": job is not None,
            "--host": host is not None,
            "--client": client is not None,
        },
    )
    if files[0] == "replay":
        try:
            ids = [int(i) for i in files[1:]]
        except ValueError:
            raise typer.BadParameter("replay takes payload ids (numbers)", param_hint="ID") from None
        replay(ids, json_)
        return
    if files[0] == "quarantine":
        quarantine(limit or LIST_LIMIT, offset, all_, json_)
        return
    if source not in INTAKE_SOURCES:
        raise typer.BadParameter(f"{source!r} is not one of {', '.join(INTAKE_SOURCES)}", param_hint="--source")
    meta = {
        k: v for k, v in {"exit_code": exit_code, "job": job, "host": host, "client": client}.items() if v is not None
    }
    bodies = []
    for name in files:
        try:
            bodies.append(Path(name).read_bytes())
        except OSError as exc:
            raise typer.BadParameter(f"{name}: {exc.strerror}", param_hint="FILE") from None
    outcomes = [o.as_json() for o in _intake().ingest_many(db(), source, bodies, meta)]
    if json_:
        print_json({"decisions": outcomes})
    else:
        out.print(_decisions_table(outcomes))


def _refuse_what_does_not_apply(form: str, paging: dict[str, bool], feeding: dict[str, bool]) -> None:
    """An option given to a form of `tenure intake` it does nothing for is an error, not silently dropped:
    paging is for the quarantine list, the payload's source and restic's facts for feeding files."""
    if form != "quarantine" and (given := next((name for name, on in paging.items() if on), None)):
        what = "feeding files prints every decision" if form != "replay" else "a replay prints every decision"
        raise typer.BadParameter(f"{given} pages `tenure intake quarantine`; {what}", param_hint=given)
    if form in ("replay", "quarantine") and (given := next((name for name, on in feeding.items() if on), None)):
        raise typer.BadParameter(f"{given} is for feeding payload files, not `tenure intake {form}`", param_hint=given)


def replay(payload: list[int], json_: bool) -> None:
    service = _intake()
    outcomes = [o.as_json() for o in service.replay(db(), payload or None)]
    if json_:
        print_json({"decisions": outcomes})
    else:
        out.print(_decisions_table(outcomes))
        left = service.quarantine_count(db())
        err.print(f"{len(outcomes)} decisions; {left} payloads still in quarantine")


def quarantine(limit: int, offset: int, all_: bool, json_: bool) -> None:
    service = _intake()
    rows = paged(lambda n, skip: service.quarantine_page(db(), n, skip)[0], limit, offset, all_, "quarantine")
    if json_:
        print_json({"quarantined": rows})
        return
    table = new_table(title="Quarantine")
    for column in ("payload", "source", "received", "waits", "alerts", "rule to write", "places it now", "reason"):
        table.add_column(column)
    for r in rows:
        first = r["alerts"][0] if r["alerts"] else {}
        rule = first.get("suggested")
        table.add_row(
            str(r["payload"]),
            r["source"],
            r["received_at"][:16].replace("T", " "),
            r["kind"],
            str(r["alert_count"]),
            f"{rule['field']} = {rule['pattern']}" if rule else "",
            first.get("matches_now") or "",
            r["reason"],
        )
    out.print(table)


@alert_app.command("list")
def alerts(
    client: Annotated[str | None, typer.Option(help="Only this client.")] = None,
    decision: Annotated[str | None, typer.Option(help=f"One of {', '.join(DECISIONS)}.")] = None,
    status: Annotated[str | None, typer.Option(help="firing or resolved.")] = None,
    limit: LimitOpt = LIST_LIMIT,
    offset: OffsetOpt = 0,
    all_: AllOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Alerts, newest first, with the decision and why."""
    rows = paged(lambda n, skip: list_alerts(db(), client, decision, status, n, skip), limit, offset, all_, "alerts")
    if json_:
        print_json({"alerts": rows})
        return
    table = new_table(title="Alerts")
    for column in ("alert", "client", "device", "status", "count", "decision", "ticket", "title"):
        table.add_column(column)
    for a in rows:
        table.add_row(
            str(a["alert"]),
            a["client"],
            a["device"] or "-",
            a["status"],
            str(a["count"]),
            a["decision"],
            str(a["ticket"] or ""),
            a["title"],
        )
    out.print(table)


@ticket_app.command("list")
def tickets(
    client: Annotated[str | None, typer.Option(help="Only this client.")] = None,
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(TICKET_STATUSES)}.")] = None,
    assignee: Annotated[str | None, typer.Option(help="Only this user's (\"\": nobody's).")] = None,
    priority: Annotated[str | None, typer.Option(help="Only this priority (P1-P4).")] = None,
    breached: Annotated[bool, typer.Option("--breached", help="Only tickets past a target.")] = False,
    limit: LimitOpt = LIST_LIMIT,
    offset: OffsetOpt = 0,
    all_: AllOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Tickets, newest first."""
    filters = {"assignee": assignee, "priority": priority, "breached": breached}
    rows = paged(lambda n, skip: list_tickets(db(), client, status, n, skip, **filters), limit, offset, all_, "tickets")
    if json_:
        print_json({"tickets": rows})
        return
    table = new_table(title="Tickets")
    for column in ("ticket", "client", "kind", "priority", "status", "assignee", "due", "alerts", "title"):
        table.add_column(column)
    for t in rows:
        due = (t["due_at"] or "")[:16].replace("T", " ") + (" BREACHED" if t["breached"] else "")
        table.add_row(
            str(t["ticket"]), t["client"], t["kind"], t["priority"], t["status"], t["assignee"] or "", due,
            str(t["alerts"]), t["title"],
        )  # fmt: skip
    out.print(table)
