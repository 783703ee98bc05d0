"""Material lots: the staged lots per material, and how a work unit consumes them per its
operation segment's bill of material."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import simpy

from plant_models.schema import MaterialRequirement, PlantModel
from twin.engine.common import INFINITE, SimGen
from twin.engine.jobs import Job
from twin.hooks import STARVED

if TYPE_CHECKING:
    from twin.engine.lines import LineSim
    from twin.engine.plant import Engine
    from twin.engine.stations import WorkUnitSim
    from twin.hooks import PlantObserver


@dataclass
class LotState:
    id: str
    material: str
    remaining: float
    line: str | None
    usable: bool


class MaterialStore:
    """The staged lots per material; picks FIFO among usable lots (available, no deviation).

    Deliberately wrong/expired/short lots are not picked by themselves: a scenario loads
    them on a work unit with ``Engine.load_material_lot``.
    """

    def __init__(self, env: simpy.Environment, model: PlantModel) -> None:
        self.env = env
        self.lots: dict[str, LotState] = {}
        self.by_material: dict[str, list[LotState]] = {}
        self.unlimited = {m.id for m in model.materials if m.unlimited_supply}
        self.arrived: simpy.Event = env.event()
        for lot in model.material_lots:
            self.add(
                lot.id,
                lot.material,
                lot.quantity,
                lot.line,
                lot.status == "available" and lot.deviation == "none",
            )

    def add(
        self, lot_id: str, material: str, quantity: float, line: str | None, usable: bool
    ) -> None:
        state = LotState(lot_id, material, quantity, line, usable)
        self.lots[lot_id] = state
        self.by_material.setdefault(material, []).append(state)
        if usable:
            arrived, self.arrived = self.arrived, self.env.event()
            arrived.succeed()

    def pick(self, material: str, line: str) -> LotState | None:
        if material in self.unlimited:
            lot_id = f"{material}-BULK"
            lot = self.lots.get(lot_id)
            if lot is None:
                lot = LotState(lot_id, material, INFINITE, None, True)
                self.lots[lot_id] = lot
            return lot
        for lot in self.by_material.get(material, ()):
            if lot.usable and lot.remaining > 1e-9 and lot.line in (None, line):
                return lot
        return None


class ConsumesMaterial:
    """A work unit's material use (mixed into ``WorkUnitSim``): step 4 of its cycle."""

    if not TYPE_CHECKING:  # mypy would take the empty slots for the work unit's
        __slots__ = ()

    if TYPE_CHECKING:  # what this part uses of the work unit (``WorkUnitSim`` sets it)
        env: simpy.Environment
        engine: Engine
        code: str
        line: LineSim
        obs: list[PlantObserver]
        current_lots: dict[str, LotState]
        forced_lots: dict[str, str]

        def enter(self, state: str, reason: str = "") -> None: ...

    def _consume(self, job: Job, bill: tuple[MaterialRequirement, ...]) -> SimGen:
        store = self.engine.materials
        ledger = self.engine.ledger
        for req in bill:
            need = req.quantity_per_unit
            while need > 1e-12:
                lot = self.current_lots.get(req.material)
                if lot is None or lot.remaining <= 1e-12:
                    forced = self.forced_lots.pop(req.material, None)
                    lot = (
                        store.lots.get(forced)
                        if forced
                        else store.pick(req.material, self.line.code)
                    )
                    if lot is None:
                        self.enter(STARVED, f"starved: material {req.material} short")
                        yield store.arrived
                        continue
                    self.current_lots[req.material] = lot
                    if self.obs:  # MaterialLotID changes
                        self.engine.notify_job(cast("WorkUnitSim", self))
                take = min(need, lot.remaining)
                lot.remaining -= take
                need -= take
                ledger.lot_consumed(self.env.now, job.id, self.code, req.material, lot.id, take)
