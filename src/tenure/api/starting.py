"""The first seconds of `tenure serve`: it listens at once while the application is built beside it.

Building the application (two hundred routes with their schemas, the pages and their templates) takes a few
seconds. Meanwhile `/healthz` answers 503 `starting` (with the worker's backlog, from the database): the
process is up, not ready yet; a load balancer or a script waiting for 200 waits for the application. Any
other request that arrives meanwhile waits for the application and is then answered by it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tenure.db.engine import Database

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

WAIT_SECONDS = 60.0  # how long an early request waits for the application before it is told to retry


class Starting:
    """An ASGI application that hands every request to `app` once it is built (`build_beside`)."""

    def __init__(self, database: Database):
        self.database = database
        self.app: App | None = None
        self.built = threading.Event()

    def build_beside(self, build: Callable[[], App], then: Callable[[], None] = lambda: None) -> None:
        """Build the application in a thread; `then` runs once it serves (the worker starts there)."""

        def run() -> None:
            try:
                self.app = build()
            finally:
                self.built.set()
            then()

        threading.Thread(target=run, name="tenure-build", daemon=True).start()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is not None:
            return await self.app(scope, receive, send)
        if scope["type"] == "lifespan":  # the application has no start-up or shut-down of its own
            return await _lifespan(receive, send)
        if scope["type"] == "http" and scope["path"] == "/healthz":
            return await self._healthz(send)
        await asyncio.get_running_loop().run_in_executor(None, self.built.wait, WAIT_SECONDS)
        if self.app is None:  # the build failed (its error is on stderr) or is still going
            return await _answer(send, 503, {"title": "Tenure is starting", "status": 503}, retry=True)
        return await self.app(scope, receive, send)

    async def _healthz(self, send: Send) -> None:
        from tenure.operations.http import health  # the same answer as the application's /healthz

        answer, _ = await asyncio.get_running_loop().run_in_executor(None, health, self.database)
        await _answer(send, 503, answer | {"status": "starting"}, retry=True)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send: Send, status: int, document: dict[str, Any], retry: bool = False) -> None:
    body = json.dumps(document).encode()
    kind = b"application/problem+json" if "title" in document else b"application/json"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    if retry:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
