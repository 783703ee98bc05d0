"""The twin engine as the runner drives it: a small seam over ``twin.engine``.

The runner owns the clock: it advances the engine tick by tick (``run_until``), and
between ticks injects faults, lets the people act and moves plant events to the MES. This
module is the only place that knows the engine's API.
"""

from __future__ import annotations

from typing import Protocol

from plant_models.schema import PlantModel
from twin.hooks import PlantObserver
from twin.ledger import Ledger


class PlantSim(Protocol):
    """What the runner needs of the engine."""

    ledger: Ledger

    def now(self) -> float:
        """Simulated seconds since the model's start."""
        ...

    def run_until(self, t: float) -> None:
        """Advance the simulation to ``t``."""
        ...

    def add_observer(self, observer: PlantObserver) -> None: ...

    def dispatch(self, work_unit: str, job_order: str, product: str, quantity: int) -> None:
        """``StoreAndStart`` a job order at a work unit (the line's first)."""
        ...

    def breakdown(self, work_unit: str, duration: float, reason: str) -> str:
        """Break ``work_unit`` down now for ``duration``; returns '' or why it could not."""
        ...

    def drift(self, work_unit: str, value: str, rate_per_hour: float, duration: float) -> str:
        """Make a process value drift from now on; returns '' or why it could not."""
        ...

    def finish(self) -> None:
        """Close the ledger at the current time."""
        ...


class EngineMissing(RuntimeError):
    """The twin engine is not available in this installation."""


def build_plant(model: PlantModel, seed: int) -> PlantSim:
    """The engine for ``model``, seeded, as fast as the runner drives it."""
    raise EngineMissing("twin.engine is not available yet")
