"""`tenure sync backups`: each restic backup account's snapshots become results of its backup jobs.

A job's newest snapshot (matched by the job's key as a restic tag, or else its device's hostname) that is
newer than the job's last result goes through intake as a `snapshot` payload: it resolves an open
failure or missed alert like any other success, and the missed-backup sweep counts from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from tenure.clients.models import BackupJob, Device, VendorAccount
from tenure.connectors import restic
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.intake import service as intake
from tenure.vault import unseal


@dataclass
class AccountSync:
    account: str
    snapshots: int
    results: int
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"account": self.account, "snapshots": self.snapshots, "results": self.results, "error": self.error}


def repository_of(account: VendorAccount) -> restic.Repository:
    if not account.external_id:
        raise TenureError(f"backup account {account.key} has no repository (its external_id)")
    if account.secret is None:
        raise TenureError(f"backup account {account.key} has no password: `tenure account set-secret {account.key}`")
    return restic.Repository(account.external_id, unseal(account.secret))


def sync_backups(db: Database, account_key: str | None = None) -> list[AccountSync]:
    with db.reader() as s:
        query = select(VendorAccount).where(
            VendorAccount.kind == "backup", VendorAccount.vendor == "restic", VendorAccount.active
        )
        if account_key:
            query = query.where(VendorAccount.key == account_key)
        accounts = list(s.scalars(query))
        if account_key and not accounts:
            raise TenureError(f"no active restic backup account {account_key!r}")
        jobs = {
            a.id: list(
                s.execute(
                    select(BackupJob, Device.hostname)
                    .outerjoin(Device, Device.id == BackupJob.device_id)
                    .where(
                        BackupJob.client_id == a.client_id,
                        BackupJob.product == "restic",
                        BackupJob.status.in_(("active", "pending")),
                    )
                )
            )
            for a in accounts
        }
    results: list[AccountSync] = []
    for account in accounts:
        try:
            found = restic.snapshots(repository_of(account))
        except TenureError as exc:
            results.append(AccountSync(account.key, 0, 0, str(exc)))
            continue
        bodies = []
        for job, hostname in jobs[account.id]:
            mine = [snap for snap in found if job.key in snap.tags] or [
                snap for snap in found if hostname and snap.hostname.lower() == hostname.lower()
            ]
            if not mine:
                continue
            newest = mine[-1]
            if job.last_result_at is None or newest.time > job.last_result_at:
                bodies.append(
                    json.dumps(
                        {"job": job.key, "name": job.name, "snapshot": newest.id, "time": newest.time.isoformat()}
                    ).encode()
                )
        if bodies:
            intake.ingest_many(db, "snapshot", bodies)
        results.append(AccountSync(account.key, len(found), len(bodies)))
    return results
