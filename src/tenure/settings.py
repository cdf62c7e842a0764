"""Process configuration from the environment (TENURE_*). Business settings live in the book."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

_TRUE, _FALSE = {"1", "true", "yes", "on", "t", "y"}, {"0", "false", "no", "off", "f", "n", ""}


def _read(name: str, kind: str, text: str) -> Any:
    """An environment variable's text as its field's type (what pydantic-settings read, without loading it:
    every command reads these)."""
    try:
        if kind == "bool":
            if text.strip().lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.strip().lower() in _TRUE
        return {"Path": Path, "float": float, "int": int}.get(kind, str)(text)
    except ValueError:
        raise ValueError(f"TENURE_{name.upper()}: {text!r} is not a valid {kind}") from None


@dataclass
class Settings:
    """TENURE_<FIELD> overrides each field's default (TENURE_HOME, TENURE_DATABASE_URL, ...); a value other
    than the default given to the constructor overrides both."""

    home: Path = field(default_factory=lambda: Path(user_data_dir("tenure", appauthor=False)))
    database_url: str | None = None
    debug: bool = False
    # /healthz answers 503 "stalled" when the oldest payload the worker has yet to process is older than this
    intake_stall_seconds: float = 300
    # seconds a second caller waits for a lock another one holds (a billing run of the same period) before
    # it gives up with a clear error (tenure.db.locks)
    lock_timeout: float = 300.0
    # the largest book (or answers file) read, in bytes (tenure.book.files)
    book_max_bytes: int = 20 * 1024 * 1024
    # processes a billing run settles its clients in (tenure.db.fanout): 0 is one per core, 1 keeps it in one
    billing_processes: int = 0

    def __post_init__(self) -> None:
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(self):
            text = os.environ.get(f"TENURE_{f.name.upper()}")
            if text is None:
                continue
            default = f.default_factory() if callable(f.default_factory) else f.default
            if given[f.name] == default:  # not given to the constructor: the environment's value
                kind = str(f.type).replace(" | None", "")
                setattr(self, f.name, _read(f.name, kind, text))

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)  # the data directory: its owner's only
        return f"sqlite:///{self.home / 'tenure.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
