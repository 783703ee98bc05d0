"""Deviations: the bench acts as a careless operator, supervisor or maintainer (wrong lot,
expired lot, uncertified person, out-of-sequence start, instrument out of calibration) or
drifts a process value, and records what the MES did about it (``refused`` naming the
rule, ``caught`` as a hold, ``accepted``, or ``not_injected`` with the reason)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

from plant_models.scenario import (
    Deviation,
    ExpiredLot,
    OutOfCalibration,
    OutOfSequenceStart,
    ProcessDrift,
    UncertifiedOperator,
    WrongLot,
)
from twin.scenario.context import RunContext
from twin.scenario.people import certified
from twin.scenario.report import DeviationOutcome
from twin.scenario.sut import Answer, SutUnavailable


class DeviationInjector:
    """The deviations of one run's timeline, and watching for the holds they cause."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._drift_ends: list[tuple[float, ProcessDrift]] = []

    # -- whom and what a deviation targets ------------------------------------------------

    def _target_order(self, e: Deviation) -> str:
        ctx = self.ctx
        if e.order:
            return e.order
        released = [o.id for o in ctx.orders if ctx.people and o.id in ctx.people.sent]
        return released[-1] if released else (ctx.orders[0].id if ctx.orders else "")

    def _segment(self, order: str, e: Deviation) -> str:
        ctx = self.ctx
        product = next(
            (
                p
                for p in ctx.plant.products
                if any(o.id == order and o.product == p.id for o in ctx.orders)
            ),
            None,
        )
        if e.operation:
            return e.operation
        return product.segments[0].id if product else ""

    def _work_unit_for(self, order: str, segment: str) -> str:
        ctx = self.ctx
        product_id = next((o.product for o in ctx.orders if o.id == order), None)
        if product_id is None:
            return ""
        product = ctx.plant.product(product_id)
        seg = next((s for s in product.segments if s.id == segment), None)
        for line in ctx.plant.lines:
            if line.code != product.line:
                continue
            for wu in line.work_units:
                if seg is not None and wu.equipment_class == seg.equipment_class:
                    return wu.code
        return ""

    def _certified_operator(self, order: str, segment: str, t: float) -> str:
        ctx = self.ctx
        product_id = next((o.product for o in ctx.orders if o.id == order), None)
        skill = None
        if product_id:
            seg = next(s for s in ctx.plant.product(product_id).segments if s.id == segment)
            skill = seg.skill
        today = (ctx.plant.plant.start + timedelta(seconds=t)).date()
        for op in ctx.plant.operators:
            if "operator" in op.roles and (skill is None or certified(op, skill, today)):
                return op.id
        return ctx.plant.operators[0].id if ctx.plant.operators else ""

    # -- injecting ------------------------------------------------------------------------

    def action(self, e: Deviation) -> Callable[[float], None]:
        """What to do at the deviation's time."""

        def do(t: float) -> None:
            ctx = self.ctx
            sut, sim = ctx.sut, ctx.sim
            assert sut is not None and sim is not None
            order = self._target_order(e)
            seg = self._segment(order, e)
            outcome = DeviationOutcome(
                name=e.name, type=e.type, at=t, target=order, outcome="not_injected"
            )
            answer: Answer | None = None
            if isinstance(e, WrongLot | ExpiredLot):
                outcome.target = f"lot {e.lot} for {order}/{seg}"
                person = self._certified_operator(order, seg, t)
                answer = sut.consume_lot(order, seg, e.lot, e.quantity, person, t)
            elif isinstance(e, UncertifiedOperator):
                if e.action == "start":
                    outcome.target = f"{e.person} starts {order}/{seg}"
                    wu = self._work_unit_for(order, seg)
                    answer = sut.start_operation(order, seg, e.person, wu, t)
                else:
                    held = sut.held()
                    mine = [nc for nc in held if f"job_order:{order}" in sut.holds_of(nc)]
                    target = (mine or held or [""])[0]
                    if not target:
                        outcome.message = "nothing awaited a disposition at that moment"
                    else:
                        outcome.target = f"{e.person} signs the disposition of {target}"
                        spec = next((p for p in ctx.scenario.people if p.id == e.person), None)
                        answer = sut.dispose(
                            target,
                            e.person,
                            spec.password if spec else "mestwin",
                            "release",
                            "signed by the bench to test rule 3",
                            t,
                        )
            elif isinstance(e, OutOfSequenceStart):
                outcome.target = f"start {order}/{seg} before its predecessors"
                wu = self._work_unit_for(order, seg)
                answer = sut.start_operation(
                    order, seg, self._certified_operator(order, seg, t), wu, t
                )
            elif isinstance(e, OutOfCalibration):
                outcome.target = f"{e.work_unit} out of calibration, start {order}/{seg}"
                due = sut.set_calibration_due(e.work_unit, t - 86400.0)
                if not due.accepted:
                    outcome.message = f"could not set the calibration due date: {due.message}"
                else:
                    answer = sut.start_operation(
                        order, seg, self._certified_operator(order, seg, t), e.work_unit, t
                    )
                    # Calibrated again, so the rest of the run is not blocked by the test.
                    sut.set_calibration_due(e.work_unit, t + 365 * 86400.0)
            elif isinstance(e, ProcessDrift):
                outcome.target = f"{e.work_unit}.{e.value} drifts {e.rate:+g}/h"
                why = sim.drift(e.work_unit, e.value, e.rate)
                self._drift_ends.append((t + e.duration, e))
                if why:
                    outcome.message = why
                else:
                    outcome.outcome = "accepted"
                    outcome.message = "drift injected; no hold seen yet"
                    ctx.state.watch_holds.append((e, outcome))
            if answer is not None:
                outcome.outcome = "refused" if answer.refused else "accepted"
                outcome.rule = answer.rule
                outcome.message = answer.message or f"HTTP {answer.status}"
            ctx.state.deviations.append(outcome)

        return do

    def end_drifts(self, t: float) -> None:
        """Drifts whose duration is over return to their process value's nominal."""
        sim = self.ctx.sim
        assert sim is not None
        for end, e in list(self._drift_ends):
            if t >= end:
                sim.end_drift(e.work_unit, e.value, e.rate, e.duration)
                self._drift_ends.remove((end, e))

    # -- what the MES did about them ------------------------------------------------------

    def watch_holds_safe(self, t: float) -> None:
        if self.ctx.state.mes_down:
            return
        with contextlib.suppress(SutUnavailable):  # the MES is busy restarting: next tick
            self.watch_holds(t)

    def watch_holds(self, t: float) -> None:
        ctx = self.ctx
        sut = ctx.sut
        if not ctx.state.watch_holds or sut is None:
            return
        held = sut.held()
        for e, outcome in list(ctx.state.watch_holds):
            order = self._target_order(e)
            holds = {nc: sut.holds_of(nc) for nc in held}
            hits = sorted(nc for nc, what in holds.items() if f"job_order:{order}" in what)
            if hits:
                outcome.outcome = "caught"
                outcome.rule = "HELD"
                what = sorted({w for nc in hits for w in holds[nc]})
                outcome.message = (
                    f"nonconformance {', '.join(h.removeprefix('nc:') for h in hits)} holds "
                    f"{', '.join(what)} (seen at {t:g} s)"
                )
                ctx.state.watch_holds.remove((e, outcome))

    def mark_recorded(self) -> None:
        """Is each refused deviation in the MES's audit trail (rule 'each refusal is
        itself recorded')? Matched on rule and message."""
        sut = self.ctx.sut
        assert sut is not None
        refusals = sut.refusals()
        for d in self.ctx.state.deviations:
            if d.outcome != "refused":
                continue
            d.recorded = any(
                r.rule == d.rule
                and r.message
                and (r.message in d.message or d.message in r.message)
                for r in refusals
            )

    def add_not_injected(self) -> None:
        """A deviation whose time never came is listed as not injected."""
        state = self.ctx.state
        for name in {d.name for d in self.ctx.scenario.deviations} - {
            d.name for d in state.deviations
        }:
            state.deviations.append(
                DeviationOutcome(
                    name=name,
                    type="?",
                    at=-1,
                    target="",
                    outcome="not_injected",
                    message="its time was after the end of the run",
                )
            )
