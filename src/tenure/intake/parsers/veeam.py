"""Veeam Backup & Replication and Veeam Agent for Microsoft Windows / Linux job reports.

Subject (VBR default "[%JobResult%] %JobName% (%ObjectCount% VMs) %Issues%"; the agents'
"[%JobResult%] %JobName% (%ComputerName%)"): "[Success] Daily VMs (3 VMs)", "[Failed] Backup Job
FS01 (FS01)". The HTML body is a table: "<kind> job: <name>" with the result beside it, the
session's date ("Sunday, 12 October 2025 22:00:12"), a grid of "Start time 22:00:12 | Transferred
11.8 GB | ..." pairs, and a Details table with one row per VM or machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tenure.intake.parsers.common import (
    FAILURE,
    SUCCESS,
    WARNING,
    MailView,
    ParsedRun,
    decide,
    on_day,
    one_line,
    parse_size,
    parse_when,
)

_RESULTS = {"success": SUCCESS, "warning": WARNING, "failed": FAILURE, "failure": FAILURE, "error": FAILURE}
_SUBJECT = re.compile(r"^\s*\[(?P<result>success|warning|failed|failure|error)\]\s*(?P<rest>.+?)\s*$", re.I)
_COUNTED = re.compile(
    r"^(?P<job>.+?)\s*\((?P<n>\d+)\s+(?:vms?|machines?|objects?|instances?|workloads?)\)(?:\s+(?P<issues>.*))?$",
    re.I,
)
_HOST = re.compile(r"^(?P<job>.+?)\s*\((?P<host>[^()\s]+)\)\s*$")
_TITLE = re.compile(r"(?im)^(?P<kind>[a-z][a-z -]{0,40}?(?:job|policy)):[ ]*(?P<rest>[^\r\n]+)$")
_AGENT = re.compile(
    r"(?i)veeam agent for (?:microsoft windows|windows|linux|mac|unix|ibm aix|oracle solaris)"
)
_SESSION_DAY = re.compile(r"\b(19|20)\d{2}\b.*\b\d{1,2}:\d{2}")


@dataclass(frozen=True, slots=True)
class _Row:
    name: str
    status: str
    detail: str


def parse(view: MailView) -> list[ParsedRun] | None:
    body = view.html_text or view.text
    subject = _SUBJECT.match(view.subject)
    title = _TITLE.search(body)
    if not (subject or title) or "veeam" not in view.everything:
        return None
    agent = bool(_AGENT.search(body))
    product = "veeam_agent" if agent else "veeam"
    lines = body.splitlines()
    title_at = _line_index(lines, title.group(0)) if title else -1
    head_cells = title.group("rest").split("\t") if title else []
    head_status = _head_status(head_cells[1:], lines[title_at + 1 : title_at + 4] if title else [])
    rows = _details(lines)
    grid = _grid(lines[: _details_at(lines)])

    job, device = _names(subject.group("rest") if subject else "", head_cells[0] if head_cells else "")
    if not job:
        return None
    if device is None and (agent or len(rows) == 1) and rows:
        device = rows[0].name

    subject_result = _RESULTS[subject.group("result").lower()] if subject else None
    verdict = decide(
        [(s, f"{product}.subject", subject_result == s) for s in (FAILURE, WARNING, SUCCESS)]
        + [(s, f"{product}.body", head_status == s) for s in (FAILURE, WARNING, SUCCESS)]
        + [(s, f"{product}.object_status", any(r.status == s for r in rows)) for s in (FAILURE, WARNING)]
    )
    if verdict is None:
        return None
    status, rule = verdict

    started, finished = _times(lines, title_at, grid, view)
    size = (
        parse_size(grid.get("transferred"))
        if grid.get("transferred")
        else parse_size(grid.get("backup size"))
    )
    return [
        ParsedRun(
            product=product,
            job=job,
            device=device,
            status=status,
            started_at=started,
            finished_at=finished,
            size_bytes=size,
            rule=rule,
            detail=_detail(status, rows, grid),
        )
    ]


def _names(subject_rest: str, title_name: str) -> tuple[str, str | None]:
    """Job and, for agents, the computer: from the body's title, else the subject."""
    device = None
    job = title_name.strip()
    counted = _COUNTED.match(subject_rest)
    host = _HOST.match(subject_rest)
    if counted:
        job = job or counted.group("job")
    elif host:
        job = job or host.group("job")
        device = host.group("host")
    return job or subject_rest, device


def _line_index(lines: list[str], line: str) -> int:
    for i, candidate in enumerate(lines):
        if candidate == line:
            return i
    return -1


def _head_status(beside: list[str], below: list[str]) -> str | None:
    """The result printed beside the job title, or on its own line just under it."""
    for cell in [*beside, *below]:
        key = cell.strip().lower()
        if key in _RESULTS:
            return _RESULTS[key]
    return None


def _details_at(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        cells = [c.lower() for c in line.split("\t")]
        if len(cells) >= 3 and cells[0] == "name" and cells[1] == "status":
            return i
    return len(lines)


def _details(lines: list[str]) -> list[_Row]:
    """Rows of the Details table: one per VM (VBR) or per machine (agents)."""
    start = _details_at(lines)
    if start >= len(lines):
        return []
    header = [c.lower() for c in lines[start].split("\t")]
    detail_col = header.index("details") if "details" in header else None
    rows = []
    for line in lines[start + 1 :]:
        cells = line.split("\t")
        if len(cells) < 2 or cells[1].strip().lower() not in _RESULTS:
            break
        detail = cells[detail_col] if detail_col is not None and detail_col < len(cells) else ""
        rows.append(_Row(cells[0].strip(), _RESULTS[cells[1].strip().lower()], detail.strip()))
    return rows


def _grid(lines: list[str]) -> dict[str, str]:
    """ "Label<TAB>value" pairs of the session summary, first occurrence of each label."""
    pairs: dict[str, str] = {}
    for line in lines:
        cells = line.split("\t")
        if len(cells) < 2 or len(cells) % 2:
            continue
        for label, value in zip(cells[::2], cells[1::2], strict=True):
            pairs.setdefault(label.strip().rstrip(":").lower(), value.strip())
    return pairs


def _times(
    lines: list[str], title_at: int, grid: dict[str, str], view: MailView
) -> tuple[datetime | None, datetime | None]:
    """Start and end: the grid gives clock times, the line under the title gives the day."""
    session = None
    for line in lines[max(title_at, 0) : max(title_at, 0) + 6]:
        if len(line) < 120 and _SESSION_DAY.search(line):  # a date line is short; skip long ones
            session = parse_when(line.split("\t")[0], view.zone)
            if session:
                break
    if session is None:
        return parse_when(grid.get("start time"), view.zone), parse_when(grid.get("end time"), view.zone)
    zone = session.tzinfo
    started = on_day(session.date(), grid.get("start time"), zone)
    finished = on_day(session.date(), grid.get("end time"), zone, after=started)
    return started, finished


def _detail(status: str, rows: list[_Row], grid: dict[str, str]) -> str:
    if status != SUCCESS:
        for row in rows:
            if row.status == status and row.detail:
                return one_line(f"{row.name}: {row.detail}")
        for row in rows:
            if row.detail:
                return one_line(f"{row.name}: {row.detail}")
    counts = ", ".join(
        f"{label.title()} {grid[label]}" for label in ("success", "warning", "error") if label in grid
    )
    moved = f"; transferred {grid['transferred']}" if grid.get("transferred") else ""
    return one_line(f"{counts}{moved}" or f"{len(rows)} object(s) processed")
