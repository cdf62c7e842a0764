"""People who sign in, what each role may do, sessions, CSRF and the log-in rate limit.

Roles and what they may do (DOMAIN.md's people). Every page and every API route names one of these
permissions and is refused (403) to a role without it; `tests/test_api_v1.py` walks the whole route table.

| permission           | owner | technician | bookkeeper | readonly | intake | what it covers
|----------------------|:-----:|:----------:|:----------:|:--------:|:------:|------------------------------------------
| `read`               |   ✓   |     ✓      |     ✓      |    ✓     |        | every page and GET: clients, agreements,
|                      |       |            |            |          |        | blocks, time, invoices, alerts, tickets,
|                      |       |            |            |          |        | offboarding runs, reports
| `time.log`           |   ✓   |     ✓      |            |          |        | log time
| `tickets.work`       |   ✓   |     ✓      |            |          |        | work the triage queue: close, reopen,
|                      |       |            |            |          |        | approve a quote
| `billing.run`        |   ✓   |            |     ✓      |          |        | run a billing period
| `invoices.change`    |   ✓   |            |     ✓      |          |        | issue, mark paid, void an invoice
| `offboarding.work`   |   ✓   |     ✓      |            |          |        | tick off manual steps with a note, retry
|                      |       |            |            |          |        | a step, continue a run
| `offboarding.decide` |   ✓   |            |            |          |        | approve an approval step, skip a step
| `intake.post`        |   ✓   |     ✓      |            |          |   ✓    | post payloads to the intake endpoints
| `reports`            |   ✓   |            |            |          |        | the owner's view: profitability (margins,
|                      |       |            |            |          |        | labor cost) and the fit of catalog offers
| `clients.edit`       |   ✓   |            |            |          |        | sign a new client, change a client's own
|                      |       |            |            |          |        | fields, archive (or purge) and restore it
| `agreements.edit`    |   ✓   |            |     ✓      |          |        | add, change (from a date, once billed),
|                      |       |            |            |          |        | end or delete a client's agreements
| `inventory.edit`     |   ✓   |     ✓      |            |          |        | a client's devices, contacts, sites,
|                      |       |            |            |          |        | accounts, backup jobs (and answers)
| `settings.edit`      |   ✓   |            |            |          |        | the MSP's settings and catalog of offers

`readonly` only reads; `intake` is for machines (monitoring tools) and only posts payloads: it can neither
read nor sign in. Users and tokens are managed by whoever may `users.manage` (the owner) on /settings/users,
/settings/tokens and /api/v1/users, /api/v1/tokens, and on the command line (`tenure user ...`, `tenure token
...`) by whoever runs it: all through the functions below. The last active owner can neither be demoted nor
deactivated (`change_user`), so somebody is always left to manage users.

Passwords are hashed with argon2id (argon2-cffi's defaults). A browser session is a random secret in a
cookie (HttpOnly, SameSite=Lax, Secure over HTTPS); the database keeps only its SHA-256, the user, the
session's CSRF token and its expiry (idle `IDLE`, at most `LIFETIME`). Log-in is refused with 429 after
`MAX_FAILURES` failures for one user from one address (or `MAX_FAILURES_PER_IP` from one address for any
user) within `WINDOW`; the count lives in the database, so every process of a deployment shares it.

An API token may belong to a user (`tenure token create NAME --user USER`): it is refused once the user is
deactivated, and it may not carry more rights than its user. Both are checked on every request against the
user's CURRENT role (`granted`): a token may do what its own role and its user's role both may (the
intersection, since a technician and a bookkeeper are not comparable), so `tenure user role ann readonly`
takes effect on ann's tokens at once. A token's `last_used_at` is written at most every `TOUCH_EVERY`.

Changes made through the web or the API run under `as_actor(principal.actor)`, so the change log names the
user (`user:<name>`, or `token:<name>` for a token that belongs to nobody).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tenure import clock
from tenure.accounts.models import ROLES, ApiToken, LoginFailure, User, WebSession
from tenure.accounts.service import TOKEN_PREFIX, TokenInfo, create_token
from tenure.accounts.service import _hash as token_hash
from tenure.db.changelog import ObjectChange
from tenure.db.engine import Database
from tenure.db.uow import as_actor
from tenure.errors import Conflict, NotFound, TenureError, ValidationFailed

T = TypeVar("T")

USER_ROLES = ("owner", "technician", "bookkeeper", "readonly")
_STAFF = frozenset(USER_ROLES)
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": _STAFF,
    "time.log": frozenset({"owner", "technician"}),
    "tickets.work": frozenset({"owner", "technician"}),
    "billing.run": frozenset({"owner", "bookkeeper"}),
    "invoices.change": frozenset({"owner", "bookkeeper"}),
    "offboarding.work": frozenset({"owner", "technician"}),
    "offboarding.decide": frozenset({"owner"}),
    "intake.post": frozenset({"owner", "technician", "intake"}),
    "reports": frozenset({"owner"}),
    "clients.edit": frozenset({"owner"}),
    "agreements.edit": frozenset({"owner", "bookkeeper"}),
    "inventory.edit": frozenset({"owner", "technician"}),
    "settings.edit": frozenset({"owner"}),
    "users.manage": frozenset({"owner"}),  # users, their roles, API tokens
    "outbox.send": frozenset({"owner", "technician", "bookkeeper"}),  # send a waiting mail now, retry a failed one
    "maintenance.edit": frozenset({"owner", "technician"}),  # a plan's tasks: interval, skip, the client's own
}

IDLE = timedelta(hours=12)
LIFETIME = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=5)  # a session's expiry slides at most this often (not a write per page)
WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5
MAX_FAILURES_PER_IP = 20
MIN_PASSWORD = 10

_hasher = PasswordHasher()
_dummy: list[str] = []


def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password."""
    if not _dummy:
        _dummy.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[0]


