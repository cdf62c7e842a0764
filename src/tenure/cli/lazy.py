"""Commands imported when they run, not when `tenure` starts.

Importing every command's module (and with them the ORM, the services, the web stack) took two seconds
before any command did anything. The root group knows each command by name, where it lives and its one-line
help; `tenure --help` lists them from that table alone, and a command's module is imported only when that
command is run (or its own `--help` asked for).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from tenure.bulk import collector_paused
from tenure.cli.commands import Lazy


def load(name: str, entry: Lazy) -> Any:
    """The click command of `entry`, named `name` (its module imported now, the collector paused: see
    tenure.cli.common.db)."""
    with collector_paused():
        for module in entry.also:
            importlib.import_module(module)
        target = getattr(importlib.import_module(entry.module), entry.attribute)
    parent = typer.Typer(add_completion=False)  # registered as the root registered it before, so made the same
    if isinstance(target, typer.Typer):
        parent.add_typer(target, name=name)
    else:
        parent.command(name)(target)
    parent.callback()(_nothing)  # a callback keeps the parent a group even with one command
    group = typer.main.get_command(parent)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _nothing() -> None:
    pass


def lazy_group(table: dict[str, Lazy]) -> type[TyperGroup]:
    """A root group class whose commands are `table`'s, loaded on use."""

    class LazyGroup(TyperGroup):
        def list_commands(self, ctx: Any) -> list[str]:
            return [*super().list_commands(ctx), *(name for name in table if name not in self.commands)]

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            if cmd_name in self.commands or cmd_name not in table:
                return super().get_command(ctx, cmd_name)
            # a listing (`tenure --help`) needs the name and help only: a stand-in, nothing imported
            return TyperCommand(cmd_name, help=table[cmd_name].help)

        def resolve_command(self, ctx: Any, args: list[str]) -> Any:
            name = args[0] if args else None
            if name in table and name not in self.commands:
                self.commands[name] = load(name, table[name])
            return super().resolve_command(ctx, args)

    return LazyGroup


def every_command(group: Any) -> dict[str, Any]:
    """Every command of the root group, each loaded (for tests and for checking the table)."""
    ctx = typer.Context(group)
    return {name: group.resolve_command(ctx, [name])[1] for name in group.list_commands(ctx)}
