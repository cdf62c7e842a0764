"""`tenure offboard plan|apply|status|approve|done|skip|retry`.

A step is named by its key (as `status` shows it): `tenure offboard approve acme p3.approval`, or just
`tenure offboard approve p3.approval` when only one open run has a step of that key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from tenure.book.files import load
from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, err, new_table, out, print_json
from tenure.errors import TenureError
from tenure.offboarding import service

app = typer.Typer(
    help="Offboarding: a planned, durable, verified end of service. A STEP is a step's key as `status` shows it, "
    "after the client's key (`approve acme p3.approval`), or alone when only one open run has that step.",
    no_args_is_help=True,
)

AnswersOpt = Annotated[
    Path | None, typer.Option("--answers", help="The answers, YAML or JSON (INTERFACE.md).", show_default=False)
]
KeyArg = Annotated[str, typer.Argument(help="The client's key.", show_default=False)]
StepArgs = Annotated[
    list[str],
    typer.Argument(
        metavar="[CLIENT] STEP",
        help="The step's key, after the client's key when several open runs have it.",
        show_default=False,
    ),
]

STATE_STYLE = {"done": "green", "skipped": "dim", "failed": "bold red", "running": "cyan", "waiting": "yellow"}


def _answers(path: Path | None, required: bool) -> Any | None:
    if path is None:
        if required:
            raise TenureError("--answers FILE is required (the offboarding answers, YAML or JSON)")
        return None
    if not path.is_file():
        raise TenureError(f"{path}: no such answers file")
    return load(path)


def _step_ref(parts: list[str]) -> tuple[str | None, str]:
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise TenureError(f"expected [CLIENT] STEP, got {len(parts)} arguments: {' '.join(parts)}")


def _by_phase(steps: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    phases: dict[int, list[dict[str, Any]]] = {}
    for step in steps:
        phases.setdefault(step["phase"], []).append(step)
    return dict(sorted(phases.items()))


def _plan_table(plan: dict[str, Any]) -> None:
    for phase, steps in _by_phase(plan["steps"]).items():
        table = new_table(title=f"Phase {phase}: {service.PHASES[phase]}", title_justify="left", expand=False)
        for column in ("step", "kind", "title", "after"):
            table.add_column(column)
        for step in steps:
            deps = step["depends_on"]
            after = ", ".join(deps[:2]) + (f" +{len(deps) - 2}" if len(deps) > 2 else "")
            kind = step["kind"] + (f" {step['seconds'] // 3600}h" if step["kind"] == "wait" else "")
            table.add_row(step["key"], kind, step["title"], after)
        out.print(table)
    out.print(f"{len(plan['steps'])} steps for {plan['client']}")


def _when(step: dict[str, Any]) -> str:
    if step["state"] == "waiting" and step["waiting_on"] == "clock":
        return f"until {step['not_before'][:16].replace('T', ' ')}" + (f" ({step['error']})" if step["error"] else "")
    if step["state"] == "failed":
        return step["error"] or ""
    if step["state"] == "running":
        return f"by {step['lease']['owner']}"
    if step["state"] in ("done", "skipped"):
        return step["note"] or str(step["result"].get("detail") or "")
    return ""


def _status_table(status: dict[str, Any]) -> None:
    for phase, steps in _by_phase(status["steps"]).items():
        done = sum(1 for s in steps if s["state"] in ("done", "skipped"))
        table = new_table(title=f"Phase {phase}: {service.PHASES[phase]} ({done}/{len(steps)})", title_justify="left")
        for column in ("step", "kind", "state", "tries", "title", "notes"):
            table.add_column(column, overflow="fold")
        for step in steps:
            style = STATE_STYLE.get(step["state"], "")
            table.add_row(
                step["key"],
                step["kind"],
                f"[{style}]{step['state']}[/]" if style else step["state"],
                str(step["attempts"] or ""),
                step["title"],
                _when(step),
            )
        out.print(table)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(status["counts"].items()))
    out.print(f"run #{status['run']} for {status['client']}: [bold]{status['state']}[/bold] ({counts})")
    if status["problem"]:
        out.print(f"[bold red]problem[/]: {status['problem']}", highlight=False)
    person = [s for s in status["steps"] if s["key"] in status["waiting_on"]]
    if person:
        out.print("\n[bold]Waiting on a person[/bold]:")
        for step in person:
            verb = "approve" if step["kind"] == "approval" else "done"
            out.print(
                f"- {step['key']}: {step['title']}  (`tenure offboard {verb} {status['client']} {step['key']}"
                + (" --note ...`)" if verb == "done" else "`)"),
                markup=False,
                highlight=False,
            )
    if status["next_at"]:
        out.print(f"next on the clock: {status['next_at'][:16].replace('T', ' ')} UTC")


@app.command("plan")
def plan(key: KeyArg, answers: AnswersOpt = None, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """The plan for ending the client's service, without doing anything."""
    apply_now(now)
    made = service.make_plan(db(), key, _answers(answers, True), source=str(answers)).to_json()
    if json_:
        print_json(made)
    else:
        _plan_table(made)


