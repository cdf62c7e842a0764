"""The MSP's business settings: one row, set by the book."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import Money


class MspSettings(ChangeLogged, Base):
    __tablename__ = "msp_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    hourly_rate: Mapped[Decimal] = mapped_column(Money())
    payment_terms_days: Mapped[int] = mapped_column(default=30)
    time_rounding_minutes: Mapped[int] = mapped_column(default=15)
    low_balance_minutes: Mapped[int] = mapped_column(default=180)
    unused_prepaid: Mapped[str] = mapped_column(String(10), default="refund")
    labor_cost_per_hour: Mapped[Decimal | None] = mapped_column(Money())
    target_effective_rate: Mapped[Decimal | None] = mapped_column(Money())
    intake_address: Mapped[str | None] = mapped_column(String(200))
    minimum_block_hours: Mapped[int | None]
    # [{min_hours, bonus_hours}], kept sorted by min_hours
    block_bonus: Mapped[list[Any]] = mapped_column(default=list)
    # the offers `report fit` replays
    catalog: Mapped[list[Any]] = mapped_column(default=list)
    # minutes an uncovered alert costs when it reaches a person (seed 004's 10 + 15 + 20)
    unpaid_work_minutes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # days before an agreement's term ends that the owner is told (agreements.terms)
    term_notice_days: Mapped[int] = mapped_column(default=60)
    # days past an invoice's due date that a reminder goes, each once (billing.mailing)
    reminder_days: Mapped[list[Any]] = mapped_column(default=lambda: [1, 7, 14])
    # response and resolution targets, minutes, per agreement kind (or "default") and priority:
    # {"managed": {"P1": {"response": 30, "resolution": 240}, ...}, ...}; empty: desk.rules.DEFAULT_TARGETS
    ticket_targets: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def changelog_label(self) -> str:
        return self.name


class Meta(Base):
    """Small facts about this database (the demo's anchor month, say)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(2000))
