"""Who is acting: every change-log row carries the actor set here (a user, `cli:<login>`, `worker`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

actor: ContextVar[str] = ContextVar("tenure_actor", default="system")


def current_actor() -> str:
    return actor.get()


@contextmanager
def as_actor(name: str) -> Iterator[None]:
    token = actor.set(name)
    try:
        yield
    finally:
        actor.reset(token)
