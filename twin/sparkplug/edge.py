"""The twin's plant as Sparkplug B 3.0 edge nodes: one per line, one device per work unit.

``SparkplugPublisher`` is a ``PlantObserver`` (``twin.hooks``), like the OPC UA server's
``OpcUaPublisher``: the engine calls it inline and it only appends changes to a queue; a
pump task in the asyncio loop turns them into MQTT messages. Per line an ``EdgeNode``
holds its own MQTT session (paho-mqtt, its network thread), since each edge node has its
own will. What goes on the wire (Eclipse Sparkplug 3.0.0):

- the will, set before every connect, is the ``NDEATH`` with this session's ``bdSeq``
  (QoS 1, not retained; 7.1.2); ``bdSeq`` goes 0..255 and moves on at every new session;
- on connect: ``NBIRTH`` (``seq`` 0, ``bdSeq``, ``Node Control/Rebirth``), then one
  ``DBIRTH`` per work unit with every metric, its data type, value (``is_null`` while a
  process value was never sampled), timestamp and, for process values, the engineering
  unit and range as properties (``engUnit``, ``engLow``, ``engHigh``; ``characteristic``);
- ``DDATA`` on change, QoS 0, the metrics of one work unit drained together; every
  message after the ``NBIRTH`` carries the next ``seq`` (0..255, wrapping);
- an ``NCMD`` whose ``Node Control/Rebirth`` is true: births again (same ``bdSeq``);
- a ``DCMD`` (spec 3.0, 6.4.8; every metric it may write is declared in the DBIRTH) is the
  OPC UA model's methods (ISA-95 Job Control, ``twin.opcua.server``): ``JobControl/
  StoreAndStart`` true with ``JobControl/StoreAndStart/jobOrderId`` (String),
  ``.../productId`` (String) and ``.../quantity`` (Int32) in the same payload, or
  ``JobControl/Stop`` or ``JobControl/Reset`` true. The arguments are checked as the
  OPC UA methods check theirs, the command goes to the engine's ``PlantControl``, and what
  it did comes back as ``DDATA`` of ``JobControl/Result``: ``"<command>[ <jobOrderId>]:
  <status>"`` with the OPC UA status name the method would have answered (``Good``,
  ``BadArgumentsMissing``, ``BadTypeMismatch``, ``BadOutOfRange``, ``BadInvalidArgument``
  and why, ``BadNotSupported`` without an engine, ``BadTimeout``);
- with a primary host application (``primary_host``, spec 3.0, 5.x session establishment):
  subscribe to its ``STATE`` and birth only once it says online; when it says offline
  (a STATE no older than the last one), publish the NDEATH, disconnect and connect
  again, and wait for it to be online. Changes queue up meanwhile, and follow the births.

Births always carry what was last *published* (not what is still queued), and the queue
follows them as ``DDATA``: a host never sees a cumulative counter go back. While the
broker is away changes queue up, and the session that comes back births first.

Device metrics: the PackML tags of the OPC UA model (``State``, ``StateName``,
``UnitMode``, ``StopReason``, ``ProdProcessedCount``, ``ProdDefectiveCount``,
``ProdConsumedCount``, ``CurMachSpeed``, ``MachSpeed``, ``JobOrderID``, ``MaterialLotID``,
``ProductID``), ``ProcessValues/<name>`` and ``Alarms/<alarm>/{Severity,Message,Active}``
(``Active`` is sent at every raise and clear: an alarm is an occurrence, not a level).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from plant_models.batch import PHASE_NUMBER
from plant_models.schema import PlantModel, WorkUnit
from sparkplug_b.encoding import MetricCodec, data_payload, varint
from sparkplug_b.payload import DataType, Payload, metric_value, property_set, set_value
from sparkplug_b.topic import BD_SEQ, REBIRTH, Topic, check_id, parse_state, state_topic
from twin.hooks import (
    ALARM_BLOCKED,
    ALARM_BREAKDOWN,
    ALARM_STARVED,
    PackMLState,
    PlantControl,
    product_ids,
)

log = logging.getLogger(__name__)

PUMP_IDLE_S = 0.01
"""How long the pump sleeps when nothing is queued: bounds the latency it adds."""
MAX_METRICS_PER_MESSAGE = 500
PROCESS_VALUES = "ProcessValues/"
ALARMS = (ALARM_BREAKDOWN, ALARM_BLOCKED, ALARM_STARVED)

_STATE_NAMES = {s.value: s.name.title() for s in PackMLState}
_MODE_OF_STATE = {"maintenance": "Maintenance"}

# (metric, data type, the OPC UA model's initial value): the OPC UA model's tags.
TAGS: tuple[tuple[str, DataType, Any], ...] = (
    ("State", DataType.Int32, int(PackMLState.STOPPED)),
    ("StateName", DataType.String, "Stopped"),
    ("UnitMode", DataType.String, "Production"),
    ("StopReason", DataType.String, ""),
    ("ProdProcessedCount", DataType.Int32, 0),
    ("ProdDefectiveCount", DataType.Int32, 0),
    ("ProdConsumedCount", DataType.Int32, 0),
    ("CurMachSpeed", DataType.Double, 0.0),
    ("MachSpeed", DataType.Double, 0.0),
    ("JobOrderID", DataType.String, ""),
    ("MaterialLotID", DataType.String, ""),
    ("ProductID", DataType.String, ""),
)


JOB_CONTROL = "JobControl/"
STORE_AND_START = "JobControl/StoreAndStart"
STOP = "JobControl/Stop"
RESET = "JobControl/Reset"
RESULT = "JobControl/Result"
ARGUMENTS: tuple[tuple[str, DataType], ...] = (
    (STORE_AND_START + "/jobOrderId", DataType.String),
    (STORE_AND_START + "/productId", DataType.String),
    (STORE_AND_START + "/quantity", DataType.Int32),
)
"""StoreAndStart's arguments, as the OPC UA method's (``twin.opcua.infomodel``)."""
COMMANDS = {STORE_AND_START: "StoreAndStart", STOP: "Stop", RESET: "Reset"}
COMMAND_TIMEOUT_S = 10.0

Command = tuple[str, str, dict[str, Any]]
"""(device, command name, the DCMD's metrics by name)"""


def broker_address(url: str) -> tuple[str, int]:
    """(host, port) of ``mqtt://HOST[:PORT]`` (1883 by default); ``ValueError`` else."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        raise ValueError(f"broker {url!r}: expected mqtt://HOST[:PORT]")
    return parsed.hostname, parsed.port or 1883


@dataclass
class MetricDef:
    name: str
    datatype: DataType
    initial: Any
    properties: dict[str, str | float] = field(default_factory=dict)


def device_metrics(wu: WorkUnit) -> list[MetricDef]:
    """Every metric a work unit's ``DBIRTH`` declares."""
    cycle = wu.mean_cycle_time()
    speed = 60.0 / cycle if cycle > 0 else 0.0
    # Null until the engine says otherwise (spec 3.0, 6.4.4 is_null): a host must not take
    # a placeholder for the plant's state. MachSpeed is the set point, known from the start.
    out = [MetricDef(n, t, speed if n == "MachSpeed" else None) for n, t, _ in TAGS]
    for pv in wu.process_values:
        props: dict[str, str | float] = {"engUnit": pv.unit}
        if pv.eu_range is not None:
            props["engLow"], props["engHigh"] = pv.eu_range
        if pv.characteristic:
            props["characteristic"] = pv.characteristic
        out.append(MetricDef(PROCESS_VALUES + pv.name, DataType.Double, None, props))
    if wu.batch is not None:  # a batch unit (ISA-88): as on OPC UA (``twin.opcua.infomodel``)
        out.append(MetricDef("BatchID", DataType.String, ""))
        out.append(MetricDef("BatchQuantity", DataType.Double, 0.0, {"engUnit": wu.batch.unit}))
        out.append(MetricDef("PhaseName", DataType.String, ""))
        phases: dict[str, str | float] = {"engLow": 0.0, "engHigh": float(len(wu.batch.phases))}
        # Null until told, as every process value (a birth's time is not the plant's).
        out.append(MetricDef(PROCESS_VALUES + PHASE_NUMBER, DataType.Double, None, phases))
    for alarm in ALARMS:
        out.append(MetricDef(f"Alarms/{alarm}/Severity", DataType.Int32, 0))
        out.append(MetricDef(f"Alarms/{alarm}/Message", DataType.String, ""))
        out.append(MetricDef(f"Alarms/{alarm}/Active", DataType.Boolean, False))
    # Job Control: what a DCMD may write (declared, spec 3.0 6.4.8) and its outcome.
    for command in COMMANDS:
        out.append(MetricDef(command, DataType.Boolean, False))
    out.extend(MetricDef(name, t, "" if t == DataType.String else 0) for name, t in ARGUMENTS)
    out.append(MetricDef(RESULT, DataType.String, ""))
    return out


Change = tuple[str, str, Any, int]
"""(device, metric, value, timestamp in ms since the epoch)"""


class EdgeNode:
    """One line as a Sparkplug edge node: its MQTT session, births, data and rebirths."""

    def __init__(
        self,
        group: str,
        node: str,
        devices: dict[str, list[MetricDef]],
        broker: tuple[str, int],
        primary_host: str | None = None,
    ) -> None:
        self.group = check_id("group id", group)
        self.primary_host = primary_host
        self._state_topic = state_topic(primary_host) if primary_host else None
        self.host_online = primary_host is None
        """Births and data go out only while the primary host (if any) is online."""
        self._host_ts = -1
        self.bounce = False
        """The primary host went offline: NDEATH, disconnect, connect again (the pump)."""
        self.node = check_id("edge node id", node)
        for device in devices:
            check_id("device id", device)
        self.defs = {d: {m.name: m for m in ms} for d, ms in devices.items()}
        self.broker = broker
        self.queue: deque[Change] = deque()
        self.published: dict[str, dict[str, tuple[Any, int]]] = {d: {} for d in devices}
        """Per device and metric: (value, timestamp) last sent (what births carry)."""
        self.bd_seq = 0
        self.seq = 0
        self.need_birth = False
        self.connected = False
        self.closing = False
        self.births = 0
        self.birth_timestamp = 0
        """The timestamp of the last NBIRTH."""
        self.since_birth = 0
        """Messages published after that NBIRTH (a host that took them all has the same)."""
        self.messages = 0
        self.metrics_sent = 0
        self.on_command: Callable[[Command], None] | None = None
        """Called (in paho's network thread) with each DCMD that names a command."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._types = {d: {m.name: m.datatype for m in ms} for d, ms in devices.items()}
        # DDATA is written by ``sparkplug_b.encoding`` from these (the hot path).
        self._codecs = {
            d: {m.name: MetricCodec(m.name, m.datatype) for m in ms} for d, ms in devices.items()
        }
        self._ddata = {d: str(Topic(self.group, "DDATA", self.node, d)) for d in devices}
        client_id = f"{group}-{node}-{uuid.uuid4().hex[:8]}"[:64]
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._set_will()

    # --- the session (paho's network thread) -------------------------------------------

    def _set_will(self) -> None:
        death = Payload(timestamp=_now_ms())
        set_value(death.metrics.add(name=BD_SEQ), DataType.UInt64, self.bd_seq)
        self.client.will_set(
            str(Topic(self.group, "NDEATH", self.node)), death.SerializeToString(), qos=1
        )

    def start(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        """Connect (in the background); ``wake`` is set in ``loop`` when births are due."""
        self._loop, self._wake = loop, wake
        self.client.connect_async(*self.broker, keepalive=10)
        self.client.loop_start()

    def stop(self) -> None:
        """Leave as a clean disconnect would: publish the NDEATH first (spec 7.1.2)."""
        self.closing = True
        if self.connected:
            death = Payload(timestamp=_now_ms())
            set_value(death.metrics.add(name=BD_SEQ), DataType.UInt64, self.bd_seq)
            info = self.client.publish(
                str(Topic(self.group, "NDEATH", self.node)), death.SerializeToString(), qos=1
            )
            info.wait_for_publish(2.0)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("edge node %s: broker refused the connection (%s)", self.node, reason)
            return
        base = f"spBv1.0/{self.group}"
        subs = [(f"{base}/NCMD/{self.node}", 1), (f"{base}/DCMD/{self.node}/+", 1)]
        if self._state_topic is not None:
            subs.append((self._state_topic, 1))
        client.subscribe(subs)
        self.connected = True
        self.need_birth = True
        self._poke()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected = False
        if self.closing:
            return
        # The next session has its own bdSeq, and the broker must hold its death (7.1.2).
        self.bd_seq = (self.bd_seq + 1) % 256
        self._set_will()
        log.warning("edge node %s lost the broker (%s); reconnecting", self.node, reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic == self._state_topic:
            self._host_state(msg.payload)
            return
        try:
            payload = Payload.FromString(msg.payload)
        except Exception as exc:  # noqa: BLE001 - a peer's bad payload must not stop us
            log.warning("edge node %s: undecodable command on %s: %s", self.node, msg.topic, exc)
            return
        topic = Topic.parse(msg.topic)
        if topic.message_type == "DCMD" and topic.device is not None:
            self._device_command(topic.device, payload)
            return
        for metric in payload.metrics:
            if metric.name == REBIRTH and metric.boolean_value:
                log.info("edge node %s: rebirth requested", self.node)
                self.need_birth = True
                self._poke()
                return
        log.info("edge node %s: command on %s ignored (no such control)", self.node, msg.topic)

    def _device_command(self, device: str, payload: Any) -> None:
        types = self._types.get(device)
        if types is None:
            log.warning("edge node %s: DCMD for unknown device %s ignored", self.node, device)
            return
        metrics: dict[str, Any] = {}
        for m in payload.metrics:
            datatype = m.datatype or types.get(m.name, 0)
            try:
                metrics[m.name] = None if m.is_null else metric_value(m, datatype)
            except (TypeError, ValueError):
                metrics[m.name] = m  # undecodable as declared: a type mismatch to report
        names = [n for n in COMMANDS if metrics.get(n) is True]
        if len(names) != 1 or self.on_command is None:
            log.info("edge node %s: DCMD for %s names no single command", self.node, device)
            return
        self.on_command((device, COMMANDS[names[0]], metrics))

    def _host_state(self, body: bytes) -> None:
        try:
            online, ts = parse_state(body)
        except ValueError as exc:
            log.warning("edge node %s: %s", self.node, exc)
            return
        if ts < self._host_ts:
            return  # older than what we know (spec 3.0: compare the timestamps)
        self._host_ts = ts
        if online and not self.host_online:
            log.info("edge node %s: primary host %s online", self.node, self.primary_host)
            self.host_online = True
            self.need_birth = True
            self._poke()
        elif not online and self.host_online:
            log.warning("edge node %s: primary host %s offline", self.node, self.primary_host)
            self.host_online = False
            self.bounce = True
            self._poke()

    def _bounce(self) -> None:
        """NDEATH, disconnect, connect again: a new session waits for the host."""
        self.bounce = False
        if self.connected:
            death = Payload(timestamp=_now_ms())
            set_value(death.metrics.add(name=BD_SEQ), DataType.UInt64, self.bd_seq)
            info = self.client.publish(
                str(Topic(self.group, "NDEATH", self.node)), death.SerializeToString(), qos=1
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self.client.disconnect()
        self.client.loop_stop()  # on_disconnect moved bdSeq on and set the next will
        self.connected = False
        self.client.connect_async(*self.broker, keepalive=10)
        self.client.loop_start()

    def _poke(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # --- publishing (the asyncio loop) --------------------------------------------------

    def _next_seq(self) -> int:
        seq = self.seq = (self.seq + 1) % 256
        return seq

    def _publish(self, topic: Topic, payload: Any, qos: int = 0) -> None:
        self.client.publish(str(topic), payload.SerializeToString(), qos=qos)
        self.messages += 1
        self.since_birth += 1

    def birth(self) -> None:
        """NBIRTH and every DBIRTH, from what was last published."""
        self.need_birth = False
        # Strictly later than the last: a birth is told from the one before by its time.
        now = max(_now_ms(), self.birth_timestamp + 1)
        self.seq = 0
        nbirth = Payload(timestamp=now, seq=0)
        set_value(nbirth.metrics.add(name=BD_SEQ, timestamp=now), DataType.UInt64, self.bd_seq)
        set_value(nbirth.metrics.add(name=REBIRTH, timestamp=now), DataType.Boolean, False)
        self._publish(Topic(self.group, "NBIRTH", self.node), nbirth, qos=0)
        self.birth_timestamp, self.since_birth = now, 0
        for device, defs in self.defs.items():
            published = self.published[device]
            dbirth = Payload(timestamp=now, seq=self._next_seq())
            for name, d in defs.items():
                value, ts = published.get(name, (d.initial, now))
                metric = dbirth.metrics.add(name=name, timestamp=ts)
                set_value(metric, d.datatype, value)
                if d.properties:
                    metric.properties.CopyFrom(property_set(d.properties))
            self._publish(Topic(self.group, "DBIRTH", self.node, device), dbirth)
        self.births += 1
        log.info(
            "edge node %s/%s born (bdSeq %d, %d devices)",
            self.group,
            self.node,
            self.bd_seq,
            len(self.defs),
        )

    def settle(self) -> None:
        """Take everything queued as already published (before the first birth: the
        snapshot the engine sends on registering is what the births then carry)."""
        while self.queue:
            device, name, value, ts = self.queue.popleft()
            self.published[device][name] = (value, ts)

    def drain(self, limit: int | None = None) -> int:
        """Publish queued changes as DDATA, one message per run of one device's changes."""
        if self.bounce:
            self._bounce()
        if not self.connected or not self.host_online:
            return 0
        if self.need_birth:
            self.birth()
        queue = self.queue
        n = len(queue) if limit is None else min(limit, len(queue))
        popleft = queue.popleft
        sent = 0
        current: str | None = None
        bodies: list[bytes] = []
        codecs: dict[str, MetricCodec] = {}
        published: dict[str, tuple[Any, int]] = {}
        last_ts, stamp = -1, b""
        for _ in range(n):
            device, name, value, ts = popleft()
            if device != current or len(bodies) >= MAX_METRICS_PER_MESSAGE:
                if bodies:
                    self._data(current, bodies)
                    bodies = []
                current = device
                codecs, published = self._codecs[device], self.published[device]
            if ts != last_ts:  # a moment's changes share their timestamp
                last_ts, stamp = ts, varint(ts)
            c = codecs[name]
            bodies.append(c.head + stamp + (c.null if value is None else c.value(value)))
            published[name] = (value, ts)
            sent += 1
        if bodies:
            self._data(current, bodies)
        self.metrics_sent += sent
        return sent

    def _data(self, device: str | None, bodies: list[bytes]) -> None:
        assert device is not None
        payload = data_payload(_now_ms(), bodies, self._next_seq())
        self.client.publish(self._ddata[device], payload, qos=0)
        self.messages += 1
        self.since_birth += 1


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _call_inline(command: Callable[[], None]) -> None:
    command()


class SparkplugPublisher:
    """The engine's ``PlantObserver`` for a plant served as Sparkplug edge nodes.

    ``start`` (in the asyncio loop) connects every edge node; ``run`` is the pump.
    Observer calls only append to the edge node's queue (``deque.append`` is atomic, so
    the engine may call from its own thread).
    """

    def __init__(
        self,
        model: PlantModel,
        broker_url: str,
        group: str,
        *,
        start: datetime,
        lines: Iterable[str] | None = None,
        primary_host: str | None = None,
        control: PlantControl | None = None,
        submit: Callable[[Callable[[], None]], Awaitable[None]] | None = None,
    ) -> None:
        """``primary_host``: the host id whose STATE the edge nodes wait for; ``control``
        the engine's Job Control the DCMDs go to, through ``submit`` (which applies a
        command in the engine's thread and returns once applied, raising what it raised;
        default: at once, in the loop)."""
        self.control = control
        self.submit = submit or _call_inline
        self._products = product_ids(model)  # StoreAndStart's productId, as OPC UA's
        self.commands = 0
        self.model = model
        self.broker = broker_address(broker_url)
        if primary_host is not None:
            check_id("primary host id", primary_host)
        self.group = check_id("group id", group)
        self._start = start.timestamp()
        self.lines = list(lines) if lines is not None else [line.code for line in model.lines]
        self.nodes: dict[str, EdgeNode] = {}
        self._route: dict[str, EdgeNode] = {}
        self._values: dict[tuple[str, str], tuple[Callable[[Change], None], str]] = {}
        """Per (work unit, process value): its edge node's ``queue.append`` and metric name."""
        self._last: dict[tuple[str, str], Any] = {}
        self._speed: dict[str, float] = {}
        self._wake: asyncio.Event | None = None
        self._stopping = False
        for line in model.lines:
            if line.code not in self.lines:
                continue
            devices = {wu.code: device_metrics(wu) for wu in line.work_units}
            node = EdgeNode(self.group, line.code, devices, self.broker, primary_host)
            node.on_command = self._command
            self.nodes[line.code] = node
            for wu in line.work_units:
                self._route[wu.code] = node
                for pv in wu.process_values:
                    self._values[(wu.code, pv.name)] = (node.queue.append, PROCESS_VALUES + pv.name)
                cycle = wu.mean_cycle_time()
                self._speed[wu.code] = 60.0 / cycle if cycle > 0 else 0.0

    async def start(self, timeout: float = 10.0) -> None:
        """Connect every edge node; births go out once connected (first pump pass)."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for node in self.nodes.values():
            node.settle()
            node.start(loop, self._wake)
        deadline = time.monotonic() + timeout
        while not all(n.connected for n in self.nodes.values()):
            if time.monotonic() > deadline:
                raise ConnectionError(f"MQTT broker {self.broker[0]}:{self.broker[1]} unreachable")
            await asyncio.sleep(0.02)
        self.flush()

    def _put(self, work_unit: str, name: str, value: Any, ts: int, always: bool = False) -> None:
        node = self._route.get(work_unit)
        if node is None:
            return  # a work unit of a line this publisher does not serve
        key = (work_unit, name)
        if not always and key in self._last and self._last[key] == value:
            return
        self._last[key] = value
        node.queue.append((work_unit, name, value, ts))

    def _ts(self, t: float, wall: float | None) -> int:
        return round((wall if wall is not None else self._start + t) * 1000)

    # --- PlantObserver -----------------------------------------------------------------

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        ts = self._ts(t, wall)
        number = int(packml_state)
        # StopReason first: a host that maps State sees the reason already changed.
        self._put(work_unit, "StopReason", reason, ts)
        self._put(work_unit, "UnitMode", _MODE_OF_STATE.get(state, "Production"), ts)
        speed = self._speed.get(work_unit, 0.0) if packml_state == PackMLState.EXECUTE else 0.0
        self._put(work_unit, "CurMachSpeed", speed, ts)
        self._put(work_unit, "StateName", _STATE_NAMES[number], ts)
        self._put(work_unit, "State", number, ts)

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        ts = self._ts(t, wall)
        # Defective before processed: never more defective than processed in between.
        self._put(work_unit, "ProdDefectiveCount", defective, ts)
        self._put(work_unit, "ProdProcessedCount", processed, ts)
        self._put(work_unit, "ProdConsumedCount", consumed, ts)

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        # A call per sample: straight to the queue. Without ``_put``'s repeat check: the
        # engine publishes a value only when it moved past its deadband.
        slot = self._values.get((work_unit, name))
        if slot is None:  # not a process value of the model: as any other metric
            self._put(work_unit, PROCESS_VALUES + name, float(value), self._ts(t, wall))
            return
        ts = round((wall if wall is not None else self._start + t) * 1000)
        slot[0]((work_unit, slot[1], float(value), ts))

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        ts = self._ts(t, wall)
        self._put(work_unit, "ProductID", product, ts)
        self._put(work_unit, "MaterialLotID", material_lot, ts)
        self._put(work_unit, "JobOrderID", job_order, ts)

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
        if alarm not in ALARMS:
            raise KeyError(f"alarm {alarm!r} of {work_unit} is not declared in its DBIRTH")
        ts = self._ts(t, wall)
        self._put(work_unit, f"Alarms/{alarm}/Severity", int(severity), ts)
        self._put(work_unit, f"Alarms/{alarm}/Message", message, ts)
        self._put(work_unit, f"Alarms/{alarm}/Active", active, ts, always=True)

    # --- BatchObserver (batch work units, ISA-88) --------------------------------------

    def on_phase(
        self,
        t: float,
        work_unit: str,
        batch_id: str,
        quantity: float,
        phase_number: int,
        phase_name: str,
        wall: float | None,
    ) -> None:
        ts = self._ts(t, wall)
        self._put(work_unit, "BatchID", batch_id, ts)
        self._put(work_unit, "BatchQuantity", float(quantity), ts)
        self._put(work_unit, "PhaseName", phase_name, ts)
        self._put(work_unit, PROCESS_VALUES + PHASE_NUMBER, float(phase_number), ts)

    # --- Job Control (DCMD) ------------------------------------------------------------

    def _command(self, command: Command) -> None:
        """From paho's network thread: run the command in the loop."""
        loop = next((n._loop for n in self.nodes.values() if n._loop is not None), None)
        if loop is not None:
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.execute(*command)))

    async def execute(self, device: str, name: str, metrics: dict[str, Any]) -> str:
        """Check the arguments, apply the command to the engine and publish what it did
        as ``JobControl/Result``; that text (``"<command>[ <job>]: <status>"``)."""
        self.commands += 1
        job = metrics.get(ARGUMENTS[0][0]) if name == "StoreAndStart" else None
        status = await self._apply(device, name, metrics)
        label = f"{name} {job}" if isinstance(job, str) and job else name
        text = f"{label}: {status}"
        if status == "Good":
            log.info("Sparkplug: %s.%s", device, label)
        else:
            log.warning("Sparkplug: %s.%s refused: %s", device, label, status)
        self._put(device, RESULT, text, _now_ms(), always=True)
        if self._wake is not None:
            self._wake.set()
        return text

    async def _apply(self, device: str, name: str, metrics: dict[str, Any]) -> str:
        """The OPC UA status name the method of the same name would answer."""
        control = self.control
        command: Callable[[], None]
        if name == "StoreAndStart":
            job, product, quantity = (metrics.get(a) for a, _ in ARGUMENTS)
            if job is None or product is None or quantity is None:
                return "BadArgumentsMissing"
            if not isinstance(job, str) or not isinstance(product, str):
                return "BadTypeMismatch"
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                return "BadTypeMismatch"
            if not job or not product or quantity <= 0:
                return "BadOutOfRange"
            if control is None:
                return "BadNotSupported"
            product = self._products.get(product, product)
            command = lambda: control.store_and_start(device, job, product, quantity)  # noqa: E731
        elif control is None:
            return "BadNotSupported"
        elif name == "Stop":
            command = lambda: control.stop(device)  # noqa: E731
        else:
            command = lambda: control.reset(device)  # noqa: E731
        try:
            await self.submit(command)
        except TimeoutError:
            return "BadTimeout"
        except (ValueError, KeyError) as exc:
            return f"BadInvalidArgument ({exc})"
        return "Good"

    # --- the pump ----------------------------------------------------------------------

    def pending(self) -> int:
        return sum(len(n.queue) for n in self.nodes.values())

    def flush(self) -> int:
        """Publish everything queued now (births first where due); how many metrics."""
        return sum(node.drain() for node in self.nodes.values())

    async def run(self) -> None:
        """Drain the queues until ``stop``; births whenever a session or an NCMD asks."""
        assert self._wake is not None
        wake = self._wake
        while not self._stopping:
            busy = sum(node.drain(2000) for node in self.nodes.values())
            if busy:
                await asyncio.sleep(0)
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), PUMP_IDLE_S)
        self.flush()

    def stop(self) -> None:
        self._stopping = True

    def close(self) -> None:
        """Disconnect every edge node, each with its NDEATH."""
        for node in self.nodes.values():
            node.stop()

    def stats(self) -> dict[str, Any]:
        nodes: Sequence[EdgeNode] = list(self.nodes.values())
        return {
            "messages": sum(n.messages for n in nodes),
            "metrics": sum(n.metrics_sent for n in nodes),
            "births": sum(n.births for n in nodes),
            "pending": self.pending(),
        }
