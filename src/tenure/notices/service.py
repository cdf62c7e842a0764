"""Notices as people see them (`tenure notices list|show`), who receives what, and coverage statements.

**Coverage statements** (DOMAIN.md, seed 004: once you say yes, you are on the hook): every client whose
backups are not monitored, that is without an active agreement covering `backup_monitoring` (whether or not
one covers `monitoring`), gets a dated letter saying what is not watched, kept with the client as a notice
(`coverage_statement`) and mailed to its primary and admin contacts (kept unsent when it has none). Once per
client per calendar year (in the MSP's zone) unless asked again (`--again`). Former clients (they had their
hand-over) and prospects (no relationship yet) get none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.bulk import chunks as _chunks
from tenure.clients.models import BackupJob, Client, Contact, Device
from tenure.clients.service import client_views
from tenure.db.engine import Database
from tenure.db.paging import Page, count
from tenure.errors import NotFound, TenureError
from tenure.intake.schedule import zone_of
from tenure.msp.models import MspSettings
from tenure.notices import outbox
from tenure.notices.models import Notice
from tenure.notices.render import money, render_notice

CHUNK = 900
INVOICE_KINDS = ("invoice", "invoice_reminder")  # billing.mailing's mail of one invoice: `data.invoice` its number
MONITORING = ("monitoring", "backup_monitoring")
BACKUP = "backup_monitoring"
# who a notice is for, by contact role, first role with an address wins; nobody with the role: every contact
ROLES_FOR = {
    "billing": ("billing", "primary", "admin"),
    "maintenance": ("primary", "admin", "technical"),
    "coverage": ("primary", "admin"),
    "quote": ("primary", "admin"),  # INTERFACE.md: a quote goes to the primary contact
}


def msp_of(session: Session) -> MspSettings:
    msp = session.scalars(select(MspSettings).limit(1)).first()
    if msp is None:
        raise TenureError("the MSP is not set up yet: import a book (`tenure book import FILE`) or run `tenure demo`")
    return msp


def addresses(session: Session, client_ids: Sequence[int], purpose: str) -> dict[int, list[str]]:
    """E-mail addresses per client for a purpose (ROLES_FOR): contacts of the first role that has any."""
    contacts: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
    for chunk in _chunks(list(client_ids)):
        for cid, email, roles in session.execute(
            select(Contact.client_id, Contact.email, Contact.roles)
            .where(Contact.client_id.in_(chunk))
            .order_by(Contact.id)
        ):
            if email:
                contacts[cid].append((email, list(roles or [])))
    found: dict[int, list[str]] = {}
    for cid, rows in contacts.items():
        chosen: list[str] = []
        for role in ROLES_FOR[purpose]:
            chosen = [email for email, roles in rows if role in roles]
            if chosen:
                break
        found[cid] = list(dict.fromkeys(chosen or [email for email, _ in rows]))
    return found


# ------------------------------------------------------------------------------------------ listing


def notice_json(n: Notice, client_key: str | None) -> dict[str, Any]:
    return {
        "id": n.id,
        "client": client_key,
        "kind": n.kind,
        "state": n.state,
        "to": n.to,
        "cc": n.cc,
        "subject": n.subject,
        "attempts": n.attempts,
        "created_at": n.created_at.isoformat(),
        "not_before": n.not_before.isoformat() if n.not_before else None,
        "sent_at": n.sent_at.isoformat() if n.sent_at else None,
        "message_id": n.message_id,
        "error": n.error,
        "dedupe_key": n.dedupe_key,
    }


def _filtered(s: Session, query: Any, state: str | None, client: str | None, kind: str | None) -> Any:
    """`query` of notices narrowed to a state, a client (its key: NotFound if none) and a kind."""
    if state is not None and state not in outbox.STATES:
        raise TenureError(f"state {state!r} is not one of {', '.join(outbox.STATES)}")
    if client:
        client_id = s.scalars(select(Client.id).where(Client.key == client)).first()
        if client_id is None:
            raise NotFound(f"no client {client!r} (see `tenure client list`)")
        query = query.where(Notice.client_id == client_id)
    if state:
        query = query.where(Notice.state == state)
    if kind:
        query = query.where(Notice.kind == kind)
    return query


def list_notices(
    db: Database,
    state: str | None = None,
    client: str | None = None,
    kind: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Notices, newest first: what went out and what waits."""
    with db.reader() as s:
        query = (
            select(Notice, Client.key)
            .outerjoin(Client, Client.id == Notice.client_id)
            .order_by(Notice.created_at.desc(), Notice.id.desc())
            .limit(limit)
        )
        return [notice_json(n, key) for n, key in s.execute(_filtered(s, query, state, client, kind))]


