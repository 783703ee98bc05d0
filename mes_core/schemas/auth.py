"""Authentication: bearer tokens for people, API keys for integrations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mes_core.domain.states import Role
from mes_core.schemas.common import Out, Strict


class TokenRequest(Strict):
    username: Annotated[str, Field(min_length=1, max_length=100)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class TokenOut(Out):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    roles: list[str]


class ApiKeyRequest(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role = Role.INTEGRATION
    #: Days until the key expires; unset: ``MESTWIN_API_KEY_TTL_DAYS`` (default 90).
    expires_in_days: Annotated[float | None, Field(gt=0, le=3650)] = None


class ApiKeyOut(Out):
    name: str
    role: str
    api_key: str
    expires_at: datetime | None = None


class ApiKeyInfo(Out):
    """An API key as listed (never the key itself: only its hash is stored)."""

    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None


class WhoAmI(Out):
    name: str
    roles: list[str]
