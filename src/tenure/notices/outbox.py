"""The outbox: notices wait as rows and a worker job sends them over SMTP.

Each notice is sent in three steps, each its own committed transaction where the database is involved:

1. **claim**: a compare-and-set (`UPDATE … WHERE id = ? AND state = ? AND attempts = ?`) moves it to
   `sending`, counts the attempt, fixes its Message-ID (derived from the notice id, the same on every
   retry), renders its body from the kind's template if it has no HTML yet (links included, so a retry
   sends the same text), and sets `not_before` to the end of a lease. Two workers never both win a claim.
2. **send** to the SMTP server, with no transaction open.
3. **mark**: `sent` once the server accepted the message; on a failure back to `waiting` with an
   exponential backoff in `not_before` (1 min, 2, 4, … capped at 6 h; `failed` after `MAX_ATTEMPTS` or
   at once when the server refuses it for good, a 5xx).

**Delivery is at least once, deduplicable by Message-ID.** If the process dies after the server accepted
the message and before step 3 commits, the notice stays `sending`; once its lease runs out it is sent again
with the same Message-ID, and the row says the earlier attempt's outcome is unknown. We chose this over at
most once (never retrying an in-doubt claim) because a lost notice (a low balance nobody hears about, a
monthly list never received) costs more than a duplicate, and a duplicate carries the same Message-ID, which
mail clients, list servers and ticket systems use to collapse it. Failures before the server accepted
(refused connection, timeout, 4xx) are not in doubt: nothing was delivered, and the retry is safe. A crash
before the send leaves the same `sending` state and the retry is then simply the first delivery.

A notice with no recipient at all is `kept`: it stays on record with the client, nothing is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from tenure import clock
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.errors import Conflict, NotFound, TenureError
from tenure.intake.schedule import zone_of
from tenure.msp.models import MspSettings
from tenure.notices import attachments, links
from tenure.notices.mailer import MailConfig, Mailer, Outgoing, SendFailed, build_message, mail_config, why_waiting
from tenure.notices.mailer import staff_addresses as _staff
from tenure.notices.models import Notice
from tenure.notices.render import render_notice

log = logging.getLogger("tenure.outbox")

IN_DOUBT = "the previous attempt's outcome is unknown (its lease ran out): sent again with the same Message-ID"
IN_DOUBT_SENT = (
    "sent again after an attempt whose outcome was unknown: the receiver may see it twice, with one Message-ID."
)
LEASE = timedelta(minutes=10)  # a `sending` notice older than this is in doubt and is retried
MAX_ATTEMPTS = 12
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 6 * 3600
BATCH = 200
STATES = ("waiting", "sending", "sent", "failed", "kept")
# kinds whose mail carries a signed link for the client to ask for more prepaid time: what they ask for
REQUEST_LINKS = {"low_balance": "block", "balance_zero": "block", "retainer_zero": "retainer", "on_hold": "retainer"}


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 1 min, 2, 4, 8, … at most 6 h."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


@dataclass
class Result:
    notice: int
    state: str
    attempts: int = 0
    error: str | None = None
    message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "notice": self.notice,
            "state": self.state,
            "attempts": self.attempts,
            "error": self.error,
            "message_id": self.message_id,
        }


@dataclass
class SendReport:
    results: list[Result] = field(default_factory=list)
    waiting_because: str | None = None  # why nothing was sent at all (mail not configured)

    def count(self, state: str) -> int:
        return sum(1 for r in self.results if r.state == state)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.count("sent"),
            "retrying": self.count("waiting"),
            "failed": self.count("failed"),
            "kept": self.count("kept"),
            "waiting_because": self.waiting_because,
            "notices": [r.as_json() for r in self.results],
        }


# ---------------------------------------------------------------------------------------- rendering


def _msp(session: Session) -> MspSettings | None:
    return session.scalars(select(MspSettings).limit(1)).first()


def render_context(
    session: Session, notice: Notice, data: dict[str, Any] | None = None, msp: MspSettings | None = None
) -> dict[str, Any]:
    """What a kind's template sees for a notice another part recorded (a body, data, the client)."""
    msp = msp or _msp(session)
    zone = zone_of(msp.timezone if msp else None)
    client = session.get(Client, notice.client_id) if notice.client_id else None
    data = dict(notice.data or {}) if data is None else data
    burn = data.get("burn_minutes_per_day")
    burn_per_week = None
    if burn not in (None, ""):
        burn_per_week = str((Decimal(str(burn)) * 7 / 60).quantize(Decimal("0.1")))
    return {
        "msp": {"name": msp.name if msp else "", "currency": msp.currency if msp else "USD"},
        "client": {"name": client.name, "key": client.key} if client else None,
        "subject": notice.subject,
        "body": notice.body_text,
        "data": data,
        "links": dict(data.get("links") or {}),
        "today": clock.now().astimezone(zone).date(),
        "burn_per_week": burn_per_week,
        "link_expires": (clock.now() + links.LINK_MAX_AGE).astimezone(zone).date(),
        "request_label": "Ask for a new block of prepaid hours"
        if REQUEST_LINKS.get(notice.kind) == "block"
        else "Replenish the retainer",
    }


