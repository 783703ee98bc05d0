"""What the engine tells the world while it runs: the observer contract.

The SimPy engine calls a ``PlantObserver`` whenever something a PLC would expose changes
(PackML state, cumulative counters, process values, current job, alarms). The OPC UA
server (``twin.opcua``) is one observer; the ground-truth ledger streams through the same
calls; tests use a recording observer. Observers must not block: the engine calls them
inline, in simulated time ``t`` (seconds since the model's start); ``wall`` is the
wall-clock time (epoch seconds) that ``t`` corresponds to in paced runs, else ``None``.

Commands flow the other way through ``PlantControl``: the MES dispatches job orders to a
work unit (ISA-95 Job Control, OPC UA method ``StoreAndStart``) and stops or resets it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class PackMLState(IntEnum):
    """PackML (ISA-TR88.00.02) state numbers, as published in the ``State`` tag."""

    UNDEFINED = 0
    CLEARING = 1
    STOPPED = 2
    STARTING = 3
    IDLE = 4
    SUSPENDED = 5
    EXECUTE = 6
    STOPPING = 7
    ABORTING = 8
    ABORTED = 9
    HOLDING = 10
    HELD = 11
    UNHOLDING = 12
    SUSPENDING = 13
    UNSUSPENDING = 14
    RESETTING = 15
    COMPLETING = 16
    COMPLETE = 17


class PlantObserver(Protocol):
    """Receives every externally visible change of the simulated plant, as it happens."""

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        """``work_unit`` entered ``state`` (an MES state word: running, idle, down, setup,
        blocked, starved, maintenance, offline) shown as ``packml_state`` with a
        ``reason`` (the ``StopReason`` tag; empty when running)."""

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        """Cumulative PackML counters after a change (never decrease, never reset)."""

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        """A process value was sampled."""

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        """The work unit now works on ``job_order`` (empty strings when none)."""

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
        """An alarm was raised (``active``) or cleared."""


class PlantControl(Protocol):
    """Commands into the running plant (called from the OPC UA methods)."""

    def store_and_start(self, work_unit: str, job_order: str, product: str, quantity: int) -> None:
        """Queue a job order at the work unit (or its line) and start it when possible."""

    def stop(self, work_unit: str) -> None:
        """Stop the work unit after the current cycle (PackML Stopping -> Stopped)."""

    def reset(self, work_unit: str) -> None:
        """Reset a stopped or aborted work unit to Idle (PackML Resetting -> Idle)."""
