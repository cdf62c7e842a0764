"""Group commit for HTTP intake: many requests, one transaction.

Each request hands its payload (and its bearer token) to one writer thread and waits. The writer takes
whatever has queued up, checks every token of the batch in one query (each token bounded by its user's
current role, accounts/users.py `granted`), stores the accepted payloads in one
transaction, and only then answers each request. So "stored before acknowledged" holds for every
payload, while a busy endpoint pays for one commit per batch instead of one per request.

`KnownPings` says whether a backup job checks in at a UUID (`/ping/<uuid>` stores nothing for another).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select

from tenure.accounts.users import token_permissions, tokens_granted
from tenure.clients.models import BackupJob
from tenure.db.engine import Database
from tenure.intake.service import Outcome, ingest_batch, store


@dataclass
class Submission:
    source: str
    body: bytes
    content_type: str | None
    meta: dict[str, Any]
    token: str | None  # None: an open endpoint (pings)
    permission: str  # what the token must be granted (accounts/users.py PERMISSIONS), e.g. intake.post
    result: Future[int] = field(default_factory=Future)  # the payload id, or an exception


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


def refusal(item: Submission, granted: dict[str, frozenset[str]]) -> Refused | None:
    """Why a submission is refused (`granted`: what each valid token may do), or None."""
    if item.token is None:
        return None
    if item.token not in granted:
        return Refused(401, "a valid API token is required (Authorization: Bearer …)")
    if item.permission not in granted[item.token]:
        return Refused(403, f"this token may not do this (needs {item.permission})")
    return None


class Ingested(NamedTuple):
    payload: int
    outcomes: list[Outcome]
    granted: frozenset[str]  # what the token may do: the answer shows the decisions only to one that may `read`


def ingest_now(db: Database, item: Submission) -> Ingested:
    """A submission whose sender waits for the decisions: checked, then stored and processed in one
    transaction (not through the writer, whose payloads the worker may take first)."""
    granted = token_permissions(db, {item.token} if item.token else set())
    refused = refusal(item, granted)
    if refused is not None:
        raise refused
    (payload,), outcomes = ingest_batch(db, item.source, [item.body], item.meta, item.content_type)
    return Ingested(payload, outcomes, granted.get(item.token, frozenset()) if item.token else frozenset())


class KnownPings:
    """Whether a backup job has a ping UUID: one lookup on the unique index of `backup_job.ping_uuid`.
    Hits are kept for `ttl` seconds (a job that checks in every minute costs one query a minute); misses
    never are, so a job created a moment ago is found at once."""

    def __init__(self, db: Database, ttl: float = 60.0, size: int = 10_000):
        self.db = db
        self.ttl = ttl
        self.size = size
        self._hits: dict[str, float] = {}  # canonical UUID -> when the hit expires (time.monotonic)

    def __call__(self, text: str) -> bool:
        try:
            job = uuid.UUID(text)
        except ValueError:
            return False
        key = str(job)
        until = self._hits.get(key)
        if until is not None and until > time.monotonic():
            return True
        # the forms a book may hold (it keeps what it was given): a lookup on the index, not lower() on a scan
        forms = sorted({text, key, key.upper(), job.hex, job.hex.upper()})
        with self.db.reader() as s:
            found = s.scalar(select(BackupJob.id).where(BackupJob.ping_uuid.in_(forms)).limit(1))
        if found is None:
            self._hits.pop(key, None)
            return False
        if len(self._hits) >= self.size:
            self._hits.clear()
        self._hits[key] = time.monotonic() + self.ttl
        return True


class IntakeWriter:
    def __init__(self, db: Database, max_batch: int = 256):
        self.db = db
        self.max_batch = max_batch
        self.queue: queue.Queue[Submission] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="tenure-intake-writer", daemon=True)
        self.thread.start()

    def submit(self, submission: Submission) -> Future[int]:
        self.queue.put(submission)
        return submission.result

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._store(batch)
            except Exception as exc:  # nothing of this batch was stored: every sender hears so
                for item in batch:
                    if not item.result.done():
                        item.result.set_exception(exc)

    def _store(self, batch: list[Submission]) -> None:
        refused: list[tuple[Submission, Refused]] = []
        with self.db.unit_of_work() as s:  # the tokens checked and the payloads stored: one transaction
            granted = tokens_granted(s, {item.token for item in batch if item.token})
            accepted = []
            for item in batch:
                why = refusal(item, granted)
                if why is None:
                    accepted.append(item)
                else:
                    refused.append((item, why))
            ids = store(s, [(i.source, i.body, i.content_type, i.meta) for i in accepted]) if accepted else []
        for item, why in refused:
            item.result.set_exception(why)
        for item, payload in zip(accepted, ids, strict=True):  # committed: now each sender may be answered
            item.result.set_result(payload)
