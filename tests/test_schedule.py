"""Backup job schedules: cron lines and intervals, DST in America/Chicago, missed runs raised once."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.intake.schedule import (
    CronSchedule,
    IntervalSchedule,
    ScheduleError,
    due_missed,
    expected_runs,
    missed_runs,
    next_expected,
    parse_schedule,
    zone_of,
)

CHI = ZoneInfo("America/Chicago")
TZ = "America/Chicago"
SPRING = date(2026, 3, 8)  # 02:00 CST → 03:00 CDT
AUTUMN = date(2026, 11, 1)  # 02:00 CDT → 01:00 CST


def local(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=CHI, fold=fold)  # type: ignore[misc]


def walls(moments: list[datetime]) -> list[str]:
    return [m.astimezone(CHI).strftime("%m-%d %H:%M %Z") for m in moments]


def take(schedule: str, after: datetime, count: int, tz: str = TZ) -> list[datetime]:
    return list(itertools.islice(expected_runs(schedule, tz, after), count))


# ------------------------------------------------------------------------------------------ parsing


def test_parse_cron() -> None:
    cron = parse_schedule("0,30 22 * * mon-fri")
    assert isinstance(cron, CronSchedule)
    assert cron.minutes == (0, 30) and cron.hours == (22,)
    assert cron.weekdays == frozenset({1, 2, 3, 4, 5}) and cron.dow_star is False and cron.dom_star is True
    assert cron.wildcard is False
    assert parse_schedule("*/20 * * * *").minutes == (0, 20, 40)  # type: ignore[union-attr]
    assert parse_schedule("5/20 * * * *").minutes == (5, 25, 45)  # type: ignore[union-attr]
    assert parse_schedule("0-30/10 1-3 * * *").minutes == (0, 10, 20, 30)  # type: ignore[union-attr]
    assert parse_schedule("0 0 * JAN,jul 7").weekdays == frozenset({0})  # type: ignore[union-attr]
    assert parse_schedule("0 0 * jan,JUL 7").months == frozenset({1, 7})  # type: ignore[union-attr]
    assert parse_schedule("@daily").hours == (0,)  # type: ignore[union-attr]
    assert parse_schedule("@hourly").wildcard is True  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "message"), [
    ("", "schedule is empty"),
    ("0 22 * *", "has 4 fields"),
    ("0 22 * * * *", "has 6 fields"),
    ("60 22 * * *", "minute: 60 is out of range 0 to 59"),
    ("0 24 * * *", "hour: 24 is out of range"),
    ("0 0 0 * *", "day of month: 0 is out of range 1 to 31"),
    ("0 0 * 13 *", "month: 13 is out of range"),
    ("0 0 * * 8", "day of week: 8 is out of range 0 to 7"),
    ("*/0 * * * *", "step '0'"),
    ("0 5-1 * * *", "range '5-1' runs backwards"),
    ("0 0 * * funday", "'funday' is not a number or a name"),
    ("0,,5 0 * * *", "empty item"),
    ("@reboot", "unknown macro"),
    ("P1M", "is not ISO 8601"),
    ("P", "is not ISO 8601"),
    ("PT", "is not ISO 8601"),
    ("PT0H", "is zero"),
    ("PT30S", "shorter than a minute"),
    ("every fortnight", "write it as"),
    ("every 6 parsecs", "unknown unit 'parsecs'"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(text)


@pytest.mark.parametrize(("text", "days", "seconds"), [
    ("PT24H", 0, 86400), ("P1D", 1, 0), ("P1W", 7, 0), ("P1DT12H", 1, 43200), ("pt30m", 0, 1800),
    ("every 6h", 0, 21600), ("every 30 minutes", 0, 1800), ("every day", 1, 0), ("every 1h30m", 0, 5400),
    ("every 2 days", 2, 0), ("Every  hour", 0, 3600),
])
def test_parse_intervals(text: str, days: int, seconds: int) -> None:
    interval = parse_schedule(text)
    assert isinstance(interval, IntervalSchedule)
    assert (interval.days, interval.seconds) == (days, seconds)


def test_zones() -> None:
    assert zone_of(None) is UTC and zone_of("") is UTC
    assert zone_of("America/Chicago") == CHI
    with pytest.raises(ScheduleError, match="'Mars/Olympus' is not an IANA zone"):
        zone_of("Mars/Olympus")


# ------------------------------------------------------------------------------------ next expected


def test_next_expected_cron() -> None:
    after = local(2026, 10, 3, 21, 0)
    assert next_expected("0 22 * * *", TZ, after) == local(2026, 10, 3, 22, 0)
    assert next_expected("0 22 * * *", TZ, local(2026, 10, 3, 22, 0)) == local(2026, 10, 4, 22, 0)  # strictly after
    assert next_expected("0 22 * * *", TZ, after).tzinfo is UTC
    assert next_expected("0 22 * * *", None, datetime(2026, 10, 3, 23, tzinfo=UTC)) == datetime(
        2026, 10, 4, 22, tzinfo=UTC)


def test_day_of_month_or_day_of_week() -> None:
    # both restricted: either matches (Vixie cron) — Fridays and the 13th
    runs = take("0 9 13 * 5", local(2026, 11, 1, 0, 0), 4)
    assert [r.astimezone(CHI).date() for r in runs] == [date(2026, 11, 6), date(2026, 11, 13), date(2026, 11, 20),
                                                       date(2026, 11, 27)]
    # one restricted: both must match — Friday the 13th
    assert next_expected("0 9 13 * *", TZ, local(2026, 11, 1, 0, 0)).astimezone(CHI).date() == date(2026, 11, 13)
    # a day field starting with '*' counts as unrestricted for that rule (Vixie): the 1st that is a Friday
    assert next_expected("0 9 */31 * 5", TZ, local(2026, 1, 1, 0, 0)).astimezone(CHI).date() == date(2026, 5, 1)


def test_sunday_is_0_and_7_and_leap_days() -> None:
    assert take("0 8 * * 0", local(2026, 10, 1, 0, 0), 2) == take("0 8 * * 7", local(2026, 10, 1, 0, 0), 2)
    assert next_expected("0 0 29 2 *", TZ, local(2026, 1, 1, 0, 0)) == local(2028, 2, 29, 0, 0)


def test_a_cron_that_never_runs() -> None:
    with pytest.raises(ScheduleError, match="never runs"):
        next_expected("0 0 30 2 *", TZ, local(2026, 1, 1, 0, 0))


def test_intervals_count_from_the_anchor() -> None:
    anchor = local(2026, 10, 3, 22, 17)
    assert next_expected("PT24H", TZ, anchor) == anchor + timedelta(hours=24)
    assert next_expected("every 6h", TZ, anchor) == anchor + timedelta(hours=6)
    assert take("P1DT12H", anchor, 2) == [local(2026, 10, 5, 10, 17), local(2026, 10, 6, 22, 17)]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        next_expected("0 22 * * *", TZ, datetime(2026, 10, 3, 22, 0))
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        missed_runs("0 22 * * *", TZ, 60, local(2026, 10, 3, 22, 0), datetime(2026, 10, 5))


# ------------------------------------------------------------------------------------------- DST


def test_spring_forward() -> None:
    before = local(2026, 3, 7, 12, 0)
    # a fixed-time job in the skipped hour runs when the clock jumps
    assert walls(take("30 2 * * *", before, 3)) == ["03-08 03:00 CDT", "03-09 02:30 CDT", "03-10 02:30 CDT"]
    assert walls(take("0,30 2 * * *", before, 3)) == ["03-08 03:00 CDT", "03-09 02:00 CDT", "03-09 02:30 CDT"]
    # a wildcard job follows real time: nothing in the skipped hour
    runs = take("*/30 * * * *", local(2026, 3, 8, 1, 0), 3)
    assert walls(runs) == ["03-08 01:30 CST", "03-08 03:00 CDT", "03-08 03:30 CDT"]
    assert runs[1] - runs[0] == timedelta(minutes=30)
    # the nightly job keeps its wall time
    assert walls(take("0 22 * * *", before, 2)) == ["03-07 22:00 CST", "03-08 22:00 CDT"]


def test_fall_back() -> None:
    before = local(2026, 10, 31, 12, 0)
    # a fixed-time job in the repeated hour runs once, the first time
    assert walls(take("30 1 * * *", before, 2)) == ["11-01 01:30 CDT", "11-02 01:30 CST"]
    # a wildcard job runs in both passes of the repeated hour
    runs = take("*/30 1 * * *", before, 5)
    assert walls(runs) == ["11-01 01:00 CDT", "11-01 01:30 CDT", "11-01 01:00 CST", "11-01 01:30 CST",
                           "11-02 01:00 CST"]
    assert walls(take("0 * * * *", local(2026, 11, 1, 0, 30), 4)) == [
        "11-01 01:00 CDT", "11-01 01:00 CST", "11-01 02:00 CST", "11-01 03:00 CST"]


def test_calendar_day_intervals_keep_the_wall_time_across_dst() -> None:
    anchor = local(2026, 3, 7, 22, 0)
    assert walls(take("P1D", anchor, 2)) == ["03-08 22:00 CDT", "03-09 22:00 CDT"]
    assert walls(take("PT24H", anchor, 2)) == ["03-08 23:00 CDT", "03-09 23:00 CDT"]
    # a calendar day landing in the skipped hour runs when the clock jumps
    assert walls(take("P1D", local(2026, 3, 7, 2, 30), 2)) == ["03-08 03:00 CDT", "03-09 02:30 CDT"]


_days = st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31))


@settings(max_examples=60)
@given(st.integers(0, 59), st.integers(0, 23), _days)
def test_dst_a_fixed_time_job_runs_once_every_local_day(minute: int, hour: int, start: date) -> None:
    first = datetime(start.year, start.month, start.day, tzinfo=CHI)
    runs = take(f"{minute} {hour} * * *", first - timedelta(seconds=1), 10)
    days = [r.astimezone(CHI).date() for r in runs]
    assert days == [start + timedelta(days=i) for i in range(10)]
    for run in runs:
        wall = run.astimezone(CHI)
        assert (wall.hour, wall.minute) == (hour, minute) or (hour == 2 and (wall.hour, wall.minute) == (3, 0))


@settings(max_examples=60)
@given(st.sampled_from([1, 2, 3, 5, 10, 15, 20, 30, 60]), st.sampled_from([SPRING, AUTUMN]),
       st.integers(-180, 180))
def test_dst_a_wildcard_job_keeps_real_time_spacing(step: int, day: date, shift: int) -> None:
    schedule = f"*/{step} * * * *" if step < 60 else "0 * * * *"
    start = datetime(day.year, day.month, day.day, 0, 0, tzinfo=CHI) + timedelta(minutes=shift)
    runs = take(schedule, start, 5 * 60 // step)
    assert all(b - a == timedelta(minutes=step) for a, b in itertools.pairwise(runs))


# ------------------------------------------------------------------------------------------ missed


def test_missed_runs_daily() -> None:
    last = local(2026, 10, 2, 22, 30)
    now = local(2026, 10, 5, 1, 0)
    assert missed_runs("0 22 * * *", TZ, 120, last, now) == [local(2026, 10, 3, 22, 0), local(2026, 10, 4, 22, 0)]
    # expected + grace exactly now counts; a minute before it does not
    assert missed_runs("0 22 * * *", TZ, 120, last, local(2026, 10, 5, 0, 0))[-1] == local(2026, 10, 4, 22, 0)
    assert missed_runs("0 22 * * *", TZ, 120, last, local(2026, 10, 4, 23, 59)) == [local(2026, 10, 3, 22, 0)]
    # a result after the expected time satisfies it
    assert missed_runs("0 22 * * *", TZ, 120, local(2026, 10, 4, 22, 40), now) == []


def test_missed_runs_interval() -> None:
    last = local(2026, 10, 3, 0, 0)
    assert missed_runs("PT6H", TZ, 30, last, local(2026, 10, 3, 20, 0)) == [
        local(2026, 10, 3, 6, 0), local(2026, 10, 3, 12, 0), local(2026, 10, 3, 18, 0)]


def test_missed_runs_need_an_anchor() -> None:
    now = local(2026, 10, 5, 1, 0)
    assert missed_runs("0 22 * * *", TZ, 60, None, now) == []
    assert missed_runs("0 22 * * *", TZ, 60, None, now, since=local(2026, 10, 4, 12, 0)) == [local(2026, 10, 4, 22, 0)]


def test_due_missed_and_limit() -> None:
    last = local(2026, 10, 1, 22, 30)
    now = local(2026, 10, 6, 1, 0)
    every = missed_runs("0 22 * * *", TZ, 60, last, now)
    assert len(every) == 4
    assert due_missed("0 22 * * *", TZ, 60, last, every[1], now) == every[2:]
    assert due_missed("0 22 * * *", TZ, 60, last, every[-1], now) == []
    first_two = missed_runs("0 22 * * *", TZ, 60, last, now, limit=2)
    assert first_two == every[:2]
    assert due_missed("0 22 * * *", TZ, 60, last, first_two[-1], now, limit=2) == every[2:]
    with pytest.raises(ValueError, match="grace_minutes"):
        missed_runs("0 22 * * *", TZ, -1, last, now)


_schedules = st.sampled_from([
    "0 22 * * *", "30 2 * * *", "30 1 * * *", "*/15 * * * *", "0 * * * *", "*/30 1-3 * * *", "0 */6 * * *",
    "0 9 * * 1-5", "PT6H", "P1D", "every 90m", "PT24H",
])


@settings(max_examples=80)
@given(
    _schedules,
    st.sampled_from([SPRING, AUTUMN, date(2026, 7, 14)]),
    st.integers(1, 240),  # sweep every k minutes
    st.integers(0, 180),  # grace
    st.integers(-600, 600),  # the last result, in minutes from the day's start
    st.integers(0, 59),  # the first sweep's minute
)
def test_each_missed_run_is_raised_once_whatever_the_sweep_cadence(
    schedule: str, day: date, every: int, grace: int, last_offset: int, phase: int
) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=CHI).astimezone(UTC)
    last = start + timedelta(minutes=last_offset)
    raised: list[datetime] = []
    last_missed: datetime | None = None
    sweep = start + timedelta(minutes=phase)
    end = start + timedelta(hours=26)
    final = sweep
    while sweep <= end:
        new = due_missed(schedule, TZ, grace, last, last_missed, sweep)
        assert all(expected + timedelta(minutes=grace) <= sweep for expected in new)
        raised.extend(new)
        if new:
            last_missed = new[-1]
        final = sweep
        sweep += timedelta(minutes=every)
    assert raised == missed_runs(schedule, TZ, grace, last, final)
    assert len(set(raised)) == len(raised)
    assert all(expected > last for expected in raised)


@settings(max_examples=40)
@given(_schedules, st.integers(5, 120), st.lists(st.integers(0, 26 * 60), max_size=4))
def test_results_arriving_between_sweeps_never_repeat_a_missed_run(
    schedule: str, every: int, results: list[int]
) -> None:
    start = datetime(2026, 11, 1, tzinfo=CHI).astimezone(UTC)
    arrivals = sorted(start + timedelta(minutes=m) for m in results)
    last_result: datetime = start - timedelta(hours=1)
    last_missed: datetime | None = None
    raised: list[datetime] = []
    sweep = start
    while sweep <= start + timedelta(hours=26):
        while arrivals and arrivals[0] <= sweep:
            last_result = arrivals.pop(0)
        new = due_missed(schedule, TZ, 30, last_result, last_missed, sweep)
        assert all(expected > last_result for expected in new)
        raised.extend(new)
        if new:
            last_missed = new[-1]
        sweep += timedelta(minutes=every)
    assert len(set(raised)) == len(raised)
    assert raised == sorted(raised)
