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
import logging
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from asyncua import ua

from mes_core.client import MesClient
from mes_core.client.local import stop_process_group
from mes_core.schemas.plant_events import CountEvent, PlantEvent
from plant_models.schema import PlantModel
from twin.hooks import PackMLState
from twin.opcua.server import OpcUaPublisher, PlantServer
from twin.scenario.link import LinkStats, Sampling
from twin.scenario.mes_process import free_port, mestwin_command
from twin.scenario.proxy import TcpProxy
from twin.scenario.sut import MesStartError
from twin.scenario.sut_mes_core import COLLECTOR_KEY

log = logging.getLogger(__name__)

PUBLISHING_INTERVAL_MS = 25.0
"""The connector's OPC UA publishing interval on this link: the runner waits up to one for
the server to send what was written (the connector's default is 100 ms)."""
FLUSH_WAIT_S = 5.0
"""Longest one ``POST /flush`` waits for the MES before the link asks again."""
RECONNECT_TIMEOUT_S = 60.0
BARRIER_TIMEOUT_S = 60.0
BACKLOG_LIMIT = 2_000
"""Engine calls published since the MES last confirmed it had everything, past which the
runner waits for it (flow control): at ``--speed max`` the engine outruns the link many
times over, and an unbounded backlog turns into notification messages so large that
encoding and decoding one outlasts the subscription's lifetime under load."""


_data_value: Callable[..., ua.DataValue] = ua.DataValue  # accepts plain datetimes


class OpcUaLinkError(MesStartError):
    """The OPC UA link could not be set up (server, proxy or connector): like an MES
    that does not come up, ``mestwin run`` says the run could not start (exit 1)."""


@dataclass
class _Held:
    """One engine observer call waiting to be published."""

    method: str
    args: tuple[Any, ...]
    work_unit: str
    job_order: str = ""
    count: bool = False


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


