"""`tenure` imports a command's module only when that command runs, and `tenure --help` still lists every
command with its own one-line help."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import typer

from tenure.cli.lazy import every_command
from tenure.cli.main import COMMANDS, app


def _first_paragraph(command) -> str:
    return inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]


def test_every_command_loads_and_the_listing_shows_its_own_help():
    commands = every_command(typer.main.get_command(app))
    assert set(COMMANDS) <= set(commands)
    for name, command in commands.items():
        assert command is not None and command.name == name
        if name in COMMANDS:
            assert COMMANDS[name].help == _first_paragraph(command), f"COMMANDS[{name!r}].help is not the command's"


@pytest.mark.parametrize("name", sorted(every_command(typer.main.get_command(app))))
def test_each_command_answers_its_help(name):
    done = subprocess.run([sys.executable, "-m", "tenure", name, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and name in done.stdout


def test_the_listing_imports_no_command_and_no_database_layer():
    probe = (
        "import sys\n"
        "from tenure.cli.main import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('sqlalchemy', 'tenure.db', 'tenure.cli.client', 'fastapi', 'pydantic')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": ""}
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    for name in COMMANDS:  # every command listed, each with its help
        assert f" {name} " in done.stdout
