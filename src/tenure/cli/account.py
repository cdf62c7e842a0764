"""`tenure account list|set-secret|reveal` and `tenure sync backups`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tenure.cli.common import JsonOpt, db, err, new_table, out, print_json
from tenure.clients.accounts import list_accounts, reveal, set_secret

account_app = typer.Typer(help="Vendor accounts (RMM, SIEM, backup, hosted) and their secrets.", no_args_is_help=True)
sync_app = typer.Typer(help="Bring vendors' state into Tenure.", no_args_is_help=True)


@account_app.command("list")
def list_(client: Annotated[str | None, typer.Option(help="Only this client.")] = None, json_: JsonOpt = False) -> None:
    """Accounts, and whether a secret is stored (never the secret)."""
    rows = list_accounts(db(), client)
    if json_:
        print_json({"accounts": rows})
        return
    table = new_table(title="Vendor accounts")
    for column in ("key", "client", "kind", "vendor", "external id", "secret"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["key"], r["client"], r["kind"], r["vendor"], r["external_id"] or "", "stored" if r["has_secret"] else "-"
        )
    out.print(table)


@account_app.command("set-secret")
def set_secret_(key: Annotated[str, typer.Argument(help="The account's key.", show_default=False)]) -> None:
    """Read the account's API key or password from standard input and store it encrypted."""
    if sys.stdin.isatty():
        import getpass

        plain = getpass.getpass(f"secret for {key}: ")
    else:
        plain = sys.stdin.read()
    set_secret(db(), key, plain)
    err.print(f"secret of {key} stored (encrypted)")


@account_app.command("set-handover")
def set_handover_(
    key: Annotated[str, typer.Argument(help="The restic backup account's key.", show_default=False)],
    repository: Annotated[str, typer.Option(help="The client's repository the copy goes to (path or restic URL).")],
    tag: Annotated[str | None, typer.Option(help="Only the client's snapshots carrying this tag.")] = None,
) -> None:
    """Where offboarding hands the client's backups over; the repository's password comes from standard input
    (empty: the MSP repository's own, which the client then receives)."""
    password = "" if sys.stdin.isatty() else sys.stdin.read().strip()
    from tenure.connectors.registry import set_handover  # the connectors when a command uses them, not for a list

    set_handover(db(), key, repository, password or None, tag)
    err.print(f"hand-over of {key} goes to {repository}" + (f" (tag {tag})" if tag else ""))


@account_app.command("reveal")
def reveal_(key: Annotated[str, typer.Argument(help="The account's key.", show_default=False)]) -> None:
    """Print the account's secret in clear. The change log records that you revealed it."""
    typer.echo(reveal(db(), key))


@sync_app.command("rmm")
def rmm(
    account: Annotated[str | None, typer.Option(help="Only this RMM account.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Bring the RMM's agents, checks and automated tasks into the inventory. A second sync changes nothing."""
    from tenure.connectors.rmm_sync import sync_rmm

    results = sync_rmm(db(), account)
    if json_:
        print_json({"accounts": [r.as_json() for r in results]})
        return
    for r in results:
        err.print(
            f"{r.account}: {r.created} created, {r.updated} updated, {r.unchanged} unchanged, "
            f"{r.deactivated} deactivated" + (f" — {r.error}" if r.error else "")
        )


@sync_app.command("backups")
def backups(
    account: Annotated[str | None, typer.Option(help="Only this restic backup account.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Read each restic account's snapshots: the newest per job becomes its latest result."""
    from tenure.connectors.backups import sync_backups

    results = sync_backups(db(), account)
    if json_:
        print_json({"accounts": [r.as_json() for r in results]})
        return
    for r in results:
        err.print(
            f"{r.account}: {r.snapshots} snapshots, {r.results} new results" + (f" — {r.error}" if r.error else "")
        )
