"""Backup job schedules: when is the next result expected, and which expected runs were missed?

Pure: no database, no I/O, no clock (the caller passes `now`). Every datetime going in must be
timezone-aware; every datetime coming out is in UTC.

A schedule is one of:

- a **cron line** of 5 fields, minute hour day-of-month month day-of-week, read in the job's time zone:
  ``*``, numbers, lists (``1,15``), ranges (``1-5``), steps (``*/15``, ``0-30/10``, ``5/15``), month
  and day names (``jan``, ``mon-fri``), Sunday as 0 or 7, and ``@hourly``, ``@daily``/``@midnight``,
  ``@weekly``, ``@monthly``, ``@yearly``/``@annually``. When both day fields are restricted a day
  matching either runs (Vixie cron). Around daylight-saving changes it behaves like Debian's cron
  (as Healthchecks' cronsim does): a *fixed-time* job (minute and hour fields not starting with ``*``)
  scheduled in the hour skipped in spring runs when the clock jumps (02:30 → 03:00), and runs once
  in the hour repeated in autumn (the first time); a *wildcard* job (``*/15 * * * *``, ``0 * * * *``)
  follows real time: nothing in the skipped hour, both passes of the repeated hour.
- an **interval**, counted from the last result: ISO 8601 ``PT24H``, ``P1D``, ``PT30M``, ``P1W``,
  ``P1DT12H``, or ``every 6h``, ``every 30 minutes``, ``every day``, ``every 1h30m``. Days and weeks
  are calendar days in the job's time zone (``P1D`` after 22:00 is 22:00 the next day, across a DST
  change too); hours, minutes and seconds are elapsed time (``PT24H`` is exactly 24 hours).

Missed runs follow Healthchecks' model: an expected run E after the last result is missed once
``E + grace`` has passed (``E + grace <= now``) with no newer result. `due_missed` lets a sweep that
remembers the latest expected time it raised report each missed run exactly once, however often it
sweeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be read; the message says what is wrong."""


# ------------------------------------------------------------------------------------------ parsing

_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_DAYS = {name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_FIELDS = (  # name, low, high, names
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_star: bool
    dow_star: bool
    wildcard: bool  # minute or hour field starts with '*': follows real time around DST changes

    def runs_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    text: str
    days: int  # calendar days in the job's zone
    seconds: int  # elapsed time

    @property
    def approximate(self) -> timedelta:
        return timedelta(days=self.days, seconds=self.seconds)


Schedule = CronSchedule | IntervalSchedule


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    name, low, high, names = _FIELDS[index]

    def number(token: str) -> int:
        key = token.lower()
        if names and key in names:
            return names[key]
        if not token.isdigit():
            raise ScheduleError(f"cron {name}: {token!r} is not a number{' or a name' if names else ''}")
        value = int(token)
        if not low <= value <= high:
            raise ScheduleError(f"cron {name}: {value} is out of range {low} to {high}")
        return value

    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"cron {name}: empty item in {text!r}")
        base, _, step_text = item.partition("/")
        step = 1
        if _:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"cron {name}: step {step_text!r} is not a whole number ≥ 1")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = number(first), number(last)
            if start > end:
                raise ScheduleError(f"cron {name}: range {base!r} runs backwards")
        else:
            start = number(base)
            end = high if _ else start
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values), text.startswith("*")


_ISO = re.compile(r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?",
                  re.IGNORECASE)
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": -1, "day": -1, "days": -1,
    "w": -7, "wk": -7, "wks": -7, "week": -7, "weeks": -7,
}  # negative: calendar days


