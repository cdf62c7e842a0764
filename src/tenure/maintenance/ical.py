"""The iCalendar feed of maintenance: per client or per technician, at `GET /calendar/<token>.ics`.

An RRULE task is one VEVENT with its RRULE, starting at its first occurrence with a TZID in the MSP's zone
(and the zone's VTIMEZONE), so a calendar application expands it at the same wall-clock time across
daylight-saving changes; a cron task is one VEVENT per occurrence in the next 90 days.
"""

from __future__ import annotations

from datetime import date, timedelta

from icalendar import Calendar, Event, Timezone, vRecur

from tenure import clock
from tenure.db.engine import Database
from tenure.maintenance import rules
from tenure.maintenance.service import calendar_events, check_calendar_token
from tenure.notices.links import read_calendar_token


def build_calendar(name: str, zone: str, msp: str, events: list[rules.CalendarEvent]) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", f"-//Tenure//{msp or 'Tenure'} maintenance//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", zone)
    stamp = clock.now()
    for e in events:
        event = Event()
        event.add("uid", e.uid)
        event.add("dtstamp", stamp)
        event.add("summary", e.summary)
        event.add("description", e.description)
        event.add("dtstart", e.start)
        event.add("duration", timedelta(minutes=e.minutes))
        if e.rrule:
            event.add("rrule", vRecur.from_ical(e.rrule))
        event.add("transp", "OPAQUE")
        calendar.add_component(event)
    if events:  # the zone's rules from the first event to ten years ahead, not since 1970
        first = min(e.start for e in events).date()
        calendar.add_missing_timezones(first_date=date(first.year, 1, 1), last_date=date(stamp.year + 10, 1, 1))
    else:  # RFC 5545 wants at least one component: the MSP's zone, which the calendar's events would use
        calendar.add_component(
            Timezone.from_tzid(zone, first_date=date(stamp.year, 1, 1), last_date=date(stamp.year + 10, 1, 1))
        )
    return calendar.to_ical()


def feed(db: Database, token: str) -> bytes:
    """The calendar a signed token names (LinkInvalid when it is not ours, or was revoked)."""
    who = read_calendar_token(token)
    check_calendar_token(db, who)
    found = calendar_events(db, client=who.get("c"), technician=who.get("t"))
    return build_calendar(found["name"], found["zone"], found["msp"], found["events"])
