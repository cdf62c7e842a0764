"""Macrium Reflect e-mail notifications.

Reflect's built-in template names the machine and the backup definition in the subject,
"FS01(Daily Image) Macrium Reflect - Backup Success | Backup with Warnings | Backup Failure"
(older and site-manager templates say "Backup Succeeded" / "Backup Failed"), opens the body with a
smiley verdict ("Success :)", "Warning :|", "Failed :(") and appends the backup log: "Backup
aborted!" on failure, "Backup Completed Successfully" otherwise.
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

_SUBJECT_NAMES = re.compile(
    r"^\s*(?P<host>[A-Za-z0-9._+-]+)\s*(?:\((?P<definition>[^)]*)\))?\s*Macrium Reflect", re.I
)
_FAIL_SUBJECT = re.compile(r"(?i)\bbackup\s+fail(?:ed|ure)?\b|\bfailure notification\b")
_WARN_SUBJECT = re.compile(r"(?i)\bbackup\s+with\s+warnings?\b|\bbackup\s+warning\b|\bwarning notification\b")
_OK_SUBJECT = re.compile(r"(?i)\bbackup\s+succe(?:ss|eded)\b|\bsuccess notification\b")
# [ \t] rather than \s after ^: a \s* there would run across every following blank line
_FAIL_BODY = re.compile(
    r"(?im)\bbackup aborted\b|^[ \t]*failed[ \t]*:\(|^[ \t]*status[ \t]*:[ \t]*(?:failed|aborted)\b"
)
_WARN_BODY = re.compile(
    r"(?im)\bcompleted with warnings\b|^[ \t]*warning[ \t]*:\||^[ \t]*status[ \t]*:[ \t]*warning"
)
_OK_BODY = re.compile(r"(?im)\b(?:backup|image|clone) completed successfully\b|^[ \t]*success[ \t]*:\)")


def parse(view: MailView) -> list[ParsedRun] | None:
    if "macrium" not in view.everything and "reflect" not in view.subject.lower():
        return None
    body = view.text
    subject = view.subject
    verdict = decide(
        [
            (FAILURE, "macrium.subject", bool(_FAIL_SUBJECT.search(subject))),
            (FAILURE, "macrium.body", bool(_FAIL_BODY.search(body))),
            (WARNING, "macrium.subject", bool(_WARN_SUBJECT.search(subject))),
            (WARNING, "macrium.body", bool(_WARN_BODY.search(body))),
            (SUCCESS, "macrium.subject", bool(_OK_SUBJECT.search(subject))),
            (SUCCESS, "macrium.body", bool(_OK_BODY.search(body))),
        ]
    )
    if verdict is None:
        return None
    status, rule = verdict
    names = _SUBJECT_NAMES.match(subject)
    device = field(body, "Computer Name", "Computer", "Machine") or (names.group("host") if names else None)
    job = _definition(field(body, "Backup Definition", "Definition")) or (
        names.group("definition") if names and names.group("definition") else None
    )
    if not job:
        return None
    return [
        ParsedRun(
            product="macrium",
            job=job,
            device=device,
            status=status,
            started_at=parse_when(field(body, "Start Time", "Backup Start Time", "Started"), view.zone),
            finished_at=parse_when(field(body, "End Time", "Backup End Time", "Finished"), view.zone),
            size_bytes=parse_size(field(body, "Backup Size", "Image Size", "Total Size", "Data Size")),
            rule=rule,
            detail=_detail(status, body),
        )
    ]


def _definition(value: str | None) -> str | None:
    """ "C:\\...\\Reflect\\Daily Image.xml" -> "Daily Image"."""
    if not value:
        return None
    name = re.split(r"[\\/]", value.strip().strip("'\""))[-1]
    return re.sub(r"(?i)\.xml$", "", name).strip() or None


def _detail(status: str, body: str) -> str:
    if status == FAILURE:
        for pattern in (
            r"(?im)^.*backup aborted!?(?P<v>.*)$",
            r"(?im)^[ \t]*error[ \t]*[:-][ \t]*(?P<v>.+)$",
        ):
            match = re.search(pattern, body)
            if match and match.group("v").strip(" -:"):
                return one_line(match.group("v").strip(" -:"))
    if status == WARNING:
        match = re.search(r"(?im)^[ \t]*warning[ \t]*[:-][ \t]*(?P<v>[^|\r\n].*)$", body)
        if match:
            return one_line(match.group("v"))
    match = re.search(r"(?im)^.*completed (?:successfully|with warnings).*$", body)
    return one_line(match.group(0) if match else f"Macrium Reflect backup: {status}")
