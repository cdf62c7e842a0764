"""Forms that change a client and what it holds, in the book's own shape.

Each form is a list of `Field`s; `body_of` turns what a browser sent into the object's shape in the book
(`book/schema.py`), which the services validate exactly as they validate the API's bodies and imported
books. A refusal's problems (`field: message`) are sorted back to the fields they name (`sort_problems`),
and the form is shown again with what the person typed (`FormState`).

Browsers send nothing for an unticked box: a form names its fields, so an absent box is `false` (a
single box) or `[]` (a set of boxes). A blank field is absent when creating, and cleared (`null`) when
changing. A list whose members did not change keeps its order, so a billed agreement's `covers` is not
"changed" by the order its boxes are listed in.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from tenure.vocabulary import (
    AGREEMENT_KINDS,
    SERVICES,
    TICKET_KINDS,
    TICKET_PRIORITIES,
    AccountKind,
    ContactRole,
    DeviceRole,
)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | textarea | date | number | decimal | select | checks | check | words
    options: tuple[str, ...] = ()  # select, checks
    source: str | None = None  # a select's options from the page: "sites", "devices"
    required: bool = False
    new_only: bool = False  # given once, when the object is made (its key)
    hint: str = ""
    wide: bool = False  # takes a whole row of the form

    @property
    def blank_option(self) -> bool:
        return self.kind == "select" and not self.required


KEY_HINT = "letters, digits and . _ : @ - ; it never changes"
MONEY = "decimal"

CLIENT_NEW = (
    Field("key", "key", required=True, hint=KEY_HINT),
    Field("name", "name", required=True),
    Field("domains", "domains", "words", hint="mail domains, separated by spaces or commas", wide=True),
)
CLIENT = (
    Field("name", "name", required=True),
    Field("domains", "domains", "words", hint="separated by spaces or commas"),
    Field("low_balance_hours", "low balance at (hours)", "decimal", hint="blank: the MSP's default"),
    Field("billable_alerts", "alerts are billable", "check"),
    Field("forward_alerts", "forward alerts to the client", "check"),
    Field("notes", "notes", "textarea", wide=True),
)
AGREEMENT = (
    Field("key", "key", required=True, new_only=True, hint=KEY_HINT),
    Field("kind", "kind", "select", AGREEMENT_KINDS, required=True),
    Field("start", "first day", "date", required=True),
    Field("end", "last day", "date", hint="blank: open-ended"),
    Field("monthly_fee", "monthly fee", MONEY),
    Field("included_hours", "included hours", "decimal"),
    Field("overage_rate", "overage rate", MONEY),
    Field("hourly_rate", "hourly rate", MONEY),
    Field("block_hours_per_month", "block hours a month", "decimal", hint="monitoring paid from a block"),
    Field("term_months", "term (months)", "number"),
    Field("covers", "covers", "checks", SERVICES, wide=True),
    Field("excludes", "excludes", "checks", SERVICES, wide=True),
)
EFFECTIVE = Field(
    "effective",
    "new terms from",
    "date",
    hint="this agreement was billed: a change to its money terms starts on a date; it ends the day before",
)
END = Field("end", "last day", "date", required=True, hint="the agreement covers work up to and including this day")
DEVICE = (
    Field("key", "key", required=True, new_only=True, hint=KEY_HINT),
    Field("hostname", "hostname", required=True),
    Field("site", "site", "select", source="sites"),
    Field("role", "role", "select", get_args(DeviceRole), required=True),
    Field("os", "operating system"),
    Field("features", "features", "words", hint="e.g. patching, remote_control, backup"),
    Field("checks", "checks", "words", hint="e.g. disk_space, cpu, backup_job"),
)
CONTACT = (
    Field("name", "name", required=True),
    Field("email", "e-mail"),
    Field("phone", "phone"),
    Field("roles", "roles", "checks", get_args(ContactRole), wide=True),
)
SITE = (
    Field("key", "key", required=True, new_only=True, hint=KEY_HINT),
    Field("name", "name", required=True),
    Field("address", "address", "textarea", wide=True),
)
ACCOUNT = (
    Field("key", "key", required=True, new_only=True, hint=KEY_HINT),
    Field("kind", "kind", "select", get_args(AccountKind), required=True),
    Field("vendor", "vendor", required=True, hint="e.g. tacticalrmm, blumira, restic, microsoft365"),
    Field("external_id", "id at the vendor"),
    Field("url", "address (URL)"),
    Field("edition", "edition"),
    Field("service", "service"),
    Field("users", "users", "number"),
    Field("sensors", "sensors", "number"),
    Field("cloud_connectors", "cloud connectors", "number"),
    Field("agent_devices", "agent devices", "number"),
    Field("scheduled_reports", "scheduled reports", "number"),
)
BACKUP_JOB = (
    Field("key", "key", required=True, new_only=True, hint=KEY_HINT),
    Field("name", "name", required=True),
    Field("product", "product", required=True, hint="e.g. veeam, restic, synology"),
    Field("device", "device", "select", source="devices"),
    Field("schedule", "schedule", hint='cron, e.g. "0 22 * * *"'),
    Field("timezone", "time zone", hint="blank: the MSP's"),
    Field("grace_minutes", "grace (minutes)", "number"),
    Field(
        "status",
        "status",
        "select",
        ("active", "pending", "paused"),
        required=True,
        new_only=True,
        hint="pending: known, not watched yet",
    ),
)

# the client's time tab: correcting a time entry (agreements/changes.py) and charges (billing/charges.py)
TIME_EDIT = (
    Field("minutes", "minutes", "number", required=True),
    Field("date", "date", "date", required=True),
    Field("work_type", "work type", "select", SERVICES, required=True),
    Field("technician", "technician"),
    Field("client", "client", required=True, hint="another client's key moves the entry (and what it costs) there"),
    Field("note", "note", "textarea", wide=True),
    Field("reason", "reason for the change", wide=True, hint="kept with the entry and in its history"),
)
TIME_VOID = (
    Field("reason", "why it is voided", required=True, wide=True,
          hint="the entry stays on record, struck through, and counts for nothing"),
)  # fmt: skip
CHARGE = (
    Field("description", "description", required=True, wide=True, hint="what is charged: a part, materials…"),
    Field("amount", "amount", MONEY, required=True, hint="what the client pays, in all"),
    Field("cost", "cost", MONEY, hint="what it cost you"),
    Field("date", "date", "date", hint="blank: today"),
    Field("quantity", "quantity", "decimal"),
)
CHARGE_VOID = (Field("reason", "why it is voided", required=True),)

# logging time (the client's time tab; a ticket's page, without the ticket), a ticket opened by hand (a phone
# call), a note on a ticket and a quote: refused, each is shown again as it was typed (web/time.py, web/desk.py)
TIME_LOG = (
    Field("minutes", "minutes", "number", required=True),
    Field("work_type", "work", "select", SERVICES, required=True),
    Field("day", "date", "date", hint="blank: today"),
    Field("ticket", "ticket", hint="its number, when the work was on one"),
    Field("note", "note", wide=True),
)
TICKET_TIME = tuple(f for f in TIME_LOG if f.name != "ticket")
TICKET_NEW = (
    Field("client", "client", required=True, hint="the client's key"),
    Field("title", "title", required=True, wide=True),
    Field("kind", "kind", "select", TICKET_KINDS, required=True),
    Field("priority", "priority", "select", TICKET_PRIORITIES, required=True),
    Field("device", "device", hint="key or hostname"),
    Field("description", "description", "textarea", wide=True),
    Field("assign_me", "assign to me", "check"),
)
TICKET_NOTE = (
    Field("text", "note", "textarea", required=True, wide=True),
    Field("public", "public (the client sees it)", "check"),
)
QUOTE = (
    Field("amount", "price", MONEY, required=True, hint="e.g. 150.00"),
    Field("description", "for", required=True, wide=True, hint="the work, as the client reads it"),
)

# the agreements tab: buying a block and recording a retainer deposit (purchases: never changed nor deleted here)
BLOCK = (
    Field("key", "key", required=True, new_only=True, hint=KEY_HINT),
    Field("purchased", "purchased", "date", required=True),
    Field("hours", "hours", "decimal", required=True),
    Field("price", "price", MONEY, required=True),
    Field("expires", "expires", "date", hint="blank: never"),
)
RETAINER_DEPOSIT = (
    Field("date", "date", "date", required=True),
    Field("amount", "amount", MONEY, required=True),
    Field("key", "key", new_only=True, hint="blank: named by its day"),
)
# the devices tab: the client's intake mapping rules (an e-mail or an alert matching one is this client's)
MAPPING_RULE = (
    Field("field", "field", required=True, hint="sender, sender_domain, hostname, subject or label:NAME"),
    Field("pattern", "pattern", required=True, wide=True),
)

# the settings page: the MSP's own settings (book/schema.py `Msp`, without its tables) and its catalog of offers
MSP = (
    Field("name", "name", required=True),
    Field("currency", "currency", required=True, hint="three capital letters, e.g. USD"),
    Field("timezone", "time zone", required=True, hint="e.g. America/Chicago"),
    Field("hourly_rate", "hourly rate", MONEY, required=True),
    Field("payment_terms_days", "payment terms (days)", "number", required=True),
    Field("time_rounding_minutes", "time rounded up to (minutes)", "number", required=True),
    Field("low_balance_hours", "low balance at (hours)", "decimal", required=True),
    Field("unused_prepaid", "unused prepaid at offboarding", "select", ("refund", "forfeit"), required=True),
    Field("labor_cost_per_hour", "labor cost per hour", MONEY),
    Field("target_effective_rate", "target effective rate", MONEY),
    Field("minimum_block_hours", "smallest block (hours)", "decimal"),
    Field("intake_address", "intake address", hint="the mailbox intake reads, e.g. help@msp.example"),
    Field("term_notice_days", "term notice (days)", "number", required=True,
          hint="the owner is told this many days before a term ends"),
    Field("reminder_days", "invoice reminders (days past due)", "words",
          hint="e.g. 1 7 14: each unpaid invoice's reminder goes once on each; blank: none"),
)  # fmt: skip
OFFER = (
    Field("key", "key", required=True, new_only=True, hint=KEY_HINT),
    Field("name", "name"),
    Field("kind", "kind", "select", AGREEMENT_KINDS, hint="agreement terms; blank: a block offer"),
    Field("monthly_fee", "monthly fee", MONEY),
    Field("included_hours", "included hours", "decimal"),
    Field("overage_rate", "overage rate", MONEY),
    Field("hourly_rate", "hourly rate", MONEY),
    Field("block_hours_per_month", "block hours a month", "decimal"),
    Field("block_hours", "block hours", "decimal", hint="a block offer: its hours and its price"),
    Field("price", "block price", MONEY),
    Field("covers", "covers", "checks", SERVICES, wide=True),
    Field("excludes", "excludes", "checks", SERVICES, wide=True),
)

# a kind of object the client's page changes: its fields, its tab, what it is called, who may change it
FORMS: dict[str, tuple[Field, ...]] = {
    "agreements": AGREEMENT,
    "devices": DEVICE,
    "contacts": CONTACT,
    "sites": SITE,
    "accounts": ACCOUNT,
    "backup_jobs": BACKUP_JOB,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "agreements": {"kind": "managed"},
    "devices": {"role": "workstation"},
    "backup_jobs": {"status": "active", "grace_minutes": "60"},
}


@dataclass
class FormState:
    """A form as the page shows it: its values, and after a refusal the problems beside their fields."""

    name: str  # which form: "client", "client-new", "devices-new", "devices-edit", "agreements-end"…
    values: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    message: str | None = None  # the refusal, said once above the form
    version: str | None = None
    item: str | None = None
    yours: list[tuple[str, str]] = field(default_factory=list)  # a stale form: what the person had typed
    effective: bool = False  # ask for the date new money terms start from

    @property
    def refused(self) -> bool:
        return bool(self.message or self.problems or self.general)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,;]+", text) if w]


def _same_members(value: list[str], current: Any) -> list[str]:
    if isinstance(current, list) and sorted(value) == sorted(current):
        return list(current)
    return value


def body_of(
    fields: Sequence[Field], form: Mapping[str, Any], creating: bool, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The book-shaped body of what was sent: blanks left out when creating, cleared (`None`) when changing."""
    current = current or {}
    body: dict[str, Any] = {}
    for f in fields:
        if f.new_only and not creating:
            continue
        value: Any
        if f.kind == "check":
            value = f.name in form
        elif f.kind == "checks":
            value = _same_members([str(v) for v in _getlist(form, f.name)], current.get(f.name))
        elif f.kind == "words":
            value = _same_members(_words(str(form.get(f.name) or "")), current.get(f.name))
        else:
            value = str(form.get(f.name) or "").strip() or None
        if creating and (value is None or value == [] or value is False):
            continue
        body[f.name] = value
    return body


