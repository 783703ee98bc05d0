"""``/health``: liveness and readiness, told apart (issue 21, item 8).

- ``GET /health/live``: the process answers (no database): restart it if this fails.
- ``GET /health`` (and ``/health/ready``): the MES can serve requests, which needs its
  database: a ``SELECT 1`` within :data:`READY_WITHIN_S`, else 503 with ``Retry-After``.
  Take it out of the load balancer while this fails; it recovers by itself when the
  database is back (the pool replaces broken connections).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mes_core.api.errors import RETRY_AFTER_S, UNAVAILABLE, error_responses

log = logging.getLogger(__name__)

#: The readiness check waits at most this long for the database.
READY_WITHIN_S = 3.0


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def database_ready(engine: Engine) -> str | None:
    """None if the database answers within :data:`READY_WITHIN_S`, else why not."""
    try:
        with anyio.fail_after(READY_WITHIN_S):
            # Abandoned on timeout: a hung connect must not hold the answer.
            await anyio.to_thread.run_sync(_ping, engine, abandon_on_cancel=True)
    except TimeoutError:
        log.warning("readiness: the database did not answer within %g s", READY_WITHIN_S)
        return f"the database did not answer within {READY_WITHIN_S:g} s"
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        log.warning("readiness: database unreachable: %s", cause)
        return f"the database is unreachable ({type(cause).__name__})"
    return None


def install(app: FastAPI) -> None:
    unavailable = error_responses(503)

    @app.get("/health/live", tags=["health"], summary="Liveness")
    async def live() -> dict[str, str]:
        """The process answers (touches nothing else). **Roles:** open."""
        return {"status": "ok"}

    async def ready(request: Request) -> Any:
        why = await database_ready(request.app.state.engine)
        if why is None:
            return {"status": "ok"}
        return JSONResponse(
            {"rule": UNAVAILABLE, "message": why, "object": "database"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for path in ("/health", "/health/ready"):
        app.add_api_route(
            path,
            ready,
            methods=["GET"],
            tags=["health"],
            summary="Readiness",
            description="The MES can serve: its database answers. 503 with Retry-After "
            "while it does not. **Roles:** open.",
            response_model=dict[str, str],
            responses=unavailable,
        )
