"""Pure parsers for the non-email intake sources: each turns one payload into `Signal` values.

No database, no I/O, no clock: values in, values out. What cannot be read raises `IntakeError` with a
message naming the place (``alertmanager.alerts[1].status: 'pending' is not firing or resolved``); the
caller quarantines the stored payload, to replay once the parser or the sender is fixed.

Sources (the HTTP endpoints of INTERFACE.md):

``alertmanager`` — `parse_alertmanager`
    Prometheus Alertmanager's webhook, version 4, as Alertmanager sends it::

        {"version": "4", "groupKey": …, "truncatedAlerts": 0, "status": "firing", "receiver": …,
         "groupLabels": {…}, "commonLabels": {…}, "commonAnnotations": {…}, "externalURL": …,
         "alerts": [{"status": "firing"|"resolved", "labels": {…}, "annotations": {…},
                     "startsAt": RFC 3339, "endsAt": RFC 3339, "generatorURL": …, "fingerprint": …}]}

    One signal per alert, fingerprinted by Alertmanager's own ``fingerprint``. Hints: labels
    ``client``/``tenant`` (client), ``hostname``/``host``/``nodename``/``instance`` (host, without
    port). Service: the ``service`` label when it names one of DOMAIN.md's services, else read from the
    ``alertname`` (patches → patching, antivirus → antivirus, backups → backup_monitoring), else
    ``monitoring``.

``event`` — `parse_event`: the generic JSON event, one object or a list of them::

        {"source": "uptime-kuma",        # required: the tool that raised it
         "title": "Web site down",       # required
         "status": "firing",             # required: "firing" | "resolved"
         "client": "acme",               # optional: client key or name (a hint for matching)
         "host": "ACME-DC01",            # optional: hostname
         "service": "monitoring",        # optional: one of DOMAIN.md's services (read from the title if absent)
         "severity": "critical",         # optional: critical | error | warning | info (default warning)
         "fingerprint": "web-acme",      # optional: the sender's identity for "the same alert again"
         "time": "2026-10-03T22:15:00Z", # optional: RFC 3339 with an offset, or Unix seconds
         "labels": {"site": "main"}}     # optional: string values

    Without a fingerprint, one is made from (source, client, host, service, title).

``tactical`` — `parse_tactical`: a Tactical RMM alert-action webhook. Tactical posts whatever body the
    admin writes, filling ``{{model.field}}`` variables. The recommended body (the Failure Action's;
    the Resolved Action's is the same with ``"event": "resolved"``)::

        {"event": "trigger",
         "alert_id": "{{alert.id}}", "alert_type": "{{alert.alert_type}}",
         "severity": "{{alert.severity}}", "message": "{{alert.message}}",
         "alert_time": "{{alert.alert_time}}", "resolved": "{{alert.resolved}}",
         "hostname": "{{agent.hostname}}", "agent_id": "{{agent.agent_id}}",
         "client": "{{client.name}}", "site": "{{site.name}}"}

    Lenient: any field may be missing or left as an unfilled ``{{…}}``; ``agent.hostname``-style dotted
    keys and nested ``{"agent": {"hostname": …}}`` objects are read too. It must be a JSON object with at
    least a message, an alert id or a hostname. Fingerprint: the alert id (Tactical keeps one alert per
    failing check until it resolves), else (hostname, alert type, message).

``restic`` — `parse_restic`: the output of ``restic backup --json`` (JSON lines: ``status``,
    ``verbose_status``, ``error`` and ``exit_error`` messages, and a final ``summary``). With the exit
    code: 0 success, 3 warning (some source data could not be read), any other failure. Without it:
    an ``exit_error`` is a failure; a summary with errors a warning; a summary alone a success; no
    summary a failure. restic does not name the job or host: the caller passes them (query parameters
    ``job``, ``host``, ``client`` of the endpoint).

``ping`` — `parse_ping`: a backup job check-in at ``/ping/<uuid>[/start|/fail|/<exit-code>]``
    (Healthchecks' model): plain or ``/0`` success, ``/start`` started, ``/fail`` or another exit code
    (1 to 255) failure. The job is the uuid.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from tenure.errors import TenureError
from tenure.triage.rules import BACKUP_SERVICE, fingerprint
from tenure.vocabulary import SERVICES

ALERT_STATUSES: tuple[str, ...] = ("firing", "resolved")
BACKUP_STATUSES: tuple[str, ...] = ("success", "warning", "failure", "started")
SEVERITIES: tuple[str, ...] = ("critical", "error", "warning", "info")


class IntakeError(TenureError):
    """A payload that cannot be read; the message names what is wrong and where."""


class PartlyRead(IntakeError):
    """A payload some of whose records could be read and some not (one alert of an Alertmanager group, one
    event of a list): the readable ones (`signals`) go on, each unreadable one waits aside with its reason
    (`unread`). One bad record never stops the records beside it."""

    def __init__(self, signals: list[Signal], unread: list[str]):
        super().__init__(_first_of(unread))
        self.signals = signals
        self.unread = unread


def _first_of(reasons: list[str]) -> str:
    return reasons[0] + (f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else "")


def _each_read(signals: list[Signal], unread: list[str]) -> list[Signal]:
    """The records' signals if every one was read; else `PartlyRead` (some were) or `IntakeError` (none)."""
    if unread and signals:
        raise PartlyRead(signals, unread)
    if unread:
        raise IntakeError(_first_of(unread))
    return signals


