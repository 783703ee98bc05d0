"""All MES settings, from the environment (prefix ``MESTWIN_``) through pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the MES core. ``MESTWIN_DATABASE_URL`` picks the database: SQLite (the
    embedded default, a file under the working directory) or PostgreSQL (production)."""

    model_config = SettingsConfigDict(env_prefix="MESTWIN_", extra="ignore")

    database_url: str = f"sqlite:///{Path.cwd() / 'mestwin.db'}"
    #: Password of the ``admin`` person created on an empty database. Unset, the embedded
    #: demo default ``admin`` is used on SQLite; on PostgreSQL it must be set.
    admin_password: SecretStr | None = None
    #: Lifetime of bearer tokens issued by ``POST /api/v1/auth/token``.
    token_ttl_hours: float = Field(default=12.0, gt=0)
    #: Largest request body accepted (bytes); a full batch of 10,000 events fits.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    #: How often the event stream looks for new changes (seconds).
    stream_poll_seconds: float = Field(default=0.5, gt=0)
    #: Threads per API worker running synchronous endpoints, on PostgreSQL (few, see
    #: ``mes_core.api.app._lifespan``; SQLite keeps anyio's 40).
    api_threads: int = Field(default=8, ge=1, le=200)


@lru_cache
def get_settings() -> Settings:
    return Settings()
