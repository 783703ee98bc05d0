"""The MES's Sparkplug B 3.0 primary host application: metrics into plant events.

One ``HostLink`` is one MQTT session (paho-mqtt, its network thread) subscribed to the
Sparkplug groups it serves (``spBv1.0/<group>/#``); the ``Connector`` of the OPC UA
connector collects from it as from an OPC UA server (``CollectorLink``), so Sparkplug
data goes through the same ``EventBuilder`` rules, the same spool and the same idempotent
batch ingest. The network thread only appends ``(topic, payload)`` to an inbox; every
``flush_interval`` the connector's collect step decodes and checks them in arrival
order, in the event loop (one thread for every decision):

- **Births.** ``NBIRTH`` starts an edge node's session (``bdSeq``, ``seq`` 0); ``DBIRTH``
  declares a device's metrics: the device id is the MES work unit code, the PackML tags
  of the OPC UA model map to the same rules (``mapping``), ``ProcessValues/<name>``
  carries its unit (``engUnit``) and inspection characteristic (``characteristic``). A
  birth's values are the current ones: cumulative counters resynchronise the counts
  exactly, a state already sent is not sent again, a process value already sent (same
  timestamp) is skipped.
- **Sequence.** Every message after the NBIRTH must carry the next ``seq`` (mod 256).
  A gap, or data from a node or device without a birth, makes the host discard that
  node's data and ask for a rebirth (an ``NCMD`` with ``Node Control/Rebirth`` true,
  spec 3.0, 6.4.18; at most once per ``REBIRTH_INTERVAL_S`` per node); the births that
  answer resynchronise counts and states. A new host session asks every known node for
  a rebirth too, and meanwhile keeps what continues a node's seq. What a dropped
  message carried is lost: process value samples, and the states a work unit passed
  through before the births (the births carry the current state); counts are not, being
  cumulative.
- **Deaths.** An ``NDEATH`` whose ``bdSeq`` matches the node's birth ends its session
  (a stale one, from an earlier session, is ignored); a ``DDEATH`` ends a device's.
- **STATE** (spec 3.0, 7.2, a primary host): the will is ``{"online": false}`` and, once
  subscribed, ``{"online": true}`` with the same timestamp, both retained at QoS 1 on
  ``spBv1.0/STATE/<host_id>``; a STATE offline for this host from the broker (a stale
  will) is answered with online again.
- **Alarms**: a ``Alarms/<alarm>/Active`` metric in DDATA is an ``AlarmEvent`` (with the
  device's last ``Severity`` and ``Message`` of that alarm); in a birth it is a level,
  not an occurrence, and makes no event.
- **Job dispatch** (``store_and_start``, ``stop``, ``reset``: what the OPC UA connector
  does with the methods of the same names): a ``DCMD`` to the device (spec 3.0, 6.4.8)
  writing the ``JobControl/...`` metrics its DBIRTH declared (``JobControl/StoreAndStart``
  true with ``.../jobOrderId``, ``.../productId``, ``.../quantity``; or ``JobControl/Stop``
  or ``JobControl/Reset`` true), then the device's ``JobControl/Result`` awaited: ``Good``
  returns, any other status raises ``DispatchRefused``, none within the timeout raises
  ``TimeoutError`` (as an OPC UA method call that is not answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from mes_core.connectors.opcua.connector import DispatchRefused
from mes_core.connectors.opcua.discovery import ProcessValueBinding, WorkUnitBinding
from mes_core.connectors.opcua.events import (
    AlarmFields,
    BatchOutcome,
    EventBuilder,
    Notification,
)
from mes_core.connectors.opcua.mapping import SUBSCRIBED_TAGS
from sparkplug_b.payload import DataType, Payload, bd_seq_of, metric_value, properties_of, set_value
from sparkplug_b.topic import (
    NAMESPACE,
    REBIRTH,
    Topic,
    TopicError,
    check_id,
    parse_state,
    state_payload,
    state_topic,
)

log = logging.getLogger("mes_core.connectors.sparkplug")

PROCESS_VALUES = "ProcessValues/"
ALARMS = "Alarms/"
JOB_CONTROL = "JobControl/"
RESULT = "JobControl/Result"
STORE_AND_START = "JobControl/StoreAndStart"
COMMAND_TIMEOUT_S = 10.0
REBIRTH_INTERVAL_S = 2.0
_TAGS = frozenset(SUBSCRIBED_TAGS)


def broker_address(url: str) -> tuple[str, int]:
    """(host, port) of ``mqtt://HOST[:PORT]`` (1883 by default); ``ValueError`` else."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        raise ValueError(f"--sparkplug {url!r}: expected mqtt://HOST[:PORT]")
    return parsed.hostname, parsed.port or 1883


