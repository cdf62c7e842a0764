"""Proactive maintenance, pure: the default plan, a client's plan, schedules, occurrences, what is due, prices.

No session, no clock, no I/O: the caller passes `now`, the MSP's time zone and the facts.

A task's schedule is read in the MSP's time zone and is either

- an **RRULE** (RFC 5545): ``RRULE:FREQ=MONTHLY;BYMONTHDAY=1``, optionally preceded by a local
  ``DTSTART:20260101T090000`` (space or newline between). Without DTSTART the rule starts on the client's
  agreement start (the *anchor*) at 09:00 local, so ``INTERVAL=6`` counts six months from the agreement and a
  rule without BYHOUR runs at 09:00 wall-clock time all year, across daylight-saving changes;
- a **cron line** (``0 8 * * 1-5``), read like a backup job's (`tenure.intake.schedule`: Debian cron's
  behaviour around DST changes).

Only the latest occurrence at or before `now` is ever due: a system that was down for a week opens one
ticket for a daily task, not seven. An occurrence before the anchor never counts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from dateutil.rrule import rrule, rrulestr

from tenure.intake.schedule import CronSchedule, ScheduleError, expected_runs, parse_schedule
from tenure.money import round_cents

__all__ = ["ScheduleError"]

DEFAULT_TIME = time(9, 0)  # a rule without its own time of day runs at 09:00 in the MSP's zone

Treatment = Literal["ticket", "billable_ticket", "notice"]


# ------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class TaskSpec:
    key: str
    title: str
    service: str
    schedule: str
    estimate_minutes: int


# seed 001's list (TK's outline and wedor's additions): the default plan of each kind in DEFAULT_PLAN_KINDS
DEFAULT_PLAN: tuple[TaskSpec, ...] = (
    TaskSpec("daily-review", "Daily review of server performance and backup logs", "monitoring", "0 8 * * 1-5", 15),
    TaskSpec(
        "patches",
        "Monthly patches (service packs, updates, security fixes) on servers and workstations",
        "patching",
        "RRULE:FREQ=MONTHLY;BYDAY=2WE",  # the day after Patch Tuesday
        60,
    ),
    TaskSpec(
        "antivirus-review",
        "Monthly review of the antivirus console and of the antivirus on every machine",
        "antivirus",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=1",
        30,
    ),
    TaskSpec(
        "malware-check",
        "Monthly check and cleanup of spyware, malware and adware on every workstation",
        "maintenance",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=1",
        30,
    ),
    TaskSpec(
        "test-restore",
        "Test restore of random files from the backups",
        "maintenance",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=15",
        30,
    ),
    TaskSpec(
        "hardware-cleaning",
        "Hardware maintenance and cleaning",
        "hardware",
        "RRULE:FREQ=MONTHLY;INTERVAL=6;BYMONTHDAY=1",
        120,
    ),
    TaskSpec(
        "network-security",
        "Network security analysis",
        "network_security",
        "RRULE:FREQ=MONTHLY;INTERVAL=6;BYMONTHDAY=1",
        120,
    ),
)
# the default plan of each agreement kind: managed and call-before-service clients follow seed 001's whole list;
# a monitoring agreement is seed 001's "monitoring/patch service" ($100 a month): its plan is the monthly patching
DEFAULT_PLANS: dict[str, tuple[TaskSpec, ...]] = {
    "managed": DEFAULT_PLAN,
    "call_before_service": DEFAULT_PLAN,
    "monitoring": tuple(t for t in DEFAULT_PLAN if t.service == "patching"),
}
DEFAULT_PLAN_KINDS: tuple[str, ...] = tuple(DEFAULT_PLANS)
# the agreement kind that puts a client on a plan, first match wins; others (adhoc, retainer) get none
PLAN_KINDS: tuple[str, ...] = ("managed", "call_before_service", "monitoring")


@dataclass(frozen=True, slots=True)
class PlanTask:
    id: int
    key: str
    title: str
    service: str
    schedule: str
    estimate_minutes: int
    active: bool = True
    own: bool = False  # the client's own task (overrides the default of the same key)
    technician: str | None = None
    last_done: date | None = None


def effective_plan(defaults: Iterable[PlanTask], own: Iterable[PlanTask]) -> list[PlanTask]:
    """The client's plan: its own tasks replace the defaults of the same key; inactive ones drop out."""
    by_key = {t.key: t for t in defaults}
    for task in own:
        by_key[task.key] = replace(task, own=True)
    return sorted((t for t in by_key.values() if t.active), key=lambda t: t.key)


def plan_kind(klass: str, active_kinds: Collection[str]) -> str | None:
    """The agreement kind whose plan a client follows: only clients of class `agreement` have one (adhoc,
    prepaid, lapsed, former and prospect clients get no proactive work)."""
    if klass != "agreement":
        return None
    return next((kind for kind in PLAN_KINDS if kind in active_kinds), None)


