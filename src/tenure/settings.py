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

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.home / 'tenure.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
