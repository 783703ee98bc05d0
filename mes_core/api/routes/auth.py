"""``/api/v1/auth``: bearer tokens for people, API keys for integrations."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from mes_core.api.deps import Admin, AnyUser, SessionDep, SettingsDep
from mes_core.domain.errors import NotAuthenticated
from mes_core.persistence import audit, security
from mes_core.persistence.refusals import record_refusal
from mes_core.persistence.security import ANONYMOUS
from mes_core.schemas.auth import ApiKeyOut, ApiKeyRequest, TokenOut, TokenRequest, WhoAmI

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenOut)
def login(body: TokenRequest, session: SessionDep, settings: SettingsDep) -> TokenOut:
    """Exchange username + password for a bearer token (open to everyone). Every login and
    every failed attempt is recorded in the audit trail (never the password)."""
    try:
        person = security.verify_password(session, person=body.username, password=body.password)
    except NotAuthenticated as exc:
        # 21 CFR 11.300(d): attempts at unauthorized use are detected and recorded.
        record_refusal(session, exc, actor=ANONYMOUS, action="POST /api/v1/auth/token")
        raise
    token, expires = security.issue_token(
        session, person=person, ttl=timedelta(hours=settings.token_ttl_hours)
    )
    audit.append(
        session,
        actor=person.code,
        action="auth.login",
        object_ref=f"person:{person.code}",
        detail={"expires_at": expires.isoformat()},
    )
    session.commit()
    return TokenOut(access_token=token, expires_at=expires, roles=person.role_list)


@router.post("/api-keys", response_model=ApiKeyOut, status_code=201)
def create_api_key(body: ApiKeyRequest, session: SessionDep, actor: Admin) -> ApiKeyOut:
    """Create an API key for an integration (connector, ERP). Admin only."""
    key = security.issue_api_key(session, name=body.name, role=body.role)
    audit.append(
        session,
        actor=actor.name,
        action="api_key.created",
        object_ref=f"api_key:{body.name}",
        detail={"role": body.role.value},
    )
    session.commit()
    return ApiKeyOut(name=body.name, role=body.role.value, api_key=key)


@router.get("/me", response_model=WhoAmI)
def whoami(actor: AnyUser) -> WhoAmI:
    return WhoAmI(name=actor.name, roles=sorted(actor.roles))
