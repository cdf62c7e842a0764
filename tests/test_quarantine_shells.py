"""Quarantine beside the mapping rules, through the HTTP app: an alert nobody matched waits with what a rule
could match, a rule written on the page (or through the API) places it, a replay decides it, and an
unreadable payload waits with its reason. Only who may change inventory writes rules and replays."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, create_user_token, log_in
from tenure.api.app import create_app
from tenure.book.service import import_book
from tenure.intake.models import RawPayload
from tenure.web.routes import SESSION_COOKIE
from tests.books import small

NOW = "2026-11-24T15:00:00Z"
PASSWORD = "a long enough password"
HOST = "mystery-srv.branch.lan"


def alertmanager(host: str = HOST, title: str = "Disk D: on mystery-srv is 97% full") -> bytes:
    """One firing alert of a Prometheus Alertmanager webhook about a machine no client has (no client label)."""
    return json.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "tenure",
            "groupLabels": {"alertname": "HostDiskSpaceLow"},
            "commonLabels": {"job": "node"},
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "HostDiskSpaceLow", "instance": f"{host}:9100", "severity": "critical"},
                    "annotations": {"summary": title},
                    "startsAt": "2026-11-24T14:50:00Z",
                    "fingerprint": "5f1e0c2a9b7d3e41",
                }
            ],
        }
    ).encode()


@pytest.fixture
def shop(db, monkeypatch) -> dict[str, Any]:
    """Acme's book; an owner, a technician and a readonly person, each with a browser and a token."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    import_book(db, small())
    app = create_app(db)
    people: dict[str, Any] = {}
    for role in ("owner", "technician", "readonly"):
        create_user(db, role, PASSWORD, role)
        token, _ = create_user_token(db, f"{role}-script", None, role)
        session = log_in(db, role, PASSWORD, "127.0.0.1")
        browser = TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: session.secret})
        people[role] = {"browser": browser, "csrf": session.csrf, "auth": {"Authorization": f"Bearer {token}"}}
    with TestClient(app) as api:
        yield {"db": db, "api": api, **people}


