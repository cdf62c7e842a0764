"""Invoices out (DOMAIN.md "Billing"): an issued invoice goes to the client's billing contacts with its PDF,
through the outbox, once; again on request; reminders for overdue invoices at the MSP's `reminder_days`
past due, each once, until the invoice is paid or voided; a statement of account per client.

**Once.** Issuing queues the mail in the same transaction that issues the invoice (a notice keyed
`invoice:N:issued`), so a crash either does both or neither; the outbox then sends it with its claim,
lease and fixed Message-ID (notices/outbox.py). A reminder is keyed by its days past due the same way.

**Who receives it**: the client's `billing` contacts; without one, its `primary`, then `admin` contacts,
then any contact with an address (notices.service.ROLES_FOR). A client with no address at all: issuing still
issues (the bookkeeper may post it), the mail is kept on record unsent and the answer says so; sending again
on request is refused, naming the client.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from tenure import clock
from tenure.agreements.service import msp_settings
from tenure.billing import rules
from tenure.billing.models import Invoice, InvoiceMail
from tenure.billing.service import change_status, get_invoice, period_start
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.db.locks import hold
from tenure.db.uow import current_actor
from tenure.errors import NotFound, TenureError
from tenure.intake.schedule import zone_of
from tenure.money import fmt
from tenure.msp.models import MspSettings
from tenure.notices.mailer import Attachment
from tenure.notices.models import Notice
from tenure.notices.service import addresses

NO_ADDRESS = "no contact with an e-mail address: kept on record, not sent"
PAYMENTS_SINCE = relativedelta(years=1)  # a statement's payments: the last year unless asked otherwise


def _today(msp: MspSettings) -> date:
    return clock.now().astimezone(zone_of(msp.timezone)).date()


def _mail_json(notice: Notice) -> dict[str, Any]:
    return {"notice": notice.id, "state": notice.state, "to": list(notice.to or []), "error": notice.error}


def _queue(
    s: Session, invoice: Invoice, client: Client, msp: MspSettings, kind: str, days: int | None = None
) -> Notice:
    """Record the invoice's mail (kind issued | again | reminder) as a waiting notice with the PDF to attach."""
    to = addresses(s, [client.id], "billing").get(client.id, [])
    number = invoice.number
    if kind == "reminder":
        subject = f"Reminder: invoice {number} from {msp.name} is {days} day{'s' if days != 1 else ''} overdue"
        dedupe = f"invoice:{number}:reminder:{days}"
    else:
        subject = f"Invoice {number} from {msp.name}: {fmt(invoice.total)} {msp.currency}, due {invoice.due_date}"
        dedupe = f"invoice:{number}:issued" if kind == "issued" else f"invoice:{number}:again:{secrets.token_hex(6)}"
    data = {
        "invoice": number,
        "kind": invoice.kind,
        "period": invoice.period,
        "date": invoice.date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "total": fmt(invoice.total),
        "days_overdue": days,
        "audience": ["client"],
        "attach": [{"kind": "invoice_pdf", "number": number}],
    }
    body = (
        f"Invoice {number} of {invoice.date.isoformat()} for {fmt(invoice.total)} {msp.currency} was due on "
        f"{invoice.due_date.isoformat()}; it is {days} days overdue. The invoice is attached."
        if kind == "reminder"
        else f"Invoice {number} of {invoice.date.isoformat()}: {fmt(invoice.total)} {msp.currency}, due on "
        f"{invoice.due_date.isoformat()}. The invoice is attached."
    )
    notice = Notice(
        client_id=client.id,
        kind="invoice_reminder" if kind == "reminder" else "invoice",
        dedupe_key=dedupe,
        to=to,
        cc=[],
        subject=subject[:300],
        body_text=body,
        body_html=None,
        data=data,
        state="waiting" if to else "kept",
        error=None if to else NO_ADDRESS,
        attempts=0,
        created_at=clock.now(),
    )
    s.add(notice)
    s.flush()
    s.add(
        InvoiceMail(
            invoice_id=invoice.id,
            notice_id=notice.id,
            kind=kind,
            days=days,
            recorded_at=clock.now(),
            actor=current_actor(),
        )
    )
    s.flush()
    return notice


def on_issue(s: Session, invoice: Invoice) -> None:
    """Called by change_status in the transaction that issues the invoice: its mail waits in the outbox."""
    client = s.get(Client, invoice.client_id)
    assert client is not None
    _queue(s, invoice, client, msp_settings(s), "issued")


def on_settled(s: Session, invoice: Invoice) -> None:
    """Paid or voided: a reminder still waiting in the outbox will not go."""
    waiting = select(InvoiceMail.notice_id).where(InvoiceMail.invoice_id == invoice.id, InvoiceMail.kind == "reminder")
    s.execute(
        update(Notice)
        .where(Notice.id.in_(waiting), Notice.state == "waiting")
        .values(state="kept", error=f"invoice {invoice.number} was {invoice.status} before the reminder went")
    )