def _getlist(form: Mapping[str, Any], name: str) -> list[Any]:
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        return list(getlist(name))
    value = form.get(name)
    return [] if value is None else value if isinstance(value, list) else [value]


def typed(fields: Sequence[Field], form: Mapping[str, Any]) -> dict[str, Any]:
    """What the person typed, to show the form again as they left it."""
    values: dict[str, Any] = {}
    for f in fields:
        if f.kind == "check":
            values[f.name] = f.name in form
        elif f.kind == "checks":
            values[f.name] = [str(v) for v in _getlist(form, f.name)]
        else:
            values[f.name] = str(form.get(f.name) or "")
    return values


def missing(fields: Sequence[Field], values: Mapping[str, Any]) -> list[str]:
    """The required fields left blank, each as a refusal naming it (to stand beside that field)."""
    return [f"{f.name}: is required" for f in fields if f.required and not str(values.get(f.name) or "").strip()]


def shown(fields: Sequence[Field], item: Mapping[str, Any]) -> dict[str, Any]:
    """An object's values as its form shows them."""
    values: dict[str, Any] = {}
    for f in fields:
        value = item.get(f.name)
        if f.kind == "check":
            values[f.name] = bool(value)
        elif f.kind == "checks":
            values[f.name] = list(value or [])
        elif f.kind == "words":
            values[f.name] = ", ".join(str(v) for v in value or [])  # words or numbers (reminder days)
        else:
            values[f.name] = "" if value is None else str(value)
    return values


