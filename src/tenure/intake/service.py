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
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tenure import clock
from tenure.bulk import collector_paused
from tenure.db.bulkwrite import insert_with_ids
from tenure.db.engine import Database
from tenure.db.members import one_of
from tenure.desk.mail.inbound import take_client_mail
from tenure.errors import ValidationFailed
from tenure.intake.matching import MatchIndex
from tenure.intake.models import RawPayload
from tenure.intake.parsers.backup_email import parse_backup_email
from tenure.intake.parsers.common import ParsedRun
from tenure.intake.recording import Recorder
from tenure.intake.sanitize import clean_fields, clean_text, clean_value, needs_cleaning
from tenure.intake.sources import (
    IntakeError,
    PartlyRead,
    Signal,
    infer_service,
    parse_alertmanager,
    parse_event,
    parse_ping,
    parse_restic,
    parse_tactical,
)
from tenure.triage import rules as triage
from tenure.vocabulary import INTAKE_SOURCES, INTERNAL_INTAKE_SOURCES

# how many payloads one transaction of the worker takes: a backlog goes through in batches of this size
BATCH = 5000


# ------------------------------------------------------------------------------------------- receive


def store(
    s: Session, payloads: list[tuple[str, bytes, str | None, dict[str, Any]]], processed: datetime | None = None
) -> list[int]:
    """Store payloads (source, body, content type, meta) exactly as received, in one statement; their ids in
    order. The caller commits, and only then may a sender be answered. `processed`: they are processed in
    this same transaction, at that time (which is also when they were received)."""
    for source, *_ in payloads:
        if source not in INTAKE_SOURCES + INTERNAL_INTAKE_SOURCES:
            raise IntakeError(f"source {source!r} is not one of {', '.join(INTAKE_SOURCES)}")
    now = processed or clock.now()
    return insert_with_ids(
        s.connection(),
        RawPayload.__table__,
        [
            {
                "source": source,
                "received_at": now,
                "content_type": content_type,
                "body": body,
                "meta": clean_value(meta) if meta else meta,  # query values may hold NUL (`%00`)
                "state": "stored" if processed is None else "processed",
                "processed_at": processed,
            }
            for source, body, content_type, meta in payloads
        ],
    )


def receive(
    db: Database, source: str, body: bytes, content_type: str | None = None, meta: dict[str, Any] | None = None
) -> int:
    """Store the payload exactly as received and commit: only then may the sender be answered."""
    with db.unit_of_work() as s:
        return store(s, [(source, body, content_type, meta or {})])[0]


def receive_many(db: Database, source: str, bodies: list[bytes], meta: dict[str, Any] | None = None) -> list[int]:
    """A batch stored in one statement, to be processed later."""
    with db.unit_of_work() as s:
        return store(s, [(source, body, None, meta or {}) for body in bodies])


class _Payload(NamedTuple):
    """A payload as processing reads it (the columns `_claim` returns)."""

    id: int
    source: str
    received_at: datetime
    body: bytes
    meta: dict[str, Any]
    placed: list[str] | None = None  # fingerprints recorded already (a payload replayed for some alerts)


def ingest_many(
    db: Database,
    source: str,
    bodies: list[bytes],
    meta: dict[str, Any] | None = None,
    content_type: str | None = None,
) -> list[Outcome]:
    """A batch whose sender waits for the decisions (files given to `tenure intake`, the missed-backup sweep,
    snapshots read by `tenure sync backups`, `?wait=true` on an endpoint): stored and processed in one
    transaction, one commit.

    Nothing is lost either way: a payload whose processing fails is quarantined with the error and the
    others go through; if the database itself fails, the payloads are stored unprocessed for the worker
    and the error is raised; a crash before the commit leaves the sender unanswered."""
    return ingest_batch(db, source, bodies, meta, content_type)[1]


