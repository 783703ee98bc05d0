"""What every part of the engine shares: the generator type, infinity, the errors."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

SimGen = Generator[simpy.Event, Any, Any]

INFINITE = float("inf")

STOPPED = "offline: stopped by command"
"""The reason shown while a work unit is stopped by the ``Stop`` command (PackML Stopped)."""


class ControlError(ValueError):
    """A command into the plant (``PlantControl``) was refused; the message says why."""


class CannotKeepPace(RuntimeError):
    """A paced run fell behind the wall clock by more than it may (``lag`` seconds)."""

    def __init__(self, lag: float, sim_time: float, speed: float) -> None:
        self.lag = lag
        self.sim_time = sim_time
        self.speed = speed
        super().__init__(
            f"cannot keep pace at speed {speed:g}: {lag:.3f} s behind the wall clock "
            f"at simulated time {sim_time:.1f} s"
        )
