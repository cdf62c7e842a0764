"""Intake: store the raw payload first, then parse, match, dedupe, decide and record.

`receive` commits the payload before anything else happens, so an answer (HTTP 2xx, SMTP 250) never goes
out for something not stored. `process` turns stored payloads into alerts, tickets, backup runs and
notices in one transaction per batch; a payload that cannot be parsed or matched is quarantined with the
reason, visible and replayable (`replay`), never dropped.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.bulk import chunks as _chunks
from tenure.bulk import collector_paused
from tenure.clients.models import BackupJob, Client, Contact, Device
from tenure.clients.service import client_views
from tenure.db.changelog import record_created
from tenure.db.engine import Database
from tenure.intake.models import Alert, AlertHistory, BackupRun, MappingRule, RawPayload
from tenure.intake.parsers.backup_email import parse_backup_email
from tenure.intake.parsers.common import ParsedRun
from tenure.intake.sources import (
    IntakeError,
    Signal,
    infer_service,
    parse_alertmanager,
    parse_event,
    parse_ping,
    parse_restic,
    parse_tactical,
)
from tenure.notices.models import Notice
from tenure.triage import rules as triage
from tenure.triage.models import Ticket

SOURCES = ("alertmanager", "email", "event", "tactical", "restic", "ping")
# payloads Tenure makes itself: the missed-backup sweep, and restic snapshots read by `tenure sync backups`
INTERNAL_SOURCES = ("missed", "snapshot")
OPENS_WORK = ("ticket", "quote")


# ------------------------------------------------------------------------------------------- receive


def receive(
    db: Database, source: str, body: bytes, content_type: str | None = None, meta: dict[str, Any] | None = None
) -> int:
    """Store the payload exactly as received and commit: only then may the sender be answered."""
    if source not in SOURCES + INTERNAL_SOURCES:
        raise IntakeError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    with db.unit_of_work() as s:
        row = RawPayload(
            source=source,
            received_at=clock.now(),
            content_type=content_type,
            body=body,
            meta=meta or {},
            state="stored",
        )
        s.add(row)
        s.flush()
        return row.id


def receive_many(db: Database, source: str, bodies: list[bytes], meta: dict[str, Any] | None = None) -> list[int]:
    """A batch stored in one statement (the CLI and the benchmark feed many payloads at once)."""
    now = clock.now()
    with db.unit_of_work() as s:
        result = s.execute(
            insert(RawPayload).returning(RawPayload.id, sort_by_parameter_order=True),
            [
                {
                    "source": source,
                    "received_at": now,
                    "content_type": None,
                    "body": body,
                    "meta": meta or {},
                    "state": "stored",
                }
                for body in bodies
            ],
        )
        return list(result.scalars())


# ------------------------------------------------------------------------------------------- parsing


def _addresses(message: Message, *names: str) -> list[str]:
    return [addr.lower() for _, addr in getaddresses([str(v) for n in names for v in message.get_all(n, [])]) if addr]


def _run_signal(run: ParsedRun, sender: str | None, recipients: list[str]) -> Signal:
    status = run.status
    title = f"{run.product} backup {run.job}: {status}" + (f" ({run.detail})" if run.detail else "")
    return Signal(
        source="email",
        kind="backup",
        status=status,
        title=title[:480],
        severity={"failure": "error", "warning": "warning"}.get(status, "info"),
        service="backup_monitoring",
        fingerprint=triage.fingerprint("email", run.product, run.job, run.device or ""),
        occurred_at=run.finished_at or run.started_at,
        hostname=run.device,
        sender=sender,
        recipient=",".join(recipients),
        job=run.job,
        details={
            "product": run.product,
            "rule": run.rule,
            "detail": run.detail,
            "size_bytes": run.size_bytes,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
    )


def parse_email(body: bytes) -> list[Signal]:
    """A backup product's notice gives its runs; any other mail is one alert titled by its subject."""
    message = email.message_from_bytes(body, policy=email.policy.default)
    sender = parseaddr(str(message.get("From", "")))[1].lower() or None
    recipients = _addresses(message, "To", "Cc", "Delivered-To", "X-Original-To")
    runs = parse_backup_email(message)
    if runs:
        return [_run_signal(run, sender, recipients) for run in runs]
    subject = str(message.get("Subject", "")).strip()
    if not subject and not sender:
        raise IntakeError("email: neither a subject nor a sender; not a notification Tenure can read")
    part = message.get_body(preferencelist=("plain", "html"))
    text = part.get_content() if part is not None else ""
    resolved = bool(re.search(r"\b(resolved|recovered|back to normal|is ok|cleared)\b", subject, re.I))
    return [
        Signal(
            source="email",
            kind="alert",
            status="resolved" if resolved else "firing",
            title=subject[:480] or "(no subject)",
            severity="warning",
            service=infer_service(subject, text[:2000]),
            fingerprint=triage.fingerprint(
                "email",
                sender or "",
                re.sub(r"\b(resolved|recovered)\b[:\s]*", "", subject, flags=re.I).strip().lower(),
            ),
            sender=sender,
            recipient=",".join(recipients),
            details={"excerpt": text[:500]},
        )
    ]


