"""The Tryton adapter's equipment collector: an OPC UA gateway, since Tryton has none.

It subscribes to the twin's OPC UA server like any gateway would (asyncua over real TCP):
browses the ``WorkUnitType`` instances, subscribes every work unit's PackML counters, job
tags and state tags (queue size 0: the server's largest queue, so no intermediate value is
lost), and turns the notifications into plant events with the same pure rules the
reference connector uses (``mes_core.connectors.opcua.events.EventBuilder``: per work
unit by source timestamp, cumulative counters to deltas, cut where the job order changes).
Instead of posting them to an MES ingest endpoint, it books them into Tryton through
JSON-RPC (``book``), in its own thread and with its own session.

``booked_counters`` is what the runner asks to know that Tryton has caught up: per work
unit the cumulative ``(processed, defective)`` whose deltas Tryton has accepted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from asyncua import Client, ua

from mes_core.connectors.opcua.discovery import discover
from mes_core.connectors.opcua.events import EventBuilder, Notification
from mes_core.schemas.plant_events import PlantEvent

log = logging.getLogger(__name__)

RETRY_S = 0.5
"""Wall seconds between connection attempts."""

Book = Callable[[list[PlantEvent]], None]


class _Handler:
    """asyncua's subscription handler: only appends (the loop's task does the work)."""

    def __init__(self, sink: list[Notification]) -> None:
        self.sink = sink

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        dv = data.monitored_item.Value
        self.sink.append((node.nodeid, value, dv.SourceTimestamp or dv.ServerTimestamp))

    def status_change_notification(self, status: Any) -> None:
        log.warning("OPC UA subscription status: %s", status)


class OpcUaCollector:
    """Subscribe to ``endpoint`` and ``book`` the plant events it makes, until ``close``."""

    def __init__(self, endpoint: str, book: Book, *, period_ms: int = 25) -> None:
        self.endpoint = endpoint
        self.book = book
        self.period_ms = period_ms
        self.builder = EventBuilder(f"tryton-gateway:{endpoint}")
        self._incoming: list[Notification] = []
        self._booked: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self.errors: list[str] = []
        """Batches Tryton did not take (each names why)."""
        self.connection_errors = 0
        self.last_connection_error = ""
        self.subscriptions = 0
        self.batches = 0
        self.events = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tryton-opcua-gateway", daemon=True
        )
        self._stop = asyncio.Event()
        self._task: concurrent.futures.Future[None] | None = None
        self._connected = threading.Event()

    def start(self, timeout: float = 0.0) -> OpcUaCollector:
        """Start collecting; with ``timeout`` > 0 wait that long for the first
        subscription (a gateway otherwise keeps trying: the server may come up later)."""
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
        if timeout > 0 and not self._connected.wait(timeout):
            raise RuntimeError(
                f"OPC UA gateway: no subscription on {self.endpoint} in {timeout:g} s"
                + (f" ({self.errors[-1]})" if self.errors else "")
            )
        return self

    async def _run(self) -> None:
        """Connect, subscribe and collect; on a lost connection, again (the current
        values a new subscription delivers resync the cumulative counters)."""
        self._stop = asyncio.Event()
        while not self._stop.is_set():
            try:
                await self._session()
            except Exception as exc:  # noqa: BLE001 - any failure of a session: a gateway retries
                self.connection_errors += 1
                self.last_connection_error = f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RETRY_S)
        await self._collect()

    async def _session(self) -> None:
        client = Client(self.endpoint, timeout=10)
        await client.connect()
        try:
            bindings = await discover(client)
            nodes = self.builder.bind(bindings)
            sub = await client.create_subscription(self.period_ms, _Handler(self._incoming))
            await sub.subscribe_data_change(
                [client.get_node(n) for n in nodes],
                queuesize=0,
                sampling_interval=ua.Double(0.0),
            )
            self.subscriptions += 1
            self._connected.set()
            while not self._stop.is_set():
                await self._collect()
                await client.check_connection()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.period_ms / 1000.0)
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def _collect(self) -> None:
        if not self._incoming:
            return
        items = self._incoming[:]
        del self._incoming[: len(items)]
        outcome = self.builder.process(items)
        counters = {
            code: (image.counters.processed or 0, image.counters.defective or 0)
            for code, image in self.builder.images.items()
        }
        if outcome.events:
            try:
                await asyncio.to_thread(self.book, outcome.events)
            except Exception as exc:  # reported (errors), and the run names it
                self.errors.append(f"booking {len(outcome.events)} events into Tryton: {exc}")
                log.exception("booking into Tryton failed")
                return
            self.batches += 1
            self.events += len(outcome.events)
        with self._lock:
            self._booked = counters

    def booked_counters(self) -> dict[str, tuple[int, int]]:
        """Per work unit, the cumulative (processed, defective) booked into Tryton."""
        with self._lock:
            return dict(self._booked)

    def wait_booked(self, expected: dict[str, tuple[int, int]], timeout: float) -> bool:
        """Block until every work unit's booked counters reach ``expected``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            booked = self.booked_counters()
            if all(booked.get(wu, (0, 0)) >= want for wu, want in expected.items()):
                return True
            if self._task is not None and self._task.done():
                return False
            time.sleep(0.01)
        return False

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._stop.set)
            with contextlib.suppress(Exception):
                self._task.result(15)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
