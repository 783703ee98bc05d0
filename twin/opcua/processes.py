"""A plant served by many processes: each line's engine and OPC UA server in a process of
its own (``mestwin twin serve --per-line``), all on one plant clock.

**One plant clock.** Every process is given the same time base: a wall-clock instant, the
*origin* (epoch seconds, the instant of simulated time 0) and the speed. Simulated time
``t`` is wall time ``origin + t / speed`` in every process. The parent starts the
children, waits until each has built its server (the slow part: imports, address space),
then sends them all one origin a moment ahead; each child starts its paced engine at that
instant, so the engine's own pacing (``Engine(speed=...)``, against the monotonic clock
every process of the host shares) keeps it on the common time base from then on, and its
changes carry wall-clock source timestamps on that base. Processes on other hosts would
take the same origin and speed (their clocks NTP-synchronised).

**Cannot keep pace.** A child never silently drifts: it publishes, under
``Objects/Plant/Pace`` of its server, ``Origin`` (the time base), ``Speed``,
``PlantSeconds`` (its simulated time), ``StartSkewSeconds`` (how late its engine started
against the origin), ``LagSeconds`` (the worst lag behind the time base so far, wall
seconds: the engine's ``max_lag_seen``) and ``CannotKeepPace`` (true once that lag passed
``max_lag``; latched, as a fault is), and logs a warning when it first falls behind.

**What a line process holds.** ``line_model`` cuts the plant model to one line: the line,
its products, their job orders and generators, the operators who may work on it, the lots
staged for it and every unstaged lot (a copy in each process: lines that draw on one
shared lot each see all of it, the one way a split plant differs from a whole one). The
engine's random streams are keyed by name, so a line draws the same numbers alone as in
the whole plant. An order generator that mixes products of several lines cannot be split
and is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlparse

from plant_models.schema import PlantModel
from twin.opcua.runtime import ServedPlant, ServeOptions
from twin.opcua.server import endpoints_per_line

log = logging.getLogger(__name__)

START_MARGIN_S = 0.3
"""The origin is this far ahead of the moment every child is ready (the message reaches
each child well within it)."""
READY_TIMEOUT_S = 180.0
PACE_PERIOD_S = 0.5
ANY_PORT_TRIES = 5


class SplitError(ValueError):
    """The plant model cannot be split into one model per line."""


def line_model(model: PlantModel, line: str) -> PlantModel:
    """``model`` cut to the line ``line`` (see the module's docstring)."""
    return lines_model(model, [line])


def lines_model(model: PlantModel, codes: Sequence[str]) -> PlantModel:
    """``model`` cut to the lines ``codes`` (a process serving a group of lines)."""
    wanted = set(codes)
    lines = [x for x in model.lines if x.code in wanted]
    missing = wanted - {x.code for x in lines}
    if missing:
        raise SplitError(f"no line {', '.join(sorted(missing))!r} in plant {model.plant.code}")
    products = [p for p in model.products if p.line in wanted]
    kept = {p.id for p in products}
    generators = []
    for g in model.order_stream.generators:
        mix = set(g.product_mix)
        if mix <= kept:
            generators.append(g)
        elif mix & kept:
            raise SplitError(
                f"order generator {g.prefix!r} mixes products of several lines "
                f"({', '.join(sorted(mix))}): a per-line process cannot draw its orders alone"
            )
    operators = [
        o.model_copy(update={"lines": [x for x in o.lines if x in wanted]})
        for o in model.operators
        if not o.lines or wanted & set(o.lines)
    ]
    stream = model.order_stream.model_copy(
        update={
            "job_orders": [j for j in model.order_stream.job_orders if j.product in kept],
            "generators": generators,
        }
    )
    return model.model_copy(
        update={
            "lines": lines,
            "products": products,
            "operators": operators,
            "material_lots": [x for x in model.material_lots if x.line is None or x.line in wanted],
            "order_stream": stream,
        }
    )


@dataclass(frozen=True)
class PlantClock:
    """The time base every process of a plant keeps: simulated ``t`` = wall
    ``origin + t / speed``."""

    origin: float
    speed: float

    def plant_seconds(self, wall: float | None = None) -> float:
        """The simulated time the time base stands at (now, or at ``wall``)."""
        return ((time.time() if wall is None else wall) - self.origin) * self.speed


@dataclass
class LineProcessOptions:
    """What each line's process is given (picklable: it crosses into the child)."""

    speed: float | None = 1.0
    seed: int = 0
    auto_dispatch: bool = True
    max_lag: float = 1.0
    security: Any = None
    sparkplug: str | None = None
    sparkplug_group: str = "mestwin"
    sparkplug_primary_host: str | None = None
    any_port: bool = False
    """Benchmarks and tests: when the endpoint's port is taken before the server binds it
    (other programs on the machine), serve on another free port (the endpoint each
    process serves at is in ``PerLinePlant.endpoints``)."""
    counted_tags: tuple[str, ...] = ()
    """Benchmarks: report how many values of these work unit tags (and of every process
    value) the server wrote while the engine ran (``written`` in the result)."""


# --- the child ----------------------------------------------------------------------------


class _PaceNodes:
    """``Objects/Plant/Pace`` of a line's server, written every ``PACE_PERIOD_S``."""

    NAMES = ("Origin", "Speed", "PlantSeconds", "StartSkewSeconds", "LagSeconds", "CannotKeepPace")

    def __init__(self, server: Any, nodes: dict[str, Any]) -> None:
        self.server = server
        self.nodes = nodes

    @classmethod
    async def add(cls, plant: ServedPlant) -> _PaceNodes:
        served = plant.servers[0]
        assert served.server is not None and served.nodes is not None
        server = served.server
        ns = served.nodes.ns
        parent = server.get_node(served.nodes.plant)
        pace = await parent.add_object(ns, "Pace")
        initial: dict[str, Any] = {
            "Origin": datetime.fromtimestamp(0, UTC),
            "Speed": 0.0,
            "PlantSeconds": 0.0,
            "StartSkewSeconds": 0.0,
            "LagSeconds": 0.0,
            "CannotKeepPace": False,
        }
        nodes = {}
        for name in cls.NAMES:
            var = await pace.add_variable(ns, name, initial[name])
            nodes[name] = var
        return cls(server, nodes)

    async def write(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            await self.nodes[name].write_value(value)


def _serve_line_process(
    model: PlantModel,
    lines: list[str],
    endpoint: str,
    options: LineProcessOptions,
    conn: Connection,
) -> None:
    """A line's process: serve, say ready, start the engine at the origin, stop when told."""
    import signal

    from twin.opcua.server import quiet_asyncua

    # Ctrl-C reaches the whole process group: the parent halts the lines in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    line = ",".join(lines)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s [{line}] %(message)s"
    )
    quiet_asyncua()
    try:
        asyncio.run(_serve_line(model, lines, endpoint, options, conn))
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _serve_line(
    model: PlantModel,
    lines: list[str],
    endpoint: str,
    options: LineProcessOptions,
    conn: Connection,
) -> None:
    line = ",".join(lines)
    serve = ServeOptions(
        endpoint=endpoint,
        speed=options.speed,
        seed=options.seed,
        auto_dispatch=options.auto_dispatch,
        security=options.security,
        sparkplug=options.sparkplug,
        sparkplug_group=options.sparkplug_group,
        sparkplug_primary_host=options.sparkplug_primary_host,
    )
    sub = lines_model(model, lines)
    plant = ServedPlant(sub, serve, autorun=False)
    for attempt in range(ANY_PORT_TRIES):
        try:
            await plant.start()
            break
        except OSError as exc:
            # The port was free when chosen, and taken by someone else before the server
            # (built meanwhile) could bind it: with any_port, take another one.
            if exc.errno != errno.EADDRINUSE or not options.any_port:
                raise
            with contextlib.suppress(Exception):  # half started: stop what did start
                await plant.stop()
            if attempt == ANY_PORT_TRIES - 1:
                raise
            endpoint = _another_port(endpoint)
            log.info("port taken meanwhile; serving at %s instead", endpoint)
            plant = ServedPlant(sub, replace(serve, endpoint=endpoint), autorun=False)
    try:
        pace = await _PaceNodes.add(plant)
        conn.send(("ready", endpoint))
        message = await asyncio.to_thread(conn.recv)
        if message[0] != "start":
            return
        origin: float = message[1]
        clock = PlantClock(origin, options.speed or 0.0)
        counted = _counted_nodes(plant, options.counted_tags)
        publisher = plant.publisher
        assert publisher is not None
        written0 = publisher.writes_to(counted)
        if options.speed is not None:
            await asyncio.sleep(max(0.0, origin - time.time()))
        plant.start_engine()
        await _pace_loop(plant, pace, clock, options, conn, line)
        await plant.halt()
        summary = plant.engine.ledger.summary()
        if conn.closed:
            return
        conn.send(
            (
                "stopped",
                {
                    "plant_seconds": plant.engine.now,
                    "max_lag": getattr(plant.engine, "max_lag_seen", 0.0),
                    "written": publisher.writes_to(counted) - written0,
                    "work_units": {
                        code: (wu["good"], wu["scrap"])
                        for code, wu in summary["work_units"].items()
                    },
                },
            )
        )
        # Still serving: the clients read what was written last; until the parent says so.
        with contextlib.suppress(EOFError, OSError):
            await asyncio.to_thread(conn.recv)
    finally:
        await plant.stop()


def _another_port(endpoint: str) -> str:
    from twin.opcua.bench_raw import free_port

    parsed = urlparse(endpoint)
    return parsed._replace(netloc=f"{parsed.hostname}:{free_port()}").geturl()


def _counted_nodes(plant: ServedPlant, tags: tuple[str, ...]) -> list[Any]:
    if not tags:
        return []
    return [
        nodeid
        for server in plant.servers
        if server.nodes is not None
        for wu in server.nodes.work_units.values()
        for nodeid in (*(wu.variables[t] for t in tags), *wu.process_values.values())
    ]


async def _pace_loop(
    plant: ServedPlant,
    pace: _PaceNodes,
    clock: PlantClock,
    options: LineProcessOptions,
    conn: Connection,
    line: str,
) -> None:
    engine = plant.engine
    speed = options.speed
    behind = False
    first = True
    while plant.error is None:
        values: dict[str, Any] = {"PlantSeconds": float(engine.now)}
        if speed is not None:
            lag = float(getattr(engine, "max_lag_seen", 0.0))
            values["LagSeconds"] = lag
            if lag > options.max_lag and not behind:
                behind = True
                log.warning(
                    "line %s cannot keep pace at speed %g: %.2f s behind the plant clock",
                    line, speed, lag,
                )  # fmt: skip
                values["CannotKeepPace"] = True
            if first:
                wall0 = engine.wall(0.0)
                values["Origin"] = datetime.fromtimestamp(clock.origin, UTC)
                values["Speed"] = float(speed)
                values["StartSkewSeconds"] = float(wall0 - clock.origin) if wall0 else 0.0
        first = False
        await pace.write(values)
        if await asyncio.to_thread(conn.poll, PACE_PERIOD_S):
            with contextlib.suppress(EOFError, OSError):
                conn.recv()  # "halt" (or the parent went away)
            return
    raise RuntimeError(f"the engine of line {line} stopped: {plant.error}")


# --- the parent ---------------------------------------------------------------------------


@dataclass
class LineProcess:
    line: str
    """The line it serves (its lines, comma-separated, when it serves a group)."""
    endpoint: str
    process: Any
    conn: Connection
    result: dict[str, Any] = field(default_factory=dict)


class PerLinePlant:
    """Each line of ``model`` served by a process of its own, on one plant clock.

    ``start()`` returns once every line's server listens and the engines have been given
    their common origin (``clock``); ``halt()`` halts every engine (the servers keep
    serving what was written last) and returns each line's ground truth (good and scrap per
    work unit, simulated seconds, worst lag); ``stop()`` halts and ends the processes.
    ``start_method``: ``spawn`` (default: a fresh interpreter per line) or ``fork``
    (quicker: the children inherit the imports; used only while this process has no
    other thread, else spawn).
    ``groups``: lines served together by one process (benchmarks: N processes for M lines);
    ``start()`` is ``serve()`` (every server listening, engines waiting) then ``run()``
    (the origin given to all).
    """

    def __init__(
        self,
        model: PlantModel,
        endpoint: str,
        options: LineProcessOptions | None = None,
        *,
        lines: Sequence[str] | None = None,
        groups: Sequence[Sequence[str]] | None = None,
        endpoints: Sequence[str] | None = None,
        start_method: str = "spawn",
    ) -> None:
        self.model = model
        self.options = options or LineProcessOptions()
        if groups is None:
            codes = list(lines) if lines is not None else [x.code for x in model.lines]
            groups = [[code] for code in codes]
        self.groups = [list(g) for g in groups]
        self.lines = [",".join(g) for g in self.groups]
        for group in self.groups:
            lines_model(model, group)  # refuse a plant that cannot be split, before any start
        self._endpoints = (
            list(endpoints) if endpoints is not None else endpoints_per_line(endpoint, self.lines)
        )
        self.start_method = start_method
        self.children: list[LineProcess] = []
        self.clock: PlantClock | None = None

    @property
    def endpoints(self) -> list[str]:
        return [c.endpoint for c in self.children]

    def start(self) -> PlantClock:
        """``serve()`` then ``run()``: the plant clock."""
        self.serve()
        return self.run()

    def serve(self) -> None:
        """Start every process; return once each one's server listens (engines waiting)."""
        method = self.start_method
        if method == "fork" and threading.active_count() > 1:
            # A fork copies locks other threads may hold (a Dask cluster forked from a
            # threaded process hung here): fork only a single-threaded parent.
            log.info("%d threads running: spawning the line processes", threading.active_count())
            method = "spawn"
        ctx: Any = multiprocessing.get_context(method)
        for group, code, endpoint in zip(self.groups, self.lines, self._endpoints, strict=True):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_serve_line_process,
                args=(self.model, group, endpoint, self.options, child),
                name=f"mestwin-line-{code}",
                daemon=True,
            )
            process.start()
            child.close()
            self.children.append(LineProcess(code, endpoint, process, parent))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for c in self.children:
            remaining = deadline - time.monotonic()
            if not c.conn.poll(max(0.0, remaining)):
                self._kill()
                raise RuntimeError(f"line {c.line}'s process did not start its server in time")
            message = c.conn.recv()
            if message[0] != "ready":
                self._kill()
                raise RuntimeError(f"line {c.line}'s process failed: {message[1]}")
            c.endpoint = message[1]

    def run(self) -> PlantClock:
        """Give every engine the common origin, ``START_MARGIN_S`` from now."""
        self.clock = PlantClock(time.time() + START_MARGIN_S, self.options.speed or 0.0)
        for c in self.children:
            c.conn.send(("start", self.clock.origin))
        return self.clock

    def failed(self) -> str | None:
        """Why a line's process ended before it was told to, if one did."""
        for c in self.children:
            if not c.process.is_alive():
                return f"line {c.line}'s process ended (exit code {c.process.exitcode})"
        return None

    def halt(self, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        """Halt every engine and collect each line's ground truth; the servers go on."""
        for c in self.children:
            if not c.result:
                with contextlib.suppress(OSError):
                    c.conn.send(("halt",))
        deadline = time.monotonic() + timeout
        for c in self.children:
            if c.result:
                continue
            with contextlib.suppress(EOFError, OSError):
                while c.conn.poll(max(0.0, deadline - time.monotonic())):
                    message = c.conn.recv()
                    if message[0] == "stopped":
                        c.result = message[1]
                        break
                    if message[0] == "error":
                        log.error("line %s: %s", c.line, message[1])
                        break
        return self.results

    def stop(self, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        """Halt every engine, collect each line's ground truth, end the processes."""
        self.halt(timeout)
        deadline = time.monotonic() + 15.0
        for c in self.children:
            with contextlib.suppress(OSError):
                c.conn.send(("exit",))
        for c in self.children:
            c.process.join(max(0.0, deadline - time.monotonic()) or 1.0)
            if c.process.is_alive():
                c.process.terminate()
                c.process.join(5)
            c.conn.close()
        return self.results

    def _kill(self) -> None:
        for c in self.children:
            if c.process.is_alive():
                c.process.terminate()
            c.process.join(5)
            c.conn.close()

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return {c.line: c.result for c in self.children}

    def __enter__(self) -> PerLinePlant:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
