"""`tenure backup FILE` and `tenure restore FILE`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tenure.cli.common import JsonOpt, db, err, print_json
from tenure.errors import TenureError
from tenure.operations.backup import backup as make_backup
from tenure.operations.backup import restore as load_backup

FileArg = Annotated[Path, typer.Argument(metavar="FILE", help="The backup file.", show_default=False)]


def backup(file: FileArg, json_: JsonOpt = False) -> None:
    """Back up the database while Tenure runs (SQLite online backup, or pg_dump for PostgreSQL)."""
    done = make_backup(db(), file)
    if json_:
        print_json(done)
    else:
        err.print(f"backed up to {done['file']} ({done['bytes']:,} bytes, {done['seconds']} s)", markup=False)


def restore(
    file: FileArg,
    yes: Annotated[bool, typer.Option("--yes", help="Replace the database without asking.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Replace the database with a backup (then migrate it to this version of Tenure)."""
    if not yes:
        if not sys.stdin.isatty():
            raise TenureError("restore replaces every record: confirm with --yes")
        typer.confirm(f"Replace every record of the database with {file}?", abort=True)
    done = load_backup(db(), file)
    if json_:
        print_json(done)
    else:
        err.print(f"restored from {done['file']} ({done['seconds']} s)", markup=False)
