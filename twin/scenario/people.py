"""Simulated ERP, operators, supervisor and QA: the people in the loop of a scenario run.

They act on the MES only through the system-under-test adapter, the way people act on an
MES: ERP sends job orders at their release times; the supervisor dispatches a released
order to its line; when a work unit picks up a job order, a certified operator of that line
starts the matching operation in the MES (after their reaction delay, and only once the
routing allows it: predecessors complete, or partial start), scans the right lots for the
operation's bill of material, and completes the operation when the work unit is done with
the job; QA disposes whatever is on hold, with a signature.

Everything here is driven by the runner's clock (simulated seconds), so it is as
reproducible as the engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from plant_models.scenario import Scenario
from plant_models.schema import MaterialLot, OperationSegment, Operator, PlantModel, Product
from twin.scenario.sut import Answer, OrderRequest, SystemUnderTest

DispatchFn = Callable[[OrderRequest], None]


@dataclass
class _Op:
    """One operation (job order x segment) as the people track it."""

    order: str
    segment: OperationSegment
    index: int
    work_unit: str
    ready_at: float | None = None  # when the work unit picked the job up (+ reaction)
    started: bool = False
    done_at: float | None = None  # when the work unit finished the job
    completed: bool = False
    attempts: int = 0
    last_answer: Answer | None = None


@dataclass
class PeopleLog:
    """What the people did, for the report."""

    actions: int = 0
    refused: list[tuple[float, str, Answer]] = field(default_factory=list)
    unavailable: int = 0


class People:
    """The simulated ERP, supervisor, operators and QA of one run."""

    def __init__(
        self,
        scenario: Scenario,
        plant: PlantModel,
        sut: SystemUnderTest,
        orders: list[OrderRequest],
        dispatch: DispatchFn,
    ) -> None:
        self.scenario = scenario
        self.plant = plant
        self.sut = sut
        self.dispatch = dispatch
        self.pending_orders = sorted(orders, key=lambda o: (o.release_at, o.id))
        self.order_quantity = {o.id: o.quantity for o in orders}
        self.sent: dict[str, float] = {}
        self.dispatched: dict[str, float] = {}
        self.products = {p.id: p for p in plant.products}
        self.order_product: dict[str, Product] = {}
        self.ops: dict[tuple[str, str], _Op] = {}
        self.log = PeopleLog()
        self.specs = {p.id: p for p in scenario.people}
        self.operators = [
            o for o in plant.operators if o.id in self.specs and self.specs[o.id].role == "operator"
        ]
        self.qa = [p for p in scenario.people if p.role == "qa"]
        self.lot_left: dict[str, float] = {
            lot.id: lot.quantity for lot in plant.material_lots if lot.status == "available"
        }
        self.disposed: dict[str, float] = {}
        self.wu_line = {wu.code: line.code for line in plant.lines for wu in line.work_units}
        self.wu_class = {
            wu.code: wu.equipment_class for line in plant.lines for wu in line.work_units
        }
        self.work_units_of_order: dict[str, set[str]] = defaultdict(set)

    # -- plant happenings (fed by the runner's observer) --------------------------------

    def job_at_work_unit(self, t: float, work_unit: str, job: str, previous: str) -> None:
        """Work unit ``work_unit`` switched from ``previous`` to ``job`` at ``t``."""
        if previous:
            op = self._op_for(previous, work_unit)
            if op is not None and op.done_at is None:
                op.done_at = t
        if job:
            self.work_units_of_order[job].add(work_unit)
            op = self._op_for(job, work_unit)
            if op is not None and op.ready_at is None:
                op.ready_at = t

    def job_finished(self, t: float, job: str) -> None:
        """The plant finished ``job`` everywhere (every work unit is done with it)."""
        for (order, _seg), op in self.ops.items():
            if order == job and op.done_at is None:
                op.done_at = t

    def _op_for(self, order: str, work_unit: str) -> _Op | None:
        product = self.order_product.get(order)
        if product is None:
            return None
        cls = self.wu_class.get(work_unit)
        for index, seg in enumerate(product.segments):
            if seg.equipment_class == cls:
                key = (order, seg.id)
                if key not in self.ops:
                    self.ops[key] = _Op(order, seg, index, work_unit)
                return self.ops[key]
        return None

    # -- acting ----------------------------------------------------------------------------

    def act(self, t: float) -> None:
        """Do everything due at simulated time ``t``. Raises ``SutUnavailable`` when the MES
        is down; the runner simply calls again later (people wait for a dead terminal)."""
        self._erp(t)
        self._operators(t)
        self._qa(t)

    def _erp(self, t: float) -> None:
        while self.pending_orders and self.pending_orders[0].release_at <= t:
            order = self.pending_orders[0]
            if order.id not in self.sent:
                answer = self.sut.send_order(order)
                self._count(t, f"ERP sends {order.id}", answer)
                self.sent[order.id] = t
                product = self.products.get(order.product)
                if product is not None:
                    self.order_product[order.id] = product
            if order.id not in self.dispatched:
                # The supervisor dispatches the released order to its line (ISA-95 job
                # dispatching); the line picks it up when free.
                self.dispatch(order)
                self.dispatched[order.id] = t
            self.pending_orders.pop(0)

    def _reaction(self, person: str) -> float:
        spec = self.specs.get(person)
        return spec.behaviour.reaction if spec else 30.0

    def _operators(self, t: float) -> None:
        for op in sorted(self.ops.values(), key=lambda o: (o.order, o.index)):
            if op.completed:
                continue
            person = self.operator_for(op.segment, op.work_unit, t)
            if person is None:
                continue
            reaction = self._reaction(person.id)
            if not op.started and op.ready_at is not None and t >= op.ready_at + reaction:
                if not self._predecessors_done(op):
                    continue
                self._start(t, op, person)
            if op.started and op.done_at is not None and t >= op.done_at + reaction:
                if not self._predecessors_done(op, for_completion=True):
                    continue
                answer = self.sut.complete_operation(op.order, op.segment.id, person.id, t)
                self._count(t, f"{person.id} completes {op.order}/{op.segment.id}", answer)
                op.completed = answer.accepted or op.attempts > 50
                op.attempts += 1

    def _predecessors_done(self, op: _Op, for_completion: bool = False) -> bool:
        if op.segment.partial_start and not for_completion:
            return all(
                self.ops.get((op.order, s.id)) is not None and self.ops[(op.order, s.id)].started
                for s in self.order_product[op.order].segments[: op.index]
            )
        for seg in self.order_product[op.order].segments[: op.index]:
            prev = self.ops.get((op.order, seg.id))
            if prev is None or not prev.completed:
                return False
        return True

    def _start(self, t: float, op: _Op, person: Operator) -> None:
        answer = self.sut.start_operation(op.order, op.segment.id, person.id, op.work_unit, t)
        self._count(t, f"{person.id} starts {op.order}/{op.segment.id}", answer)
        op.attempts += 1
        op.last_answer = answer
        if not answer.accepted and op.attempts < 50:
            return
        op.started = True
        quantity = self.order_quantity.get(op.order, 0)
        for req in op.segment.materials:
            need = req.quantity_per_unit * quantity
            lot = self.pick_lot(req.material, need)
            if lot is None:
                continue
            answer = self.sut.consume_lot(op.order, op.segment.id, lot.id, need, person.id, t)
            self._count(t, f"{person.id} scans {lot.id} for {op.order}", answer)
            if answer.accepted:
                self.lot_left[lot.id] -= need

    def pick_lot(self, material: str, need: float) -> MaterialLot | None:
        """A right lot: of the material, available, unexpired, enough left (first fit)."""
        start = self.plant.plant.start.date()
        for lot in self.plant.material_lots:
            if lot.material != material or lot.deviation != "none":
                continue
            if lot.expiry is not None and lot.expiry < start:
                continue
            if self.lot_left.get(lot.id, 0.0) + 1e-9 >= need:
                return lot
        return None

    def operator_for(self, segment: OperationSegment, work_unit: str, t: float) -> Operator | None:
        """A simulated operator of the line, certified for the segment's skill today."""
        line = self.wu_line.get(work_unit)
        today = (self.plant.plant.start + timedelta(seconds=t)).date()
        for op in self.operators:
            if op.lines and line not in op.lines:
                continue
            if segment.skill is None or certified(op, segment.skill, today):
                return op
        return None

    def _qa(self, t: float) -> None:
        if not self.qa:
            return
        qa = self.qa[0]
        held = self.sut.held()
        for target in held:
            first = self.disposed.setdefault(target, t)
            if t < first + qa.behaviour.reaction:
                continue
            answer = self.sut.dispose(
                target,
                qa.id,
                qa.password,
                qa.behaviour.qa_disposition,
                "scenario QA: investigated and dispositioned",
            )
            self._count(t, f"{qa.id} disposes {target}", answer)
            if answer.accepted:
                self.disposed.pop(target, None)

    def _count(self, t: float, what: str, answer: Answer) -> None:
        self.log.actions += 1
        if not answer.accepted:
            self.log.refused.append((t, what, answer))


def certified(person: Operator, skill: str, on: date) -> bool:
    """Has ``person`` a certification for ``skill`` valid on ``on`` (expiry inclusive)?"""
    return any(c.skill == skill and c.expires >= on for c in person.certifications)
