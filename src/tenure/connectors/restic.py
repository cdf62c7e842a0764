"""restic, the real binary: backup monitoring from `snapshots --json`, and the offboarding hand-over.

Every call runs `restic` with the repository and password in the environment (`RESTIC_REPOSITORY`,
`RESTIC_PASSWORD`), never on the command line where `ps` would show them. The hand-over copies the
client's snapshots into a repository for the client (`restic copy --from-repo`), verifies it with
`restic check` and a snapshot count, and only then may the MSP's snapshots of that client be forgotten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tenure.connectors.base import CallLog
from tenure.errors import TenureError

TIMEOUT = 3600


class ResticError(TenureError):
    pass


@dataclass(frozen=True)
class Repository:
    location: str  # a path or a restic URL (sftp:, s3:, rest:, ...)
    password: str


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime
    hostname: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]


def binary() -> str:
    found = shutil.which("restic")
    if not found:
        raise ResticError("restic is not installed (Debian: apt-get install restic)")
    return found


_calls: ContextVar[CallLog | None] = ContextVar("restic_calls", default=None)


@contextmanager
def recorded(calls: CallLog) -> Iterator[None]:
    """Every restic command run meanwhile lands in `calls` (a step's attempt), as a vendor's API calls do."""
    token = _calls.set(calls)
    try:
        yield
    finally:
        _calls.reset(token)


def shown(location: str) -> str:
    """A repository's location fit for a record: a password in a URL (`rest:https://user:pw@host/`) hidden."""
    return re.sub(r"(//[^/:@]+):[^@/]*@", r"\1:***@", location)


def run(repo: Repository, *args: str, extra_env: dict[str, str] | None = None, timeout: int = TIMEOUT,
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    env |= {"RESTIC_REPOSITORY": repo.location, "RESTIC_PASSWORD": repo.password, **(extra_env or {})}
    calls, started = _calls.get(), time.monotonic()

    def record(status: int | None, error: str | None) -> None:  # on the step's attempt, when a step runs it
        if calls is not None:
            ms = int((time.monotonic() - started) * 1000)
            calls.record("restic", f"{args[0]} {shown(repo.location)}", status, ms=ms, error=error)

    try:
        done = subprocess.run(
            [binary(), "--no-cache", *args], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        record(None, f"no answer within {timeout} s")
        raise ResticError(f"restic {args[0]} gave no answer within {timeout} s") from None
    lines = (done.stderr or done.stdout).strip().splitlines()
    last = lines[-1] if lines else "no output"
    failed = done.returncode not in (0, 3)  # 3: a backup that could not read some files (a warning)
    record(done.returncode, last if failed else None)
    if failed:
        raise ResticError(f"restic {args[0]} failed ({done.returncode}): {last}")
    return done


def _time(text: str) -> datetime:
    # restic writes nanoseconds and an offset: 2026-11-24T15:00:00.123456789+01:00
    head, _, rest = text.partition(".")
    digits = "".join(c for c in rest if c.isdigit())
    offset = rest[len(digits):] if rest else text[19:]
    return datetime.fromisoformat(f"{head}.{digits[:6].ljust(6, '0')}{offset}" if rest else text)


def snapshots(repo: Repository, *filters: str) -> list[Snapshot]:
    """The repository's snapshots, oldest first (`--host X`, `--tag Y`, `--path Z` narrow them)."""
    raw = json.loads(run(repo, "snapshots", "--json", *filters).stdout or "[]")
    found = [Snapshot(item.get("short_id") or item["id"][:8], _time(item["time"]), item.get("hostname", ""),
                      tuple(item.get("paths", [])), tuple(item.get("tags") or [])) for item in raw]
    return sorted(found, key=lambda s: s.time)


def init(repo: Repository, from_repo: Repository | None = None) -> None:
    """A new repository (with the source's chunker parameters, so copies deduplicate)."""
    if from_repo is None:
        run(repo, "init")
        return
    run(repo, "init", "--from-repo", from_repo.location, "--copy-chunker-params",
        extra_env={"RESTIC_FROM_PASSWORD": from_repo.password})


def copy(source: Repository, target: Repository, *filters: str) -> None:
    run(target, "copy", "--from-repo", source.location, *filters,
        extra_env={"RESTIC_FROM_PASSWORD": source.password})


def check(repo: Repository) -> None:
    run(repo, "check")


@dataclass(frozen=True)
class HandOver:
    snapshots_in_source: int
    snapshots_in_copy: int
    verified: bool

    def as_json(self) -> dict[str, Any]:
        return {"snapshots_in_source": self.snapshots_in_source, "snapshots_in_copy": self.snapshots_in_copy,
                "verified": self.verified}


def hand_over(source: Repository, target: Repository, *filters: str) -> HandOver:
    """Copy the client's snapshots into the client's own repository and verify it. Safe to run again:
    restic copy skips snapshots the target already holds."""
    if not _exists(target):
        init(target, from_repo=source)
    copy(source, target, *filters)
    check(target)
    wanted, have = len(snapshots(source, *filters)), len(snapshots(target))
    return HandOver(wanted, have, have >= wanted)


def restore(repo: Repository, snapshot: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    run(repo, "restore", snapshot, "--target", str(folder))


def forget(repo: Repository, *filters: str, verified: HandOver, delete_allowed: bool) -> int:
    """Forget (and prune) the MSP's snapshots of the client: only after a verified hand-over and only when
    the client allowed its data to be deleted. Returns how many snapshots were forgotten."""
    if not verified.verified:
        raise ResticError("the hand-over copy is not verified: the MSP's snapshots stay")
    if not delete_allowed:
        raise ResticError("the answers do not allow deleting the client's data: the MSP's snapshots stay")
    ids = [s.id for s in snapshots(repo, *filters)]
    if ids:
        run(repo, "forget", "--prune", *ids)
    return len(ids)


def _exists(repo: Repository) -> bool:
    try:
        run(repo, "cat", "config", timeout=120)
        return True
    except ResticError:
        return False
