"""What the scenario run's equipment links through a connector process share: the
engine's observer calls held until delivered, in-process check sampling, the connector's
life (a ``mestwin connect`` child process behind the fault proxy, its local status
endpoint), the faults' shape and the waits for the MES.

:class:`ConnectorLink` is the base of :class:`~twin.scenario.opcua_link.OpcUaLink` (the
twin's OPC UA server, ``mestwin connect --opcua``) and
:class:`~twin.scenario.sparkplug_link.SparkplugLink` (the twin's Sparkplug edge nodes on a
broker, ``mestwin connect --sparkplug``). A subclass serves the twin's side (``start``,
``_stop_twin``, ``_twin_server_down`` / ``_twin_server_up`` for a server restart) and says
when the MES holds everything published (``_settle_once``); the base does the rest:

- **Held calls.** The runner owns the engine's clock and runs it much faster than real
  time, so the link sits between the engine and the publisher and holds the engine's
  observer calls until the runner delivers them (``deliver_until``, ``pump``, ``drain``),
  in order, each with its simulated instant.
- **In-process checks.** A process value is published only when the scenario's
  inspection plan samples it (:class:`~twin.scenario.link.Sampling`, while the machine
  runs), as with the direct collector.
- **The connector.** Started with ``--status`` on a free port (``GET /status``,
  ``GET /watermark``, ``POST /flush``), its own process group, a fresh spool; stopped
  with SIGTERM, then SIGKILL.
- **Faults.** ``opcua_drop`` cuts the proxy, ``opcua_server_restart`` stops the twin's
  server (or broker); the engine's changes are held meanwhile and published once the
  connector is connected again (``restore_if_due``).
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

from mes_core.client.local import stop_process_group
from mes_core.schemas.plant_events import CountEvent, PlantEvent
from plant_models.schema import PlantModel
from twin.hooks import PackMLState
from twin.scenario.link import InProcessChecks, LinkStats, Sampling
from twin.scenario.mes_process import free_port, mestwin_command
from twin.scenario.proxy import TcpProxy
from twin.scenario.sut import MesStartError

log = logging.getLogger(__name__)

FLUSH_WAIT_S = 5.0
"""Longest one ``POST /flush`` waits for the MES before the link asks again."""
RECONNECT_TIMEOUT_S = 60.0
BARRIER_TIMEOUT_S = 60.0
BACKLOG_LIMIT = 2_000
"""Engine calls published since the MES last confirmed it had everything, past which the
runner waits for it (flow control): at ``--speed max`` the engine outruns the link many
times over, and an unbounded backlog turns into notification messages so large that
encoding and decoding one outlasts the subscription's lifetime under load."""


@dataclass
class HeldCall:
    """One engine observer call waiting to be published."""

    method: str
    args: tuple[Any, ...]
    work_unit: str
    job_order: str = ""
    count: bool = False


