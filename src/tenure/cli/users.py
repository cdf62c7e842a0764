"""`tenure user create|list|password|role|deactivate|activate`, and `--user` for `tenure token create`.

Passwords are read from standard input when it is not a terminal (`echo "$PW" | tenure user create ann
--role owner`), otherwise asked for twice without echo. They are stored as argon2id hashes.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from tenure.accounts.models import ROLES
from tenure.accounts.service import create_token
from tenure.accounts.users import USER_ROLES, create_user, create_user_token, list_users, set_active, set_password
from tenure.accounts.users import set_role as change_role
from tenure.cli import token as token_cli
from tenure.cli.common import JsonOpt, db, err, new_table, out, print_json
from tenure.errors import TenureError

app = typer.Typer(help="People who sign in to the web app, with their roles.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The user name (what they type to sign in).", show_default=False)]
RoleOpt = Annotated[str, typer.Option("--role", help=f"One of {', '.join(USER_ROLES)}.", show_default=False)]


def read_password(confirm: bool = True) -> str:
    """The password from standard input (one line) or, on a terminal, a prompt without echo."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise TenureError("no password on standard input")
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise TenureError("the two passwords differ")
    return first


@app.command("create")
def create(name: NameArg, role: RoleOpt, json_: JsonOpt = False) -> None:
    """Create a user with a role; the password comes from standard input or a prompt."""
    info = create_user(db(), name, read_password(), role)
    if json_:
        print_json(info.as_json())
    else:
        err.print(f"user {info.username!r} ({info.role}) created", markup=False)


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """Users with their roles."""
    users = list_users(db())
    if json_:
        print_json({"users": [u.as_json() for u in users]})
        return
    table = new_table(title="Users")
    for column in ("user", "role", "active", "password"):
        table.add_column(column)
    for u in users:
        table.add_row(u.username, u.role, "yes" if u.active else "no", "set" if u.has_password else "-")
    out.print(table)


@app.command("password")
def password(name: NameArg) -> None:
    """Set a new password (standard input or a prompt); the user's sessions end."""
    set_password(db(), name, read_password())
    err.print(f"password of {name!r} changed; their sessions are closed", markup=False)


@app.command("role")
def role(name: NameArg, new_role: Annotated[str, typer.Argument(metavar="ROLE", show_default=False)]) -> None:
    """Give a user another role."""
    info = change_role(db(), name, new_role)
    err.print(f"{info.username!r} is now {info.role}", markup=False)


@app.command("deactivate")
def deactivate(name: NameArg) -> None:
    """A deactivated user cannot sign in; their sessions end and their tokens are refused."""
    set_active(db(), name, False)
    err.print(f"{name!r} deactivated", markup=False)


@app.command("activate")
def activate(name: NameArg) -> None:
    """Let a deactivated user sign in again."""
    set_active(db(), name, True)
    err.print(f"{name!r} activated", markup=False)


# ------------------------------------------------------------------- `tenure token create ... --user`


def token_create(
    name: Annotated[str, typer.Argument(help="Who or what uses it, e.g. alertmanager.", show_default=False)],
    role: Annotated[
        str | None,
        typer.Option(help=f"One of {', '.join(ROLES)}; intake may only post alerts. Default: readonly, or the user's."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="The user it belongs to: refused once they are deactivated, never above them."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a token and print it once: it is stored only as a hash."""
    if user is not None:
        token, info = create_user_token(db(), name, role, user)
    else:
        token, info = create_token(db(), name, role or "readonly")
    if json_:
        print_json(info.as_json() | {"token": token, "user": user})
        return
    typer.echo(token)
    owner = f" for {user}" if user else ""
    err.print(f"token {name!r} ({info.role}){owner} created; copy it now, it will not be shown again", markup=False)


# the token command group is another module's; its `create` gains `--user` here, same name, same output
for _info in token_cli.app.registered_commands:
    if _info.name == "create":
        _info.callback = token_create
