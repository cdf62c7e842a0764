"""Invoices and their lines. An issued invoice is never edited: it is voided and replaced."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import DecimalText, Money, UTCDateTime


class Invoice(ChangeLogged, Base):
    __tablename__ = "invoice"
    __table_args__ = (
        Index("ix_invoice_client_date", "client_id", "date"),
        # the billing run's key: one monthly invoice per client and period (a rerun finds it)
        Index("ix_invoice_period", "period", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(50), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # monthly | prepayment | final
    period: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM for monthly invoices
    date: Mapped[date]
    due_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(8), default="draft")  # draft|issued|paid|void
    total: Mapped[Decimal] = mapped_column(Money())
    # history brought over from a former system (book `invoices:`): no lines, counts for the class
    imported: Mapped[bool] = mapped_column(default=False)
    recurring: Mapped[bool] = mapped_column(default=False)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.position"
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_line"
    __table_args__ = (UniqueConstraint("invoice_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    # fee|catch_up|credit|monitoring_block|overage|hourly|retainer|block_purchase|deposit|refund|forfeit
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(DecimalText())
    unit_price: Mapped[Decimal] = mapped_column(Money())
    amount: Mapped[Decimal] = mapped_column(Money())
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreement.id", ondelete="SET NULL"), index=True)
    service_from: Mapped[date | None]
    service_to: Mapped[date | None]
    minutes: Mapped[int | None]

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
