"""Every error becomes a JSON body ``{"rule", "message", "object"}`` with a 4xx status:
rule refusals 409, unknown ids 404, bad input 422, oversized bodies 413, auth 401/403."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mes_core.domain.errors import MesError, RuleViolation

log = logging.getLogger(__name__)

#: PostgreSQL errors after which a retry of the whole request is the remedy.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})


def _body(rule: str, message: str, obj: str | None, **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "message": message, "object": obj, **extra}


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _internal_error(exc: Exception) -> JSONResponse:
    # A bug, not bad input: logged with its traceback, answered in the API's shape.
    log.error("unexpected error", exc_info=exc)
    return JSONResponse(
        _body("INTERNAL", f"internal error ({type(exc).__name__}); see the server log", None),
        status_code=500,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(MesError)
    async def mes_error(_: Request, exc: MesError) -> JSONResponse:
        code = exc.rule.value if isinstance(exc, RuleViolation) else exc.code
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            _body(code, exc.message, exc.object_ref), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        parts = []
        detail = []
        for err in errors[:20]:
            where = _loc(err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}")
            detail.append({"loc": where, "msg": err.get("msg"), "type": err.get("type")})
        message = "; ".join(parts) + (f" (and {len(errors) - 20} more)" if len(errors) > 20 else "")
        return JSONResponse(_body("VALIDATION", message, None, detail=detail), status_code=422)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        # A concurrent request took the same code between our check and our insert.
        log.info("integrity error: %s", exc.orig)
        return JSONResponse(
            _body("CONFLICT", "the change clashes with existing data (duplicate code?)", None),
            status_code=409,
        )

    @app.exception_handler(OperationalError)
    async def contention(_: Request, exc: OperationalError) -> JSONResponse:
        # Deadlock victim, serialization failure, lock timeout, SQLite busy: the
        # transaction rolled back whole; the client may simply retry.
        code = getattr(exc.orig, "sqlstate", None)
        if code in TRANSIENT_SQLSTATES or "database is locked" in str(exc.orig):
            log.warning("transient database contention: %s", exc.orig)
            return JSONResponse(
                _body("RETRY", "the database was busy; nothing was written, retry", None),
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return _internal_error(exc)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        rule = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "TOO_LARGE"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        return JSONResponse(_body(rule, str(exc.detail), None), status_code=exc.status_code)
