"""Clients and their inventory: contacts, sites, devices, vendor accounts, backup jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from tenure.clients.rules import host_key
from tenure.db.base import Base, ChangeLogged
from tenure.db.types import UTCDateTime


class Client(ChangeLogged, Base):
    __tablename__ = "client"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    domains: Mapped[list[str]] = mapped_column(default=list)
    # triage: what to do with alerts no agreement covers (DOMAIN.md's quote / forward)
    billable_alerts: Mapped[bool] = mapped_column(default=False)
    forward_alerts: Mapped[bool] = mapped_column(default=False)
    low_balance_minutes: Mapped[int | None]
    notes: Mapped[str | None] = mapped_column(String(4000))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # kept for its history, out of lists

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="client", cascade="all, delete-orphan", order_by="Contact.id"
    )
    sites: Mapped[list[Site]] = relationship(back_populates="client", cascade="all, delete-orphan", order_by="Site.id")


class Contact(ChangeLogged, Base):
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    roles: Mapped[list[str]] = mapped_column(default=list)  # primary | billing | technical | admin

    client: Mapped[Client] = relationship(back_populates="contacts")

    def changelog_label(self) -> str:
        return self.email or self.name


class Site(ChangeLogged, Base):
    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))

    client: Mapped[Client] = relationship(back_populates="sites")


def _host_key_of_row(context: DefaultExecutionContext) -> str:
    return host_key(context.get_current_parameters()["hostname"])


class Device(ChangeLogged, Base):
    __tablename__ = "device"
    __table_args__ = (
        Index("ix_device_hostname", "hostname"),
        Index("ix_device_host_key", "host_key"),
        Index("ix_device_rmm", "rmm_vendor", "rmm_id"),
    )
    __changelog_exclude__ = ("host_key",)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"))
    key: Mapped[str] = mapped_column(String(100), unique=True)
    hostname: Mapped[str] = mapped_column(String(200))
    # what alert intake looks a hostname up by (any case, with or without its domain): set with the hostname,
    # by the ORM or by a Core insert alike
    host_key: Mapped[str] = mapped_column(String(200), default=_host_key_of_row)
    role: Mapped[str] = mapped_column(String(20), default="workstation")  # server|workstation|network|other
    os: Mapped[str | None] = mapped_column(String(200))
    features: Mapped[list[str]] = mapped_column(default=list)  # patching, remote_control, antivirus, ...
    checks: Mapped[list[str]] = mapped_column(default=list)
    rmm_vendor: Mapped[str | None] = mapped_column(String(50))
    rmm_id: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @validates("hostname")
    def _keep_host_key(self, _: str, hostname: str) -> str:
        self.host_key = host_key(hostname)
        return hostname


class VendorAccount(ChangeLogged, Base):
    """A client's account at a vendor: RMM, SIEM, backup, hosted service."""

    __tablename__ = "vendor_account"
    __changelog_redact__ = ("secret", "handover_secret")

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # rmm | siem | backup | hosted | other
    vendor: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(500))
    # vendor-specific fields kept as the book gives them (edition, service, sensors, users, handover_repository,
    # handover_tag, ...): never a secret, so the book can carry them all
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted API key, never in clear
    # the password of the hand-over repository (`tenure account set-handover`), encrypted; none: the secret's
    handover_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(default=True)


class BackupJob(ChangeLogged, Base):
    __tablename__ = "backup_job"
    # readings and the sweep's bookkeeping, not decisions: each result is a backup_run row of its own, and a
    # change-log row per result or per sweep would bury the job's activation, pause and schedule changes
    __changelog_exclude__ = ("last_result_at", "last_status", "next_expected_at", "last_missed_expected")

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"), index=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    product: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[str | None] = mapped_column(String(200))  # cron ("0 22 * * *") or interval ("PT24H")
    timezone: Mapped[str | None] = mapped_column(String(64))
    grace_minutes: Mapped[int] = mapped_column(default=60)
    ping_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active|pending|paused|retired
    last_result_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(10))  # success|warning|failure|started
    next_expected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # the missed-backup sweep: when the job was activated, and the last expected run it reported missed
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_missed_expected: Mapped[datetime | None] = mapped_column(UTCDateTime())
