"""Helpers of the Sparkplug tests: the broker, unique group ids, a recording subscriber.

Every test uses a group id of its own (``unique_group``) so runs in parallel, or a
leftover retained message, never reach another test."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from support import require

from sparkplug_b.payload import Payload
from sparkplug_b.topic import Topic

BROKER = ("127.0.0.1", 1883)
BROKER_URL = f"mqtt://{BROKER[0]}:{BROKER[1]}"


def require_broker() -> None:
    try:
        with socket.create_connection(BROKER, timeout=1.0):
            pass
    except OSError:
        require(False, f"an MQTT broker (Mosquitto) at {BROKER_URL}")


def unique_group(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Recorder:
    """A bare MQTT subscriber that keeps every Sparkplug message of a group, decoded."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.messages: list[tuple[Topic, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"rec-{group}")
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect(*BROKER)
        self.client.subscribe(f"spBv1.0/{group}/#", qos=1)
        self.client.loop_start()
        if not ready.wait(5):
            raise TimeoutError("the recorder's subscription was not acknowledged")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        topic = Topic.parse(msg.topic)
        with self.lock:
            self.messages.append((topic, Payload.FromString(msg.payload)))

    def of(self, message_type: str) -> list[tuple[Topic, Any]]:
        with self.lock:
            return [(t, p) for t, p in self.messages if t.message_type == message_type]

    def wait_for(self, what: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() > deadline:
                raise TimeoutError("the expected Sparkplug messages did not arrive")
            time.sleep(0.02)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
