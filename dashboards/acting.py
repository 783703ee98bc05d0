"""What a person does at a dashboard terminal, through their own session's MES client.

The operator terminal and the supervisor/QA page act only through ``mes_core.client`` as
whoever logged in at /login: the MES judges the actor (roles, certifications, the rules),
and a refusal comes back as the MES said it: its rule (``MATERIAL_NOT_ON_BOM``, ``HELD``,
``SEQUENCE``...) and its message, shown as a real terminal would. Each action and its
answer is an :class:`Outcome`; beside a run, the pages post it to the run's session record
(``dashboards.run_control``), which becomes the report's ``people`` section.

Time: beside a simulated run (``act_at_plant_time``) an action states the plant's clock
(the latest plant event time the MES holds) as its business time: the run's people hold
the ``backdate`` permission, and the run lives on the plant's timeline. Elsewhere nobody
states a time and the MES's clock is the business time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx

import mes_core.client as mes
from mes_core.quality.schemas import MeasurementOut, NonconformanceOut
from mes_core.schemas.execution import JobOrderOut

#: Job order states with nothing left for a terminal to do.
DONE_STATES = frozenset({"planned", "completed", "closed", "aborted"})


@dataclass
class Outcome:
    """One action and the MES's answer."""

    action: str
    target: str
    objects: list[str] = field(default_factory=list)
    accepted: bool = False
    status: int | None = None
    rule: str | None = None
    message: str = ""

    def record(self, person: str, roles: tuple[str, ...]) -> dict[str, Any]:
        """The session record's entry (``twin.scenario.session_record.TraineeActionIn``)."""
        return {"person": person, "roles": list(roles), **asdict(self)}


@dataclass(frozen=True)
class QueueRow:
    """One operation waiting for, or running on, a work unit."""

    job_order: str
    sequence: int
    name: str
    product: str
    order_state: str
    state: str
    good: float
    scrap: float
    quantity: float