def outbox_json(n: Notice, client_key: str | None) -> dict[str, Any]:
    """A notice as the outbox's page and API show it: when it is tried next (a waiting one; a `sending` one's
    lease end, when it is tried again if its outcome stays unknown) and the invoice an invoice mail is for."""
    trying = n.state in ("waiting", "sending")
    return notice_json(n, client_key) | {
        "next_attempt_at": n.not_before.isoformat() if trying and n.not_before else None,
        "invoice": (n.data or {}).get("invoice") if n.kind in INVOICE_KINDS else None,
    }


def outbox_page(
    db: Database,
    state: str | None = None,
    client: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
    exact: bool = False,
) -> Any:
    """The outbox a page at a time (queries.Page), newest first by id (the order notices were recorded, on
    the primary key: the list may hold years of mail)."""

    with db.reader() as s:
        query = _filtered(s, select(Notice, Client.key).outerjoin(Client, Client.id == Notice.client_id), state,
                          client, kind)  # fmt: skip
        total, is_exact = count(s, query.with_only_columns(Notice.id), exact)
        rows = s.execute(query.order_by(Notice.id.desc()).limit(limit).offset(offset)).all()
        return Page([outbox_json(n, key) for n, key in rows], total, is_exact, limit, offset)


def outbox_counts(db: Database) -> dict[str, int]:
    """How many notices are in each state (every state, zero included), in one query on the state index."""
    with db.reader() as s:
        found = {state: n for state, n in s.execute(select(Notice.state, func.count()).group_by(Notice.state))}
    return {state: int(found.get(state, 0)) for state in outbox.STATES}


def outbox_message(db: Database, notice_id: int) -> dict[str, Any]:
    """One notice as the outbox lists it, without its body."""
    with db.reader() as s:
        return outbox_json(*_notice_row(s, notice_id))


def _notice_row(s: Session, notice_id: int) -> tuple[Notice, str | None]:
    """The notice and its client's key (None for staff mail), or NotFound."""
    row = s.execute(
        select(Notice, Client.key).outerjoin(Client, Client.id == Notice.client_id).where(Notice.id == notice_id)
    ).first()
    if row is None:
        raise NotFound(f"no notice {notice_id} (see `tenure notices list`)")
    return row[0], row[1]


def show_notice(db: Database, notice_id: int) -> dict[str, Any]:
    """One notice with its bodies (a preview from the kind's template when it was not rendered yet)."""
    with db.reader() as s:
        notice, key = _notice_row(s, notice_id)
        shown = outbox_json(notice, key) | {"data": notice.data, "body_text": notice.body_text}
        if notice.body_html is None:
            preview = outbox.prepare(s, notice, persist_links=False)
            shown |= {"body_text": preview["body_text"], "body_html": preview["body_html"], "preview": True}
        else:
            shown |= {"body_html": notice.body_html, "preview": False}
        return shown


# -------------------------------------------------------------------------------- coverage statements


@dataclass
class Statement:
    client: str
    status: str  # written | exists | monitored | skipped
    notice: int | None = None
    state: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "status": self.status,
            "notice": self.notice,
            "state": self.state,
            "reason": self.reason,
        }


def _offer_label(offer: dict[str, Any], currency: str) -> str | None:
    name = offer.get("name") or offer.get("key")
    covers = [c for c in offer.get("covers") or [] if c in MONITORING]
    if offer.get("kind") and covers and offer.get("monthly_fee") is not None:
        covering = ", ".join(c.replace("_", " ") for c in offer["covers"])
        return f"{name}: {money(offer['monthly_fee'], currency)} a month, covering {covering}"
    return None


