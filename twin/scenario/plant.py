"""The twin engine as the runner drives it: a thin seam over ``twin.engine.Engine``.

The runner owns the clock: it advances the engine tick by tick (``run_until``, as fast as
possible; the runner paces to ``speed`` itself), and between ticks injects faults, lets the
people act and moves plant events to the MES. The engine's own order stream is off: job
orders reach the plant only when the MES side dispatches them. This module is the only
place that knows the engine's API.
"""

from __future__ import annotations

from collections.abc import Callable

from plant_models.schema import PlantModel
from twin.engine import ControlError, Engine
from twin.hooks import PlantObserver
from twin.ledger import Ledger, LedgerRecord


class EnginePlant:
    """The plant of one run."""

    def __init__(self, model: PlantModel, seed: int) -> None:
        self.model = model
        self.engine = Engine(model, seed, speed=None, auto_dispatch=False)
        self._drift: dict[tuple[str, str], float] = {
            (wu.code, pv.name): pv.drift_per_hour
            for wu in model.all_work_units()
            for pv in wu.process_values
        }

    @property
    def ledger(self) -> Ledger:
        return self.engine.ledger

    def now(self) -> float:
        return self.engine.now

    def run_until(self, t: float) -> None:
        if t > self.engine.now:
            self.engine.run_until(t)

    def add_observer(self, observer: PlantObserver) -> None:
        self.engine.add_observer(observer)

    def subscribe(self, callback: Callable[[LedgerRecord], None]) -> None:
        self.engine.ledger.subscribe(callback)

    def dispatch(self, work_unit: str, job_order: str, product: str, quantity: int) -> str:
        """``StoreAndStart`` at the line of ``work_unit``; '' or why the plant refused."""
        try:
            self.engine.store_and_start(work_unit, job_order, product, quantity)
        except ControlError as exc:
            return str(exc)
        return ""

    def breakdown(self, work_unit: str, duration: float, reason: str) -> str:
        try:
            self.engine.inject_failure(work_unit, duration, reason)
        except ControlError as exc:
            return str(exc)
        return ""

    def drift(self, work_unit: str, value: str, rate_per_hour: float) -> str:
        """Add ``rate_per_hour`` to the value's own drift from now on."""
        base = self._drift.get((work_unit, value), 0.0)
        try:
            self.engine.set_value_drift(work_unit, value, base + rate_per_hour)
        except ControlError as exc:
            return str(exc)
        return ""

    def end_drift(self, work_unit: str, value: str, rate_per_hour: float, lasted: float) -> str:
        """Stop an injected drift and take back the offset it built up (the fault is fixed)."""
        base = self._drift.get((work_unit, value), 0.0)
        try:
            self.engine.set_value_drift(
                work_unit, value, base, offset=-rate_per_hour * lasted / 3600.0
            )
        except ControlError as exc:
            return str(exc)
        return ""

    def finish(self) -> None:
        self.engine.finish()
