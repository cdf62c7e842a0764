"""A billing run settles its clients in several processes (tenure.db.fanout): what it writes is exactly what one
process writes, on both engines, and a process that fails fails the run with nothing written."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

import tenure.billing.service as billing
from bench.generate import Scale, generate
from tenure import clock
from tenure.agreements.changes import edit_time_entry, void_time_entry
from tenure.agreements.frozen import decode_portions
from tenure.agreements.models import FrozenAllocation, TimeEntry
from tenure.db import fanout
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.settings import get_settings
from tests.support import empty

REAL_FAN_OUT, REAL_SETTLE = fanout.fan_out, billing._settle
SCALE = Scale(clients=36, devices=100, time_entries=3000, alerts=10, backup_jobs=10, seed=5)


def _written(db: Database) -> dict[str, Any]:
    """Everything a run writes, without the ids and times that differ between two runs of the same data."""
    with db.engine.connect() as c:
        invoices = c.execute(
            text(
                "SELECT i.number, c.key, i.kind, i.period, i.total, i.due_date, l.position, l.kind, l.description,"
                " l.quantity, l.unit_price, l.amount, l.service_from, l.service_to, l.minutes, l.agreement_id"
                " FROM invoice i JOIN client c ON c.id = i.client_id JOIN invoice_line l ON l.invoice_id = i.id"
                " ORDER BY i.number, l.position"
            )
        ).all()
        ledger = c.execute(
            text(
                "SELECT client_id, account, block_id, kind, date, minutes, amount, cause_type, cause_id, note"
                " FROM ledger_entry"
            )
        ).all()
        frozen = c.execute(
            text(
                "SELECT f.client_id, f.period, i.number, f.portions, f.monitoring, f.revisions FROM frozen_allocation f"
                " LEFT JOIN invoice i ON i.id = f.invoice_id"
            )
        ).all()
        notices = c.execute(text("SELECT client_id, kind, dedupe_key, subject, body_text FROM notice")).all()
    return {
        "invoices": [tuple(map(str, row)) for row in invoices],
        "ledger": sorted(tuple(map(str, row)) for row in ledger),
        "frozen": sorted(
            # revisions by key: their order in the JSON is a set's, which differs from process to process
            (str(c), period, str(n), repr(decode_portions(_json(p))), repr(_json(m)), repr(sorted(_json(r).items())))
            for c, period, n, p, m, r in frozen
        ),
        "notices": sorted(tuple(map(str, row)) for row in notices),
    }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _settle_sharing_with_children(s: Any, ids: Any, *rest: Any) -> Any:
    """`_settle`, but the run's own process waits (a minute at most) until a child has taken a shard, so the
    children work some of the shards however slowly they start; each shard a child works leaves a mark."""
    marks = os.environ["TENURE_TEST_SHARD_MARKS"]
    if multiprocessing.parent_process() is not None:
        Path(marks, f"{os.getpid()}-{ids[0]}").touch()
    else:
        deadline = time.monotonic() + 60
        while not os.listdir(marks) and time.monotonic() < deadline:
            time.sleep(0.05)
    return REAL_SETTLE(s, ids, *rest)


def _two_runs(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, processes: int
) -> tuple[dict[str, Any], list[int]]:
    """The generated MSP billed for the month after its history, then corrected and billed the month after.
    Returns what was written and, per run, how many shards children worked."""
    empty(db)
    generate(db, SCALE)
    monkeypatch.setattr(get_settings(), "billing_processes", processes)
    monkeypatch.setattr(billing, "CLIENTS_PER_PROCESS", 5)
    if processes > 1:
        monkeypatch.setattr(billing, "_settle", _settle_sharing_with_children)
    in_children = []

    def run(period: date) -> None:
        marks = tmp_path / f"marks-{processes}-{period}"
        marks.mkdir()
        monkeypatch.setenv("TENURE_TEST_SHARD_MARKS", str(marks))
        clock.set_now(f"{period}T08:00:00+00:00")
        billing.run_billing(db, period.strftime("%Y-%m"))
        in_children.append(len(os.listdir(marks)))

    first = SCALE.end + timedelta(days=1)
    run(first)
    with db.reader() as s:  # two entries billed by the hour to a client late in the order (another shard)
        frozen = s.execute(
            select(FrozenAllocation.client_id, FrozenAllocation.portions).order_by(FrozenAllocation.client_id.desc())
        ).all()
        cid, keys = next(
            (cid, keys)
            for cid, stored in frozen
            if len(keys := sorted({p.work_key for p in decode_portions(stored) if p.layer == "billable"})) >= 2
        )
        late = [s.scalars(select(TimeEntry.id).filter_by(client_id=cid, key=key)).one() for key in keys[:2]]
    edit_time_entry(db, late[0], {"minutes": 200}, reason="logged short")
    void_time_entry(db, late[1], "duplicate")
    run((first + timedelta(days=32)).replace(day=1))
    clock.set_now(None)
    return _written(db), in_children


def test_a_run_in_three_processes_writes_what_one_process_writes(db, monkeypatch, tmp_path):
    alone, in_children_alone = _two_runs(db, monkeypatch, tmp_path, processes=1)
    fanned, in_children = _two_runs(db, monkeypatch, tmp_path, processes=3)
    assert in_children_alone == [0, 0]
    assert all(worked >= 1 for worked in in_children)  # children worked shards of both runs
    assert len({row[0] for row in alone["invoices"]}) > SCALE.clients  # both periods invoiced
    assert "adjustment" in {row[7] for row in alone["invoices"]}  # the corrections, credited and billed again
    for part in ("invoices", "ledger", "frozen", "notices"):
        assert fanned[part] == alone[part], part


def test_invoices_are_numbered_in_the_order_of_client_keys_whatever_their_ids(db, monkeypatch, tmp_path):
    """Shards are written as they come in, each numbered after the one before: cut by key, not by id."""
    empty(db)
    generate(db, SCALE)
    with db.unit_of_work() as s:  # keys in the opposite order to ids
        s.execute(text("UPDATE client SET key = 'k' || CAST(1000 - id AS TEXT)"))
    monkeypatch.setattr(get_settings(), "billing_processes", 3)
    monkeypatch.setattr(billing, "CLIENTS_PER_PROCESS", 5)
    monkeypatch.setattr(billing, "_settle", _settle_sharing_with_children)
    monkeypatch.setenv("TENURE_TEST_SHARD_MARKS", str(tmp_path))
    period = SCALE.end + timedelta(days=1)
    clock.set_now(f"{period}T08:00:00+00:00")
    result = billing.run_billing(db, period.strftime("%Y-%m"))
    with db.reader() as s:
        numbered = s.execute(
            text(
                "SELECT i.number, c.key FROM invoice i JOIN client c ON c.id = i.client_id"
                " WHERE i.period = :period AND NOT i.imported ORDER BY i.id"
            ),
            {"period": period.strftime("%Y-%m")},
        ).all()
    assert os.listdir(tmp_path)  # children settled some of the shards
    assert len(numbered) == len(result.invoices) == SCALE.clients
    assert [key for _, key in numbered] == sorted(key for _, key in numbered)
    assert [number for number, _ in numbered] == sorted(number for number, _ in numbered)
    assert [i["client"] for i in result.invoices] == [key for _, key in numbered]


def _wait_for_a_child(marks: str) -> None:
    """In the job's own process, wait (a minute at most) until a child has taken a shard, so a test does not
    depend on how fast a child starts; in a child, say that one has."""
    if multiprocessing.parent_process() is not None:
        Path(marks, str(os.getpid())).touch()
        return
    deadline = time.monotonic() + 60
    while not os.listdir(marks) and time.monotonic() < deadline:
        time.sleep(0.05)


def _double(session: Any, shard: int, marks: str) -> tuple[int, int, int]:
    _wait_for_a_child(marks)
    return shard * 2, os.getpid(), session.execute(text("SELECT 1")).scalar_one()


def _fails_in_a_child(session: Any, shard: int, marks: str, how: str) -> int:
    _wait_for_a_child(marks)
    if multiprocessing.parent_process() is not None and how == "raise":
        raise TenureError("client c2 has no agreement to bill")
    if multiprocessing.parent_process() is not None and how == "die":
        os._exit(9)  # as if killed: no result sent
    return shard


def test_shards_are_worked_in_several_processes_and_come_back_in_order(db, tmp_path):
    with db.reader() as s:
        results = fanout.fan_out(db, s, _double, [10, 20, 30, 40], str(tmp_path), processes=3)
    assert [r[0] for r in results] == [20, 40, 60, 80] and [r[2] for r in results] == [1, 1, 1, 1]
    assert results[0][1] == os.getpid() and len({r[1] for r in results}) >= 2


def test_results_come_in_shard_order_and_a_caller_that_stops_early_leaves_no_child_behind(db, tmp_path):
    with db.reader() as s:
        with fanout.results(db, s, _double, [10, 20, 30, 40], str(tmp_path), processes=2) as each:
            assert [r[0] for r in each] == [20, 40, 60, 80]
        with fanout.results(db, s, _double, [1, 2, 3, 4, 5, 6], str(tmp_path), processes=2) as each:
            first = next(each)  # then the block is left: the child still working is stopped
    assert first[0] == 2
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


def test_shards_are_worked_from_any_thread(db, tmp_path):
    found: list[Any] = []

    def billing_request() -> None:  # as a request of the web server runs a billing run
        try:
            with db.reader() as s:
                found.append(fanout.fan_out(db, s, _double, [1, 2], str(tmp_path), processes=2))
        except Exception as exc:
            found.append(exc)

    thread = threading.Thread(target=billing_request)
    thread.start()
    thread.join()
    assert isinstance(found[0], list), found[0]
    assert [r[0] for r in found[0]] == [2, 4] and found[0][1][1] != os.getpid()


UNGUARDED_SCRIPT = """
import sys
from pathlib import Path

