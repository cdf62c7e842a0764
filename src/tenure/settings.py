"""Process configuration from the environment (TENURE_*). Business settings live in the book."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENURE_", extra="ignore")

    home: Path = Path(user_data_dir("tenure", appauthor=False))
    database_url: str | None = None
    debug: bool = False
    # /healthz answers 503 "stalled" when the oldest payload the worker has yet to process is older than this
    intake_stall_seconds: float = 300
    # seconds a second caller waits for a lock another one holds (a billing run of the same period) before
    # it gives up with a clear error (tenure.db.locks)
    lock_timeout: float = 300.0
    # the largest book (or answers file) read, in bytes (tenure.book.files)
    book_max_bytes: int = 20 * 1024 * 1024

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)  # the data directory: its owner's only
        return f"sqlite:///{self.home / 'tenure.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