def _missed_signal(body: bytes) -> Signal:
    data = json.loads(body)
    expected = datetime.fromisoformat(data["expected"])
    return Signal(
        source="missed",
        kind="backup",
        status="failure",
        severity="error",
        service="backup_monitoring",
        title=f"Backup missed: {data['name']} (expected {expected:%Y-%m-%d %H:%M} UTC, "
        f"{data['grace_minutes']} min grace)",
        fingerprint=f"missed:{data['job']}",
        occurred_at=expected,
        job=data["job"],
        details={"expected": data["expected"], "rule": "missed.schedule"},
    )


def _snapshot_signal(body: bytes) -> Signal:
    data = json.loads(body)
    return Signal(
        source="snapshot",
        kind="backup",
        status="success",
        severity="info",
        service="backup_monitoring",
        title=f"restic snapshot {data['snapshot']} of {data['name']}",
        fingerprint=f"snapshot:{data['job']}",
        occurred_at=datetime.fromisoformat(data["time"]),
        job=data["job"],
        details={"snapshot": data["snapshot"], "rule": "restic.snapshots"},
    )


def parse_payload(row: RawPayload) -> list[Signal]:
    meta = row.meta or {}
    if row.source == "alertmanager":
        return parse_alertmanager(row.body)
    if row.source == "event":
        return parse_event(row.body)
    if row.source == "tactical":
        return parse_tactical(row.body)
    if row.source == "restic":
        code = meta.get("exit_code")
        return parse_restic(
            row.body.decode("utf-8", "replace"),
            exit_code=None if code is None else int(code),
            job=meta.get("job"),
            hostname=meta.get("host"),
            client_hint=meta.get("client"),
        )
    if row.source == "ping":
        return parse_ping(str(meta.get("path", "")), body=row.body, received_at=row.received_at)
    if row.source == "email":
        return parse_email(row.body)
    if row.source == "missed":
        return [_missed_signal(row.body)]
    if row.source == "snapshot":
        return [_snapshot_signal(row.body)]
    raise IntakeError(f"source {row.source!r} is not one Tenure reads")


# ------------------------------------------------------------------------------------------ matching


@dataclass
class _ClientFacts:
    id: int
    key: str
    name: str
    klass: str
    billable_alerts: bool
    forward_alerts: bool
    agreements: list[tuple[str, str, date, date | None, list[str], list[str]]] = field(default_factory=list)
    contacts: list[tuple[str, list[str]]] = field(default_factory=list)

    def coverage(self, day: date, service: str) -> triage.Coverage:
        active = [a for a in self.agreements if a[2] <= day and (a[3] is None or day <= a[3])]
        covered = triage.covered_services([(a[4], a[5]) for a in active])
        covering = next((a for a in active if service in a[4] and service not in a[5]), None)
        return triage.Coverage(
            client_class=self.klass,
            covered_services=covered,
            billable_alerts=self.billable_alerts,
            forward_alerts=self.forward_alerts,
            covering_agreement=covering[0] if covering else None,
            covering_kind=covering[1] if covering else None,
            client_name=self.name,
        )


