"""``/api/v1/auth``: bearer tokens for people, API keys for integrations."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from mes_core.api.deps import Admin, AnyUser, SessionDep, SettingsDep
from mes_core.api.errors import error_responses
from mes_core.api.throttle import LoginThrottle, TooManyAttempts
from mes_core.domain.errors import NotAuthenticated
from mes_core.persistence import audit, security
from mes_core.persistence.security import ANONYMOUS
from mes_core.schemas.auth import ApiKeyOut, ApiKeyRequest, TokenOut, TokenRequest, WhoAmI

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


LOGIN = "POST /api/v1/auth/token"


@router.post(
    "/token",
    response_model=TokenOut,
    responses=error_responses(401, 429),
)
def login(
    body: TokenRequest, request: Request, session: SessionDep, settings: SettingsDep
) -> TokenOut:
    """Exchange username + password for a bearer token (open to everyone). Every login and
    every failed attempt is recorded in the audit trail (never the password), within a
    bound; repeated failures for an account or from an address are answered 429 with
    ``Retry-After`` for a growing back-off (``mes_core.api.throttle``)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "-"
    verdict = throttle.check(body.username, client)
    if not verdict.allowed:
        if verdict.first_refusal:
            audit.append(
                session,
                actor=ANONYMOUS.name,
                action="auth.throttled",
                object_ref=f"person:{body.username}",
                detail={
                    "client": client,
                    "by": verdict.key,
                    "retry_after_s": verdict.retry_after_s,
                },
            )
            session.commit()
        raise TooManyAttempts(
            f"too many failed logins ({verdict.key.partition(':')[0]}): "
            f"retry in {verdict.retry_after_s} s",
            retry_after_s=verdict.retry_after_s,
            object_ref=f"person:{body.username}",
        )
    try:
        person = security.verify_password(session, person=body.username, password=body.password)
    except NotAuthenticated as exc:
        throttle.failed(body.username, client)
        unaudited = throttle.audit_allowance()
        if unaudited is not None:
            # 21 CFR 11.300(d): attempts at unauthorized use are detected and recorded.
            session.rollback()
            detail = {"rule": exc.code, "message": exc.message, "attempted": LOGIN}
            detail["client"] = client
            if unaudited:
                detail["unaudited_before"] = str(unaudited)
            audit.append(
                session,
                actor=ANONYMOUS.name,
                action="refused",
                object_ref=exc.object_ref or "-",
                detail=detail,
            )
            session.commit()
        raise
    throttle.succeeded(body.username)
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
