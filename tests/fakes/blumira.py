"""A fake Blumira public API: a real HTTP server on 127.0.0.1 (random port).

What it keeps from the real API (see tenure.connectors.blumira for what is confirmed and what assumed):
- `POST /oauth/token` with a JSON body `grant_type=client_credentials`, `client_id`, `client_secret`,
  `audience`: answers `{"access_token": <JWT-like>, "token_type": "Bearer", "expires_in": ...}`, 401 for
  wrong credentials;
- `GET /public-api/v1/org/agents/devices` and `GET /public-api/v1/org/users` need
  `Authorization: Bearer <token>` (401 otherwise), page with `page` and `page_size`, and answer
  `{"status": "OK", "data": [...], "links": {"next": ...}, "meta": {"total", "page", "page_size"}}`.

For tests: `devices`, `users` (lists of dicts), `expire_tokens()` (the next call with an old token gets 401),
`fail_next(status, n)` and `requests[(method, path)]`.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/public-api/v1"


class FakeBlumira:
    def __init__(self, client_id: str = "client-id", client_secret: str = "client-secret") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.lock = threading.RLock()
        self.devices: list[dict[str, Any]] = []
        self.users: list[dict[str, Any]] = []
        self.tokens: set[str] = set()
        self.requests: Counter[tuple[str, str]] = Counter()
        self._failures: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def credentials(self) -> str:
        return f"{self.client_id}:{self.client_secret}"

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + PREFIX

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def add_device(self, hostname: str) -> None:
        with self.lock:
            self.devices.append({"device_id": f"dev-{len(self.devices) + 1:03}", "hostname": hostname,
                                 "plat": "windows", "is_excluded": False})

    def add_user(self, email: str, role: str = "administrator") -> None:
        with self.lock:
            self.users.append({"user_id": f"user-{len(self.users) + 1:03}", "email": email, "role": role})

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def fail_next(self, status: int, n: int = 1) -> None:
        with self.lock:
            self._failures += [status] * n

    # ------------------------------------------------------------------------------------------ server

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.requests[(method, path)] += 1
            if self._failures:
                return self._failures.pop(0), {"status": "ERROR"}
            if method == "POST" and path == "/oauth/token":
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    return 400, {"error": "invalid_request"}
                if data.get("grant_type") != "client_credentials" or not data.get("audience"):
                    return 400, {"error": "invalid_request"}
                if (data.get("client_id"), data.get("client_secret")) != (self.client_id, self.client_secret):
                    return 401, {"error": "access_denied"}
                token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24) + ".sig"
                self.tokens.add(token)
                return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 86400}
            if method != "GET" or path not in (f"{PREFIX}/org/agents/devices", f"{PREFIX}/org/users"):
                return 404, {"status": "ERROR", "errors": ["not found"]}
            auth = headers.get("Authorization") or ""
            if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
                return 401, {"status": "ERROR", "errors": ["Unauthorized"]}
            items = self.devices if path.endswith("/devices") else self.users
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", ["50"])[0])
            chunk = items[(page - 1) * size: page * size]
            more = page * size < len(items)
            links = {"next": f"{path}?page={page + 1}&page_size={size}" if more else None}
            return 200, {"status": "OK", "data": chunk, "links": links,
                         "meta": {"total": len(items), "page": page, "page_size": size}}

    def start(self) -> FakeBlumira:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, data = fake.handle(self.command, self.path, self.headers, self.rfile.read(length))
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def running(**options: Any) -> Iterator[FakeBlumira]:
    fake = FakeBlumira(**options).start()
    try:
        yield fake
    finally:
        fake.stop()