class MatchIndex:
    """Who is who, loaded once per batch: exact lookups pick the few candidate rules of a payload, and
    `triage.rules.find_match` decides among them (so matching stays one rule, and fast)."""

    def __init__(self, session: Session, day: date, signals: list[Signal]):
        self.session = session
        self.day = day
        self.by_key: dict[str, tuple[int, str]] = {}
        self.by_name: dict[str, list[str]] = defaultdict(list)
        self.by_domain: dict[str, list[str]] = defaultdict(list)
        for cid, key, name, domains in session.execute(select(Client.id, Client.key, Client.name, Client.domains)):
            self.by_key[key.lower()] = (cid, key)
            self.by_name[name.lower()].append(key)
            for domain in domains:
                self.by_domain[domain.lower()].append(key)
        self.mapping = [
            (key, f, p)
            for key, f, p in session.execute(
                select(Client.key, MappingRule.field, MappingRule.pattern).join(
                    Client, Client.id == MappingRule.client_id
                )
            )
        ]
        self.devices: dict[str, list[tuple[str, int, str]]] = defaultdict(list)  # hostname -> (client, id, name)
        self.hostnames: dict[int, str] = {}
        for key, device_id, hostname in session.execute(
            select(Client.key, Device.id, Device.hostname).join(Client, Client.id == Device.client_id)
        ):
            self.devices[hostname.lower()].append((key, device_id, hostname))
            self.hostnames[device_id] = hostname
            self.devices[hostname.lower().split(".")[0]].append((key, device_id, hostname))
        # only the backup jobs this batch names (by ping UUID, key or name), not every job there is
        self.jobs_by_uuid: dict[str, BackupJob] = {}
        self.jobs: dict[tuple[int, str], BackupJob] = {}
        self.jobs_by_key: dict[str, BackupJob] = {}
        named = sorted({(sg.job or sg.title) for sg in signals if sg.kind == "backup"})
        for chunk in _chunks(named):
            lowered = [n.lower() for n in chunk]
            for job in session.scalars(
                select(BackupJob).where(
                    BackupJob.key.in_(chunk) | BackupJob.name.in_(chunk) | func.lower(BackupJob.ping_uuid).in_(lowered)
                )
            ):
                self.jobs_by_key[job.key] = job
                if job.ping_uuid:
                    self.jobs_by_uuid[job.ping_uuid.lower()] = job
                if job.client_id is not None:
                    self.jobs[(job.client_id, job.name.lower())] = job
                    self.jobs[(job.client_id, job.key.lower())] = job
        self._facts: dict[str, _ClientFacts] = {}

    def candidates(self, signal: Signal) -> list[tuple[str, str, str]]:
        rules: list[tuple[str, str, str]] = list(self.mapping)
        for address in (signal.recipient or "").split(","):
            local = address.split("@")[0]
            if "+" in local:
                tag = local.split("+", 1)[1].lower()
                if tag in self.by_key:
                    rules.append((self.by_key[tag][1], "intake", tag))
        if signal.hostname:
            host = signal.hostname.lower()
            for key, _, hostname in self.devices.get(host, []) + self.devices.get(host.split(".")[0], []):
                rules.append((key, "device", hostname))
        for hint in (signal.client_hint, signal.labels.get("client"), signal.labels.get("tenant")):
            if hint:
                hint = hint.lower()
                if hint in self.by_key:
                    rules.append((self.by_key[hint][1], "client", hint))
                rules += [(key, "client", hint) for key in self.by_name.get(hint, [])]
        if signal.sender and "@" in signal.sender:
            parts = signal.sender.split("@", 1)[1].lower().split(".")
            for i in range(len(parts) - 1):
                domain = ".".join(parts[i:])
                rules += [(key, "domain", domain) for key in self.by_domain.get(domain, [])]
        return rules

    def client_of(self, signal: Signal, row: RawPayload) -> str | None:
        job = self.job_of_uuid(signal)
        if job is not None and job.client_id is not None:
            return next(key for cid, key in self.by_key.values() if cid == job.client_id)
        meta_client = (row.meta or {}).get("client")
        if meta_client and str(meta_client).lower() in self.by_key:
            return self.by_key[str(meta_client).lower()][1]
        return triage.match_client(signal.hints(), self.candidates(signal))

    def job_of_uuid(self, signal: Signal) -> BackupJob | None:
        """The job a ping (by its UUID) or a missed run (by its key) is about; others are matched by name."""
        if signal.source == "ping":
            return self.jobs_by_uuid.get((signal.job or "").lower())
        if signal.source in ("missed", "snapshot"):
            return self.jobs_by_key.get(signal.job or "")
        return None

    def device_of(self, client: str, signal: Signal) -> int | None:
        if not signal.hostname:
            return None
        host = signal.hostname.lower()
        for key, device_id, _ in self.devices.get(host, []) + self.devices.get(host.split(".")[0], []):
            if key == client:
                return device_id
        return None

    def load_facts(self, client_keys: set[str]) -> None:
        """The class, agreements, contacts and alert preferences of these clients: a few queries in all."""
        wanted = sorted(k for k in client_keys if k not in self._facts)
        if not wanted:
            return
        ids = {self.by_key[k.lower()][0]: k for k in wanted}
        views = {v.key: v for v in client_views(self.session, self.day, keys=wanted, with_devices=False)}
        for chunk in _chunks(list(ids)):
            for cid, name, billable, forward in self.session.execute(
                select(Client.id, Client.name, Client.billable_alerts, Client.forward_alerts).where(
                    Client.id.in_(chunk)
                )
            ):
                key = ids[cid]
                self._facts[key] = _ClientFacts(cid, key, name, views[key].klass, billable, forward)
            for cid, *agreement in self.session.execute(
                select(
                    Agreement.client_id,
                    Agreement.key,
                    Agreement.kind,
                    Agreement.start,
                    Agreement.end,
                    Agreement.covers,
                    Agreement.excludes,
                ).where(Agreement.client_id.in_(chunk))
            ):
                self._facts[ids[cid]].agreements.append(tuple(agreement))  # type: ignore[arg-type]
            for cid, address, roles in self.session.execute(
                select(Contact.client_id, Contact.email, Contact.roles).where(Contact.client_id.in_(chunk))
            ):
                if address:
                    self._facts[ids[cid]].contacts.append((address, roles))

    def hostname_of(self, device_id: int | None) -> str | None:
        return self.hostnames.get(device_id) if device_id is not None else None

    def facts(self, client_key: str) -> _ClientFacts:
        if client_key not in self._facts:
            self.load_facts({client_key})
        return self._facts[client_key]


