"""Tryton's JSON-RPC, as any client speaks it: ``POST /<database>/rpc/`` with
``{"id", "method", "params"}``; ``common.db.login`` gives a session, sent back as
``Authorization: Session base64(login:user_id:session)``; model methods are
``model.<model>.<method>`` with the context as last parameter.

Tryton encodes what JSON lacks as ``{"__class__": ...}`` objects (datetime, date,
timedelta, Decimal, bytes); :func:`encode` and :func:`decode` translate both ways. Its
refusals come back as ``{"error": ["UserError", [message, description, domain]]}`` and
become :class:`TrytonUserError`; a warning (which the user may click through) is
:class:`TrytonWarning`.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import time
from decimal import Decimal
from typing import Any

import httpx


class TrytonUnavailable(RuntimeError):
    """Tryton could not be reached or answered outside the protocol (HTTP 5xx...)."""


class TrytonError(RuntimeError):
    """Tryton answered an RPC with an error."""

    def __init__(self, kind: str, message: str, description: str = "") -> None:
        super().__init__(f"{kind}: {message}" + (f" ({description})" if description else ""))
        self.kind = kind
        self.message = message
        self.description = description


class TrytonUserError(TrytonError):
    """Tryton refused the action (``UserError``: a rule, a domain or an access check)."""


class TrytonWarning(TrytonError):
    """Tryton asks the user to confirm (``UserWarning``): ``name`` is the warning's key."""

    def __init__(self, name: str, message: str, description: str = "") -> None:
        super().__init__("UserWarning", message, description)
        self.name = name


def encode(value: Any) -> Any:
    """Python values -> Tryton's JSON (datetime before date: it is a date too)."""
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """Tryton's JSON -> Python values."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__class__")
    if kind == "datetime":
        return dt.datetime(
            value["year"],
            value["month"],
            value["day"],
            value["hour"],
            value["minute"],
            value["second"],
            value.get("microsecond", 0),
        )
    if kind == "date":
        return dt.date(value["year"], value["month"], value["day"])
    if kind == "timedelta":
        return dt.timedelta(seconds=value["seconds"])
    if kind == "Decimal":
        return Decimal(value["decimal"])
    if kind == "bytes":
        return base64.b64decode(value["base64"])
    return {k: decode(v) for k, v in value.items()}


class TrytonRpc:
    """A logged-in JSON-RPC session on one Tryton database."""

    def __init__(self, url: str, database: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self._http = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)
        self._auth: str | None = None
        self.context: dict[str, Any] = {}
        self.latencies_ms: list[float] = []

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, method: str, params: list[Any]) -> Any:
        body = {"id": next(self._ids), "method": method, "params": encode(params)}
        headers = {"Content-Type": "application/json"}
        if self._auth:
            headers["Authorization"] = self._auth
        began = time.perf_counter()
        try:
            response = self._http.post(
                f"{self.url}{path}", content=json.dumps(body), headers=headers
            )
        except httpx.HTTPError as exc:
            raise TrytonUnavailable(f"Tryton at {self.url}: {exc}") from exc
        finally:
            self.latencies_ms.append((time.perf_counter() - began) * 1000.0)
        if response.status_code >= 400:
            raise TrytonUnavailable(
                f"Tryton answered {method} with HTTP {response.status_code}: {response.text[:300]}"
            )
        data = response.json()
        if data.get("error") is not None:
            raise _error(data["error"])
        return decode(data.get("result"))

    def server_version(self) -> str:
        return str(self._post("/rpc/", "common.server.version", []))

    def login(self, user: str, password: str) -> None:
        result = self._post(
            f"/{self.database}/rpc/", "common.db.login", [user, {"password": password}, "en"]
        )
        user_id, session = result[0], result[1]
        token = base64.b64encode(f"{user}:{user_id}:{session}".encode()).decode()
        self._auth = f"Session {token}"
        self.user_id = int(user_id)

    def call(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        """``model.<model>.<method>(*args, context)``; the session context is merged in."""
        ctx = {**self.context, **(context or {})}
        return self._post(f"/{self.database}/rpc/", f"model.{model}.{method}", [*args, ctx])

    # -- conveniences over the ORM's public methods ------------------------------------

    def search(
        self, model: str, domain: list[Any], *, limit: int | None = None, order: Any = None
    ) -> list[int]:
        return [int(i) for i in self.call(model, "search", domain, 0, limit, order)]

    def read(self, model: str, ids: list[int], fields: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        return list(self.call(model, "read", ids, fields))

    def search_read(
        self, model: str, domain: list[Any], fields: list[str], *, order: Any = None
    ) -> list[dict[str, Any]]:
        return list(self.call(model, "search_read", domain, 0, None, order, fields))

    def create(self, model: str, values: list[dict[str, Any]]) -> list[int]:
        return [int(i) for i in self.call(model, "create", values)]

    def write(self, model: str, ids: list[int], values: dict[str, Any]) -> None:
        if ids:
            self.call(model, "write", ids, values)


def _error(error: Any) -> TrytonError:
    if isinstance(error, list) and len(error) == 2 and isinstance(error[1], list):
        kind, args = error[0], error[1]
        if kind == "UserError":
            return TrytonUserError(kind, str(args[0]), str(args[1] if len(args) > 1 else ""))
        if kind == "UserWarning":
            return TrytonWarning(str(args[0]), str(args[1]), str(args[2] if len(args) > 2 else ""))
        return TrytonError(str(kind), " ".join(str(a) for a in args))
    return TrytonError("Error", str(error))
