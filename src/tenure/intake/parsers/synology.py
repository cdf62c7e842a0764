"""Synology Hyper Backup and Active Backup for Business notifications (DSM notification mail).

Subject, after DSM's subject prefix ("[Synology]" or the NAS name): "Backup task <task> on <NAS>
has completed | has partially completed | has failed". Hyper Backup backs up the NAS itself, so
the device is the NAS; an Active Backup for Business task backs up another machine, which its body
names ("Device: FS01").
"""

from __future__ import annotations

import re

from tenure.intake.parsers.common import (
    FAILURE,
    SUCCESS,
    WARNING,
    MailView,
    ParsedRun,
    decide,
    field,
    one_line,
    parse_size,
    parse_when,
)

_TASK = re.compile(
    # bounded names (Hyper Backup allows 32 characters) keep a long line from costing quadratic time
    r"(?i)\bbackup task[ \t]+\[?(?P<task>[^\]\r\n\t]{1,64}?)\]?"
    r"[ \t]+on[ \t]+\[?(?P<nas>[A-Za-z0-9._-]{1,64})\]?[ \t]+"
    r"(?P<verb>(?:has[ \t]+|was[ \t]+)?(?:been[ \t]+)?"
    r"(?:partially completed|completed with warnings|completed|failed|cancell?ed|aborted|suspended))"
)
_ABB_DEVICE = re.compile(r"(?i)\bof device\s+\[?(?P<device>[A-Za-z0-9._-]+)\]?")


def parse(view: MailView) -> list[ParsedRun] | None:
    text = view.everything
    if not any(mark in text for mark in ("synology", "hyper backup", "active backup", "diskstation")):
        return None
    body = view.text
    said = _TASK.search(view.subject) or _TASK.search(body)
    if said is None:
        return None
    verb = said.group("verb").lower()
    abb = "active backup" in text
    rule = "synology.active_backup" if abb else "synology.hyper_backup"
    verdict = decide(
        [
            (FAILURE, rule, any(word in verb for word in ("failed", "cancel", "aborted", "suspended"))),
            (WARNING, rule, "partially" in verb or "warning" in verb),
            (SUCCESS, rule, "completed" in verb),
        ]
    )
    if verdict is None:
        return None
    status, rule = verdict
    device = said.group("nas")
    if abb:
        named = field(body, "Device", "Device name", "Computer", "Server") or _group(_ABB_DEVICE.search(body))
        device = named or device
    problem = field(body, "Error", "Reason", "Error message", "Details", "Warning")
    size = field(body, "Transferred size", "Transferred data", "Data transferred", "Backup size", "Size")
    return [
        ParsedRun(
            product="synology",
            job=said.group("task").strip(),
            device=device,
            status=status,
            started_at=parse_when(field(body, "Start time", "Started", "Backup start time"), view.zone),
            finished_at=parse_when(
                field(body, "End time", "Finish time", "Completed time", "Finished"), view.zone
            ),
            size_bytes=parse_size(size),
            rule=rule,
            detail=one_line(problem if status != SUCCESS and problem else said.group(0)),
        )
    ]


def _group(match: re.Match[str] | None) -> str | None:
    return match.group("device") if match else None
