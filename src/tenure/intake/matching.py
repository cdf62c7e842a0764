"""Who a batch of signals is about: clients, devices and backup jobs.

Exact lookups pick the few candidate rules of each signal, and `triage.rules.CompiledRules` weighs them
beside the MSP's mapping rules (made ready once and kept with the clients), so matching stays one rule however
it is fed. Only what the batch names is read: the devices of its
hostnames (by `device.host_key`), the backup jobs it names, and the agreements, contacts and offboarding of
the clients it matched. What it reads of clients is kept for the next batch while the database's count of
their changes (`facts_version`, kept by triggers) stays the same: a storm's batches do not read five
thousand clients again each.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tenure.agreements.models import Agreement
from tenure.bulk import chunks
from tenure.clients.models import BackupJob, Client, Contact, Device
from tenure.clients.rules import FeeAgreement, host_key, is_former
from tenure.db.members import one_of
from tenure.intake.models import FactsVersion, MappingRule
from tenure.intake.sources import Signal
from tenure.offboarding.models import OffboardingRun
from tenure.triage import rules as triage
from tenure.vocabulary import FEE_KINDS

log = logging.getLogger("tenure.intake.matching")


@lru_cache(maxsize=4096)
def _parsed_list(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _strings(value: Any) -> tuple[str, ...]:
    """A JSON list column read as text (an agreement's covers or excludes, a client's domains; the queries cast
    it, so PostgreSQL's driver does not parse every row's list), parsed once per distinct list (a book repeats
    a handful of them)."""
    if isinstance(value, str):
        return _parsed_list(value)
    return tuple(value or ())


@dataclass(frozen=True, slots=True)
class _Agreement:
    key: str
    kind: str
    start: date
    end: date | None
    covers: tuple[str, ...]
    excludes: tuple[str, ...]

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass
class ClientFacts:
    """What triage needs of a matched client: its agreements, contacts, preferences and offboarding."""

    id: int
    key: str
    name: str
    billable_alerts: bool
    forward_alerts: bool
    agreements: list[_Agreement] = field(default_factory=list)
    fee_agreements: list[FeeAgreement] = field(default_factory=list)
    contacts: list[tuple[str, list[str]]] = field(default_factory=list)
    offboarded_on: date | None = None
    _decisions: dict[tuple[Any, ...], triage.Decision] = field(default_factory=dict)

    def coverage(self, day: date, service: str) -> triage.Coverage:
        """The client's coverage of `service` on `day`."""
        active = [a for a in self.agreements if a.active_on(day)]
        covering = next((a for a in active if service in a.covers and service not in a.excludes), None)
        return triage.Coverage(
            former=is_former(self.offboarded_on, tuple(self.fee_agreements), day),
            covered_services=triage.covered_services([(a.covers, a.excludes) for a in active]),
            billable_alerts=self.billable_alerts,
            forward_alerts=self.forward_alerts,
            covering_agreement=covering.key if covering else None,
            covering_kind=covering.kind if covering else None,
            client_name=self.name,
        )

    def decide(self, day: date, service: str, kind: str, job_known: bool, job_status: str | None) -> triage.Decision:
        """`triage.rules.decide` on the client's coverage that day: a batch asks a client the same few
        questions again and again, each is answered once."""
        key = (day, service, kind, job_known, job_status)
        found = self._decisions.get(key)
        if found is None:
            coverage = self.coverage(day, service)
            found = self._decisions[key] = triage.decide(
                service, kind, coverage, job_known=job_known, job_status=job_status
            )
        return found

    def forward_to(self) -> list[str]:
        """Where a forwarded alert goes: the technical and primary contacts, else every contact."""
        chosen = [e for e, roles in self.contacts if "technical" in roles or "primary" in roles]
        return chosen or [e for e, _ in self.contacts]


# the tables whose every change the database counts in `facts_version` (migration 0023): what `_Known` reads
FACT_TABLES = ("client", "agreement", "contact", "mapping_rule", "offboarding_run")


