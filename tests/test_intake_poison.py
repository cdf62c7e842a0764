"""A payload that breaks a parser or the database never stops the payloads behind it: it waits in
quarantine with its reason, and everything else is decided."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tenure import clock
from tenure.book.demo import load_demo
from tenure.intake import recording, service
from tenure.intake.models import Alert, RawPayload


def demo(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)


def event(title: str, client: str = "acme") -> bytes:
    return json.dumps({"source": "probe", "client": client, "title": title, "status": "firing"}).encode()


def states(db) -> dict[int, tuple[str, str | None]]:
    with db.reader() as s:
        return {r.id: (r.state, r.error) for r in s.execute(select(RawPayload.id, RawPayload.state, RawPayload.error))}


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def nested_email(parts: int) -> bytes:
    head = "From: nagios@acmedental.example\r\nSubject: hello\r\nMIME-Version: 1.0\r\n"
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(parts))
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(parts)))
    return (head + opening + "Content-Type: text/plain\r\n\r\nhi\r\n" + closing).encode()


def test_the_worker_quarantines_a_deeply_nested_body_and_decides_the_rest(db):
    demo(db)
    ids = service.receive_many(db, "event", [event("CPU high"), DEEP_JSON, event("Disk low")])
    assert service.process_waiting(db) == 3
    found = states(db)
    assert [found[i][0] for i in ids] == ["processed", "quarantined", "processed"]
    assert "nested too deeply" in found[ids[1]][1]
    assert service.process_waiting(db) == 0  # nothing is left waiting, nothing is retried for ever


def test_an_email_of_thousands_of_nested_parts_is_refused_with_its_reason(db):
    demo(db)
    bad = service.receive(db, "email", nested_email(2000))
    good = service.receive_many(db, "event", [event("CPU high")])[0]
    service.process_waiting(db)
    found = states(db)
    assert found[bad][0] == "quarantined" and "multipart" in found[bad][1]
    assert found[good][0] == "processed"


def test_nul_and_lone_surrogates_become_a_replacement_character(db):
    demo(db)
    body = b'{"source": "probe", "client": "acme", "status": "firing", "title": "a\\u0000b \\ud800c",'
    body += b' "labels": {"k\\u0000": "v\\udfff"}}'
    (outcome,) = service.ingest_many(db, "event", [body])
    assert outcome.decision == "ticket"
    with db.reader() as s:
        alert = s.get(Alert, outcome.alert)
        assert alert.title == "a\ufffdb \ufffdc"


def test_a_nul_in_a_check_in_path_does_not_stop_the_writer(db):
    demo(db)
    (payload,) = service.receive_many(db, "ping", [b""], meta={"path": "/ping/x\x00y"})
    service.process_waiting(db)
    assert states(db)[payload][0] == "quarantined"  # no such job, but stored and answered


def test_one_payload_the_database_refuses_is_set_aside_and_the_batch_goes_through(db, monkeypatch):
    demo(db)
    record = recording.Recorder.record

    def refuses_poison(self, item):
        if item.signal.title == "poison":
            raise ValueError("a value this database cannot hold")
        return record(self, item)

    monkeypatch.setattr(recording.Recorder, "record", refuses_poison)
    titles = [f"alert {n}" for n in range(20)]
    titles[13] = "poison"
    ids = service.receive_many(db, "event", [event(t) for t in titles])
    outcomes = service.process(db)
    assert {o.payload for o in outcomes} == set(ids)
    found = states(db)
    assert [n for n, i in enumerate(ids) if found[i][0] == "quarantined"] == [13]
    assert "ValueError: a value this database cannot hold" in found[ids[13]][1]
    with db.reader() as s:  # every other alert was recorded exactly once
        assert sorted(s.scalars(select(Alert.title).where(Alert.title.like("alert %")))) == sorted(
            t for t in titles if t != "poison"
        )
    # the cause fixed, the payload is replayed and decided
    monkeypatch.undo()
    (replayed,) = service.replay(db, [ids[13]])
    assert replayed.decision == "ticket" and states(db)[ids[13]][0] == "processed"


def test_a_sender_that_waits_hears_every_decision_even_beside_a_poison(db, monkeypatch):
    demo(db)
    record = recording.Recorder.record

    def refuses_poison(self, item):
        if item.signal.title == "poison":
            raise ValueError("refused")
        return record(self, item)

    monkeypatch.setattr(recording.Recorder, "record", refuses_poison)
    outcomes = service.ingest_many(db, "event", [event("CPU high"), event("poison"), event("Disk low")])
    assert [o.decision for o in outcomes] == ["ticket", "quarantine", "ticket"]


def test_a_database_failure_quarantines_nothing_and_keeps_the_batch_waiting(db, monkeypatch):
    demo(db)

    def gone(self):
        raise OperationalError("INSERT …", {}, Exception("server closed the connection"))

    monkeypatch.setattr(recording.Recorder, "finish", gone)
    ids = service.receive_many(db, "event", [event("CPU high"), event("Disk low")])
    with pytest.raises(OperationalError):
        service.process(db)
    assert [states(db)[i][0] for i in ids] == ["stored", "stored"]
    monkeypatch.undo()
    assert service.process_waiting(db) == 2


def test_the_worker_takes_a_backlog_in_batches(db):
    demo(db)
    ids = service.receive_many(db, "event", [event(f"alert {n}") for n in range(7)])
    assert service.process_waiting(db, limit=3) == 7
    assert {states(db)[i][0] for i in ids} == {"processed"}


# text as senders write it, with what databases refuse mixed in: NUL and lone surrogates
texts = st.text(max_size=20) | st.sampled_from(["a\x00b", "\ud800", "x\udfffy", "\x00"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"source": texts, "title": texts, "status": st.sampled_from(["firing", "resolved", "x"])},
        optional={"client": st.sampled_from(["acme", "maple"]) | texts, "host": texts, "labels": json_values},
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=300).map(nested_email),
)
RUNS = itertools.count()
SOURCES = st.sampled_from(["alertmanager", "email", "event", "tactical", "restic"])


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.tuples(SOURCES, bodies), min_size=1, max_size=4))
def test_no_payload_however_malformed_stops_the_one_behind_it(db, junk):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)  # once: running it again changes nothing
    ids = [service.receive(db, source, body) for source, body in junk]
    good = service.receive_many(db, "event", [event(f"after the junk {next(RUNS)}")])[0]  # a new alert each time
    service.process_waiting(db)
    found = states(db)
    assert found[good] == ("processed", None)
    assert all(found[i][0] in {"processed", "quarantined"} for i in ids)  # none left waiting for ever
    with db.reader() as s:
        assert s.scalar(select(Alert.id).where(Alert.raw_payload_id == good)) is not None