# The cyclic collector paused for the whole batch, its payloads made too (a collection walks everything the
# process holds, and thousands of new objects would start several), and resumed once the batch's objects
# are freed (tenure.bulk).
@collector_paused()
def ingest_batch(
    db: Database,
    source: str,
    bodies: list[bytes],
    meta: dict[str, Any] | None = None,
    content_type: str | None = None,
) -> tuple[list[int], list[Outcome]]:
    """`ingest_many`, with the stored payloads' ids.

    If processing the batch fails, the payloads are stored unprocessed and processed again as the worker
    would, one at fault set aside in quarantine (`process`), so the sender still hears every decision."""
    meta = meta or {}
    payloads = [(source, body, content_type, meta) for body in bodies]
    try:
        with db.unit_of_work() as s, s.no_autoflush:
            now = clock.now()
            ids = store(s, payloads, processed=now)
            rows = [_Payload(pid, source, now, body, meta) for pid, body in zip(ids, bodies, strict=True)]
            return ids, _process_rows(s, rows, now)
    except IntakeError:
        raise  # a source Tenure does not read: nothing was stored, the caller hears why
    except OperationalError:
        with db.unit_of_work() as s:  # the database is busy or gone: the worker takes them up later
            store(s, payloads)
        raise
    except Exception:
        with db.unit_of_work() as s:
            ids = store(s, payloads)
        return ids, process(db, ids)


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


# Python's e-mail parser nests one level per multipart part: a few thousand nested parts, which anyone
# can send over SMTP, exhaust the stack. No notification needs more than a handful.
MAX_MULTIPARTS = 50
MAX_PARTS = 500
_MULTIPART = re.compile(rb"content-type:\s*multipart/", re.I)
_PART = re.compile(rb"^content-type:", re.I | re.M)


def parse_email(body: bytes) -> list[Signal]:
    """A backup product's notice gives its runs; any other mail is one alert titled by its subject."""
    if len(_MULTIPART.findall(body)) > MAX_MULTIPARTS or len(_PART.findall(body)) > MAX_PARTS:
        raise IntakeError(
            f"email: more than {MAX_MULTIPARTS} multipart sections or {MAX_PARTS} parts; "
            "not a notification Tenure reads, refused"
        )
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


def parse_payload(row: Any) -> list[Signal]:
    """The signals of a stored payload (a row with source, body, meta and received_at)."""
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


# ----------------------------------------------------------------------------------------- processing


@dataclass(slots=True)
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


def _claim(
    s: Session, payload_ids: list[int] | None, states: tuple[str, ...], now: datetime, limit: int = BATCH
) -> list[Any]:
    """Mark the payloads processed and read them, one statement per chunk (the `limit` oldest waiting ones
    when `payload_ids` is None). The transaction holds them from here on: another worker's claim skips or
    waits for them, then finds them taken; a failure rolls the mark back."""
    table = RawPayload.__table__
    claim = (
        table.update()
        .where(table.c.state.in_(states))
        .values(state="processed", error=None, processed_at=now)
        .returning(table.c.id, table.c.source, table.c.received_at, table.c.body, table.c.meta, table.c.placed)
    )
    connection = s.connection()
    if payload_ids is None:
        oldest = select(table.c.id).where(table.c.state.in_(states)).order_by(table.c.id).limit(limit)
        if connection.dialect.name == "postgresql":  # another worker's batch is skipped, not waited for
            oldest = oldest.with_for_update(skip_locked=True)
        rows = list(connection.execute(claim.where(table.c.id.in_(oldest.scalar_subquery()))))
    else:
        rows = list(connection.execute(claim.where(one_of(s, table.c.id, sorted(set(payload_ids))))))
    rows.sort(key=lambda row: row.id)
    return rows


def process(
    db: Database,
    payload_ids: list[int] | None = None,
    states: tuple[str, ...] = ("stored",),
    limit: int = BATCH,
) -> list[Outcome]:
    """Parse, match, dedupe, decide and record stored payloads (the `limit` oldest waiting ones when
    `payload_ids` is None).

    One transaction per batch. If anything in it fails because of what a payload holds (a value the
    database refuses, a parser's crash), the batch is rolled back and split in halves until the payload at
    fault is alone; that one is quarantined with the error, and the rest go through. A database that cannot
    be reached or is busy (`OperationalError`) is no payload's fault: the error is raised and the batch
    stays waiting for the next round."""
    return _process(db, payload_ids, states, limit)[1]


