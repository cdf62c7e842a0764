"""Triage rules (DOMAIN.md "Alerts and triage"): fingerprints, the decision table, client matching and
the unpaid-work arithmetic.

Pure: no database, no I/O, no clock. The caller looks up what the rules need (the client's coverage on
the alert's date, the backup job, the mapping rules) and stores what they decide.

Decision table, in the order it is applied:

==============  ==========================================================================================
``quarantine``  no client matched the alert (``coverage`` is None)
``orphaned``    the client is ``former``: an agent left behind is still reporting
``suppress``    a backup result of a job that is ``paused`` or ``retired``: recorded, no ticket
``pending``     a backup job never seen before (or still pending) and the client's coverage lacks
                ``backup_monitoring``; with it, the job activates itself (``Decision.activate_job``)
``ticket``      the client's active agreements cover the alert's service (a backup result needs
                ``backup_monitoring``)
``quote``       not covered, and the client opted in to billable alerts
``forward``     not covered, and the client asked to receive its own alerts
``suppress``    not covered otherwise
==============  ==========================================================================================
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from fnmatch import translate
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

DECISIONS: tuple[str, ...] = ("ticket", "quote", "forward", "suppress", "orphaned", "pending", "quarantine")
KINDS: tuple[str, ...] = ("alert", "backup")
BACKUP_SERVICE = "backup_monitoring"

# ------------------------------------------------------------------------------------------ fingerprints

_NATIVE = re.compile(r"[0-9a-f]{8,64}")
_PARTS = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False) would build one per call


def fingerprint(source: str, *parts: object) -> str:
    """A stable, short identity for "the same alert again": ``<source>:<16 hex digits>``.

    The parts are hashed (SHA-256 of their JSON list, so ``("a", "bc")`` and ``("ab", "c")`` differ;
    None counts as an empty string). A single part that already is a lower-case hex digest, a tool's own
    fingerprint such as Alertmanager's, is kept as it is: ``alertmanager:1a30ba71cca2921f``.
    """
    if not source:
        raise ValueError("a fingerprint needs a source")
    if len(parts) == 1 and isinstance(parts[0], str) and _NATIVE.fullmatch(parts[0]):
        return f"{source}:{parts[0]}"
    return _digest(source, tuple("" if part is None else str(part) for part in parts))


@lru_cache(maxsize=65536)
def _digest(source: str, parts: tuple[str, ...]) -> str:
    # an alert that fires again brings the same parts: hashed once while it is remembered
    text = _PARTS.encode([source, *parts])
    # surrogatepass: a lone surrogate (JSON's "\ud800", raw bytes in a mail header) hashes like any text
    # instead of failing; valid text encodes exactly as plain UTF-8
    return f"{source}:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


# ---------------------------------------------------------------------------------------------- decide


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a matched client has on the alert's date, as the caller computed it.

    `former`: the client's class is ``former`` on that date (the one class that changes a decision).
    `covered_services` is the union of `covers` minus `excludes` of the agreements active on that date.
    `covering_agreement` (a key, e.g. ``acme-managed``) and `covering_kind` (e.g. ``managed``) name the
    agreement that covers the alert's service, and `client_name` the client, for the decision's reason.
    """

    former: bool = False
    covered_services: frozenset[str] = frozenset()
    billable_alerts: bool = False
    forward_alerts: bool = False
    covering_agreement: str | None = None
    covering_kind: str | None = None
    client_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.covered_services, frozenset):
            object.__setattr__(self, "covered_services", frozenset(self.covered_services))


@dataclass(frozen=True, slots=True)
class Decision:
    """One of DECISIONS and a sentence saying why. `activate_job`: a new backup job activates itself."""

    decision: str
    reason: str
    activate_job: bool = False


