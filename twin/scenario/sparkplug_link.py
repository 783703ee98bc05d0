"""The scenario run's equipment link over MQTT Sparkplug B (issue 16).

twin engine -> :class:`~twin.sparkplug.edge.SparkplugPublisher` (one edge node per line,
asyncio loop in a thread of its own) -> a Mosquitto broker of the run's own (a child
process on a free port, so a broker restart touches nothing else) -> :class:`TcpProxy`
(the fault proxy, between the broker and the MES) -> ``mestwin connect --sparkplug`` (the
MES's host application, a child process) -> MES batch ingest.

Like the OPC UA link (both are :class:`~twin.scenario.connector_link.ConnectorLink`:
held calls, in-process check sampling, the connector process, the faults' shape and the
waits) it holds the engine's observer calls until the runner delivers them. "Delivered"
means ingested by the MES, in Sparkplug's own terms: every held call published, and for
every edge node the host follows the same session (the NBIRTH's timestamp) and has taken
in order as many messages since that birth as the edge node published (``mestwin connect
--status``: ``sparkplug_nodes``), and ``POST /flush`` answers that all it received is
sent and ingested.

Faults: ``opcua_drop`` cuts the proxy (the MES's MQTT session drops; it reconnects and
asks every edge node for a rebirth); ``opcua_server_restart`` restarts the broker (every
session drops; the edge nodes reconnect with a new ``bdSeq`` and birth). What was
published is first delivered, the engine's changes are held meanwhile and published
once the host is back, so nothing a QoS 0 message carries is published into the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mes_core.client.local import stop_process_group
from plant_models.schema import PlantModel
from twin.scenario.connector_link import BARRIER_TIMEOUT_S, FLUSH_WAIT_S, ConnectorLink
from twin.scenario.link import Sampling
from twin.scenario.mes_process import free_port
from twin.scenario.opcua_link import OpcUaLinkError
from twin.scenario.proxy import TcpProxy
from twin.sparkplug.edge import SparkplugPublisher

BROKER_START_S = 10.0


class SparkplugLinkError(OpcUaLinkError):
    """The Sparkplug link could not be set up (broker, edge nodes, proxy or host)."""


class Broker:
    """A Mosquitto broker of the run's own on ``127.0.0.1:<port>``, restartable."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if exe is None:
            raise SparkplugLinkError("link: sparkplug needs Mosquitto (the mosquitto command)")
        self.exe = exe
        self.port = port or free_port()
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            # QoS 0 (DDATA) to a client with 1000 packets waiting is dropped by default:
            # the run's own consumers take every message however the twin bursts.
            "max_queued_messages 0\n",
            encoding="utf-8",
        )
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + BROKER_START_S
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SparkplugLinkError(f"Mosquitto did not listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        stop_process_group(self.proc, 10)
        self.proc = None


class SparkplugLink(ConnectorLink):
    """``EquipmentLink`` over Sparkplug edge nodes, a broker, the fault proxy and the
    MES's host application (see the module doc)."""

    name = "Sparkplug B (twin edge nodes -> Mosquitto -> fault proxy -> mestwin connect)"
    short_name = "Sparkplug link"
    start_error = SparkplugLinkError
    connector_name = "the host application"
    stop_timeout = 20.0

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
        self.group = f"mestwin-{model.plant.code}".replace("/", "-").replace("+", "-")
        self.broker: Broker | None = None
        self.sparkplug: SparkplugPublisher | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> SparkplugLink:
        """Broker, proxy and host first, then the edge nodes: the host is online and
        subscribed before the first birth (so it needs no rebirth to begin)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(self.workdir)
        self.broker.start()
        self.endpoint = f"mqtt://127.0.0.1:{self.broker.port}"
        self.proxy = TcpProxy("127.0.0.1", self.broker.port).start()
        self._start_connector(
            [
                "--sparkplug",
                f"mqtt://127.0.0.1:{self.proxy.port}",
                "--group",
                self.group,
                "--host-id",
                f"mes-{self.group}",
            ],
            "mestwin connect --sparkplug did not come online",
            timeout,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="twin-sparkplug", daemon=True
        )
        self._thread.start()
        try:
            self._run(self._start_edge_nodes(), timeout)
        except Exception as exc:
            self.close()
            raise SparkplugLinkError(f"the twin's edge nodes did not start: {exc}") from exc
        return self

    async def _start_edge_nodes(self) -> None:
        self.sparkplug = SparkplugPublisher(
            self.model, self.endpoint, self.group, start=self.model.plant.start
        )
        await self.sparkplug.start()
        self.publisher = self.sparkplug  # the held calls' target
        self._pump = asyncio.ensure_future(self.sparkplug.run())

    async def _stop_twin(self) -> None:
        if self.sparkplug is not None:
            self.sparkplug.stop()
            if self._pump is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._pump, 10)
            await asyncio.to_thread(self.sparkplug.close)
            self.sparkplug = None

    def close(self) -> None:
        """Stop the host (SIGTERM, then SIGKILL), the proxy, the edge nodes, the broker."""
        super().close()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    # -- faults (``ConnectorLink.inject``): ``opcua_drop`` cuts the proxy (the host's
    # session), ``opcua_server_restart`` stops the broker. What was published is
    # delivered first (QoS 0: a message published into a gap is gone).

    def _before_fault(self) -> None:
        self._settle(BARRIER_TIMEOUT_S)

    def _twin_server_down(self) -> None:
        assert self.broker is not None
        self.broker.stop()

    def _twin_server_up(self) -> None:
        assert self.broker is not None
        self.broker.start()

    def _after_fault(self) -> None:
        # Nothing held is published before the host follows every edge node's current
        # session (after a broker restart the edge nodes are born anew): a DDATA the
        # host cannot place would be dropped until a rebirth, with the changes it carried.
        self._dirty = True
        if not self._settle(BARRIER_TIMEOUT_S):
            self.last_error = "the host did not follow the edge nodes' sessions within 60 s"

    # -- delivery -------------------------------------------------------------------------

    def _watermark(self, query: str, wait: float) -> dict[str, Any]:
        return {}  # the host keeps no OPC UA watermark: its own settle tells

    def _settle_once(self, publisher: Any, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self._edge_nodes_idle():
                wait = min(FLUSH_WAIT_S, max(deadline - time.monotonic(), 0.0))
                flushed = time.monotonic()
                s = self._flush(min(wait, 0.5))
                self.flush_seconds += time.monotonic() - flushed
                self._take(s)
                if (
                    s.get("connected")
                    and int(s.get("spooled", 1)) == 0
                    and int(s.get("produced", 0)) == int(s.get("sent", -1))
                    and self._host_has_everything(s.get("sparkplug_nodes") or {})
                ):
                    self._dirty = False
                    return True
            if self.proc is not None and self.proc.poll() is not None:
                self.last_error = f"mestwin connect exited ({self.proc.returncode})"
                return False
            time.sleep(0.01)
        return False

    def _edge_nodes_idle(self) -> bool:
        sp = self.sparkplug
        return (
            sp is not None
            and sp.pending() == 0
            and all(n.connected and not n.need_birth for n in sp.nodes.values())
        )

    def _host_has_everything(self, seen: dict[str, Any]) -> bool:
        """The host follows every edge node's current session and took all it published."""
        sp = self.sparkplug
        if sp is None:
            return False
        for node in sp.nodes.values():
            host = seen.get(f"{node.group}/{node.node}")
            if host is None or host != [node.birth_timestamp, node.since_birth, True]:
                return False
        return True


def sparkplug_link_for(
    *,
    plant: PlantModel,
    mes_url: str,
    api_key: str,
    workdir: Path,
    state: Any,
    sim: Any,
    characteristics: dict[tuple[str, str], Sampling],
) -> SparkplugLink:
    """The Sparkplug link of a scenario run (``link: sparkplug``), started and registered
    as the engine's observer."""
    link = SparkplugLink(
        plant,
        mes_url=mes_url,
        api_key=api_key,
        workdir=workdir,
        characteristics=characteristics,
        clock=sim.now,
        notes=state.notes,
        is_down=lambda: bool(state.mes_down),
    ).start()
    sim.add_observer(link)
    sim.subscribe(link.on_ledger)
    state.notes.append(
        f"Equipment traffic went over MQTT Sparkplug B: the twin's edge nodes (group "
        f"{link.group}, one per line) on a broker of the run's own at {link.endpoint}, a "
        f"fault proxy, and the MES's host application (mestwin connect --sparkplug, log "
        f"{link.log_path.name}); link faults cut the proxy or restart the broker."
    )
    return link
