"""The worker decides intake while another job is busy: a maintenance round of a big MSP, or an outbox waiting
on a slow SMTP server, takes seconds, and a storm arriving meanwhile must not wait for it."""

from __future__ import annotations

import json
import threading
import time

from tenure.book.demo import load_demo
from tenure.intake import service as intake
from tenure.worker import run_forever


def _state(db, payload: int) -> str:
    with db.engine.connect() as connection:
        return connection.exec_driver_sql(f"SELECT state FROM raw_payload WHERE id = {payload}").scalar_one()


def test_intake_is_processed_while_another_job_is_still_running(db):
    load_demo(db)
    busy, release = threading.Event(), threading.Event()

    def long_round(_db) -> int:  # a job that takes as long as the test needs
        busy.set()
        release.wait(30)
        return 0

    stop = threading.Event()
    jobs = [("intake", intake.process_waiting, 0.05), ("maintenance", long_round, 300.0)]
    worker = threading.Thread(target=run_forever, args=(db, stop, jobs), daemon=True)
    worker.start()
    try:
        assert busy.wait(10), "the long job never started"
        body = json.dumps({"source": "nagios", "client": "acme", "title": "Disk low", "status": "firing"}).encode()
        payload = intake.receive(db, "event", body)
        deadline = time.monotonic() + 20
        while _state(db, payload) != "processed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(db, payload) == "processed"
        assert not release.is_set()  # decided while the other job was still running
    finally:
        release.set()
        stop.set()
        worker.join(10)
    assert not worker.is_alive()  # and both lanes stop when asked
