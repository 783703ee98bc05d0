"""The FastAPI application factory of the MES.

Routers are mounted from one visible list, :data:`ROUTERS`; other parts of mes_core
(quality, KPI, labour, ERP) append their router's dotted path there.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mes_core.api import docs, errors, health
from mes_core.api.deps import admitted_roles
from mes_core.api.exposure import metrics_access
from mes_core.api.limits import BodySizeLimit, RefuseNul
from mes_core.api.plant_time import PlantTimeWindow
from mes_core.api.throttle import LoginThrottle
from mes_core.domain.states import Role
from mes_core.gc_tuning import settle_heap
from mes_core.observability import install as install_observability
from mes_core.observability import open_holds_from
from mes_core.persistence.auth_cache import ChangeListener, CredentialCache
from mes_core.persistence.db import is_sqlite, make_engine, make_session_factory
from mes_core.persistence.models import Person
from mes_core.persistence.security import SYSTEM, create_person_once, hash_password
from mes_core.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: Routers of the API, as "module:attribute". Append yours; order is the OpenAPI order
#: and the order requests are matched in. FastAPI tries every route of every router before
#: the one that matches, ~3.5 us each, and again inside the matching router (issue 20:
#: ~0.2 ms of CPU per operator transaction when job orders came seventh, behind ~60
#: routes): so the routers called most come first, job orders (the operator transactions,
#: declared first in their module) and the plant events' ingest.
ROUTERS: list[str] = [
    "mes_core.api.routes.job_orders:router",
    "mes_core.api.routes.plant_events:router",
    "mes_core.api.routes.auth:router",
    "mes_core.api.routes.masterdata:router",
    "mes_core.api.routes.equipment:router",
    "mes_core.api.routes.materials:router",
    "mes_core.api.routes.routings:router",
    "mes_core.api.routes.personnel:router",
    "mes_core.api.routes.genealogy:router",
    "mes_core.api.routes.audit:router",
    "mes_core.quality.api:router",
    "mes_core.kpi.api:router",
    "mes_core.labour.api:router",
    "mes_core.erp.api:router",
]

#: The embedded demo's admin password (SQLite only; see README "MES core").
DEMO_ADMIN_PASSWORD = "admin"


class AdminPasswordRequired(RuntimeError):
    """PostgreSQL without an admin yet and without ``MESTWIN_ADMIN_PASSWORD``."""


def ensure_admin(factory: sessionmaker[Session], settings: Settings) -> None:
    """Create the ``admin`` person on a database that has none.

    The default password ``admin`` is for the embedded SQLite demo only; on PostgreSQL
    ``MESTWIN_ADMIN_PASSWORD`` must be set, or the service refuses to start.
    """
    with factory() as session:
        if session.execute(select(Person.id).where(Person.code == "admin")).first():
            return
        if settings.admin_password is not None:
            password = settings.admin_password.get_secret_value()
        elif is_sqlite(settings.database_url):
            password = DEMO_ADMIN_PASSWORD
        else:
            raise AdminPasswordRequired(
                "the default admin credential is for the embedded SQLite demo only: set "
                "MESTWIN_ADMIN_PASSWORD to create the admin user on this database"
            )
        from mes_core.persistence import audit

        # Race-free across workers starting at once: the insert does nothing if another
        # worker created the admin meanwhile, and only the creator audits it.
        if create_person_once(
            session,
            code="admin",
            name="Administrator",
            roles=Role.ADMIN.value,
            password_hash=hash_password(password),
        ):
            audit.append(
                session, actor=SYSTEM.name, action="person.created", object_ref="person:admin"
            )
        session.commit()


def load_router(path: str) -> APIRouter:
    module, _, attr = path.partition(":")
    router = getattr(importlib.import_module(module), attr)
    assert isinstance(router, APIRouter), path
    return router


def _document_roles(router: APIRouter) -> None:
    """Write the roles each endpoint admits into its OpenAPI description."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        roles = admitted_roles(route.dependant)
        note = (
            f"**Roles:** {', '.join(sorted(roles))}."
            if roles is not None
            else "**Roles:** open (no authentication)."
        )
        if note not in route.description:  # routers are module globals: once per process
            route.description = f"{route.description}\n\n{note}".strip()


