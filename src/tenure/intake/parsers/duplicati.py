"""Duplicati result mail (--send-mail-*): the verdict is only in the body.

Default subject "Duplicati %OPERATIONNAME% report for %backup-name%"; default body %RESULT%, the
result object as "Key: value" lines: "ParsedResult: Success | Warning | Error | Fatal",
"BeginTime: 11/30/2018 2:19:51 AM (1543562391)" (the Unix time in brackets is exact),
"BytesUploaded: 27380284" under BackendStatistics. A backup that died early is reported as
"Failed: <message>" / "Details: <exception>" instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

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

_SUBJECT = re.compile(r"(?i)\b(?:duplicati\s+)?(?P<op>[a-z]+)\s+report\s+for\s+(?P<name>.+?)\s*$")
_PARSED = re.compile(r"(?m)^ParsedResult:[ \t]*(?P<v>\w+)")
_FAILED = re.compile(r"(?m)^Failed:[ \t]*(?P<v>.+)$")
_EPOCH = re.compile(r"\((?P<s>\d{9,11})\)\s*$")


def parse(view: MailView) -> list[ParsedRun] | None:
    body = view.text
    subject = _SUBJECT.search(view.subject)
    parsed = _PARSED.search(body)
    failed = _FAILED.search(body)
    # "Failed:" and "... report for ..." are common words: one of them needs Duplicati's own signature
    known = "duplicati" in view.everything or (parsed is not None and _top(body, "MainOperation") is not None)
    if not (parsed or failed) or not known:
        return None
    operation = (_top(body, "MainOperation") or (subject.group("op") if subject else "backup")).lower()
    if operation != "backup":  # restore, test, compact reports are not backup runs
        return None
    result = parsed.group("v").lower() if parsed else ""
    verdict = decide(
        [
            (FAILURE, "duplicati.parsed_result", result in ("error", "fatal")),
            (FAILURE, "duplicati.failed", failed is not None),
            (WARNING, "duplicati.parsed_result", result == "warning"),
            (SUCCESS, "duplicati.parsed_result", result == "success"),
        ]
    )
    if verdict is None:
        return None
    status, rule = verdict
    job = subject.group("name") if subject else field(body, "backup-name", "Backup name")
    if not job:
        return None
    return [
        ParsedRun(
            product="duplicati",
            job=job,
            device=field(body, "machine-name", "Machine name", "MachineName"),
            status=status,
            started_at=_moment(_top(body, "BeginTime"), view),
            finished_at=_moment(_top(body, "EndTime"), view),
            size_bytes=parse_size(field(body, "BytesUploaded")),
            rule=rule,
            detail=_detail(status, body, failed),
        )
    ]


def _top(body: str, key: str) -> str | None:
    """A field of the result itself, not of the nested Delete/Test/Compact results (indented)."""
    match = re.search(rf"(?m)^{re.escape(key)}:[ \t]*(?P<v>[^\r\n]*?)[ \t]*$", body)
    return match.group("v") if match and match.group("v") else None


def _moment(value: str | None, view: MailView) -> datetime | None:
    """The Unix time in brackets is exact; the local rendering before it has no zone."""
    if not value:
        return None
    epoch = _EPOCH.search(value)
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch.group("s")), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_when(value, view.zone)


def _detail(status: str, body: str, failed: re.Match[str] | None) -> str:
    if failed:
        return one_line(failed.group("v"))
    if status != SUCCESS:
        listing = "Errors" if status == FAILURE else "Warnings"
        match = re.search(rf"(?m)^{listing}:[ \t]*\[[ \t]*\n?[ \t]*(?P<first>[^\r\n]+)", body)
        if match and not match.group("first").startswith("]"):
            return one_line(re.sub(r"^.*?\]:\s*", "", match.group("first")))
    examined = _top(body, "ExaminedFiles")
    added = _top(body, "AddedFiles")
    uploaded = field(body, "BytesUploaded")
    return one_line(
        f"ParsedResult {status}; examined {examined}, added {added} files; uploaded {uploaded} bytes"
    )