@dataclass
class _Known:
    """What matching and triage read of every client, kept between batches while `facts_version` says that
    none of it changed: clients by key, name and domain, the mapping rules, and each client's facts once a
    batch has asked for them. Several threads of a process may share it (`tenure serve` writes beside its
    worker): what they add to it is added whole (see `MatchIndex.load_facts`)."""

    tag: tuple[str, int] | None  # facts_version's (instance, version) when read; None: not to be kept
    by_key: dict[str, tuple[int, str]] = field(default_factory=dict)
    key_of: dict[int, str] = field(default_factory=dict)
    by_name: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    clients: dict[int, tuple[str, bool, bool]] = field(default_factory=dict)
    domains: list[tuple[str, Any]] = field(default_factory=list)  # read as stored; parsed if a sender asks
    by_domain: dict[str, list[str]] | None = None
    mapping: list[tuple[str, str, str]] = field(default_factory=list)
    rules: triage.CompiledRules = field(default_factory=lambda: triage.CompiledRules(()))  # the mapping, ready
    facts: dict[str, ClientFacts] = field(default_factory=dict)

    @classmethod
    def read(cls, session: Session, tag: tuple[str, int] | None) -> _Known:
        known = cls(tag)
        for cid, key, name, domains, billable, forward in session.execute(
            select(
                Client.id,
                Client.key,
                Client.name,
                cast(Client.domains, Text),
                Client.billable_alerts,
                Client.forward_alerts,
            )
        ):
            known.by_key[key.lower()] = (cid, key)
            known.key_of[cid] = key
            known.clients[cid] = (name, billable, forward)
            known.by_name[name.lower()].append(key)
            if domains and domains != "[]":
                known.domains.append((key, domains))
        for key, f, p in session.execute(
            select(Client.key, MappingRule.field, MappingRule.pattern).join(Client, Client.id == MappingRule.client_id)
        ):
            if triage.valid_rule_field(f):
                known.mapping.append((key, f, p))
            else:  # only the database's prompt writes one (a book's rule is checked): left aside, not fatal
                log.warning("mapping rule of %s: field %r is not one Tenure matches on; intake leaves it aside", key, f)
        known.rules = triage.CompiledRules(known.mapping)
        return known


# per engine, what was last read; and whether its database counts every change (its triggers in place)
_known: WeakKeyDictionary[Engine, _Known] = WeakKeyDictionary()
_counted: WeakKeyDictionary[Engine, bool] = WeakKeyDictionary()

_TRIGGERS_SQLITE = text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'facts_changed_%'")
_TRIGGERS_PG = text(
    "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'facts_changed_%' "
    "AND tgrelid = ANY(CAST(:tables AS regclass[]))"
)


def facts_counted(session: Session) -> bool:
    """Whether every trigger of migration 0023 is in place, so `facts_version` counts every change to the
    facts (a SQLite migration that rebuilds one of those tables drops its triggers). Asked once per engine."""
    engine = session.get_bind()
    found = _counted.get(engine)  # type: ignore[arg-type]
    if found is None:
        if engine.dialect.name == "sqlite":
            found = session.scalar(_TRIGGERS_SQLITE) == 3 * len(FACT_TABLES)
        else:
            tables = "{" + ",".join(FACT_TABLES) + "}"
            found = session.scalar(_TRIGGERS_PG, {"tables": tables}) == 2 * len(FACT_TABLES)
        _counted[engine] = found  # type: ignore[index]
    return found


_VERSION = select(FactsVersion.instance, FactsVersion.version).where(FactsVersion.id == 1)
# the count's row made again if someone emptied the table: a new instance, so nothing read before matches it
_MADE_AGAIN = text(
    "INSERT INTO facts_version (id, instance, version) VALUES (1, :instance, 0) ON CONFLICT (id) DO NOTHING"
)


def known_clients(session: Session) -> _Known:
    """What this engine's last batch read of the clients, if nothing of it changed since; else read afresh.
    The version is read before anything it covers: a change committed after it is seen by the next batch."""
    tag = None
    if facts_counted(session):
        row = session.execute(_VERSION).first()
        if row is None:
            session.execute(_MADE_AGAIN, {"instance": uuid.uuid4().hex})
            row = session.execute(_VERSION).first()
        tag = (row[0], row[1]) if row is not None else None
    engine = session.get_bind()
    known = _known.get(engine)  # type: ignore[arg-type]
    if tag is not None and known is not None and known.tag == tag:
        return known
    known = _Known.read(session, tag)
    if tag is not None:
        _known[engine] = known  # type: ignore[index]
    return known


