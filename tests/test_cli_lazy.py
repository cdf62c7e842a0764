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


def test_tenure_help_answers_before_the_command_line_libraries_load():
    """`tenure --help` (the console script's `main`) lists every command with its help, the root options, and
    loads neither typer nor rich: the listing is drawn from the table alone."""
    probe = (
        "import sys\n"
        "sys.argv = ['tenure', '--help']\n"
        "from tenure.cli.main import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('LOADED', [m for m in ('typer', 'rich', 'sqlalchemy', 'pydantic') if m in sys.modules], 'EXIT', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env={"COLUMNS": "100", "PATH": ""}
    )
    assert "LOADED [] EXIT 0" in done.stdout, done.stdout + done.stderr
    assert "Usage: tenure [OPTIONS] COMMAND [ARGS]..." in done.stdout
    for name, entry in COMMANDS.items():
        assert f"│ {name} " in done.stdout
        assert entry.help.split()[0] in done.stdout
    for option in ("--now", "--version", "--help"):
        assert f"│ {option} " in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) == 100  # as wide as the terminal


def test_bare_tenure_shows_the_listing_as_a_usage_error_and_version_answers():
    bare = subprocess.run([sys.executable, "-m", "tenure"], capture_output=True, text=True, timeout=120)
    assert bare.returncode == 2 and "Commands" in bare.stdout
    version = subprocess.run([sys.executable, "-m", "tenure", "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("tenure ")


READ_PROBE = (
    "import contextlib, io, runpy, sys\n"
    "sys.argv = ['tenure', *sys.argv[1:]]\n"
    "shown = io.StringIO()\n"
    "with contextlib.redirect_stdout(shown), contextlib.suppress(SystemExit):\n"
    "    runpy.run_module('tenure', run_name='__main__')\n"
    "heavy = ('rich', 'pydantic', 'tenure.models', 'tenure.intake.service', 'tenure.web.queries', 'fastapi')\n"
    "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    "print(shown.getvalue())\n"
)


@pytest.mark.parametrize(("command", "key"), [(["client", "list"], "clients"), (["ticket", "list"], "tickets")])
def test_a_json_read_loads_only_what_it_reads(db, tmp_path, command, key):
    """A read answers at once: it imports the tables it queries, not the whole model; nor rich (nothing is
    drawn), typer's pydantic adapters, intake's parsers or the pages' read models."""
    import json

    env = {"TENURE_DATABASE_URL": db.url, "TENURE_HOME": str(tmp_path), "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", READ_PROBE, *command, "--json"], capture_output=True, text=True, timeout=120, env=env
    )
    loaded, _, shown = done.stdout.partition("\n")
    assert loaded == "LOADED []", done.stdout + done.stderr
    assert key in json.loads(shown)

