"""Reading and writing book files: YAML, or JSON when the name ends in `.json`.

A file larger than `book_max_bytes` (settings: TENURE_BOOK_MAX_BYTES, default 20 MiB) is refused before it is
read. YAML is read by libyaml's safe loader when PyYAML has it (about ten times faster than the pure-Python
one), and a document whose aliases (`*name`) expand to more values than the file could hold without them
("billion laughs": a few lines that stand for gigabytes) is refused before anything walks it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tenure.errors import TenureError
from tenure.settings import get_settings

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SafeLoader(_BaseLoader):  # type: ignore[misc]
    """The safe loader (LibYAML's when there), whose unquoted dates that are no date (`2027-13-45`) are refused
    as a YAML error at their line and column, not as a bare `ValueError` naming neither file nor place."""


def _timestamp(loader: Any, node: Any) -> Any:
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a date or time ({exc})", node.start_mark
        ) from None


SafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
# values an alias may add beyond the file's own size in bytes (each value written out takes at least one)
ALIAS_ALLOWANCE = 100_000


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}".replace(".0 ", " ")
        count /= 1024
    return f"{count} bytes"  # never reached


def _read(path: Path, limit: int) -> str:
    """The file's text, refused (before it is read whole) when it is larger than `limit` bytes."""
    too_big = (
        f"{path}: the file is larger than the limit of {_size(limit)} (TENURE_BOOK_MAX_BYTES); split it into "
        "several books, or raise the limit"
    )
    try:
        size = path.stat().st_size
        if size > limit:
            raise TenureError(too_big.replace("larger than", f"{_size(size)}, more than", 1))
        with path.open("rb") as handle:  # bounded, for a file that grows or is not a regular file (a pipe)
            data = handle.read(limit + 1)
    except OSError as exc:
        raise TenureError(f"{path}: cannot read the book ({exc.strerror})") from None
    if len(data) > limit:
        raise TenureError(too_big)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TenureError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None


def _check_expansion(path: Path, document: Any, limit: int) -> None:
    """Refuse a document whose aliases make it stand for more than `limit` values, or that holds itself.
    PyYAML gives an alias the same object as its anchor, so counting once per object (memoised by id) is
    quick however large the expansion is."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        if key in sizes:
            continue
        items = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        if not children_done:
            if key in open_:
                raise TenureError(f"{path}: not a book: an alias (*name) refers to the value that holds it")
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in items if isinstance(child, dict | list))
            continue
        open_.discard(key)
        sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in items)
        if sizes[key] > limit:
            raise TenureError(
                f"{path}: not a book: its aliases (*name) expand to more than {limit:,} values (a YAML alias bomb)"
            )


def load(path: Path) -> Any:
    text = _read(path, get_settings().book_max_bytes)
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        document = yaml.load(text, Loader=SafeLoader)  # a safe loader: plain data, no objects
        _check_expansion(path, document, len(text) + ALIAS_ALLOWANCE)
        return document
    except RecursionError:
        raise TenureError(f"{path}: not a book: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise TenureError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TenureError(f"{path}{where}: not valid YAML ({problem})") from None


def dumps(document: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
