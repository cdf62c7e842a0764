"""Service desk rules (DOMAIN.md "The service desk"): status moves, response and resolution targets, breaches.

Pure: no database, no clock. Statuses (vocabulary.TICKET_STATUSES):

    new ─▶ in_progress ─▶ waiting_on_client ─▶ resolved ─▶ closed
      │         ▲  │              │                ▲          │
      │         └──┴──────────────┘                │          │
      └──── awaiting_approval (a quote waits) ─────┘   reopen ┘ (back to in_progress)

Any status but `closed` may move to any other status but `new` (people work tickets in the order the day
brings); a closed ticket only moves by reopening it. Targets are calendar minutes from when the ticket was
opened, per agreement kind (or `default` for a client without one) and priority.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tenure.vocabulary import (
    ACTIVE_TICKET_STATUSES,
    AGREEMENT_KINDS,
    TICKET_KINDS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
)

TARGET_KINDS: tuple[str, ...] = (*AGREEMENT_KINDS, "default")
REOPENED = "in_progress"

# minutes: first response, then resolution (calendar time)
_MANAGED = {"P1": (30, 240), "P2": (60, 480), "P3": (240, 1440), "P4": (480, 4320)}
_MONITORED = {"P1": (60, 480), "P2": (120, 1440), "P3": (480, 2880), "P4": (1440, 7200)}
_REACTIVE = {"P1": (120, 1440), "P2": (240, 2880), "P3": (1440, 7200), "P4": (2880, 14400)}
DEFAULT_TARGETS: dict[str, dict[str, dict[str, int]]] = {
    kind: {p: {"response": r, "resolution": f} for p, (r, f) in table.items()}
    for kind, table in (
        ("managed", _MANAGED),
        ("monitoring", _MONITORED),
        ("call_before_service", _MONITORED),
        ("retainer", _REACTIVE),
        ("adhoc", _REACTIVE),
        ("default", _REACTIVE),
    )
}
# an agreement kind of the client's, the one whose targets a ticket gets: the closest service first
_KIND_ORDER = ("managed", "call_before_service", "monitoring", "retainer", "adhoc")


class DeskError(ValueError):
    """A move or a value the desk does not allow; the message says which and why."""


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DeskError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return value


def check_kind(kind: str) -> str:
    return check_choice("kind", kind, TICKET_KINDS)


def check_priority(priority: str) -> str:
    return check_choice("priority", priority.upper(), TICKET_PRIORITIES)


def check_move(current: str, target: str) -> None:
    """Raise DeskError unless a ticket in `current` may move to `target` by a status change."""
    check_choice("status", target, TICKET_STATUSES)
    if current == target:
        raise DeskError(f"the ticket is already {current}")
    if current == "closed":
        raise DeskError("the ticket is closed: reopen it first")
    if target == "new":
        raise DeskError("a ticket cannot go back to new (reopen a closed one, or set it in_progress)")


def check_reopen(current: str) -> None:
    if current not in ("closed", "resolved"):
        raise DeskError(f"the ticket is {current}: only a closed or resolved ticket can be reopened")


def agreement_kind_for(kinds: list[str]) -> str:
    """The target table of a client holding agreements of `kinds` (active ones), `default` for none."""
    return next((k for k in _KIND_ORDER if k in kinds), "default")


def targets_of(settings: Mapping[str, Any] | None) -> dict[str, dict[str, dict[str, int]]]:
    """The MSP's targets over the defaults: a kind or priority the settings leave out keeps its default."""
    merged = {kind: {p: dict(t) for p, t in table.items()} for kind, table in DEFAULT_TARGETS.items()}
    for kind, table in (settings or {}).items():
        for priority, target in (table or {}).items():
            merged.setdefault(kind, {}).setdefault(priority, {}).update(target)
    return merged


def check_targets(settings: Mapping[str, Any]) -> list[str]:
    """What is wrong with a `ticket_targets` setting, each naming where (empty: nothing)."""
    problems: list[str] = []
    if not isinstance(settings, Mapping):
        return ["ticket_targets: must be a mapping of agreement kind to priorities"]
    for kind, table in settings.items():
        if kind not in TARGET_KINDS:
            problems.append(f"ticket_targets.{kind}: not one of {', '.join(TARGET_KINDS)}")
            continue
        if not isinstance(table, Mapping):
            problems.append(f"ticket_targets.{kind}: must be a mapping of priority to targets")
            continue
        for priority, target in table.items():
            where = f"ticket_targets.{kind}.{priority}"
            if priority not in TICKET_PRIORITIES:
                problems.append(f"{where}: not one of {', '.join(TICKET_PRIORITIES)}")
            elif not isinstance(target, Mapping) or not set(target) <= {"response", "resolution"}:
                problems.append(f"{where}: must be {{response, resolution}} in minutes")
            else:
                for name, minutes in target.items():
                    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
                        problems.append(f"{where}.{name}: must be a whole number of minutes above 0")
    return problems


@dataclass(frozen=True, slots=True)
class DueTimes:
    respond_by: datetime
    due_at: datetime


def due_times(
    settings: Mapping[str, Any] | None, agreement_kind: str, priority: str, opened_at: datetime
) -> DueTimes:
    """When a ticket opened at `opened_at` must first be answered and be resolved."""
    table = targets_of(settings)
    target = table.get(agreement_kind, table["default"]).get(priority) or table["default"][priority]
    return DueTimes(
        opened_at + timedelta(minutes=int(target["response"])),
        opened_at + timedelta(minutes=int(target["resolution"])),
    )


def breached(status: str, due_at: datetime | None, now: datetime) -> bool:
    """Still being worked (not resolved or closed) after its resolution due time."""
    return due_at is not None and status in ACTIVE_TICKET_STATUSES and due_at < now


def answers(status: str, public: bool) -> bool:
    """A status change away from `new`, or a public note, is the ticket's first response."""
    return public or status != "new"
