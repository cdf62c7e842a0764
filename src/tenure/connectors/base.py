"""What a vendor connector can do for offboarding, and how every call it makes is recorded.

A connector speaks to one vendor account (an RMM, a backup product...) on behalf of one step. It is built
for that step with a `CallLog`, so every HTTP call it makes (method, path, status, time, idempotency key)
lands in the step's attempt, for the audit. Write calls carry the step's idempotency key: a vendor that
honours `Idempotency-Key` applies a repeated call once, and the connector also treats "already gone" (a
404 on a delete) as done, so a step taken over after a crash never does its work twice.

`dry_run` connectors make their read calls but only record the write calls they would make.

A vendor without a write API (or an action a vendor cannot do by API) raises `NotSupported` with what a
person has to do instead: the runner turns the step into a manual one with those instructions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class ConnectorError(Exception):
    """A vendor call that failed. `retryable`: worth trying again later (timeouts, 429, 5xx); otherwise a
    person has to fix something first (a refused API key, a missing account)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotSupported(ConnectorError):
    """The vendor cannot do this through its API: `instructions` say what a person does instead."""

    def __init__(self, message: str, instructions: str) -> None:
        super().__init__(message, retryable=False)
        self.instructions = instructions


@dataclass(frozen=True)
class ActionResult:
    """What a write action achieved. `done` False means "accepted, not visible yet": check again later
    (an uninstall still in progress, a delete the vendor refuses while something remains)."""

    done: bool
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"detail": self.detail, **dict(self.data)}


@dataclass
class CallLog:
    """The calls made for one step: appended by the connector, stored in the step's attempt.

    `on_call` runs after every call (the runner uses it to save the calls so far, so a worker killed
    mid-step still leaves the calls it made on record, and to renew its lease when half of it is gone)."""

    step: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    on_call: Callable[[list[dict[str, Any]]], None] | None = None

    def record(
        self,
        method: str,
        path: str,
        status: int | None,
        *,
        ms: int | None = None,
        key: str | None = None,
        error: str | None = None,
        dry_run: bool = False,
    ) -> None:
        entry: dict[str, Any] = {"method": method, "path": path, "status": status, "step": self.step}
        if ms is not None:
            entry["ms"] = ms
        if key:
            entry["idempotency_key"] = key
        if error:
            entry["error"] = error[:500]
        if dry_run:
            entry["dry_run"] = True
        self.calls.append(entry)
        if self.on_call is not None:
            self.on_call(self.calls)


class Connector(Protocol):
    """One vendor account. `client_ref` is the client's id at the vendor (the account's external_id),
    `agent_ref` a device's id there (the device's rmm id); `key` is the step's idempotency key."""

    vendor: str
    dry_run: bool

    def list_inventory(self, client_ref: str) -> dict[str, Any]:
        """Every agent of the client with its checks: the snapshot's view from the vendor."""
        ...

    def list_agents(self, client_ref: str) -> list[dict[str, Any]]:
        """The agents the vendor lists for the client (empty once the client is gone)."""
        ...

    def client_exists(self, client_ref: str) -> bool: ...

    def disable_feature(self, agent_ref: str, feature: str, *, key: str) -> ActionResult: ...

    def delete_check(self, agent_ref: str, check: str, *, key: str) -> ActionResult: ...

    def uninstall_agent(self, client_ref: str, agent_ref: str, *, key: str) -> ActionResult:
        """Ask for the uninstall, then look: done only once the vendor no longer lists the agent."""
        ...

    def confirm_agent_removed(self, client_ref: str, agent_ref: str) -> ActionResult: ...

    def confirm_agent_stopped(self, client_ref: str, agent_ref: str, since: datetime) -> ActionResult:
        """An agent uninstalled on its machine: still listed, but offline and silent since `since`."""
        ...

    def delete_agent(self, client_ref: str, agent_ref: str, *, key: str) -> ActionResult:
        """Delete an uninstalled agent's record; done once the vendor no longer lists it."""
        ...

    def remove_client(self, client_ref: str, *, key: str) -> ActionResult: ...

    def export_backup(self, ref: str, target: Mapping[str, Any], *, key: str) -> ActionResult: ...

    def close(self) -> None: ...
