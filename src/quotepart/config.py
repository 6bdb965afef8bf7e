"""Settings: everything an operator can configure, read once and passed explicitly."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """From QUOTEPART_* environment variables or passed in; nothing is read at import time."""

    model_config = SettingsConfigDict(env_prefix="QUOTEPART_")

    home: Path = Path(".")
    database_url: str | None = None  # None: the workspace's own setting, else SQLite in `home`
