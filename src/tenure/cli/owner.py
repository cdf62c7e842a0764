"""`tenure report profitability` and `tenure report fit`: the owner's view (DOMAIN.md)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from tenure.cli.common import JsonOpt, db, err, new_table, out, print_json
from tenure.errors import TenureError
from tenure.reports import service
from tenure.text import spreadsheet_safe

FromOpt = Annotated[str | None, typer.Option("--from", help="First month, YYYY-MM.", show_default=False)]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last month, YYYY-MM (default: --from).", show_default=False)]
CsvOpt = Annotated[
    Path | None, typer.Option("--csv", help="Also write the report as CSV to this file.", show_default=False)
]


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    rows = list(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        # a text cell a spreadsheet would run as a formula is escaped; numbers stay numbers
        writer.writerows({k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    err.print(f"wrote {len(rows)} rows to {path}")


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _flag(flagged: bool) -> str:
    return "[red]below target[/red]" if flagged else ""


def profitability(
    from_: FromOpt = None,
    to: ToOpt = None,
    client: Annotated[str | None, typer.Option(help="Only this client.", show_default=False)] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="The trail of one client's month (with --client and --month).")
    ] = False,
    month: Annotated[str | None, typer.Option(help="The month to explain, YYYY-MM.", show_default=False)] = None,
    csv_: CsvOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Revenue by service month, time, cost, margin and effective hourly rate per client, agreement and
    month; clients below the target rate are flagged. --explain shows where every figure comes from."""
    if explain:
        month = month or (from_ if from_ and (to is None or to == from_) else None)
        if not client or not month:
            raise TenureError("--explain needs --client KEY and --month YYYY-MM")
        trail = service.explain(db(), client, month)
        if json_:
            print_json(trail)
        else:
            _show_trail(trail)
        return
    if not from_:
        raise TenureError("report profitability needs --from YYYY-MM (and --to YYYY-MM for more than one month)")
    report = service.profitability_report(db(), from_, to or from_, client)
    if csv_:
        _write_csv(csv_, service.CSV_COLUMNS, service.csv_rows(report))
    if json_:
        print_json(report)
    elif not csv_:
        _show_report(report, detailed=client is not None)


def _show_report(report: Mapping[str, Any], detailed: bool) -> None:
    title = f"Profitability {report['from']} to {report['to']}"
    caption = (
        f"labor cost {_dash(report['labor_cost_per_hour'])}/hour · target {_dash(report['target_effective_rate'])}/hour"
        f" · {report['minutes_per_alert']} min per alert that reached a person"
    )
    table = new_table(title=title, caption=caption)
    for column in ("client", "revenue", "hours", "cost", "margin", "rate/hour", ""):
        table.add_column(column, justify="left" if column in ("client", "") else "right")
    for c in report["clients"]:
        table.add_row(
            c["client"], c["revenue"], c["hours"], _dash(c["cost"]), _dash(c["margin"]), _dash(c["effective_rate"]),
            _flag(c["flagged"]),
        )  # fmt: skip
    out.print(table)
    if not detailed:
        return
    for c in report["clients"]:
        months = new_table(title=f"{c['client']} by month")
        for column in ("month", "fees", "usage", "prepaid", "revenue", "work min", "unpaid min", "cost", "margin",
                       "rate/hour", ""):  # fmt: skip
            months.add_column(column, justify="left" if column in ("month", "") else "right")
        for m in c["months"]:
            months.add_row(
                m["month"], m["fees"], m["usage"], m["prepaid"], m["revenue"], str(m["work_minutes"]),
                str(m["unpaid_minutes"]), _dash(m["cost"]), _dash(m["margin"]), _dash(m["effective_rate"]),
                _flag(m["flagged"]),
            )  # fmt: skip
        out.print(months)
        agreements = new_table(title=f"{c['client']} by agreement")
        for column in ("agreement", "kind", "revenue", "minutes", "cost", "margin", "rate/hour", ""):
            agreements.add_column(column, justify="left" if column in ("agreement", "kind", "") else "right")
        for a in c["agreements"]:
            agreements.add_row(
                a["agreement"] or "(none: blocks, default rate, alerts)", _dash(a["kind"]), a["revenue"],
                str(a["minutes"]), _dash(a["cost"]), _dash(a["margin"]), _dash(a["effective_rate"]),
                _flag(a["flagged"]),
            )  # fmt: skip
        out.print(agreements)


