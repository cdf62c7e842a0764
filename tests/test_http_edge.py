"""The HTTP edge, as a sender, a monitoring system and an API client see it: what `?wait=true` tells a machine's
token, which check-ins are stored, `/healthz` when intake stalls, bounded metrics, masked request logs, and an
OpenAPI document that says what the server answers."""

from __future__ import annotations

import json
import uuid as uuidlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure import clock
from tenure.accounts.service import create_token
from tenure.api.app import create_app
from tenure.book.demo import load_demo
from tenure.clients.models import BackupJob, Client
from tenure.intake import service
from tenure.intake.models import RawPayload
from tenure.notices import links
from tenure.settings import get_settings

EVENT = json.dumps({"source": "probe", "client": "acme", "title": "CPU high", "status": "firing"}).encode()
KNOWN = "5f2b7c1e-8d4a-4e43-9b8e-2f1c0a9d7e61"  # acme-srv02-restic in the demo
PROBLEM = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def payloads(db) -> list[RawPayload]:
    with db.reader() as s:
        return list(s.scalars(select(RawPayload).order_by(RawPayload.id)))


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_database_too_busy_to_store_answers_503_with_retry_after_and_stores_nothing(db, monkeypatch):
    """A sender (Alertmanager, a backup job) that hears 503 and Retry-After sends again; a 500 with a
    traceback is a bug report. Whatever the database refused, nothing was stored."""
    from sqlalchemy.exc import OperationalError

    from tenure.intake import writer

    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    machine, _ = create_token(db, "am", "intake")
    before = len(payloads(db))
    real_store, real_batch = writer.store, writer.ingest_batch

    def locked(*args, **kwargs):  # what SQLite raises when its write lock is held past the busy timeout
        raise OperationalError("INSERT INTO raw_payload …", {}, Exception("database is locked"))

    monkeypatch.setattr(writer, "store", locked)
    monkeypatch.setattr(writer, "ingest_batch", locked)
    with TestClient(create_app(db), raise_server_exceptions=False) as http:
        for path in ("/api/v1/intake/events", "/api/v1/intake/events?wait=true", f"/ping/{KNOWN}"):
            headers = bearer(machine) if path.startswith("/api") else {}
            answer = http.post(path, content=EVENT, headers=headers)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == PROBLEM and answer.headers["retry-after"] == "5"
            assert "nothing was stored" in answer.json()["detail"]
        assert len(payloads(db)) == before

        monkeypatch.setattr(writer, "store", real_store)  # the lock is free again: the same body goes through
        monkeypatch.setattr(writer, "ingest_batch", real_batch)
        answer = http.post("/api/v1/intake/events", content=EVENT, headers=bearer(machine))
        assert answer.status_code == 202, answer.text
    assert len(payloads(db)) == before + 1


# ------------------------------------------------------------------------------------------ ?wait=true


