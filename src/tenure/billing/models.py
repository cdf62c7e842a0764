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
    # fee|catch_up|credit|monitoring_block|overage|hourly|retainer|charge|adjustment|block_purchase|deposit|
    # refund|forfeit
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


class Charge(ChangeLogged, Base):
    """Parts, materials or any one-off charge: billed in arrears on the next monthly invoice, exactly once.

    `invoice_id` is the invoice that billed it (cleared when that invoice is voided, so the next run bills it
    again); a charge voided after it was billed is credited on the next invoice, `credit_invoice_id`.
    """

    __tablename__ = "charge"
    __table_args__ = (UniqueConstraint("client_id", "key"), Index("ix_charge_client_date", "client_id", "date"))

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    date: Mapped[date]
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal | None] = mapped_column(DecimalText())
    amount: Mapped[Decimal] = mapped_column(Money())  # what the client pays, in all
    cost: Mapped[Decimal | None] = mapped_column(Money())  # what it cost the MSP (the owner's view)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    void_reason: Mapped[str | None] = mapped_column(String(500))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id", ondelete="SET NULL"), index=True)
    credit_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id", ondelete="SET NULL"))


class InvoiceMail(Base):
    """Each time an invoice was mailed (on issue, again on request, a reminder): a record, never edited.
    A reminder's `days` (past due) is unique per invoice, so each reminder goes once."""

    __tablename__ = "invoice_mail"
    __table_args__ = (UniqueConstraint("invoice_id", "kind", "days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id", ondelete="CASCADE"), index=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notice.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(10))  # issued | again | reminder
    days: Mapped[int | None]  # a reminder: days past due it is for
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str | None] = mapped_column(String(200))
