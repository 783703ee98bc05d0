"""Commands into the running plant: ISA-95 job control (``PlantControl`` in ``twin.hooks``:
store and start, stop, reset) and the scenario runner's fault injection (lots, failures,
maintenance, drift) — mixed into ``Engine``; every command is applied between events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plant_models.schema import FailureMode
from twin.engine.common import STOPPED, ControlError
from twin.hooks import DOWN, IDLE, MAINTENANCE, OFFLINE, STARVED

if TYPE_CHECKING:
    import simpy

    from plant_models.schema import PlantModel
    from twin.engine.lines import LineSim
    from twin.engine.materials import MaterialStore
    from twin.engine.process_values import ProcessValueSim
    from twin.engine.stations import WorkUnitSim


class Controls:
    """The commands (``Engine`` methods)."""

    if TYPE_CHECKING:  # what this part uses of the engine (``Engine`` sets it)
        env: simpy.Environment
        model: PlantModel
        materials: MaterialStore
        values: dict[tuple[str, str], ProcessValueSim]
        line_by_code: dict[str, LineSim]
        work_units: dict[str, WorkUnitSim]

        def _dispatch(
            self, job_id: str, product_id: str, quantity: int, line_code: str | None, source: str
        ) -> None: ...

    # -- PlantControl (twin.hooks) -------------------------------------------------------
    def _line_of(self, code: str) -> LineSim:
        if code in self.line_by_code:
            return self.line_by_code[code]
        wu = self.work_units.get(code)
        if wu is None:
            raise ControlError(f"no line or work unit {code!r} in plant {self.model.plant.code}")
        return wu.line

    def _work_unit(self, code: str) -> WorkUnitSim:
        wu = self.work_units.get(code)
        if wu is None:
            raise ControlError(f"no work unit {code!r} in plant {self.model.plant.code}")
        return wu

    def store_and_start(self, work_unit: str, job_order: str, product: str, quantity: int) -> None:
        """Queue ``job_order`` at the line of ``work_unit`` (or line code); it starts when
        the line is free (ISA-95 Job Control, OPC UA ``StoreAndStart``)."""
        line = self._line_of(work_unit)
        self._dispatch(job_order, product, quantity, line.code, source="store_and_start")

    def stop(self, work_unit: str) -> None:
        """Stop the work unit after its current cycle (offline until ``reset``); a work
        unit waiting (idle, starved) goes offline at once."""
        wu = self._work_unit(work_unit)
        wu.stop_requested = True
        if not wu.broken and wu.state in (IDLE, STARVED):
            wu.stopped_waiting = wu.base
            wu.enter(OFFLINE, STOPPED)

    def reset(self, work_unit: str) -> None:
        """Reset a stopped work unit to idle; one stopped while waiting and reset before
        its wait ended waits again, shown as it was (idle, starved)."""
        wu = self._work_unit(work_unit)
        if wu.reset_event is None:
            waiting, wu.stopped_waiting = wu.stopped_waiting, None
            if wu.stop_requested and waiting is not None and wu.base == (OFFLINE, STOPPED):
                wu.enter(*waiting)
            wu.stop_requested = False
            return
        wu.reset_event.succeed()

    # -- fault injection (scenario runner) ----------------------------------------------
    def load_material_lot(self, work_unit: str, lot: str) -> None:
        """Make ``work_unit`` take its next material from ``lot`` (wrong/expired/short lots)."""
        wu = self._work_unit(work_unit)
        state = self.materials.lots.get(lot)
        if state is None:
            raise ControlError(f"no material lot {lot!r} in plant {self.model.plant.code}")
        wu.forced_lots[state.material] = lot
        wu.current_lots.pop(state.material, None)

    def add_material_lot(
        self, lot: str, material: str, quantity: float, line: str | None = None
    ) -> None:
        """Stage a new usable lot (a delivery)."""
        if lot in self.materials.lots:
            raise ControlError(f"material lot {lot!r} exists already")
        self.materials.add(lot, material, quantity, line, True)

    def inject_failure(self, work_unit: str, duration: float, reason: str = "injected") -> None:
        """Break ``work_unit`` down now for ``duration`` seconds (a cycle in progress is
        interrupted and resumes after the repair)."""
        self._stop_for(work_unit, duration, reason, DOWN)

    def start_maintenance(self, work_unit: str, duration: float, reason: str = "planned") -> None:
        """Take ``work_unit`` into maintenance now for ``duration`` seconds (PackML
        Stopped, UnitMode Maintenance)."""
        self._stop_for(work_unit, duration, reason, MAINTENANCE)

    def _stop_for(self, work_unit: str, duration: float, reason: str, state: str) -> None:
        wu = self._work_unit(work_unit)
        if not duration > 0:
            raise ControlError(f"{state} duration must be > 0 s, got {duration}")
        mode = FailureMode(name=reason, basis="clock", time_to_failure=1.0, time_to_repair=duration)
        self.env.process(wu._breakdown(mode, duration, interrupt=True, state=state))

    def set_value_drift(
        self, work_unit: str, name: str, drift_per_hour: float, offset: float = 0.0
    ) -> None:
        """Change a process value's drift (and add an offset) from now on."""
        pv = self.values.get((work_unit, name))
        if pv is None:
            raise ControlError(f"no process value {name!r} on work unit {work_unit!r}")
        # Keep the value continuous at the moment the drift changes.
        now = self.env.now
        pv.offset += (pv.drift - drift_per_hour / 3600.0) * now + offset
        pv.drift = drift_per_hour / 3600.0
