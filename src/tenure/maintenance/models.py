"""Proactive maintenance: recurring tasks per agreement kind (the default plan) or per client."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import Money, UTCDateTime


class MaintenanceTask(ChangeLogged, Base):
    __tablename__ = "maintenance_task"
    __table_args__ = (UniqueConstraint("client_id", "agreement_kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # null client: part of the default plan for `agreement_kind`
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    agreement_kind: Mapped[str | None] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    service: Mapped[str] = mapped_column(String(30), default="maintenance")
    schedule: Mapped[str] = mapped_column(String(200))  # RRULE:... or a cron line
    estimate_minutes: Mapped[int] = mapped_column(default=30)
    active: Mapped[bool] = mapped_column(default=True)
    last_done: Mapped[date | None]
    # who does it (the technician's calendar feed); none: the client's usual technician
    technician: Mapped[str | None] = mapped_column(String(100))


class MaintenanceDecision(Base):
    """A call-before-service client's answer to one item of a monthly notice."""

    __tablename__ = "maintenance_decision"
    __table_args__ = (UniqueConstraint("client_id", "task_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(ForeignKey("maintenance_task.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    answer: Mapped[str | None] = mapped_column(String(10))  # approved | deferred | superseded
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    # the monthly notice that listed the item, what it was priced at, and when and how the client answered
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notice.id", ondelete="SET NULL"))
    minutes: Mapped[int | None]
    price: Mapped[Decimal | None] = mapped_column(Money())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(1000))


class MaintenanceOccurrence(Base):
    """One occurrence of a task for a client, handled once (a ticket, for a managed client)."""

    __tablename__ = "maintenance_occurrence"
    __table_args__ = (UniqueConstraint("client_id", "task_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(ForeignKey("maintenance_task.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # when its ticket was closed: the task done (desk.service.close_ticket)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CalendarFeed(ChangeLogged, Base):
    """The generation of a client's or a technician's calendar feed: its URLs carry it (signed), and rotating
    it (`tenure maintenance calendar-url --rotate`) makes every URL handed out before answer 404. No row:
    generation 0, the URLs of before rotation existed. Keyed by name, not by id, so a client deleted and
    made again under the same key does not bring old URLs back to life."""

    __tablename__ = "calendar_feed"
    __table_args__ = (UniqueConstraint("subject_kind", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(12))  # client | technician
    subject: Mapped[str] = mapped_column(String(200))  # the client's key; the technician's name, casefolded
    generation: Mapped[int] = mapped_column(default=0)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def changelog_label(self) -> str:
        return f"{self.subject_kind} {self.subject}"
