"""`tenure token create|list|revoke`."""

from __future__ import annotations

from typing import Annotated

import typer

from tenure.accounts.models import ROLES
from tenure.accounts.service import create_token, list_tokens, revoke_token
from tenure.cli.common import JsonOpt, db, err, new_table, out, print_json

app = typer.Typer(help="API tokens for scripts and monitoring tools.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses it, e.g. alertmanager.", show_default=False)],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}; intake may only post alerts.")] = "readonly",
    json_: JsonOpt = False,
) -> None:
    """Create a token and print it once: it is stored only as a hash."""
    token, info = create_token(db(), name, role)
    if json_:
        print_json(info.as_json() | {"token": token})
        return
    typer.echo(token)
    err.print(f"token {name!r} ({role}) created; copy it now, it will not be shown again")


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """Tokens by name and role (never the secret)."""
    tokens = list_tokens(db())
    if json_:
        print_json({"tokens": [t.as_json() for t in tokens]})
        return
    table = new_table(title="API tokens")
    for column in ("name", "role", "prefix", "created", "last used", "revoked"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            t.name,
            t.role,
            t.prefix,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    out.print(table)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(show_default=False)]) -> None:
    """Revoke a token: every request with it is refused from now on."""
    revoke_token(db(), name)
    err.print(f"token {name!r} revoked")
