"""The scenario run's equipment link over real OPC UA (PRODUCT.md issues 5 and 6).

twin engine -> :class:`~twin.opcua.server.OpcUaPublisher` -> twin OPC UA server (asyncio
loop in a thread of its own, as ``twin.opcua.runtime`` does) -> :class:`TcpProxy` (the
fault proxy) -> ``mestwin connect`` (the MES's OPC UA connector, a child process in its own
process group: twin/ never imports ``mes_core.connectors``) -> MES batch ingest.

The runner owns the engine's clock and runs it much faster than real time, so the link
sits between the engine and the publisher and *holds* the engine's observer calls until
the runner delivers them (``deliver_until``): that is how the runner's people get the
predecessor's good units into the MES before they start the next operation (enforcement
rule 1), exactly as with the direct collector. Held calls keep their simulated instant:
the OPC UA ``SourceTimestamp`` is the simulation's time.

Faults:

- OPC UA link drop: the proxy is cut (every connection aborted, new ones refused); server
  restart: the server is stopped and rebuilt on the same port with its retained values
  (``OpcUaPublisher.replace_servers``). Either way the engine's changes are held meanwhile,
  as a PLC's buffered tags, and published once the connector has subscribed again, so
  the server's monitored-item queues carry every intermediate value (no change is
  collapsed to its last value, no count is booked to the wrong job order).
- MES killed: the connector spools to its SQLite file and replays in order when the MES is
  back (idempotent on ``(source, sequence)``).

In-process checks: a process value is published only when the scenario's inspection plan
samples it (every N seconds or N units, while the machine runs), the same
:class:`~twin.scenario.link.Sampling` the direct collector applies, so the connector's
measurements are the checks the MES's SPC expects (ISA-95 Part 3 quality operations:
in-process test results), not every PLC scan. A process value not sampled yet reads
``BadWaitingForInitialData``, so the connector never measures the address space's
initial value.

"Delivered" means ingested by the MES, known exactly and without polling, in OPC UA's own
terms. The runner waits for it only where a person must see what the plant did: before an
operation is started (``deliver_until``: the predecessor's good units, the work unit's
state, any hold), before a job order the plant finished is completed
(``ingested_through``: its last units), at the end (``drain``) and, as flow control, once
``BACKLOG_LIMIT`` engine calls went out unconfirmed; not at every job order
a work unit takes or leaves (the OPC UA link used to wait there too: 128 of the reference
plant's 149 waits in 40 minutes of plant time). A wait (the connector's watermark):

1. every held call published and the publisher's queue written to the server;
2. the server names the connector's subscription and the sequence number of the
   notification message that carries (or carried) the last change written
   (``sent_through``);
3. ``GET /watermark?through=SUBSCRIPTION:SEQUENCE`` on the connector's local status
   endpoint (``mestwin connect --status``) answers once the MES has acknowledged every
   event made from the messages up to it, in its current session (a restarted server
   numbers its subscriptions afresh); meanwhile the connector collects each message as
   it arrives instead of every ``flush_interval``.

A completion rarely waits at all: the watermark also carries the latest source time among
the messages ingested, and the twin writes in time order, so everything before it is in;
asked without waiting (``_watermark_covers``), it mostly covers the finished job order's
last units already. The report notes how often and how long the runner waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncua import ua

from mes_core.client import MesClient
from plant_models.schema import PlantModel
from twin.opcua.server import OpcUaPublisher, PlantServer
from twin.scenario.connector_link import ConnectorLink
from twin.scenario.link import Sampling
from twin.scenario.mes_process import free_port
from twin.scenario.proxy import TcpProxy
from twin.scenario.sut import MesStartError
from twin.scenario.sut_mes_core import COLLECTOR_KEY

PUBLISHING_INTERVAL_MS = 25.0
"""The connector's OPC UA publishing interval on this link: the runner waits up to one for
the server to send what was written (the connector's default is 100 ms)."""


_data_value: Callable[..., ua.DataValue] = ua.DataValue  # accepts plain datetimes


class OpcUaLinkError(MesStartError):
    """The OPC UA link could not be set up (server, proxy or connector): like an MES
    that does not come up, ``mestwin run`` says the run could not start (exit 1)."""


async def _no_sample_yet(model: PlantModel, server: PlantServer, published: set[Any]) -> None:
    """Process values not sampled yet read as ``BadWaitingForInitialData`` at the plant's
    start: the connector measures no value the plant never took (the address space's
    initial value, stamped with the wall clock, would be a spurious check dated after
    every real one and hide them all)."""
    assert server.server is not None and server.nodes is not None
    status = ua.StatusCode(ua.UInt32(ua.StatusCodes.BadWaitingForInitialData))
    for wu in server.nodes.work_units.values():
        for nodeid in wu.process_values.values():
            if nodeid in published:
                continue
            await server.server.write_attribute_value(
                nodeid,
                _data_value(
                    Value=ua.Variant(),
                    StatusCode=status,
                    SourceTimestamp=model.plant.start,
                    ServerTimestamp=model.plant.start,
                ),
            )


class PlantServing:
    """The twin's OPC UA server, built and started on an event loop of its own thread in
    the background: ``mestwin run`` starts it while the MES starts (on a plant of hundreds
    of work units both take seconds). :class:`OpcUaLink` takes it over."""

    def __init__(self, model: PlantModel, port: int | None = None) -> None:
        self.model = model
        self.port = port or free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}"
        self.server: PlantServer | None = None
        self.adopted = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="twin-opcua", daemon=True)
        self.thread.start()
        self.built = asyncio.run_coroutine_threadsafe(self._build(), self.loop)

    async def _build(self) -> None:
        server = PlantServer(self.model, self.endpoint)
        await server.build()
        await _no_sample_yet(self.model, server, set())
        await server.start()
        self.server = server

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def close(self) -> None:
        """Stop the server and the loop, unless a link took them over (it stops them)."""
        if self.adopted or not self.loop.is_running():
            return
        with contextlib.suppress(Exception):
            self.built.result(60)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class OpcUaLink(ConnectorLink):
    """``EquipmentLink`` over the twin OPC UA server, the fault proxy and the connector."""

    name = "OPC UA (twin server -> fault proxy -> mestwin connect)"
    short_name = "OPC UA link"
    start_error = OpcUaLinkError

    def __init__(
        self,
        model: PlantModel,
        *,
        mes_url: str,
        api_key: str,
        workdir: Path,
        characteristics: dict[tuple[str, str], Sampling],
        clock: Callable[[], float],
        notes: list[str] | None = None,
        is_down: Callable[[], bool] = lambda: False,
        serving: PlantServing | None = None,
    ) -> None:
        super().__init__(
            model,
            mes_url=mes_url,
            api_key=api_key,
            workdir=workdir,
            characteristics=characteristics,
            clock=clock,
            notes=notes,
            is_down=is_down,
        )
        self._serving = serving
        self.port = serving.port if serving is not None else free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}"
        self._server: PlantServer | None = None
        self.publisher: OpcUaPublisher | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> OpcUaLink:
        """Serve the plant, put the proxy in front, start the connector; wait until it
        has subscribed. Raises :class:`OpcUaLinkError` naming what did not come up."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        serving = self._serving or PlantServing(self.model, self.port)
        serving.adopted = True  # its loop and server are the link's from now on
        self._loop, self._thread = serving.loop, serving.thread
        try:
            serving.built.result(timeout)
            self._server = serving.server
            self._run(self._start_publisher(), timeout)
        except Exception as exc:
            self.close()
            raise OpcUaLinkError(f"the twin OPC UA server did not start: {exc}") from exc
        self.proxy = TcpProxy("127.0.0.1", self.port).start()
        self._start_connector(
            [
                "--opcua",
                f"opc.tcp://127.0.0.1:{self.proxy.port}",
                "--publishing-interval",
                f"{PUBLISHING_INTERVAL_MS:g}",
            ],
            f"mestwin connect did not subscribe to {self.endpoint}",
            timeout,
        )
        return self

    async def _start_publisher(self) -> None:
        assert self._server is not None
        self.publisher = OpcUaPublisher([self._server], self.model.plant.start)
        self._pump = asyncio.ensure_future(self.publisher.run())

    async def _stop_twin(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 10)
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _server_down(self) -> None:
        assert self.publisher is not None and self._server is not None
        self.publisher.paused = True
        await self._server.stop()

    async def _server_up(self) -> None:
        assert self.publisher is not None and self._server is not None
        old = self._server
        new = PlantServer(self.model, old.endpoint, lines=old.lines, security=old.security)
        await new.build()
        await _no_sample_yet(self.model, new, set(self.publisher.writes))
        # Retained values go in before the server listens: the connector never reads zeros.
        await self.publisher.replace_servers([new])
        await new.start()
        self._server = new
        self.publisher.paused = False

    # -- faults (``ConnectorLink.inject``) -------------------------------------------------

    def _twin_server_down(self) -> None:
        self._run(self._server_down(), 30)

    def _twin_server_up(self) -> None:
        self._run(self._server_up(), 60)

    # -- delivery: the connector's watermark ----------------------------------------------

    def _settle_once(self, publisher: OpcUaPublisher, deadline: float) -> bool:
        while time.monotonic() < deadline:
            try:
                target = self._run(self._sent_so_far(deadline), 10)
            except TimeoutError:
                target = None
            if target is not None:
                sub, seq = target
                # At most a second at a time: a connector that lost its session
                # subscribes anew, and that subscription is the one to watch.
                wait = min(1.0, max(deadline - time.monotonic(), 0.0))
                waited = time.monotonic()
                s = self._watermark(f"through={sub}:{seq}", wait) if seq else self._status()
                self.flush_seconds += time.monotonic() - waited
                self._take(s)
                if s.get("connected") and (s.get("reached") or not seq):
                    self._dirty = False
                    w = s.get("watermark")
                    self._barrier_sub = (
                        (w.get("connects"), w.get("subscription")) if isinstance(w, dict) else None
                    )
                    return True
            if self.proc is not None and self.proc.poll() is not None:
                self.last_error = f"mestwin connect exited ({self.proc.returncode})"
                return False
            time.sleep(0.01)
        return False

    async def _sent_so_far(self, deadline: float) -> tuple[int, int] | None:
        """On the server's loop, once every change is written: ``sent_through``."""
        publisher, server = self.publisher, self._server
        while publisher is not None and (publisher.paused or publisher.pending()):
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.001)
        if server is None or server.server is None:
            return None
        return await sent_through(server.server)