# ------------------------------------------------------------------------------------------ recording


@dataclass
class Outcome:
    """What happened to one signal: INTERFACE.md's decision shape."""

    alert: int | None
    client: str | None
    device: str | None
    fingerprint: str
    decision: str
    ticket: int | None
    reason: str
    payload: int
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "client": self.client,
            "device": self.device,
            "fingerprint": self.fingerprint,
            "decision": self.decision,
            "ticket": self.ticket,
            "reason": self.reason,
            "payload": self.payload,
            "status": self.status,
        }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "job"


@dataclass
class _Prepared:
    """A signal matched to its client, device and job, with its decision: ready to be recorded."""

    row: RawPayload
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
class _NewAlert:
    """An alert first seen in this batch: inserted in bulk at the end, with its ticket and history."""

    values: dict[str, Any]
    ticket: _NewTicket | None
    history: list[tuple[datetime, str, str]]
    id: int | None = None

    @property
    def ticket_id(self) -> int | None:
        return self.ticket.id if self.ticket is not None else None


class _Recorder:
    """Records a batch: matching and decisions first, then open alerts and tickets loaded in one query,
    then new rows added and flushed once. Ids reach the outcomes after that flush."""

    def __init__(self, session: Session, index: MatchIndex):
        self.s = session
        self.index = index
        self.now = clock.now()
        self.open: dict[tuple[int, str], Alert | _NewAlert] = {}
        self.tickets: dict[int, Ticket] = {}
        self.new_alerts: list[_NewAlert] = []
        self.new_tickets: list[_NewTicket] = []
        self.notices: list[dict[str, Any]] = []

    def job_for(self, facts: _ClientFacts, signal: Signal, device_id: int | None) -> tuple[BackupJob, bool]:
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
        self.index.jobs[(facts.id, name.lower())] = self.index.jobs_by_key[key] = job
        return job, False

    def match(self, row: RawPayload, signal: Signal) -> _Prepared:
        return _Prepared(row, signal, signal.occurred_at or row.received_at, self.index.client_of(signal, row))

    def decide(self, item: _Prepared) -> None:
        signal = item.signal
        if item.client is None:
            item.decision = triage.decide(signal.service, signal.kind, None)
            return
        facts = self.index.facts(item.client)
        item.device_id = self.index.device_of(item.client, signal)
        item.device = self.index.hostname_of(item.device_id)
        coverage = facts.coverage(item.seen.date(), signal.service)
        job_known = True
        if signal.kind == "backup":
            item.job, job_known = self.job_for(facts, signal, item.device_id)
            item.signal = replace(signal, fingerprint=triage.fingerprint("backup", facts.key, item.job.key))
        item.decision = triage.decide(
            signal.service,
            signal.kind,
            coverage,
            job_known=job_known,
            job_status=item.job.status if item.job is not None else None,
        )

    def load_open(self, items: list[_Prepared]) -> None:
        """The open alerts (and their tickets) of every fingerprint in the batch, in a few queries."""
        keys = {(self.index.facts(i.client).id, i.signal.fingerprint) for i in items if i.client}
        fingerprints = sorted({fp for _, fp in keys})
        for chunk in _chunks(fingerprints):
            for alert in self.s.scalars(select(Alert).where(Alert.status == "firing", Alert.fingerprint.in_(chunk))):
                if (alert.client_id, alert.fingerprint) in keys:
                    self.open[(alert.client_id or 0, alert.fingerprint)] = alert
        ticket_ids = sorted({a.ticket_id for a in self.open.values() if a.ticket_id})
        for chunk in _chunks(ticket_ids):
            self.tickets.update({t.id: t for t in self.s.scalars(select(Ticket).where(Ticket.id.in_(chunk)))})

    def record(self, item: _Prepared) -> tuple[_Prepared, Alert | _NewAlert | None]:
        decision, signal = item.decision, item.signal
        assert decision is not None
        if item.client is None:
            return item, None
        facts = self.index.facts(item.client)
        if item.job is not None:
            self._backup_result(item.row, signal, item.job, decision, item.seen)
        if signal.status in ("firing", "failure", "warning"):
            return item, self._open(facts, item, decision)
        if signal.status in ("resolved", "success"):  # a start (`/ping/<uuid>/start`) changes nothing open
            return item, self._resolve(facts, signal, item.seen)
        return item, None

    def _backup_result(
        self, row: RawPayload, signal: Signal, job: BackupJob, decision: triage.Decision, seen: datetime
    ) -> None:
        if decision.activate_job and job.status == "pending":
            job.status, job.activated_at = "active", self.now
        if signal.source == "missed":
            return  # not a result: the job still has none since its last one
        if signal.status != "started":
            job.last_result_at, job.last_status = seen, signal.status
            job.next_expected_at = None  # the sweep works out the next due time afresh
        started = signal.details.get("started_at")
        self.s.add(
            BackupRun(
                backup_job_id=job.id,
                raw_payload_id=row.id,
                product=job.product,
                status=signal.status,
                started_at=datetime.fromisoformat(started) if isinstance(started, str) else None,
                finished_at=seen,
                size_bytes=signal.details.get("size_bytes"),
                rule=str(signal.details.get("rule") or signal.source),
            )
        )

    def _open(self, facts: _ClientFacts, item: _Prepared, decision: triage.Decision) -> Alert | _NewAlert:
        signal, seen = item.signal, item.seen
        alert = self.open.get((facts.id, signal.fingerprint))
        if isinstance(alert, _NewAlert):  # a repeat within this batch
            alert.values["count"] += 1
            alert.values["last_seen"] = max(alert.values["last_seen"], seen)
            if alert.ticket is not None:
                alert.ticket.values["alert_count"] += 1
            return alert
        if alert is not None:  # a repeat: counted on the open item, never a second ticket
            alert.count += 1
            alert.last_seen = max(alert.last_seen, seen)
            ticket = self.tickets.get(alert.ticket_id or 0)
            if ticket is not None:
                ticket.alert_count += 1
            return alert
        ticket = None
        if decision.decision in OPENS_WORK:
            ticket = _NewTicket(
                {
                    "client_id": facts.id,
                    "kind": "alert" if decision.decision == "ticket" else "quote",
                    "status": "open" if decision.decision == "ticket" else "awaiting_approval",
                    "title": signal.title[:480],
                    "fingerprint": signal.fingerprint,
                    "billable": decision.decision == "quote",
                    "opened_at": self.now,
                    "closed_at": None,
                    "alert_count": 1,
                }
            )
            self.new_tickets.append(ticket)
        new = _NewAlert(
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
            [(seen, "firing", decision.decision)],
        )
        self.open[(facts.id, signal.fingerprint)] = new
        self.new_alerts.append(new)
        if decision.decision == "forward":
            self._forward(facts, signal)
        return new

    def _resolve(self, facts: _ClientFacts, signal: Signal, seen: datetime) -> Alert | _NewAlert | None:
        """A success or resolve closes the open item of its fingerprint (and its ticket)."""
        alert = self.open.pop((facts.id, signal.fingerprint), None)
        if isinstance(alert, _NewAlert):
            alert.values.update(status="resolved", resolved_at=seen, last_seen=max(alert.values["last_seen"], seen))
            alert.history.append((seen, "resolved", signal.source))
            if alert.ticket is not None:
                alert.ticket.values.update(status="closed", closed_at=self.now)
            return alert
        if alert is None:
            return None
        alert.status, alert.resolved_at, alert.last_seen = "resolved", seen, max(alert.last_seen, seen)
        alert.history.append(AlertHistory(time=seen, status="resolved", note=signal.source))
        ticket = self.tickets.get(alert.ticket_id or 0)
        if ticket is not None and ticket.status in ("open", "awaiting_approval"):
            ticket.status, ticket.closed_at = "closed", self.now
        return alert

    def _forward(self, facts: _ClientFacts, signal: Signal) -> None:
        to = [e for e, roles in facts.contacts if "technical" in roles or "primary" in roles] or [
            e for e, _ in facts.contacts
        ]
        self.s.add(
            Notice(
                client_id=facts.id,
                kind="alert_forward",
                dedupe_key=f"forward:{facts.key}:{signal.fingerprint}:{self.now}",
                to=to,
                cc=[],
                subject=f"Alert for {facts.name}: {signal.title}"[:290],
                body_text=(
                    f"{signal.title}\n\nThis alert is forwarded to you as you asked: no agreement of {facts.name} "
                    f"covers {signal.service}, so no technician will act on it unless you ask us to."
                ),
                body_html=None,
                data={"fingerprint": signal.fingerprint},
                state="waiting",
                attempts=0,
                created_at=self.now,
            )
        )

    def finish(self) -> None:
        """The batch's new tickets, alerts, history and notices in bulk statements, then one flush for what
        changed on rows that already existed. Ids are read back by what identifies the new rows (a plain
        executemany; RETURNING in parameter order is slow on SQLite). Core inserts, not the ORM's bulk
        path, which splits a batch wherever a row leaves a different column empty."""
        if self.new_tickets:
            self.s.connection().execute(Ticket.__table__.insert(), [t.values for t in self.new_tickets])
            ticket_ids: dict[tuple[int, str], int] = {}
            for chunk in _chunks(sorted({t.values["fingerprint"] for t in self.new_tickets})):
                query = select(Ticket.id, Ticket.client_id, Ticket.fingerprint).where(
                    Ticket.opened_at == self.now, Ticket.fingerprint.in_(chunk)
                )
                ticket_ids.update({(cid, fp): tid for tid, cid, fp in self.s.execute(query)})
            for ticket in self.new_tickets:
                ticket.id = ticket_ids[(ticket.values["client_id"], ticket.values["fingerprint"])]
            record_created(
                self.s,
                "ticket",
                [
                    {
                        "id": t.id,
                        "label": f"#{t.id} {t.values['title']}",
                        "client_id": t.values["client_id"],
                        "after": t.values | {"id": t.id},
                    }
                    for t in self.new_tickets
                ],
            )
        if self.new_alerts:
            for alert in self.new_alerts:
                alert.values["ticket_id"] = alert.ticket_id
            self.s.connection().execute(Alert.__table__.insert(), [a.values for a in self.new_alerts])
            alert_ids: dict[tuple[int, str, int], int] = {}
            for chunk in _chunks(sorted({a.values["raw_payload_id"] for a in self.new_alerts})):
                query = select(Alert.id, Alert.client_id, Alert.fingerprint, Alert.raw_payload_id).where(
                    Alert.raw_payload_id.in_(chunk)
                )
                alert_ids.update({(cid, fp, raw): aid for aid, cid, fp, raw in self.s.execute(query)})
            for alert in self.new_alerts:
                v = alert.values
                alert.id = alert_ids[(v["client_id"], v["fingerprint"], v["raw_payload_id"])]
            self.s.execute(
                insert(AlertHistory),
                [
                    {"alert_id": a.id, "time": when, "status": status, "note": note}
                    for a in self.new_alerts
                    for when, status, note in a.history
                ],
            )
        if self.notices:
            self.s.connection().execute(Notice.__table__.insert(), self.notices)
        self.s.flush()


