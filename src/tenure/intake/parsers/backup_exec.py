"""Veritas Backup Exec job notifications.

Subject: 'Backup Exec Alert: Job Success (Server: "SILVER") (Job: "SILVER-Daily Incremental")', or
"Job Failed", "Job Cancellation". The body is the job's completion block: "Job server:", "Job
name:", "Job started: Friday, January 10, 2025 at 11:00:02 PM", "Job ended:", "Completed status:
Successful | Failed | Canceled". The trap: a "Job Success" alert whose body reads "The job completed
successfully.  However, the following conditions were encountered:" is a warning.
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

_ALERT = re.compile(
    r"(?i)backup exec alert:\s*(?P<category>[^(]+?)\s*(?:\(server:\s*\"?(?P<server>[^\")]+)\"?\)\s*)?"
    r"(?:\(job:\s*\"?(?P<job>[^\"]+?)\"?\))?\s*$"
)
_HOWEVER = re.compile(
    r"(?is)completed successfully\.?\s+however,\s+the following conditions were encountered:?"
)
_FAILED_STATUS = re.compile(r"(?i)^(?:failed|failure|error|cancell?ed|missed|aborted)\b")
_BYTES = re.compile(r"(?i)\b(?:processed|byte count:?)\s+(?P<n>\d[\d,.]*)\s*bytes\b")


def parse(view: MailView) -> list[ParsedRun] | None:
    body = view.text
    alert = _ALERT.search(view.subject)
    completed_as_written = field(body, "Completed status", "Job completion status", "Job status") or ""
    completed = completed_as_written.lower()
    if not (alert or "backup exec" in view.everything) or not (alert or completed):
        return None
    category = alert.group("category").lower() if alert else ""
    verdict = decide(
        [
            (FAILURE, "backup_exec.subject", bool(re.search(r"fail|cancel|error|missed", category))),
            (FAILURE, "backup_exec.completed_status", bool(_FAILED_STATUS.match(completed))),
            (FAILURE, "backup_exec.body", bool(re.search(r"(?i)\bthe job failed\b", body))),
            (WARNING, "backup_exec.however_warning", bool(_HOWEVER.search(body))),
            (WARNING, "backup_exec.completed_status", "exception" in completed or "warning" in completed),
            (WARNING, "backup_exec.subject", "exception" in category or "warning" in category),
            (SUCCESS, "backup_exec.subject", "success" in category),
            (
                SUCCESS,
                "backup_exec.completed_status",
                completed.startswith(("successful", "succeeded", "success")),
            ),
        ]
    )
    if verdict is None:
        return None
    status, rule = verdict
    job = field(body, "Job name") or (alert.group("job") if alert and alert.group("job") else None)
    if not job:
        return None
    device = field(body, "Job server", "Server") or (alert.group("server") if alert else None)
    size = _BYTES.search(body)
    return [
        ParsedRun(
            product="backup_exec",
            job=job.strip('"'),
            device=device.strip('"\\ ') if device else None,
            status=status,
            started_at=parse_when(field(body, "Job started", "Start time"), view.zone),
            finished_at=parse_when(field(body, "Job ended", "End time"), view.zone),
            size_bytes=parse_size(size.group("n") + " bytes") if size else None,
            rule=rule,
            detail=_detail(status, body, completed_as_written),
        )
    ]


def _detail(status: str, body: str, completed: str) -> str:
    if status == WARNING:
        after = _HOWEVER.search(body)
        if after:
            rest = [line.strip() for line in body[after.end() :].splitlines() if line.strip()]
            if rest:
                return one_line(rest[0])
    if status == FAILURE:
        for label in ("Final error", "Error", "Errors"):
            value = field(body, label)
            if value:
                return one_line(value)
        match = re.search(r"(?im)^.*\bthe job failed\b.*$", body)
        if match:
            return one_line(match.group(0))
    return one_line(f"Completed status: {completed or status}")