def parse_schedule(text: str) -> Schedule:
    """A cron line or an interval (module docstring), or ScheduleError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("schedule is empty")
    source = " ".join(text.split())
    lowered = source.lower()
    if lowered.startswith("p"):
        found = _ISO.fullmatch(source)
        if not found or not any(found.group(g) for g in "wdhms"):
            raise ScheduleError(f"interval {source!r} is not ISO 8601 weeks/days/hours/minutes/seconds (PT24H, P1D)")
        days = int(found["w"] or 0) * 7 + int(found["d"] or 0)
        seconds = int(found["h"] or 0) * 3600 + int(found["m"] or 0) * 60 + int(found["s"] or 0)
        return _interval(source, days, seconds)
    if lowered.startswith("every"):
        rest = lowered[len("every"):].strip()
        if rest in _UNITS:
            rest = "1" + rest
        pieces = re.findall(r"(\d+)\s*([a-z]+)", rest)
        if not pieces or re.sub(r"(\d+)\s*([a-z]+)", "", rest).strip(" ,and"):
            raise ScheduleError(f"interval {source!r}: write it as 'every 6h', 'every 30 minutes' or 'every day'")
        days = seconds = 0
        for amount, unit in pieces:
            if unit not in _UNITS:
                raise ScheduleError(f"interval {source!r}: unknown unit {unit!r}")
            factor = _UNITS[unit]
            if factor < 0:
                days += int(amount) * -factor
            else:
                seconds += int(amount) * factor
        return _interval(source, days, seconds)
    cron = _MACROS.get(lowered, source)
    if cron.startswith("@"):
        raise ScheduleError(f"cron {source!r}: unknown macro (use {', '.join(sorted(_MACROS))})")
    parts = cron.split(" ")
    if len(parts) != 5:
        raise ScheduleError(f"cron {source!r} has {len(parts)} fields; expected 5 (minute hour day month weekday)")
    parsed = [_field(part, index) for index, part in enumerate(parts)]
    minutes, minute_star = parsed[0]
    hours, hour_star = parsed[1]
    return CronSchedule(
        text=source,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=parsed[4][0],
        dom_star=parsed[2][1],
        dow_star=parsed[4][1],
        wildcard=minute_star or hour_star,
    )


def _interval(source: str, days: int, seconds: int) -> IntervalSchedule:
    if days == 0 and seconds == 0:
        raise ScheduleError(f"interval {source!r} is zero")
    if seconds and seconds < 60 and days == 0:
        raise ScheduleError(f"interval {source!r} is shorter than a minute")
    return IntervalSchedule(source, days, seconds)


def zone_of(tz: str | tzinfo | None) -> tzinfo:
    """A time zone from its IANA name ('America/Chicago'); None or '' is UTC."""
    if tz is None or tz == "":
        return UTC
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"time zone {tz!r} is not an IANA zone name such as America/Chicago") from None


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


# ------------------------------------------------------------------------------------- local times


def _resolve(naive: datetime, zone: tzinfo, wildcard: bool) -> list[datetime]:
    """The UTC instants a local wall time stands for, by the DST rules of the module docstring."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    first_ok = first.astimezone(zone).replace(tzinfo=None) == naive
    second_ok = second.astimezone(zone).replace(tzinfo=None) == naive
    if first_ok and second_ok:
        if first == second:
            return [first]
        earlier, later = min(first, second), max(first, second)
        return [earlier, later] if wildcard else [earlier]
    if first_ok or second_ok:  # pragma: no cover - zoneinfo gives both or neither
        return [first if first_ok else second]
    # skipped by a spring-forward change
    if wildcard:
        return []
    return [_transition(min(first, second), max(first, second), zone)]


def _transition(low: datetime, high: datetime, zone: tzinfo) -> datetime:
    """The first instant in (low, high] whose UTC offset is that of `high`: the end of a DST gap."""
    target = high.astimezone(zone).utcoffset()
    lo, hi = low, high
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


_HORIZON_DAYS = 366 * 12


@lru_cache(maxsize=4096)
def _day_instants(cron: CronSchedule, zone: tzinfo, day: date) -> tuple[datetime, ...]:
    """The runs of `cron` on a local day, as sorted UTC instants (memoised: sweeps ask again and again)."""
    if not cron.runs_on(day):
        return ()
    start = datetime(day.year, day.month, day.day)
    offsets = {
        (start + delta).replace(tzinfo=zone, fold=fold).utcoffset()
        for delta in (timedelta(0), timedelta(hours=23, minutes=59)) for fold in (0, 1)
    }
    if len(offsets) == 1:  # no DST change this day: plain arithmetic
        offset = offsets.pop() or timedelta(0)
        return tuple(
            (start + timedelta(hours=h, minutes=m) - offset).replace(tzinfo=UTC)
            for h in cron.hours for m in cron.minutes
        )
    instants: set[datetime] = set()
    for h in cron.hours:
        for m in cron.minutes:
            instants.update(_resolve(start + timedelta(hours=h, minutes=m), zone, cron.wildcard))
    return tuple(sorted(instants))


