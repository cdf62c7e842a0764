"""Who would pay for time before it is saved, in every shell: `POST /api/v1/time-entries/preview` and
`tenure time log --dry-run` answer what the time form's preview (`GET /clients/{key}/time/preview`) answers,
refuse what logging would refuse, and save nothing; time logged carries the warnings it can say."""

from __future__ import annotations

import json
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, create_user_token, log_in
from tenure.agreements.models import LedgerEntry
from tenure.api.app import create_app
from tenure.book.demo import load_demo
from tenure.cli.main import app as tenure
from tenure.settings import get_settings
from tenure.web.routes import SESSION_COOKIE

NOW = "2026-11-24T15:00:00Z"
PASSWORD = "a long enough password"
PREVIEW = "/api/v1/time-entries/preview"
# (client, minutes, work type): covered by included hours, by a prepaid block, by nothing, a former client's
COVERED = ("acme", 50, "remote_support")
BLOCK = ("willow", 50, "onsite")
UNCOVERED = ("pine", 50, "onsite")
FORMER = ("spruce", 50, "onsite")


@pytest.fixture
def shells(db, monkeypatch, tmp_path) -> Any:
    """The demo MSP rounding time to 30 minutes; a token per role, the owner signed in to the pages, and the
    command line on the same database."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    load_demo(db)
    tokens = {}
    for role in ("owner", "technician", "readonly"):
        create_user(db, f"{role}-user", PASSWORD, role)
        tokens[role], _ = create_user_token(db, f"{role}-token", None, f"{role}-user")
    opened = log_in(db, "owner-user", PASSWORD, "127.0.0.1")
    monkeypatch.setenv("TENURE_DATABASE_URL", db.url)
    monkeypatch.setenv("TENURE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()  # the command line reads the database's address from the environment
    application = create_app(db)
    with TestClient(application) as http:
        owner = {"Authorization": f"Bearer {tokens['owner']}"}
        rounding = http.patch("/api/v1/msp", json={"time_rounding_minutes": 30}, headers=owner)
        assert rounding.status_code == 200, rounding.text
        page = TestClient(application, base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
        yield {"db": db, "http": http, "page": page, "tokens": tokens}
    get_settings.cache_clear()
    clock.set_now(None)


def as_role(shells: dict[str, Any], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {shells['tokens'][role]}"}


def api_preview(shells: dict[str, Any], body: dict[str, Any], role: str = "technician") -> Any:
    return shells["http"].post(PREVIEW, json=body, headers=as_role(shells, role))


def body(client: str, minutes: int, work_type: str, **more: Any) -> dict[str, Any]:
    return {"client": client, "minutes": minutes, "work_type": work_type} | more


def page_preview(shells: dict[str, Any], client: str, minutes: int, work_type: str) -> dict[str, Any]:
    answer = shells["page"].get(f"/clients/{client}/time/preview", params={"minutes": minutes, "work_type": work_type})
    assert answer.status_code == 200, answer.text
    return answer.json()


def cli(*args: str) -> Any:
    """`tenure ARGS` in process, stdout and stderr apart."""
    return CliRunner().invoke(tenure, ["--now", NOW, *args])


def dry_run(client: str, minutes: int, work_type: str, *more: str) -> Any:
    return cli("time", "log", client, "--minutes", str(minutes), "--type", work_type, "--dry-run", *more)


def what_is_saved(shells: dict[str, Any]) -> tuple[Any, ...]:
    """Every time entry, the block client's ledger and what is left on each block, as a user sees them; and
    how many ledger entries there are in all."""
    http, technician = shells["http"], as_role(shells, "technician")
    entries = http.get("/api/v1/time-entries", params={"limit": 200, "count": "exact"}, headers=technician).json()
    ledger = http.get("/api/v1/clients/willow/ledger", params={"limit": 200}, headers=technician).json()
    blocks = http.get("/api/v1/blocks", params={"limit": 200}, headers=technician).json()
    with shells["db"].reader() as s:
        every_ledger_entry = s.scalar(select(func.count()).select_from(LedgerEntry))
    return entries["total"], entries["time_entries"], ledger, blocks, every_ledger_entry


def test_the_api_and_the_dry_run_say_who_would_pay_as_the_page_does_and_save_nothing(shells):
    before = what_is_saved(shells)
    for case in (COVERED, BLOCK, UNCOVERED, FORMER):
        page = page_preview(shells, *case)
        api = api_preview(shells, body(*case))
        assert api.status_code == 200, api.text
        dry = dry_run(*case, "--json")
        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.stdout) == api.json(), case  # the same document in both shells
        for answer in (api.json(), json.loads(dry.stdout)):
            assert answer["portions"] == page["portions"], case
            assert answer["rounded_minutes"] == page["rounded_minutes"], case
            assert answer["warnings"] == page["warnings"], case
    assert what_is_saved(shells) == before


def test_each_kind_of_time_is_answered_in_words_and_numbers(shells):
    covered = api_preview(shells, body(*COVERED)).json()
    assert [(p["layer"], p["minutes"], p["amount"]) for p in covered["portions"]] == [("included", 60, "0.00")]
    assert covered["warnings"] == [] and not covered["billable"] and not covered["former_client"]

    # the book rounds to 30 minutes: 50 minutes take 60 off the block
    block = api_preview(shells, body(*BLOCK)).json()
    assert block["minutes"] == 50 and block["rounded_minutes"] == 60
    assert [(p["layer"], p["minutes"], p["block"]) for p in block["portions"]] == [("block", 60, "willow-b1")]
    assert block["warnings"] == []
    shorter = api_preview(shells, body("willow", 35, "onsite")).json()
    assert shorter["rounded_minutes"] == 60  # not 45: the book's unit, not a quarter hour

    uncovered = api_preview(shells, body(*UNCOVERED)).json()
    assert uncovered["billable"] and not uncovered["former_client"]
    assert [(p["layer"], p["minutes"], p["amount"]) for p in uncovered["portions"]] == [("billable", 60, "150.00")]
    assert uncovered["warnings"] == ["Nothing covers onsite here: 60 min would be billed at 150.00/h (150.00)."]

    former = api_preview(shells, body(*FORMER)).json()
    assert former["former_client"] and former["billable"]
    assert former["warnings"][0] == "spruce is a former client: no agreement covers this time any more."


def test_the_dry_run_prints_a_table_and_the_warnings_on_stderr(shells):
    before = what_is_saved(shells)
    block = dry_run(*BLOCK)
    assert block.exit_code == 0, block.output
    assert "would be paid as 60 min" in block.stdout
    assert "block" in block.stdout and "willow-b1" in block.stdout and "60" in block.stdout
    assert "warning" not in block.stderr and "nothing saved" in block.stderr

    former = dry_run(*FORMER)
    assert former.exit_code == 0, former.output
    assert "billable" in former.stdout and "150.00" in former.stdout
    assert "warning: spruce is a former client" in former.stderr
    assert "warning: Nothing covers onsite here: 60 min would be billed" in former.stderr
    assert "warning" not in former.stdout
    assert what_is_saved(shells) == before


def test_what_logging_would_refuse_the_preview_refuses_too(shells):
    def refused(answer: Any) -> set[str]:
        assert answer.status_code == 422, answer.text
        return {p["name"] for p in answer.json()["invalid-params"]}

    assert "minutes" in refused(api_preview(shells, body("willow", 0, "onsite")))
    assert "work_type" in refused(api_preview(shells, body("willow", 30, "gardening")))
    assert "date" in refused(api_preview(shells, body("willow", 30, "onsite", date="2040-01-01")))
    assert "technician" in refused(api_preview(shells, body("willow", 30, "onsite", technician="Ann\nBcc: x")))
    assert "colour" in refused(api_preview(shells, body("willow", 30, "onsite", colour="red")))
    # fields a preview does not need are welcome: it takes the very body POST /time-entries takes
    full = body("willow", 30, "onsite", date="2026-11-20", technician="Ann", note="printer")
    assert api_preview(shells, full).status_code == 200
    assert api_preview(shells, body("nobody", 30, "onsite")).status_code == 404
    assert api_preview(shells, body("willow", 30, "onsite", ticket=999999)).status_code == 404

    unknown = dry_run("nobody", 30, "onsite")
    assert unknown.exit_code == 1 and "no client 'nobody'" in str(unknown.exception)


def test_a_readonly_token_may_not_preview_time(shells):
    assert api_preview(shells, body(*BLOCK), role="readonly").status_code == 403
    assert api_preview(shells, body(*BLOCK), role="owner").status_code == 200
    assert shells["http"].post(PREVIEW, json=body(*BLOCK)).status_code == 401


def test_time_logged_carries_the_warnings_its_answer_can_say(shells):
    technician = as_role(shells, "technician")
    before = what_is_saved(shells)
    logged = shells["http"].post("/api/v1/time-entries", json=body(*UNCOVERED), headers=technician)
    assert logged.status_code == 201, logged.text
    assert what_is_saved(shells) != before  # what the previews leave alone, logging changes
    assert logged.json()["warnings"] == ["Nothing covers onsite here: 60 min is billed at 150.00/h (150.00)."]
    covered = shells["http"].post("/api/v1/time-entries", json=body(*BLOCK), headers=technician)
    assert covered.status_code == 201 and covered.json()["warnings"] == []

    former = cli("time", "log", "spruce", "--minutes", "50", "--type", "onsite")
    assert former.exit_code == 0, former.output
    assert "logged" in former.stdout
    assert "warning: Nothing covers onsite here: 60 min is billed at 150.00/h (150.00)." in former.stderr
    as_json = cli("time", "log", "pine", "--minutes", "50", "--type", "onsite", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["warnings"] == [
        "Nothing covers onsite here: 60 min is billed at 150.00/h (150.00)."
    ]


def test_a_retainer_at_zero_is_said_before_and_when_time_is_logged(shells):
    technician = as_role(shells, "technician")
    day = body("cedar", 1440, "onsite")
    for _ in range(2):  # a whole day's work twice empties the demo's retainer
        drained = shells["http"].post("/api/v1/time-entries", json=day, headers=technician)
        assert drained.status_code == 201, drained.text
    assert drained.json()["on_hold"]
    assert "The retainer is at zero: this time is logged on hold." in drained.json()["warnings"]
    preview = api_preview(shells, body("cedar", 30, "onsite")).json()
    assert "The retainer is at zero: this time would be logged on hold." in preview["warnings"]
    logged = cli("time", "log", "cedar", "--minutes", "30", "--type", "onsite")
    assert logged.exit_code == 0, logged.output
    assert "warning: The retainer is at zero: this time is logged on hold." in logged.stderr
    assert "ON HOLD: cedar's work waits for a deposit" in logged.stderr
