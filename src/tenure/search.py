"""Finding things by what a person would type: one function behind the pages' search box (`GET /search`) and
the API (`GET /api/v1/search`).

Every query is bounded and uses an index, so an answer stays fast at 5,000 clients / 100,000 devices /
1,000,000 alerts (bench/web.py): the small tables (clients, contacts) are matched anywhere in a name; the big
ones by what their indexes hold: a device by the start of its hostname (`ix_device_host_key`), an invoice by
the start of its number (its unique index), a ticket or an alert by its number (primary keys), the latest
tickets of a client whose name matched (`ix_ticket_client_status`).
"""

from typing import Any

from sqlalchemy import func, or_, select

from tenure import vocabulary
from tenure.billing.models import Invoice
from tenure.clients.models import Client, Contact, Device
from tenure.clients.rules import host_key
from tenure.db.engine import Database
from tenure.intake.models import Alert
from tenure.triage.models import Ticket

# tickets waiting on someone (the service desk's statuses where the vocabulary has them; the older two otherwise)
WAITING = (*getattr(vocabulary, "ACTIVE_TICKET_STATUSES", ()), "open", "awaiting_approval")
MAX_QUERY = 100
PER_KIND = 5


def _after(prefix: str) -> str:
    """The first string after every string that starts with `prefix` (an index range: `>= prefix, < after`)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def hit(kind: str, label: str, detail: str, page: str) -> dict[str, Any]:
    return {"kind": kind, "label": label, "detail": detail, "page": page}


def find(db: Database, text: str, per_kind: int = PER_KIND) -> list[dict[str, Any]]:
    """What `text` names: clients (part of the name or key), contacts (part of the name or address), devices
    (start of the hostname), invoices (start of the number), tickets and alerts (their number, `#42` or `42`).
    Each hit: kind, label, detail, and the page that shows it."""
    q = " ".join(text.split())[:MAX_QUERY]
    if not q:
        return []
    hits: list[dict[str, Any]] = []
    number = q.lstrip("#")
    with db.reader() as s:
        pattern = _like(q.lower())
        clients = s.execute(
            select(Client.id, Client.key, Client.name, Client.archived_at)
            .where(or_(func.lower(Client.name).like(pattern, escape="\\"), Client.key.like(pattern, escape="\\")))
            .order_by(func.length(Client.name), Client.name)
            .limit(per_kind)
        ).all()
        for _, key, name, archived in clients:
            hits.append(hit("client", name, key + (" · archived" if archived else ""), f"/clients/{key}"))

        contacts = s.execute(
            select(Contact.name, Contact.email, Client.key)
            .join(Client, Client.id == Contact.client_id)
            .where(
                or_(
                    func.lower(Contact.name).like(pattern, escape="\\"),
                    func.lower(Contact.email).like(pattern, escape="\\"),
                )
            )
            .order_by(Contact.name)
            .limit(per_kind)
        ).all()
        for name, email, key in contacts:
            hits.append(hit("contact", name, f"{email or 'no address'} · {key}", f"/clients/{key}?tab=contacts"))

        prefix = host_key(q)
        if prefix:
            devices = s.execute(
                select(Device.hostname, Device.key, Client.key)
                .join(Client, Client.id == Device.client_id)
                .where(Device.host_key >= prefix, Device.host_key < _after(prefix))
                .order_by(Device.host_key)
                .limit(per_kind)
            ).all()
            for hostname, device, key in devices:
                hits.append(hit("device", hostname, f"{device} · {key}", f"/clients/{key}?tab=devices"))

        upper = q.upper()
        invoices = s.execute(
            select(Invoice.number, Invoice.status, Invoice.total, Client.key)
            .join(Client, Client.id == Invoice.client_id)
            .where(Invoice.number >= upper, Invoice.number < _after(upper))
            .order_by(Invoice.number.desc())
            .limit(per_kind)
        ).all()
        for inv, status, total, key in invoices:
            hits.append(hit("invoice", inv, f"{key} · {status} · {total:,.2f}", f"/invoices/{inv}"))

        if number.isdigit() and 0 < int(number) < 2**31:
            ticket = s.execute(
                select(Ticket.id, Ticket.title, Ticket.status, Client.key)
                .join(Client, Client.id == Ticket.client_id)
                .where(Ticket.id == int(number))
            ).first()
            if ticket:
                hits.append(
                    hit(
                        "ticket",
                        f"#{ticket.id} {ticket.title}",
                        f"{ticket.key} · {ticket.status}",
                        f"/triage?client={ticket.key}",
                    )
                )
            alert = s.execute(
                select(Alert.id, Alert.title, Alert.decision, Alert.client_id).where(Alert.id == int(number))
            ).first()
            if alert:
                key = s.scalar(select(Client.key).where(Client.id == alert.client_id)) if alert.client_id else None
                hits.append(
                    hit(
                        "alert",
                        f"alert {alert.id}: {alert.title}",
                        f"{key or 'no client'} · {alert.decision}",
                        f"/alerts?client={key}" if key else "/alerts",
                    )
                )

        if clients:  # a client's open tickets: what a person typing a client's name is usually after
            ids = [row.id for row in clients[:2]]
            tickets = s.execute(
                select(Ticket.id, Ticket.title, Ticket.status, Client.key)
                .join(Client, Client.id == Ticket.client_id)
                .where(Ticket.client_id.in_(ids), Ticket.status.in_(WAITING))
                .order_by(Ticket.id.desc())
                .limit(per_kind)
            ).all()
            for tid, title, status, key in tickets:
                if not any(h["kind"] == "ticket" and h["label"].startswith(f"#{tid} ") for h in hits):
                    hits.append(hit("ticket", f"#{tid} {title}", f"{key} · {status}", f"/triage?client={key}"))
    return hits