def test_waiting_an_intake_token_hears_counts_and_a_technician_the_decisions(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    machine, _ = create_token(db, "am", "intake")
    person, _ = create_token(db, "terry", "technician")
    with TestClient(create_app(db)) as http:
        answer = http.post("/api/v1/intake/events?wait=true", content=EVENT, headers=bearer(machine))
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert set(body) == {"payload", "state", "counts"}
        assert body["state"] == "processed" and body["counts"] == {"ticket": 1}
        assert "acme" not in answer.text and "Acme" not in answer.text  # no client, no agreement, no coverage

        other = json.dumps({"source": "probe", "client": "acme", "title": "Disk full", "status": "firing"}).encode()
        answer = http.post("/api/v1/intake/events?wait=true", content=other, headers=bearer(person))
        assert answer.status_code == 202
        (decision,) = answer.json()["decisions"]
        assert (decision["client"], decision["decision"]) == ("acme", "ticket") and decision["reason"]


def test_the_endpoint_decides_the_parser_not_a_query_parameter(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    token, _ = create_token(db, "terry", "technician")
    with TestClient(create_app(db)) as http:
        answer = http.post("/api/v1/intake/events?wait=true&source=alertmanager", content=EVENT, headers=bearer(token))
        assert answer.status_code == 202
        (decision,) = answer.json()["decisions"]
        assert (decision["client"], decision["decision"]) == ("acme", "ticket")  # read as an event
        assert payloads(db)[-1].source == "event"
        for operations in http.get("/openapi.json").json()["paths"].values():
            for operation in operations.values():
                assert "source" not in {p["name"] for p in operation.get("parameters", [])}


# ------------------------------------------------------------------------------------------ check-ins


def test_a_checkin_at_an_unknown_uuid_stores_nothing_and_is_counted(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    unknown = str(uuidlib.uuid4())
    before = len(payloads(db))
    with TestClient(create_app(db)) as http:
        for path in (f"/ping/{unknown}", f"/ping/{unknown}/fail", "/ping/not-a-uuid"):
            refused = http.post(path, content=b"x" * 100_000)
            assert refused.status_code == 404, path
            assert refused.headers["content-type"] == PROBLEM and refused.json()["status"] == 404
        assert len(payloads(db)) == before
        assert metric(http.get("/metrics").text, "tenure_intake_pings_refused_total") == 3.0

        # a job created a moment ago checks in at once
        with db.unit_of_work() as s:
            acme = s.scalars(select(Client).where(Client.key == "acme")).one()
            s.add(BackupJob(client_id=acme.id, key="acme-new", product="restic", name="New", ping_uuid=unknown))
        assert http.get(f"/ping/{unknown}/start").status_code == 200
        assert http.get(f"/ping/{KNOWN.upper()}").status_code == 200  # the UUID as any client spells it
        assert len(payloads(db)) == before + 2
        assert metric(http.get("/metrics").text, "tenure_intake_pings_refused_total") == 3.0


def test_a_large_checkin_keeps_the_start_of_its_log(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    log = b"".join(b"line %06d of the backup log\n" % i for i in range(40_000))  # about 1.1 MB
    with TestClient(create_app(db)) as http:
        answer = http.post(f"/ping/{KNOWN}/fail", content=log)
        assert answer.status_code == 200 and answer.json()["state"] == "stored"
        small = http.post(f"/ping/{KNOWN}", content=b"all good\n")
        assert small.status_code == 200
    big, ok = payloads(db)[-2:]
    assert big.body == log[: 10 * 1024]
    assert big.meta["truncated"] is True and big.meta["body_bytes"] == len(log)
    assert ok.body == b"all good\n" and "truncated" not in ok.meta
    (outcome,) = service.process(db, [big.id])
    assert (outcome.client, outcome.status) == ("acme", "failure")  # the check-in itself is intact


# ------------------------------------------------------------------------------------------ health


def test_healthz_and_metrics_say_when_intake_stalls(db, monkeypatch):
    monkeypatch.setenv("TENURE_NOW", "2026-11-24T15:00:00Z")
    with TestClient(create_app(db)) as http:
        assert http.get("/healthz").json() == {"status": "ok", "oldest_unprocessed_seconds": 0, "unprocessed": 0}
        service.receive(db, "event", EVENT)
        service.receive(db, "event", EVENT)

        monkeypatch.setenv("TENURE_NOW", "2026-11-24T15:04:59Z")
        health = http.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "oldest_unprocessed_seconds": 299, "unprocessed": 2}

        monkeypatch.setenv("TENURE_NOW", "2026-11-24T15:05:01Z")
        health = http.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {"status": "stalled", "oldest_unprocessed_seconds": 301, "unprocessed": 2}
        scraped = http.get("/metrics").text
        assert metric(scraped, "tenure_intake_unprocessed_payloads") == 2.0
        assert metric(scraped, "tenure_intake_oldest_unprocessed_seconds") == 301.0

        service.process(db)  # the worker catches up
        assert http.get("/healthz").json() == {"status": "ok", "oldest_unprocessed_seconds": 0, "unprocessed": 0}
        assert metric(http.get("/metrics").text, "tenure_intake_oldest_unprocessed_seconds") == 0.0

        monkeypatch.setenv("TENURE_INTAKE_STALL_SECONDS", "60")
        get_settings.cache_clear()
        try:
            service.receive(db, "event", EVENT)
            monkeypatch.setenv("TENURE_NOW", "2026-11-24T15:06:02Z")
            assert http.get("/healthz").status_code == 503
        finally:
            monkeypatch.delenv("TENURE_INTAKE_STALL_SECONDS")
            get_settings.cache_clear()


# ------------------------------------------------------------------------------------------ metrics, logs


def test_metrics_labels_stay_bounded_and_name_route_templates(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    token, _ = create_token(db, "viewer", "readonly")
    with TestClient(create_app(db)) as http:
        for method in ("FOO", "BAR-BAZ", "PROPFIND"):
            assert http.request(method, "/healthz").status_code == 405
        http.get("/api/v1/invoices/2026-99999", headers=bearer(token))
        http.get("/api/v1/clients/acme", headers=bearer(token))
        http.get("/n/some-signed-token-value")
        http.get("/openapi.json")
        scraped = http.get("/metrics").text
    series = [line for line in scraped.splitlines() if line.startswith("tenure_http_requests_total{")]
    assert any('method="other"' in line and 'route="/healthz"' in line and 'status="405"' in line for line in series)
    assert not any(m in scraped for m in ("FOO", "BAR-BAZ", "PROPFIND"))
    assert any('route="/api/v1/invoices/{number}"' in line for line in series)
    assert any('route="/api/v1/clients/{key}"' in line for line in series)
    assert any('route="/n/{token}"' in line for line in series)
    assert any('route="/openapi.json"' in line and 'status="200"' in line for line in series)
    assert "2026-99999" not in scraped and "acme" not in scraped and "some-signed-token-value" not in scraped


def test_the_request_log_never_holds_a_link_calendar_token_or_ping_uuid(db, capsys):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    signed = links.sign_link({"k": "r", "n": 1})
    feed = links.calendar_token(client="acme")
    capsys.readouterr()
    with TestClient(create_app(db)) as http:
        http.get(f"/n/{signed}")
        http.get(f"/calendar/{feed}.ics")
        http.get(f"/ping/{KNOWN}/fail")
        http.get("/healthz")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    paths = [line["path"] for line in lines if line.get("event") == "request"]
    assert f"/n/{signed[:6]}…" in paths
    assert f"/calendar/{feed[:6]}….ics" in paths
    assert f"/ping/{KNOWN[:6]}…/fail" in paths
    assert "/healthz" in paths
    logged = json.dumps(lines)
    assert signed not in logged and feed not in logged and KNOWN not in logged


# ------------------------------------------------------------------------------------------ OpenAPI


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_openapi_document_says_what_the_server_answers(db):
    doc = create_app(db).openapi()
    problem_ref = {"$ref": "#/components/schemas/ProblemDetails"}
    schemas = doc["components"]["schemas"]
    assert {"type", "title", "status", "detail", "invalid-params"} <= set(schemas["ProblemDetails"]["properties"])
    assert "HTTPValidationError" not in schemas
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    for path, method, operation in _operations(doc):
        if not path.startswith(("/api/", "/ping/", "/healthz", "/metrics")):
            continue
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")) and status != "503":
                assert answer["content"] == {PROBLEM: {"schema": problem_ref}}, (method, path, status)
        if path.startswith("/api/v1/"):
            assert operation.get("security") == [{"HTTPBearer": []}], (method, path)

    bodies = {
        "alertmanager": "application/json",
        "events": "application/json",
        "tactical": "application/json",
        "restic": "application/json",
        "email": "message/rfc822",
    }
    for name, media_type in bodies.items():
        operation = doc["paths"][f"/api/v1/intake/{name}"]["post"]
        assert list(operation["requestBody"]["content"]) == [media_type]
        assert operation["requestBody"]["required"] is True
        assert {"202", "401", "403", "413", "422"} <= set(operation["responses"])
        assert "Authorization" not in {p["name"] for p in operation.get("parameters", [])}
    assert doc["paths"]["/ping/{uuid}"]["get"]["responses"]["404"]["content"] == {PROBLEM: {"schema": problem_ref}}
    link = doc["paths"]["/n/{token}"]["get"]["responses"]
    assert "text/html" in link["400"]["content"]
    calendar = doc["paths"]["/calendar/{token}.ics"]["get"]["responses"]
    assert calendar["404"]["content"] == {PROBLEM: {"schema": problem_ref}}
    health = doc["paths"]["/healthz"]["get"]["responses"]
    assert {"200", "503"} <= set(health)


def test_real_errors_are_the_documented_problems_and_a_405_names_every_allowed_method(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    token, _ = create_token(db, "am", "intake")
    with TestClient(create_app(db)) as http:
        answer = http.delete("/api/v1/intake/events")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"
        assert answer.headers["content-type"] == PROBLEM and answer.json()["status"] == 405
        answer = http.put(f"/ping/{KNOWN}")
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
        answer = http.put("/api/v1/time-entries", headers=bearer(token))
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"

        invalid = http.post("/api/v1/intake/events?wait=maybe", content=EVENT, headers=bearer(token))
        assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM
        assert invalid.json()["invalid-params"][0]["name"] == "wait"
        before = len(payloads(db))
        large = http.post("/api/v1/intake/events", content=b" " * (10 * 1024 * 1024 + 1), headers=bearer(token))
        assert large.status_code == 413 and large.headers["content-type"] == PROBLEM
        assert len(payloads(db)) == before
        missing = http.post("/api/v1/intake/events", content=EVENT)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        calendar = http.get("/calendar/nothing-here.ics")
        assert calendar.status_code == 404 and calendar.headers["content-type"] == PROBLEM
        link = http.get("/n/nothing-here")
        assert link.status_code == 400 and link.headers["content-type"].startswith("text/html")
