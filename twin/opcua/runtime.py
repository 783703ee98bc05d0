"""A served plant: the engine in its own thread, the OPC UA servers in the asyncio loop.

The SimPy engine is synchronous (a paced run sleeps between events), so it runs in a
thread of its own and the OPC UA servers keep the event loop. The two meet in two places:

- the engine calls the ``OpcUaPublisher`` (a ``PlantObserver``) inline; it only appends to
  a deque, which the pump task drains in the loop;
- OPC UA method calls (``StoreAndStart``, ``Stop``, ``Reset``) are handed to the engine
  with ``Engine.submit`` (applied between events, at most ~0.1 s of wall time later in a
  paced run) and the caller awaits the outcome, so a refusal from the engine reaches the
  OPC UA client as a status code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from fastpaths import fewer_collections
from plant_models.schema import PlantModel
from twin.opcua.security import SecurityConfig
from twin.opcua.server import OpcUaPublisher, PlantServer, endpoints_per_line

log = logging.getLogger(__name__)

ENGINE_CHUNK_S = 0.5
"""Simulated seconds per ``run_until`` call in an unpaced run (commands apply in between)."""
CALL_TIMEOUT_S = 10.0


class EngineControl:
    """``PlantControl`` that runs each command in the engine's thread and waits for it.

    Used by ``PlantServer`` through ``call``: it returns when the engine has applied the
    command, raising what the engine raised (``ControlError`` is a ``ValueError``).
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    async def call(self, command: Callable[[], None]) -> None:
        done: Future[None] = Future()

        def run() -> None:
            try:
                command()
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
                done.set_exception(exc)
            else:
                done.set_result(None)

        self.engine.submit(run)
        await asyncio.wait_for(asyncio.wrap_future(done), CALL_TIMEOUT_S)

    def store_and_start(self, work_unit: str, job_order: str, product: str, quantity: int) -> None:
        self.engine.store_and_start(work_unit, job_order, product, quantity)

    def stop(self, work_unit: str) -> None:
        self.engine.stop(work_unit)

    def reset(self, work_unit: str) -> None:
        self.engine.reset(work_unit)


@dataclass
class ServeOptions:
    """How to serve a plant (``mestwin twin serve``)."""

    endpoint: str = "opc.tcp://127.0.0.1:4840"
    speed: float | None = 1.0
    per_line: bool = False
    security: SecurityConfig | None = None
    seed: int = 0
    auto_dispatch: bool = True
    strict_pace: bool = False
    sparkplug: str | None = None
    """An MQTT broker (``mqtt://HOST:PORT``) to publish the plant to as Sparkplug B edge
    nodes too (``twin.sparkplug``), beside the OPC UA servers."""
    sparkplug_group: str = "mestwin"
    """The Sparkplug group id of the edge nodes (one per line)."""
    sparkplug_primary_host: str | None = None
    """A primary host application id: the edge nodes birth only while it is online."""