def prepare(session: Session, notice: Notice, persist_links: bool = True) -> dict[str, Any]:
    """body_text, body_html and data of a notice about to go out, rendered from its kind's template, with
    the signed request link of a balance notice. Does not change the row."""
    data = dict(notice.data or {})
    if notice.kind in REQUEST_LINKS and notice.client_id and "request" not in (data.get("links") or {}):
        data["links"] = dict(data.get("links") or {}) | {"request": links.link_url({"k": "r", "n": notice.id})}
        data["links_signed_at"] = clock.now().isoformat()
    if notice.kind == "quote" and "approve" not in (data.get("links") or {}):
        from tenure.desk.mail.quotes import quote_links  # the desk's quotes import the notices: not at the top

        data["links"] = dict(data.get("links") or {}) | quote_links(notice)
        data["links_signed_at"] = clock.now().isoformat()
    text, html = render_notice(notice.kind, render_context(session, notice, data))
    return {"body_text": text, "body_html": html, "data": data if persist_links else notice.data}


# ------------------------------------------------------------------------------------------ sending


def due_ids(session: Session, now: datetime, limit: int = BATCH) -> list[int]:
    """Notices to attempt now: waiting ones whose time has come, and `sending` ones whose lease ran out."""
    n = Notice
    query = (
        select(n.id)
        .where(
            or_(
                and_(n.state == "waiting", or_(n.not_before.is_(None), n.not_before <= now)),
                and_(n.state == "sending", n.not_before <= now),
            )
        )
        .order_by(func.coalesce(n.not_before, n.created_at), n.id)
        .limit(limit)
    )
    return list(session.scalars(query))


class _Lost(Exception):
    """Another worker claimed the notice first."""


def _claim(db: Database, notice_id: int, config: MailConfig) -> tuple[Outgoing, int, bool] | Result | None:
    now = clock.now()
    try:
        with db.unit_of_work() as s:
            notice = s.get(Notice, notice_id)
            if notice is None:
                return None
            due = notice.not_before is None or notice.not_before <= now
            if (
                notice.state not in ("waiting", "sending")
                or not due
                or (notice.state == "sending" and not notice.not_before)
            ):
                return None
            guard = (Notice.id == notice.id, Notice.state == notice.state, Notice.attempts == notice.attempts)
            to = [a for a in notice.to or [] if a]
            cc = [a for a in notice.cc or [] if a and a not in to]
            for_staff = "staff" in (notice.data or {}).get("audience", [])
            bcc = [a for a in _staff() if a not in to and a not in cc] if for_staff else []
            if not to and not cc:  # a notice only staff can read goes to them
                to, bcc = bcc, []
            if not to and not cc:
                error = "no recipient: kept on record, not sent"
                if (
                    s.connection()
                    .execute(update(Notice).where(*guard).values(state="kept", error=error, not_before=None))
                    .rowcount
                ):
                    return Result(notice.id, "kept", notice.attempts, error)
                raise _Lost
            values: dict[str, Any] = {}
            if notice.body_html is None:
                values |= prepare(s, notice)
            msp = _msp(s)
            mid = notice.message_id or links.message_id(notice.id, config.domain)
            in_doubt = notice.state == "sending"
            attempts = notice.attempts + 1
            values |= {
                "state": "sending",
                "attempts": attempts,
                "not_before": now + LEASE,
                "message_id": mid,
                "error": IN_DOUBT if in_doubt else notice.error,
            }
            if s.connection().execute(update(Notice).where(*guard).values(**values)).rowcount != 1:
                raise _Lost
            outgoing = Outgoing(
                notice_id=notice.id,
                kind=notice.kind,
                message_id=mid,
                to=to,
                cc=cc,
                bcc=bcc,
                subject=notice.subject,
                text=values.get("body_text", notice.body_text),
                html=values.get("body_html", notice.body_html),
                msp_name=msp.name if msp else None,
                attach=tuple((notice.data or {}).get("attach") or ()),
            )
            return outgoing, attempts, in_doubt
    except _Lost:
        return None


