"""A pure ASGI middleware refusing request bodies over ``max_body_bytes`` with 413,
whether announced by Content-Length or streamed in chunks."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "rule": "TOO_LARGE",
                "message": f"request body larger than {self.max_bytes} bytes",
                "object": None,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self.max_bytes:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)


# ------------------------------------------------------------------ NUL characters
#
# PostgreSQL text cannot hold NUL (U+0000): a NUL in any text the API stores or looks up
# (a login name, a code, an event's source) failed in the driver, a 500 (issue 21, item
# 9). No field of the MES has a use for it, so it is refused at the edge, for every
# endpoint at once, naming where it was: 422 with the API's VALIDATION body.

_NUL_ESCAPE = b"\\u0000"
_CARRY = len(_NUL_ESCAPE) - 1


class NulInRequest(HTTPException):
    """A NUL in the request body, raised from the body's ``receive``: an HTTPException,
    so that FastAPI's body reading passes it on (it turns any other error into a 400)
    and the app's handler answers it (``mes_core.api.errors``)."""

    def __init__(self, where: list[str]) -> None:
        super().__init__(422, nul_message(where))
        self.where = where


def nul_message(where: list[str]) -> str:
    return "; ".join(f"{w}: NUL characters are not allowed" for w in where)


def nul_detail(where: list[str]) -> list[dict[str, str]]:
    return [{"loc": w, "msg": "NUL characters are not allowed", "type": "nul"} for w in where]


def _nul_paths(value: object, path: tuple[str, ...] = ("body",)) -> list[str]:
    if isinstance(value, str):
        return [".".join(path)] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if "\x00" in key:
                found.append(".".join(path) + " (a key)")
            found += _nul_paths(item, (*path, str(key)))
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, (*path, str(i)))]
    return []


def _nul_in_body(body: bytes) -> list[str]:
    """Where ``body`` holds a NUL: JSON paths, or ``body`` itself; [] for a false alarm
    (a JSON string holding the six characters ``\\u0000``)."""
    if b"\x00" in body:
        return ["body"]
    try:
        return _nul_paths(json.loads(body))
    except ValueError:
        return []  # not JSON: the endpoint's own validation answers it


def _nul_in_query(query: bytes) -> list[str]:
    from urllib.parse import parse_qsl

    where = []
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            where.append(f"query.{name.replace(chr(0), '')}")
    return where


class RefuseNul:
    """Refuse (422) a request with a NUL character in its path, query or body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def _refuse(self, send: Send, where: list[str]) -> None:
        body = json.dumps(
            {
                "rule": "VALIDATION",
                "message": nul_message(where),
                "object": None,
                "detail": nul_detail(where),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = ["path"] if "\x00" in scope.get("path", "") else []
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            where += _nul_in_query(query)
        if where:
            await self._refuse(send, where)
            return
        chunks: list[bytes] = []
        tail = b""
        started = False

        async def checked_receive() -> Message:
            nonlocal tail
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            chunks.append(chunk)
            window = tail + chunk
            tail = window[-_CARRY:]
            if _NUL_ESCAPE not in window and b"\x00" not in window:
                return message
            # Suspect: read the rest, judge the whole body, and hand the rest over in one.
            rest = [chunk]
            more = message.get("more_body", False)
            while more:
                following = await receive()
                if following["type"] != "http.request":
                    break
                rest.append(following.get("body", b""))
                chunks.append(rest[-1])
                more = following.get("more_body", False)
            found = _nul_in_body(b"".join(chunks))
            if found:
                raise NulInRequest(found)
            return {"type": "http.request", "body": b"".join(rest), "more_body": False}

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, checked_receive, tracking_send)
        except NulInRequest as exc:
            if not started:
                await self._refuse(send, exc.where)