def coverage_statements(db: Database, client: str | None = None, again: bool = False) -> list[Statement]:
    """Write the coverage statement of every unmonitored client (or of one), once per client per year."""
    now = clock.now()
    results: list[Statement] = []
    with db.unit_of_work() as s:
        msp = msp_of(s)
        zone = zone_of(msp.timezone)
        today = now.astimezone(zone).date()
        views = client_views(s, today, keys=[client] if client else None, with_devices=False)
        if client and not views:
            raise NotFound(f"no client {client!r} (see `tenure client list`)")
        ids = [v.id for v in views]
        active: dict[int, list[Agreement]] = defaultdict(list)
        for chunk in _chunks(ids):
            for a in s.scalars(select(Agreement).where(Agreement.client_id.in_(chunk)).order_by(Agreement.start)):
                if a.start <= today and (a.end is None or today <= a.end):
                    active[a.client_id].append(a)
        existing: set[str] = set()
        for chunk in _chunks(ids):
            existing |= set(
                s.scalars(
                    select(Notice.dedupe_key).where(Notice.client_id.in_(chunk), Notice.kind == "coverage_statement")
                )
            )
        to = addresses(s, ids, "coverage")
        devices = dict(
            s.execute(select(Device.client_id, func.count()).where(Device.active).group_by(Device.client_id)).all()
        )
        jobs: dict[int, list[str]] = defaultdict(list)
        for cid, name in s.execute(
            select(BackupJob.client_id, BackupJob.name).where(BackupJob.status != "retired").order_by(BackupJob.name)
        ):
            if cid is not None:
                jobs[cid].append(name)
        catalog = [
            (set(o.get("covers") or []), label) for o in msp.catalog or [] if (label := _offer_label(o, msp.currency))
        ]
        for view in views:
            agreements = active[view.id]
            watched = sorted(
                {
                    service
                    for a in agreements
                    for service in MONITORING
                    if service in (a.covers or []) and service not in (a.excludes or [])
                }
            )
            if view.klass in ("former", "prospect"):
                reason = "a former client (offboarded)" if view.klass == "former" else "a prospect (no history yet)"
                results.append(Statement(view.key, "skipped", reason=reason))
                continue
            # backups are what a client loses data over: a client monitored for everything but its backups
            # still gets the statement, saying only its backups go unwatched
            if BACKUP in watched:
                results.append(Statement(view.key, "monitored", reason=f"an agreement covers {', '.join(watched)}"))
                continue
            not_monitored = [service for service in MONITORING if service not in watched]
            offers = [label for covers, label in catalog if covers & set(not_monitored)]
            key = f"coverage:{view.key}:{today.year}"
            if key in existing:
                if not again:
                    found = s.scalars(select(Notice).where(Notice.dedupe_key == key)).one()
                    results.append(
                        Statement(view.key, "exists", found.id, found.state, f"already written in {today.year}")
                    )
                    continue
                key = f"coverage:{view.key}:{today.year}:{now.isoformat()}"
            notice = _statement(
                s,
                msp,
                view.id,
                view.key,
                view.name,
                today,
                agreements,
                devices.get(view.id, 0),
                jobs[view.id],
                offers,
                to.get(view.id, []),
                key,
                not_monitored,
            )
            results.append(Statement(view.key, "written", notice.id, notice.state))
    return results


def _statement(
    s: Session,
    msp: MspSettings,
    client_id: int,
    key: str,
    name: str,
    today: date,
    agreements: list[Agreement],
    devices: int,
    jobs: list[str],
    offers: list[str],
    to: list[str],
    dedupe: str,
    not_monitored: list[str],
) -> Notice:
    agreement_rows = [
        {
            "label": f"{a.kind.replace('_', ' ')} agreement {a.key} since {a.start.isoformat()}",
            "covers": [c.replace("_", " ") for c in a.covers or [] if c not in (a.excludes or [])],
        }
        for a in agreements
    ]
    subject = f"{name}: what {msp.name} does not monitor"
    context: dict[str, Any] = {
        "msp": {"name": msp.name, "currency": msp.currency},
        "client": {"name": name, "key": key},
        "subject": subject,
        "today": today,
        "letter_date": today,
        "not_monitored_label": "your systems or your backups" if "monitoring" in not_monitored else "your backups",
        "systems_monitored": "monitoring" not in not_monitored,
        "backup_jobs": jobs,
        "devices": devices,
        "agreements": agreement_rows,
        "offers": [{"label": o} for o in offers],
        "data": {},
        "links": {},
        "body": "",
    }
    text, html = render_notice("coverage_statement", context)
    notice = Notice(
        client_id=client_id,
        kind="coverage_statement",
        dedupe_key=dedupe,
        to=to,
        cc=[],
        subject=subject[:300],
        body_text=text,
        body_html=html,
        data={
            "date": today.isoformat(),
            "year": today.year,
            "not_monitored": not_monitored,
            "agreements": agreement_rows,
            "backup_jobs": jobs,
            "devices": devices,
            "offers": offers,
            "audience": ["client"],
        },
        state="waiting" if to else "kept",
        error=None if to else "no contact with an e-mail address: kept on record, not sent",
        attempts=0,
        created_at=clock.now(),
    )
    s.add(notice)
    s.flush()
    return notice
