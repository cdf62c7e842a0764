"""`tenure worker --processes N`: several processes claim intake batches side by side (PostgreSQL), and every
payload is still decided exactly once, as one worker would decide it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.clients.models import BackupJob
from tenure.intake import service
from tenure.intake.models import Alert, RawPayload
from tenure.triage.models import Ticket

NOW = "2026-11-24T15:00:00Z"
DISK_ALERT = Alert.title.like("Disk low %")  # the burst's alerts (the demo has others)


def _burst(n: int) -> list[bytes]:
    """`n` events for two managed clients, 40 fingerprints each, so repeats land in different batches."""
    return [
        json.dumps(
            {
                "source": "probe",
                "client": ("acme", "maple")[i % 2],
                "title": f"Disk low {i // 2 % 40}",
                "status": "firing",
                "service": "monitoring",
                "fingerprint": f"disk-{i // 2 % 40}",
            }
        ).encode()
        for i in range(n)
    ]


def test_several_worker_processes_decide_every_payload_exactly_once(db, cli):
    clock.set_now(NOW)
    load_demo(db)
    n = service.BATCH * 2 + 1000  # three batches for three processes
    ids = service.receive_many(db, "event", _burst(n))
    if db.is_sqlite:
        refused = cli("worker", "--once", "--processes", "3", "--now", NOW, check=False)
        assert refused.returncode != 0 and "PostgreSQL" in refused.stderr
        with db.reader() as s:  # nothing was touched
            assert s.scalar(select(func.count()).select_from(RawPayload).where(RawPayload.state == "stored")) == n
        return

    done = json.loads(cli("worker", "--once", "--processes", "3", "--now", NOW, "--json").stdout)
    assert done["intake"] == n  # each payload claimed by one process only
    with db.reader() as s:
        states = Counter(s.scalars(select(RawPayload.state).where(RawPayload.id.in_(ids))))
        assert states == {"processed": n}
        alerts = s.execute(
            select(Alert.client_id, Alert.fingerprint, Alert.count, Alert.ticket_id, Alert.status).where(DISK_ALERT)
        ).all()
        # one open alert per client and fingerprint, however the repeats were spread over the processes
        assert Counter((a.client_id, a.fingerprint) for a in alerts).most_common(1)[0][1] == 1
        assert len(alerts) == 80 and {a.status for a in alerts} == {"firing"}
        assert sum(a.count for a in alerts) == n  # every repeat counted once, on its open alert
        tickets = {t.id: t for t in s.scalars(select(Ticket).where(Ticket.title.like("Disk low %")))}
        ticketed = [a for a in alerts if a.ticket_id is not None]
        assert len(tickets) == len(ticketed)  # never a second ticket for a repeat
        assert all(tickets[a.ticket_id].alert_count == a.count for a in ticketed)


def test_several_worker_processes_decide_as_one_would(db, cli):
    """The same burst, processed by one worker and then by three: the same decisions, alerts and tickets."""
    if db.is_sqlite:
        return  # several processes are PostgreSQL's (the refusal is shown above)
    clock.set_now(NOW)
    load_demo(db)
    bodies = _burst(service.BATCH + 600)

    def outcome() -> list[tuple[object, ...]]:
        with db.reader() as s:
            rows = s.execute(
                select(Alert.client_id, Alert.fingerprint, Alert.decision, Alert.count, Ticket.status, Ticket.title)
                .outerjoin(Ticket, Ticket.id == Alert.ticket_id)
                .where(DISK_ALERT)
                .order_by(Alert.client_id, Alert.fingerprint)
            ).all()
        return [tuple(r) for r in rows]

    service.receive_many(db, "event", bodies)
    cli("worker", "--once", "--now", NOW)
    one = outcome()
    with db.unit_of_work() as s:  # the same burst again, on a desk where those alerts are gone
        s.execute(Alert.__table__.delete().where(DISK_ALERT))
        s.execute(Ticket.__table__.delete().where(Ticket.title.like("Disk low %")))
    service.receive_many(db, "event", bodies)
    cli("worker", "--once", "--processes", "2", "--now", NOW)
    assert outcome() == one and one


def test_worker_processes_killed_mid_burst_lose_nothing_and_count_nothing_twice(db, cli, tmp_path):
    """kill -9 of every worker process while they work through a burst: what a killed transaction had claimed
    is claimed again, and every payload ends up processed exactly once."""
    if db.is_sqlite:
        return  # several processes are PostgreSQL's
    clock.set_now(NOW)
    load_demo(db)
    n = service.BATCH * 3
    ids = service.receive_many(db, "event", _burst(n))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    environment |= {"TENURE_HOME": str(tmp_path / "home"), "TENURE_DATABASE_URL": db.url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tenure", "worker", "--processes", "2", "--now", NOW],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def processed() -> int:
        with db.reader() as s:
            return s.scalar(select(func.count()).select_from(RawPayload).where(RawPayload.state == "processed"))

    deadline = time.monotonic() + 120
    while processed() == 0 and time.monotonic() < deadline:  # the first batch is in: others are in flight
        time.sleep(0.05)
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    for pid in [worker.pid, *map(int, children)]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=20)
    assert 0 < processed() < n  # killed with work left
    cli("worker", "--once", "--now", NOW)
    with db.reader() as s:
        assert Counter(s.scalars(select(RawPayload.state).where(RawPayload.id.in_(ids)))) == {"processed": n}
        counts = s.scalars(select(Alert.count).where(DISK_ALERT)).all()
    assert len(counts) == 80 and sum(counts) == n  # each payload counted once, none twice, none lost


def test_workers_side_by_side_make_one_job_of_each_new_backup_job(db):
    """Backup results of jobs never seen before, spread over batches that workers record side by side: each
    job is made once (a batch reads the jobs again once it may record, so it finds the one another made)."""
    if db.is_sqlite:
        return  # one writer: batches are recorded one after another anyway
    clock.set_now(NOW)
    load_demo(db)
    mail = (Path(__file__).parent / "data/backup_emails/veeam_success.eml").read_bytes()
    bodies = [mail.replace(b"Daily VMs", f"Nightly set {i % 12}".encode()) for i in range(360)]
    ids = service.receive_many(db, "email", bodies)
    workers = [threading.Thread(target=service.process_waiting, args=(db, 30)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with db.reader() as s:
        assert Counter(s.scalars(select(RawPayload.state).where(RawPayload.id.in_(ids)))) == {"processed": 360}
        made = select(BackupJob.client_id, BackupJob.name).where(BackupJob.name.like("Nightly set %"))
        jobs = Counter(tuple(row) for row in s.execute(made))
    assert len(jobs) == 12 and set(jobs.values()) == {1}