@collector_paused()  # as ingest_batch
def _process(
    db: Database, payload_ids: list[int] | None, states: tuple[str, ...], limit: int
) -> tuple[int, list[Outcome]]:
    """`process`, with how many payloads it claimed (some may have no outcome to show)."""
    claimed: list[int] = []
    try:
        with db.unit_of_work() as s, s.no_autoflush:
            now = clock.now()
            rows = _claim(s, payload_ids, states, now, limit)
            claimed += [row.id for row in rows]
            return len(rows), _process_rows(s, rows, now)
    except OperationalError:
        raise
    except Exception as exc:
        if not claimed:
            raise  # nothing was claimed, so no payload is at fault
        if len(claimed) == 1:
            return 1, _quarantine_failed(db, claimed[0], states, exc)
        half = len(claimed) // 2
        return len(claimed), process(db, claimed[:half], states) + process(db, claimed[half:], states)


def process_waiting(db: Database, limit: int = BATCH) -> int:
    """The worker's round: every payload waiting now, a batch at a time; how many were processed."""
    done = 0
    while True:
        claimed, _ = _process(db, None, ("stored",), limit)
        done += claimed
        if claimed < limit:
            return done


def _quarantine_failed(db: Database, payload: int, states: tuple[str, ...], exc: BaseException) -> list[Outcome]:
    """A payload whose processing failed on its own: set aside with the error, for a person to look at and
    to `tenure intake replay` once the cause is fixed."""
    table = RawPayload.__table__
    reason = _failure(exc)
    with db.unit_of_work() as s:
        source = s.connection().scalar(
            table.update()
            .where(table.c.id == payload, table.c.state.in_(states))
            .values(state="quarantined", processed_at=clock.now(), error=reason[:1900])
            .returning(table.c.source)
        )
    if source is None:
        return []  # another worker took it meanwhile
    return [_unread(payload, f"{source}: {reason}")]


def _failure(exc: BaseException) -> str:
    """One line for the quarantine list: the error's type and first line (a driver's, not SQLAlchemy's
    wrapper with the whole statement), printable whatever the payload held."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = clean_text(lines[0][:300]) if lines else "no message"
    return f"processing failed ({type(exc).__name__}: {first})"


def _process_rows(s: Session, rows: list[Any], now: datetime) -> list[Outcome]:
    """The heart of intake, for payloads this transaction holds (marked processed): quarantines what cannot
    be read or matched, records the rest."""
    if not rows:
        return []
    failed: dict[int, Outcome] = {}
    unread: dict[int, list[Outcome]] = {}  # a payload's records that could not be read, beside those that could
    parsed: list[tuple[Any, Signal]] = []
    for row in rows:
        try:
            try:
                signals = parse_payload(row)
            except PartlyRead as partly:  # one bad alert of a group waits aside; the others go on
                signals = partly.signals
                unread[row.id] = [_unread(row.id, clean_text(reason)) for reason in partly.unread]
            if needs_cleaning(row.source, row.body):
                signals = [clean_fields(signal) for signal in signals]
            if row.placed:  # replayed for the alerts that matched no client: the others were recorded already
                signals = [signal for signal in signals if signal.fingerprint not in set(row.placed)]
            parsed += [(row, signal) for signal in signals]
        except IntakeError as exc:
            failed[row.id] = _unread(row.id, clean_text(str(exc)))
        except (ValueError, UnicodeError, LookupError, KeyError) as exc:
            failed[row.id] = _unread(row.id, clean_text(f"{row.source}: could not be read ({exc})"))
        except Exception as exc:  # a parser's crash on strange input (parsers are pure: nothing to undo)
            failed[row.id] = _unread(row.id, f"{row.source}: {_failure(exc)}")
    # Who is who, and what follows from it, before the recording lock: no batch changes clients, mapping rules,
    # devices, agreements or contacts, so workers side by side (`tenure worker --processes N`) match, load facts
    # and decide at once. What batches do change (open alerts, their tickets, backup jobs) is read once the
    # lock is held: a backup result is decided there, its job read again.
    index = MatchIndex(s, [signal for _, signal in parsed])
    recorder = Recorder(s, index, now)
    prepared = [recorder.match(row, signal) for row, signal in parsed]
    index.load_facts({p.client for p in prepared if p.client})
    for item in prepared:
        if item.signal.kind != "backup":
            recorder.decide(item)
    _hold_recording(s)
    index.reload_jobs()
    # a person's mail (a known contact's) lands on a ticket instead of becoming an alert (desk/mail/inbound.py)
    parsed, people = take_client_mail(s, index, parsed, now)
    if people:
        alerts = {(row.id, id(signal)) for row, signal in parsed}
        prepared = [item for item in prepared if (item.row.id, id(item.signal)) in alerts]
    for item in prepared:
        if item.signal.kind == "backup":
            recorder.decide(item)
    recorder.load_open(prepared)
    recorded = [(item, recorder.record(item)) for item in prepared]
    recorder.finish()
    by_row: dict[int, list[Outcome]] = defaultdict(list)
    for mail in people:
        by_row[mail.payload].append(
            Outcome(None, mail.client, None, mail.fingerprint, mail.decision, mail.ticket, mail.reason,
                    mail.payload, mail.status)
        )  # fmt: skip
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
    quarantined: list[dict[str, Any]] = []
    for row in rows:
        results = [failed[row.id]] if row.id in failed else by_row.get(row.id, []) + unread.get(row.id, [])
        outcomes += results
        unmatched = [o for o in results if o.decision == "quarantine"]
        if not unmatched:
            continue
        placed = sorted({*(row.placed or ()), *(o.fingerprint for o in results if o.decision != "quarantine")})
        error = results[0].reason if not placed else f"{len(unmatched)} of its alerts: {unmatched[0].reason}"
        quarantined.append({"pid": row.id, "error": error[:1900], "placed": placed or None})
    if quarantined:  # one bad or unmatched alert waits aside; what matched in the same payload is recorded
        table = RawPayload.__table__
        s.connection().execute(
            table.update()
            .where(table.c.id == bindparam("pid"))
            .values(state="quarantined", error=bindparam("error"), placed=bindparam("placed")),
            quarantined,
        )
    return outcomes


def _hold_recording(s: Session) -> None:
    """PostgreSQL: wait until no other transaction is matching and recording a batch (`tenure worker
    --processes N` claims and parses batches side by side). Two batches holding repeats of one fingerprint
    must not both find it not open and both open a ticket: the second reads what the first committed, so
    every decision is the one a single worker would have made. SQLite's single writer already does this."""
    if s.connection().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), 0)"), {"ns": RECORDING_LOCK})


