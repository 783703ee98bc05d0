"""The raw ceiling: a bare asyncua server writing to a bare asyncua client subscription.

This is the narrowest pipe of the data flow (PERFORMANCE-NOTES.md), measured with nothing
of mestwin in it, so that the product figure (twin -> server -> connector -> MES) can be
put beside it as a ratio. The server writes ``N`` Double nodes with
``Server.write_attribute_value`` and prebuilt ``DataValue`` objects (the known fast path);
the client runs in another process (as any real client would), makes one
``subscribe_data_change`` over all nodes with queue size 0 (the server's maximum queue) and
a handler that only counts. Each step asks for a higher rate; a step is *clean* when every
value written arrived (``received == written``); a step is *saturated* when the server could
not write at the asked rate (its event loop is full). The ceiling is the highest rate
delivered without loss; a lossy or saturated step is run once more, and the run stops
when it fails again.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PUBLISHING_INTERVAL_MS = 100.0
WRITE_TICK_S = 0.01
WRITE_SLICE = 500
KEEP_PACE = 0.95
"""A step whose writer achieved less than this share of the asked rate is saturated."""


def quiet_asyncua() -> None:
    """asyncua logs whole publish results at INFO: keep it at WARNING (PERFORMANCE-NOTES)."""
    for name in ("asyncua", "asyncua.server", "asyncua.client", "asyncua.common"):
        logging.getLogger(name).setLevel(logging.WARNING)


def free_port() -> int:
    """A free TCP port on the loopback interface (tests and benchmarks never use fixed ones)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process and its children alive now (Linux /proc;
    0 where it cannot be read)."""
    if pid is None:
        return 0.0
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (OSError, ValueError, IndexError):
        pass
    return total


@dataclass(frozen=True)
class RawStep:
    """One rate step of the ceiling run."""

    asked_per_s: float
    written: int
    received: int
    write_seconds: float
    drain_seconds: float
    cpu_s: tuple[float, float] = (0.0, 0.0)
    """CPU seconds of the server's and the client's processes over the step."""

    def cpu_ms_per_1000(self) -> tuple[float, float]:
        """CPU milliseconds per 1,000 notifications: server, client."""
        k = self.written / 1000
        return (self.cpu_s[0] / k * 1000, self.cpu_s[1] / k * 1000) if k else (0.0, 0.0)

    @property
    def achieved_per_s(self) -> float:
        """Values the server wrote per second of writing."""
        return self.written / self.write_seconds if self.write_seconds > 0 else 0.0

    @property
    def lost(self) -> int:
        return max(0, self.written - self.received)

    @property
    def clean(self) -> bool:
        """Every value written was delivered."""
        return self.lost == 0

    @property
    def saturated(self) -> bool:
        """The writer could not keep the asked pace."""
        return self.achieved_per_s < KEEP_PACE * self.asked_per_s


@dataclass(frozen=True)
class RawResult:
    """All steps of one ceiling run; ``ceiling_per_s`` is the best rate delivered without loss."""

    nodes: int
    steps: tuple[RawStep, ...]

    @property
    def ceiling_per_s(self) -> float:
        clean = [s.achieved_per_s for s in self.steps if s.clean]
        return max(clean) if clean else 0.0


class _CountingHandler:
    """Subscription handler that only counts (no I/O, PERFORMANCE-NOTES)."""

    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.count += 1

    def status_change_notification(self, status: Any) -> None:
        """A status change (the session closing) is not a notification to count."""


def _counting_subscription(session: Any, params: Any, handler: _CountingHandler) -> Any:
    """A subscription that counts the lean decoder's data changes (``lean``), as the
    connector's subscription takes them, and asyncua's own notifications alike."""
    from asyncua import ua
    from asyncua.common.subscription import Subscription

    from mes_core.connectors.opcua.publish import DataChanges

    class CountingSubscription(Subscription):
        async def publish_callback(self, publish_result: ua.PublishResult) -> None:
            for notification in publish_result.NotificationMessage.NotificationData or ():
                if isinstance(notification, DataChanges):
                    handler.count += len(notification.items)
                elif isinstance(notification, ua.DataChangeNotification):
                    handler.count += len(notification.MonitoredItems)

    return CountingSubscription(session, params, handler)


async def _client_main(url: str, ns_uri: str, nodes: int, conn: Any, lean: bool) -> None:
    from asyncua import Client, ua

    quiet_asyncua()
    client = Client(url, timeout=30)
    async with client:
        ns = await client.get_namespace_index(ns_uri)
        handler = _CountingHandler()
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=PUBLISHING_INTERVAL_MS,
            RequestedLifetimeCount=10_000,
            RequestedMaxKeepAliveCount=100,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        if lean:
            # The connector's own fast path: its lean publish decoding on this session.
            from mes_core.connectors.opcua.publish import lean_publish

            session = client.uaclient.session
            lean_publish(session)
            sub = _counting_subscription(session, params, handler)
            await sub.init()
        else:
            sub = await client.create_subscription(params, handler)
        targets = [client.get_node(ua.NodeId(ua.Int32(i + 1), ua.Int16(ns))) for i in range(nodes)]
        await sub.subscribe_data_change(targets, queuesize=0, sampling_interval=ua.Double(0.0))
        # The initial value of every node arrives once on subscribing: let it, then zero.
        await _settle(handler)
        handler.count = 0
        conn.send("ready")
        while True:
            # Commands from the parent: "count" (report after the flow settles) or "stop".
            while not conn.poll():
                await asyncio.sleep(0.02)
            cmd = conn.recv()
            if cmd == "stop":
                break
            started = time.perf_counter()
            await _settle(handler)
            conn.send((handler.count, time.perf_counter() - started))
            handler.count = 0


async def _settle(handler: _CountingHandler, quiet_s: float = 0.6, limit_s: float = 30.0) -> None:
    """Wait until no notification arrived for ``quiet_s`` (or ``limit_s`` passed)."""
    deadline = time.perf_counter() + limit_s
    last = -1
    while time.perf_counter() < deadline:
        if handler.count == last:
            return
        last = handler.count
        await asyncio.sleep(quiet_s)


def _client_process(url: str, ns_uri: str, nodes: int, conn: Any, lean: bool) -> None:
    asyncio.run(_client_main(url, ns_uri, nodes, conn, lean))


async def run_raw_ceiling(
    nodes: int = 2000,
    rates: tuple[float, ...] = (5_000, 10_000, 20_000, 40_000, 80_000),
    seconds: float = 3.0,
    stop_early: bool = True,
    immutable: bool = False,
    lean: bool = False,
) -> RawResult:
    """Run the ceiling: a bare server here, a bare client in another process, rising rates.

    ``immutable``: write DataValues whose deep copy is themselves (what the twin's
    publisher does), sparing asyncua's per-monitored-item deep copy of each value.
    ``lean``: asyncua's data change callback builds each notification once, encodes it
    at once, and values are written through ``value_writer``
    (``twin.opcua.fastpath.lean_notifications``, what the twin's servers run with), and
    the client decodes publish responses with the connector's lean decoder
    (``mes_core.connectors.opcua.publish``) and counts them as they come; otherwise
    asyncua's own code runs on both sides, whatever was installed before.
    """
    from asyncua import ua

    from twin.opcua.fastpath import (
        ImmutableDataValue,
        lean_notifications,
        lean_notifications_active,
        plain_notifications,
    )

    make_value: Any = ImmutableDataValue if immutable else ua.DataValue
    was_lean = lean_notifications_active()
    if lean:
        lean_notifications()
    else:
        plain_notifications()
    try:
        return await _run_raw(nodes, rates, seconds, stop_early, make_value, lean)
    finally:
        if was_lean:
            lean_notifications()
        else:
            plain_notifications()


async def _run_raw(
    nodes: int,
    rates: tuple[float, ...],
    seconds: float,
    stop_early: bool,
    make_value: Any,
    lean: bool,
) -> RawResult:
    from asyncua import Server, ua

    from twin.opcua.fastpath import value_writer

    quiet_asyncua()
    ns_uri = "urn:mestwin:bench:raw"
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}"
    server = Server()
    await server.init()
    server.set_endpoint(url)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace(ns_uri)
    folder = await server.nodes.objects.add_folder(
        ua.NodeId(ua.String("Raw"), ua.Int16(ns)), ua.QualifiedName("Raw", ns)
    )
    node_ids = []
    for i in range(nodes):
        nid = ua.NodeId(ua.Int32(i + 1), ua.Int16(ns))
        await folder.add_variable(nid, ua.QualifiedName(f"V{i}", ns), 0.0, ua.VariantType.Double)
        node_ids.append(nid)
    steps: list[RawStep] = []
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    async with server:
        proc = ctx.Process(
            target=_client_process, args=(url, ns_uri, nodes, child, lean), daemon=True
        )
        proc.start()
        try:
            await _wait_for(parent, "ready", 60.0)
            # Prebuilt values: two per node, alternated, so every write is a change.
            prebuilt = [
                (
                    make_value(ua.Variant(float(i), ua.VariantType.Double)),
                    make_value(ua.Variant(float(i) + 0.5, ua.VariantType.Double)),
                )
                for i in range(nodes)
            ]
            flip = [0] * nodes
            # The twin's publisher writes through this too (asyncua's own without ``lean``).
            write = value_writer(server)
            # A step that fails (saturated or lossy) is run once more before the climb
            # stops: on a shared machine one stall must not end it at its first step.
            queue = [(rate, 1) for rate in rates]
            while queue:
                rate, attempt = queue.pop(0)
                written = 0
                cpu0 = (time.process_time(), cpu_seconds(proc.pid))
                started = time.perf_counter()
                end = started + seconds
                i = 0
                while True:
                    now = time.perf_counter()
                    if now >= end:
                        break
                    # Writes due by now (by the clock, so a late wake-up is caught up),
                    # at most one slice at a time so publishing keeps running.
                    k = min(int(rate * (now - started)) - written, WRITE_SLICE)
                    for _ in range(k):
                        flip[i] ^= 1
                        await write(node_ids[i], prebuilt[i][flip[i]])
                        i = (i + 1) % nodes
                    written += max(k, 0)
                    await asyncio.sleep(WRITE_TICK_S if k < WRITE_SLICE else 0)
                write_s = time.perf_counter() - started
                parent.send("count")
                received, drain = await _recv(parent, 60.0)
                cpu = (time.process_time() - cpu0[0], cpu_seconds(proc.pid) - cpu0[1])
                step = RawStep(rate, written, int(received), write_s, float(drain), cpu)
                steps.append(step)
                if stop_early and (step.saturated or not step.clean):
                    if attempt == 1:
                        queue.insert(0, (rate, 2))
                        continue
                    break
        finally:
            parent.send("stop")
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.terminate()
    return RawResult(nodes, tuple(steps))


async def _recv(conn: multiprocessing.connection.Connection, timeout: float) -> Any:
    deadline = time.perf_counter() + timeout
    while not conn.poll():
        if time.perf_counter() > deadline:
            raise TimeoutError("the benchmark client process did not answer")
        await asyncio.sleep(0.02)
    return conn.recv()


async def _wait_for(conn: multiprocessing.connection.Connection, what: str, timeout: float) -> None:
    got = await _recv(conn, timeout)
    if got != what:
        raise RuntimeError(f"benchmark client said {got!r}, expected {what!r}")
