"""Every error becomes a JSON body ``{"rule", "message", "object"}`` with a 4xx status:
rule refusals 409, unknown ids 404, bad input 422, oversized bodies 413, auth 401/403."""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from mes_core.api.limits import NulInRequest, nul_detail, nul_message
from mes_core.domain.errors import Forbidden, MesError, NotAuthenticated, RuleViolation
from mes_core.schemas.common import ErrorBody

log = logging.getLogger(__name__)

#: PostgreSQL errors after which a retry of the whole request is the remedy.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})
#: PostgreSQL errors of a database that is down, restarting, full or out of reach
#: (class 08: connection exception; 57P01-03: shutdown, crash, cannot connect now;
#: 53300: too many connections).
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: The rule of a 503 for a database that cannot be reached (issue 21, item 8).
UNAVAILABLE = "DATABASE_UNAVAILABLE"
#: Seconds a client is told to wait before retrying after a 503.
RETRY_AFTER_S = 1


_DESCRIPTIONS = {
    400: "Bad request",
    401: "No credentials, or unknown, expired or revoked ones (WWW-Authenticate: Bearer)",
    403: "The credentials' roles do not admit this (the refusal is audited)",
    404: "Not found",
    409: "Refused by a rule (named in `rule`), or a clash with existing data",
    413: "Request body too large",
    422: "Invalid input: `message` and `detail` name each field and the problem",
    429: "Too many attempts: wait `Retry-After` seconds",
    503: "The database is busy or unreachable: nothing was written; retry after "
    "`Retry-After` seconds",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring ``codes`` with the error body."""
    return {
        code: {"model": ErrorBody, "description": _DESCRIPTIONS.get(code, "Error")}
        for code in codes
    }


#: What any endpoint may answer besides its success: a rule or state refusal (409), an
#: object named that does not exist (404), bad input (400, 422; NUL characters anywhere),
#: an oversized body (413), an unreachable database (503).
EVERY_ENDPOINT = (400, 404, 409, 413, 422, 503)
#: What the edges answer whatever the endpoint (body size, NUL characters, database).
EDGE_ONLY = (413, 422, 503)


#: How a client authenticates: a bearer token (``POST /api/v1/auth/token``) or an API key.
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_CREDENTIAL_PARAMETERS = {("header", "authorization"), ("header", "x-api-key")}


def _credentials_as_security(path: str, operation: dict[str, Any]) -> None:
    """Credentials are declared as security schemes, not as parameters of each endpoint
    (which is how the ``allow(...)`` dependency reads them)."""
    parameters = operation.get("parameters", [])
    kept = []
    for parameter in parameters:
        where, name = parameter.get("in"), str(parameter.get("name", "")).lower()
        if (where, name) in _CREDENTIAL_PARAMETERS or (
            where == "query" and name == "access_token" and not path.endswith("/events/stream")
        ):
            continue
        kept.append(parameter)
    if len(kept) != len(parameters) or "**Roles:** open" not in operation.get("description", ""):
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    if kept:
        operation["parameters"] = kept
    else:
        operation.pop("parameters", None)


def declare_errors(app: FastAPI) -> None:
    """Declare in the OpenAPI document every error each endpoint can answer, with the
    API's error body (issue 21, item 2: a client generated from the document must not
    meet an undeclared status or body). Endpoints with roles (their description names
    them, see ``app._document_roles``) add 401 and 403. Done on the document (FastAPI
    includes routers lazily), once, when it is first asked for."""
    make_document = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = make_document()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
        for path, item in document.get("paths", {}).items():
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                _credentials_as_security(path, operation)
                codes = EDGE_ONLY if path.startswith("/health") else EVERY_ENDPOINT
                if "**Roles:** open" not in operation.get("description", ""):
                    codes = (*codes, 401, 403)
                responses = operation["responses"]
                for code in sorted(
                    {*codes, *(int(c) for c in responses if c.startswith(("4", "5")))}
                ):
                    declared = responses.setdefault(
                        str(code), {"description": _DESCRIPTIONS.get(code, "Error")}
                    )
                    # FastAPI's own 422 body (HTTPValidationError) is not what we answer.
                    declared["content"] = error
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def is_unavailable(exc: DBAPIError) -> bool:
    """True if ``exc`` says the database is down or unreachable, not that a statement is
    wrong: a PostgreSQL connection failure (no SQLSTATE from psycopg, or class 08), a
    server shutting down, or a connection SQLAlchemy found broken."""
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None:
        return str(code).startswith("08") or code in UNAVAILABLE_SQLSTATES
    return type(exc.orig).__module__.startswith("psycopg") and isinstance(
        exc, OperationalError | InterfaceError
    )


def unavailable_response(why: str) -> JSONResponse:
    return JSONResponse(
        _body(UNAVAILABLE, f"{why}; nothing was written, retry", "database"),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _body(rule: str, message: str, obj: str | None, **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "message": message, "object": obj, **extra}


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _where(request: Request) -> str:
    """The request a 503 answered, for its log line: method and path."""
    return f"{request.method} {request.url.path}"


def _cause(exc: DBAPIError) -> str:
    """What a 503's log line names as its cause: the driver's exception class and
    SQLSTATE (``-`` where there is none: SQLite, a connection never made), and its
    message's first line (the rest, for a deadlock, names the processes and rows)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or "-"
    first, *details = str(orig).strip().splitlines() or [""]
    more = f" ({'; '.join(line.strip() for line in details[:4])})" if details else ""
    return f"{type(orig).__module__}.{type(orig).__name__} SQLSTATE {code}: {first}{more}"


