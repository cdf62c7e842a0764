"""The root group of `tenure` (typer): its options, and every command of cli/commands.py loaded on use."""

from __future__ import annotations

import getpass

import typer

from tenure import __version__
from tenure.bulk import collector_paused
from tenure.cli.commands import ABOUT, COMMANDS, NOW_HELP, VERSION_HELP
from tenure.cli.common import apply_now
from tenure.cli.lazy import lazy_group

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    help=ABOUT,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tenure {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    now: str | None = typer.Option(None, "--now", help=NOW_HELP),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help=VERSION_HELP),
) -> None:
    with collector_paused():  # see tenure.cli.common.db
        from tenure.db.uow import actor  # here, before any command, not at start: `tenure.db` brings the ORM

    actor.set(f"cli:{_login()}")
    apply_now(now)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
