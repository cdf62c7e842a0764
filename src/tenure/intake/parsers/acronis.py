"""Acronis Cyber Protect (Cloud) backup status notifications.

Acronis sends one message per backup at the level the user chose: "Backup failed", "Backup
succeeded with warnings", "Backup succeeded" (sender noreply-abc@cloud.acronis.com unless
rebranded). Subject: "Backup of <device> succeeded | succeeded with warnings | failed". The body
repeats the result and lists Device, Plan, Start time, Finish time, Backed up data and the error.
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

_SUBJECT = re.compile(
    r"(?i)\bbackup of\s+['\"]?(?P<what>.+?)['\"]?\s+"
    r"(?P<result>succeeded with warnings|completed with warnings"
    r"|succeeded|completed successfully|was successful|failed|has failed)\b"
)
_BODY_RESULT = re.compile(r"(?im)^[ \t]*backup[ \t]+(?P<result>succeeded with warnings|succeeded|failed)\b")


def parse(view: MailView) -> list[ParsedRun] | None:
    if "acronis" not in view.everything:
        return None
    subject = _SUBJECT.search(view.subject)
    body = view.text
    headline = _BODY_RESULT.search(body)
    state = (field(body, "Status", "Result") or "").lower()
    if not (subject or headline or state):
        return None
    said = (
        subject.group("result").lower() if subject else "",
        headline.group("result").lower() if headline else "",
    )
    verdict = decide(
        [
            (FAILURE, "acronis.subject", "fail" in said[0]),
            (FAILURE, "acronis.body", "fail" in said[1] or state.startswith(("failed", "error"))),
            (WARNING, "acronis.subject", "warning" in said[0]),
            (WARNING, "acronis.body", "warning" in said[1] or "warning" in state),
            (SUCCESS, "acronis.subject", bool(said[0])),
            (SUCCESS, "acronis.body", bool(said[1]) or state.startswith(("succeeded", "success", "ok"))),
        ]
    )
    if verdict is None:
        return None
    status, rule = verdict
    device = field(body, "Device", "Device name", "Machine", "Workload", "Resource") or (
        subject.group("what") if subject else None
    )
    job = field(body, "Plan", "Protection plan", "Backup plan") or device
    if not job:
        return None
    problem = field(body, "Error message", "Error", "Reason", "Warning", "Warnings", "Details")
    size = field(body, "Backed up data", "Backed up", "Data backed up", "Backup size", "Size")
    return [
        ParsedRun(
            product="acronis",
            job=job,
            device=device,
            status=status,
            started_at=parse_when(field(body, "Start time", "Started", "Started at"), view.zone),
            finished_at=parse_when(
                field(body, "Finish time", "End time", "Finished", "Completed"), view.zone
            ),
            size_bytes=parse_size(size),
            rule=rule,
            detail=one_line(problem if status != SUCCESS and problem else f"Backup {status}: {job}"),
        )
    ]