def connector_subscription(server: Any) -> Any:
    """The newest client subscription of an asyncua ``Server``: the connector's current one
    (it is the twin server's only client; one a lost session left behind is older)."""
    subs = [
        sub
        for sub in server.iserver.subscription_service.subscriptions.values()
        if sub.pub_request_callback is not None  # a client's, not the server's own
    ]
    return max(subs, key=lambda sub: sub.data.SubscriptionId, default=None)


async def sent_through(server: Any) -> tuple[int, int] | None:
    """The connector's subscription on an asyncua ``Server`` and the sequence number of
    the notification message that carries (or carried) every change written so far: the
    next one when changes wait for the next publishing interval, else the last one sent
    (0: none ever had data). None: no client subscription. (Publishing at once instead
    would count a publishing cycle against the subscription's lifetime whenever the client
    has no publish request waiting.)"""
    sub = connector_subscription(server)
    if sub is None:
        return None
    return sub.data.SubscriptionId, sub._notification_seq - (0 if queued(sub) else 1)


def queued(sub: Any) -> bool:
    """Whether a server-side subscription holds notifications for its next message
    (asyncua keeps them in ``InternalSubscription``; a test pins the names)."""
    return bool(sub._triggered_datachanges or sub._triggered_events)


def collector_api_key(mes_url: str, admin_password: str) -> str:
    """An integration API key for the connector, made by the MES's admin; named like the
    bench's collector keys, so ``ingest_stats`` counts what the connector ingested."""
    with MesClient(mes_url).login("admin", admin_password) as admin:
        return admin.create_api_key(f"{COLLECTOR_KEY}opcua-{time.time_ns()}").api_key


def opcua_link_for(
    *,
    plant: PlantModel,
    mes_url: str,
    api_key: str,
    workdir: Path,
    state: Any,
    serving: PlantServing | None,
    sim: Any,
    characteristics: dict[tuple[str, str], Sampling],
) -> OpcUaLink:
    """The OPC UA link of a scenario run (``link: opcua``), started and registered as the
    engine's observer. ``state`` is the run's :class:`~twin.scenario.context.RunState`
    (notes; whether the MES is down)."""
    link = OpcUaLink(
        plant,
        mes_url=mes_url,
        api_key=api_key,
        workdir=workdir,
        characteristics=characteristics,
        clock=sim.now,
        notes=state.notes,
        is_down=lambda: bool(state.mes_down),
        serving=serving,
    ).start()
    sim.add_observer(link)
    sim.subscribe(link.on_ledger)
    state.notes.append(
        f"Equipment traffic went over OPC UA: the twin's server at {link.endpoint}, a fault "
        f"proxy, and the MES's connector (mestwin connect, log {link.log_path.name}); OPC UA "
        "faults cut the proxy or restart the server, the connector spools while the MES is "
        "down."
    )
    return link
