"""Offboarding runs and their steps. Steps are rows; the runner claims and executes them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import UTCDateTime


class OffboardingRun(ChangeLogged, Base):
    __tablename__ = "offboarding_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(10), default="planned")  # planned|running|waiting|done|failed
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    end_of_service: Mapped[date]
    reason: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lessons: Mapped[dict[str, Any]] = mapped_column(default=dict)  # reason codes, what to change
    owner: Mapped[str | None] = mapped_column(String(200))  # seed 003's activation project manager


class OffboardingStep(Base):
    __tablename__ = "offboarding_step"
    __table_args__ = (
        UniqueConstraint("run_id", "key"),
        # the runner's claim: due steps in order
        Index("ix_step_due", "state", "not_before"),
        Index("ix_step_run_state", "run_id", "state"),  # the run's state: which states its steps are in
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("offboarding_run.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    position: Mapped[int]
    phase: Mapped[int]
    title: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(10))  # auto|manual|approval|wait|notice|verify
    action: Mapped[str | None] = mapped_column(String(60))  # the connector call an auto step makes
    depends_on: Mapped[list[str]] = mapped_column(default=list)
    # the reverse of depends_on: the steps that may become ready when this one finishes (flow.advance)
    dependants: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    target: Mapped[dict[str, Any]] = mapped_column(default=dict)
    instructions: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(10), default="pending")
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    note: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    done_by: Mapped[str | None] = mapped_column(String(200))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assignee: Mapped[str | None] = mapped_column(String(200))  # who is to do it, when someone is named
    # ends a service the client pays for: neither run nor ticked done before this moment (rules: not_before)
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StepAttempt(Base):
    __tablename__ = "step_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("offboarding_step.id", ondelete="CASCADE"), index=True)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(10))  # done|retry|failed|waiting
    error: Mapped[str | None] = mapped_column(String(2000))
    calls: Mapped[list[Any]] = mapped_column(default=list)  # connector calls made, for the audit
