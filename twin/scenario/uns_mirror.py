"""The run's mirror (scenario ``mirror: sparkplug``): the plant published a second time, to
a second consumer, beside the MES's link ("both at once": OPC UA feeds the MES, Sparkplug
B feeds the unified namespace).

twin engine -> :class:`~twin.sparkplug.edge.SparkplugPublisher` (one edge node per line,
an asyncio loop in a thread of its own; it takes the engine's changes as they happen,
not held like the MES's link) -> a Mosquitto broker of the run's own -> a subscriber of
the unified namespace, :class:`~twin.sparkplug.subscriber.UnsSubscriber` (a host
application that is not the primary one, as a historian is: it keeps the last value of
every device metric, follows births and ``seq``, asks for a rebirth on a gap).

At the end (:meth:`UnsMirror.finish`) the mirror is settled, in Sparkplug's terms: every
change published, and for every edge node the subscriber follows its current session
(the NBIRTH's timestamp) and took in order as many messages since as the edge node
published. Then the subscriber's final ``ProdProcessedCount``, ``ProdDefectiveCount``
and ``ProdConsumedCount`` per device are compared with the twin's ground truth per work
unit (:class:`~twin.scenario.report.MirrorReport`): equal everywhere passes, a difference
fails, a counter the subscriber holds no value of is not checked (with the reason). The
link's faults (a proxy cut, a server restart, the MES killed) do not touch the mirror.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from plant_models.schema import PlantModel
from twin.scenario.report import MirrorReport, MirrorRow
from twin.scenario.sparkplug_link import Broker, SparkplugLinkError
from twin.sparkplug.edge import SparkplugPublisher
from twin.sparkplug.subscriber import UnsSubscriber

SETTLE_S = 60.0
COUNTERS = (
    ("processed", "ProdProcessedCount"),
    ("defective", "ProdDefectiveCount"),
    ("consumed", "ProdConsumedCount"),
)
PATH = "twin Sparkplug B edge nodes -> Mosquitto (the run's own) -> UNS subscriber (not primary)"


class UnsMirror:
    """The Sparkplug B mirror of one run (see the module doc)."""

    def __init__(self, model: PlantModel, workdir: Path) -> None:
        self.model = model
        self.workdir = workdir / "uns-mirror"
        self.group = f"uns-{model.plant.code}".replace("/", "-").replace("+", "-")
        self.group = self.group.replace("#", "-")
        self.broker: Broker | None = None
        self.subscriber: UnsSubscriber | None = None
        self.publisher: SparkplugPublisher | None = None
        self.endpoint = ""
        self.settled = False
        self.start_seconds = 0.0
        self.settle_seconds = 0.0
        """Wall seconds to start it, and to settle it at the end."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pump: Future[None] | None = None

    def start(self, sim: Any, timeout: float = 30.0) -> UnsMirror:
        """Broker and subscriber first (it sees the first births), then the edge nodes,
        registered as the engine's observer (the engine's snapshot is what they birth)."""
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.broker = Broker(self.workdir)
            self.broker.start()
            self.endpoint = f"mqtt://127.0.0.1:{self.broker.port}"
            self.subscriber = UnsSubscriber(("127.0.0.1", self.broker.port), self.group)
            self.subscriber.start(timeout)
            self.publisher = SparkplugPublisher(
                self.model, self.endpoint, self.group, start=self.model.plant.start
            )
            sim.add_observer(self.publisher)
            loop = self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name="uns-mirror", daemon=True)
            self._thread.start()
            asyncio.run_coroutine_threadsafe(self.publisher.start(timeout), loop).result(timeout)
            self._pump = asyncio.run_coroutine_threadsafe(self.publisher.run(), loop)
        except SparkplugLinkError as exc:
            self.close()
            raise SparkplugLinkError(f"mirror: sparkplug: {exc}") from exc
        except Exception as exc:
            self.close()
            raise SparkplugLinkError(f"the Sparkplug mirror did not start: {exc}") from exc
        self.start_seconds = time.monotonic() - started
        return self

    def _idle(self) -> bool:
        """Everything published, and the subscriber took all of it in order."""
        pub, sub = self.publisher, self.subscriber
        if pub is None or sub is None or pub.pending():
            return False
        sessions = sub.sessions()
        return all(
            n.connected
            and not n.need_birth
            and sessions.get(n.node) == (n.birth_timestamp, n.since_birth, True)
            for n in pub.nodes.values()
        )

    def settle(self, timeout: float = SETTLE_S) -> bool:
        started = time.monotonic()
        deadline = started + timeout
        try:
            while time.monotonic() < deadline:
                if self._idle():
                    self.settled = True
                    return True
                time.sleep(0.02)
            return False
        finally:
            self.settle_seconds = time.monotonic() - started

    def finish(
        self, twin: dict[str, tuple[int, int, int]], timeout: float = SETTLE_S
    ) -> MirrorReport:
        """Settle, then reconcile the subscriber's last counters with ``twin`` (per work
        unit: processed, defective, consumed, the ground truth)."""
        settled = self.settle(timeout)
        held = self.subscriber.values() if self.subscriber is not None else {}
        rows: list[MirrorRow] = []
        unknown: list[str] = []
        for wu in self.model.all_work_units():
            truth = twin.get(wu.code)
            metrics = held.get(wu.code)
            for i, (quantity, metric) in enumerate(COUNTERS):
                t = truth[i] if truth is not None else None
                value = metrics.get(metric) if metrics is not None else None
                m = int(value) if value is not None else None
                matches = None if m is None or t is None else m == t
                if matches is None:
                    why = "no DBIRTH of it received" if metrics is None else "no value received"
                    if t is None:
                        why = "the plant has no record of it"
                    unknown.append(f"{wu.code} {quantity} ({why})")
                rows.append(
                    MirrorRow(
                        work_unit=wu.code, quantity=quantity, twin=t, mirror=m, matches=matches
                    )
                )
        differ = [
            f"{r.work_unit} {r.quantity}: twin {r.twin}, mirror {r.mirror}"
            for r in rows
            if r.matches is False
        ]
        lag = (
            ""
            if settled
            else f"; the subscriber had not taken every message in order within {timeout:g} s"
        )
        if differ:
            verdict = "failed"
            detail = f"{len(differ)} of {len(rows)} counters differ: " + "; ".join(differ[:5])
        elif unknown:
            verdict = "not_checked"
            detail = (
                f"{len(rows) - len(unknown)} of {len(rows)} counters equal; the subscriber "
                "holds no value for " + "; ".join(unknown[:5])
            )
        else:
            verdict = "passed"
            detail = (
                f"all {len(rows)} counters of {len(rows) // len(COUNTERS)} work units equal "
                "the twin's"
            )
        pub_stats = self.publisher.stats() if self.publisher is not None else {}
        return MirrorReport(
            protocol="sparkplug",
            path=f"{PATH}, group {self.group} at {self.endpoint}",
            verdict=verdict,
            detail=detail + lag,
            rows=rows,
            published={k: int(v) for k, v in pub_stats.items()},
            received=self.subscriber.stats() if self.subscriber is not None else {},
        )

    def close(self) -> None:
        """Stop the edge nodes (NDEATH each), the subscriber, the loop, the broker."""
        loop, pub = self._loop, self.publisher
        if loop is not None and loop.is_running():
            if pub is not None:
                loop.call_soon_threadsafe(pub.stop)
                if self._pump is not None:
                    with contextlib.suppress(Exception):
                        self._pump.result(10)
                with contextlib.suppress(Exception):
                    pub.close()
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
        self._loop = None
        self.publisher = None
        if self.subscriber is not None:
            self.subscriber.close()
            self.subscriber = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
