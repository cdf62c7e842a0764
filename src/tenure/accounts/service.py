"""API tokens: shown once, stored as a hash, revocable. An `intake` token may only post to intake endpoints.

What a token may do on a request (its role bounded by its user's current role) and its `last_used_at` are
accounts/users.py's (`token_principal`, `token_permissions`), beside the role table."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from tenure import clock
from tenure.accounts.models import ROLES, ApiToken, User
from tenure.db.engine import Database
from tenure.errors import Conflict, NotFound, TenureError, ValidationFailed

TOKEN_PREFIX = "tnr_"


def _hash(token: str) -> str:
    # tokens carry 256 bits of randomness, so a plain SHA-256 cannot be brute-forced; it also keeps
    # the per-request check a single indexed lookup
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    user: str | None = None  # the user it belongs to, if any

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "user": self.user,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


def _info(t: ApiToken, user: str | None = None) -> TokenInfo:
    return TokenInfo(t.name, t.role, t.prefix, t.created_at, t.revoked_at, t.last_used_at, user)


def _username(s: Any, t: ApiToken) -> str | None:
    return None if t.user_id is None else s.scalar(select(User.username).where(User.id == t.user_id))


def create_token(db: Database, name: str, role: str, user_id: int | None = None) -> tuple[str, TokenInfo]:
    """A new token: the plaintext is returned once and never stored."""
    if role not in ROLES:
        raise TenureError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name.strip():
        raise ValidationFailed(["name: a token needs a name (who or what will use it)"])
    # a name is part of addresses (/api/v1/tokens/{name}, /settings/tokens/{name}/revoke): no slash
    if len(name) > 100 or "/" in name or not name.isprintable():
        raise ValidationFailed([f"name: {name!r} is not a token name (1 to 100 printable characters, no /)"])
    with db.unit_of_work() as s:
        if s.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).first():
            raise Conflict(f"a live token named {name!r} exists; revoke it first or pick another name")
        prefix = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiToken(
            user_id=user_id, name=name, role=role, prefix=prefix, token_hash=_hash(token), created_at=clock.now()
        )
        s.add(row)
        info = _info(row, _username(s, row))
    return token, info


def authenticate(db: Database, token: str) -> TokenInfo | None:
    """The live token matching `token`, or None (unknown, malformed or revoked)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with db.reader() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.token_hash == _hash(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        return _info(row)


def revoke_token(db: Database, name: str) -> TokenInfo:
    with db.unit_of_work() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).first()
        if row is None:
            raise NotFound(f"no live token named {name!r} (see `tenure token list`)")
        row.revoked_at = clock.now()
        return _info(row, _username(s, row))


def list_tokens(db: Database) -> list[TokenInfo]:
    """Every token, revoked ones too, oldest first, each with the name of the user it belongs to."""
    with db.reader() as s:
        rows = s.execute(
            select(ApiToken, User.username)
            .outerjoin(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.created_at, ApiToken.id)
        ).all()
        return [_info(t, username) for t, username in rows]