# ------------------------------------------------------------------------------------------ issuing


def issue_one(db: Database, number: str) -> dict[str, Any]:
    """Issue a draft: the invoice, with `mail` (its notice in the outbox, or why it was kept unsent)."""
    invoice = change_status(db, number, "issue")
    with db.reader() as s:
        notice = s.scalars(
            select(Notice)
            .join(InvoiceMail, InvoiceMail.notice_id == Notice.id)
            .join(Invoice, Invoice.id == InvoiceMail.invoice_id)
            .where(Invoice.number == number, InvoiceMail.kind == "issued")
        ).first()
        return invoice | {"mail": _mail_json(notice) if notice else None}


def issue_invoices(db: Database, numbers: Sequence[str]) -> dict[str, Any]:
    """Issue each draft (each its own transaction: one refused does not hold up the others) and mail it."""
    done: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for number in dict.fromkeys(numbers):
        try:
            invoice = issue_one(db, number)
        except TenureError as exc:
            refused.append({"number": number, "error": str(exc)})
            continue
        done.append({"number": number, "client": invoice["client"], "total": invoice["total"], "mail": invoice["mail"]})
    return {"issued": len(done), "refused": refused, "invoices": done}


def drafts_of(db: Database, period: str) -> list[str]:
    """The numbers of the drafts dated in a period (a billing run's drafts), oldest first."""
    start = period_start(period)
    with db.reader() as s:
        return list(
            s.scalars(
                select(Invoice.number)
                .where(Invoice.status == "draft", Invoice.date >= start, Invoice.date < start + relativedelta(months=1))
                .order_by(Invoice.date, Invoice.number)
            )
        )


def issue_drafts(db: Database, period: str) -> dict[str, Any]:
    """Issue every draft of a period at once; running it again issues nothing more."""
    return {"period": period} | issue_invoices(db, drafts_of(db, period))


def send_again(db: Database, number: str) -> dict[str, Any]:
    """Mail an issued (or paid) invoice again, on request: a new message, the same PDF."""
    with db.unit_of_work() as s:
        invoice = s.scalars(select(Invoice).where(Invoice.number == number)).first()
        if invoice is None:
            raise NotFound(f"no invoice {number!r} (see `tenure invoice list`)")
        if invoice.status not in ("issued", "paid"):
            raise TenureError(f"invoice {number} is {invoice.status}; only an issued or paid invoice is sent")
        client = s.get(Client, invoice.client_id)
        assert client is not None
        if not addresses(s, [client.id], "billing").get(client.id):
            raise TenureError(
                f"client {client.key} ({client.name}) has no contact with an e-mail address: add a billing contact"
            )
        notice = _queue(s, invoice, client, msp_settings(s), "again")
        return {"number": number, "client": client.key, "status": invoice.status, "mail": _mail_json(notice)}


def mail_history(db: Database, number: str) -> list[dict[str, Any]]:
    """Each time the invoice was mailed, oldest first, with what became of the message."""
    with db.reader() as s:
        invoice_id = s.scalar(select(Invoice.id).where(Invoice.number == number))
        if invoice_id is None:
            raise NotFound(f"no invoice {number!r} (see `tenure invoice list`)")
        rows = s.execute(
            select(InvoiceMail, Notice)
            .outerjoin(Notice, Notice.id == InvoiceMail.notice_id)
            .where(InvoiceMail.invoice_id == invoice_id)
            .order_by(InvoiceMail.recorded_at, InvoiceMail.id)
        )
        return [
            {
                "kind": m.kind,
                "days": m.days,
                "recorded_at": m.recorded_at.isoformat(),
                "actor": m.actor,
                "notice": n.id if n else None,
                "state": n.state if n else None,
                "to": list(n.to or []) if n else [],
                "sent_at": n.sent_at.isoformat() if n and n.sent_at else None,
                "error": n.error if n else None,
            }
            for m, n in rows
        ]


def invoice_file(db: Database, number: str) -> Attachment:
    from tenure.billing.render import invoice_pdf

    return Attachment(f"invoice-{number}.pdf", "application/pdf", invoice_pdf(db, get_invoice(db, number)))


# ---------------------------------------------------------------------------------------- reminders


