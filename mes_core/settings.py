"""All MES settings, from the environment (prefix ``MESTWIN_``) through pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the MES core. ``MESTWIN_DATABASE_URL`` picks the database: SQLite (the
    embedded default, a file under the working directory) or PostgreSQL (production)."""

    model_config = SettingsConfigDict(env_prefix="MESTWIN_", extra="ignore")

    database_url: str = f"sqlite:///{Path.cwd() / 'mestwin.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
