"""`tenure sync rmm`: an RMM's agents, checks and automated tasks become Tenure's devices.

The mapping is Tenure's: a client's RMM vendor account (`kind: rmm`) names the RMM's client id in
`external_id`. An agent is the device whose `rmm_id` is the agent's id, else the client's device with the
same hostname, else a new device. Only fields that differ are written, so a second sync changes nothing
(and logs nothing); a device whose agent is no longer listed is marked inactive, not deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tenure.clients.models import Client, Device, VendorAccount
from tenure.connectors.registry import ConnectorSettings, api_key
from tenure.connectors.tacticalrmm import TacticalRMM
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.text import header_safe

ROLES = {"server": "server", "workstation": "workstation"}


@dataclass
class RmmSync:
    account: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    error: str | None = None
    devices: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "error": self.error,
        }


def _check_name(check: dict[str, Any]) -> str:
    return str(check.get("name") or check.get("readable_desc") or check.get("check_type") or check.get("id"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "agent"


def sync_rmm(
    db: Database,
    account_key: str | None = None,
    settings: ConnectorSettings | None = None,
) -> list[RmmSync]:
    settings = settings or ConnectorSettings()
    with db.reader() as s:
        query = select(VendorAccount).where(
            VendorAccount.kind == "rmm", VendorAccount.vendor == "tacticalrmm", VendorAccount.active
        )
        if account_key:
            query = query.where(VendorAccount.key == account_key)
        accounts = list(s.scalars(query))
    if account_key and not accounts:
        raise TenureError(f"no active Tactical RMM account {account_key!r} (see `tenure account list`)")
    results = []
    for account in accounts:
        result = RmmSync(account.key)
        key = api_key(account, settings)
        if not account.url or not account.external_id or not key:
            result.error = (
                "needs url, external_id (the RMM's client id) and an API key "
                f"(`tenure account set-secret {account.key}`)"
            )
            results.append(result)
            continue
        try:
            with TacticalRMM(
                account.url, key, timeout=settings.timeout, retries=settings.retries, backoff=settings.backoff
            ) as rmm:
                agents = [
                    (agent, rmm.agent_checks(str(agent["agent_id"])), rmm.agent_tasks(str(agent["agent_id"])))
                    for agent in rmm.list_agents(account.external_id)
                ]
        except Exception as exc:  # one unreachable RMM must not stop the others; the reason is reported
            result.error = f"{type(exc).__name__}: {exc}"
            results.append(result)
            continue
        _apply(db, account, agents, result)
        results.append(result)
    return results


def _apply(
    db: Database, account: VendorAccount, agents: list[tuple[dict[str, Any], list[Any], list[Any]]], result: RmmSync
) -> None:
    with db.unit_of_work() as s:
        client_key = s.scalar(select(Client.key).where(Client.id == account.client_id))
        devices = list(s.scalars(select(Device).where(Device.client_id == account.client_id)))
        by_agent = {d.rmm_id: d for d in devices if d.rmm_vendor == "tacticalrmm" and d.rmm_id}
        by_host = {d.hostname.lower(): d for d in devices}
        taken = set(s.scalars(select(Device.key).where(Device.key.like(f"{client_key}-%"))))
        seen: set[int] = set()
        for agent, checks, tasks in agents:
            # a hostname is one line (mail subjects, calendars, the book): a control character becomes a space
            agent_id = str(agent["agent_id"])
            hostname = header_safe(str(agent.get("hostname") or agent_id)).strip() or agent_id
            device = by_agent.get(agent_id) or by_host.get(hostname.lower())
            features = set(device.features) if device else {"patching", "remote_control"}
            if tasks:
                features.add("automated_tasks")
            values: dict[str, Any] = {
                "hostname": hostname,
                "rmm_vendor": "tacticalrmm",
                "rmm_id": agent_id,
                "active": True,
                "checks": sorted({_check_name(c) for c in checks}),
                "features": sorted(features),
            }
            role = ROLES.get(str(agent.get("monitoring_type") or ""))
            if role:
                values["role"] = role
            if agent.get("operating_system"):
                values["os"] = header_safe(str(agent["operating_system"])).strip()
            if device is None:
                key = f"{client_key}-{_slug(hostname)}"
                n = 1
                while key in taken:
                    n += 1
                    key = f"{client_key}-{_slug(hostname)}-{n}"
                taken.add(key)
                device = Device(client_id=account.client_id, key=key, **values)
                s.add(device)
                result.created += 1
            else:
                changed = {k: v for k, v in values.items() if getattr(device, k) != v}
                for k, v in changed.items():
                    setattr(device, k, v)
                if changed:
                    result.updated += 1
                else:
                    result.unchanged += 1
            s.flush()
            seen.add(device.id)
            result.devices.append(device.key)
        for device in devices:
            if device.rmm_vendor == "tacticalrmm" and device.id not in seen and device.active:
                device.active = False  # its agent is gone from the RMM: kept for history, not monitored
                result.deactivated += 1
