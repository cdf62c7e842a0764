"""The closed vocabularies of DOMAIN.md, in one place for the book, the rules and the shells."""

from typing import Literal, get_args

AgreementKind = Literal["managed", "monitoring", "call_before_service", "retainer", "adhoc"]
Service = Literal[
    "monitoring",
    "backup_monitoring",
    "patching",
    "antivirus",
    "maintenance",
    "remote_support",
    "onsite",
    "incident",
    "project",
    "malware_cleanup",
    "training",
    "hardware",
    "network_security",
    "hosting",
]
ContactRole = Literal["primary", "billing", "technical", "admin"]
DeviceRole = Literal["server", "workstation", "network", "other"]
AccountKind = Literal["rmm", "siem", "backup", "hosted", "other"]
JobStatus = Literal["active", "pending", "paused", "retired"]
ClientClass = Literal["former", "agreement", "prepaid", "adhoc", "lapsed", "prospect"]

AGREEMENT_KINDS: tuple[str, ...] = get_args(AgreementKind)
SERVICES: tuple[str, ...] = get_args(Service)
CLIENT_CLASSES: tuple[str, ...] = get_args(ClientClass)
FEE_KINDS = ("managed", "monitoring", "call_before_service")  # kinds that carry a monthly fee

# the service desk (DOMAIN.md "The service desk", INTERFACE.md "Tickets")
TicketKind = Literal["incident", "request", "maintenance", "project", "alert"]
TicketPriority = Literal["P1", "P2", "P3", "P4"]
TicketStatus = Literal["new", "in_progress", "waiting_on_client", "awaiting_approval", "resolved", "closed"]
TICKET_KINDS: tuple[str, ...] = get_args(TicketKind)
TICKET_PRIORITIES: tuple[str, ...] = get_args(TicketPriority)
TICKET_STATUSES: tuple[str, ...] = get_args(TicketStatus)
# not closed: what offboarding closes, what a resolved alert closes, what "open tickets" counts
OPEN_TICKET_STATUSES: tuple[str, ...] = tuple(s for s in TICKET_STATUSES if s != "closed")
# waiting on someone: the queue by default, and what the resolution target still runs for
ACTIVE_TICKET_STATUSES: tuple[str, ...] = ("new", "in_progress", "waiting_on_client", "awaiting_approval")
DEFAULT_TICKET_PRIORITY = "P3"

# what intake takes from outside (the endpoints, `tenure intake --source`)
INTAKE_SOURCES = ("alertmanager", "email", "event", "tactical", "restic", "ping")
# payloads Tenure makes itself: the missed-backup sweep, and restic snapshots read by `tenure sync backups`
INTERNAL_INTAKE_SOURCES = ("missed", "snapshot")
