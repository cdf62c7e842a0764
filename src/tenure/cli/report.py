"""`tenure report unpaid`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenure.cli.common import JsonOpt, db, new_table, out, print_json
from tenure.triage.report import unpaid_report

app = typer.Typer(help="Reports for the owner.", no_args_is_help=True)


def _offer_text(offer: dict[str, Any] | None) -> str:
    if not offer:
        return "-"
    return f"{offer['offer']} ({offer['monthly_fee']}/month)" if offer.get("monthly_fee") else offer["offer"]


@app.command("unpaid")
def unpaid(
    period: Annotated[str, typer.Option(help="The month, YYYY-MM.", show_default=False)],
    json_: JsonOpt = False,
) -> None:
    """Free work per client: alerts suppressed, minutes avoided and spent, work written off, and the offer
    that would have covered it."""
    report = unpaid_report(db(), period)
    if json_:
        print_json(report)
        return
    table = new_table(title=f"Unpaid work, {period} ({report['minutes_per_alert']} min per uncovered alert)")
    for column in (
        "client",
        "alerts",
        "suppressed",
        "min avoided",
        "reached",
        "unpaid min",
        "written off",
        "would cover",
    ):
        table.add_column(column, justify="left" if column in ("client", "would cover") else "right")
    for r in report["clients"]:
        offer = r["would_cover"]
        table.add_row(
            r["client"],
            str(r["alerts"]),
            str(r["suppressed"]),
            str(r["minutes_avoided"]),
            str(r["reached_a_person"]),
            str(r["unpaid_minutes"]),
            str(r["minutes_written_off"]),
            _offer_text(offer),
        )
    out.print(table)


from tenure.cli import owner  # noqa: E402

app.command("profitability")(owner.profitability)
app.command("fit")(owner.fit)


@app.command("offboarding")
def offboarding(
    months: Annotated[int, typer.Option("--months", help="The return window after the end of service.")] = 12,
    json_: JsonOpt = False,
) -> None:
    """Former clients: end of service, reason codes, deactivation issues after closeout (orphaned alerts,
    charges after the end date, tickets after it, vendor accounts still active); and the client return rate."""
    from tenure.offboarding.reports import offboarding_report

    report = offboarding_report(db(), months)
    if json_:
        print_json(report)
        return
    table = new_table(title="Former clients")
    counts = ("orphaned alerts", "charges", "tickets", "accounts")
    for column in ("client", "end of service", "reasons", *counts, "returned"):
        table.add_column(column, justify="right" if column in counts else "left")
    for r in report["former_clients"]:
        issues = r["issues"]
        returned = r["returned"]
        table.add_row(
            r["client"],
            r["end_of_service"],
            ", ".join(r["lessons"]["reason_codes"]) or (r["reason"] or "-"),
            str(len(issues["orphaned_alerts"])),
            str(len(issues["charges_after_end"])),
            str(len(issues["tickets_after_end"])),
            str(len(issues["vendor_accounts_active"])),
            f"{returned['agreement']} ({returned['start']})" if returned else "-",
        )
    out.print(table)
    rate = report["return_rate"]
    percent = "-" if rate["percent"] is None else f"{rate['percent']}%"
    out.print(
        f"client return rate within {report['months']} months: {rate['returned']} of {rate['former']} ({percent})",
        markup=False,
        highlight=False,
    )