@app.command("apply")
def apply(
    key: KeyArg,
    answers: AnswersOpt = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Who is responsible for the run (default: you).")
    ] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Start the run (or continue the open one): do every step due now, return when the rest wait on a person
    or the clock. --answers is needed to start; to continue it may be left out."""
    apply_now(now)
    status = service.apply(db(), key, _answers(answers, False), source=str(answers), owner=owner)
    err.print(f"ran {status['ran']} step(s); run is {status['state']}", highlight=False)
    if json_:
        print_json(status)
    else:
        _status_table(status)


@app.command("status")
def status(
    key: KeyArg,
    attempts: Annotated[bool, typer.Option("--attempts", help="Every attempt of every step, with its calls.")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The client's run: progress by phase, what waits on whom."""
    apply_now(now)
    found = service.status(db(), key, with_attempts=attempts)
    if json_:
        print_json(found)
    else:
        _status_table(found)


def _answer(verb: str, parts: list[str], text: str | None, json_: bool) -> None:
    client, step = _step_ref(parts)
    status, message = service.answer(db(), verb, client, step, text)
    err.print(message, markup=False, highlight=False)
    if json_:
        print_json(status)
    else:
        out.print(
            f"run is {status['state']}; continue with `tenure offboard apply {status['client']}`",
            markup=False,
            highlight=False,
        )


