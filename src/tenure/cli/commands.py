"""Every command of `tenure`: where it lives and its one-line help, with no import of the command line's
libraries (typer, rich) or of the database layer, so `tenure --help` can list them at once (cli/listing.py)
and the root group (cli/root.py) can load each command when it runs (cli/lazy.py)."""

from __future__ import annotations

from typing import NamedTuple


class Lazy(NamedTuple):
    module: str  # e.g. "tenure.cli.client"
    attribute: str  # a typer.Typer (a group of commands) or a function (one command)
    help: str  # what `tenure --help` shows beside the name
    also: tuple[str, ...] = ()  # modules that add commands to it when imported (cli/ticket.py to `ticket`)


ABOUT = "Tenure: run an MSP's client relationships from what each client pays for."

# the root command's options: (name, metavar, help); cli/root.py declares them with these helps
NOW_HELP = "Act as if it were this ISO date-time (also TENURE_NOW)."
VERSION_HELP = "Show the version."
OPTIONS = (
    ("--now", "<str>", NOW_HELP),
    ("--version", "<bool>", VERSION_HELP),
    ("--help", "<bool>", "Show this message and exit."),
)

# every command: where it lives and what `tenure --help` says of it (its module is imported when it runs;
# tests/test_cli_lazy.py checks each help here against the command's own). Single commands first, then groups
# of commands, in the order the listing shows them.
COMMANDS: dict[str, Lazy] = {
    "intake": Lazy(
        "tenure.cli.intake",
        "intake",
        "Feed payload files through intake exactly as the HTTP endpoints do and print each alert's decision.",
    ),
    "serve": Lazy(
        "tenure.cli.serve",
        "serve",
        "Serve the REST API and intake endpoints (and the worker, and SMTP intake if asked).",
    ),
    "worker": Lazy(
        "tenure.cli.serve",
        "worker",
        "The worker alone: intake processing, the missed-backup sweep, and what else is due.",
    ),
    "demo": Lazy(
        "tenure.cli.demo",
        "demo",
        "Load a realistic demo MSP: every agreement kind and client class. Running it twice changes nothing.",
    ),
    "backup": Lazy(
        "tenure.operations.cli",
        "backup",
        "Back up the database while Tenure runs (SQLite online backup, or pg_dump for PostgreSQL).",
    ),
    "restore": Lazy(
        "tenure.operations.cli",
        "restore",
        "Replace the database with a backup (then migrate it to this version of Tenure).",
    ),
    "changes": Lazy(
        "tenure.cli.history",
        "changes",
        "What happened to an object, newest first: who, when, and each field before and after.",
    ),
    "book": Lazy("tenure.cli.book", "app", "The book: one YAML or JSON file that describes the MSP and its clients."),
    "client": Lazy("tenure.cli.client", "app", "Clients, their class, agreements and balances."),
    "agreement": Lazy("tenure.cli.agreement", "app", "A client's agreements: sign one, change its terms, end it."),
    "device": Lazy("tenure.cli.inventory", "device_app", "A client's devices: add, change, retire."),
    "contact": Lazy("tenure.cli.inventory", "contact_app", "A client's contacts: add, change, remove."),
    "job": Lazy("tenure.cli.inventory", "job_app", "Backup jobs: answer a pending job, pause or retire one."),
    "token": Lazy(
        "tenure.cli.token",
        "app",
        "API tokens for scripts and monitoring tools.",
        also=("tenure.cli.users",),  # gives `token create` its `--user`
    ),
    "billing": Lazy("tenure.cli.billing", "billing", "The monthly billing run and the final invoice."),
    "invoice": Lazy(
        "tenure.cli.billing",
        "invoice",
        "Invoices: list, show, issue (and mail), send again, pay, void, export; a client's statement.",
    ),
    "charge": Lazy(
        "tenure.cli.charge",
        "app",
        "Charges: parts, materials and one-off charges, billed in arrears on the next monthly invoice.",
    ),
    "time": Lazy("tenure.cli.work", "time_app", "Time entries: every minute is paid by exactly one layer."),
    "block": Lazy("tenure.cli.work", "block_app", "Prepaid blocks of hours."),
    "retainer": Lazy("tenure.cli.work", "retainer_app", "Retainer money held in advance."),
    "alert": Lazy("tenure.cli.intake", "alert_app", "Alerts and the decision triage made for each."),
    "ticket": Lazy(
        "tenure.cli.intake",
        "ticket_app",
        "Tickets opened by triage, maintenance or people.",
        also=("tenure.cli.ticket", "tenure.cli.quote"),
    ),
    "report": Lazy("tenure.cli.report", "app", "Reports for the owner."),
    "account": Lazy(
        "tenure.cli.account",
        "account_app",
        "Vendor accounts (RMM, SIEM, backup, hosted) and their secrets.",
    ),
    "sync": Lazy("tenure.cli.account", "sync_app", "Bring vendors' state into Tenure."),
    "offboard": Lazy(
        "tenure.cli.offboard",
        "app",
        "Offboarding: a planned, durable, verified end of service. A STEP is a step's key as `status` shows "
        "it, after the client's key (`approve acme p3.approval`), or alone when only one open run has that "
        "step.",
    ),
    "user": Lazy("tenure.cli.users", "app", "People who sign in to the web app, with their roles."),
    "notices": Lazy("tenure.cli.notices", "notices_app", "Notices: mail to clients and staff, sent and waiting."),
    "maintenance": Lazy(
        "tenure.cli.notices",
        "maintenance_app",
        "Proactive maintenance: plans, what is due, calendars.",
    ),
}
