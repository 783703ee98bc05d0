"""Fixtures of the OPC UA tests: a served test plant, built once per module.

asyncua servers need a running event loop; the served plant lives in an event loop of
its own thread for the whole module, and each test talks to it over the network with
its own client (``asyncio.run`` in the test), as any OPC UA client would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from plant_models.loader import load_plant_model
from plant_models.schema import PlantModel
from twin.opcua.bench_raw import free_port
from twin.opcua.runtime import ServedPlant, ServeOptions

MINI = Path(__file__).with_name("mini_plant.yaml")
T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def mini() -> PlantModel:
    return load_plant_model(MINI)


@pytest.fixture(scope="module")
def served(mini: PlantModel) -> Iterator[tuple[ServedPlant, LoopThread]]:
    """The test plant paced at 20x, served at a free port, for the whole module."""
    loop = LoopThread()
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    plant = ServedPlant(mini, ServeOptions(endpoint=url, speed=20.0, auto_dispatch=False))
    loop.run(plant.start())
    try:
        yield plant, loop
    finally:
        loop.run(plant.stop())
        loop.close()


def run(coro: Awaitable[Any]) -> Any:
    """Run a test's client coroutine."""
    return asyncio.run(coro)  # type: ignore[arg-type]
