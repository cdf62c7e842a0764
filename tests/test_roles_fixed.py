"""What each role may do, written down route by route as the business says it.

The route tables of tests/test_api_v1.py and tests/test_web.py ask the product's own `PERMISSIONS` which roles
may call a route, so a role granted too much there passes them. The tables here are literals from DOMAIN.md's
people: the owner does everything; a technician reads, logs time, works tickets and offboarding steps (not
approving or skipping them) and posts intake; a bookkeeper reads, runs billing and changes invoices (issue,
pay, void); readonly reads; an `intake` token posts to the intake endpoints and reads nothing. The owner's
view (profitability and the fit of offers: margins and labor cost) is the owner's; the unpaid-work report
is read by every staff role, as the product has it today.

A new route fails `test_every_api_route_is_in_the_fixed_table` (or its web twin) until it is added here on
purpose. And a token's rights are bounded by its user's current role, checked on every request.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tenure import clock
from tenure.accounts import users
from tenure.accounts.service import create_token, list_tokens
from tenure.accounts.users import TOUCH_EVERY, create_user, create_user_token, log_in, set_active, set_role
from tenure.api.app import create_app
from tenure.book.service import import_book
from tenure.db.engine import Database
from tenure.intake.writer import IntakeWriter, Refused, Submission
from tenure.web.routes import SESSION_COOKIE
from tests.books import small
from tests.support import empty

NOW = "2026-11-24T15:00:00Z"
PASSWORD = "a long enough password"

# who may, by what the business says (literals: never read from accounts/users.py)
READERS = frozenset({"owner", "technician", "bookkeeper", "readonly"})
TECHNICIAN_WORK = frozenset({"owner", "technician"})
BOOKKEEPING = frozenset({"owner", "bookkeeper"})
OWNER_ONLY = frozenset({"owner"})
INTAKE_POSTERS = frozenset({"owner", "technician", "intake"})
# sending the outbox's mail now, or a failed one again: every staff role that works, not readonly
MAIL_SENDERS = frozenset({"owner", "technician", "bookkeeper"})

ROLES = ("owner", "technician", "bookkeeper", "readonly", "intake")
STAFF = ("owner", "technician", "bookkeeper", "readonly")

# every /api/v1 route and method, and the roles that may call it
API: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/me"): READERS,
    ("GET", "/api/v1/search"): READERS,
    ("GET", "/api/v1/clients"): READERS,
    ("GET", "/api/v1/clients/{key}"): READERS,
    ("GET", "/api/v1/clients/{key}/devices"): READERS,
    ("GET", "/api/v1/clients/{key}/ledger"): READERS,
    ("GET", "/api/v1/agreements"): READERS,
    ("GET", "/api/v1/blocks"): READERS,
    ("GET", "/api/v1/time-entries"): READERS,
    ("POST", "/api/v1/time-entries"): TECHNICIAN_WORK,
    ("POST", "/api/v1/time-entries/preview"): TECHNICIAN_WORK,  # who would pay: whoever may log time may ask
    ("GET", "/api/v1/invoices"): READERS,
    ("GET", "/api/v1/invoices/{number}"): READERS,
    ("GET", "/api/v1/invoices/{number}/pdf"): READERS,
    ("GET", "/api/v1/invoices/{number}/csv"): READERS,
    ("POST", "/api/v1/invoices/{number}/issue"): BOOKKEEPING,
    ("POST", "/api/v1/invoices/{number}/pay"): BOOKKEEPING,
    ("POST", "/api/v1/invoices/{number}/void"): BOOKKEEPING,
    ("POST", "/api/v1/invoices/{number}/send"): BOOKKEEPING,
    ("POST", "/api/v1/invoices/issue"): BOOKKEEPING,
    ("GET", "/api/v1/clients/{key}/statement"): READERS,
    ("GET", "/api/v1/clients/{key}/statement.pdf"): READERS,
    ("POST", "/api/v1/clients/{key}/statement/send"): BOOKKEEPING,
    ("POST", "/api/v1/billing/runs"): BOOKKEEPING,
    ("GET", "/api/v1/alerts"): READERS,
    ("GET", "/api/v1/tickets"): READERS,
    ("POST", "/api/v1/tickets/{ticket}/close"): TECHNICIAN_WORK,
    ("POST", "/api/v1/tickets/{ticket}/reopen"): TECHNICIAN_WORK,
    ("POST", "/api/v1/tickets/{ticket}/approve"): TECHNICIAN_WORK,  # a quote's approval is ticket work
    ("POST", "/api/v1/tickets"): TECHNICIAN_WORK,  # a phone call becomes a ticket
    ("GET", "/api/v1/tickets/{ticket}"): READERS,
    ("PATCH", "/api/v1/tickets/{ticket}"): TECHNICIAN_WORK,
    ("POST", "/api/v1/tickets/{ticket}/notes"): TECHNICIAN_WORK,
    ("POST", "/api/v1/tickets/{ticket}/quote"): TECHNICIAN_WORK,  # a quote mailed to the client is ticket work
    ("GET", "/api/v1/offboarding/runs"): READERS,
    ("GET", "/api/v1/offboarding/runs/{run}"): READERS,
    ("GET", "/api/v1/offboarding/runs/{run}/steps"): READERS,
    ("POST", "/api/v1/offboarding/runs"): OWNER_ONLY,
    ("POST", "/api/v1/offboarding/runs/{run}/steps/{key}/approve"): OWNER_ONLY,
    ("POST", "/api/v1/offboarding/runs/{run}/steps/{key}/skip"): OWNER_ONLY,
    ("POST", "/api/v1/offboarding/runs/{run}/steps/{key}/done"): TECHNICIAN_WORK,
    ("POST", "/api/v1/offboarding/runs/{run}/steps/{key}/retry"): TECHNICIAN_WORK,
    ("POST", "/api/v1/offboarding/runs/{run}/steps/done"): TECHNICIAN_WORK,
    ("POST", "/api/v1/offboarding/runs/{run}/steps/skip"): OWNER_ONLY,
    ("POST", "/api/v1/offboarding/runs/{run}/steps/assign"): TECHNICIAN_WORK,
    ("GET", "/api/v1/reports/unpaid"): READERS,
    ("POST", "/api/v1/intake/alertmanager"): INTAKE_POSTERS,
    ("POST", "/api/v1/intake/email"): INTAKE_POSTERS,
    ("POST", "/api/v1/intake/events"): INTAKE_POSTERS,
    ("POST", "/api/v1/intake/tactical"): INTAKE_POSTERS,
    ("POST", "/api/v1/intake/restic"): INTAKE_POSTERS,
    # proactive maintenance: every staff role reads what is due and the plans; technicians change the tasks
    ("GET", "/api/v1/maintenance/due"): READERS,
    ("GET", "/api/v1/maintenance/plan"): READERS,
    ("PATCH", "/api/v1/maintenance/tasks/{task}"): TECHNICIAN_WORK,  # a plan's tasks are technicians' work
    # changing things in place: a client's own fields, signing and archiving one are the owner's; its
    # agreements and purchases the owner's and the bookkeeper's; what it has (inventory) technician work
    ("GET", "/api/v1/changes"): READERS,
    # the outbox: every staff role reads it; who works (not readonly) sends what is due and retries a failed mail
    ("GET", "/api/v1/outbox"): READERS,
    ("GET", "/api/v1/outbox/{notice}"): READERS,
    ("POST", "/api/v1/outbox/{notice}/retry"): MAIL_SENDERS,
    ("POST", "/api/v1/outbox/send"): MAIL_SENDERS,
    ("GET", "/api/v1/msp"): READERS,
    ("PATCH", "/api/v1/msp"): OWNER_ONLY,  # the MSP's own settings and offers are the owner's
    ("GET", "/api/v1/catalog"): READERS,
    ("POST", "/api/v1/catalog"): OWNER_ONLY,
    ("GET", "/api/v1/catalog/{key}"): READERS,
    ("PATCH", "/api/v1/catalog/{key}"): OWNER_ONLY,
    ("DELETE", "/api/v1/catalog/{key}"): OWNER_ONLY,
    ("GET", "/api/v1/mapping-rules"): READERS,
    ("POST", "/api/v1/mapping-rules"): TECHNICIAN_WORK,
    ("DELETE", "/api/v1/mapping-rules/{rule}"): TECHNICIAN_WORK,
    # what waits in quarantine: every staff role reads it; replaying it (after a rule) is inventory work
    ("GET", "/api/v1/quarantine"): READERS,
    ("POST", "/api/v1/quarantine/replay"): TECHNICIAN_WORK,
    ("GET", "/api/v1/time-entries/{entry}"): READERS,
    ("PATCH", "/api/v1/time-entries/{entry}"): TECHNICIAN_WORK,  # a technician corrects time, as they log it
    ("DELETE", "/api/v1/time-entries/{entry}"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/charges"): READERS,
    ("POST", "/api/v1/clients/{key}/charges"): BOOKKEEPING,
    ("GET", "/api/v1/clients/{key}/charges/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/charges/{item}"): BOOKKEEPING,
    ("DELETE", "/api/v1/clients/{key}/charges/{item}"): BOOKKEEPING,
    ("POST", "/api/v1/clients"): OWNER_ONLY,
    ("PATCH", "/api/v1/clients/{key}"): OWNER_ONLY,
    ("DELETE", "/api/v1/clients/{key}"): OWNER_ONLY,
    ("POST", "/api/v1/clients/{key}/restore"): OWNER_ONLY,
    ("GET", "/api/v1/clients/{key}/contacts"): READERS,
    ("POST", "/api/v1/clients/{key}/contacts"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/contacts/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/contacts/{item}"): TECHNICIAN_WORK,
    ("DELETE", "/api/v1/clients/{key}/contacts/{item}"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/sites"): READERS,
    ("POST", "/api/v1/clients/{key}/sites"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/sites/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/sites/{item}"): TECHNICIAN_WORK,
    ("DELETE", "/api/v1/clients/{key}/sites/{item}"): TECHNICIAN_WORK,
    ("POST", "/api/v1/clients/{key}/devices"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/devices/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/devices/{item}"): TECHNICIAN_WORK,
    ("DELETE", "/api/v1/clients/{key}/devices/{item}"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/accounts"): READERS,
    ("POST", "/api/v1/clients/{key}/accounts"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/accounts/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/accounts/{item}"): TECHNICIAN_WORK,
    ("DELETE", "/api/v1/clients/{key}/accounts/{item}"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/backup-jobs"): READERS,
    ("POST", "/api/v1/clients/{key}/backup-jobs"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/backup-jobs/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/backup-jobs/{item}"): TECHNICIAN_WORK,
    ("DELETE", "/api/v1/clients/{key}/backup-jobs/{item}"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/mapping-rules"): READERS,
    ("POST", "/api/v1/clients/{key}/mapping-rules"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/mapping-rules/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/mapping-rules/{item}"): TECHNICIAN_WORK,
    ("DELETE", "/api/v1/clients/{key}/mapping-rules/{item}"): TECHNICIAN_WORK,
    ("GET", "/api/v1/clients/{key}/agreements"): READERS,
    ("POST", "/api/v1/clients/{key}/agreements"): BOOKKEEPING,
    ("GET", "/api/v1/clients/{key}/agreements/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/agreements/{item}"): BOOKKEEPING,
    ("DELETE", "/api/v1/clients/{key}/agreements/{item}"): BOOKKEEPING,
    ("GET", "/api/v1/clients/{key}/blocks"): READERS,
    ("POST", "/api/v1/clients/{key}/blocks"): BOOKKEEPING,
    ("GET", "/api/v1/clients/{key}/blocks/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/blocks/{item}"): BOOKKEEPING,
    ("DELETE", "/api/v1/clients/{key}/blocks/{item}"): BOOKKEEPING,
    ("GET", "/api/v1/clients/{key}/retainer-deposits"): READERS,
    ("POST", "/api/v1/clients/{key}/retainer-deposits"): BOOKKEEPING,
    ("GET", "/api/v1/clients/{key}/retainer-deposits/{item}"): READERS,
    ("PATCH", "/api/v1/clients/{key}/retainer-deposits/{item}"): BOOKKEEPING,
    ("DELETE", "/api/v1/clients/{key}/retainer-deposits/{item}"): BOOKKEEPING,
    ("POST", "/api/v1/backup-jobs/{key}/activate"): TECHNICIAN_WORK,
    ("POST", "/api/v1/backup-jobs/{key}/pause"): TECHNICIAN_WORK,
    ("POST", "/api/v1/backup-jobs/{key}/retire"): TECHNICIAN_WORK,
    # users, their roles and API tokens: the owner's alone (who may do what is theirs to decide)
    ("GET", "/api/v1/users"): OWNER_ONLY,
    ("POST", "/api/v1/users"): OWNER_ONLY,
    ("PATCH", "/api/v1/users/{name}"): OWNER_ONLY,
    ("GET", "/api/v1/tokens"): OWNER_ONLY,
    ("POST", "/api/v1/tokens"): OWNER_ONLY,
    ("DELETE", "/api/v1/tokens/{name}"): OWNER_ONLY,
}

# every page and form of the web app that needs a session (path parameters in braces, actions spelled out);
# an `intake` token cannot sign in, so only staff roles appear
WEB: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/logout"): READERS,
    ("GET", "/"): READERS,
    ("GET", "/search"): READERS,
    ("GET", "/clients"): READERS,
    ("GET", "/clients/{key}"): READERS,
    ("POST", "/clients/{key}/time"): TECHNICIAN_WORK,
    ("GET", "/clients/{key}/time/preview"): TECHNICIAN_WORK,
    # a technician corrects time as they log it; charges (parts, materials) are billing: owner and bookkeeper
    ("POST", "/time-entries/{entry}"): TECHNICIAN_WORK,
    ("POST", "/time-entries/{entry}/void"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/charges"): BOOKKEEPING,
    ("POST", "/clients/{key}/charges/{item}/void"): BOOKKEEPING,
    # a client's own fields, signing and archiving one: the owner's; its agreements: the owner's and the
    # bookkeeper's; what it has (devices, contacts, sites, vendor accounts, backup jobs): technician work
    ("POST", "/clients"): OWNER_ONLY,
    ("POST", "/clients/{key}/edit"): OWNER_ONLY,
    ("POST", "/clients/{key}/archive"): OWNER_ONLY,
    ("POST", "/clients/{key}/restore"): OWNER_ONLY,
    ("POST", "/clients/{key}/agreements"): BOOKKEEPING,
    ("POST", "/clients/{key}/agreements/{item}"): BOOKKEEPING,
    ("POST", "/clients/{key}/agreements/{item}/end"): BOOKKEEPING,
    ("POST", "/clients/{key}/agreements/{item}/remove"): BOOKKEEPING,
    ("POST", "/clients/{key}/devices"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/devices/{item}"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/devices/{item}/remove"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/contacts"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/contacts/{item}"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/contacts/{item}/remove"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/sites"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/sites/{item}"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/sites/{item}/remove"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/accounts"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/accounts/{item}"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/accounts/{item}/remove"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/backup-jobs"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/backup-jobs/{item}"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/backup-jobs/{item}/activate"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/backup-jobs/{item}/pause"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/backup-jobs/{item}/retire"): TECHNICIAN_WORK,
    # buying a block and recording a retainer deposit are agreements' money: the owner's and the bookkeeper's;
    # a client's intake mapping rules are inventory: technician work
    ("POST", "/clients/{key}/blocks"): BOOKKEEPING,
    ("POST", "/clients/{key}/retainer-deposits"): BOOKKEEPING,
    ("POST", "/clients/{key}/mapping-rules"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/mapping-rules/{item}"): TECHNICIAN_WORK,
    ("POST", "/clients/{key}/mapping-rules/{item}/remove"): TECHNICIAN_WORK,
    # proactive maintenance: every staff role reads it, technicians change a plan's tasks
    ("GET", "/maintenance"): READERS,
    ("POST", "/maintenance/tasks/{task}"): TECHNICIAN_WORK,
    # the MSP's settings and catalog: every staff role reads them, the owner changes them
    ("GET", "/settings"): READERS,
    ("POST", "/settings"): OWNER_ONLY,
    ("POST", "/settings/offers"): OWNER_ONLY,
    ("POST", "/settings/offers/{item}"): OWNER_ONLY,
    ("POST", "/settings/offers/{item}/remove"): OWNER_ONLY,
    # intake's mapping rules and quarantine: every staff role reads them; rules and replays are inventory work
    ("GET", "/settings/intake"): READERS,
    ("POST", "/settings/intake/rules"): TECHNICIAN_WORK,
    ("POST", "/settings/intake/rules/{rule}/remove"): TECHNICIAN_WORK,
    ("POST", "/settings/intake/replay"): TECHNICIAN_WORK,
    # users, their roles and API tokens: the owner's alone
    ("GET", "/settings/users"): OWNER_ONLY,
    ("POST", "/settings/users"): OWNER_ONLY,
    ("POST", "/settings/users/{name}/role"): OWNER_ONLY,
    ("POST", "/settings/users/{name}/password"): OWNER_ONLY,
    ("POST", "/settings/users/{name}/deactivate"): OWNER_ONLY,
    ("POST", "/settings/users/{name}/activate"): OWNER_ONLY,
    ("GET", "/settings/tokens"): OWNER_ONLY,
    ("POST", "/settings/tokens"): OWNER_ONLY,
    ("POST", "/settings/tokens/{name}/revoke"): OWNER_ONLY,
    ("GET", "/settings/outbox"): READERS,
    ("GET", "/settings/outbox/{notice}"): READERS,
    ("POST", "/settings/outbox/{notice}/retry"): MAIL_SENDERS,
    ("POST", "/settings/outbox/send"): MAIL_SENDERS,
    ("GET", "/triage"): READERS,
    ("POST", "/tickets/{ticket}/close"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/reopen"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/approve"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/in_progress"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/resolved"): TECHNICIAN_WORK,
    ("GET", "/tickets"): READERS,
    ("POST", "/tickets"): TECHNICIAN_WORK,
    ("GET", "/tickets/{ticket}"): READERS,
    ("POST", "/tickets/{ticket}/notes"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/quote"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/assign"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/edit"): TECHNICIAN_WORK,
    ("POST", "/tickets/{ticket}/time"): TECHNICIAN_WORK,
    ("GET", "/alerts"): READERS,
    ("GET", "/time"): READERS,
    ("GET", "/billing"): READERS,
    ("POST", "/billing/run"): BOOKKEEPING,
    ("POST", "/billing/issue"): BOOKKEEPING,
    ("POST", "/billing/issue-drafts"): BOOKKEEPING,
    ("GET", "/clients/{key}/statement"): READERS,
    ("GET", "/clients/{key}/statement.pdf"): READERS,
    ("POST", "/clients/{key}/statement/send"): BOOKKEEPING,
    ("GET", "/invoices/{number}"): READERS,
    ("GET", "/invoices/{number}/document"): READERS,
    ("GET", "/invoices/{number}/pdf"): READERS,
    ("GET", "/invoices/{number}/csv"): READERS,
    ("POST", "/invoices/{number}/issue"): BOOKKEEPING,
    ("POST", "/invoices/{number}/pay"): BOOKKEEPING,
    ("POST", "/invoices/{number}/void"): BOOKKEEPING,
    ("POST", "/invoices/{number}/send"): BOOKKEEPING,
    ("GET", "/offboarding"): READERS,
    ("GET", "/offboarding/{run}"): READERS,
    ("POST", "/offboarding/{run}/done"): TECHNICIAN_WORK,
    ("POST", "/offboarding/{run}/retry"): TECHNICIAN_WORK,
    ("POST", "/offboarding/{run}/continue"): TECHNICIAN_WORK,
    ("POST", "/offboarding/{run}/approve"): OWNER_ONLY,
    ("POST", "/offboarding/{run}/skip"): OWNER_ONLY,
    ("POST", "/offboarding/{run}/many"): TECHNICIAN_WORK,
    ("POST", "/offboarding/{run}/skip-many"): OWNER_ONLY,
    ("GET", "/clients/{key}/offboarding"): READERS,
    ("POST", "/clients/{key}/offboarding"): OWNER_ONLY,
    ("GET", "/reports/unpaid"): READERS,
    ("GET", "/reports/profitability"): OWNER_ONLY,
    ("GET", "/clients/{key}/fit"): OWNER_ONLY,
}

# routes open without a token or a session (log-in, assets, probes, check-ins, signed links)
OPEN: set[tuple[str, str]] = {
    ("GET", "/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/static/{name}"),
    ("GET", "/ping/{uuid}"),
    ("POST", "/ping/{uuid}"),
    ("GET", "/ping/{uuid}/{signal}"),
    ("POST", "/ping/{uuid}/{signal}"),
    ("GET", "/n/{token}"),
    ("POST", "/n/{token}"),
    ("GET", "/calendar/{token}.ics"),
    ("GET", "/docs"),
    ("GET", "/docs/{name}"),
}

SAMPLE = {
    "key": "acme",
    "number": "NOPE-1",
    "ticket": "999999",
    "run": "999999",
    "item": "nope",
    "entry": "999999",
    "rule": "999999",
    "name": "nobody",  # a user or a token: never one of the fixture's, so no route changes them
    "notice": "999999",
    "task": "nope",
}
EVENT = json.dumps({"client": "acme", "title": "probe", "status": "firing"})


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def app_routes() -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path, regex) of every route the app answers, HEAD aside: walked from the app itself (routers
    included in it too), so a route hidden from /openapi.json is found as well."""
    app = create_app(Database("sqlite://"))
    found: dict[tuple[str, str], re.Pattern[str]] = {}

    def walk(routes: Any) -> None:
        for route in routes:
            nested = getattr(route, "effective_route_contexts", None)  # an included router (FastAPI >= 0.16x)
            if nested is not None:
                walk(nested())
                continue
            if getattr(route, "routes", None):  # a router or a mount
                walk(route.routes)
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    found[(method, route.path)] = route.path_regex

    walk(app.routes)
    for path, operations in app.openapi()["paths"].items():  # and whatever the published description names
        for method in operations:
            found.setdefault((method.upper(), path), re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"))
    return [(method, path, regex) for (method, path), regex in sorted(found.items())]


ROUTES = app_routes()


def test_every_api_route_is_in_the_fixed_table():
    api = {(m, p) for m, p, _ in ROUTES if p.startswith("/api/")}
    assert not api - set(API), f"routes nobody decided who may call: add them to API: {sorted(api - set(API))}"
    assert not set(API) - api, f"the table names routes that do not exist: {sorted(set(API) - api)}"


def test_every_other_route_is_an_open_one_or_in_the_web_table():
    others = [(m, p, regex) for m, p, regex in ROUTES if not p.startswith("/api/")]
    undecided = [
        (m, p)
        for m, p, regex in others
        if (m, p) not in OPEN and not any(wm == m and regex.match(concrete(wp)) for wm, wp in WEB)
    ]
    assert not undecided, f"pages nobody decided who may use: add them to WEB (or OPEN): {undecided}"
    stale = [(wm, wp) for wm, wp in WEB if not any(m == wm and regex.match(concrete(wp)) for m, _, regex in others)]
    assert not stale, f"the table names pages that do not exist: {stale}"
    assert not OPEN - {(m, p) for m, p, _ in others}, "OPEN names routes that do not exist"


# ------------------------------------------------------------------------------------- every route, every role


@pytest.fixture(scope="class")
def staff(_migrated: Database) -> Any:
    """A user per staff role, each with a token of its own role, a user-less `intake` token, and one app
    (an empty database: every request below is refused, or passes the check and finds nothing)."""
    db = _migrated
    empty(db)
    clock.set_now(NOW)
    hasher = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # the tests sign in often
    tokens = {}
    for role in STAFF:
        create_user(db, role, PASSWORD, role)
        tokens[role], _ = create_user_token(db, f"{role}-token", None, role)
    tokens["intake"], _ = create_token(db, "monitor", "intake")
    with TestClient(create_app(db), base_url="http://testserver") as http:
        yield {"db": db, "http": http, "tokens": tokens}
    users._hasher = hasher
    clock.set_now(None)
    empty(db)


def api_call(http: TestClient, method: str, path: str, token: str) -> Any:
    url = concrete(path)
    if method == "GET":
        return http.get(url, headers=bearer(token))
    if path.startswith("/api/v1/intake/"):
        return http.post(url, content=EVENT, headers=bearer(token) | {"Content-Type": "application/json"})
    body = {"client": "nobody", "minutes": 30, "work_type": "onsite", "period": "2026-11"}
    return http.request(method, url, json=body, headers=bearer(token))


@pytest.mark.db
class TestEveryRouteAndRole:
    @pytest.mark.parametrize(("method", "path"), sorted(API), ids=[f"{m} {p}" for m, p in sorted(API)])
    def test_each_api_route_admits_exactly_the_roles_the_business_says(self, staff, method, path):
        allowed = API[(method, path)]
        for role in ROLES:
            answer = api_call(staff["http"], method, path, staff["tokens"][role])
            if role in allowed:
                assert answer.status_code not in (401, 403), (role, answer.text)
                assert answer.status_code < 500, (role, answer.text)
            else:
                assert answer.status_code == 403, (role, answer.status_code, answer.text)

    @pytest.mark.parametrize(("method", "path"), sorted(WEB), ids=[f"{m} {p}" for m, p in sorted(WEB)])
    def test_each_page_and_form_admits_exactly_the_roles_the_business_says(self, staff, method, path):
        db, app = staff["db"], staff["http"].app
        allowed = WEB[(method, path)]
        for role in STAFF:
            session = log_in(db, role, PASSWORD, "127.0.0.1")  # a session each: /logout ends it
            browser = TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: session.secret})
            form = {"csrf": session.csrf, "period": "2026-11", "step": "p1.licenses", "note": "n", "reason": "r"}
            form |= {"minutes": "30", "work_type": "onsite"}
            data = form if method == "POST" else None
            answer = browser.request(method, concrete(path), data=data, follow_redirects=False)
            if role in allowed:
                assert answer.status_code not in (401, 403), (role, answer.text[:500])
                assert answer.status_code < 500, (role, answer.text[:500])
                assert not answer.headers.get("location", "").startswith("/login?next="), (role, "not signed in")
            else:
                assert answer.status_code == 403, (role, answer.status_code, answer.text[:500])


