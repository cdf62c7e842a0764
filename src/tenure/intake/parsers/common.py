"""What every backup-mail parser shares: the result type, a flat view of a message, and forgiving
readers for the sizes, dates and "Label: value" lines that products write.

Pure: no database, no I/O, no clock. A time with no stated zone takes the zone of the message's
Date header, or stays unknown; it is never completed from today's date or the local zone.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

from dateutil import parser as _dateutil

FAILURE, WARNING, SUCCESS = "failure", "warning", "success"
_RANK = {FAILURE: 0, WARNING: 1, SUCCESS: 2}


@dataclass(frozen=True, slots=True)
class ParsedRun:
    """One backup result as a product reported it."""

    product: str  # veeam | veeam_agent | acronis | synology | macrium | duplicati | backup_exec | ...
    job: str  # job / task name as the product names it
    device: str | None  # hostname or machine the job backs up, if stated
    status: str  # failure | warning | success
    started_at: datetime | None  # timezone-aware, or None when no zone is known
    finished_at: datetime | None
    size_bytes: int | None  # binary units: 1 KB = 1024 bytes, 1 GB = 1024**3 bytes
    rule: str  # which rule decided, e.g. 'veeam.subject'
    detail: str  # one line for a technician: the error, or a summary


def decide(candidates: Iterable[tuple[str, str, bool]]) -> tuple[str, str] | None:
    """(status, rule) of the most severe candidate that holds; among equals, the first listed.

    Failure outranks warning outranks success whatever order a parser lists its rules in, so a
    message that says both "failed" and "success" is a failure.
    """
    best: tuple[str, str] | None = None
    for status, rule, holds in candidates:
        if holds and (best is None or _RANK[status] < _RANK[best[0]]):
            best = (status, rule)
    return best


def one_line(text: str | None, limit: int = 240) -> str:
    """Whitespace collapsed to one line and cut to `limit` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---------------------------------------------------------------- the message, flattened


@dataclass(frozen=True, slots=True)
class MailView:
    subject: str
    sender: str  # address, lower-case
    sender_name: str
    zone: tzinfo | None  # offset of the Date header: the zone of body times that state none
    text: str  # the text/plain part, or the HTML part rendered as text
    html_text: str  # the HTML part rendered as text, table cells separated by tabs ('' if none)
    csv_texts: tuple[str, ...]  # text/csv parts and *.csv attachments

    @property
    def everything(self) -> str:
        """Subject, sender and bodies in one lower-case string, for product signatures."""
        return "\n".join((self.subject, self.sender, self.sender_name, self.text, self.html_text)).lower()


def view_of(message: Message) -> MailView:
    subject = _header(message, "Subject")
    name, address = parseaddr(_header(message, "From"))
    plain: str | None = None
    html: str | None = None
    csvs: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        attached = (part.get("Content-Disposition") or "").lower().startswith("attachment")
        if ctype in ("text/csv", "text/comma-separated-values") or filename.endswith(".csv"):
            csvs.append(_payload_text(part))
        elif ctype == "text/plain" and not attached and plain is None:
            plain = _payload_text(part)
        elif ctype == "text/html" and not attached and html is None:
            html = _payload_text(part)
    html_text = html_to_text(html) if html else ""
    return MailView(
        subject=" ".join(subject.split()),
        sender=address.lower(),
        sender_name=name,
        zone=_date_zone(message),
        text=plain if plain is not None else html_text,
        html_text=html_text,
        csv_texts=tuple(csvs),
    )


def _header(message: Message, name: str) -> str:
    raw = message.get(name)
    if raw is None:
        return ""
    value = str(raw)
    if "=?" in value:  # a compat32 message leaves RFC 2047 words encoded
        with contextlib.suppress(ValueError, LookupError, UnicodeError):
            value = str(make_header(decode_header(value)))
    return value


def _payload_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(payload or "").replace("\r\n", "\n")
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        text = payload.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _date_zone(message: Message) -> tzinfo | None:
    raw = message.get("Date")
    if not raw:
        return None
    try:
        sent = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return sent.tzinfo  # None for "-0000", the RFC's "zone unknown"