class Acting:
    """A logged-in person's terminal actions and the reads they need."""

    def __init__(
        self,
        client: mes.MesClient,
        *,
        act_at_plant_time: bool = False,
        plant_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.act_at_plant_time = act_at_plant_time
        self.plant_clock = plant_clock
        """The run's own plant clock (beside a run); else the MES's plant clock is read."""

    # -- reads ---------------------------------------------------------------------------

    def work_units(self) -> list[str]:
        return sorted(e.code for e in self.client.list_equipment() if e.level == "work_unit")

    def orders(self) -> list[JobOrderOut]:
        """Job orders with something left to do (released, dispatched, running, held)."""
        out: list[JobOrderOut] = []
        for state in ("released", "dispatched", "running", "held"):
            out += self.client.list_job_orders(state=state)
        return out

    def queue(self, work_unit: str) -> list[QueueRow]:
        """The operations of open job orders planned for or running on ``work_unit``."""
        unit = self.client.get_equipment(work_unit)
        rows = []
        for jo in self.orders():
            for op in sorted(jo.operations, key=lambda o: o.sequence):
                where = op.work_unit or op.planned_work_unit
                mine = where == work_unit or (
                    where is None and op.equipment_class == unit.equipment_class
                )
                if mine and op.state not in ("completed", "skipped"):
                    rows.append(
                        QueueRow(
                            jo.code,
                            op.sequence,
                            op.name,
                            jo.product,
                            jo.state,
                            op.state,
                            op.good,
                            op.scrap,
                            jo.quantity,
                        )
                    )
        return sorted(rows, key=lambda r: (r.state != "running", r.job_order, r.sequence))

    def open_nonconformances(self) -> list[NonconformanceOut]:
        return self.client.nonconformances(state="open")

    def nonconformance(self, number: str) -> NonconformanceOut:
        return self.client.get_nonconformance(number)

    def evidence(self, nc: NonconformanceOut, limit: int = 12) -> list[MeasurementOut]:
        """The latest results of the nonconformance's characteristic (its SPC evidence)."""
        if nc.characteristic_id is None:
            return []
        return self.client.measurements(nc.characteristic_id, limit=limit)

    # -- acting --------------------------------------------------------------------------

    def _at(self) -> datetime | None:
        if not self.act_at_plant_time:
            return None
        if self.plant_clock is not None:
            try:
                return self.plant_clock()
            except Exception:  # noqa: BLE001 - the run is gone: the MES's plant clock
                pass
        # The latest plant event the MES holds: behind the plant while it is quiet (a setup).
        return self.client.plant_clock().plant_time

    def _do(self, outcome: Outcome, call: Callable[[datetime | None], str]) -> Outcome:
        try:
            outcome.message = call(self._at())
            outcome.accepted = True
            outcome.status = 200
        except mes.MesClientError as exc:
            outcome.status = exc.status
            outcome.rule = exc.rule
            outcome.message = exc.message or str(exc)
        except httpx.HTTPError as exc:
            outcome.message = f"the MES did not answer ({type(exc).__name__}); try again"
        return outcome

    def start(self, order: str, seq: int, work_unit: str, person: str) -> Outcome:
        def call(at: datetime | None) -> str:
            jo = self.client.start_operation(
                order, seq, work_unit=work_unit, operators=[person], occurred_at=at
            )
            op = next(o for o in jo.operations if o.sequence == seq)
            return f"operation {seq} ({op.name}) of {order} is {op.state} on {work_unit}"

        return self._do(
            Outcome(
                "start_operation",
                f"{order}/{seq} on {work_unit}",
                [f"job_order:{order}", f"work_unit:{work_unit}"],
            ),
            call,
        )

    def consume(self, order: str, seq: int, lot: str, quantity: float) -> Outcome:
        def call(at: datetime | None) -> str:
            self.client.consume_lot(order, seq, lot, quantity, occurred_at=at)
            return f"{quantity:g} of lot {lot} consumed by {order}/{seq}"

        return self._do(
            Outcome(
                "consume_lot",
                f"{quantity:g} of {lot} on {order}/{seq}",
                [f"job_order:{order}", f"lot:{lot}"],
            ),
            call,
        )

    def report(self, order: str, seq: int, good: float, scrap: float) -> Outcome:
        def call(at: datetime | None) -> str:
            p = self.client.report_quantities(order, seq, good=good, scrap=scrap, occurred_at=at)
            return f"{order}/{seq} now {p.good:g} good, {p.scrap:g} scrap"

        return self._do(
            Outcome(
                "report_counts",
                f"{good:g} good {scrap:g} scrap on {order}/{seq}",
                [f"job_order:{order}"],
            ),
            call,
        )

    def complete(self, order: str, seq: int, output_lot: str | None) -> Outcome:
        def call(at: datetime | None) -> str:
            lot = mes_output_lot(output_lot)
            jo = self.client.complete_operation(order, seq, output_lot=lot, occurred_at=at)
            return f"operation {seq} of {order} completed; the job order is {jo.state}"

        objects = [f"job_order:{order}"] + ([f"lot:{output_lot}"] if output_lot else [])
        return self._do(Outcome("complete_operation", f"{order}/{seq}", objects), call)

    def clock(self, direction: str) -> Outcome:
        def call(at: datetime | None) -> str:
            if direction == "in":
                self.client.clock_in(occurred_at=at)
            else:
                self.client.clock_out(occurred_at=at)
            return f"clocked {direction}"

        return self._do(Outcome(f"clock_{direction}", "attendance"), call)

    def hold_order(self, order: str, reason: str, release: bool = False) -> Outcome:
        def call(_at: datetime | None) -> str:
            if release:
                jo = self.client.release_job_order_hold(order, reason)
            else:
                jo = self.client.hold_job_order(order, reason)
            return f"job order {order} is {jo.state}"

        action = "release_job_order_hold" if release else "hold_job_order"
        return self._do(Outcome(action, order, [f"job_order:{order}"]), call)

    def hold_lot(self, lot: str, reason: str, release: bool = False) -> Outcome:
        def call(_at: datetime | None) -> str:
            if release:
                out = self.client.release_lot(lot, reason)
            else:
                out = self.client.hold_lot(lot, reason)
            return f"lot {lot} is {out.status}"

        action = "release_lot" if release else "hold_lot"
        return self._do(Outcome(action, lot, [f"lot:{lot}"]), call)

    def dispose(
        self, number: str, decision: str, meaning: str, reason: str, password: str
    ) -> tuple[Outcome, NonconformanceOut | None]:
        """Sign a disposition; the outcome and the signed nonconformance (its signature
        manifestation) when the MES accepted it."""
        signed: list[NonconformanceOut] = []
        objects = [f"nc:{number}"]
        try:  # what it holds, so the session record knows what the signature touched
            before = self.client.get_nonconformance(number)
            objects += [f"job_order:{j}" for j in before.held_job_orders]
            objects += [f"lot:{lot}" for lot in before.held_lots]
        except (mes.MesClientError, httpx.HTTPError):
            pass

        def call(at: datetime | None) -> str:
            nc = self.client.dispose_nonconformance(
                number, decision, password=password, meaning=meaning, reason=reason, occurred_at=at
            )
            signed.append(nc)
            return f"{number} disposed: {nc.disposition}"

        outcome = self._do(Outcome(f"dispose_{decision}", number, objects), call)
        return outcome, (signed[0] if signed else None)


def mes_output_lot(code: str | None) -> Any:
    from mes_core.schemas.execution import OutputLot

    return OutputLot(code=code) if code else None
