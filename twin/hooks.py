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
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from plant_models.schema import PlantModel


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


@runtime_checkable
class BatchObserver(Protocol):
    """An observer that also shows batch phases (ISA-88) implements this besides
    ``PlantObserver``; the engine tells it of the batch units' phases only."""

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
        """Batch ``batch_id`` (``quantity`` in the batch's unit) entered phase
        ``phase_number`` (1-based, in recipe order) ``phase_name`` at ``work_unit``. The
        last phase stays shown until the next batch starts; before the first batch the
        number is 0 and the names empty."""


class PlantControl(Protocol):
    """Commands into the running plant (called from the OPC UA methods)."""

    def store_and_start(self, work_unit: str, job_order: str, product: str, quantity: int) -> None:
        """Queue a job order at the work unit (or its line) and start it when possible."""

    def stop(self, work_unit: str) -> None:
        """Stop the work unit after the current cycle (PackML Stopping -> Stopped)."""

    def reset(self, work_unit: str) -> None:
        """Reset a stopped or aborted work unit to Idle (PackML Resetting -> Idle)."""


# ---------------------------------------------------------------------------------------
# The state vocabulary and its PackML mapping (what ``on_state`` sends, what OPC UA shows).
# ---------------------------------------------------------------------------------------

RUNNING = "running"
IDLE = "idle"
DOWN = "down"
SETUP = "setup"
BLOCKED = "blocked"
STARVED = "starved"
MAINTENANCE = "maintenance"
OFFLINE = "offline"

MES_STATES: tuple[str, ...] = (RUNNING, IDLE, DOWN, SETUP, BLOCKED, STARVED, MAINTENANCE, OFFLINE)
"""The MES words for work unit states (``mes_core.schemas.plant_events.EquipmentState``)."""

PACKML_FOR_STATE: dict[str, PackMLState] = {
    RUNNING: PackMLState.EXECUTE,  # producing (ISA-TR88.00.02 6.2: Execute)
    IDLE: PackMLState.IDLE,  # reset, waiting for a job order or an operator
    # Starved and blocked are external conditions (upstream empty, downstream full):
    # PackML's Suspended is exactly that; StopReason tells which.
    STARVED: PackMLState.SUSPENDED,
    BLOCKED: PackMLState.SUSPENDED,
    # A breakdown (jam, web break...) is an internal equipment condition that an operator
    # clears: PackML Held; Aborted is kept for emergency stops, which the twin has not.
    DOWN: PackMLState.HELD,
    # Changeover: Held with StopReason "setup: ..." (the PackML way without a separate
    # Changeover unit mode on the wire).
    SETUP: PackMLState.HELD,
    MAINTENANCE: PackMLState.STOPPED,  # UnitMode Maintenance
    OFFLINE: PackMLState.STOPPED,  # stopped by command (Stop) until Reset
}
"""MES state word -> PackML state number published in the ``State`` tag.

Several MES states share a PackML state; the OPC UA ``StopReason`` tag (the observer's
``reason``) always starts with the MES word for those (``starved: ...``, ``blocked: ...``,
``setup: ...``, ``down: ...``) so a collector can map back without ambiguity.
"""

UNIT_MODE_FOR_STATE: dict[str, str] = {s: "Production" for s in MES_STATES} | {
    MAINTENANCE: "Maintenance"
}
"""MES state -> PackML ``UnitMode``."""

ALARM_BREAKDOWN = "breakdown"
ALARM_BLOCKED = "blocked"
ALARM_STARVED = "starved"
"""Alarm names sent through ``on_alarm`` (blocked/starved only after a delay, see engine)."""


def product_ids(model: PlantModel) -> dict[str, str]:
    """What ``StoreAndStart``'s productId may name, to the plant model's product: the
    product itself, or the material it makes when one product makes it (an MES names
    the product by its material definition, ISA-95 Part 2)."""
    materials: dict[str, list[str]] = {}
    for product in model.products:
        materials.setdefault(product.material, []).append(product.id)
    ids = {m: products[0] for m, products in materials.items() if len(products) == 1}
    ids.update({p.id: p.id for p in model.products})
    return ids