@dataclass(frozen=True, slots=True)
class Signal:
    """One alert or backup result, as read from a payload, before matching and triage.

    `kind` is ``alert`` (status ``firing``|``resolved``) or ``backup`` (``success``|``warning``|
    ``failure``|``started``). `service` is the service an agreement must cover. `occurred_at` is
    timezone-aware, or None when the payload does not say (the caller then uses the time received).
    `client_hint`, `hostname`, `sender`, `recipient`, `labels` and `job` are hints for matching;
    `details` keeps what a technician may want to read (JSON-ready values).
    """

    source: str  # alertmanager | event | tactical | restic | ping
    kind: str
    status: str
    title: str
    severity: str  # critical | error | warning | info
    service: str
    fingerprint: str
    occurred_at: datetime | None = None
    client_hint: str | None = None
    hostname: str | None = None
    sender: str | None = None
    recipient: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    job: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def hints(self) -> dict[str, Any]:
        """The matching hints, as `tenure.triage.rules.match_client` takes them (the title stands for
        the subject, so ``subject`` mapping rules apply to every source)."""
        return {
            "client_hint": self.client_hint,
            "hostname": self.hostname,
            "sender": self.sender,
            "recipient": self.recipient,
            "labels": dict(self.labels),
            "subject": self.title,
        }


# ------------------------------------------------------------------------------------------ shared


