"""All MES settings, from the environment (prefix ``MESTWIN_``) through pydantic-settings."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    #: Who may read /metrics without the metrics token: ``loopback`` (clients on this
    #: host), ``true`` (everyone), ``false`` (nobody); see ``mes_core.api.exposure``.
    metrics_public: Literal["loopback", "true", "false"] = "loopback"
    #: The bearer token that admits a scrape of /metrics from anywhere.
    metrics_token: SecretStr | None = None
    #: Serve the OpenAPI document and /docs (the API's shape, no data) to everyone.
    openapi_public: bool = True
    #: Where ``mestwin audit checkpoint`` appends the signed chain head and ``audit
    #: verify`` checks it (outside the database; see ``persistence.audit_anchor``).
    audit_checkpoints: Path | None = None
    #: The key that signs audit checkpoints (kept away from the database).
    audit_key: SecretStr | None = None
    #: Lifetime of API keys created without ``expires_in_days`` (days).
    api_key_ttl_days: float = Field(default=90.0, gt=0, le=3650)
    #: Largest request body accepted (bytes); a full batch of 10,000 events fits.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    #: How often the event stream looks for new changes (seconds).
    stream_poll_seconds: float = Field(default=0.5, gt=0)
    #: Threads per API worker running synchronous endpoints, on PostgreSQL (few, see
    #: ``mes_core.api.app._lifespan``; SQLite keeps anyio's 40).
    api_threads: int = Field(default=8, ge=1, le=200)
    #: Failed logins of one account (and from one client address) allowed within 15
    #: minutes before a back-off starts (doubling per failure, up to the maximum), counted
    #: in the database: shared by every API worker, kept across restarts; see
    #: ``mes_core.api.throttle``.
    login_account_free_failures: int = Field(default=5, ge=1)
    login_client_free_failures: int = Field(default=20, ge=1)
    login_max_backoff_s: float = Field(default=300.0, gt=0)
    #: Failed logins audited one by one per hour (all API workers together); past it
    #: they are counted and the count written with the next audited one.
    login_failure_audit_per_hour: int = Field(default=600, ge=1)
    #: The window of plant time in which plant events may be stamped (issue 21, item 9):
    #: from MAX_BEHIND before the earlier of the plant clock (the latest plant time the
    #: MES holds) and the MES clock, to MAX_AHEAD after the later of the two; outside it a
    #: batch is refused 422, naming each such event (``mes_core.api.plant_time``).
    #: Seconds or ISO 8601 (``P30D``, ``PT5M``). Wide by default, since a simulated plant
    #: keeps its own calendar and runs at up to 1000x (30 days of plant time are 43
    #: minutes of such a run): a plant on the wall clock can narrow MAX_AHEAD to minutes.
    plant_time_max_ahead: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    plant_time_max_behind: timedelta = Field(default=timedelta(days=3650), gt=timedelta(0))
    #: PostgreSQL: seconds to wait for a connection to open (libpq ``connect_timeout``);
    #: past it a request is answered 503 with ``Retry-After`` instead of hanging.
    db_connect_timeout_s: int = Field(default=5, ge=2, le=300)
    #: PostgreSQL: longest a statement may run (server-side ``statement_timeout``; 0: off).
    #: Data left unacknowledged on a dead network path fails after twice the connect
    #: timeout (``tcp_user_timeout``).
    db_statement_timeout_s: float = Field(default=30.0, ge=0)
    #: PostgreSQL: a statement unanswered this long (seconds) makes the MES check with a
    #: new connection that the database still answers; if it does not (a hung server, a
    #: path that swallows everything), the request is answered 503 with ``Retry-After``
    #: (see ``mes_core.persistence.db.AnswerGuard``). 0: never checked.
    db_answer_within_s: float = Field(default=2.0, ge=0)
    #: Seconds a request waits for a free connection of the pool before a 503.
    db_pool_timeout_s: float = Field(default=10.0, gt=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
