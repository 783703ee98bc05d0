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
from twin.scenario.sut import (
    Answer,
    AuditTrail,
    Calibration,
    HoldReasons,
    OperatorActions,
    QualityHolds,
    SutUnavailable,
    missing,
    supports,
)

NEEDS: dict[type, tuple[str, ...]] = {
    WrongLot: ("operator_actions",),
    ExpiredLot: ("operator_actions",),
    OutOfSequenceStart: ("operator_actions",),
    OutOfCalibration: ("calibration", "operator_actions"),
    ProcessDrift: (),
}
"""Optional capabilities of the system under test each deviation type is injected
through (``uncertified_operator`` depends on its action: see ``_needs``)."""


class DeviationInjector:
    """The deviations of one run's timeline, and watching for the holds they cause."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._drift_ends: list[tuple[float, ProcessDrift]] = []
        self.armed: list[Deviation] = []
        """Deviations with ``when`` whose time came, waiting for their event."""
        self._fired_order: dict[str, str] = {}
        self._drawn: list[tuple[str, str]] = []
        """(job order, work unit) where the machine drew a lot since the last check."""

    # -- whom and what a deviation targets ------------------------------------------------

    def fired_orders(self) -> dict[str, str]:
        """Deviation name -> the job order it was aimed at, for those injected so far."""
        return dict(self._fired_order)

    def _target_order(self, e: Deviation) -> str:
        ctx = self.ctx
        if e.name in self._fired_order:
            return self._fired_order[e.name]
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

    def _needs(self, e: Deviation) -> tuple[str, ...]:
        if isinstance(e, UncertifiedOperator):
            return ("operator_actions",) if e.action == "start" else ("quality_holds",)
        return NEEDS[type(e)]

    def _lacking(self, e: Deviation) -> str | None:
        """Why the system under test cannot take ``e`` (a capability it lacks), or None."""
        adapter = self.ctx.scenario.system_under_test.adapter
        for capability in self._needs(e):
            if not supports(self.ctx.sut, capability):
                return missing(capability, adapter)
        return None

    # -- injecting ------------------------------------------------------------------------

    def action(self, e: Deviation) -> Callable[[float], None]:
        """What to do at the deviation's time: inject it, or with ``when`` arm it until
        its event comes (``fire_startable``, ``fire_triggered``)."""

        def do(t: float) -> None:
            if e.when is None:
                self._inject(e, t)
            else:
                self.armed.append(e)

        return do

    def _inject(self, e: Deviation, t: float, order: str = "", seg: str = "") -> None:
        ctx = self.ctx
        sut, sim = ctx.sut, ctx.sim
        assert sut is not None and sim is not None
        order = order or self._target_order(e)
        seg = seg or self._segment(order, e)
        self._fired_order[e.name] = order
        outcome = DeviationOutcome(
            name=e.name, type=e.type, at=t, target=order, outcome="not_injected"
        )
        answer: Answer | None = None
        lacking = self._lacking(e)
        if lacking is not None:
            outcome.message = lacking
            ctx.state.deviations.append(outcome)
            return
        if isinstance(e, WrongLot | ExpiredLot):
            assert isinstance(sut, OperatorActions)
            outcome.target = f"lot {e.lot} for {order}/{seg}"
            person = self._certified_operator(order, seg, t)
            answer = sut.consume_lot(order, seg, e.lot, e.quantity, person, t)
        elif isinstance(e, UncertifiedOperator):
            if e.action == "start":
                assert isinstance(sut, OperatorActions)
                outcome.target = f"{e.person} starts {order}/{seg}"
                wu = self._work_unit_for(order, seg)
                answer = sut.start_operation(order, seg, e.person, wu, t)
            else:
                assert isinstance(sut, QualityHolds)
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
            assert isinstance(sut, OperatorActions)
            outcome.target = f"start {order}/{seg} before its predecessors"
            wu = self._work_unit_for(order, seg)
            answer = sut.start_operation(order, seg, self._certified_operator(order, seg, t), wu, t)
        elif isinstance(e, OutOfCalibration):
            assert isinstance(sut, Calibration) and isinstance(sut, OperatorActions)
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
            elif not isinstance(sut, QualityHolds):
                outcome.outcome = "not_checked"
                outcome.message = "drift injected; " + missing(
                    "quality_holds", ctx.scenario.system_under_test.adapter
                )
            else:
                # Judged at the end (judge_drifts): accepted only if an out-of-spec
                # value was sampled and no hold came.
                outcome.outcome = "accepted"
                outcome.message = "drift injected; no hold seen yet"
                ctx.state.watch_holds.append((e, outcome))
        if answer is not None:
            outcome.outcome = "refused" if answer.refused else "accepted"
            outcome.rule = answer.rule
            outcome.message = answer.message or f"HTTP {answer.status}"
        ctx.state.deviations.append(outcome)

    # -- deviations on an event (``when``) --------------------------------------------------

    def lot_drawn(self, order: str, work_unit: str) -> None:
        """The plant's ledger: the machine at ``work_unit`` drew a lot for ``order``."""
        if any(e.when == "lot_consumed" for e in self.armed):
            self._drawn.append((order, work_unit))

    def _matching(self, e: Deviation, when: str) -> tuple[str, str] | None:
        """The (order, segment) the event ``when`` of armed ``e`` happens to now."""
        people = self.ctx.people
        if people is None:
            return None
        if isinstance(e, OutOfSequenceStart) and when == "operation_startable" and e.operation:
            return self._before_predecessors(e)
        if when == "lot_consumed":
            drawn = [(o, wu) for o, wu in self._drawn]
            ops = [people.op_for(o, wu) for o, wu in drawn]
            candidates = [op for op in ops if op is not None]
        else:
            candidates = list(people.ops.values())
        for op in sorted(candidates, key=lambda o: (o.order, o.sequence)):
            if e.order and op.order != e.order:
                continue
            if e.operation and op.segment.id != e.operation:
                continue
            if when == "operation_startable" and not (
                op.taken and not op.started and not op.completed
            ):
                continue
            if when == "operation_running" and not (op.started and not op.completed):
                continue
            return op.order, op.segment.id
        return None

    def _before_predecessors(self, e: OutOfSequenceStart) -> tuple[str, str] | None:
        """An out-of-sequence start of ``e.operation`` waits until an earlier operation of
        its order can start: the order is released and the operation's predecessors are
        not done, so the start meets rule 1 (SEQUENCE), not an order the MES has not
        released yet. (Startable itself, it would be in sequence: nothing to refuse.)"""
        people = self.ctx.people
        assert people is not None
        for op in sorted(people.ops.values(), key=lambda o: (o.order, o.sequence)):
            if e.order and op.order != e.order:
                continue
            product = people.product_of(op.order)
            ids = [s.id for s in product.segments] if product else []
            if e.operation not in ids or ids.index(e.operation) < op.sequence:
                continue
            target = people.ops.get((op.order, e.operation or ""))
            if target is not None and (target.started or target.completed):
                continue
            if op.taken and not op.started and not op.completed:
                return op.order, e.operation or ""
        return None

    def _held(self, e: Deviation) -> tuple[str, str] | None:
        """``on_hold``: (order, "") when something awaits QA's disposition (holding
        ``e.order`` when given), so a signature deviation has a disposition to sign."""
        sut = self.ctx.sut
        if not isinstance(sut, QualityHolds):  # injected now: reported not_injected, why
            return self._target_order(e), ""
        for nc in sut.held():
            what = sut.holds_of(nc)
            orders = [w.removeprefix("job_order:") for w in what if w.startswith("job_order:")]
            if e.order is None or e.order in orders:
                return (e.order or (orders[0] if orders else ""), "")
        return None

    def _fire(self, t: float, whens: tuple[str, ...]) -> None:
        for e in list(self.armed):
            if e.when not in whens:
                continue
            hit = self._held(e) if e.when == "on_hold" else self._matching(e, e.when)
            if hit is None:
                continue
            self.armed.remove(e)
            try:
                self._inject(e, t, *hit)
            except SutUnavailable as exc:
                self.ctx.state.problems.append(
                    f"{e.type} {e.name} at {t:g} s: the MES was unreachable: {exc}"
                )
        if "lot_consumed" in whens:
            self._drawn.clear()

    def fire_startable(self, t: float) -> None:
        """Before the people start what the plant took: ``operation_startable``."""
        if self.armed and not self.ctx.state.mes_down:
            self._fire(t, ("operation_startable",))

    def fire_triggered(self, t: float) -> None:
        """Each tick: ``operation_running``, ``lot_consumed`` and ``on_hold``."""
        if self.armed and not self.ctx.state.mes_down:
            self._fire(t, ("operation_running", "lot_consumed", "on_hold"))

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
        if not ctx.state.watch_holds or not isinstance(sut, QualityHolds):
            return
        held = sut.held()
        for e, outcome in list(ctx.state.watch_holds):
            order = self._target_order(e)
            holds = {nc: sut.holds_of(nc) for nc in held}
            hits = sorted(nc for nc, what in holds.items() if f"job_order:{order}" in what)
            if hits:
                # Caught, with the MES's own evidence: the rule it named for the hold (an
                # out-of-spec or SPC nonconformance), never one the bench makes up.
                outcome.outcome = "caught"
                reasons = [
                    r
                    for r in (
                        sut.hold_reason(nc) if isinstance(sut, HoldReasons) else None for nc in hits
                    )
                    if r is not None
                ]
                outcome.rule = ", ".join(sorted({rule for rule, _ in reasons})) or None
                what = sorted({w for nc in hits for w in holds[nc]})
                why = (
                    "; ".join(text for _, text in reasons)
                    if reasons
                    else "the MES named no reason"
                    + (
                        ""
                        if isinstance(sut, HoldReasons)
                        else f" ({missing('hold_reasons', ctx.scenario.system_under_test.adapter)})"
                    )
                )
                outcome.message = (
                    f"nonconformance {', '.join(h.removeprefix('nc:') for h in hits)} holds "
                    f"{', '.join(what)} (seen at {t:g} s): {why}"
                )
                ctx.state.watch_holds.remove((e, outcome))

    def _limits(self, e: ProcessDrift) -> tuple[float | None, float | None] | None:
        """Spec limits of the characteristic ``e``'s process value measures, from the
        target order's routing (else any routing of the plant): None when it has none."""
        plant = self.ctx.plant
        pv = next(
            (v for v in plant.work_unit(e.work_unit).process_values if v.name == e.value), None
        )
        if pv is None or not pv.characteristic:
            return None
        order = self._target_order(e)
        product_id = next((o.product for o in self.ctx.orders if o.id == order), None)
        products = sorted(plant.products, key=lambda p: p.id != product_id)
        for product in products:
            for seg in product.segments:
                for c in seg.inspections:
                    if c.name == pv.characteristic:
                        return c.lsl, c.usl
        return None

    def judge_drifts(self) -> None:
        """A drift still waiting for a hold at the end: ``accepted`` only if the link
        sampled an out-of-spec value of it (the MES was shown bad product and did not
        act); else the MES had nothing to catch and the drift was ``not_injected`` as a
        test of the rule."""
        ctx = self.ctx
        samples: list[tuple[float, str, str, float]] = getattr(ctx.link, "samples", [])
        for e, outcome in list(ctx.state.watch_holds):
            limits = self._limits(e)
            if limits is None:
                outcome.outcome = "not_injected"
                outcome.message = (
                    f"{e.work_unit}.{e.value} measures no inspection characteristic with "
                    "spec limits: nothing the MES could judge out of spec"
                )
                continue
            lsl, usl = limits
            start, end = outcome.at, outcome.at + e.duration
            seen = [
                (t, v)
                for t, wu, name, v in samples
                if wu == e.work_unit and name == e.value and start <= t <= end
            ]
            bad = [
                (t, v)
                for t, v in seen
                if (lsl is not None and v < lsl) or (usl is not None and v > usl)
            ]
            spec = (
                f"[{'-inf' if lsl is None else f'{lsl:g}'}, {'inf' if usl is None else f'{usl:g}'}]"
            )
            if bad:
                t0, v0 = bad[0]
                outcome.outcome = "accepted"
                outcome.message = (
                    f"{len(bad)} of {len(seen)} samples out of spec {spec} (first {v0:.4g} at "
                    f"{t0:.0f} s) and the MES placed no hold"
                )
            else:
                span = (
                    f"{min(v for _, v in seen):.4g}..{max(v for _, v in seen):.4g}"
                    if seen
                    else "none"
                )
                outcome.outcome = "not_injected"
                outcome.message = (
                    f"the drift produced no out-of-spec sample ({len(seen)} samples, "
                    f"values {span}, spec {spec}): nothing for the MES to catch"
                )
        ctx.state.watch_holds.clear()

    def mark_recorded(self) -> None:
        """Is each refused deviation in the MES's audit trail (rule 'each refusal is
        itself recorded')? Matched on rule and message."""
        sut = self.ctx.sut
        if not isinstance(sut, AuditTrail):
            return  # recorded stays None: not known (the expectation is not_checked)
        refusals = sut.refusals()
        for d in self.ctx.state.deviations:
            if d.outcome != "refused":
                continue
            entry = next(
                (
                    r
                    for r in refusals
                    if r.rule == d.rule
                    and r.message
                    and (r.message in d.message or d.message in r.message)
                ),
                None,
            )
            d.recorded = entry is not None
            if entry is not None and entry.entry_id is not None:
                d.audit_entry = entry.entry_id + (
                    f" hash {entry.entry_hash}" if entry.entry_hash else ""
                )

    def add_not_injected(self) -> None:
        """A deviation whose time never came is listed as not injected."""
        state = self.ctx.state
        done = {d.name for d in state.deviations}
        for e in self.ctx.scenario.deviations:
            if e.name in done:
                continue
            why = (
                f"its event (when: {e.when}) did not happen to "
                f"{e.order or 'any order'}/{e.operation or 'any operation'} after {e.at:g} s"
                if e.when
                else "its time was after the end of the run"
            )
            state.deviations.append(
                DeviationOutcome(
                    name=e.name,
                    type=e.type,
                    at=-1,
                    target=e.order or "",
                    outcome="not_injected",
                    message=why,
                )
            )