def _load(payload: bytes | str | Mapping[str, Any] | Sequence[Any], where: str) -> Any:
    if isinstance(payload, bytes | bytearray):
        try:  # orjson reads what both read as the standard library does, ten times as fast
            return orjson.loads(payload)
        except orjson.JSONDecodeError:  # a BOM, NaN, a 65-bit integer, or not JSON: the standard library says
            pass
        try:
            payload = bytes(payload).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise IntakeError(f"{where}: the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if isinstance(payload, str):
        if not payload.strip():
            raise IntakeError(f"{where}: the body is empty")
        try:
            return json.loads(payload)
        except json.JSONDecodeError as exc:
            raise IntakeError(f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        except RecursionError:  # the decoder stops itself at Python's recursion limit, cheaply
            raise IntakeError(f"{where}: JSON nested too deeply to be a notification; refused") from None
    return payload


def _text(value: Any) -> str | None:
    """A scalar as stripped text; None for missing, empty, or an unfilled ``{{template}}`` variable."""
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, dict | list):
            return None
        value = str(value)
    text = value.strip()
    if not text or (text.startswith("{{") and text.endswith("}}")) or text.lower() in ("none", "null"):
        return None
    return text


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise IntakeError(f"{where}: expected an object of strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise IntakeError(f"{where}.{key}: expected a string, got {type(item).__name__}")
        if item is not None:
            out[str(key)] = str(item)
    return out


_GO_ZERO_YEAR = 1


def parse_time(value: Any, where: str, *, naive: str = "error") -> datetime | None:
    """An RFC 3339 / ISO 8601 string (any fraction digits, ``Z`` allowed) or Unix seconds, as a
    timezone-aware datetime; None for a missing value or Go's zero time (``0001-01-01T00:00:00Z``).

    A time without an offset is an error (`naive="error"`) or unknown (`naive="none"`).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise IntakeError(f"{where}: {value!r} is not a time")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise IntakeError(f"{where}: {value!r} is not a Unix time") from None
    text = _text(value)
    if text is None:
        return None
    moment = _read_time(text)
    if moment is _NOT_A_TIME:
        raise IntakeError(f"{where}: {text!r} is not an RFC 3339 time")
    if moment is _NO_OFFSET:
        if naive == "none":
            return None
        raise IntakeError(f"{where}: {text!r} has no time zone offset")
    return cast("datetime | None", moment)


_NOT_A_TIME, _NO_OFFSET = object(), object()


@lru_cache(maxsize=4096)
def _read_time(text: str) -> datetime | object | None:
    """`parse_time` of a text: the time, None for Go's zero time, or why it is not one. Remembered: a storm's
    alerts bring the same few times (Alertmanager's `endsAt` of every firing alert is the zero time)."""
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    # Python reads at most microseconds: cut longer fractions (Go writes nanoseconds)
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text)
    if cleaned.endswith(("z", "Z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return _NOT_A_TIME
    if moment.tzinfo is None or moment.utcoffset() is None:
        return _NO_OFFSET
    if moment.year == _GO_ZERO_YEAR:
        return None
    return moment


def normalise_severity(value: Any, default: str = "warning") -> str:
    """critical | error | warning | info, from the words tools use; `default` for anything else."""
    text = (_text(value) or "").lower()
    if text in ("critical", "crit", "fatal", "emergency", "emerg", "alert", "page", "high", "disaster", "p1"):
        return "critical"
    if text in ("error", "err", "major", "failure", "failed", "p2"):
        return "error"
    if text in ("warning", "warn", "minor", "medium", "average", "p3"):
        return "warning"
    if text in ("info", "informational", "information", "notice", "low", "none", "debug", "ok", "p4", "p5"):
        return "info"
    return default


_PATCHING = re.compile(r"\bpatch|windows ?updates?\b|\bwsus\b|\b(pending|missing|failed|available) (os )?updates?\b"
                       r"|\bupdates? (pending|missing|failed|available)\b")
_ANTIVIRUS = re.compile(r"anti ?-?virus|\bav\b|\bdefender\b|virus|malware|\bthreats?\b|bitdefender|sentinel ?one"
                        r"|\bsophos\b|\beset\b|\bwebroot\b")
_BACKUP = re.compile(r"backup|\brestic\b|\bveeam\b|\bacronis\b|\bmacrium\b|\bduplicati\b|\bborg\b")


def _words(text: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    return " ".join(re.sub(r"[_\-./:]+", " ", spaced).lower().split())


@lru_cache(maxsize=4096)  # an alert's name or title comes again and again
def infer_service(*texts: str | None) -> str:
    """The service an alert is about, read from its name or message: patching, antivirus,
    backup_monitoring, else monitoring. CamelCase and snake_case names are split into words first."""
    words = " ".join(_words(text) for text in texts if text)
    if _PATCHING.search(words):
        return "patching"
    if _ANTIVIRUS.search(words):
        return "antivirus"
    if _BACKUP.search(words):
        return BACKUP_SERVICE
    return "monitoring"


def _host_of(value: str | None) -> str | None:
    """A hostname from a label such as ``instance``: without scheme, path and port."""
    if not value:
        return None
    text = value.strip()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    elif text.startswith("[") and "]" in text:  # [ipv6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    text = text.split("/", 1)[0].strip()
    return text or None


# ------------------------------------------------------------------------------------ alertmanager


def parse_alertmanager(payload: bytes | str | Mapping[str, Any]) -> list[Signal]:
    """One Signal per alert of an Alertmanager webhook (version 4)."""
    where = "alertmanager"
    data = _load(payload, where)
    if not isinstance(data, Mapping):
        raise IntakeError(f"{where}: expected a JSON object, got {type(data).__name__}")
    version = data.get("version")
    if version is None:
        raise IntakeError(f"{where}.version: missing; Alertmanager webhooks carry version \"4\"")
    if str(version) != "4":
        raise IntakeError(f"{where}.version: {version!r} is not supported, only \"4\"")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise IntakeError(f"{where}.alerts: missing or not a list")
    common_labels = _str_map(data.get("commonLabels"), f"{where}.commonLabels")
    envelope = {
        "receiver": data.get("receiver"),
        "group_key": data.get("groupKey"),
        "external_url": data.get("externalURL"),
        "truncated_alerts": data.get("truncatedAlerts", 0),
    }
    signals: list[Signal] = []
    unread: list[str] = []
    for index, alert in enumerate(alerts):
        try:
            signals.append(_alertmanager_alert(alert, f"{where}.alerts[{index}]", common_labels, envelope))
        except IntakeError as exc:  # this alert waits aside; the others of the group go on
            unread.append(str(exc))
    return _each_read(signals, unread)


def _alertmanager_alert(
    alert: Any, at: str, common_labels: dict[str, str], envelope: dict[str, Any]
) -> Signal:
    if not isinstance(alert, Mapping):
        raise IntakeError(f"{at}: expected an object, got {type(alert).__name__}")
    status = alert.get("status")
    if status not in ALERT_STATUSES:
        raise IntakeError(f"{at}.status: {status!r} is not firing or resolved")
    labels = {**common_labels, **_str_map(alert.get("labels"), f"{at}.labels")}
    annotations = _str_map(alert.get("annotations"), f"{at}.annotations")
    starts = parse_time(alert.get("startsAt"), f"{at}.startsAt")
    ends = parse_time(alert.get("endsAt"), f"{at}.endsAt")
    name = _text(labels.get("alertname"))
    summary = _text(annotations.get("summary")) or _text(annotations.get("title"))
    native = _text(alert.get("fingerprint"))
    if native:
        fp = fingerprint("alertmanager", native.lower())
    else:
        fp = fingerprint("alertmanager", *(f"{k}={v}" for k, v in sorted(labels.items())))
    label_service = _text(labels.get("service"))
    service = label_service if label_service in SERVICES else infer_service(name)
    hostname = None
    for key in ("hostname", "host", "nodename", "instance"):
        hostname = _host_of(_text(labels.get(key)))
        if hostname:
            break
    title = summary or name or f"Alert {native or fp}"
    if summary and name and name.lower() not in summary.lower():
        title = f"{name}: {summary}"
    return Signal(
        source="alertmanager",
        kind="alert",
        status=str(status),
        title=title[:500],
        severity=normalise_severity(labels.get("severity")),
        service=service,
        fingerprint=fp,
        occurred_at=(ends or starts) if status == "resolved" else starts,
        client_hint=_text(labels.get("client")) or _text(labels.get("tenant")),
        hostname=hostname,
        labels=labels,
        details={
            **envelope,
            "annotations": annotations,
            "starts_at": alert.get("startsAt"),
            "ends_at": alert.get("endsAt"),
            "generator_url": alert.get("generatorURL"),
            "alertmanager_fingerprint": native,
        },
    )


# ------------------------------------------------------------------------------------------- event


def parse_event(payload: bytes | str | Mapping[str, Any] | Sequence[Any]) -> list[Signal]:
    """The generic JSON event (module docstring): one object, or a list of them."""
    data = _load(payload, "event")
    if isinstance(data, Mapping):
        return [_event(data, "event")]
    if isinstance(data, list):
        if not data:
            raise IntakeError("event: the list is empty")
        signals: list[Signal] = []
        unread: list[str] = []
        for index, item in enumerate(data):
            try:
                signals.append(_event(item, f"event[{index}]"))
            except IntakeError as exc:  # this event waits aside; the others of the list go on
                unread.append(str(exc))
        return _each_read(signals, unread)
    raise IntakeError(f"event: expected a JSON object or a list of them, got {type(data).__name__}")


def _event(data: Any, where: str) -> Signal:
    if not isinstance(data, Mapping):
        raise IntakeError(f"{where}: expected an object, got {type(data).__name__}")
    origin = _text(data.get("source"))
    if origin is None:
        raise IntakeError(f"{where}.source: missing (the tool that raised the event)")
    title = _text(data.get("title"))
    if title is None:
        raise IntakeError(f"{where}.title: missing")
    status = data.get("status")
    if status not in ALERT_STATUSES:
        raise IntakeError(f"{where}.status: {status!r} is not firing or resolved")
    service = _text(data.get("service"))
    if service is not None and service not in SERVICES:
        raise IntakeError(f"{where}.service: {service!r} is not one of {', '.join(SERVICES)}")
    severity = _text(data.get("severity"))
    if severity is not None and severity.lower() not in SEVERITIES:
        normal = normalise_severity(severity, default="")
        if not normal:
            raise IntakeError(f"{where}.severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
        severity = normal
    labels = _str_map(data.get("labels"), f"{where}.labels")
    client = _text(data.get("client"))
    host = _text(data.get("host"))
    service = service or infer_service(title)
    own = _text(data.get("fingerprint"))
    fp = fingerprint("event", origin, own) if own else fingerprint(
        "event", origin, client, (host or "").lower(), service, title)
    return Signal(
        source="event",
        kind="alert",
        status=str(status),
        title=title[:500],
        severity=(severity or "warning").lower(),
        service=service,
        fingerprint=fp,
        occurred_at=parse_time(data.get("time"), f"{where}.time"),
        client_hint=client,
        hostname=host,
        labels=labels,
        details={"origin": origin, "fingerprint": own},
    )


# ---------------------------------------------------------------------------------------- tactical


def _pick(data: Mapping[str, Any], *paths: str) -> str | None:
    """The first filled value among dotted paths, read as flat keys ("agent.hostname"), plain keys
    ("hostname") or nested objects ({"agent": {"hostname": …}})."""
    for path in paths:
        if path in data:
            found = _text(data[path])
            if found is not None:
                return found
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        found = _text(node)
        if found is not None:
            return found
    return None


_TRUE = ("true", "yes", "1", "resolved")


def parse_tactical(payload: bytes | str | Mapping[str, Any]) -> list[Signal]:
    """The alert of a Tactical RMM alert-action webhook body (module docstring)."""
    where = "tactical"
    data = _load(payload, where)
    if not isinstance(data, Mapping):
        raise IntakeError(f"{where}: expected a JSON object, got {type(data).__name__}")
    message = _pick(data, "message", "alert_message", "alert.message")
    alert_id = _pick(data, "alert_id", "alert.id", "id")
    hostname = _pick(data, "hostname", "agent_hostname", "agent.hostname", "agent")
    if message is None and alert_id is None and hostname is None:
        raise IntakeError(f"{where}: no message, alert_id or hostname: nothing says what the alert is")
    alert_type = _pick(data, "alert_type", "alert.alert_type", "type")
    client = _pick(data, "client", "client_name", "client.name", "agent.client.name", "agent.site.client.name")
    site = _pick(data, "site", "site_name", "site.name", "agent.site.name")
    event = (_pick(data, "event", "status", "action") or "").lower()
    resolved_flag = (_pick(data, "resolved", "alert.resolved") or "").lower()
    resolved = "resolve" in event or event in ("ok", "cleared", "recovered") or resolved_flag in _TRUE
    raw_time = _pick(data, "resolved_on", "alert.resolved_on") if resolved else None
    raw_time = raw_time or _pick(data, "alert_time", "alert.alert_time", "time")
    occurred = parse_time(raw_time, f"{where}.alert_time", naive="none")
    severity_raw = _pick(data, "severity", "alert_severity", "alert.severity")
    if alert_id:
        fp = fingerprint("tactical", alert_id)
    else:
        fp = fingerprint("tactical", (hostname or "").lower(), alert_type, message)
    if alert_type == "availability":
        title = message or f"{hostname} is overdue"
    else:
        title = message or f"{alert_type or 'Tactical RMM'} alert on {hostname or 'an agent'}"
    return [Signal(
        source="tactical",
        kind="alert",
        status="resolved" if resolved else "firing",
        title=title[:500],
        severity=normalise_severity(severity_raw, default="error" if alert_type == "availability" else "warning"),
        service="monitoring" if alert_type == "availability" else infer_service(message),
        fingerprint=fp,
        occurred_at=occurred,
        client_hint=client,
        hostname=hostname,
        labels={k: v for k, v in (("site", site), ("alert_type", alert_type), ("client", client)) if v},
        details={
            "alert_id": alert_id,
            "alert_type": alert_type,
            "agent_id": _pick(data, "agent_id", "agent.agent_id"),
            "site": site,
            "message": message,
            "alert_time": raw_time,
        },
    )]


# ------------------------------------------------------------------------------------------ restic

_RESTIC_SUMMARY_FIELDS: tuple[str, ...] = (
    "files_new", "files_changed", "files_unmodified", "dirs_new", "dirs_changed", "dirs_unmodified",
    "data_blobs", "tree_blobs", "data_added", "data_added_packed", "total_files_processed",
    "total_bytes_processed", "total_duration", "snapshot_id", "backup_start", "backup_end", "dry_run",
)
_MAX_ERRORS = 20


def restic_status(exit_code: int) -> str:
    """restic's exit code as a backup status: 0 success, 3 warning (some source data could not be
    read), anything else failure (restic: an unknown exit code MUST be treated as a failure)."""
    if exit_code == 0:
        return "success"
    if exit_code == 3:
        return "warning"
    return "failure"


def parse_restic(
    output: bytes | str,
    *,
    exit_code: int | None = None,
    job: str | None = None,
    hostname: str | None = None,
    client_hint: str | None = None,
) -> list[Signal]:
    """The result of one ``restic backup --json`` run, from its JSON lines (stdout, with or without
    stderr). Lines that are not JSON (restic prints some messages as text) are kept as errors' context."""
    where = "restic"
    if isinstance(output, bytes | bytearray):
        output = bytes(output).decode("utf-8-sig", errors="replace")
    messages: list[Mapping[str, Any]] = []
    text_lines: list[str] = []
    for number, line in enumerate(output.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            item = json.loads(stripped)
        except RecursionError:
            raise IntakeError(f"{where}: line {number} is JSON nested too deeply; refused") from None
        except json.JSONDecodeError:
            text_lines.append(stripped)
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("message_type"), str):
            raise IntakeError(f"{where}: line {number} is JSON but not a restic message (no message_type)")
        messages.append(item)
    if not messages:
        raise IntakeError(f"{where}: no JSON line found; expected the output of `restic backup --json`")
    summary: Mapping[str, Any] | None = None
    errors: list[str] = []
    exit_error: Mapping[str, Any] | None = None
    error_count = 0
    for item in messages:
        kind = item["message_type"]
        if kind == "summary":
            summary = item
        elif kind == "error":
            error_count += 1
            errors.append(_restic_error(item))
        elif kind == "exit_error":
            exit_error = item
        elif kind == "status":
            count = item.get("error_count")
            if isinstance(count, int) and not isinstance(count, bool):
                error_count = max(error_count, count)
    if exit_error is not None:
        code = exit_error.get("code")
        errors.append(str(exit_error.get("message") or f"exit code {code}"))
    if exit_code is None and exit_error is not None and isinstance(exit_error.get("code"), int):
        exit_code = int(exit_error["code"])
    if exit_code is not None:
        if isinstance(exit_code, bool) or not isinstance(exit_code, int) or exit_code < 0:
            raise IntakeError(f"{where}: exit code {exit_code!r} is not a whole number ≥ 0")
        status = restic_status(exit_code)
    elif summary is None:
        status = "failure"
    else:
        status = "warning" if error_count else "success"
    if summary is None and not errors:
        errors.append("restic printed no summary: the backup did not finish")
    details: dict[str, Any] = {"exit_code": exit_code, "error_count": error_count}
    if summary is not None:
        details.update({key: summary[key] for key in _RESTIC_SUMMARY_FIELDS if key in summary})
        if isinstance(summary.get("total_bytes_processed"), int):
            details["size_bytes"] = summary["total_bytes_processed"]
    details["errors"] = errors[:_MAX_ERRORS]
    if text_lines:
        details["text"] = text_lines[-_MAX_ERRORS:]
    finished = parse_time(summary.get("backup_end"), f"{where}.summary.backup_end") if summary else None
    started = parse_time(summary.get("backup_start"), f"{where}.summary.backup_start") if summary else None
    if started:
        details["started_at"] = started.isoformat()
    name = job or hostname or "restic"
    title = f"restic backup {name}: {status}"
    if status != "success" and errors:
        title += f" ({errors[0]})"
    return [Signal(
        source="restic",
        kind="backup",
        status=status,
        title=title[:500],
        severity=_BACKUP_SEVERITY[status],
        service=BACKUP_SERVICE,
        fingerprint=fingerprint("restic", job, (hostname or "").lower()),
        occurred_at=finished,
        client_hint=client_hint,
        hostname=hostname,
        job=job,
        details=details,
    )]


def _restic_error(item: Mapping[str, Any]) -> str:
    error = item.get("error")
    if isinstance(error, Mapping):
        message = _text(error.get("message"))
    else:
        message = _text(error)
    message = message or _text(item.get("message")) or "error"
    where = " ".join(part for part in (_text(item.get("during")), _text(item.get("item"))) if part)
    return f"{message} ({where})" if where else message


_BACKUP_SEVERITY = {"success": "info", "started": "info", "warning": "warning", "failure": "error"}


# -------------------------------------------------------------------------------------------- ping

_PING = re.compile(r"/?ping/(?P<uuid>[^/]+)(?:/(?P<suffix>[^/]*))?/?")


def parse_ping(path: str, *, body: bytes | str | None = None, received_at: datetime | None = None) -> list[Signal]:
    """A check-in at ``/ping/<uuid>[/start|/fail|/<exit-code>]`` (a path or a whole URL; a query is
    ignored). `body` (a log the job posted) is kept in the details, cut to 10,000 characters.
    `received_at` becomes `occurred_at`."""
    where = "ping"
    route = urlsplit(path).path if "://" in path else path.split("?", 1)[0]
    found = _PING.fullmatch(route.strip())
    if not found:
        raise IntakeError(f"{where}: {path!r} is not /ping/<uuid>[/start|/fail|/<exit-code>]")
    try:
        job = str(uuid.UUID(found["uuid"]))
    except ValueError:
        raise IntakeError(f"{where}: {found['uuid']!r} is not a UUID") from None
    suffix = (found["suffix"] or "").lower()
    exit_code: int | None = None
    if suffix == "":
        status = "success"
    elif suffix == "start":
        status = "started"
    elif suffix == "fail":
        status = "failure"
    elif suffix.isdigit():
        exit_code = int(suffix)
        if exit_code > 255:
            raise IntakeError(f"{where}: exit code {exit_code} is out of range 0 to 255")
        status = "success" if exit_code == 0 else "failure"
    else:
        raise IntakeError(f"{where}: {suffix!r} is not start, fail or an exit code")
    if received_at is not None and (received_at.tzinfo is None or received_at.utcoffset() is None):
        raise ValueError("received_at must be timezone-aware")
    log = body.decode("utf-8", errors="replace") if isinstance(body, bytes | bytearray) else body
    details: dict[str, Any] = {"exit_code": exit_code}
    if log and log.strip():
        details["log"] = log[:10_000]
    title = f"Backup check-in {job}: {status}" + (f" (exit code {exit_code})" if exit_code else "")
    return [Signal(
        source="ping",
        kind="backup",
        status=status,
        title=title,
        severity=_BACKUP_SEVERITY[status],
        service=BACKUP_SERVICE,
        fingerprint=fingerprint("ping", job),
        occurred_at=received_at,
        job=job,
        details=details,
    )]


PARSERS = {
    "alertmanager": parse_alertmanager,
    "event": parse_event,
    "tactical": parse_tactical,
}
"""The JSON sources by name, for callers that dispatch on the endpoint (restic and ping take more)."""