# -------------------------------------------------------------------- a token is bounded by its user's role now


@pytest.fixture
def books(db, monkeypatch) -> dict[str, Any]:
    """Acme's book, an invoice for 2026-11 issued by nobody yet, and an app."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    import_book(db, small())
    with TestClient(create_app(db)) as http:
        yield {"db": db, "http": http}


def test_a_demoted_users_token_can_no_longer_change_invoices_but_still_reads(books, cli):
    db, http = books["db"], books["http"]
    create_user(db, "ann", PASSWORD, "owner")
    create_user(db, "otto", PASSWORD, "owner")  # the last active owner could not be demoted
    token, info = create_user_token(db, "ann-script", None, "ann")
    assert info.role == "owner"
    run = http.post("/api/v1/billing/runs", json={"period": "2026-11"}, headers=bearer(token))
    assert run.status_code == 200, run.text
    number = run.json()["invoices"][0]
    issued = http.post(f"/api/v1/invoices/{number}/issue", headers=bearer(token))
    assert issued.status_code == 200 and issued.json()["status"] == "issued"

    cli("user", "role", "ann", "readonly")  # what the owner types

    voided = http.post(f"/api/v1/invoices/{number}/void", headers=bearer(token))
    assert voided.status_code == 403, voided.text
    assert "readonly" in voided.json()["detail"]
    invoice = http.get(f"/api/v1/invoices/{number}", headers=bearer(token))
    assert invoice.status_code == 200 and invoice.json()["status"] == "issued"  # still reads; nothing voided
    assert http.get("/api/v1/me", headers=bearer(token)).json()["permissions"] == ["read"]
    again = http.post("/api/v1/billing/runs", json={"period": "2026-12"}, headers=bearer(token))
    assert again.status_code == 403

    set_role(db, "ann", "owner")  # promoted back: the token's own role is the ceiling again
    assert http.post(f"/api/v1/invoices/{number}/void", headers=bearer(token)).json()["status"] == "void"


def test_technician_and_bookkeeper_are_not_comparable_a_token_gets_what_both_may(books):
    db, http = books["db"], books["http"]
    create_user(db, "tom", PASSWORD, "owner")
    create_user(db, "otto", PASSWORD, "owner")  # the last active owner could not be demoted
    token, _ = create_user_token(db, "tom-tech", "technician", "tom")
    assert http.post("/api/v1/tickets/999999/close", headers=bearer(token)).status_code == 404  # may: none such
    set_role(db, "tom", "bookkeeper")  # neither a technician's work nor, by its token, a bookkeeper's
    me = http.get("/api/v1/me", headers=bearer(token)).json()
    assert me["role"] == "technician" and me["permissions"] == ["outbox.send", "read"]  # what both may: mail too
    assert http.post("/api/v1/tickets/999999/close", headers=bearer(token)).status_code == 403
    assert http.post("/api/v1/outbox/999999/retry", headers=bearer(token)).status_code == 404  # may: none such
    assert http.post("/api/v1/billing/runs", json={"period": "2026-11"}, headers=bearer(token)).status_code == 403
    assert http.post("/api/v1/intake/events", content=EVENT, headers=bearer(token)).status_code == 403


def test_a_readonly_token_of_an_owner_stays_readonly(books):
    db, http = books["db"], books["http"]
    create_user(db, "olga", PASSWORD, "owner")
    token, _ = create_user_token(db, "olga-dashboard", "readonly", "olga")
    run = http.post("/api/v1/billing/runs", json={"period": "2026-11"}, headers=bearer(token))
    assert run.status_code == 403
    assert http.post("/api/v1/invoices/NOPE-1/void", headers=bearer(token)).status_code == 403
    assert http.post("/api/v1/intake/events", content=EVENT, headers=bearer(token)).status_code == 403
    assert http.get("/api/v1/clients/acme", headers=bearer(token)).status_code == 200
    me = http.get("/api/v1/me", headers=bearer(token)).json()
    assert me["user"] == "olga" and me["role"] == "readonly" and me["permissions"] == ["read"]


def test_an_intake_token_of_a_demoted_user_no_longer_posts(books):
    db, http = books["db"], books["http"]
    create_user(db, "tess", PASSWORD, "technician")
    token, _ = create_user_token(db, "tess-monitor", "intake", "tess")
    events = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert http.post("/api/v1/intake/events", content=EVENT, headers=events).status_code == 202
    processed = http.post("/api/v1/intake/events?wait=true", content=EVENT, headers=events)
    assert processed.status_code == 202 and processed.json()["state"] == "processed"
    assert http.get("/api/v1/clients", headers=bearer(token)).status_code == 403  # intake reads nothing
    for demoted in ("readonly", "bookkeeper"):
        set_role(db, "tess", demoted)
        stored = http.post("/api/v1/intake/events", content=EVENT, headers=events)
        assert stored.status_code == 403, (demoted, stored.text)
        processed = http.post("/api/v1/intake/events?wait=true", content=EVENT, headers=events)
        assert processed.status_code == 403, (demoted, processed.text)
    set_role(db, "tess", "technician")
    set_active(db, "tess", False)
    assert http.post("/api/v1/intake/events", content=EVENT, headers=events).status_code == 401


def test_one_intake_batch_answers_each_token_by_its_users_current_role(db):
    clock.set_now(NOW)
    create_user(db, "tess", PASSWORD, "technician")
    create_user(db, "bob", PASSWORD, "technician")
    create_user(db, "gone", PASSWORD, "technician")
    fine, _ = create_user_token(db, "tess-monitor", "intake", "tess")
    demoted, _ = create_user_token(db, "bob-monitor", "intake", "bob")
    deactivated, _ = create_user_token(db, "gone-monitor", "intake", "gone")
    machine, _ = create_token(db, "monitor", "intake")
    set_role(db, "bob", "readonly")
    set_active(db, "gone", False)
    writer = IntakeWriter(db)
    sent = {
        name: writer.submit(Submission("event", EVENT.encode(), "application/json", {}, token, "intake.post"))
        for name, token in {"fine": fine, "demoted": demoted, "gone": deactivated, "machine": machine}.items()
    }
    assert sent["fine"].result(timeout=30) > 0 and sent["machine"].result(timeout=30) > 0
    for name, status in (("demoted", 403), ("gone", 401)):
        with pytest.raises(Refused) as refused:
            sent[name].result(timeout=30)
        assert refused.value.status == status, name


# ------------------------------------------------------------------------------------------------ last used


def test_token_list_shows_when_each_token_was_last_used(books, cli):
    db, http = books["db"], books["http"]
    script, _ = create_token(db, "script", "readonly")
    monitor, _ = create_token(db, "monitor", "intake")

    def last_used() -> dict[str, Any]:
        return {t.name: t.last_used_at for t in list_tokens(db)}

    assert last_used() == {"script": None, "monitor": None}
    assert http.get("/api/v1/me", headers=bearer(script)).status_code == 200
    first = clock.now()
    assert last_used()["script"] == first
    clock.set_now(first + timedelta(minutes=1))  # used again soon after: the time shown stays the first use's
    assert http.get("/api/v1/me", headers=bearer(script)).status_code == 200
    assert last_used()["script"] == first
    later = first + TOUCH_EVERY + timedelta(minutes=1)
    clock.set_now(later)
    assert http.get("/api/v1/me", headers=bearer(script)).status_code == 200
    assert last_used()["script"] == later
    events = bearer(monitor) | {"Content-Type": "application/json"}
    assert http.post("/api/v1/intake/events", content=EVENT, headers=events).status_code == 202
    assert last_used()["monitor"] is not None  # set by the intake writer's batch check

    listed = {t["name"]: t for t in json.loads(cli("token", "list", "--json").stdout)["tokens"]}
    assert listed["script"]["last_used_at"].startswith(later.isoformat()[:16])
    table = cli("token", "list").stdout
    assert "last used" in table and f"{later:%Y-%m-%d %H:%M}" in table