from tenure.db import fanout
from tenure.db.engine import Database
from tests.test_billing_fanout import _double

url, marks, ran = sys.argv[1:]
with open(ran, "a") as log:
    log.write("ran\\n")
db = Database(url)
with db.reader() as s:  # at the top level: no `if __name__ == "__main__":`
    results = fanout.fan_out(db, s, _double, [1, 2, 3, 4], marks, processes=2)
print(sorted(r[0] for r in results), len({r[1] for r in results}))
"""


def test_a_script_that_starts_a_job_at_its_top_level_runs_once(db, tmp_path):
    """A bookkeeper's script with no main guard: its children do not run it again (nor start the job again)."""
    script, marks, ran = tmp_path / "bill.py", tmp_path / "marks", tmp_path / "ran.txt"
    script.write_text(UNGUARDED_SCRIPT)
    marks.mkdir()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(script), db.url, str(marks), str(ran)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[2,", "4,", "6,", "8]", "2"]  # every shard, worked in two processes
    assert ran.read_text().splitlines() == ["ran"]


def _moment(session: Any, shard: int, marks: str) -> tuple[Any, int]:
    _wait_for_a_child(marks)
    return clock.now(), os.getpid()


def test_every_shard_reads_the_clock_at_one_moment(db, tmp_path):
    with db.reader() as s:  # the real clock, running: a shard worked later still reads the job's moment
        results = fanout.fan_out(db, s, _moment, [1, 2, 3, 4], str(tmp_path), processes=2)
    assert len({moment for moment, _ in results}) == 1 and len({pid for _, pid in results}) == 2


