"""Every error becomes a JSON body ``{"rule", "message", "object"}`` with a 4xx status:
rule refusals 409, unknown ids 404, bad input 422, oversized bodies 413, auth 401/403."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mes_core.domain.errors import MesError, RuleViolation

log = logging.getLogger(__name__)


def _body(rule: str, message: str, obj: str | None, **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "message": message, "object": obj, **extra}


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


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

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: logged with its traceback, answered in the API's shape.
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(
            _body("INTERNAL", f"internal error ({type(exc).__name__}); see the server log", None),
            status_code=500,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        rule = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "TOO_LARGE"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        return JSONResponse(_body(rule, str(exc.detail), None), status_code=exc.status_code)
