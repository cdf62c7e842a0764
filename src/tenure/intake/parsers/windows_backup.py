"""Windows Server Backup, as reported by scripts (the product sends no mail of its own).

Two shapes are common. The widely copied WBJobReport.ps1 mails Get-WBJob / Get-WBSummary as
"Successful Backup on FS01" / "Failed Backup on FS01" with "Start time last backup:", "End time last
backup:", "Backup Result: Successful | Failed", "Error Message (if applicable):" and a Name / Status
/ Size table of volumes. Scheduled `wbadmin start backup -quiet` tasks mail the tool's own output:
"The backup operation successfully completed." or "The backup operation stopped before completing."
followed by "Detailed error: ...", and the log path "Backup-14-01-2025_21-00-01.log" (the start).
"""

from __future__ import annotations

import re
from datetime import datetime

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

_REPORT_SUBJECT = re.compile(r"(?i)^(?P<result>successful|failed)\s+backup\s+on\s+(?P<host>[A-Za-z0-9._-]+)")
_REPORT_TITLE = re.compile(r"(?im)backup report for\s+(?P<host>[A-Za-z0-9._-]+)\s*$")
_WBADMIN_OK = re.compile(r"(?i)the backup operation successfully completed")
_WBADMIN_STOPPED = re.compile(
    r"(?i)the backup operation stopped before completing|the backup operation failed"
)
_VOLUME_FAILED = re.compile(r"(?i)the backup of volume .{1,60}? did not complete successfully")
_WITH_WARNINGS = re.compile(r"(?i)\bcompleted with warnings\b")
_LOG_NAME = re.compile(
    r"(?i)\bbackup-(?P<d>\d{2})-(?P<m>\d{2})-(?P<y>\d{4})_(?P<H>\d{2})-(?P<M>\d{2})-(?P<S>\d{2})\.log"
)
_HOST_LINE = ("Computer name", "Computer", "Hostname", "Host", "Server")


def parse(view: MailView) -> list[ParsedRun] | None:
    body = view.text
    report = _REPORT_SUBJECT.match(view.subject)
    wbadmin = "wbadmin" in view.everything or bool(_WBADMIN_OK.search(body) or _WBADMIN_STOPPED.search(body))
    result = (field(body, "Backup Result") or "").lower()
    if not (wbadmin or (report and (result or _REPORT_TITLE.search(body)))):
        return None
    said = report.group("result").lower() if report else ""
    verdict = decide(
        [
            (FAILURE, "windows_backup.report", said == "failed" or result.startswith("fail")),
            (
                FAILURE,
                "windows_backup.wbadmin",
                bool(_WBADMIN_STOPPED.search(body) or _VOLUME_FAILED.search(body)),
            ),
            (WARNING, "windows_backup.wbadmin", bool(_WITH_WARNINGS.search(body))),
            (SUCCESS, "windows_backup.report", said == "successful" or result.startswith("success")),
            (SUCCESS, "windows_backup.wbadmin", bool(_WBADMIN_OK.search(body))),
        ]
    )
    if verdict is None:
        return None
    status, rule = verdict
    title = _REPORT_TITLE.search(body)
    device = (
        field(body, *_HOST_LINE)
        or (report.group("host") if report else None)
        or (title.group("host") if title else None)
    )
    started = parse_when(field(body, "Start time last backup", "Start time", "StartTime"), view.zone)
    return [
        ParsedRun(
            product="windows_backup",
            job="Windows Server Backup",
            device=device,
            status=status,
            started_at=started or _log_start(body, view),
            finished_at=parse_when(field(body, "End time last backup", "End time", "EndTime"), view.zone),
            size_bytes=_volumes_size(body),
            rule=rule,
            detail=_detail(status, body),
        )
    ]


def _log_start(body: str, view: MailView) -> datetime | None:
    """wbadmin names its log after the backup's local start time, day first."""
    match = _LOG_NAME.search(body)
    if not match or view.zone is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(match.group(k)) for k in "ymdHMS")
        return datetime(year, month, day, hour, minute, second, tzinfo=view.zone)
    except ValueError:
        return None


def _volumes_size(body: str) -> int | None:
    """Sum of the Size column of the report's Name / Status / Size table."""
    lines = body.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip().lower() for c in line.split("\t")]
        if "name" in cells and "size" in cells:
            column = cells.index("size")
            sizes = []
            for row in lines[i + 1 :]:
                values = row.split("\t")
                if len(values) != len(cells):
                    break
                sizes.append(parse_size(values[column]))
            found = [s for s in sizes if s is not None]
            return sum(found) if found else None
    return None


def _detail(status: str, body: str) -> str:
    if status != SUCCESS:
        for label in ("Detailed error", "Error Message (if applicable)", "ErrorDescription", "Error"):
            value = field(body, label)
            if value:
                return one_line(value)
        for pattern in (_VOLUME_FAILED, _WBADMIN_STOPPED, _WITH_WARNINGS):
            match = pattern.search(body)
            if match:
                return one_line(_line_around(body, match.start()))
    match = _WBADMIN_OK.search(body)
    if match:
        return one_line(_line_around(body, match.start()))
    return one_line(f"Backup Result: {field(body, 'Backup Result') or status}")


def _line_around(body: str, at: int) -> str:
    start = body.rfind("\n", 0, at) + 1
    end = body.find("\n", at)
    return body[start : end if end != -1 else len(body)]
