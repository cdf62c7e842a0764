"""HTTP clients shared by the connectors one runner builds, one per vendor API and key.

A connector is built for each step (it logs that step's calls), but its HTTP client need not be: building
an `httpx.Client` loads the CA bundle into a new TLS context (tens of milliseconds), and a new client
opens a new connection (a TCP and TLS handshake) for its first call. One client per (API, key, timeout),
kept for the runner's life, keeps its connection alive from step to step.

`close()` closes every client; one asked for afterwards is built anew, so a closed pool is still usable.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx loads with the first client built, not with every module that holds a pool
    import httpx


class HttpClients:
    def __init__(self) -> None:
        self._clients: dict[tuple[str, tuple[tuple[str, str], ...], float], httpx.Client] = {}
        self._lock = threading.Lock()  # a runner's steps run in one thread, but a pool may be shared

    def get(self, base_url: str, headers: Mapping[str, str], timeout: float) -> httpx.Client:
        """The client for this API with these headers (the API key among them)."""
        key = (base_url, tuple(sorted(headers.items())), timeout)
        with self._lock:
            client = self._clients.get(key)
            if client is None or client.is_closed:
                client = self._clients[key] = client_for(base_url, headers, timeout)
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __len__(self) -> int:
        return len(self._clients)


def client_for(
    base_url: str, headers: Mapping[str, str], timeout: float, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    import httpx

    return httpx.Client(
        base_url=base_url,
        headers=dict(headers),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        transport=transport,
    )
