"""What arrives: raw payloads (stored before they are acknowledged), alerts, their history, mapping rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import UTCDateTime
from tenure.triage.models import Ticket  # at run time: `Alert.ticket` names it, and mappers need it then


class RawPayload(Base):
    """Exactly what was received. Written and committed before any answer goes back to the sender."""

    __tablename__ = "raw_payload"
    __table_args__ = (Index("ix_raw_payload_state", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # alertmanager|email|event|tactical|restic|ping|smtp
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # envelope, path, remote address
    state: Mapped[str] = mapped_column(String(12), default="stored")  # stored|processed|quarantined
    error: Mapped[str | None] = mapped_column(String(2000))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a payload in quarantine for some of its alerts only: the fingerprints already recorded (a replay skips)
    placed: Mapped[list[str] | None] = mapped_column()


class Alert(Base):
    """One deduplicated alert: repeats of the same fingerprint count here, they don't re-ticket."""

    __tablename__ = "alert"
    __table_args__ = (
        # dedupe: a fingerprint's open alert. Partial, so it holds only what is firing: a batch's new alerts
        # touch a small index, not one page per alert of a table with every alert ever seen
        Index(
            "ix_alert_open",
            "client_id",
            "fingerprint",
            sqlite_where=text("status = 'firing'"),
            postgresql_where=text("status = 'firing'"),
        ),
        Index("ix_alert_client_received", "client_id", "first_seen"),
        Index("ix_alert_decision", "decision", "first_seen"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    backup_job_id: Mapped[int | None] = mapped_column(ForeignKey("backup_job.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(200))
    service: Mapped[str] = mapped_column(String(30))  # the service an agreement must cover
    severity: Mapped[str] = mapped_column(String(12), default="warning")
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="firing")  # firing | resolved
    decision: Mapped[str] = mapped_column(String(12))  # ticket|quote|forward|suppress|orphaned|pending
    reason: Mapped[str] = mapped_column(String(500))
    # the ticket and the payload are referenced without a foreign key (migration 0022): neither is ever deleted,
    # intake writes both in the alert's own transaction, and on PostgreSQL each key checked is a query per row
    ticket_id: Mapped[int | None] = mapped_column()
    count: Mapped[int] = mapped_column(default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    raw_payload_id: Mapped[int | None] = mapped_column()
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    ticket: Mapped[Ticket | None] = relationship(primaryjoin="foreign(Alert.ticket_id) == Ticket.id")
    # what changed after the alert opened (its resolve); the opening is the alert row itself: `timeline`
    history: Mapped[list[AlertHistory]] = relationship(
        primaryjoin="Alert.id == foreign(AlertHistory.alert_id)",
        cascade="all, delete-orphan",
        order_by="AlertHistory.id",
    )

    @property
    def timeline(self) -> list[tuple[datetime, str, str | None]]:
        """(time, status, note) from the opening on: first seen, `firing`, with the decision made then (which
        never changes), then every status change recorded since."""
        opening = (self.first_seen, "firing", self.decision)
        return [opening, *((h.time, h.status, h.note) for h in self.history)]


class AlertHistory(Base):
    """Written only when an open alert's status changes (Alerta's model), not for every repeat, and not for
    its opening, which the alert row holds (`Alert.timeline`)."""

    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(index=True)  # no foreign key: alerts are never deleted (migration 0022)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(String(500))


class BackupRun(Base):
    """One parsed backup result: job, device, status, times, size and the rule that recognised it."""

    __tablename__ = "backup_run"
    __table_args__ = (Index("ix_backup_run_job_time", "backup_job_id", "finished_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    backup_job_id: Mapped[int | None] = mapped_column(ForeignKey("backup_job.id", ondelete="CASCADE"))
    raw_payload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_payload.id", ondelete="SET NULL"))
    product: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(10))  # success|warning|failure|started
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    rule: Mapped[str] = mapped_column(String(100))


class MappingRule(ChangeLogged, Base):
    """A per-client rule: payloads whose `field` matches `pattern` belong to the client."""

    __tablename__ = "mapping_rule"
    __table_args__ = (UniqueConstraint("client_id", "field", "pattern"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(100))  # sender | hostname | label:<name> | subject
    pattern: Mapped[str] = mapped_column(String(300))


class FactsVersion(Base):
    """One row counting the changes to what matching and triage read of clients (the clients themselves, their
    agreements, contacts, mapping rules and offboarding): database triggers (migration 0023) add to it for every
    transaction that writes those tables, whoever writes them (PostgreSQL one at commit, SQLite one a row).
    Intake keeps what it read of them between batches (`tenure.intake.matching`) for as long as this row says
    nothing changed; `instance`, drawn when the row is made, tells one database from another behind the same
    address."""

    __tablename__ = "facts_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(BigInteger)