# ----------------------------------------------------------------------------------------- processing


def process(
    db: Database,
    payload_ids: list[int] | None = None,
    states: tuple[str, ...] = ("stored",),
) -> list[Outcome]:
    """Parse, match, dedupe, decide and record stored payloads (all waiting ones when `payload_ids` is None)."""
    with collector_paused(), db.unit_of_work() as s, s.no_autoflush:
        columns = (RawPayload.id, RawPayload.source, RawPayload.received_at, RawPayload.body, RawPayload.meta)
        query = select(*columns).where(RawPayload.state.in_(states)).order_by(RawPayload.id)
        rows: list[Any] = []
        if payload_ids is None:
            rows = list(s.execute(query))
        else:
            for chunk in _chunks(sorted(payload_ids)):
                rows += list(s.execute(query.where(RawPayload.id.in_(chunk))))
        if not rows:
            return []
        failed: dict[int, Outcome] = {}
        parsed: list[tuple[Any, Signal]] = []
        for row in rows:
            try:
                parsed += [(row, signal) for signal in parse_payload(row)]
            except IntakeError as exc:
                failed[row.id] = _unread(row.id, str(exc))
            except (ValueError, UnicodeError, LookupError, KeyError) as exc:
                failed[row.id] = _unread(row.id, f"{row.source}: could not be read ({exc})")
        index = MatchIndex(s, clock.today(), [signal for _, signal in parsed])
        recorder = _Recorder(s, index)
        prepared = [recorder.match(row, signal) for row, signal in parsed]
        index.load_facts({p.client for p in prepared if p.client})
        for item in prepared:
            recorder.decide(item)
        recorder.load_open(prepared)
        recorded = [recorder.record(item) for item in prepared]
        recorder.finish()
        by_row: dict[int, list[Outcome]] = defaultdict(list)
        for item, alert in recorded:
            decision = item.decision
            assert decision is not None
            by_row[item.row.id].append(
                Outcome(
                    alert.id if alert is not None else None,
                    item.client,
                    item.device,
                    item.signal.fingerprint,
                    decision.decision if item.client else "quarantine",
                    alert.ticket_id if alert is not None else None,
                    decision.reason,
                    item.row.id,
                    item.signal.status,
                )
            )
        outcomes: list[Outcome] = []
        now = clock.now()
        states_after: list[dict[str, Any]] = []
        for row in rows:
            results = [failed[row.id]] if row.id in failed else by_row.get(row.id, [])
            outcomes += results
            if results and all(o.decision == "quarantine" for o in results):
                states_after.append(
                    {"pid": row.id, "state": "quarantined", "error": results[0].reason[:1900], "at": now}
                )
            else:
                states_after.append({"pid": row.id, "state": "processed", "error": None, "at": now})
        table = RawPayload.__table__
        s.connection().execute(
            table.update()
            .where(table.c.id == bindparam("pid"))
            .values(state=bindparam("state"), error=bindparam("error"), processed_at=bindparam("at")),
            states_after,
        )
    return outcomes


def _unread(payload: int, reason: str) -> Outcome:
    return Outcome(None, None, None, "", "quarantine", None, reason, payload, "unparsed")


def ingest(
    db: Database, source: str, body: bytes, content_type: str | None = None, meta: dict[str, Any] | None = None
) -> list[Outcome]:
    """Store, then process: what every intake endpoint does."""
    payload = receive(db, source, body, content_type, meta)
    return process(db, [payload])


def replay(db: Database, payload_ids: list[int] | None = None) -> list[Outcome]:
    """Process quarantined payloads again (after a parser or a mapping rule was fixed)."""
    return process(db, payload_ids, states=("quarantined",))


def quarantined(db: Database) -> list[dict[str, Any]]:
    with db.reader() as s:
        return [
            {
                "payload": r.id,
                "source": r.source,
                "received_at": r.received_at.isoformat(),
                "error": r.error,
                "bytes": len(r.body),
            }
            for r in s.scalars(select(RawPayload).where(RawPayload.state == "quarantined").order_by(RawPayload.id))
        ]