def _internal_error(exc: Exception) -> JSONResponse:
    # A bug, not bad input: logged with its traceback, answered in the API's shape.
    log.error("unexpected error", exc_info=exc)
    return JSONResponse(
        _body("INTERNAL", f"internal error ({type(exc).__name__}); see the server log", None),
        status_code=500,
    )


def _judge_credentials(request: Request, admitted: frozenset[str]) -> MesError | None:
    """The refusal (401, or 403 audited) of the request's credentials, if any."""
    from mes_core.api.deps import authorize, presented_secret

    headers = request.headers
    try:
        secret = presented_secret(
            request,
            headers.get("authorization"),
            headers.get("x-api-key"),
            request.query_params.get("access_token"),
        )
        with request.app.state.write_session_factory() as session:
            authorize(request, session, admitted, secret)
    except (NotAuthenticated, Forbidden) as refused:
        return refused
    return None


async def _credentials_refusal(request: Request) -> MesError | None:
    """For a request refused before its endpoint ran (its input invalid), the refusal its
    credentials deserve first, if the endpoint admits only some roles."""
    from mes_core.api.deps import admitted_roles

    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    admitted = admitted_roles(route.dependant)
    if admitted is None:
        return None
    try:
        return await anyio.to_thread.run_sync(_judge_credentials, request, admitted)
    except DBAPIError as exc:
        if not is_unavailable(exc):
            raise
        return None  # the input's 422 stands; the next call meets the 503


def install(app: FastAPI) -> None:
    @app.exception_handler(MesError)
    async def mes_error(_: Request, exc: MesError) -> JSONResponse:
        code = exc.rule.value if isinstance(exc, RuleViolation) else exc.code
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return JSONResponse(
            _body(code, exc.message, exc.object_ref), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Credentials are judged before input (issue 21, item 11): a request without
        # valid credentials learns nothing of the input rules of what it may not call.
        refusal = await _credentials_refusal(request)
        if refusal is not None:
            return await mes_error(request, refusal)
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

    @app.exception_handler(PoolTimeout)
    async def pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning(
            "503 %s: no database connection free in time (%s): %s",
            _where(request),
            type(exc).__name__,
            exc,
        )
        return unavailable_response("no database connection was free in time")

    @app.exception_handler(DBAPIError)
    async def contention(request: Request, exc: DBAPIError) -> JSONResponse:
        # A database that is down or out of reach: 503, quickly (bounded waits, see
        # make_engine); the pool replaces the broken connections when it is back.
        if is_unavailable(exc):
            log.warning("503 %s: database unavailable: %s", _where(request), _cause(exc))
            return unavailable_response("the database is unreachable")
        if not isinstance(exc, OperationalError):
            return _internal_error(exc)
        # Deadlock victim, serialization failure, lock timeout, SQLite busy: the
        # transaction rolled back whole; the client may simply retry.
        code = getattr(exc.orig, "sqlstate", None)
        if code in TRANSIENT_SQLSTATES or "database is locked" in str(exc.orig):
            log.warning("503 %s: transient database contention: %s", _where(request), _cause(exc))
            return JSONResponse(
                _body("RETRY", "the database was busy; nothing was written, retry", None),
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return _internal_error(exc)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, NulInRequest):
            return JSONResponse(
                _body("VALIDATION", nul_message(exc.where), None, detail=nul_detail(exc.where)),
                status_code=422,
            )
        rule = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "TOO_LARGE"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        return JSONResponse(_body(rule, str(exc.detail), None), status_code=exc.status_code)
