"""Tickets: what reaches a person. Opened by triage, by maintenance, or by hand."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import UTCDateTime


class Ticket(ChangeLogged, Base):
    __tablename__ = "ticket"
    __table_args__ = (
        Index("ix_ticket_client_status", "client_id", "status"),
        Index("ix_ticket_fingerprint", "fingerprint", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # alert | quote | maintenance | request | offboarding
    # open | awaiting_approval | closed | handed_over
    status: Mapped[str] = mapped_column(String(20), default="open")
    title: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str | None] = mapped_column(String(200))
    billable: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alert_count: Mapped[int] = mapped_column(default=0)

    def changelog_label(self) -> str:
        return f"#{self.id} {self.title}"[:200]