def post_alert(shop: dict[str, Any], body: bytes, source: str = "alertmanager") -> dict[str, Any]:
    answer = shop["api"].post(
        f"/api/v1/intake/{source}?wait=true",
        content=body,
        headers=shop["owner"]["auth"] | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def flash(response: Any) -> list[str]:
    return re.findall(r'class="flash (?:ok|error)"[^>]*>(.*?)</p>', response.text)


def row_of(html: str, payload: int) -> str:
    found = re.search(rf'<tr id="payload-{payload}".*?(?=<tr id="payload-|</tbody>)', html, re.S)
    assert found, html[-3000:]
    return found.group(0)


def form_post(person: dict[str, Any], path: str, **fields: Any) -> Any:
    return person["browser"].post(path, data={"csrf": person["csrf"], **fields}, follow_redirects=False)


def test_an_unmatched_alert_waits_a_rule_written_on_the_page_places_it_and_a_replay_decides_it(shop):
    received = post_alert(shop, alertmanager())
    (decision,) = received["decisions"]
    assert decision["decision"] == "quarantine" and decision["client"] is None
    payload = received["payload"]
    api, tech = shop["api"], shop["technician"]

    # the API shows what waits, with what a rule could match and the rule a person would likely write
    waiting = api.get("/api/v1/quarantine", headers=shop["readonly"]["auth"])
    assert waiting.status_code == 200, waiting.text
    assert (waiting.json()["total"], waiting.json()["next_offset"]) == (1, None)
    (item,) = waiting.json()["quarantined"]
    assert (item["payload"], item["source"], item["kind"]) == (payload, "alertmanager", "unmatched")
    assert "No client matched" in item["reason"] and item["bytes"] == len(alertmanager())
    (alert,) = item["alerts"]
    assert alert["fields"]["hostname"] == HOST
    assert alert["fields"]["label:alertname"] == "HostDiskSpaceLow"
    assert alert["suggested"] == {"field": "hostname", "pattern": HOST}
    assert alert["matches_now"] is None

    # the page shows it with its reason in words and a "Write a rule" form filled in from it
    page = tech["browser"].get("/settings/intake")
    assert page.status_code == 200
    assert 'aria-current="page"' in page.text and "Mapping rules and quarantine" in page.text
    row = row_of(page.text, payload)
    assert "No client matched it" in row and HOST in row and "Disk D: on mystery-srv is 97% full" in row
    assert f'id="rule-{payload}-pattern" value="{HOST}"' in row and f'id="rule-{payload}-field" value="hostname"' in row
    assert f'id="replay-{payload}"' in row

    # a refused rule keeps what was typed and marks the field at fault
    bad_field = form_post(tech, "/settings/intake/rules", payload=payload, client="acme", field="host", pattern=HOST)
    assert bad_field.status_code == 422
    refused = row_of(bad_field.text, payload)
    assert f'id="rule-{payload}-field" value="host"' in refused
    assert re.search(r'data-field="field">.*?aria-invalid="true"', refused, re.S)
    assert "one of hostname, sender, sender_domain, subject or label:NAME" in refused
    unknown = form_post(tech, "/settings/intake/rules", payload=payload, client="zulu", field="hostname", pattern="x*")
    assert unknown.status_code == 422
    refused = row_of(unknown.text, payload)
    assert 'value="zulu"' in refused and 'value="x*"' in refused and "no client &#39;zulu&#39;" in refused
    assert re.search(r'data-field="client">.*?aria-invalid="true"', refused, re.S)
    blank = form_post(tech, "/settings/intake/rules", payload=payload, client="acme", field="hostname", pattern=" ")
    assert blank.status_code == 422 and re.search(r'data-field="pattern">.*?aria-invalid="true"', blank.text, re.S)
    assert api.get("/api/v1/mapping-rules", headers=tech["auth"]).json() == []

    # a good rule is saved (not replayed yet): the rules list it, and the page says a rule now places the alert
    saved = form_post(tech, "/settings/intake/rules", payload=payload, client="acme", field="hostname",
                      pattern="*.branch.lan")  # fmt: skip
    assert saved.status_code == 303, saved.text[:2000]
    after = tech["browser"].get(saved.headers["location"])
    assert any("mapping rule hostname = &#39;*.branch.lan&#39; added for acme" in f for f in flash(after))
    rules = re.search(r'<table class="rows" id="rule-rows">.*?</table>', after.text, re.S).group(0)
    assert 'href="/clients/acme?tab=devices"' in rules and "*.branch.lan" in rules
    assert "A rule now places it on" in row_of(after.text, payload)

    # replayed: the alert is acme's, with its triage decision, and nothing waits any more
    replayed = form_post(tech, "/settings/intake/replay", payload=payload)
    assert replayed.status_code == 303
    done = tech["browser"].get(replayed.headers["location"])
    assert flash(done) == ["replayed 1 payload: 1 alert placed on a client; 0 payloads still wait in quarantine"]
    assert 'id="nothing-waits"' in done.text
    alerts = api.get("/api/v1/alerts?client=acme", headers=tech["auth"]).json()["alerts"]
    (placed,) = [a for a in alerts if "mystery-srv" in a["title"]]
    assert placed["decision"] == "ticket" and placed["ticket"] and "acme-managed covers" in placed["reason"]
    assert api.get("/api/v1/quarantine", headers=tech["auth"]).json() | {"quarantined": None} == {
        "quarantined": None, "total": 0, "total_exact": True, "limit": 100, "offset": 0, "next_offset": None,
    }  # fmt: skip


def test_a_rule_saved_with_replay_places_its_payload_at_once_and_can_be_removed_from_the_page(shop):
    payload = post_alert(shop, alertmanager())["payload"]
    other = post_alert(shop, alertmanager("lonely.elsewhere.lan", "Lonely is down"))["payload"]
    tech = shop["technician"]
    saved = form_post(tech, "/settings/intake/rules", payload=payload, client="acme", field="hostname",
                      pattern=HOST, replay="1")  # fmt: skip
    assert saved.status_code == 303
    page = tech["browser"].get(saved.headers["location"])
    assert flash(page) == [
        f"mapping rule hostname = &#39;{HOST}&#39; added for acme; replayed 1 payload: 1 alert placed on a client; "
        "1 payload still waits in quarantine"
    ]
    assert f'id="payload-{payload}"' not in page.text and f'id="payload-{other}"' in page.text
    (rule,) = shop["api"].get("/api/v1/mapping-rules", headers=tech["auth"]).json()
    removed = form_post(tech, f"/settings/intake/rules/{rule['id']}/remove")
    assert removed.status_code == 303
    assert flash(tech["browser"].get(removed.headers["location"])) == [
        f"mapping rule hostname = &#39;{HOST}&#39; of acme removed"
    ]
    assert shop["api"].get("/api/v1/mapping-rules", headers=tech["auth"]).json() == []
    assert form_post(tech, f"/settings/intake/rules/{rule['id']}/remove").status_code == 404


def test_the_api_replays_what_a_rule_now_places_and_says_what_still_waits(shop):
    api, auth = shop["api"], shop["technician"]["auth"]
    first = post_alert(shop, alertmanager())["payload"]
    second = post_alert(shop, alertmanager("lonely.elsewhere.lan", "Lonely is down"))["payload"]
    made = api.post("/api/v1/mapping-rules", json={"client": "acme", "field": "hostname", "pattern": "*.branch.lan"},
                    headers=auth)  # fmt: skip
    assert made.status_code == 201, made.text
    (matched,) = [i for i in api.get("/api/v1/quarantine", headers=auth).json()["quarantined"] if i["payload"] == first]
    assert matched["alerts"][0]["matches_now"] == "acme"
    nothing = api.post("/api/v1/quarantine/replay", json={"payloads": []}, headers=auth)
    assert nothing.json() == {"decisions": [], "placed": 0, "waiting": 2}
    everything = api.post("/api/v1/quarantine/replay", headers=auth)
    assert everything.status_code == 200, everything.text
    answer = everything.json()
    assert (answer["placed"], answer["waiting"]) == (1, 1)
    by_payload = {d["payload"]: (d["client"], d["decision"]) for d in answer["decisions"]}
    assert by_payload == {first: ("acme", "ticket"), second: (None, "quarantine")}  # ids need not follow
    page = api.get("/api/v1/quarantine?limit=1", headers=auth).json()
    assert page["total"] == 1 and page["quarantined"][0]["alerts"][0]["fields"]["hostname"] == "lonely.elsewhere.lan"


def test_a_payload_that_cannot_be_read_waits_with_its_reason(shop):
    payload = post_alert(shop, b"{not json")["payload"]
    (item,) = shop["api"].get("/api/v1/quarantine", headers=shop["readonly"]["auth"]).json()["quarantined"]
    assert (item["payload"], item["kind"], item["alert_count"], item["alerts"]) == (payload, "unreadable", 0, [])
    assert item["reason"].startswith("alertmanager: not JSON (")
    page = shop["readonly"]["browser"].get("/settings/intake")
    row = row_of(page.text, payload)
    assert "It could not be read" in row and "alertmanager: not JSON (" in row
    assert "Write a rule" not in row and "Replay" not in page.text  # readonly: nothing to press
    # replaying it (nothing was fixed) leaves it waiting, with its reason
    tech = shop["technician"]
    again = form_post(tech, "/settings/intake/replay", payload=payload)
    assert flash(tech["browser"].get(again.headers["location"])) == [
        "replayed 1 payload: 0 alerts placed on a client; 1 payload still waits in quarantine"
    ]
    gone = form_post(tech, "/settings/intake/replay", payload=999999)
    assert flash(tech["browser"].get(gone.headers["location"])) == ["payload 999999: there is no such payload"]


def test_readonly_reads_but_may_not_write_rules_or_replay(shop):
    payload = post_alert(shop, alertmanager())["payload"]
    reader = shop["readonly"]
    assert reader["browser"].get("/settings/intake").status_code == 200
    assert shop["api"].post("/api/v1/quarantine/replay", headers=reader["auth"]).status_code == 403
    for path, fields in (
        ("/settings/intake/replay", {"payload": payload}),
        ("/settings/intake/rules", {"payload": payload, "client": "acme", "field": "hostname", "pattern": HOST}),
        ("/settings/intake/rules/1/remove", {}),
    ):
        refused = form_post(reader, path, **fields)
        assert refused.status_code == 403 and "may not" in refused.text
    (item,) = shop["api"].get("/api/v1/quarantine", headers=reader["auth"]).json()["quarantined"]
    assert item["payload"] == payload


@pytest.mark.slow
def test_in_a_browser_on_a_phone_the_page_fits_and_a_rule_written_from_an_alert_places_it(db, tmp_path):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect, sync_playwright

    from tests.test_browser import ARGS, CHROMIUM, Server
    from tests.test_browser import PASSWORD as BROWSER_PASSWORD

    server = Server(db, tmp_path / "home")
    server.cli("demo")
    server.cli("user", "create", "olive", "--role", "owner", input=BROWSER_PASSWORD + "\n")
    unknown, garbage = tmp_path / "unknown.json", tmp_path / "garbage.json"
    unknown.write_bytes(alertmanager(title="Disk D: on mystery-srv is 97% full, " + "very long words " * 12))
    garbage.write_bytes(b'{"version": "4", "alerts": "' + b"x" * 300 + b'"}')
    server.cli("intake", str(unknown), str(garbage), "--source", "alertmanager")
    try:
        server.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 390, "height": 844})
                page.set_default_timeout(15_000)
                page.goto(f"{server.url}/login")
                page.fill("#username", "olive")
                page.fill("#password", BROWSER_PASSWORD)
                page.click("#login")
                page.goto(f"{server.url}/settings/intake")
                wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert wide <= 0, f"/settings/intake scrolls sideways by {wide}px at 390px"
                violations = Axe().run(page).response["violations"]
                assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
                row = page.locator("tr[data-kind=unmatched]")
                row.locator("summary", has_text="Write a rule").click()
                row.locator("input[name=client]").fill("acme")
                row.locator("button", has_text="Save the rule").click()
                expect(page.locator("p.flash").first).to_contain_text("placed on a client")
                expect(page.locator("#rule-rows")).to_contain_text("mystery-srv.branch.lan")
                expect(page.locator("tr[data-kind=unmatched]")).to_have_count(0)
                expect(page.locator("tr[data-kind=unreadable]")).to_have_count(1)
            finally:
                browser.close()
    finally:
        server.stop()


