"""Validate a whole book before anything is written, naming the place of every problem.

Places read like `clients[2].agreements[0].kind`, so a person can find the line in a long file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from tenure.book.schema import Book
from tenure.errors import ValidationFailed


def place(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(book)"


def _message(error: ErrorDetails) -> str:
    kind, given = error["type"], error.get("input")
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", "")).replace(" or ", ", ")
        return f"{given!r} is not one of {expected}"
    if kind == "extra_forbidden":
        return "unknown field (check its spelling; `tenure book schema` lists the fields)"
    if kind == "missing":
        return "is required"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        # drop pydantic's internal segments (function-after[...], union tags) from the place
        loc = [p for p in error["loc"] if isinstance(p, int) or not str(p).startswith(("function-", "lax-"))]
        problems.append(f"{place(loc)}: {_message(error)}")
    return problems


def _duplicates(items: list[tuple[str, str]]) -> list[str]:
    """`items` are (place, key); every key seen twice is reported at its second place."""
    counts = Counter(key for _, key in items)
    seen: set[str] = set()
    problems = []
    for where, key in items:
        if counts[key] > 1:
            if key in seen:
                problems.append(f"{where}: duplicate key {key!r}")
            seen.add(key)
    return problems


Known = dict[str, dict[str, set[str]]]  # client key -> "sites"/"devices" -> keys already in the database


def references(book: Book, known: Known | None = None) -> list[str]:
    """Duplicate keys and references that point nowhere. A book may refer to a site or device that the
    database already holds for the same client (`known`): a book need not repeat what was imported before."""
    known = known or {}
    problems: list[str] = []
    global_keys: dict[str, list[tuple[str, str]]] = {
        "clients": [],
        "agreements": [],
        "blocks": [],
        "devices": [],
        "accounts": [],
        "backup_jobs": [],
    }
    offer_keys = [(f"msp.catalog[{i}].key", o.key) for i, o in enumerate(book.msp.catalog)]
    problems += _duplicates(offer_keys)
    for c, client in enumerate(book.clients):
        at = f"clients[{c}]"
        global_keys["clients"].append((f"{at}.key", client.key))
        for name in ("agreements", "blocks", "devices", "accounts", "backup_jobs"):
            for i, item in enumerate(getattr(client, name)):
                global_keys[name].append((f"{at}.{name}[{i}].key", item.key))
        for name in ("sites", "time_entries", "charges"):
            problems += _duplicates(
                [(f"{at}.{name}[{i}].key", item.key) for i, item in enumerate(getattr(client, name))]
            )
        deposits = [(f"{at}.retainer_deposits[{i}].key", d.key) for i, d in enumerate(client.retainer_deposits)]
        problems += _duplicates([(w, k) for w, k in deposits if k])
        numbers = [(f"{at}.invoices[{i}].number", v.number) for i, v in enumerate(client.invoices)]
        problems += _duplicates([(w, k) for w, k in numbers if k])
        sites = {s.key for s in client.sites} | known.get(client.key, {}).get("sites", set())
        devices = {d.key for d in client.devices} | known.get(client.key, {}).get("devices", set())
        for i, device in enumerate(client.devices):
            if device.site and device.site not in sites:
                problems.append(f"{at}.devices[{i}].site: no site {device.site!r} in this client")
        for i, job in enumerate(client.backup_jobs):
            if job.device and job.device not in devices:
                problems.append(f"{at}.backup_jobs[{i}].device: no device {job.device!r} in this client")
        for i, entry in enumerate(client.time_entries):
            if entry.device and entry.device not in devices:
                problems.append(f"{at}.time_entries[{i}].device: no device {entry.device!r} in this client")
    for items in global_keys.values():
        problems += _duplicates(items)
    return problems


def parse(data: Any) -> Book:
    """The book's fields and types, or ValidationFailed listing every problem with its place."""
    if not isinstance(data, dict):
        raise ValidationFailed(["(book): a book is a mapping with `version`, `msp` and `clients`"])
    try:
        book = Book.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_pydantic_problems(exc)) from None
    return book


def validate(data: Any, known: Known | None = None) -> Book:
    """The whole book checked: fields, types, duplicate keys and references."""
    book = parse(data)
    problems = references(book, known)
    if problems:
        raise ValidationFailed(problems)
    return book
