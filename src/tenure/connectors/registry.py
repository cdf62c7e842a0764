"""Which vendors Tenure can drive, and the connector for a client's account at one of them.

A vendor is automatable for a client when Tenure has a connector for it (today: Tactical RMM) and the
client's account there has what the connector needs: the API's URL and an API key. Everything else is
done by people (`ManualConnector`), so `tenure offboard plan` shows manual steps for it.

The API key: `account_api_key(account)` reads the account's stored secret. Secrets are another piece of
work (`tenure account set-secret`), so it returns None for now and the key comes from the environment,
`TENURE_<VENDOR>_API_KEY` (`TENURE_TACTICALRMM_API_KEY`), or from `ConnectorSettings.api_keys` (tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenure.connectors.base import CallLog, Connector
from tenure.connectors.manual import ManualConnector
from tenure.connectors.tacticalrmm import TacticalRMM
from tenure.vault import unseal

WRITE_CONNECTORS: Mapping[str, type] = {"tacticalrmm": TacticalRMM}


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
    """Whether Tenure can drive this account: a connector, the API's URL and a key."""
    return (
        account is not None
        and account.vendor in WRITE_CONNECTORS
        and bool(account.url)
        and api_key(account, settings) is not None
    )


def connector_for(
    vendor: str, account: Any | None, settings: ConnectorSettings, calls: CallLog | None = None
) -> Connector:
    """The connector for `vendor` through `account` (the client's account there), or a manual one."""
    if account is None or not configured(account, settings):
        return ManualConnector(vendor, dry_run=settings.dry_run)
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
    )