def _show_trail(t: Mapping[str, Any]) -> None:
    out.print(
        f"[bold]{t['client']} · {t['month']}[/bold]: revenue {t['revenue']} (exact {t['exact_revenue']}, half-up "
        f"once) · {t['minutes']} min ({t['work_minutes']} work + {t['unpaid_minutes']} unpaid) · cost "
        f"{_dash(t['cost'])} · margin {_dash(t['margin'])} · {_dash(t['effective_rate'])}/hour"
        + (" · [red]below target[/red]" if t["flagged"] else "")
    )
    fees = new_table(title=f"Fees for the month's service days (total {t['fees_total']})")
    for column in ("agreement (id)", "line", "service days", "invoiced on", "amount"):
        fees.add_column(column, justify="right" if column == "amount" else "left")
    for f in t["fees"]:
        fees.add_row(
            f"{f['agreement']} ({f['agreement_id']})", f["kind"], f"{f['service_from']} to {f['service_to']}",
            ", ".join(f["invoices"]) or "-", f["amount"],
        )  # fmt: skip
    out.print(fees)
    work = new_table(title=f"Work of the month (billed {t['usage_total']}, prepaid {t['prepaid_total']})")
    for column in ("time entry (id)", "date", "type", "layer", "minutes", "rate", "agreement / block", "ledger",
                   "amount"):  # fmt: skip
        work.add_column(column, justify="right" if column in ("minutes", "rate", "amount") else "left")
    for w in t["work"]:
        source = w["agreement"] or ""
        if w["block"]:
            source = f"{w['block']} at {w['price_per_hour']}/hour"
        work.add_row(
            f"{w['time_entry']} ({w['time_entry_id']})", w["date"], _dash(w["work_type"]), w["layer"],
            str(w["minutes"]), _dash(w["rate"]), source, ", ".join(map(str, w["ledger_entries"])) or "-", w["amount"],
        )  # fmt: skip
    out.print(work)
    if t["monitoring"] or t["block_draws"]:
        draws = new_table(title="Monitoring months and block draws")
        for column in ("block (id)", "for", "date", "minutes", "price/hour", "ledger", "value"):
            draws.add_column(column, justify="right" if column in ("minutes", "price/hour", "value") else "left")
        for mm in t["monitoring"]:
            if not mm["paid_from_block"]:
                draws.add_row("-", f"{mm['agreement']}/{mm['month']}", "", "", "", "", "paid by the fee")
        for d in t["block_draws"]:
            draws.add_row(
                f"{d['block']} ({d['block_id']})", d["ref"], d["date"], str(d["minutes"]), d["price_per_hour"],
                ", ".join(map(str, d["ledger_entries"])) or "-", d["value"],
            )  # fmt: skip
        out.print(draws)
    if t["alerts"]:
        alerts = new_table(title=f"Alerts that reached a person ({t['minutes_per_alert']} min each)")
        for column in ("alert", "decision", "service", "first seen", "title"):
            alerts.add_column(column)
        for a in t["alerts"]:
            alerts.add_row(str(a["alert"]), a["decision"], a["service"], a["first_seen"], a["title"])
        out.print(alerts)


FIT_CSV_COLUMNS = (
    "client",
    "from",
    "to",
    "actual",
    "offer",
    "kind",
    "total",
    "difference",
    "fees",
    "usage",
    "blocks_bought",
    "minutes",
    "cost",
    "margin",
    "effective_rate",
    "flagged",
)


def fit(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    from_: FromOpt = None,
    to: ToOpt = None,
    csv_: CsvOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Each catalog offer replayed as the client's only arrangement on its real work of the window: what it
    would have paid and the margin under it, beside what it actually paid. Changes nothing."""
    if not from_:
        raise TenureError("report fit needs --from YYYY-MM (and --to YYYY-MM for more than one month)")
    report = service.fit_report(db(), client, from_, to or from_)
    if csv_:
        rows = [
            {k: report[k] for k in ("client", "from", "to", "actual")}
            | {k: o[k] for k in FIT_CSV_COLUMNS if k in o}
            | {"blocks_bought": o["blocks"]["bought"] if o["blocks"] else ""}
            for o in report["offers"]
        ]
        _write_csv(csv_, FIT_CSV_COLUMNS, rows)
    if json_:
        print_json(report)
        return
    if csv_:
        return
    table = new_table(
        title=f"Fit for {report['client']}, {report['from']} to {report['to']}",
        caption=f"actually paid {report['actual']} · margin {_dash(report['actual_margin'])} · "
        f"{report['minutes']} min of time ({', '.join(report['arrangement']) or 'no arrangement'})",
    )
    for column in ("offer", "kind", "would pay", "vs actual", "margin", "rate/hour", ""):
        table.add_column(column, justify="left" if column in ("offer", "kind", "") else "right")
    for o in report["offers"]:
        kind = o["kind"] if not o["blocks"] else f"block ×{o['blocks']['bought']}"
        table.add_row(
            o["offer"], kind, o["total"], o["difference"], _dash(o["margin"]), _dash(o["effective_rate"]),
            _flag(o["flagged"]),
        )  # fmt: skip
    out.print(table)
