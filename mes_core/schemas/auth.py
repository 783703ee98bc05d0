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


class ApiKeyOut(Out):
    name: str
    role: str
    api_key: str


class WhoAmI(Out):
    name: str
    roles: list[str]
