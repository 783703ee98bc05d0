"""Helpers of the Sparkplug tests: the broker, unique group ids, a recording subscriber.

Every test uses a group id of its own (``unique_group``) so runs in parallel, or a
leftover retained message, never reach another test."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from support import npm_installed, require

from plant_models.loader import load_plant_model
from sparkplug_b.payload import Payload
from sparkplug_b.topic import Topic
from twin.engine import Engine
from twin.opcua.bench_raw import free_port
from twin.opcua.runtime import ServeOptions
from twin.sparkplug.edge import SparkplugPublisher

BROKER = ("127.0.0.1", 1883)
BROKER_URL = f"mqtt://{BROKER[0]}:{BROKER[1]}"
MINI = Path(__file__).parents[1] / "opcua" / "mini_plant.yaml"
NODE_DIR = Path(__file__).with_name("node")


def require_broker() -> None:
    try:
        with socket.create_connection(BROKER, timeout=1.0):
            pass
    except OSError:
        require(False, f"an MQTT broker (Mosquitto) at {BROKER_URL}")


def clear_retained(topic: str) -> None:
    """Remove a retained message (a host's STATE) from the shared broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"clear-{uuid.uuid4()}")
    client.connect(*BROKER)
    client.loop_start()
    client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def served_over_sparkplug(group: str) -> ServeOptions:
    """``twin serve --sparkplug`` at speed 20 on the shared broker, orders only dispatched."""
    return ServeOptions(
        endpoint=f"opc.tcp://127.0.0.1:{free_port()}",
        speed=20.0,
        auto_dispatch=False,
        sparkplug=BROKER_URL,
        sparkplug_group=group,
    )


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
        self.client.disconnect()  # first: the network thread then ends at once
        self.client.loop_stop()


class Twin:
    """An unpaced engine and its Sparkplug publisher in a loop the test drives."""

    def __init__(self, group: str, primary_host: str | None = None) -> None:
        self.model = load_plant_model(MINI)
        self.engine = Engine(self.model, 0, speed=None, auto_dispatch=True)
        self.publisher = SparkplugPublisher(
            self.model, BROKER_URL, group, start=self.model.plant.start, primary_host=primary_host
        )
        self.engine.add_observer(self.publisher)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.publisher.start())

    def advance(self, seconds: float) -> None:
        self.engine.run_until(self.engine.now + seconds)
        self.publisher.flush()

    def pump(self, seconds: float) -> None:
        """Let the pump answer commands for a while (births on an NCMD)."""
        self.publisher._stopping = False
        task = self.loop.create_task(self.publisher.run())
        self.loop.run_until_complete(asyncio.sleep(seconds))
        self.publisher.stop()
        self.loop.run_until_complete(task)

    def close(self) -> None:
        self.publisher.close()
        self.loop.close()


def tahu_node() -> str:
    """``node`` with Eclipse Tahu's JavaScript client and codec installed in ``node/``
    (``npm ci`` from the committed lock file on first use)."""
    return npm_installed(NODE_DIR, "sparkplug-client", "the Eclipse Tahu interoperability tests")


def start_node_script(node: str, *args: str, ready: str) -> subprocess.Popen[str]:
    """Run ``node/<script>`` and wait for its ``ready`` line on stdout."""
    proc = subprocess.Popen(
        [node, *args],
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != ready:
        proc.kill()
        raise RuntimeError(f"{args[0]} said {line!r}, not {ready!r}: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    return proc
