"""The offboarding plan: a client's inventory and the owner's answers in, an ordered list of steps out.

DOMAIN.md, "Offboarding" (seeds 000, 002 and 003). Pure rules: no database, no I/O, no clock. The same
inventory and answers always give the same plan, whatever order the inventory lists things in (devices,
accounts, jobs and agreements are taken in order of their keys).

The plan, phase by phase (keys in brackets; ``<dev>`` is a device key, ``<acct>`` a vendor account key):

1. Inventory: a snapshot [p1.snapshot]; the final IT asset report to the client [p1.asset-report]; the
   licenses this client frees, recorded for reuse [p1.licenses].
2. Agreement closeout: each agreement ends on the end-of-service date [p2.agreement-end.<key>]; recurring
   billing stops [p2.billing-stop]; unused prepaid is settled [p2.prepaid-settle]; then the final invoice
   [p2.final-invoice].
3. Systems management: the owner approves [p3.approval] before anything destructive; the client is told to
   install its own antivirus [p3.antivirus-notice] before anything removes managed antivirus; per device,
   each paid feature is turned off [p3.feature-off.<dev>.<feature>] and each check deleted
   [p3.check-delete.<dev>.<check>]; one wait of two hours [p3.wait]; then, only with access, the agents
   are uninstalled (group policy with full access: [p3.gpo-uninstall], then per agent its silence confirmed
   [p3.uninstall-verify.<dev>] and its record deleted [p3.agent-delete.<dev>], then [p3.gpo-cleanup];
   otherwise [p3.uninstall.<dev>], by hand on each machine when the agents were installed by hand or the
   RMM cannot, then the same confirmation and deletion); with no access each agent is recorded as left
   behind, orphaned [p3.orphan.<dev>] and the client is told [p3.orphaned-agents-notice]; then the
   client is removed from each RMM [p3.rmm-remove.<acct>]. Security vendors (seed 002): the vendor is
   told first [p3.siem-notice.<acct>], an administrator is added when the account moves
   [p3.siem-admin.<acct>], each kind of item is removed [p3.siem-remove.<acct>.<item>], and the vendor is
   told de-provisioning is complete [p3.siem-complete.<acct>]. Other vendor accounts are closed
   [p3.account-close.<acct>].
4. Backup: the client gets a copy of the backup data [p4.handover.<acct>] which is verified
   [p4.handover-verify.<acct>]; only then do jobs stop [p4.job-stop.<job>], their monitoring end
   [p4.monitoring-end.<job>] and the backup account close [p4.account-close.<acct>].
5. Hosted services move to the new provider [p5.transition.<acct>].
6. Service desk closeout: tickets [p6.tickets], maintenance [p6.maintenance-stop], alerts orphaned
   [p6.alerts-orphaned], the final system health report [p6.health-report], administrator credentials
   handed over [p6.credentials].
7. Lessons learned [p7.lessons], then the exit conditions are verified [p7.verify].

Rules the seeds leave open, decided here:

- The backup hand-over comes before the managed-backup feature is turned off (turning it off can end the
  data the client is about to receive), so those hand-over steps are listed before the phase 3 feature
  steps; the list is a topological order, not sorted by phase.
- A device with no RMM vendor has no agent: its features and checks still get steps, but nothing is
  uninstalled or recorded orphaned for it.
- Auto steps name the connector call in ``action`` as ``<vendor>.<verb>`` (vendor calls) or
  ``<feature>.<verb>`` (Tenure's own services, notices included); manual steps carry instructions.
- ``p7.verify`` depends on ``p7.lessons``, which depends on every step nothing else depends on: so the
  verification depends on every step, transitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Final, Literal, cast

Reason = Literal["client_cancelled", "msp_ended", "other"]
Access = Literal["full", "remote", "none"]
Deployment = Literal["group_policy", "manual", "unknown"]
MovingTo = Literal["own_it", "other_msp", "unknown"]
StepKind = Literal["auto", "manual", "approval", "wait", "notice", "verify"]
AccountKind = Literal["rmm", "siem", "backup", "hosted", "other"]

REASONS: Final[tuple[str, ...]] = ("client_cancelled", "msp_ended", "other")
ACCESS: Final[tuple[str, ...]] = ("full", "remote", "none")
DEPLOYMENTS: Final[tuple[str, ...]] = ("group_policy", "manual", "unknown")
MOVING_TO: Final[tuple[str, ...]] = ("own_it", "other_msp", "unknown")
SECURITY_ACCOUNT: Final[tuple[str, ...]] = ("close", "keep", "unknown")  # seed 002: stop using it, or keep it
STEP_KINDS: Final[tuple[str, ...]] = ("auto", "manual", "approval", "wait", "notice", "verify")
ACCOUNT_KINDS: Final[tuple[str, ...]] = ("rmm", "siem", "backup", "hosted", "other")
ANSWER_FIELDS: Final[tuple[str, ...]] = (
    "end_of_service", "reason", "access", "agent_deployment", "moving_to", "new_contact", "delete_data",
    "stop_services_on", "security_account", "closeout",
)

DEFAULT_AUTOMATABLE: Final[frozenset[str]] = frozenset({"tacticalrmm", "restic"})
WAIT_SECONDS: Final = 7200  # seed 000: "Wait 2 hours to ensure that all deletions and feature removals..."
ANTIVIRUS: Final = "antivirus"
MANAGED_BACKUP: Final = "backup"
SIEM_ITEMS: Final[tuple[str, ...]] = ("sensors", "cloud_connectors", "agent_devices", "scheduled_reports", "users")
EXIT_CONDITIONS: Final[tuple[str, ...]] = (
    "no_agents_reporting",
    "no_checks",
    "client_removed_from_rmm",
    "no_recurring_charge_after_end",
    "final_invoice_sent",  # issued and sent, not a draft (seed 003: "provided to the client")
    "vendor_accounts_emptied",
    "backups_handed_over",
    "hosted_services_transferred",
    "credentials_handed_over",
    "no_open_tickets",
    "final_reports_sent",  # the final IT asset and system health reports
    "service_desk_told",
    "lessons_captured",
)

FEATURE_LABELS: Final[Mapping[str, str]] = MappingProxyType({
    "patching": "Patch Management",
    "remote_control": "Remote Control (Take Control)",
    "antivirus": "Managed Antivirus",
    "automated_tasks": "Automated Tasks",
    "backup": "Managed Online Backup",
})
VENDOR_LABELS: Final[Mapping[str, str]] = MappingProxyType({
    "tacticalrmm": "Tactical RMM",
    "nsight": "N-sight RMM",
    "gfimax": "GFI MAX RemoteManagement",
    "blumira": "Blumira",
    "restic": "restic",
    "veeam": "Veeam",
    "microsoft365": "Microsoft 365",
    "google_workspace": "Google Workspace",
})
# where a security vendor takes de-provisioning requests (seed 002): (to, cc)
VENDOR_SUPPORT: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = MappingProxyType({
    "blumira": ("support@blumira.com", ("msp@blumira.com",)),
})
SIEM_ITEM_LABELS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType({  # (one, many)
    "sensors": ("sensor", "sensors"),
    "cloud_connectors": ("cloud connector", "cloud connectors"),
    "agent_devices": ("agent device", "agent devices"),
    "scheduled_reports": ("scheduled report", "scheduled reports"),
    "users": ("user", "users"),
})
# seed 002's own words for Blumira: where to click, what to remove
BLUMIRA_REMOVAL: Final[Mapping[str, str]] = MappingProxyType({
    "sensors": "Navigate to Settings > Sensors > View details. In each Sensor detail screen, click Remove "
               "Sensor.",
    "cloud_connectors": "Navigate to Settings > Cloud Connectors > Edit Cloud Connector. Click Remove. Repeat "
                        "for each Cloud Connector.",
    "agent_devices": "Navigate to Blumira Agent > Devices > Device details. Click Remove. Repeat for each "
                     "device.",
    "scheduled_reports": "Navigate to Settings > Reporting > Scheduled Reports. Click delete next to each "
                         "report.",
    "users": "Navigate to Settings > Users. Click remove next to each user that does not need access; this "
             "also stops their notifications.",
})


# ---------------------------------------------------------------------------------------------- inputs


class InvalidAnswers(ValueError):
    """Offboarding answers that break a rule; `problems` holds every `field: message` found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    email: str | None = None
    roles: tuple[str, ...] = ()

    def label(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


@dataclass(frozen=True, slots=True)
class Closeout:
    """Seed 003's service closeout session: when it was held, who attended, what was said."""

    held_on: date
    attended: tuple[str, ...]
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class Answers:
    end_of_service: date
    reason: Reason
    access: Access
    agent_deployment: Deployment = "unknown"
    moving_to: MovingTo = "unknown"
    new_contact: Contact | None = None
    delete_data: bool = False
    # what ends a paid service waits for this day (the end of service, unless the client asks for it sooner)
    stop_services_on: date | None = None
    security_account: str = "unknown"  # close | keep | unknown (SECURITY_ACCOUNT)
    closeout: Closeout | None = None  # seed 003's entry condition: the closeout session with the client

    @property
    def services_end(self) -> date:
        """The day services the client pays for may be ended from."""
        return self.stop_services_on or self.end_of_service

    def __post_init__(self) -> None:
        problems = _answer_problems(self)
        if problems:
            raise InvalidAnswers(problems)


@dataclass(frozen=True, slots=True)
class Device:
    key: str
    hostname: str
    role: str = "workstation"  # server | workstation | network | other
    features: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    rmm_vendor: str | None = None
    rmm_id: str | None = None


@dataclass(frozen=True, slots=True)
class VendorAccount:
    key: str
    kind: AccountKind
    vendor: str
    external_id: str | None = None
    # siem: edition, sensors, cloud_connectors, agent_devices, scheduled_reports, users; hosted: service
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackupJob:
    key: str
    device: str | None  # device key
    product: str
    name: str


@dataclass(frozen=True, slots=True)
class Agreement:
    key: str
    kind: str


@dataclass(frozen=True, slots=True)
class Inventory:
    client: str  # key
    client_name: str
    contacts: tuple[Contact, ...] = ()
    devices: tuple[Device, ...] = ()
    accounts: tuple[VendorAccount, ...] = ()
    backup_jobs: tuple[BackupJob, ...] = ()
    agreements: tuple[Agreement, ...] = ()
    open_tickets: int = 0
    automatable_vendors: frozenset[str] = DEFAULT_AUTOMATABLE  # vendors with a write API


# --------------------------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    phase: int
    title: str
    kind: StepKind
    depends_on: tuple[str, ...] = ()
    target: Mapping[str, Any] = field(default_factory=dict)
    instructions: str | None = None
    seconds: int | None = None  # wait steps only
    action: str | None = None  # the connector call an auto step (or a notice) makes

    def __post_init__(self) -> None:
        if not 1 <= self.phase <= 7:
            raise ValueError(f"{self.key}: phase {self.phase} is not 1 to 7")
        if self.kind not in STEP_KINDS:
            raise ValueError(f"{self.key}: kind {self.kind!r} is not one of {_quoted(STEP_KINDS)}")
        if (self.kind == "wait") != (self.seconds is not None):
            raise ValueError(f"{self.key}: only a wait step has seconds, and it must")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "phase": self.phase,
            "title": self.title,
            "kind": self.kind,
            "depends_on": list(self.depends_on),
            "target": _plain(self.target),
            "instructions": self.instructions,
        }
        if self.kind == "wait":
            out["seconds"] = self.seconds
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    client: str
    steps: tuple[Step, ...]

    def to_json(self) -> dict[str, Any]:
        """INTERFACE.md's plan: {"client", "steps": [{"key", "phase", "title", "kind", "depends_on",
        "target", "instructions"} (+ "seconds" on a wait step)]}."""
        return {"client": self.client, "steps": [step.to_json() for step in self.steps]}

    def by_key(self) -> dict[str, Step]:
        return {step.key: step for step in self.steps}


