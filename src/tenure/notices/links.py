"""Signed links: what a client answers without an account, and the calendar feeds.

The secret is the installation's (`tenure.keys`: `TENURE_SECRET_KEY`, or a random key kept in
`TENURE_HOME/secret.key`, mode 0600, created on first use). Changing it invalidates every link and
calendar URL handed out.

- **Notice links** (`/n/<token>`) carry a small JSON payload signed with itsdangerous and a timestamp
  read from `clock.now()` (so `--now` and tests move it): they expire after `LINK_MAX_AGE`; a token whose
  signature does not match is refused. Whether a link was already used is the database's business
  (an answered decision, a recorded request), not the token's.
- **Calendar URLs** (`/calendar/<token>.ics`) name a client or a technician and do not expire: a calendar
  application subscribes once. They use another salt, so a calendar token is never a valid notice link.
  They carry the subject's feed generation (`g`, left out while it is 0); rotating it
  (`tenure maintenance calendar-url --rotate`, maintenance.service) revokes every URL handed out before.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from tenure import clock
from tenure.errors import TenureError
from tenure.keys import secret_key

LINK_MAX_AGE = timedelta(days=45)
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_LINK_SALT = "tenure.notice-link"
_CALENDAR_SALT = "tenure.calendar"


def base_url() -> str:
    """Where people reach `tenure serve`: TENURE_BASE_URL (default http://127.0.0.1:8000), for links in mail."""
    return (os.environ.get("TENURE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


class _ClockSigner(TimestampSigner):
    """Timestamps from the product's clock, so `--now` and tests move a link's age."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


def _links() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(), salt=_LINK_SALT, signer=_ClockSigner)


# ------------------------------------------------------------------------------------ notice links


class LinkRefused(TenureError):
    pass


class LinkInvalid(LinkRefused):
    """Tampered with, truncated, or signed with another key."""


class LinkExpired(LinkRefused):
    """Signed by us, but older than LINK_MAX_AGE: `payload` still says what it was for."""

    def __init__(self, payload: dict[str, Any] | None, signed_at: datetime | None):
        super().__init__("this link has expired")
        self.payload = payload
        self.signed_at = signed_at

    @property
    def expired_at(self) -> datetime | None:
        return None if self.signed_at is None else self.signed_at + LINK_MAX_AGE


def sign_link(payload: dict[str, Any]) -> str:
    return _links().dumps(payload)


def link_url(payload: dict[str, Any]) -> str:
    return f"{base_url()}/n/{sign_link(payload)}"


def read_link(token: str) -> dict[str, Any]:
    """The payload of a valid, unexpired link; LinkExpired or LinkInvalid otherwise."""
    serializer = _links()
    try:
        payload = serializer.loads(token, max_age=int(LINK_MAX_AGE.total_seconds()))
    except SignatureExpired as exc:
        old: dict[str, Any] | None = None
        try:
            loaded = serializer.load_payload(exc.payload) if exc.payload is not None else None
            old = loaded if isinstance(loaded, dict) else None
        except BadSignature:
            old = None
        signed = exc.date_signed.astimezone(UTC) if exc.date_signed else None
        raise LinkExpired(old, signed) from None
    except BadSignature:
        raise LinkInvalid("this link is not valid") from None
    if not isinstance(payload, dict):
        raise LinkInvalid("this link is not valid")
    return payload


# ------------------------------------------------------------------------------------ calendar URLs


def calendar_token(*, client: str | None = None, technician: str | None = None, generation: int = 0) -> str:
    if (client is None) == (technician is None):
        raise TenureError("name either a client (--client KEY) or a technician (--technician NAME)")
    payload: dict[str, Any] = {"c": client} if client is not None else {"t": technician}
    if generation:
        payload["g"] = generation
    return URLSafeSerializer(secret_key(), salt=_CALENDAR_SALT).dumps(payload)


def calendar_path(*, client: str | None = None, technician: str | None = None, generation: int = 0) -> str:
    return f"/calendar/{calendar_token(client=client, technician=technician, generation=generation)}.ics"


def read_calendar_token(token: str) -> dict[str, str]:
    """`c` (a client's key) or `t` (a technician's name), and `g`, the feed's generation (0 when absent)."""
    try:
        payload = URLSafeSerializer(secret_key(), salt=_CALENDAR_SALT).loads(token)
    except BadSignature:
        raise LinkInvalid("this calendar address is not valid") from None
    if not isinstance(payload, dict) or not ({"c", "t"} & payload.keys()):
        raise LinkInvalid("this calendar address is not valid")
    return {"g": "0"} | {k: str(v) for k, v in payload.items()}


# ------------------------------------------------------------------------------------ message ids


def message_id(notice_id: int, domain: str) -> str:
    """The notice's Message-ID: derived from its id and the secret (unguessable, and distinct between two
    installations sending from the same domain), identical on every retry."""
    digest = hmac.new(secret_key().encode(), f"notice:{notice_id}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"<tenure.notice.{notice_id}.{digest}@{domain}>"
