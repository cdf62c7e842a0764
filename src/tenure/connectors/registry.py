"""Which vendors Tenure can drive, and the connector for a client's account at one of them.

A vendor is automatable for a client when Tenure has a connector for it and the client's account there
has what the connector needs: Tactical RMM (the API's URL and an API key), restic (the repository, its
password and a hand-over destination). Blumira is read only, to verify at the exit check. Everything else
is done by people (`ManualConnector`), so `tenure offboard plan` shows manual steps for it.

The API key: `account_api_key(account)` unseals the account's stored secret (`tenure account
set-secret`); else `TENURE_<VENDOR>_API_KEY` (`TENURE_TACTICALRMM_API_KEY`), or `ConnectorSettings.api_keys`
(tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenure.connectors import restic
from tenure.connectors.base import CallLog, Connector
from tenure.connectors.manual import ManualConnector
from tenure.errors import TenureError
from tenure.vault import unseal

if TYPE_CHECKING:  # the vendor clients bring httpx along: they load when one is first built, not with the app
    from tenure.connectors.blumira import Blumira
    from tenure.connectors.http import HttpClients

# the vendors Tenure writes to through their API (each has its connector class, built in `connector_for`)
WRITE_CONNECTORS = frozenset({"tacticalrmm"})


@dataclass(frozen=True)
class ConnectorSettings:
    timeout: float = 10.0  # seconds per HTTP call
    retries: int = 3  # further tries of a call answered 429 / 5xx or not answered
    backoff: float = 0.5  # seconds before the first of those tries, doubled each time
    dry_run: bool = False  # record the write calls, make none
    api_keys: Mapping[str, str] = field(default_factory=dict)  # vendor -> key, before the environment


def account_api_key(account: Any) -> str | None:
    """The account's API key, unsealed (`tenure account set-secret KEY`); None when none is stored."""
    sealed = getattr(account, "secret", None)
    return unseal(sealed) if sealed else None


def api_key(account: Any, settings: ConnectorSettings) -> str | None:
    vendor = str(account.vendor)
    return (
        account_api_key(account)
        or settings.api_keys.get(vendor)
        or os.environ.get(f"TENURE_{vendor.upper()}_API_KEY")
        or None
    )


def configured(account: Any | None, settings: ConnectorSettings) -> bool:
    """Whether Tenure can drive this account: a connector, the API's URL and a key; or a restic backup
    account with its password and a hand-over destination (`handover_repository`)."""
    if account is not None and account.vendor == "restic" and account.kind == "backup":
        try:
            return handover_of(account) is not None
        except TenureError:  # a secret sealed under another key: the hand-over stays manual
            return False
    return (
        account is not None
        and account.vendor in WRITE_CONNECTORS
        and bool(account.url)
        and api_key(account, settings) is not None
    )


def connector_for(
    vendor: str,
    account: Any | None,
    settings: ConnectorSettings,
    calls: CallLog | None = None,
    clients: HttpClients | None = None,
) -> Connector:
    """The connector for `vendor` through `account` (the client's account there), or a manual one. With
    `clients` (a runner's pool) it uses the pool's HTTP client for that API instead of building one."""
    if account is None or account.vendor not in WRITE_CONNECTORS or not configured(account, settings):
        return ManualConnector(vendor, dry_run=settings.dry_run)
    from tenure.connectors.tacticalrmm import TacticalRMM

    key = api_key(account, settings)
    assert key is not None
    return TacticalRMM(  # the only write connector so far
        account.url,
        key,
        calls=calls,
        dry_run=settings.dry_run,
        timeout=settings.timeout,
        retries=settings.retries,
        backoff=settings.backoff,
        clients=clients,
    )


# ------------------------------------------------------------------------------- read-only: Blumira


def blumira_for(account: Any | None, settings: ConnectorSettings, calls: CallLog | None = None) -> Blumira | None:
    """A read-only Blumira client for the client's SIEM account, or None without credentials (the sealed
    secret `client_id:client_secret` or a JWT, else TENURE_BLUMIRA_API_KEY / `api_keys["blumira"]`). The
    account's `url` is the API's base (empty: Blumira's own); `details.token_url` overrides the token
    endpoint (tests)."""
    if account is None or account.vendor != "blumira":
        return None
    key = api_key(account, settings)
    if not key:
        return None
    from tenure.connectors.blumira import Blumira

    return Blumira(
        key,
        base_url=account.url or None,
        token_url=(account.details or {}).get("token_url") or None,
        calls=calls,
        timeout=settings.timeout,
        retries=settings.retries,
        backoff=settings.backoff,
    )


# --------------------------------------------------------------------------- restic: the hand-over


@dataclass(frozen=True)
class HandOverPlan:
    source: restic.Repository  # the MSP's repository (external_id, the sealed secret)
    target: restic.Repository  # the client's own (details.handover_repository)
    filters: tuple[str, ...]  # `--tag <details.handover_tag>` when the repository holds other clients too


def handover_of(account: Any) -> HandOverPlan | None:
    """Where a restic backup account's data goes at offboarding, or None (the hand-over stays manual).

    From the account: `external_id` (the MSP's repository) and its sealed password (`tenure account
    set-secret KEY`); `details.handover_repository`, the client's repository (a path or restic URL, created
    when missing); `handover_secret`, its password sealed with tenure.vault, else the copy is encrypted with
    the MSP repository's password, which the client then receives; and `details.handover_tag`, the restic tag
    of this client's snapshots when the repository is shared. The details are in the book; the secrets never."""
    details = account.details or {}
    location = details.get("handover_repository")
    if account.vendor != "restic" or not account.external_id or not account.secret or not location:
        return None
    password = unseal(account.secret)
    sealed = getattr(account, "handover_secret", None)
    target_password = unseal(sealed) if sealed else password
    tag = details.get("handover_tag")
    return HandOverPlan(
        restic.Repository(account.external_id, password),
        restic.Repository(str(location), target_password),
        ("--tag", str(tag)) if tag else (),
    )


def set_handover(db: Any, account_key: str, location: str, password: str | None = None, tag: str | None = None) -> None:
    """Record where a restic backup account's data is handed over: the client's repository and the tag of this
    client's snapshots (in the account's details, which the book carries as `handover_repository` and
    `handover_tag`), and the repository's password (sealed in a column of its own, never in the book; None:
    the MSP repository's own). `tenure account set-handover KEY --repository LOCATION [--tag T] < password`."""
    from pydantic import ValidationError
    from sqlalchemy import select

    from tenure.book.schema import Account
    from tenure.book.validate import place
    from tenure.clients.models import VendorAccount
    from tenure.vault import seal

    with db.unit_of_work() as s:
        account = s.scalars(select(VendorAccount).where(VendorAccount.key == account_key)).first()
        if account is None or account.vendor != "restic" or account.kind != "backup":
            raise TenureError(f"no restic backup account {account_key!r}")
        try:  # what the book would refuse (a password in the address, a line break), refused here too
            Account(key=account.key, kind="backup", vendor="restic", handover_repository=location, handover_tag=tag)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = {"handover_repository": "--repository", "handover_tag": "--tag"}.get(place(error["loc"]), "")
            raise TenureError(f"{where or 'hand-over'}: {error['msg'].removeprefix('Value error, ')}") from None
        details = {k: v for k, v in (account.details or {}).items() if not k.startswith("handover_")}
        details["handover_repository"] = location
        if tag:
            details["handover_tag"] = tag
        account.details = details
        account.handover_secret = seal(password.strip()) if password else None
