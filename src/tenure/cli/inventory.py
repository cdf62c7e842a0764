"""`tenure device add|edit|retire`, `tenure contact add|edit|remove`, `tenure job activate|pause|retire`."""

from __future__ import annotations

from typing import Annotated

import typer

from tenure.book import objects
from tenure.cli.common import JsonOpt, SetOpt, db, fields, show_object

device_app = typer.Typer(help="A client's devices: add, change, retire.", no_args_is_help=True)
contact_app = typer.Typer(help="A client's contacts: add, change, remove.", no_args_is_help=True)
job_app = typer.Typer(help="Backup jobs: answer a pending job, pause or retire one.", no_args_is_help=True)

Client = Annotated[str, typer.Argument(help="The client's key.", show_default=False)]
DeviceKey = Annotated[str, typer.Argument(help="The device's key.", show_default=False)]
Hostname = Annotated[str | None, typer.Option("--hostname", help="Its hostname, as alerts name it.")]
Site = Annotated[str | None, typer.Option("--site", help="The key of its site.", show_default=False)]
Role = Annotated[str | None, typer.Option("--role", help="server, workstation, network or other.", show_default=False)]
Os = Annotated[str | None, typer.Option("--os", help="Its operating system.", show_default=False)]
Version = Annotated[str | None, typer.Option("--version", help="Refuse if it changed since this version.")]


@device_app.command("add")
def device_add(
    client: Client,
    key: DeviceKey,
    hostname: Annotated[str, typer.Option("--hostname", help="Its hostname, as alerts name it.", show_default=False)],
    site: Site = None,
    role: Role = None,
    os: Os = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Add a device (a new laptop) to a client."""
    body = fields({"key": key, "hostname": hostname, "site": site, "role": role, "os": os}, set_)
    show_object(objects.create_item(db(), client, "devices", body), f"device {key}: added", json_)


@device_app.command("edit")
def device_edit(
    key: DeviceKey,
    hostname: Hostname = None,
    site: Site = None,
    role: Role = None,
    os: Os = None,
    set_: SetOpt = None,
    version: Version = None,
    json_: JsonOpt = False,
) -> None:
    """Change a device: only the fields given."""
    body = fields({"hostname": hostname, "site": site, "role": role, "os": os}, set_)
    client = objects.owner_of(db(), "devices", key)
    show_object(objects.patch_item(db(), client, "devices", key, body, version), f"device {key}: changed", json_)


@device_app.command("retire")
def device_retire(key: DeviceKey, json_: JsonOpt = False) -> None:
    """Retire a device: kept with its history, no longer managed."""
    client = objects.owner_of(db(), "devices", key)
    done = objects.remove_item(db(), client, "devices", key)
    show_object(done, f"device {key}: {done['outcome']}", json_)


ContactId = Annotated[str, typer.Argument(help="The contact's id (`contact list CLIENT`).", show_default=False)]
Email = Annotated[str | None, typer.Option("--email", help="Their e-mail address.", show_default=False)]
Phone = Annotated[str | None, typer.Option("--phone", help="Their phone number.", show_default=False)]
Roles = Annotated[
    list[str] | None, typer.Option("--role", help="primary, billing, technical or admin (repeat for several).")
]


@contact_app.command("list")
def contact_list(client: Client, json_: JsonOpt = False) -> None:
    """A client's contacts with their ids."""
    found = objects.list_items(db(), client, "contacts")
    if json_:
        show_object({"client": client, "contacts": found}, "", True)
        return
    for c in found:
        show_object(c, f"contact {c['id']}: {c['name']}", False)


@contact_app.command("add")
def contact_add(
    client: Client,
    name: Annotated[str, typer.Option("--name", help="Their name.", show_default=False)],
    email: Email = None,
    phone: Phone = None,
    role: Roles = None,
    json_: JsonOpt = False,
) -> None:
    """Add a contact to a client."""
    body = fields({"name": name, "email": email, "phone": phone, "roles": role or None})
    done = objects.create_item(db(), client, "contacts", body)
    show_object(done, f"contact {done['id']}: added", json_)


@contact_app.command("edit")
def contact_edit(
    client: Client,
    contact: ContactId,
    name: Annotated[str | None, typer.Option("--name", help="Their name.", show_default=False)] = None,
    email: Email = None,
    phone: Phone = None,
    role: Roles = None,
    version: Version = None,
    json_: JsonOpt = False,
) -> None:
    """Change a contact (a new address, a new role): only the fields given."""
    body = fields({"name": name, "email": email, "phone": phone, "roles": role or None})
    show_object(
        objects.patch_item(db(), client, "contacts", contact, body, version), f"contact {contact}: changed", json_
    )


@contact_app.command("remove")
def contact_remove(client: Client, contact: ContactId, json_: JsonOpt = False) -> None:
    """Remove a contact (the change log keeps who they were)."""
    done = objects.remove_item(db(), client, "contacts", contact)
    show_object(done, f"contact {contact}: {done['outcome']}", json_)


JobKey = Annotated[str, typer.Argument(help="The backup job's key.", show_default=False)]


def _job(action: str, help_: str) -> None:
    def command(key: JobKey, json_: JsonOpt = False) -> None:
        done = objects.set_job_status(db(), key, action)
        show_object(done, f"backup job {key}: {done['status']}", json_)

    command.__doc__ = help_
    job_app.command(action)(command)


_job("activate", "Activate a job: Tenure watches its results and raises missed backups (a pending job waits for this).")
_job("pause", "Pause a job: its results are recorded, nothing is ticketed or missed.")
_job("retire", "Retire a job: it is no longer expected.")
