"""The book's shape, validated field by field; `tenure book schema` prints it as JSON Schema."""

from __future__ import annotations

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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BonusTier(Strict):
    min_hours: Hours
    bonus_hours: Hours


class CatalogOffer(Strict):
    """An offer `report fit` replays: agreement terms of any kind, or a block size and price."""

    key: Key
    name: str | None = None
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
    name: str = Field(min_length=1)
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
    intake_address: str | None = Field(None, pattern=r"^[^@\s+]+@[^@\s]+$")
    unpaid_work_minutes: UnpaidWork | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone (e.g. America/Chicago)") from exc
        return value


class Contact(Strict):
    name: str = Field(min_length=1)
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = None
    roles: list[ContactRole] = []


class Site(Strict):
    key: Key
    name: str
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
    vendor: str
    id: str


class Device(Strict):
    key: Key
    hostname: str = Field(min_length=1)
    site: str | None = None
    role: DeviceRole = "workstation"
    os: str | None = None
    features: list[str] = []
    checks: list[str] = []
    rmm: RmmLink | None = None
    active: bool = True


class Account(Strict):
    key: Key
    kind: AccountKind
    vendor: str
    external_id: str | None = None
    url: str | None = None
    edition: str | None = None
    service: str | None = None
    sensors: int | None = Field(None, ge=0)
    cloud_connectors: int | None = Field(None, ge=0)
    agent_devices: int | None = Field(None, ge=0)
    scheduled_reports: int | None = Field(None, ge=0)
    users: int | None = Field(None, ge=0)


class BackupJob(Strict):
    key: Key
    device: str | None = None
    product: str
    name: str
    schedule: str | None = None
    timezone: str | None = None
    grace_minutes: int = Field(60, ge=0)
    ping_uuid: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{32,36}$")
    status: JobStatus = "active"


class TimeEntry(Strict):
    key: Key
    date: date
    minutes: int = Field(gt=0, le=24 * 60)
    work_type: Service
    technician: str | None = None
    note: str | None = None
    device: str | None = None


class HistoricInvoice(Strict):
    number: str | None = None  # default: derived from the client and date
    date: date
    total: Money
    recurring: bool = False
    paid: bool = True


class MappingRule(Strict):
    field: str = Field(pattern=r"^(sender|sender_domain|hostname|subject|label:[A-Za-z0-9_]+)$")
    pattern: str = Field(min_length=1)


class Client(Strict):
    key: Key
    name: str = Field(min_length=1)
    domains: list[str] = []
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
    invoices: list[HistoricInvoice] = []
    mapping_rules: list[MappingRule] = []


class Book(Strict):
    version: Literal[1]
    msp: Msp
    clients: list[Client] = []