def treatment(kind: str, service: str, covers: Collection[str], excludes: Collection[str]) -> Treatment:
    """What a due task becomes. Managed (and monitoring) clients: a ticket, billable when the agreement does
    not cover the task's service. Call-before-service clients: covered work (monitoring, daily reports) is a
    ticket paid by the fee; the rest goes on the monthly notice for the client to approve or defer."""
    covered = service in covers and service not in excludes
    if kind == "call_before_service":
        return "ticket" if covered else "notice"
    return "ticket" if covered else "billable_ticket"


def price(minutes: int, rate: Decimal) -> Decimal:
    """minutes × hourly rate / 60, exact, rounded half-up to the cent once."""
    return round_cents(Decimal(minutes) * rate / Decimal(60))


# ------------------------------------------------------------------------------------ schedules

_DTSTART = re.compile(r"^DTSTART(?:;VALUE=DATE-TIME)?:(\d{8}T\d{4}(?:\d{2})?)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RRuleSchedule:
    text: str
    rule: str  # "FREQ=...;..." without the RRULE: prefix
    dtstart: datetime | None  # naive local time, when the schedule names one

    @property
    def fixed_time(self) -> bool:
        return any(part in self.rule.upper() for part in ("BYHOUR", "BYMINUTE"))


TaskSchedule = RRuleSchedule | CronSchedule


@lru_cache(maxsize=1024)
def parse_task_schedule(text: str) -> TaskSchedule:
    """An RRULE or a cron line (module docstring), or ScheduleError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("schedule is empty")
    source = text.strip()
    if "RRULE" not in source.upper() and not source.upper().startswith("FREQ="):
        parsed = parse_schedule(source)
        if not isinstance(parsed, CronSchedule):
            raise ScheduleError(
                f"schedule {source!r} is an interval; write an RRULE (RRULE:FREQ=MONTHLY;BYMONTHDAY=1) or a cron line"
            )
        return parsed
    rule: str | None = None
    dtstart: datetime | None = None
    for part in source.split():
        upper = part.upper()
        if upper.startswith("RRULE:"):
            if rule is not None:
                raise ScheduleError(f"schedule {source!r} has more than one RRULE")
            rule = part[len("RRULE:") :]
        elif upper.startswith("FREQ="):
            rule = part
        elif upper.startswith("DTSTART"):
            found = _DTSTART.match(part)
            if not found:
                raise ScheduleError(f"schedule {source!r}: DTSTART must be a local time like DTSTART:20260101T090000")
            stamp = found.group(1)
            dtstart = datetime.strptime(stamp, "%Y%m%dT%H%M%S" if len(stamp) == 15 else "%Y%m%dT%H%M")
        else:
            raise ScheduleError(f"schedule {source!r}: {part!r} is neither DTSTART nor RRULE")
    if not rule:
        raise ScheduleError(f"schedule {source!r} has no RRULE")
    schedule = RRuleSchedule(source, rule, dtstart)
    try:  # with an aware start, as it will be used
        _rule(schedule, UTC, date(2026, 1, 1))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ScheduleError(f"RRULE {rule!r} cannot be read: {exc}") from None
    return schedule


_WEEKDAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday",
             "SA": "Saturday", "SU": "Sunday"}  # fmt: skip
_CRON_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EVERY = {"DAILY": ("day", "days"), "WEEKLY": ("week", "weeks"), "MONTHLY": ("month", "months"),
          "YEARLY": ("year", "years")}  # fmt: skip
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip


def _ordinal(n: int) -> str:
    if n == -1:
        return "last"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_schedule(text: str) -> str:
    """A schedule in words for a person ("every month on the 2nd Wednesday at 09:00", "weekdays at 08:00");
    the schedule itself when it says more than these words can (a person reads it then)."""
    try:
        schedule = parse_task_schedule(text)
    except ScheduleError:
        return text
    if isinstance(schedule, CronSchedule):
        return _describe_cron(text.strip()) or text
    return _describe_rrule(schedule) or text


def _describe_rrule(schedule: RRuleSchedule) -> str | None:
    parts = dict(part.split("=", 1) for part in schedule.rule.upper().split(";") if "=" in part)
    if set(parts) - {"FREQ", "INTERVAL", "BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE", "BYMONTH"}:
        return None
    unit = _EVERY.get(parts.get("FREQ", ""))
    if unit is None or not parts.get("INTERVAL", "1").isdigit():
        return None
    interval = int(parts.get("INTERVAL", "1"))
    words = [f"every {unit[0]}" if interval == 1 else f"every {interval} {unit[1]}"]
    if "BYMONTH" in parts:
        months = [int(m) for m in parts["BYMONTH"].split(",") if m.isdigit() and 1 <= int(m) <= 12]
        if not months:
            return None
        words.append("in " + ", ".join(_MONTHS[m - 1] for m in months))
    if "BYMONTHDAY" in parts:
        days = parts["BYMONTHDAY"].split(",")
        if not all(d.isdigit() or d == "-1" for d in days):
            return None
        words.append("on the " + ", ".join("last day" if d == "-1" else _ordinal(int(d)) for d in days))
    if "BYDAY" in parts:
        days = []
        for day in parts["BYDAY"].split(","):
            found = re.fullmatch(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", day)
            if not found:
                return None
            nth, name = found.groups()
            days.append(f"the {_ordinal(int(nth))} {_WEEKDAYS[name]}" if nth else _WEEKDAYS[name])
        words.append("on " + ", ".join(days))
    hour, minute = parts.get("BYHOUR", ""), parts.get("BYMINUTE", "0")
    if not hour and "BYMINUTE" in parts:
        return None
    if hour.isdigit() and minute.isdigit():
        words.append(f"at {int(hour):02d}:{int(minute):02d}")
    elif not hour and schedule.dtstart is not None:
        words.append(f"at {schedule.dtstart:%H:%M}")
    elif not hour:
        words.append(f"at {DEFAULT_TIME:%H:%M}")
    else:
        return None
    return " ".join(words)


def _describe_cron(line: str) -> str | None:
    fields = line.split()
    if len(fields) != 5 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    at = f"at {int(fields[1]):02d}:{int(fields[0]):02d}"
    day_of_month, month, day_of_week = fields[2:]
    if month != "*":
        return None
    if day_of_month == "*" and day_of_week == "*":
        return f"every day {at}"
    if day_of_month == "*" and day_of_week in ("1-5", "MON-FRI", "mon-fri"):
        return f"weekdays {at}"
    if day_of_month == "*" and day_of_week.isdigit() and int(day_of_week) <= 7:
        return f"every {_CRON_DAYS[int(day_of_week)]} {at}"
    if day_of_week == "*" and day_of_month.isdigit():
        return f"every month on the {_ordinal(int(day_of_month))} {at}"
    return None


def check_schedule(text: str) -> str | None:
    """None when the schedule can be read, else what is wrong with it."""
    try:
        parse_task_schedule(text)
    except ScheduleError as exc:
        return str(exc)
    return None


def start_of(schedule: RRuleSchedule, zone: tzinfo, anchor: date) -> datetime:
    """The rule's DTSTART as an aware local time: its own, else the anchor at 09:00."""
    naive = schedule.dtstart or datetime.combine(anchor, DEFAULT_TIME)
    return naive.replace(tzinfo=zone)


@lru_cache(maxsize=4096)
def _rule(schedule: RRuleSchedule, zone: tzinfo, anchor: date) -> rrule:
    parsed = rrulestr(schedule.rule, dtstart=start_of(schedule, zone, anchor), cache=True)
    if not isinstance(parsed, rrule):  # pragma: no cover - a single RRULE line is never a set
        raise ScheduleError(f"RRULE {schedule.rule!r} is not a single rule")
    return parsed


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware time is needed, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def _anchor_instant(zone: tzinfo, anchor: date) -> datetime:
    return datetime.combine(anchor, time(0)).replace(tzinfo=zone).astimezone(UTC)


def iter_occurrences(schedule: TaskSchedule, zone: tzinfo, anchor: date, after: datetime) -> Iterator[datetime]:
    """Occurrences strictly after `after`, in order, as UTC instants, none before the anchor day."""
    floor = max(_utc(after), _anchor_instant(zone, anchor) - timedelta(microseconds=1))
    if isinstance(schedule, CronSchedule):
        yield from expected_runs(schedule, zone, floor)
        return
    rule = _rule(schedule, zone, anchor)
    moment: datetime | None = rule.after(floor, inc=False)
    while moment is not None:
        yield moment.astimezone(UTC)
        moment = rule.after(moment, inc=False)


def occurrences(schedule: TaskSchedule, zone: tzinfo, anchor: date, start: datetime, end: datetime) -> list[datetime]:
    """Occurrences in [start, end) as UTC instants (none before the anchor day)."""
    found: list[datetime] = []
    for moment in iter_occurrences(schedule, zone, anchor, _utc(start) - timedelta(microseconds=1)):
        if moment >= _utc(end):
            break
        found.append(moment)
    return found


def latest(schedule: TaskSchedule, zone: tzinfo, anchor: date, now: datetime) -> datetime | None:
    """The last occurrence at or before `now` (UTC), or None."""
    current = _utc(now)
    if isinstance(schedule, RRuleSchedule):
        moment: datetime | None = _rule(schedule, zone, anchor).before(current, inc=True)
        if moment is None or moment < _anchor_instant(zone, anchor):
            return None
        return moment.astimezone(UTC)
    for days in (35, 370, 3700):
        last: datetime | None = None
        for moment in iter_occurrences(schedule, zone, anchor, current - timedelta(days=days)):
            if moment > current:
                break
            last = moment
        if last is not None:
            return last
    return None


def next_after(schedule: TaskSchedule, zone: tzinfo, anchor: date, moment: datetime) -> datetime | None:
    return next(iter_occurrences(schedule, zone, anchor, moment), None)


# ------------------------------------------------------------------------------------------- due


@dataclass(frozen=True, slots=True)
class Due:
    task: PlanTask
    occurrence: datetime  # UTC
    handled: bool  # already a ticket (or on a monthly notice)


def due_occurrence(
    task: PlanTask, zone: tzinfo, anchor: date, now: datetime, handled_through: datetime | None
) -> Due | None:
    """The task's latest occurrence at or before `now`, unless it was done since (last_done), or None.
    `handled_through` is the latest occurrence already turned into a ticket."""
    moment = latest(parse_task_schedule(task.schedule), zone, anchor, now)
    if moment is None:
        return None
    if task.last_done is not None and task.last_done >= moment.astimezone(zone).date():
        return None
    return Due(task, moment, handled_through is not None and handled_through >= moment)


def month_of(moment: datetime, zone: tzinfo) -> str:
    return _utc(moment).astimezone(zone).strftime("%Y-%m")


def month_bounds(month: str, zone: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants where a local month (YYYY-MM) starts and the next one starts."""
    first = date.fromisoformat(f"{month}-01")
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (
        datetime.combine(first, time(0)).replace(tzinfo=zone).astimezone(UTC),
        datetime.combine(following, time(0)).replace(tzinfo=zone).astimezone(UTC),
    )


def previous_month(month: str) -> str:
    first = date.fromisoformat(f"{month}-01")
    return (first - timedelta(days=1)).strftime("%Y-%m")


@dataclass(frozen=True, slots=True)
class Item:
    """One line of a monthly call-before-service notice."""

    task: PlanTask
    occurrences: tuple[datetime, ...]  # this month's (UTC); empty for an item carried from an earlier month
    minutes: int
    price: Decimal
    carried_from: str | None = None  # the month it was deferred (or left unanswered) in


def monthly_items(
    tasks: Sequence[PlanTask],
    zone: tzinfo,
    anchor: date,
    month: str,
    rate: Decimal,
    carried: Sequence[tuple[PlanTask, str, int]] = (),
) -> list[Item]:
    """The month's items for the client to approve or defer: each task with an occurrence in the month
    (occurrences × estimate, priced at `rate`), by first occurrence; then the tasks carried from an earlier
    month (deferred or unanswered: task, month, minutes) that are not on the list already."""
    start, end = month_bounds(month, zone)
    items: list[Item] = []
    for task in tasks:
        found = occurrences(parse_task_schedule(task.schedule), zone, anchor, start, end)
        if not found:
            continue
        minutes = task.estimate_minutes * len(found)
        items.append(Item(task, tuple(found), minutes, price(minutes, rate)))
    items.sort(key=lambda item: (item.occurrences[0], item.task.title))
    listed = {item.task.key for item in items}
    for task, earlier, minutes in carried:
        if task.key in listed:
            continue
        listed.add(task.key)
        items.append(Item(task, (), minutes, price(minutes, rate), carried_from=earlier))
    return items


# -------------------------------------------------------------------------------------- calendar


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    uid: str
    summary: str
    description: str
    start: datetime  # aware, in the MSP's zone
    minutes: int
    rrule: str | None  # the RRULE value (FREQ=...), the event recurring from `start`; None: a single occurrence


def calendar_events(
    uid: str,
    summary: str,
    description: str,
    task: PlanTask,
    zone: tzinfo,
    anchor: date,
    now: datetime,
    days: int = 90,
) -> list[CalendarEvent]:
    """A task as calendar events: an RRULE task is one recurring event starting at its first occurrence (the
    client's calendar application expands it in the MSP's zone); a cron task is each occurrence of the next
    `days` days."""
    schedule = parse_task_schedule(task.schedule)
    minutes = max(task.estimate_minutes, 1)
    if isinstance(schedule, RRuleSchedule):
        first = next(
            iter_occurrences(schedule, zone, anchor, _anchor_instant(zone, anchor) - timedelta(seconds=1)), None
        )
        if first is None:
            return []
        return [CalendarEvent(f"{uid}@tenure", summary, description, first.astimezone(zone), minutes, schedule.rule)]
    current = _utc(now)
    return [
        CalendarEvent(
            f"{uid}-{moment:%Y%m%dT%H%M}Z@tenure", summary, description, moment.astimezone(zone), minutes, None
        )
        for moment in occurrences(schedule, zone, anchor, current, current + timedelta(days=days))
    ]
