"""``mestwin bench sparkplug``: the product (twin -> Sparkplug B -> host -> MES) beside a
bare MQTT pipe through the same broker, in one run on this machine.

**Ceiling.** A bare paho-mqtt client publishes prebuilt Sparkplug DDATA payloads (the
product's metrics per message, the same encoding), QoS 0, paced at rising rates, to a
bare paho-mqtt subscriber in another process that only counts them; the ceiling is the
highest rate of metric changes received without a loss (QoS 0: a broker that cannot
keep up drops).

**Product**, at rising rates: a generated plant (``twin.opcua.bench.bench_plant``: 10
process values per work unit, sampled at the period that makes the asked rate, plus the
PackML state and counter changes of its production) paced at speed 1, published by the
twin's edge nodes (one per line) to the broker; the MES's host application
(``mestwin connect --sparkplug``) and the MES (``mestwin serve``, on a fresh PostgreSQL
database when one is configured, else SQLite) run as processes of their own. A step is
*clean* when the host took in order every message each edge node published (its
``sparkplug_nodes`` on ``--stats`` equal the edge nodes' own figures: same birth, as
many messages since) with no rebirth asked, every metric change it received became
events that the MES persisted (``sent == produced``), all within ``MAX_LAG_S`` of the
engine stopping. The climb stops at the first step that is not clean. The ratio: the best
clean product rate over the ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from sparkplug_b.payload import DataType, Payload, set_value
from sparkplug_b.topic import state_topic
from twin.opcua.bench import MAX_LAG_S, _Mes, _mestwin, _stats, bench_plant, climb
from twin.opcua.bench_raw import cpu_seconds
from twin.sparkplug.edge import SparkplugPublisher, broker_address

DRAIN_LIMIT_S = 20.0


@dataclass(frozen=True)
class CeilingStep:
    asked_per_s: float
    metrics_per_message: int
    published: int
    received: int
    seconds: float

    @property
    def per_s(self) -> float:
        """Metric changes per second received (over the publishing time)."""
        return self.received * self.metrics_per_message / self.seconds if self.seconds else 0.0

    @property
    def lost(self) -> int:
        return self.published - self.received


def bare_subscriber(url: str, topic: str, expected: int, idle: float) -> None:
    """Count messages on ``topic`` until ``expected`` arrived or none came for ``idle``
    seconds; print ``ready`` once subscribed, then how many arrived."""
    host, port = broker_address(url)
    state = {"n": 0, "last": time.monotonic()}
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-sub-{uuid.uuid4()}")

    def on_message(c: Any, u: Any, msg: Any) -> None:
        state["n"] += 1
        state["last"] = time.monotonic()
        if state["n"] >= expected:
            done.set()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect(host, port)
    client.subscribe(topic, qos=0)
    client.loop_start()
    subscribed.wait(10)
    print("ready", flush=True)
    while not done.wait(0.1):
        if state["n"] and time.monotonic() - state["last"] > idle:
            break
        if not state["n"] and time.monotonic() - state["last"] > 60:
            break
    client.loop_stop()
    print(state["n"], flush=True)


def _ceiling_step(url: str, per_message: int, rate: float, seconds: float) -> CeilingStep:
    host, port = broker_address(url)
    topic = f"spBv1.0/bare-{uuid.uuid4().hex[:8]}/DDATA/N/D"
    now = int(time.time() * 1000)
    payloads = []
    for i in range(64):
        p = Payload(timestamp=now, seq=i)
        for m in range(per_message):
            metric = p.metrics.add(name=f"ProcessValues/V{m:02d}", timestamp=now + i)
            set_value(metric, DataType.Double, 50.0 + m / 7 + i / 13)
        payloads.append(p.SerializeToString())
    messages = int(rate * seconds / per_message)
    sub = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from twin.sparkplug.bench import bare_subscriber; "
            "bare_subscriber(sys.argv[1], sys.argv[2], int(sys.argv[3]), 2.0)",
            url,
            topic,
            str(messages),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sub.stdout is not None
    if sub.stdout.readline().strip() != "ready":
        sub.kill()
        raise RuntimeError("the bare subscriber did not subscribe")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-pub-{uuid.uuid4()}")
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    per_slice = rate / per_message / 100  # messages per 10 ms
    started = time.monotonic()
    sent = 0
    while sent < messages:
        due = min(messages, int((time.monotonic() - started) * 100 * per_slice) + 1)
        while sent < due:
            client.publish(topic, payloads[sent % 64], qos=0)
            sent += 1
        time.sleep(0.01)
    ran = time.monotonic() - started
    out, _ = sub.communicate(timeout=120)
    client.disconnect()
    client.loop_stop()
    return CeilingStep(rate, per_message, messages, int(out.strip().splitlines()[-1]), ran)


def run_ceiling(
    url: str, per_message: int, rates: tuple[float, ...], seconds: float = 3.0
) -> list[CeilingStep]:
    """The bare MQTT pipe at rising rates (metric changes/s), until a step loses."""
    steps: list[CeilingStep] = []
    for rate in rates:
        step = _ceiling_step(url, per_message, rate, seconds)
        steps.append(step)
        if step.lost:
            break
    return steps


@dataclass(frozen=True)
class ProductStep:
    asked_per_s: float
    seconds: float
    metrics: int
    messages: int
    received: int
    messages_missing: int
    rebirths: int
    produced: int
    persisted: int
    lag_s: float
    cpu_s: tuple[float, float, float]

    @property
    def per_s(self) -> float:
        return self.metrics / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.persisted / (self.seconds + self.lag_s) if self.seconds > 0 else 0.0

    @property
    def lost(self) -> int:
        return (
            max(0, self.metrics - self.received)
            + self.messages_missing
            + self.rebirths
            + max(0, self.produced - self.persisted)
        )

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.lag_s <= MAX_LAG_S

    def cpu_ms_per_1000(self) -> tuple[float, ...]:
        k = self.metrics / 1000
        return tuple(c * 1000 / k for c in self.cpu_s) if k else (0.0, 0.0, 0.0)


def _missing(publisher: SparkplugPublisher, seen: dict[str, Any]) -> int:
    """Messages the edge nodes published in their current session that the host has not
    taken (all of them when it follows another birth)."""
    missing = 0
    for node in publisher.nodes.values():
        host = seen.get(f"{node.group}/{node.node}")
        if host is None or host[0] != node.birth_timestamp or not host[2]:
            missing += node.since_birth + 1
        else:
            missing += max(0, node.since_birth - int(host[1]))
    return missing


async def _product_step(
    rate: float, seconds: float, work_units: int, values: int, mes: _Mes, key: str, folder: Path,
    broker: str,
) -> ProductStep:  # fmt: skip
    from twin.engine import Engine

    model = bench_plant(work_units, values, rate)
    group = f"bench-{uuid.uuid4().hex[:8]}"
    stats = folder / f"stats-{rate:g}.json"
    host = subprocess.Popen(
        _mestwin(
            "connect", "--sparkplug", broker, "--group", group, "--host-id", f"h-{group}",
            "--mes", mes.url, "--spool", str(folder / f"spool-{rate:g}.sqlite"),
            "--stats", str(stats), "--no-dispatch",
        ),
        env={**os.environ, "MESTWIN_API_KEY": key},
        stdout=subprocess.DEVNULL,
        stderr=(folder / f"host-{rate:g}.log").open("wb"),
        start_new_session=True,
    )  # fmt: skip
    engine = Engine(model, 0, speed=1.0, auto_dispatch=False)
    publisher = SparkplugPublisher(model, broker, group, start=model.plant.start)
    engine.add_observer(publisher)
    pump: asyncio.Task[None] | None = None
    try:
        deadline = time.monotonic() + 60
        while not _stats(stats).get("connected"):
            if time.monotonic() > deadline or host.poll() is not None:
                raise RuntimeError(f"the host application did not connect; see {folder}")
            await asyncio.sleep(0.1)
        await publisher.start()
        pump = asyncio.create_task(publisher.run())
        while _missing(publisher, _stats(stats).get("sparkplug_nodes") or {}):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the host did not take the births; see {folder}")
            await asyncio.sleep(0.1)
        s0 = _stats(stats)
        metrics0 = publisher.stats()["metrics"]
        messages0 = publisher.stats()["messages"]
        assert mes.proc is not None
        pids = (host.pid, mes.proc.pid)
        cpu0 = (time.process_time(), *(cpu_seconds(p) for p in pids))
        halt = threading.Event()

        def drive() -> None:
            while not halt.is_set():
                engine.run_until(engine.now + 0.1)

        thread = threading.Thread(target=drive, name="bench-engine", daemon=True)
        started = time.monotonic()
        thread.start()
        await asyncio.sleep(seconds)
        halt.set()
        await asyncio.to_thread(thread.join, 30)
        ran = time.monotonic() - started
        publisher.flush()
        metrics = publisher.stats()["metrics"] - metrics0
        messages = publisher.stats()["messages"] - messages0
        stopped = time.monotonic()
        last: dict[str, Any] = {}
        while True:
            last = _stats(stats)
            missing = _missing(publisher, last.get("sparkplug_nodes") or {})
            if not missing and last.get("sent", 0) == last.get("produced", -1):
                break
            if time.monotonic() - stopped > DRAIN_LIMIT_S:
                break
            await asyncio.sleep(0.05)
        lag = time.monotonic() - stopped
        cpu1 = (time.process_time(), *(cpu_seconds(p) for p in pids))
        used = tuple(b - a for a, b in zip(cpu0, cpu1, strict=True))
        return ProductStep(
            asked_per_s=rate,
            seconds=ran,
            metrics=metrics,
            messages=messages,
            received=int(last.get("received", 0)) - int(s0.get("received", 0)),
            messages_missing=missing,
            rebirths=int(last.get("sparkplug_rebirths_requested", 0)),
            produced=int(last.get("produced", 0)),
            persisted=int(last.get("sent", 0)),
            lag_s=lag,
            cpu_s=(used[0], used[1], used[2]),
        )
    finally:
        publisher.stop()
        if pump is not None:
            await pump
        await asyncio.to_thread(publisher.close)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            host.wait(15)
        _clear_retained(broker, state_topic(f"h-{group}"))


def _clear_retained(url: str, topic: str) -> None:
    """Leave no retained STATE of the bench's host behind on a shared broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"clear-{uuid.uuid4()}")
    with contextlib.suppress(OSError, RuntimeError, ValueError):
        client.connect(*broker_address(url))
        client.loop_start()
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()


