"""Tactical RMM's REST API (https://github.com/amidaware/tacticalrmm), as its Django URLconf defines it.

Routes (api/tacticalrmm/tacticalrmm/urls.py mounts each app at its prefix; trailing slashes matter, the
docs warn: "Pay attention to your trailing `/` they matter"):

- `GET /agents/?client=<client pk>&detail=false`: the client's agents (agents/views.py `GetAgents.get`
  filters `site__client_id` on the `client` query parameter; `detail=false` gives the short serializer
  with `agent_id` and `hostname`).
- `PUT /agents/<agent_id>/`: edit an agent: `maintenance_mode`, `block_policy_inheritance`, and a
  `winupdatepolicy` list whose first item replaces the agent's patch policy (`GetUpdateDeleteAgent.put`).
- `DELETE /agents/<agent_id>/`: uninstall: Tactical sends the uninstall to the agent without waiting, deletes
  the agent's record and answers at once ("<host> will now be uninstalled."), so the result is checked by
  listing afterwards (`GetUpdateDeleteAgent.delete`). An offline agent never hears the uninstall.
  `<agent_id>` is Tactical's long agent id (the `agent` path converter wants 21 characters or more).
- `GET /agents/<agent_id>/checks/` (alias of checks' `GetAddChecks`, the agent's checks including those
  its policies add) and `DELETE /checks/<pk>/` (checks/urls.py, `GetUpdateDeleteCheck.delete`). A check
  with a `policy` belongs to an automation policy shared with other agents: deleting it would delete it
  everywhere, so the agent is excluded from policies instead (`block_policy_inheritance`).
- `GET /agents/<agent_id>/tasks/` and `DELETE /tasks/<pk>/` (autotasks/urls.py): automated tasks.
- `GET /clients/<pk>/` and `DELETE /clients/<pk>/` (clients/urls.py): the delete answers 400 "Agents exist
  under this client..." while agents remain (`GetUpdateDeleteClient.delete`, `live_agent_count`: offline
  agents count).
- `GET /agents/<agent_id>/` (AgentSerializer): `status` is `online`, `offline` (not heard from for the
  agent's `offline_time`, 4 minutes by default) or `overdue` (`overdue_time`, 30), and `last_seen`. An agent
  uninstalled on its machine (group policy, by hand) stops reporting but stays listed, offline, until
  `DELETE /agents/<agent_id>/` deletes its record: `confirm_agent_stopped` then `delete_agent`.

Authentication is the `X-API-KEY` header (docs/functions/api.md). Tactical does not implement
`Idempotency-Key`; every write sends it anyway (a proxy or a later version may honour it), and the writes
used here are idempotent by nature: a repeated delete answers 404, which counts as done.

Every call is logged in the step's `CallLog`; 429 and 5xx answers, timeouts and connection errors are tried
again with exponential backoff (honouring `Retry-After`), then reported as a retryable `ConnectorError`.

Features: Tactical has patch management (the agent's Windows Update policy: every severity set to
`ignore`, winupdate/models.py) and automated tasks. Remote control (MeshCentral, built in), antivirus and
backup are not Tactical features it can switch off per agent: those steps become manual.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from tenure.connectors.base import ActionResult, CallLog, ConnectorError, NotSupported
from tenure.connectors.http import HttpClients, client_for
from tenure.connectors.manual import instructions_for

VENDOR = "tacticalrmm"
RETRYABLE = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_CAP = 30.0

# Tenure's check names (the book's device `checks`) and Tactical's check_type values (tacticalrmm.constants)
CHECK_TYPES = {
    "disk_space": "diskspace",
    "cpu": "cpuload",
    "cpu_load": "cpuload",
    "memory": "memory",
    "ping": "ping",
    "windows_service": "winsvc",
    "service": "winsvc",
    "event_log": "eventlog",
}
# winupdate/models.py AUTO_APPROVAL_CHOICES: "ignore" means no update of that severity is installed
PATCHING_OFF = {
    "critical": "ignore",
    "important": "ignore",
    "moderate": "ignore",
    "low": "ignore",
    "other": "ignore",
    "reboot_after_install": "never",
    "reprocess_failed_inherit": False,
    "reprocess_failed": False,
    "email_if_fail": False,
}
FEATURES = ("patching", "automated_tasks")
# tacticalrmm.constants AGENT_STATUS_*: an agent not heard from for `offline_time` minutes is offline, for
# `overdue_time` overdue; either way it stopped reporting
STOPPED = ("offline", "overdue")


def _moment(value: Any) -> datetime | None:
    """A DRF datetime ("2026-12-15T17:02:11.123456Z") as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _norm(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text or "").lower())


