"""Blumira's public API, read-only: what offboarding verification asks of a client's Blumira organisation.

Blumira has no write API Tenure uses (its keys are scoped read-only for us, seed 002): removing sensors,
agent devices and users stays manual. Afterwards the exit check reads the organisation back and expects
no agent device and no user left (but the incoming administrator when the account moves).

Confirmed (public sources, November 2026):
- base URL `https://api.blumira.com/public-api/v1`, OpenAPI v3, read-only endpoints rate-limited at 10
  requests per second per key (Blumira's "Using the Blumira API as an MSP", blumirapartners.zendesk.com,
  whose reference is https://api.blumira.com/public-api/v1/ui/?url=/public-api/v1/openapi.json);
- authorisation is a JWT bearer token obtained with OAuth client credentials (a Client ID and a Client
  Secret generated in the Blumira app) - same article;
- `GET /org/agents/devices` and `GET /org/users` list the organisation's agent devices and users, with
  `page` and `page_size` query parameters and a `{"data": [...], "links": {"next": ...}, "meta": {...}}`
  envelope (public API clients of it, e.g. Blumira MCP servers and n8n nodes on GitHub).

Assumed (seen in third-party clients, not in Blumira's own text we could read):
- the token endpoint `https://auth.blumira.com/oauth/token`, a JSON body with `grant_type=client_credentials`,
  `client_id`, `client_secret` and `audience=public-api`, answering `access_token` and `expires_in`;
- a device carries `device_id` and `hostname`; a user carries `user_id` (or `id`) and `email`;
- the last page is the one without `links.next` (or an empty `data`).

Credentials: the account's sealed secret (`tenure account set-secret KEY`), either `client_id:client_secret`
or an already minted JWT (no colon). The token is asked for once per connector and reused.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tenure.connectors.base import CallLog, ConnectorError

BASE_URL = "https://api.blumira.com/public-api/v1"
TOKEN_URL = "https://auth.blumira.com/oauth/token"  # assumed, see above
AUDIENCE = "public-api"  # assumed, see above
PAGE_SIZE = 100
MAX_PAGES = 100
RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Leftovers:
    """What Blumira still lists for the organisation, beyond who may stay."""

    devices: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.devices and not self.users

    def describe(self) -> str:
        parts = []
        if self.devices:
            parts.append(f"{len(self.devices)} agent device(s): {', '.join(self.devices[:10])}")
        if self.users:
            parts.append(f"{len(self.users)} user(s): {', '.join(self.users[:10])}")
        return "; ".join(parts) or "no agent device and no user" + (f" but {', '.join(self.kept)}" if self.kept else "")

    def as_json(self) -> dict[str, Any]:
        return {"devices": self.devices, "users": self.users, "kept": self.kept}


class Blumira:
    vendor = "blumira"

    def __init__(
        self,
        credentials: str,
        *,
        base_url: str | None = None,
        token_url: str | None = None,
        calls: CallLog | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.base_url = (base_url or BASE_URL).rstrip("/")
        self.token_url = token_url or TOKEN_URL
        client_id, colon, secret = credentials.strip().partition(":")
        self._client = (client_id, secret) if colon else None
        self._token: str | None = None if colon else credentials.strip()
        self.calls = calls or CallLog()
        self.retries, self.backoff = retries, backoff
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------------------------------ reads

    def list_agent_devices(self) -> list[dict[str, Any]]:
        return self._list("/org/agents/devices")

    def list_users(self) -> list[dict[str, Any]]:
        return self._list("/org/users")

    def leftovers(self, keep_emails: Iterable[str] = ()) -> Leftovers:
        """Agent devices and users still listed; users whose e-mail is in `keep_emails` may stay."""
        keep = {e.strip().lower() for e in keep_emails if e}
        devices = [
            str(d.get("hostname") or d.get("device_id") or d.get("id") or "?") for d in self.list_agent_devices()
        ]
        users: list[str] = []
        kept: list[str] = []
        for user in self.list_users():
            email = str(user.get("email") or "")
            (kept if email.lower() in keep else users).append(
                email or str(user.get("user_id") or user.get("id") or "?")
            )
        return Leftovers(devices, users, kept)

    # ------------------------------------------------------------------------------------------- http

    def _list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self._get(path, {"page": str(page), "page_size": str(PAGE_SIZE)})
            data = body.get("data") if isinstance(body, dict) else body
            if not isinstance(data, list):
                raise ConnectorError(f"Blumira answered GET {path} without a list of items", retryable=False)
            items += [d for d in data if isinstance(d, dict)]
            more = isinstance(body, dict) and (body.get("links") or {}).get("next")
            if not data or not more:
                return items
        raise ConnectorError(f"Blumira listed more than {MAX_PAGES} pages at {path}", retryable=False)

    def _get(self, path: str, params: dict[str, str]) -> Any:
        shown = path + "?" + "&".join(f"{k}={v}" for k, v in params.items())
        renewed = False
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}
            response = self._send("GET", self.base_url + path, shown, params=params, headers=headers)
            status = response.status_code
            if status == 401 and self._client and not renewed:  # an expired token: mint a new one once
                self._token, renewed = None, True
                continue
            if status in RETRYABLE and attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
                attempt += 1
                continue
            if status in RETRYABLE:
                raise ConnectorError(f"Blumira answered {status} to GET {shown} after {attempt + 1} tries")
            if status in (401, 403):
                raise ConnectorError(
                    f"Blumira refused the credentials ({status}) for GET {path}: set them again with "
                    "`tenure account set-secret KEY` (client_id:client_secret)",
                    retryable=False,
                )
            if status >= 400:
                raise ConnectorError(f"Blumira answered {status} to GET {shown}", retryable=False)
            try:
                return response.json()
            except ValueError:
                raise ConnectorError(f"Blumira answered GET {shown} with no JSON", retryable=False) from None

    def _bearer(self) -> str:
        if self._token:
            return self._token
        assert self._client is not None
        client_id, secret = self._client
        body = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                "audience": AUDIENCE}
        for attempt in range(self.retries + 1):
            response = self._send("POST", self.token_url, "oauth/token", json=body)
            if response.status_code in RETRYABLE and attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
                continue
            break
        if response.status_code != 200:
            raise ConnectorError(
                f"Blumira refused the client credentials ({response.status_code} from {self.token_url})",
                retryable=response.status_code in RETRYABLE,
            )
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ConnectorError("Blumira's token endpoint answered no access_token", retryable=False) from None
        self._token = str(token)
        return self._token

    def _send(self, method: str, url: str, shown: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                ms = int((time.monotonic() - started) * 1000)
                self.calls.record(method, shown, None, ms=ms, error=f"{type(exc).__name__}: {exc}")
                if attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
                    attempt += 1
                    continue
                raise ConnectorError(f"Blumira did not answer {method} {shown} ({type(exc).__name__})") from None
            self.calls.record(method, shown, response.status_code, ms=int((time.monotonic() - started) * 1000))
            return response
