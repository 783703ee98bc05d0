"""Simulated ERP, supervisor, operators and QA: the people in the loop of a scenario run.

They act on the MES only through the system-under-test adapter, as people do:

- ERP sends each job order at its release time; the supervisor dispatches it (work unit
  per operation) and the MES's dispatch reaches the plant (``StoreAndStart`` on the line).
- When a work unit takes the first unit of a job order, a certified operator of the line
  starts that operation at the terminal (at once: the machine waits for nobody, and counts
  the MES receives before the start would belong to no operation). A refused start is
  retried every tick.
- Lots the machine actually draws (the plant's ledger says which) are scanned against the
  running operation every tick (ISA-95 material consumption actuals).
- When the plant has finished a job order, the operator completes its operations in
  routing order after their reaction delay, the last one naming the output lot. An
  operation whose routing step has an ``output_material`` names its intermediate lot
  (``intermediate_lot``: as many units as its machine made), which the operator of the
  next operation then scans for consumption before completing that one.
- QA disposes whatever is on hold after their reaction delay, with a signature.
- Operators clock in and out with their shifts (presence intervals of their shift
  calendar, breaks off the clock) and book labour on the operations they run: from the
  start of an operation (or their clock-in, if it ran already) to its completion or their
  clock-out, whichever comes first; a clocked-in operator is preferred for every action.
  What they did is the ground truth of labour (:class:`LabourLog`); the adapter records it
  only if it has the labour capability (``twin.scenario.sut.LabourCapability``).
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from plant_models.scenario import Scenario
from plant_models.schema import (
    OperationSegment,
    Operator,
    PlantModel,
    Product,
    intermediate_lot,
    segments_of,
)
from twin.scenario.reconcile import LabourHours
from twin.scenario.sut import (
    Answer,
    Dispatching,
    LabourCapability,
    OperatorActions,
    OrderRequest,
    QualityHolds,
    SystemUnderTest,
)
from twin.shifts import Interval, operator_intervals

DispatchFn = Callable[[OrderRequest], str]
BOOKING_INTERVAL = 900.0
"""Operators book the lots a machine drew every 15 simulated minutes (and before they
complete an operation), not after every unit: one call per lot and period."""


@dataclass
class _Op:
    """One operation (job order x segment) as the people track it. It runs on the work
    units of its station (one, or a parallel station's several): the operator at each
    starts it there when that unit takes the order's first unit, and completes it there;
    the flags say "on some work unit", the sets on which."""

    order: str
    segment: OperationSegment
    sequence: int
    work_unit: str
    """Its (first) work unit."""
    work_units: tuple[str, ...] = ()
    """Every work unit of its station (empty: ``work_unit`` alone)."""
    taken: bool = False  # a work unit has taken the job's first unit
    started: bool = False
    gave_up: bool = False  # a start was refused: those counts are not held back
    completed: bool = False
    attempts: int = 0
    started_at: float = 0.0
    taken_on: set[str] = field(default_factory=set)
    started_on: set[str] = field(default_factory=set)
    gave_up_on: set[str] = field(default_factory=set)
    completed_on: set[str] = field(default_factory=set)
    tries: dict[str, int] = field(default_factory=dict)
    completion_tried: set[str] = field(default_factory=set)

    @property
    def parallel(self) -> bool:
        """Does it run on several work units (a parallel station)?"""
        return len(self.work_units) > 1


@dataclass
class PeopleLog:
    """What the people did, for the report."""

    actions: int = 0
    refused: list[tuple[float, str, Answer]] = field(default_factory=list)
    unavailable: int = 0


@dataclass
class LabourLog:
    """The ground truth of attendance and labour: what the people did, in plant seconds."""

    attendance: list[tuple[str, float, float]] = field(default_factory=list)
    """(person, clock in, clock out)"""
    bookings: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    """(person, job order, segment, start, end)"""

    def hours(self) -> LabourHours:
        out = LabourHours()
        for person, start, end in self.attendance:
            out.attendance[person] = out.attendance.get(person, 0.0) + (end - start) / 3600.0
        for person, order, _segment, start, end in self.bookings:
            hours = (end - start) / 3600.0
            out.by_person[person] = out.by_person.get(person, 0.0) + hours
            out.by_order[order] = out.by_order.get(order, 0.0) + hours
        return out


def takes_keyword(sut: object, name: str) -> bool:
    """Does the adapter's terminal take the keyword ``name`` on completions (``work_unit``
    for an operation on several work units, ``lot_quantity`` for a declared lot)? Read
    from its signature: both are optional extensions of ``OperatorActions``
    (``twin.scenario.sut``) that older adapters lack. The bench's ``ActionWitness`` in
    front of an adapter is looked through."""
    inner = getattr(sut, "sut", sut)
    method = getattr(inner, "complete_operation", None)
    if method is None:
        return False
    params = inspect.signature(method).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def certified(person: Operator, skill: str, on: date) -> bool:
    """Has ``person`` a certification for ``skill`` valid on ``on`` (expiry inclusive)?"""
    return any(c.skill == skill and c.expires >= on for c in person.certifications)


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
        # Optional capabilities (twin.scenario.sut): without them the bench's people do
        # not act there (the plant still runs; the report says what was not checked).
        self.dispatcher = sut if isinstance(sut, Dispatching) else None
        self.terminal = sut if isinstance(sut, OperatorActions) else None
        self.per_unit = takes_keyword(sut, "work_unit")
        self.declares_lots = takes_keyword(sut, "lot_quantity")
        """The terminal books lots and completions per work unit (``work_unit=``); one
        that does not is told of an operation on a parallel station as of one operation:
        started on each unit, its lots and its completion on the operation as a whole."""
        self.quality = sut if isinstance(sut, QualityHolds) else None
        self.dispatch = dispatch
        self.pending_orders = sorted(orders, key=lambda o: (o.release_at, o.id))
        self.order_req = {o.id: o for o in orders}
        self.sent: dict[str, float] = {}
        self.products = {p.id: p for p in plant.products}
        self.ops: dict[tuple[str, str], _Op] = {}
        self.log = PeopleLog()
        self.specs = {p.id: p for p in scenario.people}
        self.operators = [
            o for o in plant.operators if o.id in self.specs and self.specs[o.id].role == "operator"
        ]
        self.qa = [p for p in scenario.people if p.role == "qa"]
        self.wu_line = {wu.code: line.code for line in plant.lines for wu in line.work_units}
        self.line_units = {line.code: [wu.code for wu in line.work_units] for line in plant.lines}
        self.lines = {line.code: line for line in plant.lines}
        self._segment_units: dict[str, dict[str, list[str]]] = {}
        self.wu_class = {
            wu.code: wu.equipment_class for line in plant.lines for wu in line.work_units
        }
        # (order, work unit, lot) -> quantity drawn by the machine, not yet booked in the MES
        self.unbooked: dict[tuple[str, str, str], float] = defaultdict(float)
        self.finished: dict[str, tuple[float, str]] = {}  # order -> (t, output lot)
        # order -> work unit -> good units its machine made (an intermediate lot's size)
        self.made_at: dict[str, dict[str, int]] = {}
        self.lot_made: dict[str, int] = {}
        self.plant_done: set[str] = set()
        self.disposed_seen: dict[str, float] = {}
        self.last_booking = -BOOKING_INTERVAL
        self.intake_lots: set[tuple[str, str]] = set()  # (order, intermediate lot)
        # Attendance and labour (ground truth in ``labour``; the MES told if it can record).
        self.labour = LabourLog()
        self.labour_sut: LabourCapability | None = (
            sut if isinstance(sut, LabourCapability) else None
        )
        calendars = {c.id: c for c in plant.shift_calendars}
        self._shifts: dict[str, Iterator[Interval]] = {
            o.id: operator_intervals(o, calendars[o.calendar], plant.plant.start)
            for o in self.operators
            if o.calendar in calendars
        }
        self._next_shift: dict[str, Interval | None] = {}
        for person, stream in self._shifts.items():
            self._next_shift[person] = next((iv for iv in stream if iv[1] > 0), None)
        self.clocked: dict[str, tuple[float, float]] = {}  # person -> (clock in, shift end)
        self._last_out: dict[str, float] = {}
        self.booked: dict[tuple[str, str], tuple[str, float]] = {}  # op -> (person, since)
        self._labour_refused: set[tuple[str, str, str]] = set()

    # -- what the plant tells ---------------------------------------------------------

    def product_of(self, order: str) -> Product | None:
        req = self.order_req.get(order)
        return self.products.get(req.product) if req else None

    def _runs_on(self, product: Product) -> dict[str, list[str]]:
        """Segment id -> the work units that run it (its station's, in flow order), as
        the engine assigns segments (``plant_models.schema.segments_of``)."""
        if product.id not in self._segment_units:
            line = self.lines[product.line]
            units: dict[str, list[str]] = {}
            for wu, seg in zip(line.work_units, segments_of(product, line), strict=True):
                if seg is not None:
                    units.setdefault(seg.id, []).append(wu.code)
            self._segment_units[product.id] = units
        return self._segment_units[product.id]

    def op_for(self, order: str, work_unit: str) -> _Op | None:
        """The operation of ``order`` that runs on ``work_unit`` (by equipment class, in
        flow order, as the engine assigns segments; every work unit of a parallel station
        runs the same one)."""
        product = self.product_of(order)
        if product is None or product.line not in self.lines:
            return None
        runs_on = self._runs_on(product)
        for index, seg in enumerate(product.segments):
            units = runs_on.get(seg.id, [])
            if work_unit in units:
                key = (order, seg.id)
                if key not in self.ops:
                    self.ops[key] = _Op(order, seg, index + 1, units[0], tuple(units))
                return self.ops[key]
        return None

    def work_units_for(self, order: str) -> dict[str, str]:
        """Segment id -> work unit for ``order`` (the supervisor's dispatch)."""
        product = self.product_of(order)
        if product is None:
            return {}
        out: dict[str, str] = {}
        for wu in self.line_units.get(product.line, []):
            op = self.op_for(order, wu)
            if op is not None:
                out[op.segment.id] = wu
        return out

    def job_taken(self, work_unit: str, order: str) -> None:
        """``work_unit`` took the first unit of ``order``: its operation must start."""
        op = self.op_for(order, work_unit)
        if op is not None:
            op.taken = True
            op.taken_on.add(work_unit)

    def awaits_start(self, order: str, work_unit: str) -> bool:
        """Must counts of ``order`` at ``work_unit`` wait for its operation's start there?"""
        if self.terminal is None:
            return False  # nobody starts operations at this MES: counts are not held back
        op = self.op_for(order, work_unit)
        return (
            op is not None
            and work_unit in op.taken_on
            and work_unit not in op.started_on
            and work_unit not in op.gave_up_on
        )

    def start_waiting(self, t: float) -> bool:
        """Start the operations whose machine has begun (the first waiting one of each job
        order); True when one started. An operation refused here stops holding back its
        counts (they then reach the MES unassigned, and the reconciliation names the
        difference)."""
        progressed = False
        self._attendance(t)
        if self.terminal is None:
            return False
        started_now: set[str] = set()
        for op in sorted(self.ops.values(), key=lambda o: (o.order, o.sequence)):
            if op.order in started_now:
                # One start per job order per call: the counts this start releases (the
                # predecessor's good units) must reach the MES before the next operation
                # of the order starts (its SEQUENCE rule reads them). The caller
                # delivers, then calls again.
                continue
            if op.completed:
                continue
            for unit in sorted(op.taken_on - op.started_on - op.gave_up_on):
                self._start(t, op, unit)
                if unit in op.started_on:
                    progressed = True
                    started_now.add(op.order)
                    break
                op.gave_up = True
                op.gave_up_on.add(unit)
        if progressed:
            self._book_labour(t)
        return progressed

    def lot_drawn(self, order: str, work_unit: str, lot: str, quantity: float) -> None:
        self.unbooked[(order, work_unit, lot)] += quantity

    def job_finished(
        self,
        t: float,
        order: str,
        output_lot: str,
        made_at: dict[str, int] | None = None,
        lot_made: int | None = None,
    ) -> None:
        """The plant finished ``order``; ``made_at``: good units per work unit (the size of
        the intermediate lots its operations produce); ``lot_made``: units that left the
        line into the output lot (fewer than the last operation's good units when a work
        unit after it, in no operation, scrapped some: the operator declares the lot's
        quantity then, as a pallet is counted at pack-out)."""
        self.finished[order] = (t, output_lot)
        self.made_at[order] = dict(made_at or {})
        if lot_made is not None:
            self.lot_made[order] = lot_made
        self.plant_done.add(order)

    def open_work(self) -> bool:
        """Anything left to close out: lots not booked, finished orders not completed."""
        if self.terminal is None:
            return False
        return bool(self.finished) or any(q > 0 for q in self.unbooked.values())

    def counts_needed_through(self, t: float) -> float | None:
        """Plant time through which the MES must hold the plant's events before the people
        act at ``t``: the latest moment a job order they may complete now finished (its
        last units, at every work unit); None when they complete nothing."""
        if self.terminal is None:
            return None
        return max((done for done, _ in self.finished.values() if done <= t), default=None)

    def finished_orders(self) -> set[str]:
        """Orders the plant has finished (their operations may still await completion)."""
        return self.plant_done

    # -- acting --------------------------------------------------------------------------

    def act(self, t: float) -> None:
        """Everything due at ``t`` but starts (the runner starts operations while it
        delivers plant events, see ``start_waiting``). ``SutUnavailable`` propagates: the
        runner calls again at the next tick."""
        self._attendance(t)
        self._book_labour(t)
        self._erp(t)
        self._book_lots(t)
        self._complete(t)
        self._qa(t)

    def _erp(self, t: float) -> None:
        while self.pending_orders and self.pending_orders[0].release_at <= t:
            order = self.pending_orders[0]
            if order.id not in self.sent:
                self._count(t, f"ERP sends {order.id}", self.sut.send_order(order))
                self.sent[order.id] = t
                if self.dispatcher is not None:
                    answer = self.dispatcher.dispatch_order(order.id, self.work_units_for(order.id))
                    self._count(t, f"supervisor dispatches {order.id}", answer)
                why = self.dispatch(order)
                if why:
                    self._count(t, f"plant takes {order.id}", Answer(False, "PLANT", why, 0))
            self.pending_orders.pop(0)

    def _reaction(self, person: str) -> float:
        spec = self.specs.get(person)
        return spec.behaviour.reaction if spec else 30.0

    def _start(self, t: float, op: _Op, unit: str) -> None:
        person = self.operator_for(op.segment, unit, t)
        if person is None or self.terminal is None:
            return
        answer = self.terminal.start_operation(op.order, op.segment.id, person.id, unit, t)
        op.attempts += 1
        op.tries[unit] = op.tries.get(unit, 0) + 1
        where = f" on {unit}" if op.parallel else ""
        self._count(t, f"{person.id} starts {op.order}/{op.segment.id}{where}", answer)
        # Refused as a transition already made, on a retry: an answer lost on the way.
        if answer.accepted or (answer.rule == "INVALID_TRANSITION" and op.tries[unit] > 1):
            if not op.started:
                op.started_at = t
            op.started = True
            op.started_on.add(unit)

    def book_all(self, t: float) -> None:
        """Book every outstanding lot draw (the end of the run: the shift hands over), and
        clock everyone out (their open labour ends with it)."""
        self.last_booking = -BOOKING_INTERVAL
        self._book_lots(t)
        self._attendance(t)
        for person in sorted(self.clocked):
            self._clock_out(person, t)

    # -- attendance and labour ------------------------------------------------------------

    def _attendance(self, t: float) -> None:
        """Clock operators out at the end of each presence interval up to ``t`` and in at
        the start of each (breaks are off the clock). ``SutUnavailable`` propagates; what
        was not told yet is told at the next call."""
        for person in sorted(self._shifts):
            while True:
                if person in self.clocked:
                    end = self.clocked[person][1]
                    if end > t:
                        break
                    self._clock_out(person, end)
                    continue
                nxt = self._next_shift.get(person)
                if nxt is None or nxt[0] > t:
                    break
                start = max(nxt[0], 0.0, self._last_out.get(person, 0.0))
                if start < nxt[1]:
                    answer = self.labour_sut.clock_in(person, start) if self.labour_sut else None
                    if answer is not None:
                        self._count(t, f"{person} clocks in", answer)
                    # "already clocked in": an answer lost in an MES restart; it is done.
                    if answer is None or answer.accepted or answer.status == 409:
                        self.clocked[person] = (start, nxt[1])
                self._next_shift[person] = next(self._shifts[person], None)

    def _clock_out(self, person: str, at: float) -> None:
        since, _ = self.clocked[person]
        at = max(at, since)
        if self.labour_sut is not None:
            answer = self.labour_sut.clock_out(person, at)
            self._count(at, f"{person} clocks out", answer)
        for key, (who, started) in list(self.booked.items()):
            if who == person:  # clocking out ends the person's open labour
                self.labour.bookings.append((person, key[0], key[1], started, max(at, started)))
                del self.booked[key]
        self.labour.attendance.append((person, since, at))
        self._last_out[person] = at
        del self.clocked[person]

    def _book_labour(self, t: float) -> None:
        """Every running operation gets a clocked-in, certified operator's labour."""
        for op in sorted(self.ops.values(), key=lambda o: (o.order, o.sequence)):
            key = (op.order, op.segment.id)
            if not op.started or op.completed or key in self.booked:
                continue
            person = self._present_operator(op.segment, op.work_unit, t, op)
            if person is None:
                continue
            at = max(op.started_at, self.clocked[person.id][0])
            if self.labour_sut is not None:
                answer = self.labour_sut.start_labour(op.order, op.segment.id, person.id, at)
                self._count(t, f"{person.id} books labour on {op.order}/{op.segment.id}", answer)
                if not answer.accepted:
                    self._labour_refused.add((op.order, op.segment.id, person.id))
                    continue
            self.booked[key] = (person.id, at)

    def _stop_labour(self, op: _Op, t: float) -> None:
        key = (op.order, op.segment.id)
        if key not in self.booked:
            return
        person, since = self.booked[key]
        if self.labour_sut is not None:
            answer = self.labour_sut.stop_labour(op.order, op.segment.id, person, t)
            self._count(t, f"{person} stops labour on {op.order}/{op.segment.id}", answer)
            if not answer.accepted:
                return  # still open in the MES: it ends when the person clocks out
        self.labour.bookings.append((person, op.order, op.segment.id, since, max(t, since)))
        del self.booked[key]

    def _present_operator(
        self, segment: OperationSegment, work_unit: str, t: float, op: _Op
    ) -> Operator | None:
        for person in self._candidates(segment, work_unit, t):
            if person.id in self.clocked and (op.order, segment.id, person.id) not in (
                self._labour_refused
            ):
                return person
        return None

    def _book_lots(self, t: float) -> None:
        if self.terminal is None:
            return
        due = t - self.last_booking >= BOOKING_INTERVAL
        finishing = {order for order in self.finished}
        if not due and not finishing:
            return
        if due:
            self.last_booking = t
        for key in sorted(self.unbooked):
            if not due and key[0] not in finishing:
                continue
            order, work_unit, lot = key
            op = self.op_for(order, work_unit)
            qty = self.unbooked[key]
            if op is None or not op.started or op.completed or qty <= 0:
                continue
            person = self.operator_for(op.segment, work_unit, t)
            who = person.id if person else (self.operators[0].id if self.operators else "")
            # A lot a unit of a parallel station drew is booked at that unit (while the
            # operation runs there); an intermediate lot the operation takes in, on the
            # operation as a whole.
            at_unit = (
                {"work_unit": work_unit}
                if self._per_unit(op)
                and work_unit in op.started_on
                and work_unit not in op.completed_on
                and (order, lot) not in self.intake_lots
                else {}
            )
            answer = self.terminal.consume_lot(order, op.segment.id, lot, qty, who, t, **at_unit)
            self._count(t, f"{who} books {qty:g} of {lot} on {order}/{op.segment.id}", answer)
            if answer.accepted:
                del self.unbooked[key]

    def _complete(self, t: float) -> None:
        if self.terminal is None:
            self.finished.clear()  # nobody completes operations at this MES
            return
        for order, (t_done, output_lot) in sorted(self.finished.items()):
            product = self.product_of(order)
            if product is None:
                continue
            ops = [self.ops.get((order, s.id)) for s in product.segments]
            if any(op is None or not op.started for op in ops):
                continue  # a start is still outstanding (retried each tick)
            if any(
                k[0] == order and v > 0 for k, v in self.unbooked.items()
            ):  # lots first, while the operations still run
                continue
            for op in ops:
                assert op is not None
                if op.completed:
                    continue
                person = self.operator_for(op.segment, op.work_unit, t)
                if person is None or t < t_done + self._reaction(person.id):
                    break
                last = op.sequence == len(product.segments)
                made_at = self.made_at.get(order, {})
                made = sum(made_at.get(wu, 0) for wu in op.work_units or (op.work_unit,))
                lot: str | None = output_lot if last else None
                intake = None if last else ops[op.sequence]  # the next operation
                if not last and op.segment.output_material is not None and made > 0:
                    lot = intermediate_lot(output_lot, op.segment.id)
                if not self._complete_on_units(t, op, order, person):
                    break
                declared = self.lot_made.get(order) if last else None
                quantity = (
                    declared if declared and declared != made and self.declares_lots else None
                )
                answer = self._complete_last(t, op, order, person, lot, quantity)
                if not answer.accepted:
                    break
                op.completed = True
                self._stop_labour(op, t)
                if lot is not None and intake is not None:
                    # The next operation takes the intermediate lot in: booked with the
                    # lots (next tick, retried like them) before that operation completes.
                    self.unbooked[(order, intake.work_unit, lot)] += float(made)
                    self.intake_lots.add((order, lot))
                    break
            if all(op is not None and op.completed for op in ops):
                del self.finished[order]
                self.made_at.pop(order, None)
                self.lot_made.pop(order, None)

    def _per_unit(self, op: _Op) -> bool:
        """Are ``op``'s lots and completions told per work unit?"""
        return op.parallel and self.per_unit

    def _complete_on_units(self, t: float, op: _Op, order: str, person: Operator) -> bool:
        """An operation on several work units: the operator at each but the last started
        completes it there (each has done its part: the plant finished the order). True
        when only the last is left."""
        if self.terminal is None:
            return False
        if not self._per_unit(op):
            return True  # completed as a whole, on every unit at once
        left = sorted(op.started_on - op.completed_on)
        for unit in left[:-1]:
            answer = self.terminal.complete_operation(
                order, op.segment.id, person.id, t, None, work_unit=unit
            )
            self._count(t, f"{person.id} completes {order}/{op.segment.id} on {unit}", answer)
            tried = unit in op.completion_tried
            op.completion_tried.add(unit)
            # Refused as no longer running there, on a retry: an answer lost on the way.
            if not (answer.accepted or (answer.rule == "INVALID_TRANSITION" and tried)):
                return False
            op.completed_on.add(unit)
        return True

    def _complete_last(
        self,
        t: float,
        op: _Op,
        order: str,
        person: Operator,
        lot: str | None,
        lot_quantity: float | None = None,
    ) -> Answer:
        """Complete ``op`` on its last running work unit (or as a whole), naming ``lot``
        (and its quantity when the operator declares one)."""
        assert self.terminal is not None
        left = sorted(op.started_on - op.completed_on)
        unit = left[-1] if left and self._per_unit(op) else None
        where = f" on {unit}" if unit else ""
        # Keywords only when used: an adapter is called as simply as its job allows.
        extra: dict[str, Any] = {}
        if unit is not None:
            extra["work_unit"] = unit
        if lot_quantity is not None:
            extra["lot_quantity"] = lot_quantity
        answer = self.terminal.complete_operation(order, op.segment.id, person.id, t, lot, **extra)
        self._count(t, f"{person.id} completes {order}/{op.segment.id}{where}", answer)
        if answer.accepted and unit is not None:
            op.completed_on.add(unit)
        return answer

    def operator_for(self, segment: OperationSegment, work_unit: str, t: float) -> Operator | None:
        """A simulated operator allowed on the line and certified for the segment today:
        one on the clock if there is one, else any."""
        candidates = self._candidates(segment, work_unit, t)
        present = [op for op in candidates if op.id in self.clocked]
        if present:
            return present[0]
        return candidates[0] if candidates else None

    def _candidates(self, segment: OperationSegment, work_unit: str, t: float) -> list[Operator]:
        line = self.wu_line.get(work_unit)
        today = (self.plant.plant.start + timedelta(seconds=t)).date()
        return [
            op
            for op in self.operators
            if not (op.lines and line not in op.lines)
            and (segment.skill is None or certified(op, segment.skill, today))
        ]

    def _qa(self, t: float) -> None:
        if not self.qa or self.quality is None:
            return
        qa = self.qa[0]
        for target in self.quality.held():
            first = self.disposed_seen.setdefault(target, t)
            if t < first + qa.behaviour.reaction:
                continue
            answer = self.quality.dispose(
                target,
                qa.id,
                qa.password,
                qa.behaviour.qa_disposition,
                "scenario QA: investigated, disposition per the scenario",
                t,
            )
            self._count(t, f"{qa.id} disposes {target}", answer)
            if answer.accepted:
                self.disposed_seen.pop(target, None)

    def _count(self, t: float, what: str, answer: Answer) -> None:
        self.log.actions += 1
        if not answer.accepted:
            self.log.refused.append((t, what, answer))