def test_one_unknown_host_among_known_ones_waits_alone_and_a_replay_records_only_it(shop):
    """An Alertmanager group with a known machine and an unknown one: the known one is decided at once, the
    payload waits in quarantine for the other alone, and a replay records only that one (the known alert is
    not counted twice)."""
    api, auth = shop["api"], shop["technician"]["auth"]
    body = json.loads(alertmanager())
    known = json.loads(alertmanager("ACME-DC01", "Disk C: on ACME-DC01 is 97% full"))["alerts"][0]
    known["fingerprint"] = "0a0a0a0a0a0a0a0a"
    body["alerts"].insert(0, known)
    first = post_alert(shop, json.dumps(body).encode())
    decisions = {d["client"]: d["decision"] for d in first["decisions"]}
    assert decisions == {"acme": "ticket", None: "quarantine"}
    waiting = api.get("/api/v1/quarantine", headers=auth).json()["quarantined"]
    (item,) = [i for i in waiting if i["payload"] == first["payload"]]
    assert item["kind"] == "unmatched" and item["reason"].startswith("1 of its alerts:")
    assert [a["fields"]["hostname"] for a in item["alerts"]] == [HOST]  # only what waits
    alerts_before = api.get("/api/v1/alerts?client=acme", headers=auth).json()

    made = api.post("/api/v1/mapping-rules", json={"client": "acme", "field": "hostname", "pattern": HOST},
                    headers=auth)  # fmt: skip
    assert made.status_code == 201, made.text
    replayed = api.post("/api/v1/quarantine/replay", json={"payloads": [first["payload"]]}, headers=auth).json()
    assert [(d["client"], d["decision"]) for d in replayed["decisions"]] == [("acme", "ticket")]
    assert replayed["waiting"] == 0
    alerts_after = api.get("/api/v1/alerts?client=acme", headers=auth).json()
    assert alerts_after["total"] == alerts_before["total"] + 1
    was = {a["alert"]: a for a in alerts_before["alerts"]}
    for alert in alerts_after["alerts"]:  # the alert recorded on the first pass is as it was: not seen twice
        if alert["alert"] in was:
            assert alert == was[alert["alert"]]