def _pid(session: Any, shard: int) -> int:
    return os.getpid()


def test_a_database_in_memory_is_worked_in_its_own_process_only(tmp_path):
    memory = Database("sqlite://")
    with memory.reader() as s:
        assert set(fanout.fan_out(memory, s, _pid, [1, 2, 3], processes=3)) == {os.getpid()}


def test_an_error_in_a_child_is_raised_as_it_was(db, tmp_path):
    with db.reader() as s, pytest.raises(TenureError, match="client c2 has no agreement to bill"):
        fanout.fan_out(db, s, _fails_in_a_child, [1, 2, 3], str(tmp_path), "raise", processes=3)


def test_a_child_that_dies_without_its_result_fails_the_job(db, tmp_path):
    with db.reader() as s, pytest.raises(TenureError, match="ended without its result"):
        fanout.fan_out(db, s, _fails_in_a_child, [1, 2], str(tmp_path), "die", processes=2)


def _settle_then_fail_here(s: Any, ids: Any, *rest: Any) -> Any:
    settled = REAL_SETTLE(s, ids, *rest)
    if multiprocessing.parent_process() is None:  # the first shard, in the run's own process
        raise TenureError("the first shard could not be settled")
    return settled


def test_a_run_whose_shard_fails_writes_nothing(db, monkeypatch):
    generate(db, SCALE)
    monkeypatch.setattr(get_settings(), "billing_processes", 2)
    monkeypatch.setattr(billing, "CLIENTS_PER_PROCESS", 5)
    monkeypatch.setattr(billing, "_settle", _settle_then_fail_here)
    before = _written(db)
    clock.set_now(f"{SCALE.end + timedelta(days=1)}T08:00:00+00:00")
    with pytest.raises(TenureError, match="first shard"):
        billing.run_billing(db, (SCALE.end + timedelta(days=1)).strftime("%Y-%m"))
    assert _written(db) == before


def test_processes_are_one_per_core_with_enough_items_each():
    cores = os.cpu_count() or 1
    assert fanout.processes(0, 10_000, 500) == min(cores, 20)
    assert fanout.processes(4, 1_000, 500) == 2
    assert fanout.processes(4, 300, 500) == 1
    assert fanout.processes(1, 10_000, 500) == 1
    assert fanout.cut(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