class OpcUaLink:
    """``EquipmentLink`` over the twin OPC UA server, the fault proxy and the connector."""

    name = "OPC UA (twin server -> fault proxy -> mestwin connect)"
    short_name = "OPC UA link"

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
        self.model = model
        self._serving = serving
        self.mes_url = mes_url
        self.api_key = api_key
        self.workdir = workdir
        self.characteristics = characteristics
        self.clock = clock
        self.notes = notes
        self.is_down = is_down
        self._mes_backlog = 0
        self.stats = LinkStats()
        self.last_error = ""
        self._held: deque[_Held] = deque()
        self._job: dict[str, str] = {}
        self._state: dict[str, str] = {}
        self._processed: dict[str, int] = {}
        self._last_sample: dict[tuple[str, str], tuple[float, int]] = {}
        self.samples: list[tuple[float, str, str, float]] = []
        """Every in-process check sent: (time, work unit, process value, value)."""
        self._counters: dict[str, tuple[int, int]] = {}
        self._cut = False
        self._cut_kind = ""
        self._restore_at = float("inf")
        self._faults_at_cut = 0
        self.settles = 0
        self.settle_seconds = 0.0
        """How often and how long (wall seconds) the runner waited for the MES to ingest."""
        self.flush_seconds = 0.0
        """Of which waiting for the connector to send and the MES to ingest (``/flush``)."""
        self._dirty = False
        self._covered = -1.0
        self._unconfirmed = 0
        self._barrier_sub: tuple[Any, Any] | None = None
        self._epoch = model.plant.start.timestamp()
        """Plant time through which the MES holds everything the plant did (the last
        wait for it)."""
        self.port = serving.port if serving is not None else free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: PlantServer | None = None
        self.publisher: OpcUaPublisher | None = None
        self._pump: asyncio.Future[None] | None = None
        self.proxy: TcpProxy | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.status_port = free_port()
        self._http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.status_port}", timeout=FLUSH_WAIT_S + 10
        )
        self.log_path = workdir / "connector.log"

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
        spool = self.workdir / "connector-spool.sqlite"
        for stale in (spool, *(spool.with_name(spool.name + x) for x in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        cmd = [
            *mestwin_command(),
            "connect",
            "--opcua",
            f"opc.tcp://127.0.0.1:{self.proxy.port}",
            "--mes",
            self.mes_url,
            "--spool",
            str(spool),
            "--no-dispatch",
            "--publishing-interval",
            f"{PUBLISHING_INTERVAL_MS:g}",
            "--status",
            f"127.0.0.1:{self.status_port}",
        ]
        env = dict(os.environ, MESTWIN_API_KEY=self.api_key)
        with self.log_path.open("ab") as out:
            # Its own session: a Ctrl-C in the terminal reaches the runner only, which
            # then stops the connector itself (SIGTERM: it flushes and closes its spool).
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            connected = self._wait_connected(0, timeout)
        except BaseException:  # Ctrl-C while waiting: the runner has no link to stop yet
            self.close()
            raise
        if not connected:
            tail = self._log_tail()
            self.close()
            raise OpcUaLinkError(
                f"mestwin connect did not subscribe to {self.endpoint} within {timeout:g} s\n{tail}"
            )
        return self

    def close(self) -> None:
        """Stop the connector (SIGTERM, then SIGKILL), the proxy, the server, the loop."""
        stop_process_group(self.proc, 15)
        self._http.close()
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        loop = self._loop
        if loop is not None and loop.is_running():
            with contextlib.suppress(Exception):
                self._run(self._stop_server(), 15)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
        self._loop = None

    def _run(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start_publisher(self) -> None:
        assert self._server is not None
        self.publisher = OpcUaPublisher([self._server], self.model.plant.start)
        self._pump = asyncio.ensure_future(self.publisher.run())

    async def _stop_server(self) -> None:
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

    # -- faults ---------------------------------------------------------------------------

    def inject(self, kind: str, until: float) -> None:
        """``opcua_drop``: cut the proxy; ``opcua_server_restart``: stop the server. Both
        until simulated time ``until`` (restored by the first delivery from then on)."""
        if self._cut:
            return
        self._faults_at_cut = int(self._status().get("opcua_faults", 0))
        self._cut, self._cut_kind, self._restore_at = True, kind, until
        if kind == "opcua_server_restart":
            self._run(self._server_down(), 30)
        else:
            assert self.proxy is not None
            self.proxy.cut()

    def restore_if_due(self, now: float) -> None:
        """End an injected fault whose time is over; wait for the connector's new
        subscription before anything held is published."""
        if not self._cut or now < self._restore_at:
            return
        if self._cut_kind == "opcua_server_restart":
            self._run(self._server_up(), 60)
        else:
            assert self.proxy is not None
            self.proxy.restore()
        self._cut = False
        if not self._wait_connected(self._faults_at_cut + 1, RECONNECT_TIMEOUT_S):
            self.last_error = f"the connector did not reconnect within {RECONNECT_TIMEOUT_S:g} s"
            log.warning("%s", self.last_error)
        self.stats.replayed += len(self._held)

    def _wait_connected(self, faults: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self._status()
            if s.get("connected") and int(s.get("opcua_faults", 0)) >= faults:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    # -- PlantObserver: hold every call until delivered -----------------------------------

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        self._state[work_unit] = state
        self._held.append(
            _Held("on_state", (t, work_unit, state, packml_state, reason, None), work_unit)
        )

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        p0, d0 = self._counters.get(work_unit, (0, 0))
        self._counters[work_unit] = (processed, defective)
        self._held.append(
            _Held(
                "on_counters",
                (t, work_unit, processed, defective, consumed, None),
                work_unit,
                self._job.get(work_unit, ""),
                count=processed > p0 or defective > d0,
            )
        )

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        plan = self.characteristics.get((work_unit, name))
        if plan is None or self._state.get(work_unit) != "running":
            # An in-process check samples the product being made (see the module doc).
            return
        processed = self._counters.get(work_unit, (0, 0))[0]
        if not plan.due(t, processed, self._last_sample.get((work_unit, name))):
            return
        self._last_sample[(work_unit, name)] = (t, processed)
        self.samples.append((t, work_unit, name, value))
        self._held.append(_Held("on_value", (t, work_unit, name, value, None), work_unit))

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        self._job[work_unit] = job_order
        self._held.append(
            _Held("on_job", (t, work_unit, job_order, product, material_lot, None), work_unit)
        )

    def on_alarm(
        self,
        t: float,
        work_unit: str,
        alarm: str,
        severity: int,
        message: str,
        active: bool,
        wall: float | None,
    ) -> None:
        self._held.append(
            _Held("on_alarm", (t, work_unit, alarm, severity, message, active, None), work_unit)
        )

    def on_phase(self, t: float, work_unit: str, *phase: Any) -> None:
        """A batch unit's phase (``twin.hooks.BatchObserver``): held like every change."""
        self._held.append(_Held("on_phase", (t, work_unit, *phase[:-1], None), work_unit))

    def on_ledger(self, record: dict[str, Any]) -> None:
        """The plant's ledger: nothing to hold. A job order the plant finished is completed
        by the people once its reaction time is over; they ask ``ingested_through`` for its
        last units first, by then mostly ingested already (no wait)."""

    # -- delivery ---------------------------------------------------------------------------

    def _publish(self, n: int) -> None:
        """Hand the first ``n`` held calls to the publisher (its pump writes them)."""
        publisher = self.publisher
        assert publisher is not None
        for _ in range(n):
            h = self._held.popleft()
            getattr(publisher, h.method)(*h.args)
        if n:
            self._dirty = True
            self._unconfirmed += n

    def _probe(self, work_unit: str, job_order: str) -> CountEvent:
        return CountEvent(
            source="opcua-link-probe",
            sequence=1,
            work_unit=work_unit,
            timestamp=self.model.plant.start,
            good=1,
            scrap=0,
            job_order=job_order,
        )

    def pending(self) -> int:
        queued = self.publisher.pending() if self.publisher is not None else 0
        return len(self._held) + queued + int(self._status().get("spooled", 0))

    def pump(self) -> None:
        """Publish what is held (the connector moves it on by itself)."""
        self.restore_if_due(self.clock())
        if not self._cut:
            self._publish(len(self._held))

    def deliver_until(self, blocked: Callable[[PlantEvent], bool]) -> bool:
        """Publish held calls in order up to the first count of an operation the people
        have not started yet; when the people wait for a start (that count, or a work
        unit that took a job and made nothing yet), wait until the MES has ingested all
        that was published, so a start sees the predecessor's good units (completions
        ask ``ingested_through``)."""
        self.restore_if_due(self.clock())
        if self._cut:
            return False
        memo: dict[tuple[str, str], bool] = {}

        def held_back(work_unit: str, job_order: str) -> bool:
            key = (work_unit, job_order)
            hit = memo.get(key)
            if hit is None:
                hit = memo[key] = blocked(self._probe(work_unit, job_order))
            return hit

        n, stopped = 0, False
        for h in self._held:
            if h.count and h.job_order and held_back(h.work_unit, h.job_order):
                stopped = True
                break
            n += 1
        self._publish(n)
        waiting = stopped or any(held_back(wu, job) for wu, job in self._job.items() if job)
        if self.is_down():
            # The MES is down: what the connector spools now is replayed when it is back.
            spooled = int(self._status().get("spooled", 0))
            self._mes_backlog = max(self._mes_backlog, spooled)
            return stopped
        if self._mes_backlog:
            self.stats.replayed += self._mes_backlog
            self._mes_backlog = 0
        if (waiting or self._unconfirmed >= BACKLOG_LIMIT) and self._dirty:
            # A start is about to be made: the MES must hold all the plant published
            # (the predecessor's good units, the work unit's state, any hold). Or the
            # backlog is at its bound (flow control).
            self._settle(BARRIER_TIMEOUT_S)
        return stopped

    def ingested_through(self, through: float) -> bool:
        """Wait until the MES holds everything the plant did up to plant time ``through``
        (the people are about to complete a job order the plant finished then); True
        when it does. No wait when an earlier wait covered it already; none either while
        the link is cut or the MES is down (what is spooled arrives later)."""
        if self._covered >= through:
            return True
        if self._cut or self.is_down():
            return False
        if not self._dirty:
            self._covered = self._next_held_at()
            return self._covered >= through
        return self._watermark_covers(through) or self._settle(BARRIER_TIMEOUT_S)

    def _watermark_covers(self, through: float) -> bool:
        """Whether the connector's watermark, asked without waiting, says the MES holds
        everything up to ``through``: the latest source time of the messages it ingested
        (of the subscription the last wait was on), everything written before it was in
        those messages, as the twin writes in time order."""
        w = self._watermark("", 0.0).get("watermark")
        if not isinstance(w, dict) or (w.get("connects"), w.get("subscription")) != (
            self._barrier_sub
        ):
            return False  # another session's (a restarted server numbers afresh)
        if not w.get("latest"):
            return False
        latest = datetime.fromisoformat(w["latest"]).timestamp() - self._epoch
        # Strictly before it (a change of that very instant may come later), with a
        # millisecond to spare for the timestamp's round trip through OPC UA.
        self._covered = max(self._covered, min(latest - 1e-3, self._next_held_at()))
        return self._covered >= through

    def _next_held_at(self) -> float:
        """Plant time through which everything the engine made was published: just
        before the first call still held, or now."""
        return self._held[0].args[0] - 1e-6 if self._held else self.clock()

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if self._cut:
            # The run ended inside an injected fault: end it now, the rest must arrive.
            self.restore_if_due(float("inf"))
        self._publish(len(self._held))
        self._dirty = True
        done = self._settle(max(deadline - time.monotonic(), 0.0))
        if self.notes is not None:
            self.notes.append(
                f"{self.short_name}: the runner waited {self.settles} times for the MES to ingest "
                f"what the plant had published (starts, completions, the end), "
                f"{self.settle_seconds:.1f} s of wall time in all, of which "
                f"{self.flush_seconds:.1f} s for the connector to send it and the MES to "
                "ingest it (the rest: the twin publishing, the connector taking it in)."
            )
        return done

    def _settle(self, timeout: float) -> bool:
        """Wait until everything published is ingested by the MES (see the module doc)."""
        publisher = self.publisher
        assert publisher is not None
        started = time.monotonic()
        try:
            done = self._settle_once(publisher, started + timeout)
            if done:
                self._covered = max(self._covered, self._next_held_at())
                self._unconfirmed = 0
            return done
        finally:
            self.settles += 1
            self.settle_seconds += time.monotonic() - started

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

    def _take(self, s: dict[str, Any]) -> None:
        """The connector's own figures are the link's: events made, sent, faults."""
        self.stats.produced = int(s.get("produced", 0))
        self.stats.sent = int(s.get("sent", 0))
        self.stats.accepted = self.stats.sent
        self.stats.failures = int(s.get("mes_faults", 0)) + int(s.get("opcua_faults", 0))

    def _status(self) -> dict[str, Any]:
        """The connector's counters now (``GET /status``); empty while it is not up."""
        try:
            r = self._http.get("/status")
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _watermark(self, query: str, wait: float) -> dict[str, Any]:
        """``GET /watermark``: the connector's counters once the MES has ingested what it
        asks (``reached``), or ``wait`` seconds passed."""
        try:
            r = self._http.get(f"/watermark?{query}&timeout={wait:.3f}")
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _flush(self, wait: float) -> dict[str, Any]:
        """``POST /flush``: the connector's counters once all it received is sent."""
        try:
            r = self._http.post("/flush", params={"timeout": f"{wait:.3f}"})
            r.raise_for_status()
            data = r.json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


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
