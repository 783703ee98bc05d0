"""FastAPI dependencies: the database session and the acting user with their roles.

``SessionDep`` gives one session per request (the route commits); ``allow(...)`` names the
roles an endpoint admits (admin is always admitted) and yields the acting :class:`Actor`.

Thread hops (issue 8): FastAPI runs every synchronous dependency in the thread pool, one
hop each, and under load each hop waits for a thread and the GIL while the request's
transaction (begun by the auth query) sits idle on PostgreSQL. So the session is opened on
the event loop (creating a Session does no I/O) and closed in a thread only when it holds
a connection, and ``allow(...)`` authenticates and checks the role in one hop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import anyio
import anyio.to_thread
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


async def get_session(request: Request) -> AsyncIterator[Session]:
    state = request.app.state
    factory: sessionmaker[Session] = (
        state.session_factory if request.method in READ_METHODS else state.write_session_factory
    )
    # No I/O here: the session takes a connection from the pool on its first query.
    session = factory()
    try:
        yield session
    finally:
        # Shielded: a client that disconnects must not leave the connection checked out.
        with anyio.CancelScope(shield=True):
            if session.in_transaction():
                # Closing rolls back on the server: blocking I/O, so in a thread, with a
                # limiter of its own (as FastAPI's own generator exits) so that a close
                # never waits for a thread held by a request waiting for a connection.
                await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
            else:
                session.close()


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


AuthorizationHeader = Annotated[str | None, Header()]
ApiKeyHeader = Annotated[str | None, Header()]
AccessTokenQuery = Annotated[
    str | None, Query(description="token for clients that cannot set headers (SSE)")
]


def presented_secret(
    request: Request,
    authorization: str | None,
    x_api_key: str | None,
    access_token: str | None,
) -> str:
    """The token or API key the request presents (401 when none, or malformed)."""
    # A token in the URL ends up in access logs: accepted only where browsers' EventSource
    # leaves no other way, the event stream.
    if access_token and not request.url.path.endswith(STREAM_PATH):
        raise NotAuthenticated("access_token in the query is accepted only by the event stream")
    return _secret(authorization, x_api_key, access_token)


def authorize(request: Request, session: Session, admitted: frozenset[str], secret: str) -> Actor:
    """The actor behind ``secret`` if it holds one of the ``admitted`` roles; 401 for an
    unknown or expired secret, 403 (audited) for another role."""
    actor = security.resolve(session, secret, request.app.state.credential_cache)
    request.state.actor = actor
    if not actor.has_any(admitted):
        refused = Forbidden(
            f"{actor.name} (roles {', '.join(sorted(actor.roles)) or '-'}) may not do "
            f"this; it needs one of {', '.join(sorted(admitted))}",
            object_ref=f"actor:{actor.name}",
        )
        # A refusal by role is a refusal like any other: it goes to the audit trail
        # (a non-QA person trying to sign a disposition must leave a trace).
        record_refusal(session, refused, actor=actor, action=f"{request.method} {request.url.path}")
        raise refused
    return actor


def _admitted(roles: tuple[Role, ...]) -> frozenset[str]:
    return frozenset(r.value for r in (*roles, Role.ADMIN))


def allow(*roles: Role) -> Callable[..., Actor]:
    """A dependency admitting only ``roles`` (and admin); 401 without credentials, 403 for
    another role."""
    admitted = _admitted(roles)

    # Authentication and the role check in one function: one thread hop, not two.
    def dependency(
        request: Request,
        session: SessionDep,
        authorization: AuthorizationHeader = None,
        x_api_key: ApiKeyHeader = None,
        access_token: AccessTokenQuery = None,
    ) -> Actor:
        secret = presented_secret(request, authorization, x_api_key, access_token)
        return authorize(request, session, admitted, secret)

    dependency.__doc__ = f"Admits roles: {', '.join(sorted(admitted))}."
    dependency.admitted_roles = admitted  # type: ignore[attr-defined]
    return dependency


@dataclass(frozen=True)
class Credentials:
    """The secret a request presents, checked by the endpoint itself: ``actor(session)``
    does what :func:`allow` does (401, 403 with its refusal audited) in the endpoint's
    thread."""

    request: Request
    admitted: frozenset[str]
    secret: str

    def actor(self, session: Session) -> Actor:
        return authorize(self.request, session, self.admitted, self.secret)

    def session(self) -> Session:
        """A write session of the endpoint's own (``with who.session() as session:``),
        opened and closed in the endpoint's thread: no generator dependency (FastAPI's
        exit stack and a shielded close on the loop were ~8 % of a worker's time)."""
        factory: sessionmaker[Session] = self.request.app.state.write_session_factory
        return factory()


def allow_in_endpoint(*roles: Role) -> Callable[..., Awaitable[Credentials]]:
    """Like :func:`allow`, for the endpoints called most (operator transactions): the
    dependency only collects the credentials, on the event loop (401 at once when there
    are none), and the endpoint checks them in its own thread hop, so a request makes one
    hop instead of two (each a wait for a thread and the GIL under load)."""
    admitted = _admitted(roles)

    async def dependency(request: Request) -> Credentials:
        # Read from the headers as they are (not as declared parameters, which FastAPI
        # validates one by one on every call); no token in the query here.
        headers = request.headers
        secret = _secret(headers.get("authorization"), headers.get("x-api-key"), None)
        return Credentials(request, admitted, secret)

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
#: Operator and supervisor credentials, checked in the endpoint (see allow_in_endpoint).
ShopFloorCredentials = Annotated[
    Credentials, Depends(allow_in_endpoint(Role.OPERATOR, Role.SUPERVISOR))
]
