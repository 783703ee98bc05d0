"""FastAPI dependencies: the database session and the acting user with their roles.

``SessionDep`` gives one session per request (the route commits); ``allow(...)`` names the
roles an endpoint admits (admin is always admitted) and yields the acting :class:`Actor`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.orm import Session, sessionmaker

from mes_core.domain.errors import Forbidden, NotAuthenticated
from mes_core.domain.states import Role
from mes_core.persistence import security
from mes_core.persistence.refusals import record_refusal
from mes_core.persistence.security import Actor
from mes_core.settings import Settings

STREAM_PATH = "/events/stream"

#: Methods that only read: their sessions need no write lock (see make_session_factory).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    state = request.app.state
    factory: sessionmaker[Session] = (
        state.session_factory if request.method in READ_METHODS else state.write_session_factory
    )
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def _secret(
    authorization: str | None,
    x_api_key: str | None,
    access_token: str | None,
) -> str:
    if x_api_key:
        return x_api_key
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise NotAuthenticated("Authorization header must be 'Bearer <token>'")
        return value.strip()
    if access_token:
        return access_token
    raise NotAuthenticated("authentication required: a bearer token or an X-API-Key header")


def current_actor(
    request: Request,
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    access_token: Annotated[
        str | None, Query(description="token for clients that cannot set headers (SSE)")
    ] = None,
) -> Actor:
    # A token in the URL ends up in access logs: accepted only where browsers' EventSource
    # leaves no other way, the event stream.
    if access_token and not request.url.path.endswith(STREAM_PATH):
        raise NotAuthenticated("access_token in the query is accepted only by the event stream")
    actor = security.resolve(session, _secret(authorization, x_api_key, access_token))
    request.state.actor = actor
    return actor


def allow(*roles: Role) -> Callable[..., Actor]:
    """A dependency admitting only ``roles`` (and admin); 401 without credentials, 403 for
    another role."""
    admitted = frozenset(r.value for r in (*roles, Role.ADMIN))

    def dependency(
        request: Request, session: SessionDep, actor: Annotated[Actor, Depends(current_actor)]
    ) -> Actor:
        if not actor.has_any(admitted):
            refused = Forbidden(
                f"{actor.name} (roles {', '.join(sorted(actor.roles)) or '-'}) may not do "
                f"this; it needs one of {', '.join(sorted(admitted))}",
                object_ref=f"actor:{actor.name}",
            )
            # A refusal by role is a refusal like any other: it goes to the audit trail
            # (a non-QA person trying to sign a disposition must leave a trace).
            record_refusal(
                session, refused, actor=actor, action=f"{request.method} {request.url.path}"
            )
            raise refused
        return actor

    dependency.__doc__ = f"Admits roles: {', '.join(sorted(admitted))}."
    dependency.admitted_roles = admitted  # type: ignore[attr-defined]
    return dependency


def admitted_roles(dependant: Dependant) -> frozenset[str] | None:
    """The roles an endpoint admits (from its ``allow(...)`` dependency), if any."""
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "admitted_roles", None)
        if roles is not None:
            return frozenset(roles)
        found = admitted_roles(dep)
        if found is not None:
            return found
    return None


ALL_ROLES = tuple(Role)
AnyUser = Annotated[Actor, Depends(allow(*ALL_ROLES))]
Supervisor = Annotated[Actor, Depends(allow(Role.SUPERVISOR))]
Planner = Annotated[Actor, Depends(allow(Role.SUPERVISOR, Role.INTEGRATION))]
ShopFloor = Annotated[Actor, Depends(allow(Role.OPERATOR, Role.SUPERVISOR))]
Quality = Annotated[Actor, Depends(allow(Role.SUPERVISOR, Role.QUALITY))]
Auditor = Annotated[Actor, Depends(allow(Role.SUPERVISOR, Role.QUALITY))]
Integration = Annotated[Actor, Depends(allow(Role.INTEGRATION))]
Admin = Annotated[Actor, Depends(allow())]