def decide(
    signal_service: str,
    kind: str,
    coverage: Coverage | None,
    *,
    job_known: bool = True,
    job_status: str | None = None,
) -> Decision:
    """The decision of DOMAIN.md's table for one alert or backup result (see the module docstring).

    `kind` is ``alert`` or ``backup``. For a backup result, `job_known` says whether its job was seen
    before and `job_status` is that job's status (``active``, ``pending``, ``paused``, ``retired``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if coverage is None:
        return Decision("quarantine", "No client matched this alert: it waits in quarantine until a mapping "
                                      "rule places it, then it can be replayed.")
    name = coverage.client_name or "the client"
    owner = f"{coverage.client_name}'s" if coverage.client_name else "the client's"
    if coverage.former:
        return Decision("orphaned", f"{_cap(name)} is a former client: an agent or job left behind is still "
                                    "reporting, which counts as a deactivation issue.")
    service = BACKUP_SERVICE if kind == "backup" else signal_service
    covered = service in coverage.covered_services
    activate = False
    if kind == "backup":
        if job_known and job_status in ("paused", "retired"):
            return Decision("suppress", f"The backup job is {job_status}: the result is recorded, no ticket and "
                                        "no tech time.")
        if not job_known or job_status == "pending":
            if not covered:
                what = "never seen before" if not job_known else "still pending"
                return Decision("pending", f"The backup job is {what} and no active agreement of {name} covers "
                                           f"{BACKUP_SERVICE}: it is held until someone activates it.")
            activate = True
    if covered:
        if coverage.covering_agreement:
            kind_word = f"{coverage.covering_kind} " if coverage.covering_kind else ""
            reason = f"{_cap(owner)} {kind_word}agreement {coverage.covering_agreement} covers {service}."
        else:
            reason = f"An active agreement of {name} covers {service}."
        if activate:
            reason += " The new backup job activates itself."
        return Decision("ticket", reason, activate_job=activate)
    not_covered = f"No active agreement of {name} covers {service}"
    if coverage.billable_alerts:
        return Decision("quote", f"{not_covered}; {name} opted in to billable alerts, so the ticket needs the "
                                 "client's approval before any work.")
    if coverage.forward_alerts:
        return Decision("forward", f"{not_covered}; {name} asked to receive its own alerts, so it goes to the "
                                   "client's contact, with no tech time.")
    return Decision("suppress", f"{not_covered}: recorded, no ticket and no tech time.")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ------------------------------------------------------------------------------------------ matching


class MatchRule(NamedTuple):
    """A way to recognise a client's payloads. `field` is one of:

    - ``intake``: `pattern` is the ``+tag`` of the per-client intake address (``alerts+acme@…``), or a
      whole address (with ``@``), compared with the recipients;
    - ``sender`` | ``sender_domain`` | ``hostname`` | ``subject`` | ``label:<name>``: an explicit
      mapping rule, `pattern` a case-insensitive glob (``fnmatch``);
    - ``device``: a known device hostname of the client (case-insensitive; a hint's short name, the
      part before the first dot, also matches);
    - ``client``: a name by which the client appears in alert labels (``client``/``tenant``) or in the
      RMM (the Tactical client name), compared with the hint's `client_hint`;
    - ``domain``: one of the client's e-mail domains; the sender's domain matches it or a subdomain.
    """

    client: str
    field: str
    pattern: str


@dataclass(frozen=True, slots=True)
class ClientMatch:
    client: str
    field: str
    pattern: str
    tier: str  # intake | mapping | hostname | label | domain


EXPLICIT_FIELDS: tuple[str, ...] = ("sender", "sender_domain", "hostname", "subject")
DERIVED_FIELDS: tuple[str, ...] = ("intake", "device", "client", "domain")
_TIERS: tuple[str, ...] = ("intake", "mapping", "hostname", "label", "domain")


def valid_rule_field(field: str) -> bool:
    """Whether `field` is a field a MatchRule may have."""
    if field.startswith("label:"):
        return bool(field[len("label:"):].strip())
    return field in EXPLICIT_FIELDS or field in DERIVED_FIELDS


def match_client(hints: Mapping[str, Any], rules: Iterable[tuple[str, str, str]]) -> str | None:
    """The key of the client a payload belongs to, or None. See `find_match`."""
    found = find_match(hints, rules)
    return found.client if found else None


def find_match(hints: Mapping[str, Any], rules: Iterable[tuple[str, str, str]]) -> ClientMatch | None:
    """Which rule places a payload, trying in order: the per-client intake address, explicit mapping
    rules, a device hostname, the client label, the sender's domain.

    `hints` may hold ``recipient`` (an address or a list of them, e.g. To and Delivered-To), ``sender``
    (``Name <addr>`` or an address), ``subject``, ``hostname``, ``client_hint`` and ``labels`` (a
    mapping); any may be missing. Within one step the most specific match wins (an exact pattern over a
    glob, a longer pattern over a shorter one, a whole hostname over a short name, a subdomain over its
    domain); when equally specific matches name different clients, that step is ambiguous and the next
    step is tried. The result depends only on the hints and the set of rules, not on their order.
    """
    return CompiledRules(rules).find(hints)


_TIER_OF_FIELD = {"intake": "intake", "device": "hostname", "client": "label", "domain": "domain"}


class CompiledRules:
    """Matching rules made ready once for many payloads (intake keeps the MSP's mapping rules so between
    batches): each rule sits under the one tier that can use it, and the explicit mapping rules are looked up
    by the payload's own values: an exact pattern by its value, a glob among those of its field filed by letters
    the value begins with, ends with or holds (`_anchor`). So placing a payload costs what its hints can match,
    not a look at every rule of every client.
    `find` decides as `find_match` says, with `more` (a payload's own candidates) weighed alongside."""

    __slots__ = ("by_tier", "exact", "fields", "globs", "label_names", "lengths")

    def __init__(self, rules: Iterable[tuple[str, str, str]]):
        self.by_tier: dict[str, list[MatchRule]] = {tier: [] for tier in _TIERS if tier != "mapping"}
        # the mapping tier: (field, lower-case pattern) -> [(score, rule)] for exact patterns; the globs by
        # (field, where, letters): where "^" the letters every match begins with, "$" those it ends with, "~"
        # letters it holds somewhere, "" none (tried on every value); the lengths of those letters by (field,
        # where)
        self.exact: dict[tuple[str, str], list[tuple[tuple[int, ...], MatchRule]]] = {}
        self.globs: dict[tuple[str, str, str], list[tuple[Any, tuple[int, ...], MatchRule]]] = {}
        self.lengths: dict[tuple[str, str], list[int]] = {}
        self.fields: set[str] = set()  # the fields of the rules held (a label's as `label:<name>`)
        for rule in map(MatchRule._make, rules):
            if not valid_rule_field(rule.field):
                raise ValueError(f"mapping rule of {rule.client}: field {rule.field!r} is not one of "
                                 f"{', '.join((*EXPLICIT_FIELDS, *DERIVED_FIELDS))} or label:<name>")
            field = rule.field
            if field.startswith("label:"):
                field = "label:" + field[len("label:"):].strip()
            self.fields.add(field)
            tier = _TIER_OF_FIELD.get(field)
            if tier is not None:
                self.by_tier[tier].append(rule)
                continue
            pattern = rule.pattern.strip().lower()
            literal = not any(ch in pattern for ch in "*?[")
            score = (1 if literal else 0, len(pattern.replace("*", "").replace("?", "")))
            if literal:
                self.exact.setdefault((field, pattern), []).append((score, rule))
                continue
            # as fnmatchcase matches: the pattern translated to a regular expression, tried only on values that
            # begin with, end with or hold the letters it is filed by
            matcher = re.compile(translate(pattern)).match
            where, choices = _anchor(pattern)
            # of the letters it could be filed by, those fewest globs are filed by yet (the longer if as few)
            letters = min(choices, key=lambda held: (len(self.globs.get((field, where, held), ())), -len(held)))
            self.globs.setdefault((field, where, letters), []).append((matcher, score, rule))
            lengths = self.lengths.setdefault((field, where), [])
            if len(letters) not in lengths:
                lengths.append(len(letters))
        # the payload labels some rule looks at (a label rule's name, its spaces trimmed, as it is looked up)
        self.label_names = tuple(sorted(f[len("label:"):] for f in self.fields if f.startswith("label:")))

    def find(self, hints: Mapping[str, Any], more: Iterable[tuple[str, str, str]] = ()) -> ClientMatch | None:
        view = _HintView.of(hints)
        # a payload's own candidates are a few derived rules: put under their tiers here, and only an explicit
        # one (or one of no known field, to be refused) made ready as the MSP's are
        extra: dict[str, list[MatchRule]] = {}
        explicit = []
        for rule in map(MatchRule._make, more):
            tier = _TIER_OF_FIELD.get(rule.field)
            if tier is None:
                explicit.append(rule)
            else:
                extra.setdefault(tier, []).append(rule)
        ready = CompiledRules(explicit) if explicit else None
        for tier in _TIERS:
            candidates = self._scored(tier, view, extra.get(tier, ()))
            if ready is not None:
                candidates += ready._scored(tier, view)
            if not candidates:
                continue
            best = max(score for score, _ in candidates)
            top = sorted(rule for score, rule in candidates if score == best)  # by client, field, pattern
            if len({rule.client for rule in top}) == 1:
                return ClientMatch(top[0].client, top[0].field, top[0].pattern, tier)
        return None

    def may_place(self, sender: str | None, hostname: str | None, subject: str | None, labels: Iterable[str]) -> bool:
        """Whether a rule held could place a payload with these values (its sender, hostname, subject and label
        names) ahead of the client it names: a rule of a tier other than the mapping's, or a mapping rule of a
        field the payload has a value for."""
        fields = self.fields
        if not fields:
            return False
        if any(self.by_tier.values()):
            return True
        return bool(
            (subject and "subject" in fields)
            or (sender and ("sender" in fields or "sender_domain" in fields))
            or (hostname and "hostname" in fields)
            or any(f"label:{name}" in fields for name in labels)
        )

    def _scored(
        self, tier: str, view: _HintView, more: Sequence[MatchRule] = ()
    ) -> list[tuple[tuple[int, ...], MatchRule]]:
        """(specificity, rule) for every rule of this tier that matches the payload, `more` (of this tier, not
        the mapping's) with them."""
        if tier != "mapping":
            found = []
            for rules in (self.by_tier[tier], more):
                for rule in rules:
                    score = _score(tier, rule, view)
                    if score is not None:
                        found.append((score, rule))
            return found
        if not self.exact and not self.globs:
            return []
        fields = self.fields
        values = [
            (field, value)
            for field, value in (("sender", view.sender), ("sender_domain", view.sender_domain),
                                 ("hostname", view.hostname), ("subject", view.subject))
            if value is not None and field in fields
        ]  # fmt: skip
        values += [(f"label:{name}", value) for name, value in view.labels.items() if f"label:{name}" in fields]
        found = []
        for field, value in values:
            value = value.lower()
            found += self.exact.get((field, value), ())
            if not self.globs:
                continue
            tried = [self.globs.get((field, "", ""), ())]
            for length in self.lengths.get((field, "^"), ()):
                tried.append(self.globs.get((field, "^", value[:length]), ()))
            for length in self.lengths.get((field, "$"), ()):
                tried.append(self.globs.get((field, "$", value[-length:]), ()))
            for length in self.lengths.get((field, "~"), ()):
                # each glob once, though its letters may stand more than once in the value
                held = {value[i : i + length] for i in range(len(value) - length + 1)}
                tried += [self.globs.get((field, "~", letters), ()) for letters in held]
            for globs in tried:
                for matcher, score, rule in globs:
                    if matcher(value):
                        found.append((score, rule))
        return found


_HELD = 4  # a glob that neither begins nor ends with letters is filed by four letters it holds (or fewer)


def _anchor(glob: str) -> tuple[str, list[str]]:
    """Where a glob may be filed: ("^", [the letters before its first wildcard]) if every match begins with
    them, else ("$", [those after its last]) if every match ends with them, else ("~", the runs of four letters,
    or a shorter run whole, that every match holds somewhere: `*(beta)*`), else ("", [""]) (tried on every
    value). A glob with a class `[…]` is filed by its beginning only."""
    head = re.split(r"[*?\[]", glob, maxsplit=1)[0]
    if head:
        return "^", [head]
    if "[" in glob:
        return "", [""]
    runs = re.split(r"[*?]", glob)
    if runs[-1]:
        return "$", [runs[-1]]
    held = [run[i : i + _HELD] for run in runs if run for i in range(max(1, len(run) - _HELD + 1))]
    if held:
        return "~", held
    return "", [""]


@dataclass(frozen=True, slots=True)
class _HintView:
    recipients: tuple[str, ...]  # addresses, lower-case
    sender: str | None  # address, lower-case
    sender_domain: str | None
    subject: str | None
    hostname: str | None  # lower-case
    client_hint: str | None  # lower-case, stripped
    labels: Mapping[str, str]

    @staticmethod
    def of(hints: Mapping[str, Any]) -> _HintView:
        raw_recipients = hints.get("recipient") or hints.get("recipients") or ()
        if isinstance(raw_recipients, str):
            raw_recipients = [raw_recipients]
        recipients = tuple(
            addr.strip().lower() for _, addr in getaddresses([str(r) for r in raw_recipients]) if "@" in addr
        ) if raw_recipients else ()
        sender_raw = hints.get("sender")
        sender = parseaddr(str(sender_raw))[1].strip().lower() if sender_raw else ""
        sender_domain = sender.rpartition("@")[2].rstrip(".") if "@" in sender else None
        subject = hints.get("subject")
        hostname = hints.get("hostname")
        client_hint = hints.get("client_hint")
        labels = hints.get("labels") or {}
        return _HintView(
            recipients=recipients,
            sender=sender or None,
            sender_domain=sender_domain or None,
            subject=str(subject) if subject else None,
            hostname=str(hostname).strip().lower().rstrip(".") or None if hostname else None,
            client_hint=" ".join(str(client_hint).split()).lower() or None if client_hint else None,
            labels={str(k): str(v) for k, v in dict(labels).items() if v is not None},
        )


def _score(tier: str, rule: MatchRule, view: _HintView) -> tuple[int, ...] | None:
    """A derived rule's specificity in its tier, None if it does not match (the mapping tier's explicit rules
    are looked up in `CompiledRules`)."""
    field, pattern = rule.field, rule.pattern.strip()
    if tier == "intake":
        if field != "intake" or not pattern:
            return None
        want = pattern.lower()
        for address in view.recipients:
            if "@" in want:
                if address == want:
                    return (1,)
            else:
                local = address.partition("@")[0]
                if "+" in local and local.partition("+")[2] == want:
                    return (1,)
        return None
    if tier == "hostname":
        if field != "device" or not view.hostname or not pattern:
            return None
        known = pattern.lower().rstrip(".")
        if view.hostname == known:
            return (2,)
        if view.hostname.split(".")[0] == known.split(".")[0] and ("." not in known or "." not in view.hostname):
            return (1,)
        return None
    if tier == "label":
        if field != "client" or not view.client_hint:
            return None
        return (1,) if " ".join(pattern.split()).lower() == view.client_hint else None
    if tier == "domain":
        if field != "domain" or not view.sender_domain or not pattern:
            return None
        domain = pattern.lower().lstrip("@").rstrip(".")
        if view.sender_domain == domain or view.sender_domain.endswith("." + domain):
            return (len(domain.split(".")),)
        return None
    return None


# ------------------------------------------------------------------------------------------ unpaid work

DEFAULT_UNPAID_MODEL: Mapping[str, int] = MappingProxyType(
    {"reach_decision_maker": 10, "win_approval": 15, "undocumented_setup": 20}
)
# a forwarded alert goes to the client's own contact: no technician looks at it, so it costs no minutes
# (seed 004: the time goes on phoning, winning approval and fixing; forwarding does none of that)
REACHES_A_PERSON: frozenset[str] = frozenset({"quote"})


@dataclass(frozen=True, slots=True)
class UnpaidWork:
    """Seed 004's arithmetic over a set of decisions.

    `reached`: uncovered alerts that reached a technician (quote decisions; a forward goes to the client,
    not to anyone of the MSP, and costs nothing); `minutes`: what
    they cost, `reached` × the model's total; `suppressed`: alerts suppressed; `minutes_avoided`:
    `suppressed` × the model's total; `per_alert`: the model's total.
    """

    reached: int
    suppressed: int
    per_alert: int
    minutes: int
    minutes_avoided: int


def unpaid_minutes(
    decisions: Iterable[str | Decision], model: Mapping[str, int] = DEFAULT_UNPAID_MODEL
) -> UnpaidWork:
    """Minutes uncovered alerts cost, and minutes suppression avoided (DOMAIN.md "Unpaid work").

    `decisions` are decision names or Decision values; `model` gives the minutes of each step an
    uncovered alert costs once it reaches a person (10 to reach a decision maker, 15 to win approval,
    20 to fix a setup nobody documented by default).
    """
    per_alert = 0
    for step, minutes in model.items():
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
            raise ValueError(f"unpaid-work model: {step} must be a whole number of minutes ≥ 0, not {minutes!r}")
        per_alert += minutes
    reached = suppressed = 0
    for item in decisions:
        name = item.decision if isinstance(item, Decision) else item
        if name not in DECISIONS:
            raise ValueError(f"decision {name!r} is not one of {', '.join(DECISIONS)}")
        if name in REACHES_A_PERSON:
            reached += 1
        elif name == "suppress":
            suppressed += 1
    return UnpaidWork(reached, suppressed, per_alert, reached * per_alert, suppressed * per_alert)


def covered_services(agreements: Sequence[tuple[Iterable[str], Iterable[str]]]) -> frozenset[str]:
    """The union of `covers` minus `excludes` of the given active agreements' (covers, excludes)."""
    result: set[str] = set()
    for covers, excludes in agreements:
        result |= set(covers) - set(excludes)
    return frozenset(result)