@dataclass
class HostOptions:
    groups: Sequence[str] = ("mestwin",)
    """Sparkplug group ids served; ``()``: every group (``spBv1.0/+/...``)."""
    host_id: str = "mestwin-mes"
    """The primary host id of the STATE messages."""
    initial_counts: str = "count"


@dataclass
class _Device:
    types: dict[str, int] = field(default_factory=dict)
    aliases: dict[int, str] = field(default_factory=dict)
    alarms: dict[str, list[Any]] = field(default_factory=dict)
    """Per alarm: [severity, message] last seen."""
    keys: dict[str, Hashable] = field(default_factory=dict)
    """Per metric the ``EventBuilder`` maps (a PackML tag or a process value): its key
    there, ``(node, device, name)``, made once at the birth."""


@dataclass
class EdgeNodeTrack:
    """What the host knows of one edge node's session."""

    group: str
    node: str
    builder: EventBuilder
    born: bool = False
    bd_seq: int | None = None
    next_seq: int = 0
    devices: dict[str, _Device] = field(default_factory=dict)
    rebirth_asked_at: float = -1e9
    births: int = 0
    gaps: int = 0
    birth_timestamp: int = 0
    """The timestamp of the NBIRTH of the session being followed."""
    since_birth: int = 0
    """Messages taken in order since that NBIRTH."""