def _cron_instants(cron: CronSchedule, zone: tzinfo, after: datetime) -> Iterator[datetime]:
    """Every run of `cron` strictly after `after` (UTC), in order."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    last_day = day + timedelta(days=_HORIZON_DAYS)
    previous: datetime | None = None
    while day <= last_day:
        for instant in _day_instants(cron, zone, day):
            if instant > after and (previous is None or instant > previous):
                previous = instant
                yield instant
                last_day = day + timedelta(days=_HORIZON_DAYS)
        day += timedelta(days=1)
    if previous is None:
        raise ScheduleError(f"cron {cron.text!r} never runs")


def _add_interval(interval: IntervalSchedule, zone: tzinfo, anchor: datetime, times: int) -> datetime:
    moment = anchor
    if interval.days:
        local = anchor.astimezone(zone).replace(tzinfo=None) + timedelta(days=interval.days * times)
        resolved = _resolve(local, zone, wildcard=False)
        moment = resolved[0] if resolved else local.replace(tzinfo=zone).astimezone(UTC)
    return moment + timedelta(seconds=interval.seconds * times)


def expected_runs(schedule: str | Schedule, tz: str | tzinfo | None, after: datetime) -> Iterator[datetime]:
    """The expected runs strictly after `after`, in order (UTC). For an interval, `after` is the
    anchor (the last result): the runs are anchor + 1 interval, + 2 intervals, …"""
    parsed = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    zone = zone_of(tz)
    start = _aware(after, "after")
    if isinstance(parsed, CronSchedule):
        yield from _cron_instants(parsed, zone, start)
        return
    times = 1
    while True:
        yield _add_interval(parsed, zone, start, times)
        times += 1


def next_expected(schedule: str | Schedule, tz: str | tzinfo | None, after: datetime) -> datetime:
    """The first expected run strictly after `after` (for an interval: `after` + the interval), in UTC."""
    return next(iter(expected_runs(schedule, tz, after)))


# ------------------------------------------------------------------------------------------ missed


def missed_runs(
    schedule: str | Schedule,
    tz: str | tzinfo | None,
    grace_minutes: int,
    last_result_at: datetime | None,
    now: datetime,
    *,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[datetime]:
    """Every expected run after the last result whose ``expected + grace`` is at or before `now`
    (UTC, oldest first, at most `limit`).

    The runs counted start after `last_result_at`, or, with no result yet, after `since` (when the job
    was activated); with neither there is nothing to count from and the list is empty.
    """
    return due_missed(schedule, tz, grace_minutes, last_result_at, None, now, since=since, limit=limit)


def due_missed(
    schedule: str | Schedule,
    tz: str | tzinfo | None,
    grace_minutes: int,
    last_result_at: datetime | None,
    last_missed_expected: datetime | None,
    now: datetime,
    *,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[datetime]:
    """The missed runs (see `missed_runs`) not raised yet: those after `last_missed_expected`, the
    latest expected time a previous sweep raised. A sweep that stores the last element of the answer
    as its next `last_missed_expected` raises each missed run exactly once, whatever its cadence;
    with `limit` reached, the next sweep continues where this one stopped.
    """
    if isinstance(grace_minutes, bool) or not isinstance(grace_minutes, int) or grace_minutes < 0:
        raise ValueError(f"grace_minutes must be a whole number ≥ 0, not {grace_minutes!r}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    current = _aware(now, "now")
    anchor = last_result_at if last_result_at is not None else since
    if anchor is None:
        return []
    anchor = _aware(anchor, "last_result_at" if last_result_at is not None else "since")
    floor = _aware(last_missed_expected, "last_missed_expected") if last_missed_expected is not None else None
    grace = timedelta(minutes=grace_minutes)
    parsed = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    if isinstance(parsed, CronSchedule) and floor is not None and floor > anchor:
        start = floor  # cron runs do not depend on the anchor: skip straight to what is not raised yet
    else:
        start = anchor
    missed: list[datetime] = []
    for expected in expected_runs(parsed, tz, start):
        if expected + grace > current:
            break
        if floor is not None and expected <= floor:
            continue
        missed.append(expected)
        if len(missed) >= limit:
            break
    return missed
