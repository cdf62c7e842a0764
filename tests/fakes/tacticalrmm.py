"""A fake Tactical RMM: a real HTTP server on 127.0.0.1 (random port) that answers as Tactical's REST API does.

What it keeps from the real API (amidaware/tacticalrmm, api/tacticalrmm/*/urls.py and views.py):
- every request needs the `X-API-KEY` header (401 otherwise); routes end with a slash (404 without);
- agent routes take Tactical's long agent id (the `agent` path converter: 21 characters or more);
- `GET /agents/?client=<pk>&detail=false`, `GET|PUT|DELETE /agents/<agent_id>/`,
  `GET /agents/<agent_id>/checks/`, `GET /agents/<agent_id>/tasks/`, `GET|DELETE /checks/<pk>/`,
  `GET|DELETE /tasks/<pk>/`, `GET /clients/`, `GET|DELETE /clients/<pk>/`;
- deleting a client answers 400 "Agents exist under this client..." while agents remain under it;
- `PUT /agents/<agent_id>/` sets `maintenance_mode`, `block_policy_inheritance` (which hides the checks
  and tasks its policies give the agent) and the agent's `winupdatepolicy`.

- `GET /agents/<agent_id>/` shows the agent's `status` as Tactical's `Agent.status` computes it from
  `last_seen`: `online` within `offline_time` (4 minutes), `offline` within `overdue_time` (30), `overdue`
  beyond; `DELETE /agents/<agent_id>/` deletes the agent's record at once (and sends the uninstall, which an
  offline agent never hears);
- an agent uninstalled on its machine (`uninstall_on_machine`: group policy or by hand) stops reporting
  but stays listed, offline then overdue, and still blocks its client's delete, until its record is deleted.

What it adds, for tests:
- `now`: the fake's clock for `status` (None: the real time); a reporting agent is last seen `now`;
- `uninstall_delay`: seconds a deleted agent stays listed (0, the default, as Tactical: gone at once; None:
  forever, a deletion that never lands, to test what Tenure does then) or until `finish_uninstalls()`;
- `latency` seconds before every answer; `fail_next(status, n)` answers the next n requests with status;
- `stall = (text, seconds)`: the first write whose idempotency key contains `text` is applied, then its
  answer is held back (`stalled` is set meanwhile): a client killed then never heard the answer;
- idempotency: a write with an `Idempotency-Key` header that already succeeded is not applied again, its
  first answer is replayed (a failed one, 4xx or 5xx, changed nothing and is not kept);
- counters: `requests[(method, path)]`, `received[key]` (writes received per idempotency key),
  `applied[key]` (writes applied per key: a correct client never makes this more than 1) and
  `connections` (TCP connections accepted).

The API key is the `api_key` given to the constructor; tests hand the same key to Tenure through
TENURE_TACTICALRMM_API_KEY (or ConnectorSettings.api_keys).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

AGENT = r"(?P<agent>[^/]{20}[^/]+)"
OFFLINE_AFTER = timedelta(minutes=4)  # Agent.offline_time's default
OVERDUE_AFTER = timedelta(minutes=30)  # Agent.overdue_time's default
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(f"^{pattern}$"), name)
    for method, pattern, name in [
        ("GET", r"/agents/", "list_agents"),
        ("GET", rf"/agents/{AGENT}/", "get_agent"),
        ("PUT", rf"/agents/{AGENT}/", "put_agent"),
        ("DELETE", rf"/agents/{AGENT}/", "delete_agent"),
        ("GET", rf"/agents/{AGENT}/checks/", "agent_checks"),
        ("GET", rf"/agents/{AGENT}/tasks/", "agent_tasks"),
        ("GET", r"/checks/(?P<pk>\d+)/", "get_check"),
        ("DELETE", r"/checks/(?P<pk>\d+)/", "delete_check"),
        ("GET", r"/tasks/(?P<pk>\d+)/", "get_task"),
        ("DELETE", r"/tasks/(?P<pk>\d+)/", "delete_task"),
        ("GET", r"/clients/", "list_clients"),
        ("GET", r"/clients/(?P<pk>\d+)/", "get_client"),
        ("DELETE", r"/clients/(?P<pk>\d+)/", "delete_client"),
    ]
]


class FakeTacticalRMM:
    def __init__(self, api_key: str = "test-api-key", *, latency: float = 0.0, uninstall_delay: float | None = 0.0):
        self.now: datetime | None = None
        self.api_key = api_key
        self.latency = latency
        self.uninstall_delay = uninstall_delay
        self.lock = threading.RLock()
        self.clients: dict[int, dict[str, Any]] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        self.checks: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        self.received: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []
        self.connections = 0  # TCP connections accepted (a client that keeps its connection alive opens one)
        self._replies: dict[str, tuple[int, Any]] = {}
        self._failures: list[int] = []
        self.stall: tuple[str, float] | None = None
        self.stalled = threading.Event()
        self._stopping = threading.Event()
        self._next_pk = 100
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------------------------- the world

    def add_client(self, pk: int, name: str) -> None:
        with self.lock:
            self.clients[pk] = {"id": pk, "name": name, "sites": [{"id": pk * 10, "name": "Main"}]}

    def add_agent(
        self,
        agent_id: str,
        hostname: str,
        client: int,
        *,
        checks: Sequence[str] = (),
        policy_checks: Sequence[str] = (),
        tasks: Sequence[str] = (),
    ) -> None:
        """An agent under `client` with its checks (by check_type or name), policy checks and tasks."""
        with self.lock:
            self.agents[agent_id] = {
                "agent_id": agent_id,
                "hostname": hostname,
                "client": client,
                "site": client * 10,
                "maintenance_mode": False,
                "block_policy_inheritance": False,
                "winupdatepolicy": {
                    "critical": "approve",
                    "important": "approve",
                    "moderate": "inherit",
                    "low": "inherit",
                    "other": "inherit",
                },
                "uninstall_requested": None,
                "reporting": True,  # the agent on the machine checks in
                "last_seen": None,  # when it last did, once it stopped
            }
            for name, policy in [*((c, None) for c in checks), *((c, 1) for c in policy_checks)]:
                pk = self._pk()
                self.checks[pk] = {
                    "id": pk,
                    "agent": agent_id,
                    "policy": policy,
                    "check_type": name,
                    "name": None,
                    "readable_desc": f"{name} check",
                }
            for name in tasks:
                pk = self._pk()
                self.tasks[pk] = {"id": pk, "agent": agent_id, "policy": None, "name": name}

    def drop_agent(self, agent_id: str) -> None:
        """The agent disappears (a technician removed it by hand)."""
        with self.lock:
            self.agents.pop(agent_id, None)

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    def uninstall_on_machine(self, agent_id: str, at: datetime | None = None) -> None:
        """The agent is uninstalled on its machine (group policy, by hand): it stops reporting, last seen
        `at` (default: now); Tactical keeps listing it until its record is deleted."""
        with self.lock:
            agent = self.agents[agent_id]
            agent["reporting"], agent["last_seen"] = False, at or self.clock()

    def status_of(self, agent: dict[str, Any]) -> tuple[str, datetime]:
        """(status, last_seen) as Tactical's Agent.status computes them."""
        now = self.clock()
        seen = now if agent["reporting"] else agent["last_seen"]
        if seen >= now - OFFLINE_AFTER:
            return "online", seen
        return ("offline" if seen > now - OVERDUE_AFTER else "overdue"), seen

    def finish_uninstalls(self) -> None:
        with self.lock:
            for agent_id in [a for a, v in self.agents.items() if v["uninstall_requested"] is not None]:
                self.agents.pop(agent_id)

    def fail_next(self, status: int, count: int = 1) -> None:
        with self.lock:
            self._failures += [status] * count

    def listed(self, agent: dict[str, Any]) -> bool:
        requested = agent["uninstall_requested"]
        if requested is None:
            return True
        return self.uninstall_delay is None or time.monotonic() - requested < self.uninstall_delay

    def live_agents(self, client: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [a for a in self.agents.values() if self.listed(a) and (client is None or a["client"] == client)]

    def agent_checks_of(self, agent_id: str) -> list[dict[str, Any]]:
        agent = self.agents.get(agent_id)
        blocked = bool(agent and agent["block_policy_inheritance"])
        return [c for c in self.checks.values() if c["agent"] == agent_id and not (blocked and c["policy"])]

    def agent_tasks_of(self, agent_id: str) -> list[dict[str, Any]]:
        agent = self.agents.get(agent_id)
        blocked = bool(agent and agent["block_policy_inheritance"])
        return [t for t in self.tasks.values() if t["agent"] == agent_id and not (blocked and t["policy"])]

    def writes(self) -> list[dict[str, Any]]:
        return [e for e in self.log if e["method"] != "GET"]

    def _pk(self) -> int:
        self._next_pk += 1
        return self._next_pk

    # ------------------------------------------------------------------------------------ the server

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> FakeTacticalRMM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.handle(self.command, self.path, dict(self.headers.items()), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_POST = _handle

        class Server(ThreadingHTTPServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                with fake.lock:
                    fake.connections += 1
                super().process_request(request, client_address)

            def handle_error(self, request: Any, client_address: Any) -> None:  # a killed client: not news
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-tacticalrmm", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------------------------------ the API

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if self.latency:
            time.sleep(self.latency)
        parts = urlsplit(raw_path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        lowered = {k.lower(): v for k, v in headers.items()}
        key = lowered.get("idempotency-key") if method != "GET" else None
        with self.lock:
            self.requests[(method, path)] += 1
            entry: dict[str, Any] = {"method": method, "path": path, "key": key, "at": time.monotonic()}
            self.log.append(entry)
            status, body = self._answer(method, path, query, lowered, raw, key)
            entry["status"] = status
            hold = self.stall if key and self.stall and self.stall[0] in key and not self.stalled.is_set() else None
            if hold:
                self.stalled.set()
        if hold:
            self._stopping.wait(hold[1])
        return status, body

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes, key: str | None
    ) -> tuple[int, Any]:
        if headers.get("x-api-key") != self.api_key:
            return 401, {"detail": "Authentication credentials were not provided."}
        if self._failures:
            return self._failures.pop(0), {"detail": "injected failure"}
        found = next(((p.match(path), name) for m, p, name in ROUTES if m == method and p.match(path)), None)
        if found is None:
            return 404, {"detail": "Not found."}
        match, name = found
        assert match is not None
        if key is not None:
            self.received[key] += 1
            if key in self._replies:
                return self._replies[key]
        body = json.loads(raw) if raw else None
        status, answer = getattr(self, f"_{name}")(query=query, body=body, **match.groupdict())
        if key is not None and 200 <= status < 300:
            self._replies[key] = (status, answer)
            self.applied[key] += 1
        return status, answer

    def _agent(self, agent: str) -> dict[str, Any] | None:
        found = self.agents.get(agent)
        return found if found is not None and self.listed(found) else None

    def _short(self, agent: dict[str, Any]) -> dict[str, Any]:
        client = self.clients.get(agent["client"], {})
        return {
            "agent_id": agent["agent_id"],
            "hostname": agent["hostname"],
            "client": client.get("name"),
            "site": "Main",
        }

    def _list_agents(self, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        client = int(query["client"]) if "client" in query else None
        return 200, [self._short(a) for a in self.live_agents(client)]

    def _get_agent(self, agent: str, **_: Any) -> tuple[int, Any]:
        found = self._agent(agent)
        if found is None:
            return 404, {"detail": "Not found."}
        status, seen = self.status_of(found)
        return 200, {
            **self._short(found),
            "status": status,
            "last_seen": seen.isoformat().replace("+00:00", "Z"),
            "maintenance_mode": found["maintenance_mode"],
            "block_policy_inheritance": found["block_policy_inheritance"],
            "winupdatepolicy": [copy.deepcopy(found["winupdatepolicy"])],
        }

    def _put_agent(self, agent: str, body: Any, **_: Any) -> tuple[int, Any]:
        found = self._agent(agent)
        if found is None:
            return 404, {"detail": "Not found."}
        body = body or {}
        for field in ("maintenance_mode", "block_policy_inheritance"):
            if field in body:
                found[field] = bool(body[field])
        if "winupdatepolicy" in body:
            found["winupdatepolicy"].update(body["winupdatepolicy"][0])
        return 200, "The agent was updated successfully"

    def _delete_agent(self, agent: str, **_: Any) -> tuple[int, Any]:
        found = self._agent(agent)
        if found is None:
            return 404, {"detail": "Not found."}
        if self.uninstall_delay == 0:  # as Tactical: the record goes at once (`agent.delete()`)
            del self.agents[agent]
        elif found["uninstall_requested"] is None:
            found["uninstall_requested"] = time.monotonic()
        return 200, f"{found['hostname']} will now be uninstalled."

    def _agent_checks(self, agent: str, **_: Any) -> tuple[int, Any]:
        if self._agent(agent) is None:
            return 404, {"detail": "Not found."}
        return 200, copy.deepcopy(self.agent_checks_of(agent))

    def _agent_tasks(self, agent: str, **_: Any) -> tuple[int, Any]:
        if self._agent(agent) is None:
            return 404, {"detail": "Not found."}
        return 200, copy.deepcopy(self.agent_tasks_of(agent))

    def _get_check(self, pk: str, **_: Any) -> tuple[int, Any]:
        found = self.checks.get(int(pk))
        return (200, copy.deepcopy(found)) if found else (404, {"detail": "Not found."})

    def _delete_check(self, pk: str, **_: Any) -> tuple[int, Any]:
        found = self.checks.pop(int(pk), None)
        return (200, f"{found['readable_desc']} was deleted!") if found else (404, {"detail": "Not found."})

    def _get_task(self, pk: str, **_: Any) -> tuple[int, Any]:
        found = self.tasks.get(int(pk))
        return (200, copy.deepcopy(found)) if found else (404, {"detail": "Not found."})

    def _delete_task(self, pk: str, **_: Any) -> tuple[int, Any]:
        found = self.tasks.pop(int(pk), None)
        return (200, f"{found['name']} will be deleted shortly") if found else (404, {"detail": "Not found."})

    def _list_clients(self, **_: Any) -> tuple[int, Any]:
        return 200, [self._client_json(c) for c in self.clients.values()]

    def _client_json(self, client: dict[str, Any]) -> dict[str, Any]:
        return {**client, "agent_count": len(self.live_agents(client["id"]))}

    def _get_client(self, pk: str, **_: Any) -> tuple[int, Any]:
        found = self.clients.get(int(pk))
        return (200, self._client_json(found)) if found else (404, {"detail": "Not found."})

    def _delete_client(self, pk: str, **_: Any) -> tuple[int, Any]:
        found = self.clients.get(int(pk))
        if found is None:
            return 404, {"detail": "Not found."}
        if self.live_agents(found["id"]):
            return 400, (
                "Agents exist under this client. There needs to be a site specified to move existing agents to"
            )
        del self.clients[found["id"]]
        return 200, f"{found['name']} was deleted"


@contextmanager
def running(**options: Any) -> Iterator[FakeTacticalRMM]:
    fake = FakeTacticalRMM(**options).start()
    try:
        yield fake
    finally:
        fake.stop()


# ------------------------------------------------------------------------------------- a test world

AGENT_IDS = {
    "acme-dc01": "WjBb8rWCxlJTuLkGIvYNaCq8xjwKRqtnCsqvVpGz",
    "acme-ws01": "kPqL2mNnXoYtRbVcZaWsEdRfTgYhUjIkOlPmNbVc",
    "acme-ws02": "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUiOpAsDf",
    "acme-ws03": "ZxCvBnMaSdFgHjKlQwErTyUiOpZxCvBnMaSdFgHj",
}


def acme_book(
    url: str,
    devices: int = 1,
    *,
    features: tuple[str, ...] = ("patching", "automated_tasks", "antivirus"),
    checks: tuple[str, ...] = ("disk_space", "cpu"),
    siem: bool = True,
    backup: bool = True,
) -> dict[str, Any]:
    """INTERFACE.md's `acme` (tests/books.py) with `devices` Tactical RMM agents and its RMM account at `url`."""
    from tests.books import small

    book = small()
    acme = book["clients"][0]
    keys = list(AGENT_IDS)[:devices]
    acme["devices"] = [
        {
            "key": key,
            "hostname": key.upper(),
            "site": "main",
            "role": "server" if key.endswith("dc01") else "workstation",
            "os": "Windows Server 2019",
            "features": list(features),
            "checks": list(checks),
            "rmm": {"vendor": "tacticalrmm", "id": AGENT_IDS[key]},
        }
        for key in keys
    ]
    acme["accounts"] = [{"key": "acme-rmm", "kind": "rmm", "vendor": "tacticalrmm", "external_id": "7", "url": url}]
    if siem:
        acme["accounts"].append(
            {"key": "acme-siem", "kind": "siem", "vendor": "blumira", "edition": "SIEM Pro", "sensors": 1, "users": 2}
        )
    if not backup:
        acme["backup_jobs"] = []
    return book


def seed_acme(fake: FakeTacticalRMM, devices: int = 1, *, tasks: tuple[str, ...] = ("Nightly cleanup",)) -> None:
    """Tactical's side of `acme_book`: client 7 with one agent per device, its checks and tasks."""
    fake.add_client(7, "Acme Dental")
    for key in list(AGENT_IDS)[:devices]:
        fake.add_agent(AGENT_IDS[key], key.upper(), 7, checks=["diskspace", "cpuload"], tasks=list(tasks))
