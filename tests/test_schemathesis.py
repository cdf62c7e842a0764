"""Schemathesis against /openapi.json, in process: requests generated from the schema (valid ones, and ones
that break it) reach every operation with an owner's token, and none gets a server error (5xx).

Bounded: a few examples per operation and mode, so the whole run takes well under a minute."""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tenure import clock
from tenure.accounts.service import create_token
from tenure.api.app import create_app
from tenure.book.demo import load_demo

# TENURE_FUZZ_SCALE=10 fuzzes ten times longer (by hand, not in CI)
SCALE = max(1, int(os.environ.get("TENURE_FUZZ_SCALE", "1")))
EXAMPLES = {GenerationMode.POSITIVE: 12 * SCALE, GenerationMode.NEGATIVE: 6 * SCALE}
# intake's e-mail endpoint reads a raw message (message/rfc822): generated as text
schemathesis.serializer.alias("message/rfc822", "text/plain")


def test_no_generated_request_gets_a_server_error(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    token, _ = create_token(db, "fuzz", "owner")
    app = create_app(db)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/ping/"):
            continue  # open check-ins: covered by the intake tests, and every call would store a payload
        operations += 1
        for mode, examples in EXAMPLES.items():

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                merged = {**dict(case.headers or {}), **headers}
                response = case.call(headers=merged)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.query} {case.body!r}: "
                        f"{response.status_code} {response.text[:300]}"
                    )

            try:
                check()
            except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert operations >= 25
    assert not failures, "\n".join(failures[:10])
