"""A second consumer of the unified namespace: a Sparkplug B subscriber that keeps the
last value of every device metric, as a historian or a UNS dashboard would.

``UnsSubscriber`` is a host application that is *not* the primary one (Sparkplug 3.0,
chapter 7): it publishes no ``STATE`` and the edge nodes do not wait for it. It is a plain
paho-mqtt session subscribed to ``spBv1.0/<group>/#`` that decodes every payload with
``sparkplug_b`` and follows each edge node's session the way the specification asks of
any host: ``NBIRTH`` opens it (``bdSeq``, ``seq`` 0), ``DBIRTH`` declares a device and
carries its current values, every later message must carry the next ``seq`` (mod 256).
Data from a node or device it saw no birth of, or after a gap, is not taken: it asks for
a rebirth (``NCMD`` ``Node Control/Rebirth``, at most once per ``REBIRTH_INTERVAL_S`` per
node), and the births that answer carry the current values again. ``NDEATH`` with the
session's ``bdSeq`` ends it. So its last values are the edge node's once it has taken,
in order, every message the edge node published since its last birth (``sessions``).

Everything happens in paho's network thread under one lock; readers take copies.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from sparkplug_b.payload import DataType, Payload, bd_seq_of, metric_value, set_value
from sparkplug_b.topic import NAMESPACE, REBIRTH, Topic, TopicError, check_id

log = logging.getLogger(__name__)

REBIRTH_INTERVAL_S = 2.0


@dataclass
class _Node:
    born: bool = False
    bd_seq: int | None = None
    next_seq: int = 0
    birth_timestamp: int = 0
    since_birth: int = 0
    births: int = 0
    gaps: int = 0
    rebirth_asked_at: float = -1e9
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per device born in this session: metric -> last value."""
    types: dict[str, dict[str, int]] = field(default_factory=dict)
    aliases: dict[str, dict[int, str]] = field(default_factory=dict)


class UnsSubscriber:
    """Follows the edge nodes of ``group`` on the broker at ``(host, port)``."""

    def __init__(self, broker: tuple[str, int], group: str, client_id: str = "uns") -> None:
        self.broker = broker
        self.group = check_id("group id", group)
        self.nodes: dict[str, _Node] = {}
        self.messages = 0
        self.rebirths_requested = 0
        self.connects = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{client_id}-{uuid.uuid4().hex[:8]}"[:64],
            clean_session=True,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; ``ConnectionError`` when that does not happen in time."""
        self.client.connect_async(*self.broker, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise ConnectionError(
                f"the UNS subscriber could not subscribe at {self.broker[0]}:{self.broker[1]}"
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # --- what it holds (any thread) ----------------------------------------------------

    def values(self) -> dict[str, dict[str, Any]]:
        """Per device (of every node born now): metric -> last value."""
        with self._lock:
            return {
                device: dict(metrics)
                for node in self.nodes.values()
                if node.born
                for device, metrics in node.devices.items()
            }

    def sessions(self) -> dict[str, tuple[int, int, bool]]:
        """Per edge node: (its NBIRTH's timestamp, messages taken in order since, born)."""
        with self._lock:
            return {
                name: (n.birth_timestamp, n.since_birth, n.born) for name, n in self.nodes.items()
            }

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "messages": self.messages,
                "births": sum(n.births for n in self.nodes.values()),
                "gaps": sum(n.gaps for n in self.nodes.values()),
                "rebirths_requested": self.rebirths_requested,
                "connects": self.connects,
            }

    # --- paho's network thread ---------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("UNS subscriber: the broker refused the connection (%s)", reason)
            return
        client.subscribe(f"{NAMESPACE}/{self.group}/#", qos=1)
        with self._lock:
            self.connects += 1
            # What was published while away is gone (QoS 0, clean session): births again.
            resync = [name for name in self.nodes]
            for name in resync:
                self.nodes[name].born = False
        for name in resync:
            self._rebirth(name, "new session", force=True)

    def _on_subscribe(self, *args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            topic = Topic.parse(msg.topic)
            payload = Payload.FromString(msg.payload)
        except TopicError as exc:
            log.warning("UNS subscriber: ignored %s: %s", msg.topic, exc)
            return
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError: a peer's fault
            log.warning("UNS subscriber: ignored %s: undecodable (%s)", msg.topic, exc)
            return
        kind = topic.message_type
        if kind in ("NCMD", "DCMD"):
            return
        why = ""
        with self._lock:
            self.messages += 1
            node = self.nodes.setdefault(topic.edge_node, _Node())
            why = self._take(node, topic, payload)
        if why:
            self._rebirth(topic.edge_node, why)

    def _take(self, node: _Node, topic: Topic, payload: Any) -> str:
        """Apply one message to the node's session; why a rebirth is needed, or ''."""
        kind = topic.message_type
        if kind == "NBIRTH":
            node.born, node.bd_seq = True, bd_seq_of(payload)
            node.next_seq = (payload.seq + 1) % 256
            node.birth_timestamp, node.since_birth = payload.timestamp, 0
            node.births += 1
            node.devices.clear()
            return ""
        if kind == "NDEATH":
            if node.born and bd_seq_of(payload) == node.bd_seq:
                node.born = False
            return ""
        if not node.born:
            return f"{kind} without a birth"
        if not payload.HasField("seq") or payload.seq != node.next_seq:
            node.gaps += 1
            node.born = False
            return (
                f"seq {payload.seq if payload.HasField('seq') else None}, expected {node.next_seq}"
            )
        node.next_seq = (payload.seq + 1) % 256
        node.since_birth += 1
        device = topic.device
        if device is None:
            return ""
        if kind == "DDEATH":
            node.devices.pop(device, None)
            return ""
        if kind == "DBIRTH":
            node.devices[device] = {}
            node.types[device] = {m.name: m.datatype for m in payload.metrics}
            node.aliases[device] = {m.alias: m.name for m in payload.metrics if m.HasField("alias")}
        elif device not in node.devices:
            node.born = False
            return f"DDATA of {device} without a DBIRTH"
        values, types, aliases = node.devices[device], node.types[device], node.aliases[device]
        for metric in payload.metrics:
            name = metric.name or aliases.get(metric.alias, "")
            values[name] = None if metric.is_null else metric_value(metric, types.get(name))
        return ""

    def _rebirth(self, node_id: str, why: str, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            node = self.nodes[node_id]
            if not force and now - node.rebirth_asked_at < REBIRTH_INTERVAL_S:
                return
            node.rebirth_asked_at = now
            self.rebirths_requested += 1
        command = Payload(timestamp=int(time.time() * 1000))
        set_value(command.metrics.add(name=REBIRTH), DataType.Boolean, True)
        self.client.publish(str(Topic(self.group, "NCMD", node_id)), command.SerializeToString())
        log.info("UNS subscriber: rebirth of %s/%s requested (%s)", self.group, node_id, why)
