"""The `tenure` command. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import getpass
import os
import sys

import typer

import tenure.cli.notices as notices_cli
import tenure.cli.offboard as offboard
import tenure.cli.users as users
from tenure import __version__
from tenure.cli import account, agreement, billing, book, client, demo, intake, inventory, report, serve, token, work
from tenure.cli import charge as charge_cli
from tenure.cli.common import apply_now, err
from tenure.db.uow import actor
from tenure.errors import TenureError
from tenure.operations import cli as operations

app = typer.Typer(
    help="Tenure: run an MSP's client relationships from what each client pays for.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(book.app, name="book")
app.add_typer(client.app, name="client")
app.add_typer(agreement.app, name="agreement")
app.add_typer(inventory.device_app, name="device")
app.add_typer(inventory.contact_app, name="contact")
app.add_typer(inventory.job_app, name="job")
app.add_typer(token.app, name="token")
app.add_typer(billing.billing, name="billing")
app.add_typer(billing.invoice, name="invoice")
app.add_typer(charge_cli.app, name="charge")
app.add_typer(work.time_app, name="time")
app.add_typer(work.block_app, name="block")
app.add_typer(work.retainer_app, name="retainer")
app.command("intake")(intake.intake)
app.add_typer(intake.alert_app, name="alert")
app.add_typer(intake.ticket_app, name="ticket")
app.add_typer(report.app, name="report")
app.add_typer(account.account_app, name="account")
app.add_typer(account.sync_app, name="sync")
app.add_typer(offboard.app, name="offboard")
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("demo")(demo.demo)
app.add_typer(users.app, name="user")
app.command("backup")(operations.backup)
app.command("restore")(operations.restore)
app.add_typer(notices_cli.notices_app, name="notices")
app.add_typer(notices_cli.maintenance_app, name="maintenance")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tenure {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    now: str | None = typer.Option(None, "--now", help="Act as if it were this ISO date-time (also TENURE_NOW)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    apply_now(now)


def main() -> None:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    actor.set(f"cli:{user}")
    try:
        app()
    except TenureError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("TENURE_DEBUG"):
            raise
        err.print(
            f"error: {type(exc).__name__}: {exc} (set TENURE_DEBUG=1 for the traceback)", markup=False, highlight=False
        )
        sys.exit(1)
