"""What a client pays for: agreements, prepaid blocks, retainer deposits, time, and the hours ledger."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from tenure.agreements.rules import ends_by_term
from tenure.db.base import Base, ChangeLogged
from tenure.db.types import Money, UTCDateTime


class Agreement(ChangeLogged, Base):
    __tablename__ = "agreement"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(30))  # managed|monitoring|call_before_service|retainer|adhoc
    start: Mapped[date]
    end: Mapped[date | None]
    monthly_fee: Mapped[Decimal | None] = mapped_column(Money())
    included_minutes: Mapped[int | None]
    overage_rate: Mapped[Decimal | None] = mapped_column(Money())
    hourly_rate: Mapped[Decimal | None] = mapped_column(Money())
    block_minutes_per_month: Mapped[int | None]
    covers: Mapped[list[str]] = mapped_column(default=list)
    excludes: Mapped[list[str]] = mapped_column(default=list)
    term_months: Mapped[int | None]
    # at the end of each term: `auto` renews for another term, `ends` ends the agreement (its end is computed)
    renewal: Mapped[str] = mapped_column(String(10), default="auto")
    # the fee is invoiced this many months in advance (1, 3 or 12); coverage and class stay monthly
    billing_interval_months: Mapped[int] = mapped_column(default=1)
    # fees for service days up to here were billed by the system the agreement came from
    billed_through: Mapped[date | None]


class Block(ChangeLogged, Base):
    """Prepaid hours: a purchase, with the bonus of the MSP's table fixed at purchase."""

    __tablename__ = "block"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    purchased: Mapped[date]
    minutes: Mapped[int]
    bonus_minutes: Mapped[int] = mapped_column(default=0)
    price: Mapped[Decimal] = mapped_column(Money())
    expires: Mapped[date | None]
    # imported blocks were invoiced by the system they came from; product purchases get a prepayment invoice
    imported: Mapped[bool] = mapped_column(default=False)


class RetainerDeposit(ChangeLogged, Base):
    __tablename__ = "retainer_deposit"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    date: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Money())
    imported: Mapped[bool] = mapped_column(default=False)


class TimeEntry(ChangeLogged, Base):
    __tablename__ = "time_entry"
    __table_args__ = (
        UniqueConstraint("client_id", "key"),
        Index("ix_time_entry_client_date", "client_id", "date"),
        Index("ix_time_entry_ticket_id", "ticket_id"),  # a ticket's minutes
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    date: Mapped[date]
    minutes: Mapped[int]
    work_type: Mapped[str] = mapped_column(String(30))
    technician: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(2000))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    on_hold: Mapped[bool] = mapped_column(default=False)  # logged while the retainer was at zero
    # a voided entry stays on record and counts for nothing (agreements.changes)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    void_reason: Mapped[str | None] = mapped_column(String(500))
    edit_reason: Mapped[str | None] = mapped_column(String(500))  # why the last edit was made
    # bumped by every change of what pays the entry (client, date, minutes, work type, void): an invoice
    # froze the revision it billed, so a later one is a correction (billing: an `adjustment` line)
    revision: Mapped[int] = mapped_column(default=0)


class LedgerEntry(Base):
    """One movement of a prepaid balance. Append-only: a correction is a new entry, never an edit.

    `account` is `block` (minutes, `block_id` set) or `retainer` (money in `amount`). The cause says why:
    a purchase, a time entry, a monitoring month, an expiry, an adjustment, a settlement, or a reversal
    of an earlier entry (`reverses_id`) when a back-dated entry re-allocates a month.
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        Index("ix_ledger_client_account_date", "client_id", "account", "date"),
        Index("ix_ledger_cause", "cause_type", "cause_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(10))  # block | retainer
    block_id: Mapped[int | None] = mapped_column(ForeignKey("block.id", ondelete="CASCADE"), index=True)
    # purchase|bonus|deposit|deduction|monitoring|expiry|adjustment|settlement|reversal
    kind: Mapped[str] = mapped_column(String(12))
    date: Mapped[date]
    minutes: Mapped[int] = mapped_column(default=0)
    amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    cause_type: Mapped[str | None] = mapped_column(String(30))  # time_entry|agreement|block|invoice|...
    cause_id: Mapped[int | None]
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200), default="system")


class FrozenAllocation(Base):
    """How a billing run (or the final invoice) paid a client's work: kept so re-allocation never rewrites
    what an invoice counted on. One row per client and run; released when its invoice is voided.

    `portions` are the coverage portions of the work it froze, column by column (agreements.frozen),
    `monitoring` the monitoring months it decided (agreements.service), both plain JSON.
    """

    __tablename__ = "frozen_allocation"
    __table_args__ = (UniqueConstraint("client_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(10))  # YYYY-MM, or "final"
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id", ondelete="SET NULL"), index=True)
    portions: Mapped[Any] = mapped_column(JSON, default=list)
    monitoring: Mapped[list[Any]] = mapped_column(default=list)
    # work key -> the entry's revision this row settled, for entries of a revision other than 0 and for
    # corrected entries this row credited without billing them again (no portions here): see load_worlds
    revisions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# ------------------------------------------------------------------------- values derived when written


def _previous(target: Any, name: str) -> Any:
    history = inspect(target).attrs[name].history
    return history.deleted[0] if history.deleted else getattr(target, name)


@event.listens_for(Agreement, "before_insert")
@event.listens_for(Agreement, "before_update")
def _end_by_term(mapper: Any, connection: Any, target: Agreement) -> None:
    """`renewal: ends` ends the agreement on the last day of its term: the end is computed, not typed (an
    earlier end given stays). An end equal to the one computed from the previous start, term and renewal
    was computed, so it follows them when they change (and goes when the renewal becomes `auto`)."""
    computed_before = None
    if inspect(target).has_identity:  # an update
        computed_before = ends_by_term(
            _previous(target, "start"), None, _previous(target, "term_months"), _previous(target, "renewal")
        )
    typed = None if target.end is not None and target.end == computed_before else target.end
    end = ends_by_term(target.start, typed, target.term_months, target.renewal)
    if end != target.end:
        target.end = end


# what pays a time entry: a change of any of these after an invoice billed it is a correction
_PAID_BY = ("client_id", "date", "minutes", "work_type", "voided_at")


@event.listens_for(TimeEntry, "before_update")
def _bump_revision(mapper: Any, connection: Any, target: TimeEntry) -> None:
    """Every change of what pays an entry bumps its revision, whoever makes it (an edit, a void, a book
    import): the revision an invoice froze then differs, and the next invoice carries the correction."""
    attrs = inspect(target).attrs
    if any(attrs[name].history.has_changes() for name in _PAID_BY):
        target.revision = (target.revision or 0) + 1
