"""Vendor accounts and their secrets: stored sealed, never printed unless asked, each reveal logged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenure.clients.models import Client, VendorAccount
from tenure.db.changelog import record
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError
from tenure.vault import seal, unseal


def _account(s: Any, key: str) -> VendorAccount:
    account = s.scalars(select(VendorAccount).where(VendorAccount.key == key)).first()
    if account is None:
        raise NotFound(f"no vendor account {key!r} (see `tenure account list`)")
    return account


def set_secret(db: Database, key: str, plain: str) -> None:
    """Store (or replace) an account's API key or password, sealed. The change log says it changed, not to what."""
    plain = plain.strip()
    if not plain:
        raise TenureError("the secret is empty: pass it on standard input, e.g. `tenure account set-secret KEY < file`")
    with db.unit_of_work() as s:
        _account(s, key).secret = seal(plain)


def reveal(db: Database, key: str) -> str:
    """The secret in clear, on explicit request; the change log records who revealed it."""
    with db.unit_of_work() as s:
        account = _account(s, key)
        if account.secret is None:
            raise TenureError(f"account {key} has no secret stored")
        plain = unseal(account.secret)
        record(s, "reveal", account, {"revealed": "secret"})
        return plain


def list_accounts(db: Database, client: str | None = None) -> list[dict[str, Any]]:
    with db.reader() as s:
        query = (
            select(VendorAccount, Client.key)
            .join(Client, Client.id == VendorAccount.client_id)
            .order_by(Client.key, VendorAccount.key)
        )
        if client:
            query = query.where(Client.key == client)
        return [
            {
                "key": a.key,
                "client": ck,
                "kind": a.kind,
                "vendor": a.vendor,
                "external_id": a.external_id,
                "url": a.url,
                "details": a.details,
                "has_secret": a.secret is not None,
                "active": a.active,
            }
            for a, ck in s.execute(query)
        ]
