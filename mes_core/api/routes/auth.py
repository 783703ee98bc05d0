"""``/api/v1/auth``: bearer tokens for people, API keys for integrations."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from mes_core.api.deps import (
    Admin,
    AnyUser,
    ApiKeyHeader,
    AuthorizationHeader,
    SessionDep,
    SettingsDep,
    presented_secret,
)
from mes_core.api.errors import error_responses
from mes_core.api.throttle import LoginThrottle, TooManyAttempts
from mes_core.domain.errors import NotAuthenticated, NotFound
from mes_core.persistence import audit, security
from mes_core.persistence.models import AuthToken
from mes_core.persistence.security import ANONYMOUS
from mes_core.schemas.auth import (
    ApiKeyInfo,
    ApiKeyOut,
    ApiKeyRequest,
    TokenOut,
    TokenRequest,
    WhoAmI,
)

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
    verdict = throttle.claim(session, body.username, client)
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
        session.rollback()
        unaudited = throttle.audit_allowance(session)
        if unaudited is not None:
            # 21 CFR 11.300(d): attempts at unauthorized use are detected and recorded.
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
    throttle.succeeded(session, body.username, client)
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


@router.post(
    "/api-keys",
    response_model=ApiKeyOut,
    status_code=201,
    responses=error_responses(401, 403, 422),
)
def create_api_key(
    body: ApiKeyRequest, session: SessionDep, actor: Admin, settings: SettingsDep
) -> ApiKeyOut:
    """Create an API key for an integration (connector, ERP). Admin only. It expires after
    ``expires_in_days`` (default ``MESTWIN_API_KEY_TTL_DAYS``, 90 days)."""
    days = body.expires_in_days or settings.api_key_ttl_days
    key, expires = security.issue_api_key(
        session, name=body.name, role=body.role, ttl=timedelta(days=days)
    )
    audit.append(
        session,
        actor=actor.name,
        action="api_key.created",
        object_ref=f"api_key:{body.name}",
        detail={"role": body.role.value, "expires_at": expires.isoformat()},
    )
    session.commit()
    return ApiKeyOut(name=body.name, role=body.role.value, api_key=key, expires_at=expires)


@router.get("/api-keys", response_model=list[ApiKeyInfo], responses=error_responses(401, 403))
def list_api_keys(session: SessionDep, _: Admin) -> list[ApiKeyInfo]:
    """The API keys that exist (names, roles, expiry; never the keys). Admin only."""
    rows = session.execute(
        select(AuthToken).where(AuthToken.kind == "api_key").order_by(AuthToken.id)
    ).scalars()
    return [
        ApiKeyInfo(name=r.name, role=r.role, created_at=r.created_at, expires_at=r.expires_at)
        for r in rows
    ]


@router.delete("/api-keys/{name}", status_code=204, responses=error_responses(401, 403, 404))
def revoke_api_key(name: str, request: Request, session: SessionDep, actor: Admin) -> Response:
    """Revoke every API key named ``name`` at once (every API worker stops accepting it
    when this returns). Admin only; audited."""
    count = security.revoke_api_keys(session, name)
    if not count:
        raise NotFound("api_key", name)
    audit.append(
        session,
        actor=actor.name,
        action="api_key.revoked",
        object_ref=f"api_key:{name}",
        detail={"keys": str(count)},
    )
    session.commit()
    cache = request.app.state.credential_cache
    if cache is not None:
        cache.invalidate(live=cache.live)
    return Response(status_code=204)


@router.delete("/persons/{code}/tokens", status_code=204, responses=error_responses(401, 403, 404))
def revoke_person_tokens(
    code: str, request: Request, session: SessionDep, actor: Admin
) -> Response:
    """Revoke every token of the person ``code`` at once (a lost badge or laptop): they
    must log in again. Admin only; audited."""
    count = security.revoke_person_tokens(session, code)
    if count is None:
        raise NotFound("person", code)
    audit.append(
        session,
        actor=actor.name,
        action="auth.tokens_revoked",
        object_ref=f"person:{code}",
        detail={"tokens": str(count)},
    )
    session.commit()
    cache = request.app.state.credential_cache
    if cache is not None:
        cache.invalidate(live=cache.live)
    return Response(status_code=204)


@router.post("/logout", status_code=204, responses=error_responses(401))
def logout(
    request: Request,
    session: SessionDep,
    actor: AnyUser,
    authorization: AuthorizationHeader = None,
    x_api_key: ApiKeyHeader = None,
) -> Response:
    """Revoke the token (or API key) this request presents: it is refused from now on,
    by every API worker. Audited."""
    secret = presented_secret(request, authorization, x_api_key, None)
    security.revoke_secret(session, secret)
    audit.append(session, actor=actor.name, action="auth.logout", object_ref=f"actor:{actor.name}")
    session.commit()
    cache = request.app.state.credential_cache
    if cache is not None:
        cache.forget(security.digest(secret))
    return Response(status_code=204)


@router.get("/me", response_model=WhoAmI)
def whoami(actor: AnyUser) -> WhoAmI:
    return WhoAmI(name=actor.name, roles=sorted(actor.roles))
