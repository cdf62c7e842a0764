"""One-line text: names, e-mail addresses, hostnames and subjects end up in mail headers (a CR or LF there
breaks the message, or adds headers), calendar lines and CSV cells, so they hold no control characters.

`problem` says what is wrong with a value (None: nothing), for the book's validators and the services;
`header_safe` is the last line of defence where a header is written, for text stored before the check.
"""

from __future__ import annotations

import re

from tenure.errors import TenureError

# Unicode's control characters (category Cc: C0, DEL, C1) and its line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMES = {"\r": "CR", "\n": "LF", "\t": "TAB", "\x00": "NUL", "\x85": "NEL", "\u2028": "LINE SEPARATOR"}


def problem(value: str) -> str | None:
    """Why `value` is not one line of text, or None when it is."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    char = found.group()
    name = _NAMES.get(char)
    kind = "a line break" if char in "\r\n\x85\u2028\u2029" else "a control character"
    code = f"{name}, U+{ord(char):04X}" if name else f"U+{ord(char):04X}"
    return f"must be one line without control characters: it holds {kind} ({code})"


def one_line(value: str, place: str) -> str:
    """`value`, or TenureError naming `place` (`technician`, `--title`) when it is not one line."""
    found = problem(value)
    if found is not None:
        raise TenureError(f"{place}: {found}")
    return value


def header_safe(value: str) -> str:
    """`value` with every control character (CR, LF, ...) turned into a space."""
    return _CONTROL.sub(" ", value)


# a cell a spreadsheet reads as a formula (OWASP's CSV injection list); a number such as -12.50 is not one
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def spreadsheet_safe(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text: one beginning like a formula gets a leading `'`."""
    if value.startswith(_FORMULA_START) and _NUMBER.fullmatch(value) is None:
        return "'" + value
    return value
