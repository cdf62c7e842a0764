"""Vendors without a write API (seed 002's security vendor, many RMMs, hosted services): a person does it.

Every write of `ManualConnector` raises `NotSupported` with written instructions built from the step's
target, so the runner puts the step in front of a person (state `waiting`) instead of failing it. The same
instructions serve a connector that can do most things but not one particular action (Tactical RMM has no
switch for managed antivirus, say).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tenure.connectors.base import ActionResult, NotSupported

# vendors Tenure knows and has no write connector for (DOMAIN.md: "Vendors without a write API ... get
# manual steps"); any vendor without a registered connector is treated the same way
MANUAL_VENDORS = frozenset({"blumira", "nsight", "gfimax", "microsoft365", "google_workspace", "veeam", "restic"})

LABELS = {
    "tacticalrmm": "Tactical RMM",
    "nsight": "N-sight RMM",
    "gfimax": "GFI MAX RemoteManagement",
    "blumira": "Blumira",
    "restic": "restic",
    "veeam": "Veeam",
    "microsoft365": "Microsoft 365",
    "google_workspace": "Google Workspace",
}


def label(vendor: str | None) -> str:
    return LABELS.get(vendor or "", vendor or "the vendor")


def _device(target: Mapping[str, Any]) -> str:
    host = target.get("hostname") or target.get("device") or "the device"
    return f"{host} (agent id {target['rmm_id']})" if target.get("rmm_id") else str(host)


def instructions_for(vendor: str | None, verb: str, target: Mapping[str, Any], title: str) -> str:
    """What a person does for `<vendor>.<verb>` on this target, in the dashboard, then how to check it."""
    v = label(vendor)
    if verb == "disable_feature":
        feature = str(target.get("feature", "the feature")).replace("_", " ")
        return (
            f"In the {v} dashboard open {_device(target)}, find {feature} in the device's settings, turn it "
            "off and save. Check the dashboard no longer shows it as enabled."
        )
    if verb == "delete_check":
        return (
            f"In the {v} dashboard open {_device(target)}, open its checks and delete the check "
            f"'{target.get('check')}' (delete, not pause). If it comes from a policy, exclude the device "
            "from that policy instead."
        )
    if verb in ("uninstall_agent", "confirm_agent_removed"):
        return (
            f"Uninstall the {v} agent from {_device(target)} (Settings > Apps > Installed apps on Windows, "
            f"the vendor's uninstall script elsewhere), then check the {v} dashboard no longer lists it."
        )
    if verb == "confirm_agent_stopped":
        return (
            f"In the {v} dashboard check that {_device(target)} shows offline and was last seen before its "
            "uninstall; if it reported since, uninstall it by hand first."
        )
    if verb == "delete_agent":
        return (
            f"In the {v} dashboard delete the agent {_device(target)} (uninstalled and offline: only its record "
            "goes). Check it is no longer listed."
        )
    if verb == "remove_client":
        ref = f" (id {target['external_id']})" if target.get("external_id") else ""
        return (
            f"In the {v} dashboard delete the client{ref} with every device still under it, so the vendor "
            "stops billing for it. Check the client no longer appears."
        )
    if verb in ("export_copy", "verify_copy"):
        return (
            f"Export a full copy of the latest backup data in {v} and hand it to {target.get('to') or 'the client'};"
            " then restore a sample file from the copy to check it is complete."
        )
    if verb in ("stop_job", "close_account"):
        return f"In {v}, do this by hand: {title}. Note what was done and when."
    return f"In {v}, do this by hand: {title}. Note what was done and when."


class ManualConnector:
    """Reads nothing, writes nothing: every action becomes a person's, with instructions."""

    def __init__(self, vendor: str, *, dry_run: bool = False) -> None:
        self.vendor = vendor
        self.dry_run = dry_run

    def close(self) -> None:
        pass

    def _manual(self, verb: str, target: Mapping[str, Any], title: str) -> NotSupported:
        return NotSupported(
            f"{label(self.vendor)} has no write API for {verb}", instructions_for(self.vendor, verb, target, title)
        )

    def list_inventory(self, client_ref: str) -> dict[str, Any]:
        return {"agents": [], "note": f"{label(self.vendor)} has no API Tenure reads"}

    def list_agents(self, client_ref: str) -> list[dict[str, Any]]:
        raise self._manual("list_agents", {}, "list the client's agents")

    def client_exists(self, client_ref: str) -> bool:
        raise self._manual("client_exists", {"external_id": client_ref}, "check the client is gone")

    def disable_feature(self, agent_ref: str, feature: str, *, key: str) -> ActionResult:
        raise self._manual("disable_feature", {"rmm_id": agent_ref, "feature": feature}, f"turn off {feature}")

    def delete_check(self, agent_ref: str, check: str, *, key: str) -> ActionResult:
        raise self._manual("delete_check", {"rmm_id": agent_ref, "check": check}, f"delete check {check}")

    def uninstall_agent(self, client_ref: str, agent_ref: str, *, key: str) -> ActionResult:
        raise self._manual("uninstall_agent", {"rmm_id": agent_ref}, "uninstall the agent")

    def confirm_agent_removed(self, client_ref: str, agent_ref: str) -> ActionResult:
        raise self._manual("confirm_agent_removed", {"rmm_id": agent_ref}, "confirm the agent is gone")

    def confirm_agent_stopped(self, client_ref: str, agent_ref: str, since: datetime) -> ActionResult:
        raise self._manual("confirm_agent_stopped", {"rmm_id": agent_ref}, "confirm the agent stopped reporting")

    def delete_agent(self, client_ref: str, agent_ref: str, *, key: str) -> ActionResult:
        raise self._manual("delete_agent", {"rmm_id": agent_ref}, "delete the agent's record")

    def remove_client(self, client_ref: str, *, key: str) -> ActionResult:
        raise self._manual("remove_client", {"external_id": client_ref}, "remove the client")

    def export_backup(self, ref: str, target: Mapping[str, Any], *, key: str) -> ActionResult:
        raise self._manual("export_copy", target, "hand over a copy of the backup data")