def _finish(db: Database, notice_id: int, attempts: int, **values: Any) -> bool:
    """Record an attempt's outcome, only if the claim is still ours (same attempt, still `sending`)."""
    with db.unit_of_work() as s:
        guard = (Notice.id == notice_id, Notice.state == "sending", Notice.attempts == attempts)
        return s.connection().execute(update(Notice).where(*guard).values(**values)).rowcount == 1


def send_due(db: Database, config: MailConfig | None = None, limit: int = BATCH) -> SendReport:
    """Send what is due now (the worker job, `tenure notices send`). Without SMTP settings, nothing moves."""
    if config is None:
        config = mail_config()
    if config is None:
        return SendReport(waiting_because=why_waiting())
    with db.reader() as s:
        ids = due_ids(s, clock.now(), limit)
    report = SendReport()
    mailer = Mailer(config)
    try:
        for notice_id in ids:
            try:
                claimed = _claim(db, notice_id, config)
            except Exception:  # one notice that cannot be prepared must not hold up the others
                log.exception("notice %s could not be prepared for sending", notice_id)
                continue
            if claimed is None:
                continue
            if isinstance(claimed, Result):
                report.results.append(claimed)
                continue
            report.results.append(_attempt(db, mailer, config, *claimed))
    finally:
        mailer.close()
    return report


def _attempt(db: Database, mailer: Mailer, config: MailConfig, item: Outgoing, attempts: int, in_doubt: bool) -> Result:
    try:
        try:
            files = attachments.render(db, item.attach)  # outside any transaction: a PDF takes a while
            message = build_message(item, config, clock.now(), files)
        except (ValueError, TypeError) as exc:  # an address or header no message can carry
            raise SendFailed(f"the message cannot be built: {exc}", permanent=True) from None
        except TenureError as exc:  # an attachment that cannot be made (no WeasyPrint, invoice gone)
            raise SendFailed(f"the attachment cannot be made: {exc}", permanent=True) from None
        try:
            refused = mailer.send(message, [*item.to, *item.cc, *item.bcc])
        except SendFailed:
            raise
        except Exception as exc:  # unexpected: retried later like a temporary failure, never lost
            log.exception("notice %s: unexpected error while sending", item.notice_id)
            mailer.close()
            raise SendFailed(f"unexpected error: {type(exc).__name__}: {exc}") from None
    except SendFailed as exc:
        error = str(exc)[:1000]
        if exc.permanent or attempts >= MAX_ATTEMPTS:
            state, not_before = "failed", None
            if not exc.permanent:
                error = f"gave up after {attempts} attempts: {error}"[:1000]
        else:
            state, not_before = "waiting", clock.now() + backoff(attempts)
        _finish(db, item.notice_id, attempts, state=state, not_before=not_before, error=error)
        log.warning("notice %s: %s", item.notice_id, error)
        return Result(item.notice_id, state, attempts, error, item.message_id)
    # the server has the message: from here on a crash means a resend with the same Message-ID
    notes = []
    if in_doubt:
        notes.append(IN_DOUBT_SENT)
    if refused:
        notes.append("refused recipients: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    note = " ".join(notes)[:1000] or None
    if not _finish(db, item.notice_id, attempts, state="sent", sent_at=clock.now(), not_before=None, error=note):
        log.warning(
            "notice %s was sent, but its claim had been taken over (the send outlasted the lease)", item.notice_id
        )
    return Result(item.notice_id, "sent", attempts, note, item.message_id)


# ------------------------------------------------------------------------------------------ the list


def requeue(db: Database, notice_id: int) -> Result:
    """A failed or kept notice back to `waiting`, due now, with a fresh count of attempts; a waiting one (its
    backoff not over) due now, its attempts and last error kept. Sent or being sent: Conflict."""
    with db.unit_of_work() as s:
        notice = s.get(Notice, notice_id)
        if notice is None:
            raise NotFound(f"no notice {notice_id} (see `tenure notices list`)")
        if notice.state == "waiting":
            # guarded like a claim: a worker may take the notice between this read and this write
            guard = (Notice.id == notice.id, Notice.state == "waiting")
            if s.connection().execute(update(Notice).where(*guard).values(not_before=None)).rowcount:
                return Result(notice.id, "waiting", notice.attempts, notice.error, notice.message_id)
            s.refresh(notice)
        if notice.state not in ("failed", "kept"):
            raise Conflict(
                f"notice {notice_id} is {notice.state}: only a failed or kept notice is sent again "
                "(or a waiting one sent now)"
            )
        notice.state, notice.attempts, notice.not_before, notice.error = "waiting", 0, None, None
        return Result(notice.id, "waiting", 0, None, notice.message_id)


def worker_job(db: Database) -> int:
    """The worker's outbox round: the number of notices sent."""
    return send_due(db).count("sent")