@app.command("approve")
def approve(
    step: StepArgs,
    note: Annotated[str | None, typer.Option("--note", help="Why, or under what condition.")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Approve an approval step (the owner's go-ahead before anything destructive)."""
    apply_now(now)
    _answer("approve", step, note, json_)


ManyArgs = Annotated[
    list[str],
    typer.Argument(
        metavar="[CLIENT] [STEP]...",
        help="Step keys, after the client's key when several open runs have them; with --device or --phase, the "
        "client's key alone.",
        show_default=False,
    ),
]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="Every step of this device (its key).")]
PhaseOpt = Annotated[int | None, typer.Option("--phase", min=1, max=7, help="Every step of this phase (1 to 7).")]
STEP_KEY = re.compile(r"^p\d\.")  # every step's key starts with its phase: p3.feature-off...


def _selection(parts: list[str], device: str | None, phase: int | None) -> tuple[int, service.Selection]:
    client = parts[0] if parts and not STEP_KEY.match(parts[0]) else None
    keys = tuple(parts[1:] if client is not None else parts)
    if keys and (device or phase):
        raise TenureError("give step keys, or --device, or --phase: one of them")
    run = service.run_for(db(), client, keys[0] if keys else None)
    return run, service.Selection(keys, device, phase)


def _many(verb: str, parts: list[str], device: str | None, phase: int | None, text: str | None, json_: bool) -> None:
    if device is None and phase is None and len(parts) <= 2 and (len(parts) < 2 or not STEP_KEY.match(parts[0])):
        _answer(verb, parts, text, json_)  # one step: as it always was
        return
    run, chosen = _selection(parts, device, phase)
    result = service.bulk(db(), verb, run, chosen, text)
    err.print(result["message"], markup=False, highlight=False)
    if json_:
        print_json(result)
    else:
        out.print(f"run #{run} is {result['state']}", markup=False, highlight=False)


@app.command("done")
def done(
    step: ManyArgs,
    note: Annotated[str | None, typer.Option("--note", help="What was done (required).")] = None,
    device: DeviceOpt = None,
    phase: PhaseOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Tick off a manual step (or one Tenure could not finish and a person did); several at once: their keys,
    or every step of a device (--device) or of a phase (--phase) that waits on a person, with one note."""
    apply_now(now)
    _many("done", step, device, phase, note, json_)


@app.command("skip")
def skip(
    step: ManyArgs,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is not done (required).")] = None,
    device: DeviceOpt = None,
    phase: PhaseOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Skip a step, with the reason; several at once as `done` does."""
    apply_now(now)
    _many("skip", step, device, phase, reason, json_)


@app.command("assign")
def assign(
    step: ManyArgs,
    to: Annotated[str, typer.Option("--to", help="Who is to do them (blank: no one).", show_default=False)],
    device: DeviceOpt = None,
    phase: PhaseOpt = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Name who is to do steps: their keys, or a device's (--device) or a phase's (--phase)."""
    apply_now(now)
    run, chosen = _selection(step, device, phase)
    result = service.assign(db(), run, chosen, to)
    err.print(result["message"], markup=False, highlight=False)
    if json_:
        print_json(result)


@app.command("retry")
def retry(step: StepArgs, now: NowOpt = None, json_: JsonOpt = False) -> None:
    """Try a failed step again (or one waiting to try again, now)."""
    apply_now(now)
    _answer("retry", step, None, json_)


@app.command("report")
def report(
    key: KeyArg,
    asset: Annotated[bool, typer.Option("--asset", help="The final IT asset report (the inventory snapshot).")] = False,
    health: Annotated[bool, typer.Option("--health", help="The final system health report.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write the report as HTML here.")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write the report as PDF here.")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The final IT asset report (--asset) or final system health report (--health) of the client's run, as
    HTML and/or PDF (one template each); without --html or --pdf, the report's data."""
    from tenure.offboarding import reports

    apply_now(now)
    if asset == health:
        raise TenureError("give exactly one of --asset and --health")
    kind = "asset" if asset else "health"
    made = reports.asset_report(db(), key) if asset else reports.health_report(db(), key)
    if html is not None:
        html.write_text(reports.render_html(kind, made), encoding="utf-8")
        err.print(f"wrote {html}", markup=False, highlight=False)
    if pdf is not None:
        pdf.write_bytes(reports.render_pdf(kind, made))
        err.print(f"wrote {pdf}", markup=False, highlight=False)
    if json_ or (html is None and pdf is None):
        print_json(made)


@app.command("lessons")
def lessons(
    key: KeyArg,
    reason: Annotated[
        list[str],
        typer.Option(
            "--reason",
            help="A reason code (repeatable): price, service_quality, moved_in_house, acquired, closed_business, "
            "msp_ended, other.",
            show_default=False,
        ),
    ],
    change: Annotated[str, typer.Option("--change", help="What we change in delivery.", show_default=False)],
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Record why the client left (reason codes) and what to change, on its latest offboarding run."""
    from tenure.offboarding import reports

    apply_now(now)
    recorded = reports.record_lessons(db(), key, reason, change)
    if json_:
        print_json(recorded)
    else:
        out.print(
            f"{key}: run #{recorded['run']}: {', '.join(recorded['reason_codes'])}; change: {recorded['change']}"
            f"\n{recorded['step']}",
            markup=False,
            highlight=False,
        )
