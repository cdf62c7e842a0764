"""Agreement terms (DOMAIN.md "Charges and terms"): a notice to the owner before a term ends.

An agreement with `term_months` runs in terms from its start. At a term's end `renewal: auto` renews it for
another term (nothing changes but the term), `renewal: ends` ends it: its end date is the last day of the
term, computed when the agreement is written (`agreements.models`), so billing, coverage, the client's class
and maintenance all see it. The MSP's `term_notice_days` (default 60) before a term ends, one notice goes to
staff (`TENURE_STAFF_EMAIL`, else the sender address), saying what will happen: keyed by agreement and term
end (`term:<agreement>:<last day>`), so it is recorded once however often the worker looks.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenure import clock
from tenure.agreements import rules
from tenure.agreements.models import Agreement
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.msp.models import MspSettings
from tenure.notices.mailer import staff_addresses
from tenure.notices.models import Notice

KIND = "term_ending"


def _terms(a: Agreement) -> rules.Terms:
    return rules.Terms(
        a.key,
        a.kind,
        a.start,
        rules.ends_by_term(a.start, a.end, a.term_months, a.renewal),
        term_months=a.term_months,
        renewal=a.renewal or "auto",
    )


def _notice(a: Agreement, client: Client, last: date, to: list[str], today: date) -> dict[str, Any]:
    months = a.term_months
    if a.renewal == "ends":
        subject = f"{client.name}: agreement {a.key} ends on {last}"
        body = (
            f"The {a.kind.replace('_', ' ')} agreement {a.key} of {client.name} ends with its {months}-month term "
            f"on {last} (renewal: ends). After that day its fees stop and its coverage ends. To keep serving "
            f"the client, agree a new term before then."
        )
    else:
        subject = f"{client.name}: agreement {a.key} renews on {last + timedelta(days=1)}"
        body = (
            f"The {a.kind.replace('_', ' ')} agreement {a.key} of {client.name} ends its {months}-month term on "
            f"{last} and renews automatically for another {months} months (renewal: auto). Review its terms, or "
            f"end it, before then."
        )
    return {
        "client_id": client.id,
        "kind": KIND,
        "dedupe_key": f"term:{a.key}:{last.isoformat()}",
        "to": to,
        "cc": [],
        "subject": subject[:300],
        "body_text": body,
        "body_html": None,
        "data": {
            "agreement": a.key,
            "term_end": last.isoformat(),
            "term_months": months,
            "renewal": a.renewal,
            "days_left": (last - today).days,
            "audience": ["staff"],
        },
        "state": "waiting" if to else "kept",
        "error": None if to else "no staff address (TENURE_STAFF_EMAIL or TENURE_MAIL_FROM): kept on record",
        "attempts": 0,
        "created_at": clock.now(),
    }


def record_term_notices(db: Database, day: date | None = None) -> int:
    """Record the notice of every term ending within the MSP's `term_notice_days` of `day` (today) that was
    not recorded yet; returns how many were recorded (none when another worker recorded them meanwhile)."""
    try:
        return _record(db, day or clock.today())
    except IntegrityError:  # the same notice recorded by another worker at the same moment: it is there
        return 0


def _record(db: Database, day: date) -> int:
    with db.unit_of_work() as s:
        msp = s.scalars(select(MspSettings).limit(1)).first()
        if msp is None:
            return 0
        due: list[tuple[Agreement, Client, date]] = []
        for agreement, client in s.execute(
            select(Agreement, Client)
            .join(Client, Client.id == Agreement.client_id)
            .where(Agreement.term_months.is_not(None))
            .order_by(Agreement.id)
        ).tuples():
            last = rules.term_notice_due(_terms(agreement), day, msp.term_notice_days)
            if last is not None:
                due.append((agreement, client, last))
        if not due:
            return 0
        keys = [f"term:{a.key}:{last.isoformat()}" for a, _, last in due]
        seen = set(s.scalars(select(Notice.dedupe_key).where(Notice.dedupe_key.in_(keys))))
        to = staff_addresses()
        rows = [_notice(a, c, last, to, day) for (a, c, last), k in zip(due, keys, strict=True) if k not in seen]
        for row in rows:
            s.add(Notice(**row))
        return len(rows)


def worker_job(db: Database) -> int:
    """The worker's round of term notices (nothing before the MSP is set up)."""
    return record_term_notices(db)
