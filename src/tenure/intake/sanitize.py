"""Text the database can hold, whatever a payload carried.

PostgreSQL refuses NUL in text and JSON, and no database driver encodes a lone UTF-16 surrogate (JSON's
``"\\ud800"``, or the raw 8-bit bytes Python's e-mail parser keeps as surrogates). A payload holding one
must still become an alert, so such characters become U+FFFD. Pure: values in, values out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

REPLACEMENT = "\ufffd"
# a JSON escape that decodes to NUL or to a surrogate: found in the raw body at C speed, so the common
# payload (none of these) is never walked
_UNSAFE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def needs_cleaning(source: str, body: bytes) -> bool:
    """Whether the signals of this payload may hold such characters (e-mail always may)."""
    return source == "email" or b"\x00" in body or _UNSAFE_ESCAPE.search(body) is not None


def clean_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: through UTF-16, where "replace" turns each into U+FFFD
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_value(value: Any) -> Any:
    """A JSON-ready value with every string (keys too) cleaned."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value


def clean_fields(item: T) -> T:
    """A frozen dataclass (a `Signal`) with its text, mappings and lists cleaned."""
    changes = {
        f.name: clean_value(getattr(item, f.name))
        for f in dataclasses.fields(item)  # type: ignore[arg-type]
        if isinstance(getattr(item, f.name), str | Mapping | list | tuple)
    }
    return dataclasses.replace(item, **changes)  # type: ignore[type-var]