async def run_product(
    broker: str,
    rates: tuple[float, ...],
    seconds: float,
    work_units: int,
    values: int,
    echo: Any = print,
    budget_s: float = float("inf"),
) -> tuple[list[ProductStep], str]:
    """Rising rates until a step loses or lags; the steps and the database kind."""

    async def step(rate: float, mes: _Mes, key: str, folder: Path) -> ProductStep:
        return await _product_step(rate, seconds, work_units, values, mes, key, folder, broker)

    return await climb(
        "sparkplug", rates, step, format_step, echo, budget_s, unit="metric changes/s"
    )


def format_step(s: ProductStep) -> str:
    twin, host, mes = s.cpu_ms_per_1000()
    flag = "" if s.clean else ("  LOSS" if s.lost else "  LAG")
    return (
        f"  asked {s.asked_per_s:>7.0f}/s  published {s.per_s:>7.0f} metric changes/s "
        f"({s.messages} messages)  host received {s.received}/{s.metrics}, messages "
        f"missing {s.messages_missing}, rebirths {s.rebirths}  events {s.persisted}/"
        f"{s.produced} persisted ({s.events_per_s:.0f}/s)  lag {s.lag_s:.2f} s{flag}\n"
        f"      CPU ms per 1,000 metric changes: twin {twin:.0f}, host {host:.0f}, MES {mes:.0f}"
    )
