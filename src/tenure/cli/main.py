"""The `tenure` command. Errors are one line on stderr and a non-zero exit. Each command's module is imported
when that command runs (cli/lazy.py), so a read answers at once; `tenure --help` and `tenure --version` are
answered before the command line's libraries are even imported (cli/listing.py)."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import Any

from tenure.cli.commands import COMMANDS  # noqa: F401  (the table, for whoever imports it from here)


def __getattr__(name: str) -> Any:
    """`app`, the root typer group (cli/root.py), built when asked for: tests and `main` use it."""
    if name == "app":
        from tenure.cli.root import app

        return app
    raise AttributeError(name)


def now_first(argv: list[str]) -> list[str]:
    """The arguments with every `--now X` / `--now=X` moved to the front, where the root command reads it,
    so `tenure ticket list --now X` means what `tenure --now X ticket list` does. Nothing after a `--` (the
    end of options: what follows is data) moves."""
    moved: list[str] = []
    kept: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            kept += argv[i:]
            break
        if arg == "--now" and i + 1 < len(argv):
            moved += argv[i : i + 2]
            i += 2
            continue
        if arg.startswith("--now="):
            moved.append(arg)
        else:
            kept.append(arg)
        i += 1
    return moved + kept


def main() -> None:
    sys.argv[1:] = now_first(sys.argv[1:])
    from tenure.cli import listing

    listing.answer_at_once(sys.argv[1:])  # --help, --version, nothing: exits here, nothing else imported
    from tenure.bulk import collector_paused

    with collector_paused():  # see tenure.cli.common.db
        from tenure.cli.common import err
        from tenure.cli.root import app
        from tenure.errors import TenureError

    atexit.register(_skip_the_last_collection)
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


def _skip_the_last_collection() -> None:
    """At exit, Python's last act would be a full collection over every object the command made (a fifth of a
    read's time) only to free memory that ending frees anyway. Frozen, it is skipped; module teardown still
    runs, so files close and other exit hooks run as before. Registered by `main` alone: an exit hook runs
    after the program, whoever called `main`."""
    gc.disable()
    gc.freeze()
