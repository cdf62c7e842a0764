"""After a step finishes, `flow.advance` reads only the steps that depend on it (each step lists its
`dependants`), not every pending step of the run. What must hold: it promotes exactly what reading every
pending step would have promoted, at every moment of a run worked by the worker and by people's ticks (one
step, a device's, a phase's), to the end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenure import clock
from tenure.book.service import import_book
from tenure.offboarding import flow, service
from tenure.offboarding.models import OffboardingStep
from tests.test_offboarding_bulk import ANSWERS, AT_END, DEVICES, EARLY, ten_devices


def missed(db: Any, run: int) -> list[str]:
    """The steps a full read would promote now: what a targeted advance left behind (should be none)."""
    with db.reader() as s:
        pending = flow.pending_of(s, run)
        return [p.key for p in flow.ready_of(pending, flow.finished_of(s, run))]


def test_each_step_lists_the_steps_that_wait_for_it(db):
    import_book(db, ten_devices())
    clock.set_now(EARLY)
    run = service.apply(db, "acme", ANSWERS)["run"]
    with db.reader() as s:
        steps = list(s.query(OffboardingStep).filter_by(run_id=run))
    listed = {(step.key, dependant) for step in steps for dependant in step.dependants}
    needed = {(needed, step.key) for step in steps for needed in step.depends_on}
    assert listed == needed and listed  # the exact reverse of depends_on


def test_a_run_worked_by_the_worker_and_by_ticks_promotes_what_a_full_read_would_at_every_step(db):
    import_book(db, ten_devices())
    clock.set_now(EARLY)
    status = service.apply(db, "acme", ANSWERS)
    run = status["run"]
    assert missed(db, run) == []
    service.answer(db, "approve", "acme", "p3.approval", "end of service confirmed")
    service.apply(db, "acme", None)  # the worker: each step's finish advances the run by its dependants
    assert missed(db, run) == []
    clock.set_now(AT_END)
    service.apply(db, "acme", None)
    assert missed(db, run) == []
    # a device's steps, then a phase's, then whatever each tick made ready, until nothing waits on a person
    service.bulk(db, "done", run, service.Selection(device=DEVICES[0]), "off in the dashboard")
    assert missed(db, run) == []
    now = AT_END
    for _ in range(60):
        status = service.apply(db, "acme", None)
        assert missed(db, run) == []
        waiting = [st for st in status["steps"] if st["state"] == "waiting"]
        on_person = [st for st in waiting if st["waiting_on"] == "person"]
        if on_person:
            phase = min(int(st["key"][1]) for st in on_person)
            service.bulk(db, "skip" if phase == 7 else "done", run, service.Selection(phase=phase), "by hand")
        elif waiting:  # on the clock (the two hours after features go off): let them pass
            now += timedelta(hours=3)
            clock.set_now(now)
        else:
            break
        assert missed(db, run) == []
    # worked to the end: every step answered or run, the exit check included (which fails here, honestly: no
    # final invoice was mailed in this test)
    status = service.status(db, "acme")
    unfinished = [st["key"] for st in status["steps"] if st["state"] not in flow.TERMINAL]
    assert unfinished == ["p7.verify"] and status["state"] == "failed"