# pydantic's words for a few refusals, as a person filling in a form reads them
PLAINER = (
    (re.compile(r"^String should match pattern '\^\[A-Za-z0-9\]"), "letters, digits and . _ : @ - only (no spaces)"),
    (re.compile(r"^String should have at least 1 character"), "is required"),
)


def plainer(message: str) -> str:
    for pattern, words in PLAINER:
        if pattern.search(message):
            return words
    return message


def sort_problems(problems: Sequence[str], fields: Sequence[Field]) -> tuple[dict[str, list[str]], list[str]]:
    """Each `place: message` beside the field it names; a problem of the whole object (`(book): a managed
    agreement needs monthly_fee, included_hours`) beside each field its message names; the rest apart."""
    names = [f.name for f in fields]
    per: dict[str, list[str]] = defaultdict(list)
    general: list[str] = []
    for problem in problems:
        place, sep, message = problem.partition(": ")
        base = re.split(r"[.\[]", place, maxsplit=1)[0]
        message = plainer(message)
        if sep and base in names:
            per[base].append(message)
            continue
        named = [n for n in names if sep and re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", message)]
        for name in named:
            per[name].append(message)
        if not named:
            general.append(message if sep and place.startswith("(") else problem)
    return dict(per), general


def beside_fields(messages: Sequence[str], fields: Sequence[Field]) -> tuple[dict[str, list[str]], list[str]]:
    """A service's refusals (`title: a ticket needs a title`, `work type 'x' is not one of …`, `no client 'x'`)
    beside the field each names (by its name, its name spelled out, or its label; the first named in the
    message); the rest apart, said above the form."""
    per: dict[str, list[str]] = defaultdict(list)
    general: list[str] = []
    for message in messages:
        place, sep, rest = message.partition(": ")
        named = next((f.name for f in fields if sep and place in (f.name, f.label)), None)
        if named is not None:
            per[named].append(rest)
            continue
        found = []
        for f in fields:
            for word in {f.name, f.name.replace("_", " "), f.label}:
                hit = re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", message, re.IGNORECASE)
                if hit:
                    found.append((hit.start(), f.name))
        if found:
            per[min(found)[1]].append(message)
        else:
            general.append(message)
    return dict(per), general


def differences(fields: Sequence[Field], mine: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the person typed that differs from the object as it stands now (shown with a stale form)."""
    out = []
    for f in fields:
        if f.new_only or f.name not in mine:
            continue
        a, b = mine[f.name], current.get(f.name)
        if f.kind == "checks":
            if sorted(a or []) != sorted(b or []):
                out.append((f.label, ", ".join(a) or "(none)"))
        elif a != b:
            out.append((f.label, ("yes" if a else "no") if f.kind == "check" else (str(a) or "(blank)")))
    return out


@dataclass(frozen=True)
class Thing:
    """A kind of object the client's page changes: its form, its tab, and who may change it."""

    kind: str  # book/shapes.py's name: "backup_jobs"
    path: str  # its segment in the URL: "backup-jobs"
    label: str  # one of them, in words
    tab: str  # the client page's tab that lists it
    permission: str
    fields: tuple[Field, ...]
    removal: str | None  # the button that ends it (`objects.remove_item`): Retire, Remove, Close…
    history: str  # its name in book/history.py
    editable: bool = True  # False: only added here (a purchase: a block, a retainer deposit)

    @property
    def a(self) -> str:
        """`a device`, `an agreement`."""
        return ("an " if self.label[0] in "aeiou" else "a ") + self.label

    def ident(self, item: Mapping[str, Any]) -> str:
        return str(item["id"] if "id" in item and "key" not in item else item["key"])


THINGS: dict[str, Thing] = {
    t.kind: t
    for t in (
        Thing("agreements", "agreements", "agreement", "agreements", "agreements.edit", AGREEMENT, "Delete",
              "agreement"),
        Thing("devices", "devices", "device", "devices", "inventory.edit", DEVICE, "Retire", "device"),
        Thing("sites", "sites", "site", "devices", "inventory.edit", SITE, "Remove", "site"),
        Thing("accounts", "accounts", "vendor account", "devices", "inventory.edit", ACCOUNT, "Close", "account"),
        Thing("contacts", "contacts", "contact", "contacts", "inventory.edit", CONTACT, "Remove", "contact"),
        Thing("backup_jobs", "backup-jobs", "backup job", "backups", "inventory.edit", BACKUP_JOB, None,
              "backup-job"),
        Thing("blocks", "blocks", "block", "agreements", "agreements.edit", BLOCK, None, "block", editable=False),
        Thing("retainer_deposits", "retainer-deposits", "retainer deposit", "agreements", "agreements.edit",
              RETAINER_DEPOSIT, None, "retainer-deposit", editable=False),
        Thing("mapping_rules", "mapping-rules", "mapping rule", "devices", "inventory.edit", MAPPING_RULE,
              "Remove", "mapping-rule"),
    )
}  # fmt: skip
BY_PATH = {t.path: t for t in THINGS.values()}
