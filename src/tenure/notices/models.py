"""Notices: everything said to a client or to staff, kept; mail waits in the outbox until sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db.base import Base
from tenure.db.types import UTCDateTime


class Notice(Base):
    __tablename__ = "notice"
    __table_args__ = (Index("ix_notice_state", "state", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    # low_balance|balance_zero|retainer_zero|on_hold|monthly_maintenance|coverage_statement|alert_forward|antivirus|
    # vendor|handover|block_request (to staff)|invoice|invoice_reminder|statement (billing.mailing)|
    # quote|quote_answer (to staff)|ticket_opened (desk.mail)
    kind: Mapped[str] = mapped_column(String(30))
    # one notice per cause: a threshold crossing, a month, a step (a rerun finds it)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    to: Mapped[list[str]] = mapped_column(default=list)
    cc: Mapped[list[str]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(10), default="waiting")  # waiting|sending|sent|failed|kept
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(String(1000))
    # set when first claimed for sending, derived from the id, kept for every retry: receivers dedupe on it
    message_id: Mapped[str | None] = mapped_column(String(200))
