"""``link: opcua-external``: the twin serves OPC UA and the MES under test subscribes with
its own collector; the bench starts no connector (PRODUCT.md: an MES that collects for
itself, as on a plant floor).

The link holds the engine's observer calls and publishes them in order exactly as
:class:`~twin.scenario.opcua_link.OpcUaLink` does (the people still get the predecessor's
good units in before a start), over a fault proxy (``opcua_drop`` cuts it,
``opcua_server_restart`` rebuilds the server). "Delivered" cannot be asked of a collector
the bench does not run, so it is asked of the MES through its adapter: every value the
server published is written, then the runner waits, bounded, until the MES has recorded
the cumulative counts published per work unit (``CatchUp.caught_up``, or failing that its
``records``). When it does not catch up in time, the link says what it expected and
what the MES had.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from twin.scenario.connector_link import BARRIER_TIMEOUT_S
from twin.scenario.opcua_link import (
    OpcUaLink,
    OpcUaLinkError,
    PlantServing,
    connector_subscription,
)
from twin.scenario.proxy import TcpProxy
from twin.scenario.sut import UnitProgress

CaughtUp = Callable[[float, dict[str, UnitProgress]], bool]
POLL_S = 0.1
"""How often (wall seconds) the MES is asked whether it caught up."""
SETTLED_S = 0.5
"""The collector's monitored items count as created once their number held this long."""


class ExternalOpcUaLink(OpcUaLink):
    """``EquipmentLink`` over the twin's OPC UA server to the MES's own collector."""

    name = "OPC UA (twin server -> fault proxy -> the MES's own collector)"

    def __init__(
        self,
        *args: Any,
        proxy: TcpProxy,
        caught_up: CaughtUp,
        catch_up_timeout: float = BARRIER_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, mes_url="", api_key="", **kwargs)
        self.proxy = proxy
        self.caught_up = caught_up
        self.catch_up_timeout = catch_up_timeout
        self.published: dict[str, UnitProgress] = {}
        """Cumulative counts per work unit the server has been given so far."""
        self.endpoint = f"opc.tcp://127.0.0.1:{proxy.port}"

    def start(self, timeout: float = 60.0) -> ExternalOpcUaLink:
        """Serve the plant behind the proxy; the MES's collector subscribes by itself."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        serving = self._serving or PlantServing(self.model, self.port)
        serving.adopted = True
        self._loop, self._thread = serving.loop, serving.thread
        try:
            serving.built.result(timeout)
            self._server = serving.server
            self._run(self._start_publisher(), timeout)
        except Exception as exc:
            self.close()
            raise OpcUaLinkError(f"the twin OPC UA server did not start: {exc}") from exc
        # Nothing is published before the MES's collector watches: a change written
        # before its monitored items exist would reach it collapsed into its first read.
        if not self._run(self._collector_subscribed(time.monotonic() + timeout), timeout + 5):
            self.close()
            raise OpcUaLinkError(
                f"the MES's collector did not subscribe to {self.endpoint} within "
                f"{timeout:g} s (with link: opcua-external the MES collects for itself)"
            )
        return self

    async def _collector_subscribed(self, deadline: float) -> bool:
        """On the server's loop: a client subscription with monitored items, unchanged
        for half a second (its items are created in one or a few calls)."""
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            server = self._server
            sub = connector_subscription(server.server) if server and server.server else None
            items = len(sub.monitored_item_srv._monitored_items) if sub is not None else 0
            if items != seen:
                seen, since = items, time.monotonic()
            elif items and time.monotonic() - since >= SETTLED_S:
                return True
            await asyncio.sleep(0.05)
        return False

    def _status(self) -> dict[str, Any]:
        return {}  # no connector of the bench's to ask

    def _watermark(self, query: str, wait: float) -> dict[str, Any]:
        return {}  # nor its watermark: catching up tells

    def _wait_connected(self, faults: int, timeout: float) -> bool:
        return True  # the MES's collector reconnects by itself; catching up tells

    def _publish(self, n: int) -> None:
        for h in list(self._held)[:n]:
            if h.method == "on_counters":
                _t, wu, processed, defective = h.args[:4]
                self.published[wu] = UnitProgress(good=processed - defective, scrap=defective)
        self.stats.sent += n
        self.stats.produced += n
        super()._publish(n)

    def pending(self) -> int:
        queued = self.publisher.pending() if self.publisher is not None else 0
        return len(self._held) + queued

    def drain(self, timeout: float) -> bool:
        notes, self.notes = self.notes, None  # the parent's note speaks of its connector
        try:
            done = super().drain(timeout)
        finally:
            self.notes = notes
        if notes is not None:
            notes.append(
                f"OPC UA link to the MES's own collector: the runner waited {self.settles} "
                f"times for the MES to catch up (starts, completions, the end), "
                f"{self.settle_seconds:.1f} s of wall time in all."
            )
            if self.last_error and self.last_error not in notes:
                notes.append(self.last_error)
        return done

    def _settle_once(self, publisher: Any, deadline: float) -> bool:
        deadline = min(deadline, time.monotonic() + self.catch_up_timeout)
        until = self.clock()
        expected = dict(self.published)
        while time.monotonic() < deadline:
            published = not publisher.paused and not publisher.pending()
            if published and self.caught_up(until, expected):
                self._dirty = False
                self.stats.accepted = self.stats.sent
                return True
            time.sleep(POLL_S)
        self.last_error = (
            f"the MES did not catch up within {self.catch_up_timeout:g} s with what the twin "
            f"published up to {until:.0f} s (its own collector subscribes to "
            f"{self.endpoint}): expected per work unit "
            + ", ".join(f"{wu} good {p.good} scrap {p.scrap}" for wu, p in sorted(expected.items()))
        )
        if self.notes is not None and self.last_error not in self.notes:
            self.notes.append(self.last_error)
        return False
