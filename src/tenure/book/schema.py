"""The book's shape, validated field by field; `tenure book schema` prints it as JSON Schema."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tenure import text
from tenure.money import fmt, to_money
from tenure.vocabulary import (
    AccountKind,
    AgreementKind,
    ContactRole,
    DeviceRole,
    JobStatus,
    Service,
)


def _money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError('an amount of money is a decimal string such as "1200.00"')
    if isinstance(value, float):
        value = repr(value)  # YAML's unquoted 1200.00; exact for any whole number of cents
    amount = to_money(value)
    if amount < 0:
        raise ValueError(f"{value} is negative")
    return amount


def _hours(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("hours are a number such as 20 or 2.5")
    try:
        hours = Decimal(repr(value) if isinstance(value, float) else str(value))
    except Exception as exc:
        raise ValueError(f"{value!r} is not a number of hours") from exc
    if not hours.is_finite() or hours < 0:
        raise ValueError(f"{value!r} is not a number of hours")
    if (hours * 60) != (hours * 60).to_integral_value():
        raise ValueError(f"{value} hours is not a whole number of minutes")
    return hours


def _hours_out(hours: Decimal) -> int | str:
    return int(hours) if hours == hours.to_integral_value() else str(hours.normalize())


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    PlainSerializer(fmt, return_type=str),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["1200.00"]}),
]
Hours = Annotated[
    Decimal,
    BeforeValidator(_hours),
    PlainSerializer(_hours_out),
    WithJsonSchema({"type": ["number", "string"], "minimum": 0, "examples": [20, "2.5"]}),
]
Key = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]


def _one_line(value: Any) -> Any:
    """Names, addresses, hostnames reach mail headers and calendar lines: no CR, LF or other control character."""
    if isinstance(value, str):
        found = text.problem(value)
        if found is not None:
            raise ValueError(found)
    return value


Line = Annotated[str, BeforeValidator(_one_line)]  # one line of text (tenure.text)


def _no_password(value: str) -> str:
    if _PASSWORD_IN_URL.search(value):
        raise ValueError(
            "the address holds a password (user:password@): a book never holds secrets; give the password on "
            "standard input to `tenure account set-handover` instead"
        )
    return value


_PASSWORD_IN_URL = re.compile(r"://[^/@]*:[^/@]*@")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BonusTier(Strict):
    min_hours: Hours
    bonus_hours: Hours


class CatalogOffer(Strict):
    """An offer `report fit` replays: agreement terms of any kind, or a block size and price."""

    key: Key
    name: Line | None = None
    kind: AgreementKind | None = None
    monthly_fee: Money | None = None
    included_hours: Hours | None = None
    overage_rate: Money | None = None
    hourly_rate: Money | None = None
    block_hours_per_month: Hours | None = None
    covers: list[Service] = []
    excludes: list[Service] = []
    block_hours: Hours | None = None
    price: Money | None = None

    @model_validator(mode="after")
    def _agreement_or_block(self) -> CatalogOffer:
        is_block = self.block_hours is not None or self.price is not None
        if is_block == (self.kind is not None):
            raise ValueError("an offer has either a `kind` (agreement terms) or `block_hours` and `price`")
        if is_block and (self.block_hours is None or self.price is None):
            raise ValueError("a block offer needs both `block_hours` and `price`")
        return self


class UnpaidWork(Strict):
    """Minutes an uncovered alert costs once it reaches a person (seed 004)."""

    reach_decision_maker: int = Field(10, ge=0)
    win_approval: int = Field(15, ge=0)
    undocumented_setup: int = Field(20, ge=0)


class Msp(Strict):
    name: Line = Field(min_length=1)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    hourly_rate: Money
    payment_terms_days: int = Field(30, ge=0, le=365)
    time_rounding_minutes: int = Field(15, ge=1, le=240)
    block_bonus: list[BonusTier] = []
    low_balance_hours: Hours = Decimal(3)
    unused_prepaid: Literal["refund", "forfeit"] = "refund"
    labor_cost_per_hour: Money | None = None
    target_effective_rate: Money | None = None
    minimum_block_hours: Hours | None = None
    catalog: list[CatalogOffer] = []
    intake_address: Line | None = Field(None, pattern=r"^[^@\s+]+@[^@\s]+$")
    # the service desk's response and resolution targets, minutes, per agreement kind (or `default`) and
    # priority: {"managed": {"P1": {"response": 30, "resolution": 240}}}; what is left out keeps its default
    ticket_targets: dict[str, Any] = {}
    unpaid_work_minutes: UnpaidWork | None = None
    term_notice_days: int = Field(60, ge=0, le=366)  # the owner is told this many days before a term ends
    # days past due that an unpaid invoice's reminders go (each once); [] sends none
    reminder_days: list[int] = Field([1, 7, 14], max_length=20)

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _days_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # "1, 7, 14" (a form, a command line)
            value = [part for part in re.split(r"[\s,]+", value.strip()) if part]
        return value

    @field_validator("reminder_days")
    @classmethod
    def _days_past_due(cls, value: list[int]) -> list[int]:
        if any(not 1 <= d <= 365 for d in value):
            raise ValueError("each reminder day is a number of days past due from 1 to 365")
        return sorted(set(value))

    @field_validator("ticket_targets")
    @classmethod
    def _targets(cls, value: dict[str, Any]) -> dict[str, Any]:
        from tenure.desk.rules import check_targets

        problems = check_targets(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone (e.g. America/Chicago)") from exc
        return value


class Contact(Strict):
    name: Line = Field(min_length=1)
    email: Line | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: Line | None = None
    roles: list[ContactRole] = []


class Site(Strict):
    key: Key
    name: Line
    address: str | None = None


class Agreement(Strict):
    key: Key
    kind: AgreementKind
    start: date
    end: date | None = None
    monthly_fee: Money | None = None
    included_hours: Hours | None = None
    overage_rate: Money | None = None
    hourly_rate: Money | None = None
    block_hours_per_month: Hours | None = None
    covers: list[Service] = []
    excludes: list[Service] = []
    term_months: int | None = Field(None, ge=1)
    renewal: Literal["auto", "ends"] = "auto"  # at each term's end: renewed, or ended (its end computed)
    billing_interval_months: Literal[1, 3, 12] = 1  # the fee invoiced this many months in advance
    billed_through: date | None = None

    @model_validator(mode="after")
    def _terms_of_kind(self) -> Agreement:
        needs = {
            "managed": ("monthly_fee", "included_hours"),
            "monitoring": ("monthly_fee",),
            "call_before_service": ("monthly_fee", "hourly_rate"),
            "retainer": ("hourly_rate",),
            "adhoc": (),
        }[self.kind]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} agreement needs {', '.join(missing)}")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.renewal == "ends" and self.term_months is None:
            raise ValueError("renewal: ends needs term_months (the agreement ends with its term)")
        if self.billing_interval_months != 1 and self.kind == "monitoring" and self.block_hours_per_month:
            raise ValueError(
                "a monitoring agreement whose months may be paid from a block (block_hours_per_month) is invoiced "
                "monthly: billing_interval_months must be 1"
            )
        return self


class Block(Strict):
    key: Key
    purchased: date
    hours: Hours
    price: Money
    expires: date | None = None
    bonus_hours: Hours | None = None  # default: the MSP's block_bonus table at import

    @model_validator(mode="after")
    def _expiry_after_purchase(self) -> Block:
        if self.expires is not None and self.expires < self.purchased:
            raise ValueError(f"expires {self.expires} is before purchased {self.purchased}")
        return self


class RetainerDeposit(Strict):
    key: Key | None = None  # default: derived from the date
    date: date
    amount: Money


class RmmLink(Strict):
    vendor: Line
    id: Line


class Device(Strict):
    key: Key
    hostname: Line = Field(min_length=1)
    site: str | None = None
    role: DeviceRole = "workstation"
    os: Line | None = None
    features: list[str] = []
    checks: list[str] = []
    rmm: RmmLink | None = None
    active: bool = True


class Account(Strict):
    key: Key
    kind: AccountKind
    vendor: Line
    external_id: Line | None = None
    url: Line | None = None
    edition: Line | None = None
    service: Line | None = None
    sensors: int | None = Field(None, ge=0)
    cloud_connectors: int | None = Field(None, ge=0)
    agent_devices: int | None = Field(None, ge=0)
    scheduled_reports: int | None = Field(None, ge=0)
    users: int | None = Field(None, ge=0)
    # where offboarding copies a restic backup account's data (`tenure account set-handover`): the client's
    # repository and the tag of its snapshots; the repository's password is never in the book
    handover_repository: Line | None = Field(None, min_length=1)
    handover_tag: Line | None = Field(None, min_length=1)

    @field_validator("handover_repository")
    @classmethod
    def _repository_without_password(cls, value: str | None) -> str | None:
        return None if value is None else _no_password(value)

    @model_validator(mode="after")
    def _handover_of_restic_backup(self) -> Account:
        if self.handover_tag is not None and self.handover_repository is None:
            raise ValueError("a handover_tag needs a handover_repository")
        if self.handover_repository is not None and (self.kind, self.vendor) != ("backup", "restic"):
            raise ValueError("only a restic backup account (kind backup, vendor restic) has a handover_repository")
        return self


class BackupJob(Strict):
    key: Key
    device: str | None = None
    product: Line
    name: Line
    schedule: Line | None = None
    timezone: Line | None = None
    grace_minutes: int = Field(60, ge=0)
    ping_uuid: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{32,36}$")
    status: JobStatus = "active"


class TimeEntry(Strict):
    key: Key
    date: date
    minutes: int = Field(gt=0, le=24 * 60)
    work_type: Service
    technician: Line | None = None
    note: str | None = None
    device: str | None = None


class Charge(Strict):
    """Parts, materials or a one-off charge: billed in arrears on the next monthly invoice."""

    key: Key
    date: date
    description: Line = Field(min_length=1, max_length=500)
    quantity: Decimal | None = Field(None, gt=0)
    amount: Money  # what the client pays, in all
    cost: Money | None = None  # what it cost the MSP


class HistoricInvoice(Strict):
    number: Line | None = None  # default: derived from the client and date
    date: date
    total: Money
    recurring: bool = False
    paid: bool = True


class MappingRule(Strict):
    field: str = Field(pattern=r"^(sender|sender_domain|hostname|subject|label:[A-Za-z0-9_]+)$")
    pattern: str = Field(min_length=1)


class Client(Strict):
    key: Key
    name: Line = Field(min_length=1)
    domains: list[Line] = []
    billable_alerts: bool = False
    forward_alerts: bool = False
    low_balance_hours: Hours | None = None
    notes: str | None = None
    contacts: list[Contact] = []
    sites: list[Site] = []
    agreements: list[Agreement] = []
    blocks: list[Block] = []
    retainer_deposits: list[RetainerDeposit] = []
    devices: list[Device] = []
    accounts: list[Account] = []
    backup_jobs: list[BackupJob] = []
    time_entries: list[TimeEntry] = []
    charges: list[Charge] = []
    invoices: list[HistoricInvoice] = []
    mapping_rules: list[MappingRule] = []


class Book(Strict):
    version: Literal[1]
    msp: Msp
    clients: list[Client] = []