def may(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def rights(role: str) -> frozenset[str]:
    return frozenset(p for p, roles in PERMISSIONS.items() if role in roles)


def granted(role: str, user_role: str | None) -> frozenset[str]:
    """What a principal of `role` may do; for a token of a user, no more than the user's current role may
    (the intersection: technician and bookkeeper are not comparable, so neither is "the lesser")."""
    own = rights(role)
    return own if user_role is None else own & rights(user_role)


class TooManyAttempts(TenureError):
    def __init__(self, retry_after: int):
        super().__init__(f"too many failed log-ins: try again in {max(1, retry_after // 60)} minute(s)")
        self.retry_after = retry_after


class BadCredentials(TenureError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user, or an API token (with the user it belongs to, if any)."""

    username: str | None
    role: str
    via: str  # session | token
    token_name: str | None = None
    user_id: int | None = None
    user_role: str | None = None  # a token of a user: the user's current role, which bounds the token's

    @property
    def permissions(self) -> frozenset[str]:
        return granted(self.role, self.user_role)

    @property
    def described(self) -> str:
        """`a bookkeeper token`, `a owner token of a readonly user` (for refusals)."""
        what = f"a {self.role} token" if self.via == "token" else f"a {self.role}"
        if self.user_role is not None and self.user_role != self.role:
            what += f" of a {self.user_role} user"
        return what

    @property
    def actor(self) -> str:
        return f"user:{self.username}" if self.username else f"token:{self.token_name}"

    @property
    def name(self) -> str:
        return self.username or f"token {self.token_name}"

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def act(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a service as this principal: the change log carries who did it."""
        with as_actor(self.actor):
            return fn(*args, **kwargs)

    def as_json(self) -> dict[str, Any]:
        return {
            "user": self.username,
            "role": self.role,
            "via": self.via,
            "token": self.token_name,
            "permissions": sorted(self.permissions),
        }


# ------------------------------------------------------------------------------------------ users


@dataclass(frozen=True)
class UserInfo:
    username: str
    role: str
    active: bool
    has_password: bool
    created_at: datetime | None = None  # from the change log: None for a user it no longer holds
    last_sign_in_at: datetime | None = None  # the newest session kept: sessions are forgotten once they end

    def as_json(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "active": self.active, "password": self.has_password}


def _user_info(u: User) -> UserInfo:
    return UserInfo(u.username, u.role, u.active, bool(u.password_hash))


def _with_history(s: Any, found: list[User]) -> list[UserInfo]:
    """Users with when each was created and last signed in, if known: two queries for the whole list (the
    schema keeps neither on the user; the change log and the sessions do)."""
    ids = [u.id for u in found]
    if not ids:
        return []
    created = dict(
        s.execute(  # the newest `create`: a row id used again after a restore names the later user
            select(ObjectChange.object_id, func.max(ObjectChange.time))
            .where(ObjectChange.object_type == User.__tablename__, ObjectChange.action == "create")
            .where(ObjectChange.object_id.in_(ids))
            .group_by(ObjectChange.object_id)
        ).all()
    )
    signed_in = dict(
        s.execute(
            select(WebSession.user_id, func.max(WebSession.created_at))
            .where(WebSession.user_id.in_(ids))
            .group_by(WebSession.user_id)
        ).all()
    )
    return [
        UserInfo(u.username, u.role, u.active, bool(u.password_hash), created.get(u.id), signed_in.get(u.id))
        for u in found
    ]


def _role_problem(role: str) -> str | None:
    if role not in USER_ROLES:
        return f"role: {role!r} is not one of {', '.join(USER_ROLES)} (intake is for tokens only)"
    return None


def _password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"password: a password needs at least {MIN_PASSWORD} characters"
    if len(password) > 1024:
        return "password: a password may have at most 1024 characters"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in password):  # not text: it cannot be encoded to be hashed
        return "password: a password may not hold unpaired surrogate characters"
    return None


def _refuse(*problems: str | None) -> None:
    """Every problem of the request at once, each naming its field (`password: ...`)."""
    found = [p for p in problems if p]
    if found:
        raise ValidationFailed(found)


def _check_name(username: str) -> str:
    name = username.strip()
    # a name is part of addresses (/api/v1/users/{name}, /settings/users/{name}/...): no slash
    if not name or len(name) > 100 or any(c.isspace() or c == "/" or not c.isprintable() for c in name):
        raise ValidationFailed(
            [f"name: {username!r} is not a user name (1 to 100 printable characters, no spaces or /)"]
        )
    return name


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(db: Database, username: str, password: str, role: str) -> UserInfo:
    name = _check_name(username)
    _refuse(_role_problem(role), _password_problem(password))
    with db.unit_of_work() as s:
        if s.scalars(select(User).where(User.username == name)).first() is not None:
            raise Conflict(f"a user named {name!r} exists (see `tenure user list`)")
        user = User(username=name, password_hash=hash_password(password), role=role, active=True)
        s.add(user)
        s.flush()
        return _with_history(s, [user])[0]


def _user(s: Any, username: str) -> User:
    user = s.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user {username!r} (see `tenure user list`)")
    return user


def change_user(
    db: Database, username: str, role: str | None = None, active: bool | None = None, password: str | None = None
) -> UserInfo:
    """Change a user's role, whether they may sign in, their password: all of what is given, or nothing.

    A new password or a deactivation ends every session of the user. The last active owner can neither be
    demoted nor deactivated: nobody would be left to manage users (the command line included, where the
    person running it would have to fix the database by hand)."""
    _refuse(
        _role_problem(role) if role is not None else None,
        _password_problem(password) if password is not None else None,
    )
    with db.unit_of_work() as s:
        user = _user(s, username)
        stays_owner = (role or user.role) == "owner" and (user.active if active is None else active)
        if user.role == "owner" and user.active and not stays_owner:
            # locked, so two owners demoting each other at once cannot both pass (PostgreSQL)
            owners = s.scalars(
                select(User.id).where(User.role == "owner", User.active.is_(True)).with_for_update()
            ).all()
            if set(owners) <= {user.id}:
                change = "deactivated" if active is False else f"made {role}"
                raise Conflict(
                    f"{user.username!r} is the last active owner and cannot be {change}: make another user owner first"
                )
        if role is not None:
            user.role = role
        if password is not None:
            user.password_hash = hash_password(password)
        if active is not None:
            user.active = active
        if password is not None or active is False:
            s.execute(delete(WebSession).where(WebSession.user_id == user.id))
        s.flush()
        return _with_history(s, [user])[0]


def set_password(db: Database, username: str, password: str) -> UserInfo:
    """A new password; every session of the user ends."""
    return change_user(db, username, password=password)


def set_role(db: Database, username: str, role: str) -> UserInfo:
    return change_user(db, username, role=role)


def set_active(db: Database, username: str, active: bool) -> UserInfo:
    """Deactivate (or reactivate) a user: a deactivated user cannot sign in, its sessions end, its tokens
    are refused."""
    return change_user(db, username, active=active)


def any_user(db: Database) -> bool:
    with db.reader() as s:
        return s.scalar(select(User.id).limit(1)) is not None


def list_users(db: Database) -> list[UserInfo]:
    with db.reader() as s:
        return _with_history(s, list(s.scalars(select(User).order_by(User.username))))


def create_user_token(db: Database, name: str, role: str | None, username: str) -> tuple[str, TokenInfo]:
    """A token that belongs to `username`: with the user's role unless a lesser one is asked for."""
    with db.reader() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None:  # a field of the request at fault, not a missing resource
            raise ValidationFailed([f"user: no user {username!r} (see `tenure user list`)"])
        user_id, user_role, active = user.id, user.role, user.active
    if not active:
        raise ValidationFailed([f"user: user {username!r} is deactivated"])
    role = role or user_role
    if role not in ROLES:
        raise ValidationFailed([f"role: {role!r} is not one of {', '.join(ROLES)}"])
    if not rights(role) <= rights(user_role):
        raise ValidationFailed(
            [f"role: a {user_role} may not hold a {role} token: it would have rights its user has not"]
        )
    return create_token(db, name, role, user_id)


# ---------------------------------------------------------------------------------------- tokens


def token_principal(db: Database, token: str) -> Principal | None:
    """The principal behind a live API token, bounded by its user's current role: one indexed query (the
    token joined to its user), and a write of `last_used_at` at most every TOUCH_EVERY."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with db.reader() as s:
        row = s.execute(
            select(
                ApiToken.id.label("token_id"),
                ApiToken.user_id.label("owner_id"),
                ApiToken.name,
                ApiToken.role,
                ApiToken.revoked_at,
                ApiToken.last_used_at,
                User.id,
                User.username,
                User.role.label("user_role"),
                User.active,
            )
            .outerjoin(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash(token))
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.owner_id is not None and (row.id is None or not row.active):
        return None  # its user is deactivated (or gone)
    _touch_tokens(db, [row.token_id] if _stale(row.last_used_at) else [])
    return Principal(row.username, row.role, "token", row.name, row.id, row.user_role)


def token_permissions(db: Database, tokens: set[str]) -> dict[str, frozenset[str]]:
    """What each live token among `tokens` may do (`granted`: bounded by its user's current role; unknown,
    revoked tokens and those of deactivated users are absent): one query for the batch, and one statement
    that sets `last_used_at` of those not used for TOUCH_EVERY."""
    if not any(t.startswith(TOKEN_PREFIX) for t in tokens):
        return {}
    with db.unit_of_work() as s:
        return tokens_granted(s, tokens)


def tokens_granted(s: Session, tokens: set[str]) -> dict[str, frozenset[str]]:
    """`token_permissions` in the caller's transaction: intake's writer checks a batch's tokens in the one that
    stores its payloads, one connection and one commit for both."""
    hashes = {token_hash(t): t for t in tokens if t.startswith(TOKEN_PREFIX)}
    if not hashes:
        return {}
    rows = s.execute(
        select(
            ApiToken.id,
            ApiToken.token_hash,
            ApiToken.role,
            ApiToken.user_id,
            ApiToken.last_used_at,
            User.role.label("user_role"),
            User.active,
        )
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash.in_(list(hashes)), ApiToken.revoked_at.is_(None))
    ).all()
    found: dict[str, frozenset[str]] = {}
    stale: list[int] = []
    for row in rows:
        if row.user_id is not None and not row.active:  # a deactivated (or vanished) user: `active` is NULL
            continue
        found[hashes[row.token_hash]] = granted(row.role, row.user_role)
        if _stale(row.last_used_at):
            stale.append(row.id)
    _touch(s, stale)
    return found


def _stale(last_used_at: datetime | None) -> bool:
    return last_used_at is None or clock.now() - last_used_at >= TOUCH_EVERY


def _touch_tokens(db: Database, ids: list[int]) -> None:
    if ids:
        with db.unit_of_work() as s:
            _touch(s, ids)


def _touch(s: Session, ids: list[int]) -> None:
    """Mark tokens used now, in one statement (not change-logged: a use is not a change of the token)."""
    if not ids:
        return
    now = clock.now()
    s.execute(
        update(ApiToken)
        .where(ApiToken.id.in_(ids))
        .where((ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at <= now - TOUCH_EVERY))
        .values(last_used_at=now)
    )


# ------------------------------------------------------------------------------ log-in and sessions


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _retry_after(s: Any, username: str, ip: str, now: datetime) -> int | None:
    since = now - WINDOW
    mine = list(
        s.scalars(
            select(LoginFailure.at)
            .where(LoginFailure.username == username, LoginFailure.ip == ip, LoginFailure.at > since)
            .order_by(LoginFailure.at)
        )
    )
    if len(mine) >= MAX_FAILURES:
        return int((mine[-MAX_FAILURES] + WINDOW - now).total_seconds()) + 1
    from_ip = s.scalar(select(func.count()).where(LoginFailure.ip == ip, LoginFailure.at > since))
    if (from_ip or 0) >= MAX_FAILURES_PER_IP:
        oldest = s.scalar(select(func.min(LoginFailure.at)).where(LoginFailure.ip == ip, LoginFailure.at > since))
        return int((oldest + WINDOW - now).total_seconds()) + 1
    return None


@dataclass(frozen=True)
class NewSession:
    secret: str  # for the cookie, shown once
    csrf: str
    principal: Principal
    expires_at: datetime


def log_in(db: Database, username: str, password: str, ip: str, user_agent: str | None = None) -> NewSession:
    """Check the password and open a session, or raise BadCredentials / TooManyAttempts."""
    now = clock.now()
    username = username.strip()[:100]
    ip = (ip or "unknown")[:45]
    with db.unit_of_work() as s:
        wait = _retry_after(s, username, ip, now)
        if wait is not None:
            raise TooManyAttempts(wait)
        user = s.scalars(select(User).where(User.username == username)).first()
        good = False
        try:
            good = _hasher.verify(user.password_hash if user and user.password_hash else _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            good = False
        if not good or user is None or not user.active or not user.password_hash:
            s.add(LoginFailure(username=username, ip=ip, at=now))
            s.execute(delete(LoginFailure).where(LoginFailure.at < now - 2 * WINDOW))  # keep the table small
            failed = BadCredentials("the user name or the password is wrong")
        else:
            failed = None
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            s.execute(delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.ip == ip))
            secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = now + IDLE
            s.add(
                WebSession(
                    token_hash=_sha(secret),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires,
                    ip=ip,
                    user_agent=(user_agent or "")[:300] or None,
                )
            )
            s.execute(delete(WebSession).where(WebSession.expires_at < now))
            principal = Principal(user.username, user.role, "session", None, user.id)
    if failed is not None:  # the failure is committed before it is reported
        raise failed
    return NewSession(secret, csrf, principal, expires)


@dataclass(frozen=True)
class SessionInfo:
    principal: Principal
    csrf: str


def session_principal(db: Database, secret: str | None) -> SessionInfo | None:
    """The signed-in user of a session cookie (one indexed query; a write at most every TOUCH_EVERY)."""
    if not secret or len(secret) > 200:
        return None
    now = clock.now()
    digest = _sha(secret)
    with db.reader() as s:
        row = s.execute(
            select(
                WebSession.id,
                WebSession.csrf_token,
                WebSession.created_at,
                WebSession.last_seen_at,
                WebSession.expires_at,
                User.id.label("user_id"),
                User.username,
                User.role,
                User.active,
            )
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == digest)
        ).first()
    if row is None or row.expires_at <= now or not row.active or row.role not in USER_ROLES:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        expires = min(now + IDLE, row.created_at + LIFETIME)
        with db.unit_of_work() as s:
            s.execute(update(WebSession).where(WebSession.id == row.id).values(last_seen_at=now, expires_at=expires))
    return SessionInfo(Principal(row.username, row.role, "session", None, row.user_id), row.csrf_token)


def log_out(db: Database, secret: str | None) -> None:
    if secret:
        with db.unit_of_work() as s:
            s.execute(delete(WebSession).where(WebSession.token_hash == _sha(secret)))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


@contextmanager
def acting(principal: Principal) -> Iterator[None]:
    with as_actor(principal.actor):
        yield