class _TextRenderer(HTMLParser):
    """HTML to text: block elements end lines, table cells are separated by a tab."""

    _BLOCKS = frozenset(
        (
            *("br", "p", "div", "pre", "blockquote", "hr", "title"),
            *("table", "thead", "tbody", "tfoot", "tr", "ul", "ol", "li"),
            *("h1", "h2", "h3", "h4", "h5", "h6"),
        )
    )
    _CELLS = frozenset(("td", "th"))
    _HIDDEN = frozenset(("style", "script"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self._pre += 1
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._CELLS:
            self.parts.append("\t")
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:  # a line break in the markup is just a space; only block tags end lines
            data = data.replace("\r", " ").replace("\n", " ")
        self.parts.append(data.replace("\t", " "))


def html_to_text(html: str) -> str:
    renderer = _TextRenderer()
    try:
        renderer.feed(html)
        renderer.close()
        raw = "".join(renderer.parts)
    except Exception:  # HTMLParser can trip on broken markup: fall back to stripping tags
        raw = re.sub(r"<[^>]*>", "\n", html)
    lines = []
    for line in raw.splitlines():
        cells = [" ".join(cell.split()) for cell in line.split("\t")]
        if cells and not cells[0]:
            cells = cells[1:]  # a row starts with a cell: drop the empty text before it
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            lines.append("\t".join(cells))
    return "\n".join(lines)


# ---------------------------------------------------------------- "Label: value"


def field(text: str, *labels: str) -> str | None:
    """The value after the first of `labels` that starts a line or a cell: "Label: value" or
    "Label<TAB>value". Case-insensitive; None when no label carries a value."""
    for label in labels:
        pattern = rf"(?im)(?:^|\t)[ ]*{re.escape(label)}[ ]*(?::[ \t]*|\t[ ]*)(?P<v>[^\t\r\n]*)"
        for match in re.finditer(pattern, text):
            value = match.group("v").strip()
            if value:
                return value
    return None


# ---------------------------------------------------------------- sizes

# Binary multiples, as Veeam, Windows and PowerShell print them: "GB" there means 1024**3.
_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
    "p": 1024**5,
    "pb": 1024**5,
    "pib": 1024**5,
}
# digits with "," "." or a (narrow) no-break space inside: "1,234.5", "12,3", "1\u202f234"
_SIZE = re.compile(r"(?i)(?P<num>\d(?:[\d.,\u00a0\u202f]*\d)?)\s*(?P<unit>[kmgtp]i?b?|bytes?|b)?(?![a-z])")


def parse_number(text: str) -> Decimal | None:
    """A decimal written with "," or "." as decimal or thousands separator ("1,234.5", "12,3")."""
    s = re.sub(r"[\s\u00a0\u202f]", "", text or "")
    if not s or not re.fullmatch(r"\d[\d.,]*", s):
        return None
    if "," in s and "." in s:
        decimal_mark = "," if s.rfind(",") > s.rfind(".") else "."
        s = s.replace("." if decimal_mark == "," else ",", "").replace(",", ".")
    elif "," in s:
        s = s.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", s) else s.replace(",", ".")
    elif re.fullmatch(r"\d{1,3}(\.\d{3}){2,}", s):
        s = s.replace(".", "")
    try:
        value = Decimal(s)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_size(text: str | None, default_unit: str = "") -> int | None:
    """Bytes from "12.3 GB", "1,234,567 bytes", "812 MB"; binary units throughout. A bare number
    is taken in `default_unit` (bytes unless told)."""
    if not text:
        return None
    match = _SIZE.search(text[:100])  # a size is short: never scan a whole log line
    if not match:
        return None
    number = parse_number(match.group("num"))
    unit = (match.group("unit") or default_unit).lower()
    if number is None or unit not in _UNITS:
        return None
    scaled = number * _UNITS[unit]
    if scaled > 1024**6:  # nothing backs up exabytes: a misread, not a size
        return None
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# ---------------------------------------------------------------- dates and times

_NO_DATE = datetime(1, 1, 1)  # dateutil fills missing fields from here, never from today
_OFFSET = re.compile(r"(?i)\(?\b(?:UTC|GMT)\s*(?P<sign>[+-])\s*(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?\b\)?")
_BARE_UTC = re.compile(r"(?i)\(?\b(?:UTC|GMT)\b\)?")
_CLOCK = re.compile(r"(?i)^\s*(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?\s*$")


def parse_when(text: str | None, zone: tzinfo | None, *, dayfirst: bool = False) -> datetime | None:
    """A stated date and time, timezone-aware, or None.

    A zone written in the text wins ("+01:00", "UTC+1", "Z"); otherwise `zone` (the Date header's)
    is attached; with neither, None: a naive time would be a guess. Text with no date is None.
    """
    if not text or len(text) > 200:  # a date is short: a long text is something else
        return None
    s = " ".join(text.split())
    s = re.sub(r"(?i)\s+at\s+(?=\d)", " ", s)  # Backup Exec: "Friday, January 10, 2025 at 11:00:02 PM"
    stated: tzinfo | None = None
    offset = _OFFSET.search(s)
    if offset:
        minutes = int(offset.group("h")) * 60 + int(offset.group("m") or 0)
        if minutes < 24 * 60:
            sign = -1 if offset.group("sign") == "-" else 1
            stated = timezone(timedelta(minutes=sign * minutes))
        s = (s[: offset.start()] + s[offset.end() :]).strip()
    elif _BARE_UTC.search(s):
        stated = UTC
        s = _BARE_UTC.sub("", s).strip()
    moment = _iso(s)
    if moment is None:
        moment = _dateutil_parse(s, dayfirst)
    if moment is None or moment.year < 1990 or moment.year > 2200:
        return None
    if moment.tzinfo is None:
        tz = stated or zone
        if tz is None:
            return None
        moment = moment.replace(tzinfo=tz)
    return moment


def _iso(s: str) -> datetime | None:
    if not re.match(r"^\d{4}-\d{2}-\d{2}", s):
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None


def _dateutil_parse(s: str, dayfirst: bool) -> datetime | None:
    if not re.search(r"\d", s) or len(s) > 80:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unknown zone name ("CET") is dropped, not guessed
            moment = _dateutil.parse(s, default=_NO_DATE, dayfirst=dayfirst, fuzzy=False)
    except Exception:  # dateutil raises more than ValueError on odd input; a bad date is no date
        return None
    if moment.year == 1:  # no year in the text: the date would have to be guessed
        return None
    return moment


def clock_time(text: str | None) -> time | None:
    """ "22:00:12", "9:05 PM": a time of day with no date."""
    match = _CLOCK.match(text or "")
    if not match:
        return None
    hour, minute, second = int(match.group("h")), int(match.group("m")), int(match.group("s") or 0)
    ampm = (match.group("ampm") or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)


def on_day(
    day: date, text: str | None, zone: tzinfo | None, after: datetime | None = None
) -> datetime | None:
    """A time of day written alone ("22:14:42") placed on `day` in `zone`; a full date-time in the
    text is taken as written. With `after`, a time earlier than it is on the next day (a run that
    crossed midnight)."""
    moment = parse_when(text, zone)
    if moment is not None:
        return moment
    clock = clock_time(text)
    if clock is None or zone is None:
        return None
    moment = datetime.combine(day, clock, tzinfo=zone)
    if after is not None and moment < after:
        moment += timedelta(days=1)
    return moment
