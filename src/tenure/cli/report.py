"""`tenure report unpaid`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from tenure.cli.common import JsonOpt, db, out, print_json
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
    table = Table(title=f"Unpaid work, {period} ({report['minutes_per_alert']} min per uncovered alert)")
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
