"""REST API v1: the product's resources under `/api/v1/`, for scripts and other systems.

One router module per feature (`api/clients.py`, `api/agreements.py`, `api/time.py`, `api/invoices.py`,
`api/alerts.py`, `api/tickets.py`, `api/offboarding.py`, `api/reports.py`, `api/history.py`,
`api/accounts.py`, `api/msp.py`), each with the request and response models it describes; the shared pieces (tokens and
permissions, paging, problem documents) are in `api/common.py` and `api/problems.py`.

Every route needs `Authorization: Bearer <token>` and names the permission it needs (accounts/users.py has
the table of roles); `/openapi.json` lists it per operation as `x-permission`. Lists are pages: `limit`,
`offset`, and `total` (exact up to 10,000 unless `count=exact`; see `web/queries.py`), `next_offset` for the
next page. Errors are RFC 9457 problem details (`application/problem+json`); a request that does not
validate gets 422 with `invalid-params`: `[{"name", "in", "reason"}]`, one per field at fault.

Writes take the object's shape in the book (INTERFACE.md, "Changing things"); a stale one (its `version` or
`If-Match` no longer current) gets 412. Changes run under the caller's name (`as_actor`), so the change log
says who made them.
"""

from collections.abc import Callable

from fastapi import FastAPI

from tenure.api import (
    accounts,
    agreements,
    alerts,
    clients,
    history,
    invoices,
    maintenance,
    msp,
    offboarding,
    outbox,
    quarantine,
    quotes,
    reports,
    search,
    tickets,
    time,
    users,
)
from tenure.api.common import Api, install_problems
from tenure.db.engine import Database

FEATURES = (
    accounts, users, clients, agreements, time, invoices, alerts, tickets, quotes, offboarding, reports, history, msp,
    maintenance, outbox, quarantine, search,
)


def install(app: FastAPI, db: Callable[[], Database]) -> None:
    """Add the v1 routes of every feature."""
    api = Api(db)
    install_problems(app)
    for feature in FEATURES:
        app.include_router(feature.router(api))