# the advisory lock of intake's recording, in its own namespace (tenure.db.locks numbers its own from names)
RECORDING_LOCK = zlib.crc32(b"tenure:intake.recording") & 0x7FFFFFFF


def _unread(payload: int, reason: str) -> Outcome:
    return Outcome(None, None, None, "", "quarantine", None, reason, payload, "unparsed")


def ingest(
    db: Database, source: str, body: bytes, content_type: str | None = None, meta: dict[str, Any] | None = None
) -> list[Outcome]:
    """Store, then process: what every intake endpoint does."""
    payload = receive(db, source, body, content_type, meta)
    return process(db, [payload])


def replay(db: Database, payload_ids: list[int] | None = None) -> list[Outcome]:
    """Process quarantined payloads again (after a parser or a mapping rule was fixed): those named, or every
    one waiting (None). A named payload that does not wait in quarantine is refused, naming it, and nothing is
    replayed: a mistyped id must not read as "replayed, nothing to do"."""
    if payload_ids:
        table = RawPayload.__table__
        with db.reader() as s:
            states = dict(s.execute(select(table.c.id, table.c.state).where(one_of(s, table.c.id, payload_ids))).all())
        problems = [
            f"payload {pid}: there is no such payload" if pid not in states
            else f"payload {pid}: no longer waits in quarantine (it is {states[pid]})"
            for pid in dict.fromkeys(payload_ids)
            if states.get(pid) != "quarantined"
        ]
        if problems:
            raise ValidationFailed(problems)
    return process(db, payload_ids, states=("quarantined",))


# ------------------------------------------------------------------------------------------ quarantine

# the reason triage gives an alert no client matched: a payload quarantined with it waits for a mapping rule
NO_CLIENT = triage.decide("monitoring", "alert", None).reason
# a rule's label names (book/schema.py `MappingRule`): labels named otherwise cannot be written as a rule
_RULE_LABEL = re.compile(r"^[A-Za-z0-9_]+$")
# the fields a written rule is best made of, most telling first (a hostname names one machine; a subject
# changes with every alert, so it comes last)
RULE_PREFERENCE = ("hostname", "sender_domain", "sender", "label:client", "label:tenant", "label:instance")
ALERTS_SHOWN = 10  # of one payload: an Alertmanager group may hold hundreds, alike for a rule
PATTERN_LENGTH = 300  # what the mapping_rule table keeps of a pattern


