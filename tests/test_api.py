"""The HTTP API in process: tokens and roles on every route, problem details, stored before answered."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure import clock
from tenure.accounts.service import create_token, revoke_token
from tenure.api.app import create_app
from tenure.book.demo import load_demo
from tenure.intake.models import RawPayload

EVENT = json.dumps({"source": "probe", "client": "acme", "title": "CPU high", "status": "firing"}).encode()


def test_intake_refuses_missing_wrong_revoked_and_unfit_tokens(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    intake_token, _ = create_token(db, "am", "intake")
    readonly, _ = create_token(db, "viewer", "readonly")
    old, _ = create_token(db, "old", "intake")
    revoke_token(db, "old")
    with db.reader() as s:
        stored_before = len(s.scalars(select(RawPayload.id)).all())
    with TestClient(create_app(db)) as http:
        url = "/api/v1/intake/events"
        for headers, status in (
            ({}, 401),
            ({"Authorization": "Bearer nope"}, 401),
            ({"Authorization": f"Bearer {old}"}, 401),
            ({"Authorization": f"Bearer {readonly}"}, 403),
        ):
            answer = http.post(url, content=EVENT, headers=headers)
            assert answer.status_code == status, (headers, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == status and answer.json()["detail"]
        with db.reader() as s:
            assert len(s.scalars(select(RawPayload.id)).all()) == stored_before  # nothing refused was stored
        answer = http.post(f"{url}?wait=true", content=EVENT, headers={"Authorization": f"Bearer {intake_token}"})
        assert answer.status_code == 202
        assert answer.json()["counts"] == {"ticket": 1}  # a machine's token hears how it went, not about whom
        for path in ("/api/v1/alerts", "/api/v1/tickets"):
            assert http.get(path, headers={"Authorization": f"Bearer {intake_token}"}).status_code == 403
            assert http.get(path, headers={"Authorization": f"Bearer {readonly}"}).status_code == 200
        assert http.get("/healthz").json()["status"] == "ok"
        assert "/api/v1/intake/alertmanager" in http.get("/openapi.json").json()["paths"]


def test_an_empty_payload_is_refused_and_pings_need_no_token(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    token, _ = create_token(db, "am", "intake")
    with TestClient(create_app(db)) as http:
        empty = http.post("/api/v1/intake/alertmanager", content=b"", headers={"Authorization": f"Bearer {token}"})
        assert empty.status_code == 422 and "empty" in empty.json()["detail"]
        ping = http.get("/ping/5f2b7c1e-8d4a-4e43-9b8e-2f1c0a9d7e61/fail")
        assert ping.status_code == 200 and ping.json()["state"] == "stored"
