"""A generic CSV backup report: one row per run, a header row naming the columns.

Columns are found by name, in any order and case: job (job, task, plan, policy, name), device (host,
hostname, device, computer, machine, server, client), status (status, result, state), start, end,
size (size, bytes, transferred; a unit in the header, "Size (GB)", applies to bare numbers) and an
optional message. Commas, semicolons and tabs are all accepted as separators. A row without a job
or with a status that cannot be read is skipped, never guessed.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import tzinfo

from tenure.intake.parsers.common import (
    FAILURE,
    SUCCESS,
    WARNING,
    ParsedRun,
    decide,
    one_line,
    parse_size,
    parse_when,
)

_COLUMNS = {
    "job": (
        "job",
        "job name",
        "jobname",
        "task",
        "task name",
        "backup job",
        "plan",
        "policy",
        "backup",
        "name",
    ),
    "device": (
        "device",
        "host",
        "hostname",
        "host name",
        "computer",
        "machine",
        "server",
        "client",
        "vm",
        "agent",
    ),
    "status": ("status", "result", "state", "outcome", "job status", "last result"),
    "start": (
        "start",
        "start time",
        "started",
        "started at",
        "begin",
        "begin time",
        "start_time",
        "starttime",
    ),
    "end": ("end", "end time", "ended", "finished", "finished at", "finish", "stop", "end_time", "endtime"),
    "size": ("size", "bytes", "size bytes", "size_bytes", "transferred", "data transferred", "backup size"),
    "detail": ("message", "detail", "details", "error", "error message", "notes", "comment", "info"),
}
_UNIT_IN_HEADER = re.compile(r"(?i)[(\[]\s*(?P<unit>[kmgtp]i?b|bytes)\s*[)\]]|_(?P<unit2>[kmgtp]i?b)$")
_FAILURE_WORDS = re.compile(
    r"(?i)\b(?:fail\w*|error\w*|fatal|missed|cancell?ed|aborted|critical|unsuccessful)\b"
)
_WARNING_WORDS = re.compile(r"(?i)\b(?:warn\w*|partial\w*|exceptions?)\b")
_SUCCESS_WORDS = re.compile(r"(?i)\b(?:success\w*|succeeded|ok|completed|complete|passed|done)\b")


def parse_csv_report(text: str, zone: tzinfo | None = None) -> list[ParsedRun]:
    """Every readable row of the report. Times without a stated zone take `zone` (the caller passes
    the e-mail's Date zone), or stay None. Never raises for odd input: at worst, no runs."""
    try:
        return _parse(text or "", zone)
    except Exception:  # csv and odd encodings can surprise; an unreadable report is simply empty
        return []


def _parse(text: str, zone: tzinfo | None) -> list[ParsedRun]:
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    header_line = lines[0]
    delimiter = max(",;\t", key=header_line.count)
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    columns, unit = _columns(rows[0])
    if "job" not in columns or "status" not in columns:
        return []
    runs = []
    for row in rows[1:]:
        run = _run(row, columns, unit, zone)
        if run is not None:
            runs.append(run)
    return runs


def _columns(header: list[str]) -> tuple[dict[str, int], str]:
    found: dict[str, int] = {}
    unit = ""
    for index, raw in enumerate(header):
        name = " ".join(re.sub(r"[(\[].*?[)\]]", "", raw).replace("_", " ").split()).lower()
        for key, names in _COLUMNS.items():
            if key not in found and (name in names or name.replace(" ", "_") in names):
                found[key] = index
                if key == "size":
                    match = _UNIT_IN_HEADER.search(raw.strip())
                    unit = (match.group("unit") or match.group("unit2") or "").lower() if match else ""
                break
    return found, unit


def _run(row: list[str], columns: dict[str, int], unit: str, zone: tzinfo | None) -> ParsedRun | None:
    def cell(key: str) -> str:
        index = columns.get(key)
        return row[index].strip() if index is not None and index < len(row) else ""

    job, state = cell("job"), cell("status")
    verdict = decide(
        [
            (FAILURE, "csv.row", bool(_FAILURE_WORDS.search(state))),
            (WARNING, "csv.row", bool(_WARNING_WORDS.search(state))),
            (SUCCESS, "csv.row", bool(_SUCCESS_WORDS.search(state))),
        ]
    )
    if not job or verdict is None:
        return None
    status, rule = verdict
    return ParsedRun(
        product="csv",
        job=job,
        device=cell("device") or None,
        status=status,
        started_at=parse_when(cell("start"), zone),
        finished_at=parse_when(cell("end"), zone),
        size_bytes=parse_size(cell("size"), default_unit=unit),
        rule=rule,
        detail=one_line(cell("detail") or f"{job}: {state}"),
    )
