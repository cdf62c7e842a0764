"""Tickets: what reaches a person. Opened by triage, by maintenance, by mail, or by hand (desk.service).

The vocabularies (kind, priority, status) are `tenure.vocabulary`'s TICKET_*; the rules are `desk.rules`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import UTCDateTime


class Ticket(ChangeLogged, Base):
    """A ticket's row says who opened it and when (`opened_by`, `opened_at`): its creation is not written to the
    change log again (intake opens thousands in a storm), and its history tells it from the row. Every change
    after it is logged."""

    __tablename__ = "ticket"
    __changelog_creates__ = False
    __table_args__ = (
        Index("ix_ticket_client_status", "client_id", "status"),
        # the queue and GET /tickets: filtered by status (and assignee or priority), newest first
        Index("ix_ticket_status_id", "status", "id"),
        Index("ix_ticket_assignee_status_id", "assignee_id", "status", "id"),
        Index("ix_ticket_priority_status_id", "priority", "status", "id"),
        # breached: still running against a due time that has passed
        Index("ix_ticket_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # vocabulary.TICKET_KINDS
    status: Mapped[str] = mapped_column(String(20), default="new")  # vocabulary.TICKET_STATUSES
    title: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str | None] = mapped_column(String(200))
    billable: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alert_count: Mapped[int] = mapped_column(default=0)
    # device and assignee carry no foreign key: SQLite cannot add one to an existing table without copying it
    # (migration 0013); a user is deactivated, never deleted, and a device's ticket outer-joins it
    device_id: Mapped[int | None] = mapped_column()
    description: Mapped[str | None] = mapped_column(Text())
    priority: Mapped[str] = mapped_column(String(2), default="P3")  # vocabulary.TICKET_PRIORITIES
    assignee_id: Mapped[int | None] = mapped_column()
    # the targets of the MSP's settings for the ticket's priority and the client's agreement kind, set when opened
    # (and again when the priority changes): first response by `respond_by`, resolved by `due_at`
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # who opened it (the change log's actor: "user:terry", "intake"...); None for a ticket opened before
    # migration 0021, whose creation the change log holds
    opened_by: Mapped[str | None] = mapped_column(String(200))

    def changelog_label(self) -> str:
        return f"#{self.id} {self.title}"[:200]


class TicketNote(Base):
    """A note on a ticket: internal (staff only) or public (the client sees it; mail in lands here as public).
    Append-only: a note is never edited."""

    __tablename__ = "ticket_note"
    __table_args__ = (Index("ix_ticket_note_ticket_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    author: Mapped[str] = mapped_column(String(200))  # a user's name, or a client contact's address
    public: Mapped[bool] = mapped_column(default=False)
    text: Mapped[str] = mapped_column(Text())