# Threads that run synchronous routes and dependencies, per worker, on PostgreSQL
# (``MESTWIN_API_THREADS``, default 8; anyio's default: 40). Issue 8: with 40, that many
# requests share the GIL at once, each holding an open transaction while it waits its
# turn; fewer threads finish each request sooner.
# ``mestwin bench api`` (200 tx/s offered, 20 s runs): 40 threads 151-166 tx/s, p50 85 ms;
# 8 threads 172-183 tx/s, p50 50-70 ms. The pool (10 + 20 connections) stays larger, so
# a thread never waits for a connection held by a request queued for a thread.
# Not on SQLite: a write session holds the database lock from its first query (BEGIN
# IMMEDIATE, in the auth dependency's thread hop) to its commit (in the route's hop), so
# a few threads all waiting on the lock would starve the holder of a thread for its route.


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Set in the worker's own event loop: the limiter belongs to it.
    if not is_sqlite(app.state.settings.database_url):
        threads = app.state.settings.api_threads
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    listener = None
    if app.state.credential_cache is not None:
        listener = ChangeListener(app.state.settings.database_url, app.state.credential_cache)
        listener.start()
    if app.state.served:
        # A served worker (not an app in a test's process): its start-up heap out of the
        # collector's sight (full collections of it stalled requests 120-165 ms).
        settle_heap()
    try:
        yield
    finally:
        if listener is not None:
            await anyio.to_thread.run_sync(listener.stop)


def engine_options(settings: Settings) -> dict[str, Any]:
    """The API's bounds on every wait for the database (issue 21, item 8), and the key
    that seals its audit trail (item 10)."""
    key = {"audit_key": settings.audit_key.get_secret_value() if settings.audit_key else ""}
    if is_sqlite(settings.database_url):
        return key
    return {
        **key,
        "connect_timeout_s": settings.db_connect_timeout_s,
        "statement_timeout_s": settings.db_statement_timeout_s,
        "answer_within_s": settings.db_answer_within_s,
        "pool_timeout": settings.db_pool_timeout_s,
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, **engine_options(settings))
    factory = make_session_factory(engine)
    write_factory = make_session_factory(engine, write=True)
    ensure_admin(write_factory, settings)
    app = FastAPI(
        lifespan=_lifespan,
        title="mestwin MES core",
        version="0.1.0",
        openapi_url="/openapi.json" if settings.openapi_public else None,
        docs_url=None,  # served with local assets by api/docs.py (works offline)
        redoc_url=None,
        description="A strict MES: equipment, material, routings, personnel, job orders, "
        "plant event ingest, genealogy, audit trail (ISA-95 names).",
    )
    app.state.settings = settings
    app.state.served = False
    app.state.engine = engine
    app.state.session_factory = factory
    app.state.write_session_factory = write_factory
    # Resolved credentials, kept while the database announces their changes (PostgreSQL;
    # in use once the lifespan's listener listens: see mes_core.persistence.auth_cache).
    app.state.credential_cache = None if is_sqlite(settings.database_url) else CredentialCache()
    app.state.login_throttle = LoginThrottle(
        account_free=settings.login_account_free_failures,
        client_free=settings.login_client_free_failures,
        max_backoff_s=settings.login_max_backoff_s,
        audit_per_hour=settings.login_failure_audit_per_hour,
    )
    app.state.plant_time_window = PlantTimeWindow(
        ahead=settings.plant_time_max_ahead, behind=settings.plant_time_max_behind
    )
    errors.install(app)
    for path in ROUTERS:
        router = load_router(path)
        _document_roles(router)
        app.include_router(router)

    health.install(app)
    docs.install(app)
    errors.declare_errors(app)

    app.add_middleware(RefuseNul)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # /metrics, and latency by route outermost so that body-limit refusals count (issue 8).
    install_observability(app, open_holds=open_holds_from(engine), access=[Depends(metrics_access)])
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (each worker reads the environment)."""
    app = create_app()
    app.state.served = True
    return app
