"""Recording a batch of matched signals: decisions, dedupe against open alerts, then bulk writes.

Everything is decided in memory first; the batch's open alerts (and their tickets) are read in one query per
chunk; new tickets, alerts, history, forwarded notices and backup runs are written with one executemany per
table at the end (`tenure.db.bulkwrite`, ids reserved up front), and the few rows that already existed are
updated in bulk too. A new ticket's row says who opened it (`opened_by`: its creation is told from the row,
not logged again); the tickets a resolve closes are logged through `record_updated`; a repeat is counted on
its ticket without a change-log row (the alert's count and last sighting tell it).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenure.clients.models import BackupJob
from tenure.db.bulkwrite import insert_rows, insert_with_ids, update_rows
from tenure.db.changelog import logged_state, record_updated
from tenure.db.members import array_literal, one_of
from tenure.db.types import UTCDateTime
from tenure.db.uow import current_actor
from tenure.desk import rules as desk
from tenure.intake.matching import ClientFacts, MatchIndex
from tenure.intake.models import Alert, AlertHistory, BackupRun
from tenure.intake.sources import Signal
from tenure.msp.models import MspSettings
from tenure.notices.models import Notice
from tenure.triage import rules as triage
from tenure.triage.models import Ticket
from tenure.vocabulary import OPEN_TICKET_STATUSES

OPENS_WORK = ("ticket", "quote")
RESOLVES = ("resolved", "success")  # a signal's statuses that close the open alert of its fingerprint
# an alert's severity gives its ticket's priority (the desk may change it)
PRIORITY_OF_SEVERITY = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P4"}


# The open alerts of the batch's (client, fingerprint) pairs in one statement, each pair one search of
# ix_alert_open. PostgreSQL: the pairs as two arrays. SQLite: as one JSON list of [client, fingerprint], read
# first (CROSS JOIN keeps that order: a row-value IN list would scan the table).
_OPEN_ALERTS_PG = text(
    "SELECT a.id, a.client_id, a.fingerprint, a.ticket_id, a.count, a.last_seen FROM alert AS a "
    "JOIN unnest(CAST(:clients AS integer[]), CAST(:fingerprints AS varchar[])) AS k(client_id, fingerprint) "
    "ON a.client_id = k.client_id AND a.fingerprint = k.fingerprint WHERE a.status = 'firing'"
).columns(last_seen=UTCDateTime())
_OPEN_ALERTS_SQLITE = text(
    "SELECT a.id, a.client_id, a.fingerprint, a.ticket_id, a.count, a.last_seen FROM json_each(:pairs) AS k "
    "CROSS JOIN alert AS a ON a.client_id = json_extract(k.value, '$[0]') "
    "AND a.fingerprint = json_extract(k.value, '$[1]') WHERE a.status = 'firing'"
).columns(last_seen=UTCDateTime())

# PostgreSQL: the batch's repeats counted on their tickets, in one statement over arrays (an increment, which
# bulkwrite.update_rows, setting values, does not do)
_ADD_REPEATS_PG = text(
    "UPDATE ticket AS t SET alert_count = t.alert_count + v.more "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:more AS integer[])) AS v(id, more) WHERE t.id = v.id"
)
# SQLite: the same, one row at a time in the driver's executemany (plain tuples, as bulkwrite sends them)
_ADD_REPEATS_SQLITE = "UPDATE ticket SET alert_count = alert_count + ? WHERE id = ?"


def _day_of(moment: datetime) -> date:
    """The day an alert happened on, as the rest of Tenure counts days (UTC, `clock.today`): one instant is one
    day whichever offset its sender wrote it with."""
    return moment.astimezone(UTC).date() if moment.tzinfo is not None else moment.date()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "job"


@dataclass
class Prepared:
    """A signal matched to its client, device and job, with its decision: ready to be recorded."""

    row: Any  # the claimed raw payload (id, source, received_at, body, meta)
    signal: Signal
    seen: datetime
    client: str | None = None
    device_id: int | None = None
    device: str | None = None
    job: BackupJob | None = None
    decision: triage.Decision | None = None


@dataclass
class _NewTicket:
    values: dict[str, Any]
    id: int | None = None


@dataclass
class NewAlert:
    """An alert first seen in this batch: inserted in bulk at the end, with its ticket and history."""

    values: dict[str, Any]
    ticket: _NewTicket | None
    history: list[tuple[datetime, str, str]]  # what changed after it opened (the opening is the row itself)
    id: int | None = None

    @property
    def ticket_id(self) -> int | None:
        return self.ticket.id if self.ticket is not None else None


@dataclass
class OpenAlert:
    """An alert that was already open before this batch: what the batch changes on it."""

    id: int
    ticket_id: int | None
    count: int
    last_seen: datetime
    status: str = "firing"
    resolved_at: datetime | None = None
    ticket_closed: bool = False  # its ticket was closed while it still fires (by a person, say)
    new_ticket: _NewTicket | None = None  # the ticket a repeat opened for it again, this batch


class Recorder:
    def __init__(self, session: Session, index: MatchIndex, now: datetime):
        self.s = session
        self.index = index
        self.now = now
        self.actor = current_actor()  # who opens the batch's tickets: the worker, a script's token, a person
        self.open: dict[tuple[int, str], OpenAlert | NewAlert] = {}
        self.changed: dict[int, OpenAlert] = {}
        # the tickets this batch may close (their alerts resolve in it), as read and as the batch leaves them
        self.tickets: dict[int, dict[str, Any]] = {}
        self.tickets_read: dict[int, dict[str, Any]] = {}
        self.bumps: Counter[int] = Counter()  # repeats counted on the other tickets, added in one statement
        self.new_alerts: list[NewAlert] = []
        self.new_tickets: list[_NewTicket] = []
        self.history: list[tuple[OpenAlert, datetime, str, str]] = []
        self.forwards: list[tuple[ClientFacts, Signal, NewAlert]] = []
        self.backup_runs: list[dict[str, Any]] = []
        self._targets: dict[str, Any] | None = None
        self._due_times: dict[tuple[str, str], desk.DueTimes] = {}  # (agreement kind, priority)
        self._kinds: dict[int, str] = {}  # client id -> the kind of agreement its tickets' targets follow

    def _due(self, facts: ClientFacts, priority: str) -> desk.DueTimes:
        """The new ticket's response and resolution due times (the MSP's targets, read once a batch)."""
        kind = self._kinds.get(facts.id)
        if kind is None:
            active = [a.kind for a in facts.agreements if a.active_on(self.now.date())]
            kind = self._kinds[facts.id] = desk.agreement_kind_for(active)
        # the same for every new ticket of a kind of client and a priority: worked out once a batch, not once
        # a client (a storm opens thousands, under the recording lock)
        found = self._due_times.get((kind, priority))
        if found is not None:
            return found
        if self._targets is None:
            self._targets = self.s.scalar(select(MspSettings.ticket_targets).limit(1)) or {}
        found = self._due_times[(kind, priority)] = desk.due_times(self._targets, kind, priority, self.now)
        return found

    # ------------------------------------------------------------------------------------ deciding

    def match(self, row: Any, signal: Signal) -> Prepared:
        return Prepared(row, signal, signal.occurred_at or row.received_at, self.index.client_of(signal, row.meta))

    def job_for(self, facts: ClientFacts, signal: Signal, device_id: int | None) -> tuple[BackupJob, bool]:
        """The signal's backup job; a job never seen before is created (pending until activated)."""
        job = self.index.job_of_uuid(signal)
        name = signal.job or signal.title
        if job is None:
            job = self.index.jobs.get((facts.id, name.lower()))
        if job is not None:
            return job, True
        base = f"{facts.key}-{_slug(name)}"
        key, n = base, 1
        # a new job is rare: one look at the table keeps its key unique among jobs this batch did not load
        while key in self.index.jobs_by_key or self.s.scalar(select(BackupJob.id).where(BackupJob.key == key)):
            n += 1
            key = f"{base}-{n}"
        job = BackupJob(
            client_id=facts.id,
            device_id=device_id,
            key=key,
            name=name,
            product=str(signal.details.get("product") or signal.source),
            status="pending",
        )
        self.s.add(job)
        self.s.flush()
        self.index.add_job(job)
        self.index.jobs[(facts.id, name.lower())] = job
        return job, False

    def decide(self, item: Prepared) -> None:
        signal = item.signal
        if item.client is None:
            item.decision = triage.decide(signal.service, signal.kind, None)
            return
        facts = self.index.facts(item.client)
        item.device_id = self.index.device_of(item.client, signal)
        item.device = self.index.hostname_of(item.device_id)
        job_known = True
        if signal.kind == "backup":
            item.job, job_known = self.job_for(facts, signal, item.device_id)
            item.signal = replace(signal, fingerprint=triage.fingerprint("backup", facts.key, item.job.key))
        item.decision = facts.decide(
            _day_of(item.seen), signal.service, signal.kind, job_known, item.job.status if item.job else None
        )

    def load_open(self, items: list[Prepared]) -> None:
        """The open alerts (and their tickets) of every (client, fingerprint) in the batch, by index."""
        keys = sorted({(self.index.facts(i.client).id, i.signal.fingerprint) for i in items if i.client})
        if not keys:
            return
        if self.s.connection().dialect.name == "postgresql":
            client_ids, fingerprints = [c for c, _ in keys], [f for _, f in keys]
            found = self.s.execute(
                _OPEN_ALERTS_PG, {"clients": array_literal(client_ids), "fingerprints": array_literal(fingerprints)}
            )
        else:
            found = self.s.execute(_OPEN_ALERTS_SQLITE, {"pairs": orjson.dumps(keys).decode()})
        # read whole (`all`): row by row, the driver is asked for each of a storm's thousands of rows
        opened = found.all()
        # the open alerts' tickets a person closed meanwhile, read apart by primary key: joined to the query above,
        # the bench's repeats on PostgreSQL ran at 9,300/s instead of 20,000 (its plan, with the ticket table's
        # statistics still saying it is empty, was not looked into further)
        ticket_ids = sorted({row[3] for row in opened if row[3] is not None})
        closed = set(
            self.s.scalars(select(Ticket.id).where(one_of(self.s, Ticket.id, ticket_ids), Ticket.status == "closed"))
        ) if ticket_ids else set()  # fmt: skip
        for aid, cid, fp, ticket_id, count, last_seen in opened:
            self.open[(cid, fp)] = OpenAlert(aid, ticket_id, count, last_seen, ticket_closed=ticket_id in closed)
        # only a resolve changes more than a ticket's count of alerts: those tickets are loaded, to be closed
        # with their change log; a repeat's count is added in bulk (`finish`)
        resolving = {
            (self.index.facts(i.client).id, i.signal.fingerprint)
            for i in items
            if i.client and i.signal.status in RESOLVES
        }
        ticket_ids = sorted(
            {a.ticket_id for key, a in self.open.items() if a.ticket_id and key in resolving}
        )
        if ticket_ids:
            table = Ticket.__table__
            names = list(table.c.keys())
            for row in self.s.execute(select(*table.c).where(one_of(self.s, table.c.id, ticket_ids))).all():
                read = dict(zip(names, row, strict=True))
                self.tickets_read[read["id"]] = read
                self.tickets[read["id"]] = read.copy()

    # ------------------------------------------------------------------------------------ recording

    def record(self, item: Prepared) -> OpenAlert | NewAlert | None:
        decision, signal = item.decision, item.signal
        assert decision is not None
        if item.client is None:
            return None
        facts = self.index.facts(item.client)
        if item.job is not None:
            self._backup_result(item, decision)
        if signal.status in ("firing", "failure", "warning"):
            return self._open(facts, item, decision)
        if signal.status in RESOLVES:  # a start (`/ping/<uuid>/start`) changes nothing open
            return self._resolve(facts, signal, item.seen)
        return None

    def _backup_result(self, item: Prepared, decision: triage.Decision) -> None:
        job, signal, seen = item.job, item.signal, item.seen
        assert job is not None
        if decision.activate_job and job.status == "pending":
            job.status, job.activated_at = "active", self.now
        if signal.source == "missed":
            return  # not a result: the job still has none since its last one
        if signal.status != "started":
            job.last_result_at, job.last_status = seen, signal.status
            job.next_expected_at = None  # the sweep works out the next due time afresh
        started = signal.details.get("started_at")
        self.backup_runs.append(
            {
                "backup_job_id": job.id,
                "raw_payload_id": item.row.id,
                "product": job.product,
                "status": signal.status,
                "started_at": datetime.fromisoformat(started) if isinstance(started, str) else None,
                "finished_at": seen,
                "size_bytes": signal.details.get("size_bytes"),
                "rule": str(signal.details.get("rule") or signal.source),
            }
        )

    def _new_ticket(self, facts: ClientFacts, item: Prepared, decision: triage.Decision) -> _NewTicket:
        """The ticket an alert opens (a quote's too: billable, awaiting the client's approval)."""
        signal = item.signal
        priority = PRIORITY_OF_SEVERITY.get((signal.severity or "").lower(), "P3")
        due = self._due(facts, priority)
        ticket = _NewTicket(
            {
                "client_id": facts.id,
                "kind": "alert",  # a quote too: billable, and awaiting the client's approval
                "status": "new" if decision.decision == "ticket" else "awaiting_approval",
                "device_id": item.device_id,
                "priority": priority,
                "respond_by": due.respond_by,
                "due_at": due.due_at,
                "title": signal.title[:480],
                "fingerprint": signal.fingerprint,
                "billable": decision.decision == "quote",
                "opened_at": self.now,
                "closed_at": None,
                "alert_count": 1,
                "opened_by": self.actor,
            }
        )
        self.new_tickets.append(ticket)
        return ticket

    def _open(self, facts: ClientFacts, item: Prepared, decision: triage.Decision) -> OpenAlert | NewAlert:
        signal, seen = item.signal, item.seen
        alert = self.open.get((facts.id, signal.fingerprint))
        if isinstance(alert, NewAlert):  # a repeat within this batch
            alert.values["count"] += 1
            alert.values["last_seen"] = max(alert.values["last_seen"], seen)
            if alert.ticket is not None:
                alert.ticket.values["alert_count"] += 1
            return alert
        if alert is not None:  # a repeat: counted on the open item, never a second ticket
            alert.count += 1
            alert.last_seen = max(alert.last_seen, seen)
            self.changed[alert.id] = alert
            if alert.new_ticket is not None:
                alert.new_ticket.values["alert_count"] += 1
                return alert
            if alert.ticket_closed and decision.decision in OPENS_WORK:
                # its ticket was closed but the problem is still there: work is opened for it again, on a new
                # ticket, which the alert then points to (DOMAIN: a repeat goes on the *open* ticket)
                alert.new_ticket = self._new_ticket(facts, item, decision)
                return alert
            ticket = self.tickets.get(alert.ticket_id or 0)
            if ticket is not None:
                ticket["alert_count"] += 1
            elif alert.ticket_id is not None:
                self.bumps[alert.ticket_id] += 1
            return alert
        ticket = self._new_ticket(facts, item, decision) if decision.decision in OPENS_WORK else None
        new = NewAlert(
            {
                "client_id": facts.id,
                "device_id": item.device_id,
                "backup_job_id": item.job.id if item.job else None,
                "source": signal.source,
                "fingerprint": signal.fingerprint,
                "service": signal.service,
                "severity": signal.severity,
                "title": signal.title[:480],
                "status": "firing",
                "decision": decision.decision,
                "reason": decision.reason[:480],
                "count": 1,
                "first_seen": seen,
                "last_seen": seen,
                "resolved_at": None,
                "raw_payload_id": item.row.id,
                "details": dict(signal.details),
            },
            ticket,
            [],
        )
        self.open[(facts.id, signal.fingerprint)] = new
        self.new_alerts.append(new)
        if decision.decision == "forward":
            self.forwards.append((facts, signal, new))
        return new

    def _resolve(self, facts: ClientFacts, signal: Signal, seen: datetime) -> OpenAlert | NewAlert | None:
        """A success or resolve closes the open item of its fingerprint (and its ticket)."""
        alert = self.open.pop((facts.id, signal.fingerprint), None)
        if isinstance(alert, NewAlert):
            alert.values.update(status="resolved", resolved_at=seen, last_seen=max(alert.values["last_seen"], seen))
            alert.history.append((seen, "resolved", signal.source))
            if alert.ticket is not None:
                alert.ticket.values.update(status="closed", closed_at=self.now)
            return alert
        if alert is None:
            return None
        alert.status, alert.resolved_at, alert.last_seen = "resolved", seen, max(alert.last_seen, seen)
        self.changed[alert.id] = alert
        self.history.append((alert, seen, "resolved", signal.source))
        if alert.new_ticket is not None:  # opened again by a repeat earlier in this batch, closed with it
            alert.new_ticket.values.update(status="closed", closed_at=self.now)
            return alert
        ticket = self.tickets.get(alert.ticket_id or 0)
        if ticket is not None and ticket["status"] in OPEN_TICKET_STATUSES:
            ticket["status"], ticket["closed_at"] = "closed", self.now
        return alert

    # ------------------------------------------------------------------------------------ writing

    def finish(self) -> None:
        """The batch's writes: one statement per table, then one flush for the ORM objects it changed."""
        connection = self.s.connection()
        if self.new_tickets:
            ticket_ids = insert_with_ids(connection, Ticket.__table__, [t.values for t in self.new_tickets])
            for ticket, tid in zip(self.new_tickets, ticket_ids, strict=True):
                ticket.id = tid
        if self.new_alerts:
            for alert in self.new_alerts:
                alert.values["ticket_id"] = alert.ticket_id
            alert_ids = insert_with_ids(
                connection, Alert.__table__, [a.values for a in self.new_alerts]
            )
            for alert, aid in zip(self.new_alerts, alert_ids, strict=True):
                alert.id = aid
        history = [
            {"alert_id": a.id, "time": when, "status": status, "note": note}
            for a in self.new_alerts
            for when, status, note in a.history
        ] + [{"alert_id": a.id, "time": when, "status": status, "note": note} for a, when, status, note in self.history]
        insert_rows(connection, AlertHistory.__table__, history)
        insert_rows(connection, Notice.__table__, [self._forward(*f) for f in self.forwards])
        # a quote decision's ticket (still awaiting approval at the end of the batch) mails the client its quote
        quoted = [
            (t.id, t.values["client_id"], t.values["title"])
            for t in self.new_tickets
            if t.values["status"] == "awaiting_approval" and t.id is not None
        ]
        if quoted:
            from tenure.desk.mail.quotes import triage_quotes  # the desk reads intake's models: not at the top

            insert_rows(connection, Notice.__table__, triage_quotes(self.s, quoted, self.now))
        insert_rows(connection, BackupRun.__table__, self.backup_runs)
        if self.changed:
            self._update_changed(connection)
            # an alert whose closed ticket a repeat replaced points to the new one
            ticketed = [{"id": a.id, "ticket_id": a.new_ticket.id} for a in self.changed.values() if a.new_ticket]
            for row in ticketed:
                self.changed[row["id"]].ticket_id = row["ticket_id"]
            update_rows(connection, Alert.__table__, ticketed)
        if self.bumps:
            self._add_repeats(connection)
        self._update_tickets(connection)
        self.s.flush()

    def _update_changed(self, connection: Connection) -> None:
        """The alerts open before the batch that it repeated or resolved, in one statement."""
        rows = [
            {"id": a.id, "count": a.count, "last_seen": a.last_seen, "status": a.status, "resolved_at": a.resolved_at}
            for a in self.changed.values()
        ]
        update_rows(connection, Alert.__table__, rows)

    def _update_tickets(self, connection: Connection) -> None:
        """The tickets read for this batch (their alerts resolve in it) that it changed, mostly closed, in one
        statement, each with its change-log row as the ORM's flush would log it (the ORM sent an UPDATE per
        ticket and compared every column of each)."""
        changed = [(tid, t) for tid, t in self.tickets.items() if t != self.tickets_read[tid]]
        if not changed:
            return
        rows = [
            {"id": tid, "status": t["status"], "closed_at": t["closed_at"], "alert_count": t["alert_count"]}
            for tid, t in changed
        ]
        update_rows(connection, Ticket.__table__, rows)
        logged = []
        for tid, t in changed:
            before, after = logged_state(Ticket, self.tickets_read[tid]), logged_state(Ticket, t)
            label = f"#{tid} {t['title']}"
            logged.append({"id": tid, "label": label, "client_id": t["client_id"], "before": before, "after": after})
        record_updated(self.s, "ticket", logged)

    def _add_repeats(self, connection: Connection) -> None:
        """A repeat is counted on its ticket as on its alert (whose count and last sighting tell it), not logged
        as a change of the ticket: that would be a change-log row per repeat, under the recording lock."""
        bumps = sorted(self.bumps.items())
        if connection.dialect.name == "postgresql":
            ids, more = array_literal([t for t, _ in bumps]), array_literal([n for _, n in bumps])
            connection.execute(_ADD_REPEATS_PG, {"ids": ids, "more": more})
            return
        connection.exec_driver_sql(_ADD_REPEATS_SQLITE, [(n, tid) for tid, n in bumps])

    def _forward(self, facts: ClientFacts, signal: Signal, alert: NewAlert) -> dict[str, Any]:
        return {
            "client_id": facts.id,
            "kind": "alert_forward",
            "dedupe_key": f"forward:alert:{alert.id}",
            "to": facts.forward_to(),
            "cc": [],
            "subject": f"Alert for {facts.name}: {signal.title}"[:290],
            "body_text": (
                f"{signal.title}\n\nThis alert is forwarded to you as you asked: no agreement of {facts.name} "
                f"covers {signal.service}, so no technician will act on it unless you ask us to."
            ),
            "body_html": None,
            "data": {"fingerprint": signal.fingerprint},
            "state": "waiting",
            "attempts": 0,
            "created_at": self.now,
        }