class ConnectorLink:
    """``EquipmentLink`` through a connector process (see the module doc)."""

    name = "equipment link through mestwin connect"
    short_name = "link"
    start_error: type[MesStartError] = MesStartError
    """What ``start`` raises when something does not come up."""
    connector_name = "the connector"
    stop_timeout = 15.0
    """Seconds ``close`` gives the twin's side to stop (``_stop_twin``)."""

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
    ) -> None:
        self.model = model
        self.mes_url = mes_url
        self.api_key = api_key
        self.workdir = workdir
        self.checks = InProcessChecks(characteristics)
        self.samples = self.checks.samples
        """Every in-process check sent: (time, work unit, process value, value)."""
        self.clock = clock
        self.notes = notes
        self.is_down = is_down
        self._mes_backlog = 0
        self.stats = LinkStats()
        self.last_error = ""
        self._held: deque[HeldCall] = deque()
        self._job: dict[str, str] = {}
        self._state: dict[str, str] = {}
        self._processed: dict[str, int] = {}
        self._counters: dict[str, tuple[int, int]] = {}
        self._cut = False
        self._cut_kind = ""
        self._restore_at = float("inf")
        self._faults_at_cut = 0
        self._injected = 0
        """Faults injected into the link; each costs the collector one reconnection (its
        failed attempts meanwhile are counted as faults, not as reconnections)."""
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
        self.endpoint = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.publisher: Any = None
        """The twin's publisher the held calls go to (a ``PlantObserver`` with ``pending``)."""
        self._pump: asyncio.Future[None] | None = None
        self.proxy: TcpProxy | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.status_port = free_port()
        self._http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.status_port}", timeout=FLUSH_WAIT_S + 10
        )
        self.log_path = workdir / "connector.log"

    # -- lifecycle ------------------------------------------------------------------------

    def _start_connector(self, args: list[str], what: str, timeout: float) -> None:
        """Start ``mestwin connect`` with ``args`` (what it collects from) on a fresh spool
        and wait until it is connected; else close the link and raise ``start_error``:
        ``what`` did not happen (``"mestwin connect did not ..."``), the end of its log."""
        spool = self.workdir / "connector-spool.sqlite"
        for stale in (spool, *(spool.with_name(spool.name + x) for x in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        cmd = [
            *mestwin_command(),
            "connect",
            *args,
            "--mes",
            self.mes_url,
            "--spool",
            str(spool),
            "--no-dispatch",  # the runner's people dispatch
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
            raise self.start_error(f"{what} within {timeout:g} s\n{tail}")

    def close(self) -> None:
        """Stop the connector (SIGTERM, then SIGKILL), the proxy, the twin's side, the loop."""
        stop_process_group(self.proc, 15)
        self._http.close()
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        loop = self._loop
        if loop is not None and loop.is_running():
            with contextlib.suppress(Exception):
                self._run(self._stop_twin(), self.stop_timeout)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
        self._loop = None

    async def _stop_twin(self) -> None:
        """On the twin's loop: stop its publisher and server (the subclass's)."""

    def _run(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- faults ---------------------------------------------------------------------------

    def inject(self, kind: str, until: float) -> None:
        """``opcua_drop``: cut the proxy; ``opcua_server_restart``: stop the twin's server.
        Both until simulated time ``until`` (restored by the first delivery from then on)."""
        if self._cut:
            return
        self._before_fault()
        self._faults_at_cut = int(self._status().get("opcua_faults", 0))
        self._injected += 1
        self._cut, self._cut_kind, self._restore_at = True, kind, until
        if kind == "opcua_server_restart":
            self._twin_server_down()
        else:
            assert self.proxy is not None
            self.proxy.cut()

    def restore_if_due(self, now: float) -> None:
        """End an injected fault whose time is over; wait for the connector to be
        connected again before anything held is published."""
        if not self._cut or now < self._restore_at:
            return
        if self._cut_kind == "opcua_server_restart":
            self._twin_server_up()
        else:
            assert self.proxy is not None
            self.proxy.restore()
        self._cut = False
        if not self._wait_connected(self._faults_at_cut + 1, RECONNECT_TIMEOUT_S):
            self.last_error = (
                f"{self.connector_name} did not reconnect within {RECONNECT_TIMEOUT_S:g} s"
            )
            log.warning("%s", self.last_error)
        self._after_fault()
        self.stats.replayed += len(self._held)

    def _before_fault(self) -> None:
        """Before a fault is injected (nothing by default)."""

    def _after_fault(self) -> None:
        """Once the connector is back after a fault, before anything held is published."""

    def _twin_server_down(self) -> None:
        raise NotImplementedError

    def _twin_server_up(self) -> None:
        raise NotImplementedError

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
            HeldCall("on_state", (t, work_unit, state, packml_state, reason, None), work_unit)
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
            HeldCall(
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
        processed = self._counters.get(work_unit, (0, 0))[0]
        if self.checks.take(t, work_unit, name, value, self._state.get(work_unit), processed):
            self._held.append(HeldCall("on_value", (t, work_unit, name, value, None), work_unit))

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
            HeldCall("on_job", (t, work_unit, job_order, product, material_lot, None), work_unit)
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
            HeldCall("on_alarm", (t, work_unit, alarm, severity, message, active, None), work_unit)
        )

    def on_phase(self, t: float, work_unit: str, *phase: Any) -> None:
        """A batch unit's phase (``twin.hooks.BatchObserver``): held like every change; the
        OPC UA server and the Sparkplug edge nodes both show it."""
        self._held.append(HeldCall("on_phase", (t, work_unit, *phase[:-1], None), work_unit))

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
        reconnects = int(self._status().get("reconnects", 0))
        self.stats.unplanned_reconnects = max(0, reconnects - self._injected)
        if self.stats.unplanned_reconnects and self.notes is not None:
            self.notes.append(
                f"{self.short_name}: {self.connector_name} lost the plant's server "
                f"{self.stats.unplanned_reconnects} time(s) the bench did not cause (see its "
                "log: a watchdog probe unanswered on a loaded machine, say) and resynchronised "
                "from current values; what changed during those gaps did not reach the MES."
            )
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

    def _settle_once(self, publisher: Any, deadline: float) -> bool:
        """Wait until the MES holds everything ``publisher`` published (the subclass's
        test of it), or ``deadline``; whether it does."""
        raise NotImplementedError

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
