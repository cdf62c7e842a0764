"""`tenure --help`, `tenure --version` and a bare `tenure`, answered from cli/commands.py alone.

Importing typer and rich to list the commands cost more than the listing itself (a tenth of a second of a
third); a person who types `tenure --help` waits for it. This draws the same listing typer would: the usage,
the options and the commands in boxes as wide as the terminal. Anything else on the line (a command, its own
`--help`) goes to the root group (cli/root.py) as before.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Iterable

from tenure import __version__
from tenure.cli.commands import ABOUT, COMMANDS, OPTIONS

HELP = ("--help", "-h")


def answer_at_once(argv: list[str]) -> None:
    """Print and exit when `argv` only asks for the listing or the version; else return."""
    if argv in ([], *([flag] for flag in HELP)):
        sys.stdout.write(render(_width()))
        sys.stdout.flush()
        sys.exit(2 if not argv else 0)  # a bare `tenure` is a usage error that shows the help, as click has it
    if argv == ["--version"]:
        sys.stdout.write(f"tenure {__version__}\n")
        sys.exit(0)


def _width() -> int:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 40 else shutil.get_terminal_size((80, 24)).columns


def render(width: int) -> str:
    width = max(width, 50)
    lines = [
        "",
        " Usage: tenure [OPTIONS] COMMAND [ARGS]...",
        "",
        *(f" {line}" for line in _wrap(ABOUT, width - 2)),
        "",
    ]
    options = [(name, metavar, text) for name, metavar, text in OPTIONS]
    lines += _box(
        "Options",
        [(f"{name:<{_column(o[0] for o in options)}}{metavar:<8}", text) for name, metavar, text in options],
        width,
    )
    lines += _box("Commands", [(f"{name:<{_column(COMMANDS)}}", entry.help) for name, entry in COMMANDS.items()], width)
    return "\n".join(lines) + "\n\n"


def _column(names: Iterable[str]) -> int:
    return max(len(n) for n in names) + 2


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def _box(title: str, rows: list[tuple[str, str]], width: int) -> list[str]:
    """A titled box: each row's left part, then its text wrapped under itself."""
    inner = width - 4  # "│ " and " │"
    top = f"╭─ {title} " + "─" * (width - len(title) - 5) + "╮"
    lines = [top]
    for left, text in rows:
        room = max(inner - len(left), 20)
        for i, part in enumerate(_wrap(text, room)):
            line = (left if i == 0 else " " * len(left)) + part
            lines.append(f"│ {line:<{inner}} │")
    lines.append("╰" + "─" * (width - 2) + "╯")
    return lines