class HostLink:
    """One MQTT session of the host application (a ``CollectorLink``, see module doc)."""

    def __init__(self, url: str, options: HostOptions, state: dict[str, Any]) -> None:
        self.broker = broker_address(url)
        self.url = f"sparkplug:{url}"
        self.options = options
        for group in options.groups:
            check_id("group id", group)
        self._state_topic = state_topic(options.host_id)
        self._restore = state
        self.bindings: dict[str, WorkUnitBinding] = {}
        self.nodes: dict[tuple[str, str], EdgeNodeTrack] = {}
        self.connected = asyncio.Event()
        self.faults = 0
        self.connects = 0
        self.rebirths_requested = 0
        self._inbox: deque[tuple[str, bytes]] = deque()
        self._topics: dict[str, Topic] = {}
        self._lost = threading.Event()
        self._resync = False
        """Set by a new session: every known node must be born again (data was missed)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commands: dict[tuple[str, str], asyncio.Future[str]] = {}
        """Commands sent, by (device, ``"<command>[ <job>]"``): their result awaited."""
        self._online_ts = 0
        client_id = f"{options.host_id}-{uuid.uuid4().hex[:8]}"[:64]
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # --- the session (paho's network thread) -------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%d refused the host (%s)", *self.broker, reason)
            return
        groups = self.options.groups or ("+",)
        subs = [(self._state_topic, 1)] + [(f"{NAMESPACE}/{g}/#", 1) for g in groups]
        client.subscribe(subs)
        client.publish(self._state_topic, state_payload(True, self._online_ts), qos=1, retain=True)
        self._resync = True
        self.connects += 1
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.set)
        log.info(
            "Sparkplug host %s online at %s:%d (groups %s)",
            self.options.host_id,
            *self.broker,
            ",".join(groups),
        )

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.clear)
        if not self._lost.is_set():
            self.faults += 1
            log.warning("lost the MQTT broker %s:%d (%s); reconnecting", *self.broker, reason)
            # The will's timestamp must be the next online STATE's (spec 3.0, 7.2).
            self._set_will()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._inbox.append((msg.topic, msg.payload))

    def _set_will(self) -> None:
        self._online_ts = int(time.time() * 1000)
        self.client.will_set(
            self._state_topic, state_payload(False, self._online_ts), qos=1, retain=True
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Connect (paho reconnects by itself) and stay until ``stop``; then go offline
        as the specification asks: STATE offline, then DISCONNECT."""
        self._loop = asyncio.get_running_loop()
        self._set_will()
        self.client.connect_async(*self.broker, keepalive=10)
        self.client.loop_start()
        try:
            await stop.wait()
        finally:
            self._lost.set()
            if self.client.is_connected():
                info = self.client.publish(
                    self._state_topic, state_payload(False, self._online_ts), qos=1, retain=True
                )
                with contextlib.suppress(RuntimeError, ValueError):
                    await asyncio.to_thread(info.wait_for_publish, 2.0)
            self.client.disconnect()
            await asyncio.to_thread(self.client.loop_stop)
            self.connected.clear()

    # --- collecting (the event loop) ----------------------------------------------------

    def _track(self, group: str, node: str) -> EdgeNodeTrack:
        key = (group, node)
        track = self.nodes.get(key)
        if track is None:
            builder = EventBuilder(
                f"sparkplug:{group}/{node}", initial_counts=self.options.initial_counts
            )
            builder.restore(self._restore)
            track = self.nodes[key] = EdgeNodeTrack(group, node, builder)
        return track

    def link_stats(self) -> dict[str, Any]:
        """Per edge node ``group/node``: [NBIRTH timestamp, messages taken in order since,
        born]; a test bench compares them with what its edge nodes published."""
        return {
            "sparkplug_nodes": {
                f"{t.group}/{t.node}": [t.birth_timestamp, t.since_birth, t.born]
                for t in self.nodes.values()
            },
            "sparkplug_rebirths_requested": self.rebirths_requested,
        }

    def request_rebirth(self, track: EdgeNodeTrack, why: str, *, forget: bool = True) -> None:
        """Ask the edge node for births (NCMD Node Control/Rebirth), at most once per
        ``REBIRTH_INTERVAL_S``; with ``forget`` its data is ignored until its NBIRTH."""
        if forget:
            track.born = False
        now = time.monotonic()
        if now - track.rebirth_asked_at < REBIRTH_INTERVAL_S:
            return
        track.rebirth_asked_at = now
        command = Payload(timestamp=int(time.time() * 1000))
        set_value(command.metrics.add(name=REBIRTH), DataType.Boolean, True)
        topic = str(Topic(track.group, "NCMD", track.node))
        self.client.publish(topic, command.SerializeToString(), qos=0)
        self.rebirths_requested += 1
        log.info("%s/%s: rebirth requested (%s)", track.group, track.node, why)

    # --- job dispatch (DCMD) -------------------------------------------------------------

    async def store_and_start(self, code: str, job: str, product: str, quantity: float) -> None:
        """Dispatch job order ``job`` to work unit (device) ``code`` (see the module doc)."""
        await self.command(
            code,
            "StoreAndStart",
            {
                f"{STORE_AND_START}/jobOrderId": (DataType.String, job),
                f"{STORE_AND_START}/productId": (DataType.String, product),
                f"{STORE_AND_START}/quantity": (DataType.Int32, int(quantity)),
            },
            label=f"StoreAndStart {job}",
        )

    async def stop(self, code: str) -> None:
        await self.command(code, "Stop", {})

    async def reset(self, code: str) -> None:
        await self.command(code, "Reset", {})

    async def command(
        self,
        code: str,
        name: str,
        args: dict[str, tuple[DataType, Any]],
        *,
        label: str | None = None,
        timeout: float = COMMAND_TIMEOUT_S,
    ) -> None:
        """Send the DCMD ``JobControl/<name>`` with ``args`` to device ``code`` and await
        its ``JobControl/Result``; ``DispatchRefused`` unless ``Good``."""
        label = label or name
        track = next((t for t in self.nodes.values() if t.born and code in t.devices), None)
        if track is None or not self.client.is_connected():
            raise DispatchRefused(f"{code}: no edge node born with that device")
        declared = track.devices[code].types
        trigger = f"{JOB_CONTROL}{name}"
        if trigger not in declared:
            raise DispatchRefused(f"{code}: its DBIRTH declares no {trigger}")
        payload = Payload(timestamp=int(time.time() * 1000))
        set_value(payload.metrics.add(name=trigger), DataType.Boolean, True)
        for metric, (datatype, value) in args.items():
            set_value(payload.metrics.add(name=metric), declared.get(metric, datatype), value)
        key = (code, label)
        future = self._commands[key] = asyncio.get_running_loop().create_future()
        try:
            topic = str(Topic(track.group, "DCMD", track.node, code))
            self.client.publish(topic, payload.SerializeToString(), qos=0)
            result = await asyncio.wait_for(future, timeout)
        finally:
            self._commands.pop(key, None)
        if result != "Good":
            raise DispatchRefused(f"{code}.{label}: {result}")

    def _result(self, device: str, text: str) -> None:
        """A device's ``JobControl/Result``: the outcome of the command it names."""
        label, sep, status = text.partition(": ")
        future = self._commands.get((device, label)) if sep else None
        if future is not None and not future.done():
            future.set_result(status)

    def collect(self) -> list[tuple[int, BatchOutcome]]:
        inbox = self._inbox
        if self._resync:
            # A new session: what was published meanwhile is lost to us (QoS 0, clean
            # session); what arrived before the drop is still in the inbox, and valid, and
            # so is what continues a node's seq after it (a gap shows a loss): births are
            # asked for anyway (a loss at the end of a node's traffic shows no gap).
            self._resync = False
            resync = list(self.nodes.values())
        else:
            resync = []
        batches: dict[tuple[str, str], tuple[list[Notification], list[Any], list[int]]] = {}
        moments: dict[int, datetime] = {}
        topics = self._topics
        for _ in range(len(inbox) if inbox else 0):
            topic_text, raw = inbox.popleft()
            if topic_text == self._state_topic:
                self._own_state(raw)
                continue
            try:
                topic = topics.get(topic_text) or self._parse_topic(topic_text)
                payload = Payload.FromString(raw)
            except (TopicError, ValueError) as exc:
                log.warning("ignored %s: %s", topic_text, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError, a peer's fault
                log.warning("ignored %s: undecodable payload (%s)", topic_text, exc)
                continue
            kind = topic.message_type
            if kind in ("NCMD", "DCMD"):
                continue
            track = self._track(topic.group, topic.edge_node)
            batch = batches.get((topic.group, topic.edge_node))
            if batch is None:
                batch = batches[(topic.group, topic.edge_node)] = ([], [], [0])
            self._message(track, topic, payload, batch, moments)
        out: list[tuple[int, BatchOutcome]] = []
        for key, (items, alarms, received) in batches.items():
            if items or alarms:
                out.append((received[0], self.nodes[key].builder.process(items, alarms)))
        for track in resync:
            track.rebirth_asked_at = -1e9
            self.request_rebirth(track, "new host session", forget=False)
        return out

    def _parse_topic(self, text: str) -> Topic:
        """``Topic.parse``, kept: a device's DDATA comes on the same topic every time."""
        topic = Topic.parse(text)
        if len(self._topics) >= 100_000:
            self._topics.clear()
        self._topics[text] = topic
        return topic

    def _own_state(self, raw: bytes) -> None:
        try:
            online, _ = parse_state(raw)
        except ValueError as exc:
            log.warning("%s", exc)
            return
        if not online and not self._lost.is_set() and self.client.is_connected():
            # A will of an earlier session delivered late: say we are online (7.2).
            self.client.publish(
                self._state_topic, state_payload(True, self._online_ts), qos=1, retain=True
            )

    def _message(
        self,
        track: EdgeNodeTrack,
        topic: Topic,
        payload: Any,
        batch: tuple[list[Notification], list[Any], list[int]],
        moments: dict[int, datetime],
    ) -> None:
        kind = topic.message_type
        if kind == "NDEATH":
            bd = bd_seq_of(payload)
            if track.born and bd == track.bd_seq:
                track.born = False
                log.info("%s/%s: edge node offline (NDEATH)", track.group, track.node)
            return
        if kind == "NBIRTH":
            track.born = True
            track.bd_seq = bd_seq_of(payload)
            track.next_seq = (payload.seq + 1) % 256
            track.birth_timestamp = payload.timestamp
            track.since_birth = 0
            track.devices.clear()
            track.births += 1
            return
        if not track.born:
            self.request_rebirth(track, f"{kind} without a birth")
            return
        if not payload.HasField("seq") or payload.seq != track.next_seq:
            track.gaps += 1
            got = payload.seq if payload.HasField("seq") else None
            self.request_rebirth(track, f"seq {got}, expected {track.next_seq}")
            return
        track.next_seq = (payload.seq + 1) % 256
        track.since_birth += 1
        if kind == "NDATA" or topic.device is None:
            return
        device = topic.device
        if kind == "DDEATH":
            track.devices.pop(device, None)
            return
        if kind == "DBIRTH":
            self._device_birth(track, device, payload)
        elif device not in track.devices:
            self.request_rebirth(track, f"DDATA of {device} without a DBIRTH")
            return
        self._values(track, device, payload, kind == "DBIRTH", batch, moments)

    def _device_birth(self, track: EdgeNodeTrack, device: str, payload: Any) -> None:
        dev = track.devices[device] = _Device()
        builder = track.builder
        for metric in payload.metrics:
            name = metric.name
            dev.types[name] = metric.datatype
            if metric.HasField("alias"):
                dev.aliases[metric.alias] = name
            key: Hashable = (track.node, device, name)
            if name in _TAGS:
                builder.route(device, key, name)
                dev.keys[name] = key
            elif name.startswith(PROCESS_VALUES):
                dev.keys[name] = key
                props = properties_of(metric)
                pv = name[len(PROCESS_VALUES) :]
                builder.route(
                    device,
                    key,
                    process_value=ProcessValueBinding(
                        pv, str(props.get("engUnit", "")), str(props.get("characteristic") or pv)
                    ),
                )
        if device not in self.bindings:
            log.info("bound %s (edge node %s/%s)", device, track.group, track.node)
        self.bindings[device] = WorkUnitBinding(device, track.node, None)

    def _values(
        self,
        track: EdgeNodeTrack,
        device: str,
        payload: Any,
        birth: bool,
        batch: tuple[list[Notification], list[Any], list[int]],
        moments: dict[int, datetime],
    ) -> None:
        items, alarms, received = batch
        dev = track.devices[device]
        default_ts = payload.timestamp
        aliases, types, keys = dev.aliases, dev.types, dev.keys
        append = items.append
        metrics = payload.metrics
        received[0] += len(metrics)
        for metric in metrics:
            name = metric.name or aliases.get(metric.alias, "")
            ts = metric.timestamp or default_ts  # proto2: 0 when absent
            when = moments.get(ts)
            if when is None:
                when = moments[ts] = datetime.fromtimestamp(ts / 1000, UTC)
            # The hot path (one process value change): a double, read without the
            # general conversion (signed integers, nulls) of ``metric_value``.
            if metric.is_null:
                value: Any = None
            elif metric.WhichOneof("value") == "double_value":
                value = metric.double_value
            else:
                value = metric_value(metric, types.get(name))
            key = keys.get(name)
            if key is not None:
                append((key, value, when))
            elif name.startswith(JOB_CONTROL):
                if name == RESULT and isinstance(value, str):
                    self._result(device, value)
            elif name.startswith(ALARMS):
                alarm, _, part = name[len(ALARMS) :].rpartition("/")
                seen = dev.alarms.setdefault(alarm, [500, ""])
                if part == "Severity" and value is not None:
                    seen[0] = int(value)
                elif part == "Message" and value is not None:
                    seen[1] = str(value)
                elif part == "Active" and not birth and value is not None:
                    alarms.append(AlarmFields(device, alarm, seen[0], seen[1], bool(value), when))
            # any other metric (StateName, CurMachSpeed...) makes no plant event