def rule_fields(signal: Signal) -> dict[str, str]:
    """What a mapping rule could match in an alert, by the rule's own field names (`hostname`, `sender`,
    `sender_domain`, `subject`, `label:NAME`): only the fields the alert has."""
    hints = signal.hints()
    sender = parseaddr(str(hints["sender"] or ""))[1].strip().lower()
    found = {
        "hostname": (hints["hostname"] or "").strip().lower().rstrip("."),
        "sender": sender,
        "sender_domain": sender.rpartition("@")[2].rstrip(".") if "@" in sender else "",
        "subject": str(hints["subject"] or "").strip(),
    }
    for name, value in sorted(hints["labels"].items()):
        if _RULE_LABEL.match(name) and value is not None:
            found[f"label:{name}"] = str(value).strip()
    return {name: value[:PATTERN_LENGTH] for name, value in found.items() if value}


def suggested_rule(fields: dict[str, str]) -> dict[str, str] | None:
    """The rule a person most likely wants for an alert with these fields (a form's first values)."""
    for name in (*RULE_PREFERENCE, *sorted(fields)):
        if name in fields:
            return {"field": name, "pattern": fields[name]}
    return None


def _kind_of_wait(error: str | None) -> str:
    """Why a payload waits: no client matched it, it could not be read, or recording it failed."""
    if error and error.endswith(NO_CLIENT):  # the whole payload, or some of its alerts (`N of its alerts: …`)
        return "unmatched"
    if error and error.startswith("processing failed ("):  # `_quarantine_failed`: read, then refused on the way in
        return "failed"
    return "unreadable"


def quarantine_count(db: Database) -> int:
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(RawPayload).where(RawPayload.state == "quarantined")) or 0)


def quarantine_page(db: Database, limit: int | None = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """What waits in quarantine, oldest first (`limit` None: all from `offset`), and how many in all: each
    payload with why it waits and, when it can be read now, its alerts as a mapping rule sees them (`fields`),
    the rule a person would likely write (`suggested`), and the client the rules as they stand now place it on
    (`matches_now`: replaying it would place it there). The page, the API and `tenure intake quarantine`."""
    table = RawPayload.__table__
    waiting = table.c.state == "quarantined"
    with db.reader() as s:
        total = int(s.scalar(select(func.count()).select_from(table).where(waiting)) or 0)
        rows = s.execute(
            select(
                table.c.id,
                table.c.source,
                table.c.received_at,
                table.c.body,
                table.c.meta,
                table.c.error,
                table.c.placed,
            )
            .where(waiting)
            .order_by(table.c.id)
            .limit(limit)
            .offset(offset)
        ).all()
        read: dict[int, list[Signal]] = {}
        for row in rows:
            try:
                try:
                    signals = parse_payload(row)
                except PartlyRead as partly:  # the alerts that can be read, beside the reason the others wait
                    signals = partly.signals
                if needs_cleaning(row.source, row.body):
                    signals = [clean_fields(signal) for signal in signals]
                placed = set(row.placed or ())  # recorded already: not what waits
                read[row.id] = [signal for signal in signals if signal.fingerprint not in placed]
            except Exception:  # the reason it waits already says why it cannot be read: shown as it is
                continue
        # the rules as they stand now, read only when something waits that they could place: building them reads
        # every client, the whole cost of an empty quarantine's page
        waiting_signals = [signal for signals in read.values() for signal in signals]
        index = MatchIndex(s, waiting_signals) if waiting_signals else None
        items = []
        for row in rows:
            signals = read.get(row.id, [])
            alerts = []
            for signal in signals[:ALERTS_SHOWN]:
                fields = rule_fields(signal)
                alerts.append(
                    {
                        "title": signal.title,
                        "status": signal.status,
                        "service": signal.service,
                        "fields": fields,
                        "suggested": suggested_rule(fields),
                        "matches_now": index.client_of(signal, row.meta) if index is not None else None,
                    }
                )
            items.append(
                {
                    "payload": row.id,
                    "source": row.source,
                    "received_at": row.received_at.isoformat(),
                    "kind": _kind_of_wait(row.error),
                    "reason": row.error or "",
                    "bytes": len(row.body),
                    "alert_count": len(signals),
                    "alerts": alerts,
                }
            )
    return items, total