class ServedPlant:
    """Engine + OPC UA server(s) + publisher, started and stopped together.

    ``async with ServedPlant(model, options) as plant:`` builds the servers, starts the
    pump and the engine thread. With ``autorun`` False the engine waits: ``start_engine()``
    starts its thread later (benchmarks subscribe first), or ``run_until(t)`` drives it
    from the caller's thread. ``halt()`` stops the engine and writes out what it queued;
    ``restart_servers()`` is the OPC UA server fault. ``engine_factory`` replaces the SimPy
    engine (anything with ``PlantControl``, ``add_observer``, ``run_until``, ``now``).
    """

    def __init__(
        self,
        model: PlantModel,
        options: ServeOptions | None = None,
        *,
        autorun: bool = True,
        engine_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.model = model
        self.options = options or ServeOptions()
        self.autorun = autorun
        self._engine_factory = engine_factory
        self.engine: Any = None
        self.servers: list[PlantServer] = []
        self.publisher: OpcUaPublisher | None = None
        self._pump: asyncio.Task[None] | None = None
        self.sparkplug: Any = None
        """The ``SparkplugPublisher`` when ``options.sparkplug`` names a broker."""
        self._sparkplug_pump: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self.error: BaseException | None = None
        self._gc = contextlib.ExitStack()

    @property
    def endpoints(self) -> list[str]:
        return [s.endpoint for s in self.servers]

    def _make_engine(self) -> Any:
        if self._engine_factory is not None:
            return self._engine_factory(self.model, self.options)
        from twin.engine import Engine

        return Engine(
            self.model,
            self.options.seed,
            speed=self.options.speed,
            strict=self.options.strict_pace,
            auto_dispatch=self.options.auto_dispatch,
        )

    async def start(self) -> None:
        self._gc.enter_context(fewer_collections())
        opts = self.options
        self.engine = self._make_engine()
        control = EngineControl(self.engine)
        lines = [line.code for line in self.model.lines]
        if opts.per_line:
            groups: Sequence[tuple[str, list[str]]] = list(
                zip(endpoints_per_line(opts.endpoint, lines), [[c] for c in lines], strict=True)
            )
        else:
            groups = [(opts.endpoint, lines)]
        for endpoint, group in groups:
            server = PlantServer(
                self.model,
                endpoint,
                lines=group,
                control=control,
                submit=control.call,
                security=opts.security,
            )
            await server.build()
            self.servers.append(server)
        for server in self.servers:
            await server.start()
        self.publisher = OpcUaPublisher(self.servers, self.model.plant.start)
        # The engine sends the current state of every work unit on registering.
        self.engine.add_observer(self.publisher)
        await self.publisher.flush()
        self._pump = asyncio.create_task(self.publisher.run(), name="opcua-pump")
        if opts.sparkplug:
            from twin.sparkplug.edge import SparkplugPublisher

            self.sparkplug = SparkplugPublisher(
                self.model,
                opts.sparkplug,
                opts.sparkplug_group,
                start=self.model.plant.start,
                primary_host=opts.sparkplug_primary_host,
                control=control,
                submit=control.call,
            )
            self.engine.add_observer(self.sparkplug)
            await self.sparkplug.start()
            self._sparkplug_pump = asyncio.create_task(self.sparkplug.run(), name="spb-pump")
        if self.autorun:
            self.start_engine()

    def start_engine(self) -> None:
        """Start the engine thread (``start`` does it unless ``autorun`` is False)."""
        if self._thread is not None:
            raise RuntimeError("the engine thread is already running")
        self._thread = threading.Thread(target=self._engine_loop, name="twin-engine", daemon=True)
        self._thread.start()

    async def restart_servers(self, downtime: float = 1.0) -> None:
        """Stop the OPC UA servers, wait ``downtime`` seconds, start them again (the
        engine keeps running; its changes queue up meanwhile). A fault to ride out."""
        assert self.publisher is not None
        self.publisher.paused = True
        old = self.servers
        for server in old:
            await server.stop()
        log.warning("OPC UA servers stopped for %.1f s (injected fault)", downtime)
        await asyncio.sleep(downtime)
        fresh = []
        for server in old:
            new = PlantServer(
                self.model,
                server.endpoint,
                lines=server.lines,
                control=server.control,
                submit=server.submit,
                security=server.security,
            )
            await new.build()
            fresh.append(new)
        # Retained values go in before the servers listen: a client never reads zeros.
        await self.publisher.replace_servers(fresh)
        for new in fresh:
            await new.start()
        self.servers = fresh
        self.publisher.paused = False

    def _engine_loop(self) -> None:
        engine = self.engine
        step = ENGINE_CHUNK_S if self.options.speed is None else 0.1 * self.options.speed
        try:
            while not self._halt.is_set():
                engine.run_until(engine.now + step)
        except Exception as exc:
            log.exception("twin engine stopped on an error")
            self.error = exc

    async def halt(self) -> None:
        """Stop the engine (the servers keep serving) and write out what it queued."""
        self._halt.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)
        await self.drain()

    def run_until(self, t: float) -> None:
        """Advance simulated time to ``t`` from the caller's thread (no engine thread)."""
        if self._thread is not None:
            raise RuntimeError("the engine runs in its own thread (autorun); cannot drive it")
        self.engine.run_until(t)

    async def drain(self) -> None:
        """Wait until every queued change has been written to the servers."""
        assert self.publisher is not None
        await self.publisher.flush()
        if self.sparkplug is not None:
            self.sparkplug.flush()

    async def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        if self.publisher is not None:
            self.publisher.stop()
        if self._pump is not None:
            await self._pump
        if self.sparkplug is not None:
            self.sparkplug.stop()
            if self._sparkplug_pump is not None:
                await self._sparkplug_pump
            self.sparkplug.close()
        for server in self.servers:
            await server.stop()
        self._gc.close()

    async def __aenter__(self) -> ServedPlant:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