def send_reminders(db: Database) -> int:
    """Record the reminder due today of every overdue issued invoice (the worker's job): the number recorded."""
    with db.unit_of_work() as s:
        msp = s.scalars(select(MspSettings).limit(1)).first()
        if msp is None:
            return 0
        hold(s, "invoice-reminders", 1, "the invoice reminders")  # two workers never remind twice
        today = _today(msp)
        configured = msp.reminder_days if msp.reminder_days is not None else rules.DEFAULT_REMINDER_DAYS
        steps = [int(d) for d in configured]  # [] : no reminders at all
        if not steps:
            return 0
        last = (
            select(InvoiceMail.invoice_id, func.max(InvoiceMail.days).label("days"))
            .where(InvoiceMail.kind == "reminder")
            .group_by(InvoiceMail.invoice_id)
            .subquery()
        )
        overdue = s.execute(
            select(Invoice, last.c.days)
            .outerjoin(last, last.c.invoice_id == Invoice.id)
            .where(
                Invoice.status == "issued",
                Invoice.imported.is_(False),  # a former system's history: that system reminded
                Invoice.total > 0,  # nothing owed, nothing to remind of
                Invoice.due_date < today - timedelta(days=min(steps) - 1),
            )
            .order_by(Invoice.due_date, Invoice.id)
        ).all()
        made = 0
        clients: dict[int, Client] = {}
        for invoice, sent in overdue:
            days = rules.reminder_due(invoice.due_date, today, steps, sent)
            if days is None:
                continue
            client = clients.get(invoice.client_id) or s.get(Client, invoice.client_id)
            assert client is not None
            clients[client.id] = client
            _queue(s, invoice, client, msp, "reminder", days)
            made += 1
        return made


# ---------------------------------------------------------------------------------------- statements


def statement(db: Database, client_key: str, since: date | None = None) -> dict[str, Any]:
    """A client's statement of account today: open invoices, payments since `since` (a year back by
    default), the balance and what of it is overdue."""
    with db.reader() as s:
        client = s.scalars(select(Client).where(Client.key == client_key)).first()
        if client is None:
            raise NotFound(f"no client {client_key!r} (see `tenure client list`)")
        msp = msp_settings(s)
        zone = zone_of(msp.timezone)
        today = _today(msp)
        since = since or today - PAYMENTS_SINCE
        if since > today:
            raise TenureError(f"since {since.isoformat()} is after today ({today.isoformat()})")
        billed = [
            rules.Billed(
                number=i.number,
                date=i.date,
                due_date=i.due_date,
                status=i.status,
                total=i.total,
                paid_on=i.paid_at.astimezone(zone).date() if i.paid_at else (i.date if i.status == "paid" else None),
            )
            for i in s.scalars(
                select(Invoice)
                .options(selectinload(Invoice.lines))
                .where(Invoice.client_id == client.id, Invoice.status != "draft")
            )
        ]
        found = rules.account(billed, today, since)
        return {
            "client": client.key,
            "name": client.name,
            "msp": msp.name,
            "currency": msp.currency,
            "date": today.isoformat(),
            "since": since.isoformat(),
            "open": [
                {
                    "number": b.number,
                    "date": b.date.isoformat(),
                    "due_date": b.due_date.isoformat(),
                    "total": fmt(b.total),
                    "days_overdue": max((today - b.due_date).days, 0),
                }
                for b in found.open
            ],
            "payments": [
                {"number": b.number, "paid_on": b.paid_on.isoformat() if b.paid_on else None, "amount": fmt(b.total)}
                for b in found.payments
            ],
            "balance": fmt(found.balance),
            "overdue": fmt(found.overdue),
        }


def statement_file(db: Database, shown: dict[str, Any]) -> Attachment:
    from tenure.billing.render import statement_pdf

    return Attachment(f"statement-{shown['client']}-{shown['date']}.pdf", "application/pdf", statement_pdf(shown))


def send_statement(db: Database, client_key: str, since: date | None = None) -> dict[str, Any]:
    """Mail the statement to the client's billing contacts, its PDF attached (the statement as of now)."""
    shown = statement(db, client_key, since)
    with db.unit_of_work() as s:
        client = s.scalars(select(Client).where(Client.key == client_key)).one()
        to = addresses(s, [client.id], "billing").get(client.id, [])
        if not to:
            raise TenureError(
                f"client {client.key} ({client.name}) has no contact with an e-mail address: add a billing contact"
            )
        notice = Notice(
            client_id=client.id,
            kind="statement",
            dedupe_key=f"statement:{client.key}:{clock.now().isoformat()}:{secrets.token_hex(4)}",
            to=to,
            cc=[],
            subject=f"Statement of account from {shown['msp']}: {shown['balance']} {shown['currency']} open"[:300],
            body_text=(
                f"Statement of account of {client.name} on {shown['date']}: {len(shown['open'])} open invoice(s), "
                f"balance {shown['balance']} {shown['currency']}, of which {shown['overdue']} overdue. "
                "The statement is attached."
            ),
            body_html=None,
            data={
                "statement": shown,
                "audience": ["client"],
                "attach": [{"kind": "statement_pdf", "statement": shown}],
            },
            state="waiting",
            attempts=0,
            created_at=clock.now(),
        )
        s.add(notice)
        s.flush()
        return shown | {"mail": _mail_json(notice)}
