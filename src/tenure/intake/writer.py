"""Group commit for HTTP intake: many requests, one transaction.

Each request hands its payload (and its bearer token) to one writer thread and waits. The writer takes
whatever has queued up, checks every token of the batch in one query, stores the accepted payloads in one
transaction, and only then answers each request. So "stored before acknowledged" holds for every
payload, while a busy endpoint pays for one commit per batch instead of one per request.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from tenure.accounts.service import token_roles
from tenure.db.engine import Database
from tenure.intake.service import Outcome, ingest_batch, store


@dataclass
class Submission:
    source: str
    body: bytes
    content_type: str | None
    meta: dict[str, Any]
    token: str | None  # None: an open endpoint (pings)
    roles: frozenset[str]
    result: Future[int] = field(default_factory=Future)  # the payload id, or an exception


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


def refusal(item: Submission, roles: dict[str, str]) -> Refused | None:
    """Why a submission is refused (`roles`: the role of each valid token), or None."""
    if item.token is None:
        return None
    if item.token not in roles:
        return Refused(401, "a valid API token is required (Authorization: Bearer …)")
    if roles[item.token] not in item.roles:
        return Refused(403, f"a {roles[item.token]} token may not do this")
    return None


def ingest_now(db: Database, item: Submission) -> tuple[int, list[Outcome]]:
    """A submission whose sender waits for the decisions: checked, then stored and processed in one
    transaction (not through the writer, whose payloads the worker may take first)."""
    refused = refusal(item, token_roles(db, {item.token} if item.token else set()))
    if refused is not None:
        raise refused
    (payload,), outcomes = ingest_batch(db, item.source, [item.body], item.meta, item.content_type)
    return payload, outcomes


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
        roles = token_roles(self.db, {item.token for item in batch if item.token})
        accepted = []
        for item in batch:
            refused = refusal(item, roles)
            if refused is None:
                accepted.append(item)
            else:
                item.result.set_exception(refused)
        if not accepted:
            return
        with self.db.unit_of_work() as s:
            ids = store(s, [(i.source, i.body, i.content_type, i.meta) for i in accepted])
        for item, payload in zip(accepted, ids, strict=True):  # committed: now each sender may be answered
            item.result.set_result(payload)