# ------------------------------------------------------------------------------------------- answers


def parse_answers(data: Mapping[str, Any]) -> Answers:
    """The answers file (YAML or JSON, already loaded) as `Answers`; every problem names its field.

    Required: end_of_service, reason, access. agent_deployment and moving_to default to 'unknown',
    delete_data to false (nothing is deleted unless the client said so), new_contact to none; moving to
    another MSP or to the client's own IT needs new_contact (the incoming administrator).
    """
    if not isinstance(data, Mapping):
        raise InvalidAnswers([f"answers: expected a mapping of {_quoted(ANSWER_FIELDS)}"])
    problems: list[str] = [
        f"{name}: not an offboarding answer (expected one of {_quoted(ANSWER_FIELDS)})"
        for name in data
        if name not in ANSWER_FIELDS
    ]

    end_of_service = _date_of(data.get("end_of_service"), "end_of_service", problems, required=True)

    def choice(name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = data.get(name, default)
        if value is None:
            problems.append(f"{name}: required (one of {_quoted(allowed)})")
            return None
        if value not in allowed:
            problems.append(f"{name}: {value!r} is not one of {_quoted(allowed)}")
            return None
        return cast(str, value)

    reason = choice("reason", REASONS, None)
    access = choice("access", ACCESS, None)
    deployment = choice("agent_deployment", DEPLOYMENTS, "unknown")
    moving_to = choice("moving_to", MOVING_TO, "unknown")

    new_contact: Contact | None = None
    contact_ok = True
    raw_contact = data.get("new_contact")
    if raw_contact is not None:
        new_contact, contact_problems = _parse_contact(raw_contact)
        problems.extend(contact_problems)
        contact_ok = not contact_problems

    raw_delete = data.get("delete_data", False)
    if not isinstance(raw_delete, bool):
        problems.append(f"delete_data: {raw_delete!r} is not true or false")

    if moving_to is not None and contact_ok:
        need = _contact_needed(cast(MovingTo, moving_to), new_contact)
        if need:
            problems.append(need)

    stop_on = _date_of(data.get("stop_services_on"), "stop_services_on", problems, required=False)
    if stop_on is not None and end_of_service is not None and stop_on > end_of_service:
        problems.append(f"stop_services_on: {stop_on} is after end_of_service ({end_of_service}): services the "
                        "client pays for are ended on the end of service at the latest")
    security = choice("security_account", SECURITY_ACCOUNT, "unknown")
    if security == "keep" and new_contact is None and contact_ok:
        problems.append("new_contact: required when security_account is 'keep' (the administrator the security "
                        "vendor's account moves to)")
    closeout = _parse_closeout(data.get("closeout"), problems)

    if problems or end_of_service is None:
        raise InvalidAnswers(problems)
    return Answers(
        end_of_service=end_of_service,
        reason=cast(Reason, reason),
        access=cast(Access, access),
        agent_deployment=cast(Deployment, deployment),
        moving_to=cast(MovingTo, moving_to),
        new_contact=new_contact,
        delete_data=bool(raw_delete),
        stop_services_on=stop_on,
        security_account=cast(str, security),
        closeout=closeout,
    )


def _date_of(raw: Any, name: str, problems: list[str], *, required: bool) -> date | None:
    if raw is None:
        if required:
            problems.append(f"{name}: required")
        return None
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    shown = raw.isoformat() if isinstance(raw, datetime) else raw
    problems.append(f"{name}: {shown!r} is not a date (YYYY-MM-DD)")
    return None


def _parse_closeout(raw: Any, problems: list[str]) -> Closeout | None:
    """`closeout: {date, attended: [names], notes}`: the session with the client that starts the run."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"closeout: {raw!r} is not a mapping with date, attended and notes")
        return None
    found = len(problems)
    problems.extend(
        f"closeout.{name}: not a closeout field (expected 'date', 'attended', 'notes')"
        for name in raw
        if name not in ("date", "attended", "notes")
    )
    held_on = _date_of(raw.get("date"), "closeout.date", problems, required=True)
    attended = raw.get("attended")
    if isinstance(attended, str):
        attended = [a for a in (part.strip() for part in attended.split(",")) if a]
    if not isinstance(attended, list | tuple) or not attended:
        problems.append("closeout.attended: required (the names of who attended, at least one)")
    elif not all(isinstance(a, str) and a.strip() for a in attended):
        problems.append(f"closeout.attended: {attended!r} is not a list of names")
    notes = raw.get("notes")
    if notes is not None and not isinstance(notes, str):
        problems.append(f"closeout.notes: {notes!r} is not text")
    if len(problems) > found or held_on is None:
        return None
    names = tuple(cast(str, a).strip() for a in cast(list[Any], attended))
    return Closeout(held_on=held_on, attended=names, notes=(notes or "").strip() or None)


def _parse_contact(raw: Any) -> tuple[Contact | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"new_contact: {raw!r} is not a mapping with name and email"]
    problems = [
        f"new_contact.{name}: not a contact field (expected 'name', 'email')"
        for name in raw
        if name not in ("name", "email")
    ]
    name, email = raw.get("name"), raw.get("email")
    if not isinstance(name, str) or not name.strip():
        problems.append("new_contact.name: required")
    if email is None:
        problems.append("new_contact.email: required")
    elif not isinstance(email, str) or not _looks_like_email(email):
        problems.append(f"new_contact.email: {email!r} is not an e-mail address")
    if problems:
        return None, problems
    return Contact(name=cast(str, name).strip(), email=cast(str, email).strip()), []


def _looks_like_email(value: str) -> bool:
    local, at, domain = value.strip().rpartition("@")
    return bool(at and local and "." in domain and " " not in value.strip())


def _contact_needed(moving_to: MovingTo, contact: Contact | None) -> str | None:
    if contact is not None:
        return None
    if moving_to == "other_msp":
        return "new_contact: required when moving_to is 'other_msp' (the incoming MSP's administrator)"
    if moving_to == "own_it":
        return "new_contact: required when moving_to is 'own_it' (the client's new administrator)"
    return None


def _answer_problems(answers: Answers) -> list[str]:
    problems: list[str] = []
    if not isinstance(answers.end_of_service, date) or isinstance(answers.end_of_service, datetime):
        problems.append(f"end_of_service: {answers.end_of_service!r} is not a date (YYYY-MM-DD)")
    for name, value, allowed in (
        ("reason", answers.reason, REASONS),
        ("access", answers.access, ACCESS),
        ("agent_deployment", answers.agent_deployment, DEPLOYMENTS),
        ("moving_to", answers.moving_to, MOVING_TO),
    ):
        if value not in allowed:
            problems.append(f"{name}: {value!r} is not one of {_quoted(allowed)}")
    if not isinstance(answers.delete_data, bool):
        problems.append(f"delete_data: {answers.delete_data!r} is not true or false")
    if answers.security_account not in SECURITY_ACCOUNT:
        problems.append(f"security_account: {answers.security_account!r} is not one of {_quoted(SECURITY_ACCOUNT)}")
    if answers.stop_services_on is not None and answers.stop_services_on > answers.end_of_service:
        problems.append("stop_services_on: after end_of_service")
    if answers.security_account == "keep" and answers.new_contact is None:
        problems.append("new_contact: required when security_account is 'keep'")
    if answers.moving_to in MOVING_TO:
        need = _contact_needed(answers.moving_to, answers.new_contact)
        if need:
            problems.append(need)
    return problems


# ---------------------------------------------------------------------------------------------- plan


class _Builder:
    """Steps in the order they are added; a dependency must already be there, so the order is valid."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.keys: set[str] = set()
        self.depended_on: set[str] = set()

    def add(
        self,
        key: str,
        phase: int,
        title: str,
        kind: StepKind,
        depends_on: Iterable[str] = (),
        target: Mapping[str, Any] | None = None,
        *,
        instructions: str | None = None,
        seconds: int | None = None,
        action: str | None = None,
    ) -> str:
        if key in self.keys:
            raise ValueError(f"two steps would have the key {key!r}: make the inventory's keys distinct")
        deps = tuple(dict.fromkeys(depends_on))
        for dep in deps:
            if dep not in self.keys:  # a bug in the rules, never the input's fault
                raise RuntimeError(f"{key}: depends on {dep!r}, which is not planned before it")
        self.keys.add(key)
        self.depended_on.update(deps)
        self.steps.append(Step(
            key=key, phase=phase, title=title, kind=kind, depends_on=deps,
            target=MappingProxyType(dict(target or {})), instructions=instructions, seconds=seconds,
            action=action,
        ))
        return key

    def sinks(self, phases: Iterable[int] | None = None) -> list[str]:
        wanted = set(phases) if phases is not None else None
        return [
            s.key for s in self.steps
            if s.key not in self.depended_on and (wanted is None or s.phase in wanted)
        ]


@dataclass(frozen=True, slots=True)
class _Ctx:
    inv: Inventory
    ans: Answers
    end: str  # end of service, ISO
    hold: str  # the first day a paid service may be ended (end of service, or the answers' stop_services_on), ISO
    devices: tuple[Device, ...]
    features: Mapping[str, tuple[str, ...]]  # device key -> features, duplicates dropped
    checks: Mapping[str, tuple[str, ...]]
    accounts: Mapping[str, tuple[VendorAccount, ...]]  # by kind
    jobs: tuple[BackupJob, ...]
    agreements: tuple[Agreement, ...]
    client_to: tuple[str, ...]  # e-mail addresses of the client's primary / technical / admin contacts
    receiver: Contact | None  # who takes over: new_contact, else the client's administrator

    def auto(self, vendor: str | None) -> bool:
        return vendor is not None and vendor in self.inv.automatable_vendors

    def has_av(self, device: Device) -> bool:
        return ANTIVIRUS in self.features[device.key]

    def receiver_label(self) -> str:
        return self.receiver.label() if self.receiver else f"{self.inv.client_name}'s administrator"

    def receiver_email(self) -> str | None:
        return self.receiver.email if self.receiver else None


def plan(inventory: Inventory, answers: Answers) -> Plan:
    """Every step of ending service for this client, in an order that respects every dependency."""
    _check_inventory(inventory)
    ctx = _context(inventory, answers)
    b = _Builder()

    snapshot = _phase1(b, ctx)
    _phase2(b, ctx, snapshot)
    approval, av_notice = _phase3_start(b, ctx, snapshot)
    handed_over = _backup_handover(b, ctx, snapshot)
    _phase3_systems(b, ctx, approval, av_notice, handed_over)
    _phase3_vendors(b, ctx, approval)
    _phase4_stop(b, ctx, approval, handed_over)
    _phase5(b, ctx, approval)
    _phase6(b, ctx, snapshot, approval)
    _phase7(b, ctx)
    return Plan(client=inventory.client, steps=tuple(b.steps))


def _check_inventory(inv: Inventory) -> None:
    problems: list[str] = []
    if not inv.client:
        problems.append("client: required")
    for place, keys in (
        ("devices", [d.key for d in inv.devices]),
        ("accounts", [a.key for a in inv.accounts]),
        ("backup_jobs", [j.key for j in inv.backup_jobs]),
        ("agreements", [a.key for a in inv.agreements]),
    ):
        seen: set[str] = set()
        for i, key in enumerate(keys):
            if not key:
                problems.append(f"{place}[{i}].key: required")
            elif key in seen:
                problems.append(f"{place}[{i}].key: {key!r} appears twice")
            seen.add(key)
    for account in inv.accounts:
        if account.kind not in ACCOUNT_KINDS:
            problems.append(f"accounts[{account.key}].kind: {account.kind!r} is not one of "
                            f"{_quoted(ACCOUNT_KINDS)}")
        if account.kind == "siem":
            for item in SIEM_ITEMS:
                try:
                    _count(account.details.get(item))
                except ValueError:
                    problems.append(f"accounts[{account.key}].{item}: {account.details.get(item)!r} is not "
                                    "a count")
    if isinstance(inv.open_tickets, bool) or not isinstance(inv.open_tickets, int) or inv.open_tickets < 0:
        problems.append(f"open_tickets: {inv.open_tickets!r} is not a count")
    if problems:
        raise ValueError("; ".join(problems))


def _context(inv: Inventory, ans: Answers) -> _Ctx:
    devices = tuple(sorted(inv.devices, key=lambda d: d.key))
    by_kind: dict[str, list[VendorAccount]] = {kind: [] for kind in ACCOUNT_KINDS}
    for account in sorted(inv.accounts, key=lambda a: a.key):
        by_kind[account.kind].append(account)
    return _Ctx(
        inv=inv,
        ans=ans,
        end=ans.end_of_service.isoformat(),
        hold=ans.services_end.isoformat(),
        devices=devices,
        features={d.key: tuple(dict.fromkeys(d.features)) for d in devices},
        checks={d.key: tuple(dict.fromkeys(d.checks)) for d in devices},
        accounts={kind: tuple(accounts) for kind, accounts in by_kind.items()},
        jobs=tuple(sorted(inv.backup_jobs, key=lambda j: j.key)),
        agreements=tuple(sorted(inv.agreements, key=lambda a: a.key)),
        client_to=_client_emails(inv.contacts),
        receiver=ans.new_contact or _client_admin(inv.contacts),
    )


# ---- phase 1: inventory


def _phase1(b: _Builder, ctx: _Ctx) -> str:
    inv = ctx.inv
    agents = [d for d in ctx.devices if d.rmm_vendor]
    snapshot = b.add(
        "p1.snapshot", 1, f"Snapshot {inv.client_name}'s devices, agents, features, checks and accounts",
        "auto", (),
        {
            "client": inv.client,
            "devices": len(ctx.devices),
            "agents": len(agents),
            "features": sum(len(f) for f in ctx.features.values()),
            "checks": sum(len(c) for c in ctx.checks.values()),
            "accounts": tuple(a.key for kind in ACCOUNT_KINDS for a in ctx.accounts[kind]),
            "backup_jobs": tuple(j.key for j in ctx.jobs),
            "agreements": tuple(a.key for a in ctx.agreements),
        },
        action="inventory.snapshot",
    )
    b.add(
        "p1.asset-report", 1, f"Send {inv.client_name} the final IT asset report", "notice", [snapshot],
        {"client": inv.client, "to": ctx.client_to, "cc": _cc(ctx), "devices": len(ctx.devices)},
        action="notice.final_asset_report",
    )
    per_vendor: dict[str, int] = {}
    for device in agents:
        vendor = cast(str, device.rmm_vendor)
        per_vendor[vendor] = per_vendor.get(vendor, 0) + 1
    av_seats = sum(1 for d in ctx.devices if ctx.has_av(d))
    lines = [f"- {count} {_vendor(vendor)} agent seat(s)" for vendor, count in sorted(per_vendor.items())]
    if av_seats:
        lines.append(f"- {av_seats} managed antivirus seat(s)")
    for kind in ("siem", "backup", "hosted", "other"):
        for account in ctx.accounts[kind]:
            edition = account.details.get("edition") or account.details.get("service")
            lines.append(f"- {_vendor(account.vendor)} ({kind}{', ' + str(edition) if edition else ''}): "
                         f"account {account.key}")
    b.add(
        "p1.licenses", 1, f"Record the licenses {inv.client_name} frees for reuse", "manual", [snapshot],
        {"client": inv.client, "agents": dict(sorted(per_vendor.items())), "antivirus_seats": av_seats},
        instructions=(
            "From the snapshot, list every license this client holds so it returns to the pool when the "
            "client is removed from each vendor (phases 3 to 5):\n"
            + ("\n".join(lines) if lines else "- none recorded in the inventory")
            + "\nAdd any software license bought through us (Windows, Office, line-of-business software) "
            "and note for each whether it is reused by us or transferred to the client."
        ),
    )
    _closeout(b, ctx)
    return snapshot


def _closeout(b: _Builder, ctx: _Ctx) -> str:
    """Seed 003's entry condition: the service closeout session with the client. Given in the answers, it is
    recorded at once; otherwise a person records it (date, who attended, notes) before the owner approves."""
    inv, held = ctx.inv, ctx.ans.closeout
    if held is not None:
        return b.add(
            "p1.closeout", 1, f"Closeout session with {inv.client_name} held on {held.held_on}", "auto", (),
            {"client": inv.client, "date": held.held_on, "attended": held.attended, "notes": held.notes},
            action="offboarding.closeout",
        )
    return b.add(
        "p1.closeout", 1, f"Hold the closeout session with {inv.client_name}", "manual", (),
        {"client": inv.client},
        instructions=(
            f"Meet {inv.client_name} to close out the service (seed 003, Client Service Closeout): confirm the end "
            f"of service on {ctx.end}, what is handed over and to whom. Tick this step with a note that gives "
            "the date, who attended and what was agreed. Deactivation starts only after this session."
        ),
    )


# ---- phase 2: agreement closeout


def _phase2(b: _Builder, ctx: _Ctx, snapshot: str) -> None:
    inv, end = ctx.inv, ctx.end
    ended = [
        b.add(
            f"p2.agreement-end.{a.key}", 2, f"End agreement {a.key} ({a.kind}) on {end}", "auto", [snapshot],
            {"agreement": a.key, "kind": a.kind, "end": end}, action="agreements.end",
        )
        for a in ctx.agreements
    ]
    stop = b.add(
        "p2.billing-stop", 2, f"Stop recurring billing for {inv.client_name} after {end}", "auto",
        [snapshot, *ended], {"client": inv.client, "after": end}, action="billing.stop_recurring",
    )
    settle = b.add(
        "p2.prepaid-settle", 2, f"Settle {inv.client_name}'s unused prepaid time and retainer", "auto",
        [snapshot, *ended], {"client": inv.client, "as_of": end}, action="billing.settle_prepaid",
    )
    b.add(
        "p2.final-invoice", 2, f"Issue {inv.client_name}'s final invoice", "auto", [*ended, stop, settle],
        {"client": inv.client, "through": end}, action="billing.final_invoice",
    )


# ---- phase 3: systems management


def _phase3_start(b: _Builder, ctx: _Ctx, snapshot: str) -> tuple[str, str | None]:
    inv, ans = ctx.inv, ctx.ans
    agents = sum(1 for d in ctx.devices if d.rmm_vendor)
    accounts = [a.key for kind in ACCOUNT_KINDS for a in ctx.accounts[kind]]
    if ans.access == "none":
        agent_line = f"{agents} agent(s) will be left behind, orphaned (no access to uninstall them)"
    elif ans.access == "full" and ans.agent_deployment == "group_policy":
        agent_line = f"{agents} agent(s) will be uninstalled by group policy"
    else:
        agent_line = f"{agents} agent(s) will be uninstalled one by one"
    approval = b.add(
        "p3.approval", 3, f"Owner approves deactivating {inv.client_name}", "approval", [snapshot, "p1.closeout"],
        {"client": inv.client, "end_of_service": ctx.end, "reason": ans.reason, "access": ans.access,
         "agent_deployment": ans.agent_deployment, "moving_to": ans.moving_to, "delete_data": ans.delete_data},
        instructions=(
            f"Approve only when {inv.client_name}'s end of service on {ctx.end} is confirmed. Once approved, "
            "destructive steps start:\n"
            f"- {sum(len(f) for f in ctx.features.values())} feature(s) turned off and "
            f"{sum(len(c) for c in ctx.checks.values())} check(s) deleted on {len(ctx.devices)} device(s)\n"
            f"- {agent_line}\n"
            f"- vendor accounts emptied or moved: {', '.join(accounts) if accounts else 'none'}\n"
            f"- backup data handed over, then backups stopped; data deleted after the end date: "
            f"{'yes' if ans.delete_data else 'no'}"
        ),
    )
    av_devices = [d for d in ctx.devices if ctx.has_av(d)]
    if not av_devices:
        return approval, None
    names = ", ".join(d.hostname for d in av_devices[:10]) + (" and others" if len(av_devices) > 10 else "")
    av_notice = b.add(
        "p3.antivirus-notice", 3, f"Tell {inv.client_name} to install its own antivirus", "notice", [approval],
        {"client": inv.client, "to": ctx.client_to, "cc": _cc(ctx), "devices": len(av_devices),
         "end_of_service": ctx.end},
        instructions=(
            f"Managed antivirus ends with our service on {ctx.end}: it is removed from {len(av_devices)} "
            f"device(s) ({names}) when we turn the feature off, uninstall our agent or remove {inv.client_name} "
            "from our RMM. Install an antivirus of your own on these devices before then, so they are never "
            "unprotected."
        ),
        action="notice.antivirus_removal",
    )
    return approval, av_notice


def _phase3_systems(
    b: _Builder, ctx: _Ctx, approval: str, av_notice: str | None, handed_over: Sequence[str]
) -> None:
    inv, ans = ctx.inv, ctx.ans
    av = [av_notice] if av_notice else []
    changed: list[str] = []
    for device in ctx.devices:
        vendor, auto = device.rmm_vendor, ctx.auto(device.rmm_vendor)
        ids = {"device": device.key, "hostname": device.hostname, "rmm_vendor": vendor, "rmm_id": device.rmm_id}
        for feature in ctx.features[device.key]:
            deps = [approval]
            if feature == ANTIVIRUS:
                deps += av
            if feature == MANAGED_BACKUP:
                deps += handed_over
            changed.append(b.add(
                f"p3.feature-off.{device.key}.{feature}", 3,
                f"Turn off {_feature(feature)} on {device.hostname}", "auto" if auto else "manual", deps,
                {**ids, "feature": feature, "not_before": ctx.hold},
                instructions=None if auto else _feature_off_instructions(ctx, device, feature),
                action=f"{vendor}.disable_feature" if auto else None,
            ))
        for check in ctx.checks[device.key]:
            changed.append(b.add(
                f"p3.check-delete.{device.key}.{check}", 3, f"Delete check {check} on {device.hostname}",
                "auto" if auto else "manual", [approval], {**ids, "check": check, "not_before": ctx.hold},
                instructions=None if auto else (
                    f"In the {_vendor(vendor)} dashboard, open client {inv.client_name}, then device "
                    f"{device.hostname}{_agent_id(device)}. Open its Checks list, select the check "
                    f"'{check}' and delete it (delete, not pause: a paused check still loads the device)."
                ),
                action=f"{vendor}.delete_check" if auto else None,
            ))
    wait = b.add(
        "p3.wait", 3, "Wait 2 hours for the feature removals and check deletions to take effect", "wait",
        [approval, *av, *changed],
        {"client": inv.client, "features_off": sum(1 for k in changed if k.startswith("p3.feature-off.")),
         "checks_deleted": sum(1 for k in changed if k.startswith("p3.check-delete."))},
        seconds=WAIT_SECONDS,
    )

    agents = [d for d in ctx.devices if d.rmm_vendor]
    removed: list[str] = []  # every uninstall, verification and orphan record
    if ans.access == "none":
        for device in agents:
            removed.append(b.add(
                f"p3.orphan.{device.key}", 3,
                f"Record the {_vendor(device.rmm_vendor)} agent on {device.hostname} as left behind, orphaned",
                "manual", [wait],
                {"device": device.key, "hostname": device.hostname, "rmm_vendor": device.rmm_vendor,
                 "rmm_id": device.rmm_id, "agent": "orphaned"},
                instructions=(
                    f"We have no access to uninstall it: the {_vendor(device.rmm_vendor)} agent stays on "
                    f"{device.hostname}, orphaned. Its features are off and its checks deleted, so it does "
                    "nothing; removing the client from the RMM stops any billing for it. Note it on the "
                    "device's record; the client may uninstall it at any time."
                ),
            ))
        if agents:
            removed.append(b.add(
                "p3.orphaned-agents-notice", 3, f"Tell {inv.client_name} which agents stay behind", "notice",
                [wait],
                {"client": inv.client, "to": ctx.client_to, "cc": _cc(ctx), "devices": len(agents),
                 "agent": "orphaned"},
                instructions=(
                    f"Our monitoring agent stays installed on {len(agents)} device(s), because we no longer "
                    "have access to remove it. It is switched off on our side and does nothing. Your IT can "
                    "uninstall it: Settings > Apps > Installed apps (Control Panel > Programs and Features "
                    "on older Windows), select the agent, Uninstall."
                ),
                action="notice.orphaned_agents",
            ))
    elif ans.access == "full" and ans.agent_deployment == "group_policy" and agents:
        vendors = sorted({cast(str, d.rmm_vendor) for d in agents})
        gpo = b.add(
            "p3.gpo-uninstall", 3, f"Uninstall the agents from {inv.client_name}'s domain by group policy",
            "manual", [wait, *(av if any(ctx.has_av(d) for d in agents) else [])],
            {"client": inv.client, "rmm_vendors": tuple(vendors), "devices": len(agents), "not_before": ctx.hold},
            instructions=(
                f"On a domain controller of {inv.client_name}, open Group Policy Management and edit the GPO "
                f"that deploys the {' and '.join(_vendor(v) for v in vendors)} agent: Computer Configuration > "
                "Policies > Software Settings > Software installation. Right-click the agent package > All "
                "Tasks > Remove... > 'Immediately uninstall the software from users and computers' > OK. Do "
                "not delete or unlink the GPO yet: each computer removes the agent at its next restart, and a "
                f"deleted GPO can no longer uninstall. Restart the {len(agents)} computer(s), then mark this "
                "step done: each agent must not report after that moment."
            ),
        )
        verified = [_stopped_then_deleted(b, ctx, device, gpo) for device in agents]
        removed += [gpo, *verified]
        removed.append(b.add(
            "p3.gpo-cleanup", 3, "Delete the agent deployment GPO", "manual", verified,
            {"client": inv.client, "rmm_vendors": tuple(vendors)},
            instructions=(
                "Every computer has removed the agent: in Group Policy Management, delete the GPO that "
                f"deployed it (or unlink it from {inv.client_name}'s OUs) and remove the installer package "
                "from its network share."
            ),
        ))
    else:
        for device in agents:
            # agents installed by hand are uninstalled by hand on each machine (seed 000); otherwise the RMM
            # uninstalls them when it can (Tactical's uninstall deletes the agent's record with it)
            auto = ctx.auto(device.rmm_vendor) and ans.agent_deployment != "manual"
            uninstall = b.add(
                f"p3.uninstall.{device.key}", 3,
                f"Uninstall the {_vendor(device.rmm_vendor)} agent from {device.hostname}",
                "auto" if auto else "manual", [wait, *(av if ctx.has_av(device) else [])],
                {"device": device.key, "hostname": device.hostname, "rmm_vendor": device.rmm_vendor,
                 "rmm_id": device.rmm_id, "not_before": ctx.hold},
                instructions=None if auto else _uninstall_by_hand(device, ans.access),
                action=f"{device.rmm_vendor}.uninstall_agent" if auto else None,
            )
            removed.append(uninstall)
            if not auto and device.role != "network":  # uninstalled on the machine: the RMM still lists it
                removed.append(_stopped_then_deleted(b, ctx, device, uninstall))

    # removing the client from the RMM: per rmm account, and per agent vendor that has none
    rmm_targets: list[tuple[str, str | None, str, str | None]] = [  # (key suffix, account, vendor, id)
        (a.key, a.key, a.vendor, a.external_id) for a in ctx.accounts["rmm"]
    ]
    with_account = {a.vendor for a in ctx.accounts["rmm"]}
    rmm_targets += [
        (vendor, None, vendor, None)
        for vendor in sorted({cast(str, d.rmm_vendor) for d in agents} - with_account)
    ]
    for suffix, account_key, vendor, external_id in rmm_targets:
        auto = ctx.auto(vendor)
        b.add(
            f"p3.rmm-remove.{suffix}", 3, f"Remove {inv.client_name} from {_vendor(vendor)}",
            "auto" if auto else "manual", [wait, *av, *removed],
            {"account": account_key, "vendor": vendor,
             "external_id": external_id, "client": inv.client, "not_before": ctx.hold},
            instructions=None if auto else (
                f"In the {_vendor(vendor)} dashboard, find client {inv.client_name}"
                f"{f' (id {external_id})' if external_id else ''} and delete it, with every device still "
                "under it. Whatever happened to the agents, this is what stops the vendor billing us for "
                "them (and removes any managed antivirus left). Check the client no longer appears."
            ),
            action=f"{vendor}.remove_client" if auto else None,
        )


def _phase3_vendors(b: _Builder, ctx: _Ctx, approval: str) -> None:
    for account in ctx.accounts["siem"]:
        _siem(b, ctx, account, approval)
    for account in ctx.accounts["other"]:
        b.add(
            f"p3.account-close.{account.key}", 3,
            f"Close or transfer {ctx.inv.client_name}'s {_vendor(account.vendor)} account", "manual",
            [approval],
            {"account": account.key, "vendor": account.vendor, "external_id": account.external_id,
             "moving_to": ctx.ans.moving_to, "not_before": ctx.hold},
            instructions=(
                f"In {_vendor(account.vendor)}, "
                + (f"transfer account {account.external_id or account.key} to {ctx.receiver_label()}"
                   if ctx.ans.moving_to != "unknown" else
                   f"remove {ctx.inv.client_name} (account {account.external_id or account.key})")
                + f", end our subscription for it after {ctx.end} and recover its licenses. Check the vendor "
                "no longer bills us for this client."
            ),
        )


def _siem(b: _Builder, ctx: _Ctx, account: VendorAccount, approval: str) -> None:
    inv, ans = ctx.inv, ctx.ans
    vendor = _vendor(account.vendor)
    counts = {item: _count(account.details.get(item)) for item in SIEM_ITEMS}
    # seed 002: the account moves on (kept: only our users leave it) or the client stops using the vendor
    moving = ans.security_account == "keep"
    items = [item for item in SIEM_ITEMS if counts[item] > 0]
    admin_needed = moving
    complete_now = not items and not admin_needed
    ids = {"account": account.key, "vendor": account.vendor, "external_id": account.external_id}

    to, cc = VENDOR_SUPPORT.get(account.vendor, (None, ()))
    cc_all = list(cc)
    if moving and ans.moving_to == "other_msp" and ans.new_contact and ans.new_contact.email:
        cc_all.append(ans.new_contact.email)
    if moving and ans.moving_to == "other_msp":
        cc_all += list(ctx.client_to[:1])  # seed 002: someone from the end client on copy
    email = _siem_email(ctx, account, complete=complete_now)
    notice = b.add(
        f"p3.siem-notice.{account.key}", 3, f"Tell {vendor} that {inv.client_name}'s service ends", "notice",
        [approval],
        {**ids, "to": to, "cc": tuple(dict.fromkeys(cc_all)), "subject": email[0], "email": email[1]},
        instructions=(
            f"Send this e-mail to {to or f'{vendor} support'}"
            + (f", copy to {', '.join(dict.fromkeys(cc_all))}" if cc_all else "")
            + f". The vendor must hear from us, the account owner, before anything changes.\n\n"
            f"Subject: {email[0]}\n\n{email[1]}"
        ),
        action="notice.vendor_deprovision" if to else None,
    )
    after = [notice]
    if admin_needed:
        who = ctx.receiver_label()
        if ans.moving_to == "other_msp":
            title = f"Add the incoming MSP's administrator to {vendor} for {inv.client_name}"
            why = (f"The account moves to another MSP: add {who} from the incoming MSP as an Administrator, "
                   f"with {inv.client_name} ({', '.join(ctx.client_to) or 'the client'}) on copy, so the vendor "
                   "has everyone's approval before re-parenting the account.")
        else:
            title = f"Add {inv.client_name}'s administrator to {vendor}"
            why = (f"The account moves to {inv.client_name}'s own IT: at least one Administrator from the "
                   f"client, {who}, must be in the sub-account before it is separated from ours.")
        after.append(b.add(
            f"p3.siem-admin.{account.key}", 3, title, "manual", [notice],
            {**ids, "contact": _contact_json(ans.new_contact), "moving_to": ans.moving_to},
            instructions=(
                f"{why} Sign in to {vendor} as an account Administrator, open the sub-account "
                f"{inv.client_name}, navigate to Settings > Users, add {who} with the Administrator role and "
                "check they can sign in."
            ),
        ))
    removals = []
    keep = f" Keep {ctx.receiver_label()}, the new administrator." if moving else ""
    for item in items:
        one, many = SIEM_ITEM_LABELS[item]
        n = counts[item]
        how = BLUMIRA_REMOVAL[item] if account.vendor == "blumira" else (
            f"In the {vendor} console, open {inv.client_name}'s settings and remove each {one}.")
        if ans.security_account == "close":  # seed 002: logs and alerts stop before the end-of-service date
            when: dict[str, Any] = {"due_before": ctx.end}
            title = f"Remove {inv.client_name}'s {n} {one if n == 1 else many} from {vendor} before {ctx.end}"
        else:
            when = {"not_before": ctx.hold}  # removing the client from a vendor ends a service it pays for
            title = f"Remove {inv.client_name}'s {n} {one if n == 1 else many} from {vendor}"
        removals.append(b.add(
            f"p3.siem-remove.{account.key}.{item}", 3, title, "manual", after,
            {**ids, "item": item, "count": n, **when},
            instructions=(
                f"Signed in to {vendor} as an account Administrator, in the sub-account {inv.client_name}: "
                f"{how} "
                + (f"The inventory lists {n}; remove every user who does not need access.{keep}"
                   if item == "users" else f"Remove all {n} {one if n == 1 else many}.")
            ),
        ))
    last = after[-1]
    if not complete_now:
        last = _siem_complete(b, ctx, account, [*after, *removals], to, cc_all, ids)
    b.add(
        f"p3.siem-confirmed.{account.key}", 3, f"{vendor} confirms the de-provisioning and the date service ends",
        "manual", [last], {**ids, "security_account": ans.security_account},
        instructions=(
            f"Wait for {vendor} support to answer: they confirm the full de-provisioning"
            + (" (or the move of the account to its new parent)" if moving else "")
            + " and the date service ends. Tick this step with that date and who confirmed it."
        ),
    )


def _siem_complete(
    b: _Builder, ctx: _Ctx, account: VendorAccount, after: Sequence[str], to: str | None, cc_all: list[str],
    ids: Mapping[str, Any],
) -> str:
    vendor = _vendor(account.vendor)
    email = _siem_email(ctx, account, complete=True)
    return b.add(
        f"p3.siem-complete.{account.key}", 3, f"Tell {vendor} that de-provisioning is complete", "notice",
        after,
        {**ids, "to": to, "cc": tuple(dict.fromkeys(cc_all)), "subject": email[0], "email": email[1]},
        instructions=(
            f"Send this e-mail to {to or f'{vendor} support'}; the vendor confirms the full de-provisioning "
            f"and the date service ends.\n\nSubject: {email[0]}\n\n{email[1]}"
        ),
        action="notice.vendor_deprovision" if to else None,
    )


def _siem_email(ctx: _Ctx, account: VendorAccount, *, complete: bool) -> tuple[str, str]:
    """Seed 002's list, filled in from the account and the answers: (subject, body)."""
    inv, ans = ctx.inv, ctx.ans
    vendor = _vendor(account.vendor)
    edition = str(account.details.get("edition") or "unknown")
    if ans.security_account == "keep" and ans.moving_to == "other_msp":
        moving = f"yes, to another MSP; its administrator: {ctx.receiver_label()}"
    elif ans.security_account == "keep":
        moving = f"yes, onto its own; the client's administrator: {ctx.receiver_label()}"
    elif ans.security_account == "close":
        moving = "no, the client stops using the service"
    else:
        moving = "unknown"
    if ans.security_account == "keep":
        delete = "no (the account moves)"
    else:
        delete = "yes" if ans.delete_data else "no"
    sub_account = inv.client_name + (f" ({account.external_id})" if account.external_id else "")
    subject = (f"De-provisioning {'complete' if complete else 'request'}: {sub_account}, "
               f"end of service {ctx.end}")
    opening = (
        f"We have completed the de-provisioning of the sub-account {sub_account}."
        if complete else
        f"We are ending our service for the sub-account {sub_account} and ask you to de-provision it."
    )
    body = (
        f"Hello,\n\n{opening}\n\n"
        f"- Organization: {inv.client_name}\n"
        f"- Current {vendor} Edition: {edition}\n"
        f"- End-of-service date: {ctx.end}\n"
        f"- Is the account moving? {moving}\n"
        f"- De-provisioning complete? {'yes' if complete else 'no'}\n"
        f"- Okay to delete all account data? {delete}\n\n"
        "Thank you."
    )
    return subject, body


# ---- phase 4: backup


def _backup_handover(b: _Builder, ctx: _Ctx, snapshot: str) -> list[str]:
    """Hand-over and verification for each backup account, each job no account holds, and the RMM's
    managed backup when that is all there is. Returns the verification keys; listed before phase 3's
    feature steps because turning off managed backup waits for them."""
    inv = ctx.inv
    to = ctx.receiver_label()
    verified: list[str] = []
    account_vendors = {a.vendor for a in ctx.accounts["backup"]}
    for account in ctx.accounts["backup"]:
        auto = ctx.auto(account.vendor)
        ids = {"account": account.key, "vendor": account.vendor, "external_id": account.external_id,
               "to": ctx.receiver_email()}
        handover = b.add(
            f"p4.handover.{account.key}", 4,
            f"Hand {inv.client_name} a copy of its {_vendor(account.vendor)} backup data",
            "auto" if auto else "manual", [snapshot], ids,
            instructions=None if auto else (
                f"Export a full copy of the latest backup data in {_vendor(account.vendor)}"
                f"{f' ({account.external_id})' if account.external_id else ''} and give it to {to}: a restore "
                "to a disk they own or a download link, with how to read it (the tool and the encryption "
                "key or password, sent separately)."
            ),
            action=f"{account.vendor}.export_copy" if auto else None,
        )
        verified.append(b.add(
            f"p4.handover-verify.{account.key}", 4,
            f"Verify the copy of {inv.client_name}'s {_vendor(account.vendor)} backup data",
            "auto" if auto else "manual", [handover], ids,
            instructions=None if auto else (
                f"With {to}, restore a sample of files from the copy and check it is complete (every "
                "device and share the backups held). Note what was handed over, to whom and when."
            ),
            action=f"{account.vendor}.verify_copy" if auto else None,
        ))
    hostnames = {d.key: d.hostname for d in ctx.devices}
    for job in ctx.jobs:
        if job.product in account_vendors:
            continue
        host = hostnames.get(job.device or "", job.device or "the backup server")
        ids = {"job": job.key, "device": job.device, "hostname": hostnames.get(job.device or ""),
               "product": job.product, "to": ctx.receiver_email()}
        handover = b.add(
            f"p4.handover.job.{job.key}", 4, f"Hand {inv.client_name} the data of backup job {job.name}",
            "manual", [snapshot], ids,
            instructions=(
                f"Make sure {to} holds the data that job '{job.name}' ({_vendor(job.product)}) backs up on "
                f"{host}: hand over the backup target (disk, share or cloud bucket), its credentials and the "
                "encryption key, or a full export of the latest restore point."
            ),
        )
        verified.append(b.add(
            f"p4.handover-verify.job.{job.key}", 4, f"Verify {inv.client_name} can restore from job {job.name}",
            "manual", [handover], ids,
            instructions=(
                f"With {to}, restore a sample file from the data of job '{job.name}' without our "
                "credentials. Note what was handed over, to whom and when."
            ),
        ))
    managed = [d for d in ctx.devices if MANAGED_BACKUP in ctx.features[d.key]]
    if not verified and managed:
        vendors = tuple(sorted({d.rmm_vendor or "unknown" for d in managed}))
        handover = b.add(
            "p4.handover.managed-backup", 4, f"Hand {inv.client_name} a copy of its managed backup data",
            "manual", [snapshot], {"rmm_vendors": vendors, "devices": len(managed), "to": ctx.receiver_email()},
            instructions=(
                f"{len(managed)} device(s) use the managed online backup of {', '.join(map(_vendor, vendors))}. "
                f"Before the feature is turned off, restore or export the latest backup of each to media {to} "
                "owns, with how to read it."
            ),
        )
        verified.append(b.add(
            "p4.handover-verify.managed-backup", 4, f"Verify the copy of {inv.client_name}'s managed backups",
            "manual", [handover], {"rmm_vendors": vendors, "devices": len(managed)},
            instructions=f"With {to}, restore a sample file from each device's copy. Note what was handed over.",
        ))
    return verified


def _phase4_stop(b: _Builder, ctx: _Ctx, approval: str, handed_over: Sequence[str]) -> None:
    inv, ans = ctx.inv, ctx.ans
    hostnames = {d.key: d.hostname for d in ctx.devices}
    account_vendors = {a.vendor for a in ctx.accounts["backup"]}
    verify_of_account = {a.key: f"p4.handover-verify.{a.key}" for a in ctx.accounts["backup"]}
    ended_by_vendor: dict[str, list[str]] = {}
    for job in ctx.jobs:
        if job.product in account_vendors:
            verify = [verify_of_account[a.key] for a in ctx.accounts["backup"] if a.vendor == job.product]
        else:
            verify = [f"p4.handover-verify.job.{job.key}"]
        host = hostnames.get(job.device or "", job.device or "the backup server")
        auto = ctx.auto(job.product) and ans.access != "none"
        ids = {"job": job.key, "device": job.device, "hostname": hostnames.get(job.device or ""),
               "product": job.product, "name": job.name, "not_before": ctx.hold}
        if ans.access == "none":
            how = (f"We have no access to {host}: ask {ctx.receiver_label()} to disable backup job "
                   f"'{job.name}' in {_vendor(job.product)} (or remove our backup target from it), and note "
                   "their confirmation.")
        else:
            how = (f"On {host}, open {_vendor(job.product)} and disable job '{job.name}' (remove its "
                   "schedule), so it no longer runs against our storage.")
        stop = b.add(
            f"p4.job-stop.{job.key}", 4, f"Stop backup job {job.name}", "auto" if auto else "manual",
            [approval, *verify], ids, instructions=None if auto else how,
            action=f"{job.product}.stop_job" if auto else None,
        )
        ended = b.add(
            f"p4.monitoring-end.{job.key}", 4, f"End backup monitoring of job {job.name}", "auto", [stop],
            {**ids, "status": "retired"}, action="backup.retire_job",
        )
        ended_by_vendor.setdefault(job.product, []).append(ended)
    for account in ctx.accounts["backup"]:
        auto = ctx.auto(account.vendor)
        delete = ans.delete_data
        b.add(
            f"p4.account-close.{account.key}", 4,
            f"End {_vendor(account.vendor)} backup management for {inv.client_name}",
            "auto" if auto else "manual",
            [approval, verify_of_account[account.key], *ended_by_vendor.get(account.vendor, [])],
            {"account": account.key, "vendor": account.vendor, "external_id": account.external_id,
             "delete_data": delete, "not_before": ctx.end},
            instructions=None if auto else (
                f"In {_vendor(account.vendor)}, end backup management and monitoring for {inv.client_name}"
                f"{f' ({account.external_id})' if account.external_id else ''} and stop our subscription for "
                "it. "
                + (f"The client allowed deletion: delete its backup data on or after {ctx.end}."
                   if delete else
                   "Do not delete the data: the client did not allow it. Keep it read-only until the "
                   "agreement's retention ends.")
            ),
            action=f"{account.vendor}.close_account" if auto else None,
        )


# ---- phase 5: hosted services


def _phase5(b: _Builder, ctx: _Ctx, approval: str) -> None:
    inv, ans = ctx.inv, ctx.ans
    if ans.moving_to == "other_msp":
        to = f"the incoming MSP ({ctx.receiver_label()})"
    elif ans.moving_to == "own_it":
        to = f"{inv.client_name}'s own IT ({ctx.receiver_label()})"
    else:
        to = f"the provider {inv.client_name} names (ask {ctx.receiver_label()})"
    for account in ctx.accounts["hosted"]:
        service = str(account.details.get("service") or "service")
        vendor = _vendor(account.vendor)
        what = {
            "email": f"Give {to} a Global Administrator (owner) account in the {vendor} tenant, move the "
                     "subscription and its billing to them, then remove our delegated admin / partner "
                     "relationship. Confirm mail still flows after the move.",
            "dns": f"Give {to} control of the DNS zones at {vendor} (or export the zone files for their "
                   "provider), then remove our access. Confirm the records still resolve.",
            "domain": f"Unlock the domains at {vendor}, send the transfer authorization code to {to} and "
                      "update the registrant contact to the client. Confirm the transfer completes.",
        }.get(service, f"Transfer ownership, administrator rights and billing of the {service} at {vendor} "
                       f"to {to}, then remove our access. Confirm it works for them.")
        b.add(
            f"p5.transition.{account.key}", 5, f"Move {inv.client_name}'s {service} ({vendor}) to the new provider",
            "manual", [approval],
            {"account": account.key, "vendor": account.vendor, "external_id": account.external_id,
             "service": service, "moving_to": ans.moving_to, "to": _contact_json(ctx.receiver)},
            instructions=f"{what} Do it before {ctx.end} so the service never stops.",
        )


# ---- phase 6: service desk closeout


def _phase6(b: _Builder, ctx: _Ctx, snapshot: str, approval: str) -> None:
    inv, ans = ctx.inv, ctx.ans
    # credentials go last among the technical steps: until then we may need our admin access
    technical = b.sinks(phases=(3, 4, 5))
    n = inv.open_tickets
    b.add(
        "p6.tickets", 6, f"Close or hand over {inv.client_name}'s open tickets", "manual", [approval],
        # the service desk is a service the client pays for until the end: its tickets are not closed before
        {"client": inv.client, "open_tickets": n, "not_before": ctx.hold},
        instructions=(
            f"{n} ticket(s) were open when the plan was made. Close each one, or hand it over to "
            f"{ctx.receiver_label()} with its notes; check no new ticket was opened since. Tell the service "
            f"desk that {inv.client_name}'s services end on {ctx.end}."
        ),
    )
    b.add(
        "p6.maintenance-stop", 6, f"Stop proactive maintenance for {inv.client_name}", "auto", [approval],
        {"client": inv.client, "after": ctx.end, "not_before": ctx.hold}, action="maintenance.stop",
    )
    b.add(
        "p6.alerts-orphaned", 6, f"Mark future alerts from {inv.client_name} orphaned", "auto", [approval],
        {"client": inv.client, "decision": "orphaned"}, action="triage.orphan_client",
    )
    b.add(
        "p6.health-report", 6, f"Send {inv.client_name} the final system health report", "notice", [snapshot],
        {"client": inv.client, "to": ctx.client_to, "cc": _cc(ctx), "devices": len(ctx.devices)},
        action="notice.final_health_report",
    )
    to = ctx.receiver_label()
    b.add(
        "p6.credentials", 6, f"Hand the administrator credentials to {to}", "manual", technical,
        {"client": inv.client, "to": _contact_json(ctx.receiver), "moving_to": ans.moving_to},
        instructions=(
            f"Give {to} every administrator credential we hold for {inv.client_name} (domain and local "
            "administrator, firewall and network devices, Wi-Fi, hosted services, vendor portals) through a "
            "secure channel, never in plain e-mail. Record who received them and when; then remove them from "
            "our password vault."
        ),
    )


# ---- phase 7: lessons learned and verification


def _phase7(b: _Builder, ctx: _Ctx) -> None:
    inv, ans = ctx.inv, ctx.ans
    lessons = b.add(
        "p7.lessons", 7, f"Record lessons learned from {inv.client_name}'s departure", "manual", b.sinks(),
        {"client": inv.client, "reason": ans.reason, "moving_to": ans.moving_to},
        instructions=(
            f"Record why {inv.client_name} left: reason '{ans.reason}' and the reason codes behind it (price, "
            "responsiveness, service quality, scope, in-house IT, business closed or sold, we ended it), and "
            "what we change in delivery to keep the next client. Note any deactivation issue met. Then close "
            "the project."
        ),
    )
    b.add(
        "p7.verify", 7, f"Verify {inv.client_name}'s exit conditions", "verify", [lessons],
        {"client": inv.client, "conditions": EXIT_CONDITIONS, "end_of_service": ctx.end,
         "rmm_accounts": tuple(a.key for a in ctx.accounts["rmm"]),
         "vendor_accounts": tuple(a.key for kind in ("siem", "backup", "hosted", "other")
                                  for a in ctx.accounts[kind]),
         "backup_jobs": tuple(j.key for j in ctx.jobs)},
        action="offboarding.verify_exit",
    )


# ---------------------------------------------------------------------------------------------- helpers


def _count(value: Any) -> int:
    """A siem item count: a number, or the list of the items themselves."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError("not a count")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("not a count")
        return value
    if isinstance(value, list | tuple):
        return len(value)
    raise ValueError("not a count")


def _client_emails(contacts: Sequence[Contact]) -> tuple[str, ...]:
    with_email = [(c, c.email) for c in contacts if c.email]
    wanted = [email for c, email in with_email if {"primary", "technical", "admin"} & set(c.roles)]
    return tuple(dict.fromkeys(wanted or [email for _, email in with_email]))


def _client_admin(contacts: Sequence[Contact]) -> Contact | None:
    for role in ("admin", "technical", "primary"):
        for contact in contacts:
            if role in contact.roles:
                return contact
    return contacts[0] if contacts else None


def _cc(ctx: _Ctx) -> tuple[str, ...]:
    """The incoming administrator on copy of what the client is told, when there is one."""
    email = ctx.ans.new_contact.email if ctx.ans.new_contact else None
    return (email,) if email and email not in ctx.client_to else ()


def _contact_json(contact: Contact | None) -> dict[str, Any] | None:
    return {"name": contact.name, "email": contact.email} if contact else None


def _feature_off_instructions(ctx: _Ctx, device: Device, feature: str) -> str:
    label = _feature(feature)
    text = (
        f"In the {_vendor(device.rmm_vendor)} dashboard, open client {ctx.inv.client_name}, then device "
        f"{device.hostname}{_agent_id(device)}. Open the device's settings, find {label}, turn it off for this "
        "device and save. Check the dashboard no longer shows it as enabled."
    )
    if feature == ANTIVIRUS:
        text += " This removes managed antivirus from the device; the client has been told to install its own."
    if feature == MANAGED_BACKUP:
        text += " The client already holds a verified copy of its backup data."
    return text


def _uninstall_by_hand(device: Device, access: str) -> str:
    vendor = _vendor(device.rmm_vendor)
    if device.role == "network":
        return (f"{device.hostname} is a network device with no installed agent: in the {vendor} dashboard "
                "remove it from monitoring (delete the device, and its probe or SNMP credentials).")
    where = "at the desk or through a remote session" if access == "full" else "through a remote session"
    return (
        f"Connect to {device.hostname} ({where}). On Windows open Settings > Apps > Installed apps (Control "
        f"Panel > Programs and Features on older versions), select the {vendor} agent and click Uninstall; "
        "on macOS or Linux run the vendor's uninstall script. Then check the device shows offline in "
        f"{vendor}."
    )


def _stopped_then_deleted(b: _Builder, ctx: _Ctx, device: Device, uninstall: str) -> str:
    """After an uninstall on the machine (group policy, or by hand) the RMM keeps listing the agent, offline,
    until its record is deleted (and refuses to delete a client with agents): confirm it stopped reporting
    after the uninstall, then delete its record. Returns the deletion's key."""
    vendor, auto = _vendor(device.rmm_vendor), ctx.auto(device.rmm_vendor)
    ids = {"device": device.key, "hostname": device.hostname, "rmm_vendor": device.rmm_vendor,
           "rmm_id": device.rmm_id, "uninstalled_by": uninstall}
    stopped = b.add(
        f"p3.uninstall-verify.{device.key}", 3,
        f"Confirm the {vendor} agent on {device.hostname} stopped reporting", "auto" if auto else "manual",
        [uninstall], ids,
        instructions=None if auto else (
            f"In the {vendor} dashboard, check that {device.hostname}{_agent_id(device)} shows offline and was "
            f"last seen before its uninstall. If it reported since, the uninstall did not take: uninstall it by "
            "hand: " + _uninstall_by_hand(device, "full")
        ),
        action=f"{device.rmm_vendor}.confirm_agent_stopped" if auto else None,
    )
    return b.add(
        f"p3.agent-delete.{device.key}", 3, f"Delete {device.hostname}'s agent record from {vendor}",
        "auto" if auto else "manual", [stopped], ids,
        instructions=None if auto else (
            f"In the {vendor} dashboard, delete the agent {device.hostname}{_agent_id(device)} (it is offline "
            "and uninstalled: deleting it only removes its record). Check it is no longer listed."
        ),
        action=f"{device.rmm_vendor}.delete_agent" if auto else None,
    )


def _agent_id(device: Device) -> str:
    return f" (agent id {device.rmm_id})" if device.rmm_id else ""


def _vendor(vendor: str | None) -> str:
    if vendor is None:
        return "RMM"
    return VENDOR_LABELS.get(vendor, vendor)


def _feature(feature: str) -> str:
    return FEATURE_LABELS.get(feature, feature.replace("_", " "))


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _plain(value: Any) -> Any:
    """A target as plain JSON values: mappings as dicts, tuples as lists, dates as ISO strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return [_plain(v) for v in items]
    if isinstance(value, date):
        return value.isoformat()
    return value
