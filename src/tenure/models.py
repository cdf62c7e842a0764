"""Every table, imported once so the metadata (and Alembic) sees the whole data model."""

from tenure.accounts.models import ApiToken, User
from tenure.agreements.models import (
    Agreement,
    Block,
    FrozenAllocation,
    LedgerEntry,
    RetainerDeposit,
    TimeEntry,
)
from tenure.billing.models import Charge, Invoice, InvoiceLine
from tenure.clients.models import BackupJob, Client, Contact, Device, Site, VendorAccount
from tenure.db.changelog import ObjectChange
from tenure.intake.models import Alert, AlertHistory, BackupRun, FactsVersion, MappingRule, RawPayload
from tenure.maintenance.models import CalendarFeed, MaintenanceDecision, MaintenanceTask
from tenure.msp.models import Meta, MspSettings
from tenure.notices.models import Notice
from tenure.offboarding.models import OffboardingRun, OffboardingStep, StepAttempt
from tenure.triage.models import Ticket

__all__ = [
    "Agreement",
    "Alert",
    "AlertHistory",
    "ApiToken",
    "BackupJob",
    "BackupRun",
    "Block",
    "CalendarFeed",
    "Charge",
    "Client",
    "Contact",
    "Device",
    "FactsVersion",
    "FrozenAllocation",
    "Invoice",
    "InvoiceLine",
    "LedgerEntry",
    "MaintenanceDecision",
    "MaintenanceTask",
    "MappingRule",
    "Meta",
    "MspSettings",
    "Notice",
    "ObjectChange",
    "OffboardingRun",
    "OffboardingStep",
    "RawPayload",
    "RetainerDeposit",
    "Site",
    "StepAttempt",
    "Ticket",
    "TimeEntry",
    "User",
    "VendorAccount",
]