def test_the_command_lists_what_the_page_and_the_api_show_and_pages_it(shop, cli):
    first = post_alert(shop, alertmanager())["decisions"][0]["payload"]
    second = post_alert(shop, b"{not json", source="events")["payload"]
    api = shop["api"].get("/api/v1/quarantine", headers=shop["readonly"]["auth"]).json()["quarantined"]
    listed = json.loads(cli("intake", "quarantine", "--json").stdout)["quarantined"]
    assert listed == api and [i["payload"] for i in listed] == [first, second]
    assert listed[0]["alerts"][0]["suggested"] == {"field": "hostname", "pattern": HOST}
    assert listed[1]["kind"] == "unreadable"
    paged = cli("intake", "quarantine", "--json", "--limit", "1")
    assert [i["payload"] for i in json.loads(paged.stdout)["quarantined"]] == [first]
    assert "--offset 1 for the next ones" in paged.stderr
    rest = json.loads(cli("intake", "quarantine", "--json", "--offset", "1").stdout)["quarantined"]
    assert [i["payload"] for i in rest] == [second]
    table = cli("intake", "quarantine").stdout
    assert f"hostname = {HOST}" in table and "unreadable" in table


def test_an_option_that_does_nothing_for_the_form_given_is_refused_and_nothing_is_stored(db, cli, tmp_path):
    payload = tmp_path / "event.json"
    payload.write_bytes(json.dumps({"source": "probe", "title": "Disk low", "status": "firing"}).encode())
    fed = cli("intake", str(payload), "--source", "event", "--limit", "5", check=False)
    assert fed.returncode == 2
    assert "--limit pages `tenure intake quarantine`" in fed.stderr
    replayed = cli("intake", "replay", "--all", check=False)
    assert replayed.returncode == 2 and "--all pages `tenure intake quarantine`" in replayed.stderr
    listed = cli("intake", "quarantine", "--source", "event", check=False)
    assert listed.returncode == 2 and "--source is for feeding payload files" in listed.stderr
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(RawPayload)) == 0
