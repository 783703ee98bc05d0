"""ASGI middleware that times every request by route and watches the batch ingest.

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which buffers responses and
breaks server-sent event streams). The route label is the matched route's template, read
from ``scope["route"]`` after the router has run; requests that match no route are labelled
``<unmatched>`` so that scanners probing random paths cannot blow up the label set.

For ``POST`` to the ingest path the middleware tees the request body and reads the (small)
response, so that ingest rate, duplicates and lag are counted without touching the ingest
code: the lag is taken from the last event's ``timestamp`` in the body (collectors post in
arrival order, so it is the newest), found by scanning back from the end rather than
parsing thousands of events a second time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

from mes_core.observability.metrics import (
    COLLECTOR_HEADER,
    SPOOL_DEPTH_HEADER,
    record_ingest,
    record_request,
    record_spool_depth,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

INGEST_PATH = "/api/v1/plant-events/batch"
UNMATCHED_ROUTE = "<unmatched>"

_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"([^"]{10,40})"')


def newest_event_timestamp(body: bytes) -> datetime | None:
    """The ``timestamp`` of the last event in a JSON ingest body, or None if there is none
    or it is not a timezone-aware ISO 8601 time (the ingest itself refuses such bodies)."""
    at = body.rfind(b'"timestamp"')
    if at < 0:
        return None
    match = _TIMESTAMP.match(body, at)
    if match is None:
        return None
    try:
        stamp = datetime.fromisoformat(match.group(1).decode("ascii").replace("Z", "+00:00"))
    except (ValueError, UnicodeDecodeError):
        return None
    return stamp if stamp.tzinfo is not None else None


class MetricsMiddleware:
    """Time every HTTP request by route; count ingest batches, events, lag and spool depth."""

    def __init__(self, app: ASGIApp, *, ingest_path: str = INGEST_PATH) -> None:
        self.app = app
        self.ingest_path = ingest_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        ingest = scope["method"] == "POST" and scope["path"] == self.ingest_path
        request_body: list[bytes] = []
        response_body: list[bytes] = []

        async def receive_teed() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.append(message.get("body", b""))
            return message

        async def send_watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif ingest and message["type"] == "http.response.body":
                response_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_teed if ingest else receive, send_watched)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            record_request(scope["method"], route, status, time.perf_counter() - started)
            if ingest and 200 <= status < 300:
                self._observe_ingest(scope, b"".join(request_body), b"".join(response_body))

    @staticmethod
    def _observe_ingest(scope: Scope, request: bytes, response: bytes) -> None:
        try:
            result = json.loads(response)
            accepted = int(result["accepted"])
            duplicates = int(result["duplicates"])
        except (ValueError, KeyError, TypeError):
            # The ingest answered 2xx with something that is not an IngestResult: the
            # contract changed under us. Count the batch, leave events uncounted.
            accepted = duplicates = 0
        newest = newest_event_timestamp(request)
        lag = None if newest is None else time.time() - newest.timestamp()
        record_ingest(accepted=accepted, duplicates=duplicates, lag_seconds=lag)
        headers = dict(scope.get("headers") or ())
        depth = headers.get(SPOOL_DEPTH_HEADER.encode("latin-1"))
        if depth is not None and depth.isdigit():
            collector = headers.get(COLLECTOR_HEADER.encode("latin-1"), b"") or b"default"
            record_spool_depth(collector.decode("latin-1")[:100], int(depth))
