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