class MatchIndex:
    """Who is who for one batch of signals: the clients as `known_clients` keeps them, and what the batch
    itself names (the devices of its hostnames, the backup jobs it names)."""

    def __init__(self, session: Session, signals: list[Signal]):
        self.session = session
        self.known = known = known_clients(session)
        self.by_key, self.key_of, self.by_name = known.by_key, known.key_of, known.by_name
        self._clients, self.mapping, self._facts = known.clients, known.mapping, known.facts
        self.rules = known.rules
        # hostname (whole, and the part before the first dot, lower-case) -> (client, device id, hostname)
        self.devices: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        self.hostnames: dict[int, str] = {}
        wanted = sorted({host_key(sg.hostname) for sg in signals if sg.hostname})
        if wanted:
            for key, device_id, hostname in session.execute(
                select(Client.key, Device.id, Device.hostname)
                .join(Client, Client.id == Device.client_id)
                .where(one_of(session, Device.host_key, wanted))
            ):
                self.devices[hostname.lower()].append((key, device_id, hostname))
                self.devices[hostname.lower().split(".")[0]].append((key, device_id, hostname))
                self.hostnames[device_id] = hostname
        # only the backup jobs this batch names (by ping UUID, key or name), not every job there is
        self.jobs_by_uuid: dict[str, BackupJob] = {}
        self.jobs: dict[tuple[int, str], BackupJob] = {}
        self.jobs_by_key: dict[str, BackupJob] = {}
        self._named = sorted({(sg.job or sg.title) for sg in signals if sg.kind == "backup"})
        self.reload_jobs()
        self._subject_rules = "subject" in self.rules.fields
        # the labels that can change where a payload goes: the two that name a client, and those a rule looks at.
        # Only they key the memo below: an Alertmanager alert's other labels (instance, mountpoint, pod, …)
        # differ from alert to alert, and would make every alert of a storm a new set of hints
        self._labels_read = ("client", "tenant", *(n for n in self.rules.label_names if n not in ("client", "tenant")))
        self._matched: dict[tuple[Any, ...], str | None] = {}

    def reload_jobs(self) -> None:
        """The backup jobs this batch names, read again: another batch may have created or changed one since
        (intake's recording lock orders the batches; see intake.service)."""
        for chunk in chunks(self._named):
            lowered = [n.lower() for n in chunk]
            for job in self.session.scalars(
                select(BackupJob)
                .where(
                    BackupJob.key.in_(chunk) | BackupJob.name.in_(chunk) | func.lower(BackupJob.ping_uuid).in_(lowered)
                )
                .execution_options(populate_existing=True)
            ):
                self.add_job(job)

    def add_job(self, job: BackupJob) -> None:
        self.jobs_by_key[job.key] = job
        if job.ping_uuid:
            self.jobs_by_uuid[job.ping_uuid.lower()] = job
        if job.client_id is not None:
            self.jobs[(job.client_id, job.name.lower())] = job
            self.jobs[(job.client_id, job.key.lower())] = job

    @property
    def by_domain(self) -> dict[str, list[str]]:
        """Client keys by each of their e-mail domains (lower-case)."""
        if self.known.by_domain is None:
            by_domain: dict[str, list[str]] = defaultdict(list)
            for key, domains in self.known.domains:
                for domain in _strings(domains):
                    by_domain[domain.lower()].append(key)
            self.known.by_domain = by_domain  # whole, for another thread that shares it
        return self.known.by_domain

    def candidates(self, signal: Signal) -> list[tuple[str, str, str]]:
        """The signal's own candidate rules, found by exact lookups: its intake tag, its devices, the client it
        names, its sender's domains (the mapping rules are weighed beside them, `CompiledRules`)."""
        rules: list[tuple[str, str, str]] = []
        for address in (signal.recipient or "").split(","):
            local = address.split("@")[0]
            if "+" in local:
                tag = local.split("+", 1)[1].lower()
                if tag in self.by_key:
                    rules.append((self.by_key[tag][1], "intake", tag))
        if signal.hostname:
            host = signal.hostname.lower()
            for key, _, hostname in self.devices.get(host, []) + self.devices.get(host.split(".")[0], []):
                rules.append((key, "device", hostname))
        for hint in (signal.client_hint, signal.labels.get("client"), signal.labels.get("tenant")):
            if hint:
                hint = hint.lower()
                if hint in self.by_key:
                    rules.append((self.by_key[hint][1], "client", hint))
                rules += [(key, "client", hint) for key in self.by_name.get(hint, [])]
        if signal.sender and "@" in signal.sender:
            parts = signal.sender.split("@", 1)[1].lower().split(".")
            for i in range(len(parts) - 1):
                domain = ".".join(parts[i:])
                rules += [(key, "domain", domain) for key in self.by_domain.get(domain, [])]
        return rules

    def client_of(self, signal: Signal, meta: dict[str, Any] | None) -> str | None:
        job = self.job_of_uuid(signal)
        if job is not None and job.client_id is not None:
            return self.key_of[job.client_id]
        meta_client = (meta or {}).get("client")
        if meta_client and str(meta_client).lower() in self.by_key:
            return self.by_key[str(meta_client).lower()][1]
        # a batch brings the same sender again and again: the same hints are matched once
        hints = (
            signal.recipient,
            signal.hostname,
            signal.client_hint,
            tuple(map(signal.labels.get, self._labels_read)),
            signal.sender,
            signal.title if self._subject_rules else None,
        )
        if hints not in self._matched:
            # the client a payload names is often named twice (Alertmanager's `client` label is also its hint):
            # one candidate, weighed once
            rules = list(dict.fromkeys(self.candidates(signal)))
            hint = (signal.client_hint or "").lower()
            if (
                len(rules) == 1
                and rules[0][1] == "client"
                and rules[0][2] == hint
                and not self.rules.may_place(signal.sender, signal.hostname, signal.title, signal.labels)
            ):
                # the usual event: it names its client and nothing else could place it. Its one rule is that
                # name, which always places it (find_match's "label" tier normalises the two alike), so the
                # answer is known without building the hints and weighing every tier
                self._matched[hints] = rules[0][0]
            else:
                found = self.rules.find(signal.hints(), rules)
                self._matched[hints] = found.client if found else None
        return self._matched[hints]

    def job_of_uuid(self, signal: Signal) -> BackupJob | None:
        """The job a ping (by its UUID) or a missed run (by its key) is about; others are matched by name."""
        if signal.source == "ping":
            return self.jobs_by_uuid.get((signal.job or "").lower())
        if signal.source in ("missed", "snapshot"):
            return self.jobs_by_key.get(signal.job or "")
        return None

    def device_of(self, client: str, signal: Signal) -> int | None:
        if not signal.hostname:
            return None
        host = signal.hostname.lower()
        for key, device_id, _ in self.devices.get(host, []) + self.devices.get(host.split(".")[0], []):
            if key == client:
                return device_id
        return None

    def hostname_of(self, device_id: int | None) -> str | None:
        return self.hostnames.get(device_id) if device_id is not None else None

    def load_facts(self, client_keys: set[str]) -> None:
        """The agreements, contacts and offboarding of these clients: a few queries in all. Each client's facts
        are made whole before they are kept (`_Known` may be shared by another thread)."""
        ids = {self.by_key[k.lower()][0]: k for k in sorted(client_keys) if k not in self._facts}
        if not ids:
            return
        loaded: dict[str, ClientFacts] = {}
        for cid, key in ids.items():
            name, billable, forward = self._clients[cid]
            loaded[key] = ClientFacts(cid, key, name, billable, forward)
        s, client_ids = self.session, list(ids)
        for cid, key, kind, start, end, covers, excludes, fee in s.execute(
            select(
                Agreement.client_id,
                Agreement.key,
                Agreement.kind,
                Agreement.start,
                Agreement.end,
                cast(Agreement.covers, Text),
                cast(Agreement.excludes, Text),
                Agreement.monthly_fee,
            ).where(one_of(s, Agreement.client_id, client_ids))
        ):
            facts = loaded[ids[cid]]
            facts.agreements.append(_Agreement(key, kind, start, end, _strings(covers), _strings(excludes)))
            if kind in FEE_KINDS:
                facts.fee_agreements.append(FeeAgreement(start, end, fee or Decimal(0)))
        forwarding = [cid for cid in client_ids if self._clients[cid][2]]  # only a forward is sent to contacts
        if forwarding:
            for cid, address, roles in s.execute(
                select(Contact.client_id, Contact.email, Contact.roles).where(one_of(s, Contact.client_id, forwarding))
            ):
                if address:
                    loaded[ids[cid]].contacts.append((address, roles))
        for cid, ended in s.execute(
            select(OffboardingRun.client_id, func.max(OffboardingRun.end_of_service))
            .where(OffboardingRun.state == "done", one_of(s, OffboardingRun.client_id, client_ids))
            .group_by(OffboardingRun.client_id)
        ):
            loaded[ids[cid]].offboarded_on = ended
        self._facts.update(loaded)

    def facts(self, client_key: str) -> ClientFacts:
        if client_key not in self._facts:
            self.load_facts({client_key})
        return self._facts[client_key]