def check_matches(check: Mapping[str, Any], name: str) -> bool:
    """Whether a Tactical check is the one Tenure calls `name` (by type, name or description)."""
    wanted = _norm(name)
    kind = str(check.get("check_type") or "")
    return (
        kind == CHECK_TYPES.get(name)
        or _norm(kind) == wanted
        or _norm(check.get("name")) == wanted
        or _norm(check.get("readable_desc")) == wanted
    )


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any

    @property
    def text(self) -> str:
        return self.data if isinstance(self.data, str) else str(self.data)


class TacticalRMM:
    vendor = VENDOR

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        calls: CallLog | None = None,
        dry_run: bool = False,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        clients: HttpClients | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.calls = calls if calls is not None else CallLog()
        self.dry_run = dry_run
        self.retries = retries
        self.backoff = backoff
        headers = {"X-API-KEY": api_key, "Accept": "application/json"}
        if clients is None or transport is not None:
            self.http, self._owns_http = client_for(self.base_url + "/", headers, timeout, transport), True
        else:  # the pool's client outlives this connector (the runner's next steps use it): not closed here
            self.http, self._owns_http = clients.get(self.base_url + "/", headers, timeout), False

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> TacticalRMM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ calls

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        key: str | None = None,
    ) -> Reply:
        shown = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        if method != "GET" and self.dry_run:
            self.calls.record(method, shown, None, key=key, dry_run=True)
            return Reply(200, "dry run")
        headers = {"Idempotency-Key": key} if key else {}
        for attempt in range(self.retries + 1):
            started = time.monotonic()
            try:
                response = self.http.request(method, path.lstrip("/"), params=params, json=json, headers=headers)
            except httpx.TransportError as exc:
                ms = int((time.monotonic() - started) * 1000)
                self.calls.record(method, shown, None, ms=ms, key=key, error=f"{type(exc).__name__}: {exc}")
                if attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                raise ConnectorError(
                    f"Tactical RMM at {self.base_url} did not answer {method} {shown} after {attempt + 1} tries "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            ms = int((time.monotonic() - started) * 1000)
            self.calls.record(method, shown, response.status_code, ms=ms, key=key)
            if response.status_code in RETRYABLE and attempt < self.retries:
                time.sleep(self._retry_after(response) or self.backoff * 2**attempt)
                continue
            return self._reply(method, shown, response, attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        try:
            return min(float(response.headers.get("Retry-After", "")), RETRY_AFTER_CAP)
        except ValueError:
            return None

    def _reply(self, method: str, shown: str, response: httpx.Response, tries: int) -> Reply:
        try:
            data: Any = response.json()
        except ValueError:
            data = response.text
        status = response.status_code
        if status in RETRYABLE:
            raise ConnectorError(f"Tactical RMM answered {status} to {method} {shown} after {tries} tries")
        if status in (401, 403):
            raise ConnectorError(
                f"Tactical RMM at {self.base_url} refused the API key ({status}) for {method} {shown}: store a "
                "valid key for the RMM account (or set TENURE_TACTICALRMM_API_KEY)",
                retryable=False,
            )
        return Reply(status, data)

    def _unexpected(self, method: str, path: str, reply: Reply) -> ConnectorError:
        return ConnectorError(
            f"Tactical RMM answered {reply.status} to {method} {path}: {reply.text[:200]}",
            retryable=reply.status >= 500,
        )

    def _get_list(self, path: str, params: Mapping[str, str] | None = None, *, missing_ok: bool = False) -> list[Any]:
        reply = self._request("GET", path, params=params)
        if reply.status == 404 and missing_ok:
            return []
        if reply.status != 200 or not isinstance(reply.data, list):
            raise self._unexpected("GET", path, reply)
        return reply.data

    def _write(self, method: str, path: str, key: str, json: Any = None) -> Reply:
        """A write that must land once: 2xx is done, 404 means it was already done (the thing is gone)."""
        reply = self._request(method, path, json=json, key=f"{key}:{method}:{path}")
        if reply.status not in (200, 201, 204, 404):
            raise self._unexpected(method, path, reply)
        return reply

    # ------------------------------------------------------------------------------------------ reads

    def list_agents(self, client_ref: str) -> list[dict[str, Any]]:
        return self._get_list("/agents/", {"client": str(client_ref), "detail": "false"})

    def agent_listed(self, client_ref: str, agent_ref: str) -> bool:
        return any(str(a.get("agent_id")) == str(agent_ref) for a in self.list_agents(client_ref))

    def agent_checks(self, agent_ref: str) -> list[dict[str, Any]]:
        return self._get_list(f"/agents/{agent_ref}/checks/", missing_ok=True)

    def agent_tasks(self, agent_ref: str) -> list[dict[str, Any]]:
        return self._get_list(f"/agents/{agent_ref}/tasks/", missing_ok=True)

    def client_exists(self, client_ref: str) -> bool:
        reply = self._request("GET", f"/clients/{client_ref}/")
        if reply.status == 404:
            return False
        if reply.status != 200:
            raise self._unexpected("GET", f"/clients/{client_ref}/", reply)
        return True

    def list_inventory(self, client_ref: str) -> dict[str, Any]:
        agents = []
        for agent in self.list_agents(client_ref):
            checks = self.agent_checks(str(agent.get("agent_id")))
            agents.append(
                {
                    "agent_id": agent.get("agent_id"),
                    "hostname": agent.get("hostname"),
                    "checks": [
                        {
                            "id": c.get("id"),
                            "check_type": c.get("check_type"),
                            "name": c.get("name"),
                            "policy": c.get("policy"),
                        }
                        for c in checks
                    ],
                }
            )
        return {"client": client_ref, "agents": agents}

    # ----------------------------------------------------------------------------------------- writes

    def disable_feature(self, agent_ref: str, feature: str, *, key: str) -> ActionResult:
        path = f"/agents/{agent_ref}/"
        if feature == "patching":
            reply = self._write("PUT", path, key, {"winupdatepolicy": [PATCHING_OFF]})
            if reply.status == 404:
                return ActionResult(True, "the agent is already gone", {"agent": agent_ref})
            return ActionResult(True, "patch policy set to ignore every update", {"agent": agent_ref})
        if feature == "automated_tasks":
            tasks = self.agent_tasks(agent_ref)
            own = [t for t in tasks if not t.get("policy")]
            for task in own:
                self._write("DELETE", f"/tasks/{task['id']}/", key)
            if len(own) < len(tasks):
                self._write("PUT", path, key, {"block_policy_inheritance": True})
            if self.dry_run:
                return ActionResult(True, f"would delete {len(tasks)} task(s)", {"tasks": len(tasks)})
            left = self.agent_tasks(agent_ref)
            if left:
                return ActionResult(
                    False,
                    f"{len(left)} automated task(s) still listed on agent {agent_ref}",
                    {"tasks": [t.get("name") for t in left]},
                )
            return ActionResult(True, f"{len(tasks)} automated task(s) deleted", {"tasks": len(tasks)})
        raise NotSupported(
            f"Tactical RMM has no per-agent switch for {feature}",
            instructions_for(
                VENDOR, "disable_feature", {"rmm_id": agent_ref, "feature": feature}, f"turn off {feature}"
            ),
        )

    def delete_check(self, agent_ref: str, check: str, *, key: str) -> ActionResult:
        matching = [c for c in self.agent_checks(agent_ref) if check_matches(c, check)]
        if not matching:
            return ActionResult(True, f"no check '{check}' on agent {agent_ref}", {"deleted": 0})
        own = [c for c in matching if not c.get("policy")]
        for found in own:
            self._write("DELETE", f"/checks/{found['id']}/", key)
        if len(own) < len(matching):  # a policy's check: leave the policy alone, leave the policy
            self._write("PUT", f"/agents/{agent_ref}/", key, {"block_policy_inheritance": True})
        if self.dry_run:
            return ActionResult(True, f"would delete {len(matching)} check(s)", {"deleted": len(matching)})
        left = [c for c in self.agent_checks(agent_ref) if check_matches(c, check)]
        if left:
            return ActionResult(
                False, f"check '{check}' is still listed on agent {agent_ref}", {"left": [c.get("id") for c in left]}
            )
        return ActionResult(
            True,
            f"{len(matching)} check(s) '{check}' deleted",
            {"deleted": len(own), "policy_blocked": len(matching) - len(own)},
        )

    def uninstall_agent(self, client_ref: str, agent_ref: str, *, key: str) -> ActionResult:
        if not self.agent_listed(client_ref, agent_ref):
            return ActionResult(True, f"agent {agent_ref} is not listed by Tactical RMM (already uninstalled)")
        # no alert while the agent goes offline for good
        self._write("PUT", f"/agents/{agent_ref}/", key, {"maintenance_mode": True})
        reply = self._write("DELETE", f"/agents/{agent_ref}/", key)
        if self.dry_run:
            return ActionResult(True, "would uninstall the agent", {"agent": agent_ref})
        if self.agent_listed(client_ref, agent_ref):
            return ActionResult(
                False,
                f"uninstall of agent {agent_ref} requested; Tactical RMM still lists it",
                {"agent": agent_ref, "answer": reply.text[:200]},
            )
        return ActionResult(True, f"agent {agent_ref} uninstalled (no longer listed)", {"agent": agent_ref})

    def agent(self, agent_ref: str) -> dict[str, Any] | None:
        """The agent as `GET /agents/<agent_id>/` shows it (AgentSerializer: `status` online, offline or
        overdue from its `last_seen`); None once its record is deleted."""
        reply = self._request("GET", f"/agents/{agent_ref}/")
        if reply.status == 404:
            return None
        if reply.status != 200 or not isinstance(reply.data, dict):
            raise self._unexpected("GET", f"/agents/{agent_ref}/", reply)
        return reply.data

    def confirm_agent_stopped(self, client_ref: str, agent_ref: str, since: datetime) -> ActionResult:
        """An agent uninstalled on its machine (group policy, by hand) stays listed, offline, until its
        record is deleted: done when Tactical shows it offline (or overdue) and last seen no later than
        `since`, the moment the uninstall was done; or when its record is already gone."""
        found = self.agent(agent_ref)
        if found is None:
            return ActionResult(True, f"agent {agent_ref} is no longer listed (its record is already deleted)",
                                {"agent": agent_ref, "listed": False})
        status, seen = str(found.get("status") or ""), _moment(found.get("last_seen"))
        facts = {"agent": agent_ref, "status": status, "last_seen": found.get("last_seen"),
                 "uninstalled_at": since.isoformat()}
        if status not in STOPPED:
            return ActionResult(False, f"agent {agent_ref} ({found.get('hostname')}) is still {status or 'listed'}, "
                                f"last seen {found.get('last_seen')}: the uninstall has not taken", facts)
        if seen is not None and seen > since:
            return ActionResult(False, f"agent {agent_ref} ({found.get('hostname')}) reported at {seen.isoformat()}, "
                                f"after its uninstall at {since.isoformat()}: it was not uninstalled", facts)
        return ActionResult(True, f"Tactical RMM shows agent {agent_ref} {status}, last seen "
                            f"{found.get('last_seen') or 'never'}, before its uninstall at {since.isoformat()}", facts)

    def delete_agent(self, client_ref: str, agent_ref: str, *, key: str) -> ActionResult:
        """Delete an uninstalled agent's record (`DELETE /agents/<agent_id>/`; the uninstall command it also
        sends reaches no one), then look: done once Tactical no longer has it."""
        self._write("DELETE", f"/agents/{agent_ref}/", key)
        if self.dry_run:
            return ActionResult(True, "would delete the agent's record", {"agent": agent_ref})
        if self.agent(agent_ref) is not None:
            return ActionResult(
                False, f"Tactical RMM still lists agent {agent_ref} after its delete", {"agent": agent_ref}
            )
        return ActionResult(True, f"agent {agent_ref}'s record deleted from Tactical RMM", {"agent": agent_ref})

    def confirm_agent_removed(self, client_ref: str, agent_ref: str) -> ActionResult:
        if self.agent_listed(client_ref, agent_ref):
            return ActionResult(False, f"Tactical RMM still lists agent {agent_ref}", {"agent": agent_ref})
        return ActionResult(True, f"agent {agent_ref} no longer listed", {"agent": agent_ref})

    def remove_client(self, client_ref: str, *, key: str) -> ActionResult:
        if not self.client_exists(client_ref):
            return ActionResult(True, f"client {client_ref} is not in Tactical RMM (already removed)")
        path = f"/clients/{client_ref}/"
        reply = self._request("DELETE", path, key=f"{key}:DELETE:{path}")
        if reply.status == 400:
            agents = self.list_agents(client_ref)
            names = ", ".join(f"{a.get('hostname')} ({a.get('agent_id')})" for a in agents) or "none listed"
            return ActionResult(
                False,
                f"Tactical RMM refuses to delete client {client_ref} while agents remain "
                f"under it: {names} ({reply.text[:120]})",
                {"agents": [a.get("agent_id") for a in agents]},
            )
        if reply.status not in (200, 204, 404):
            raise self._unexpected("DELETE", path, reply)
        if self.dry_run:
            return ActionResult(True, "would delete the client", {"client": client_ref})
        if self.client_exists(client_ref):
            return ActionResult(False, f"client {client_ref} still listed after its delete")
        return ActionResult(True, f"client {client_ref} removed from Tactical RMM", {"client": client_ref})

    def export_backup(self, ref: str, target: Mapping[str, Any], *, key: str) -> ActionResult:
        raise NotSupported(
            "Tactical RMM holds no backup data",
            instructions_for(VENDOR, "export_copy", target, "hand over a copy of the backup data"),
        )
