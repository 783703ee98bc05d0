"""The simulated people in step with the plant: plant events move to the MES in order,
and the operator starts an operation before the counts it makes arrive (the predecessor's
good units first, rule 1, then the start, then the operation's own counts). Also what the
plant tells the people: a work unit took a job order, a machine drew a lot, a job order
finished, and the MES's dispatch reaching the machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mes_core.schemas.plant_events import CountEvent, PlantEvent
from twin.hooks import PackMLState
from twin.scenario.context import RunContext
from twin.scenario.people import People
from twin.scenario.sut import OrderRequest, SutUnavailable


class PeopleLoop:
    """The people of one run and the order in which plant events reach the MES."""

    def __init__(
        self,
        ctx: RunContext,
        *,
        before_starts: Callable[[float], None] | None = None,
        lot_drawn: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.before_starts = before_starts
        """Called when the plant has taken work nobody started yet, before the people
        start it (deviations triggered ``when: operation_startable``)."""
        self.lot_drawn = lot_drawn
        """Called with (job order, work unit) when a machine drew a lot."""

    def start(self) -> People:
        """The people, once the MES, the twin and the link are up; registers the plant's
        observers they need."""
        ctx = self.ctx
        assert ctx.sim is not None and ctx.sut is not None
        # After the link: a job's first unit flushes the link before the start.
        ctx.sim.add_observer(JobWatcher(self))
        ctx.sim.subscribe(self.ledger_record)
        ctx.people = People(ctx.scenario, ctx.plant, ctx.sut, ctx.orders, self.dispatch)
        return ctx.people

    def dispatch(self, order: OrderRequest) -> str:
        """The MES's dispatch reaches the machine (``StoreAndStart`` on the line)."""
        assert self.ctx.sim is not None
        product = self.ctx.plant.product(order.product)
        return self.ctx.sim.dispatch(product.line, order.id, order.product, order.quantity)

    def ledger_record(self, record: dict[str, Any]) -> None:
        people = self.ctx.people
        if people is None:
            return
        kind = record["kind"]
        if kind == "lot_consumed":
            people.lot_drawn(
                record["job_order"], record["work_unit"], record["lot"], record["quantity"]
            )
            if self.lot_drawn is not None:
                self.lot_drawn(record["job_order"], record["work_unit"])
        elif kind == "job" and record.get("event") == "completed":
            assert self.ctx.sim is not None
            job = self.ctx.sim.ledger.jobs[record["job_order"]]
            made_at = {wu: a.made for wu, a in job.work_units.items()}
            people.job_finished(record["t"], job.id, job.output_lot, made_at, job.made)

    def job_taken(self, t: float, work_unit: str, order: str) -> None:
        """A work unit took the first unit of ``order``: its operation must be started in
        the MES before the counts it makes arrive there."""
        if self.ctx.people is None:
            return
        self.ctx.people.job_taken(work_unit, order)
        self.deliver(t)

    def _blocked(self, event: PlantEvent) -> bool:
        assert self.ctx.people is not None
        return (
            isinstance(event, CountEvent)
            and event.job_order is not None
            and self.ctx.people.awaits_start(event.job_order, event.work_unit)
        )

    def deliver(self, t: float) -> None:
        """Move plant events to the MES in order, starting operations on the way: the
        predecessor's good units arrive first (rule 1), then the operator starts, then
        the operation's own counts follow."""
        ctx = self.ctx
        if ctx.link is None or ctx.people is None:
            return
        if ctx.state.mes_down or t < ctx.link_down_until:
            # The collector keeps trying; what fails stays spooled and is sent again.
            ctx.link.deliver_until(self._blocked)
            return
        try:
            for _ in range(100):
                stopped = ctx.link.deliver_until(self._blocked)
                if self.before_starts is not None:
                    self.before_starts(t)
                progressed = ctx.people.start_waiting(t)
                if not stopped and not progressed:
                    return
        except SutUnavailable:
            ctx.people.log.unavailable += 1

    def tick(self, t: float) -> None:
        """The people act (ERP, supervisor, operators, QA) unless the MES is down."""
        people = self.ctx.people
        assert people is not None
        if self.ctx.state.mes_down:
            return
        through = people.counts_needed_through(t)
        ingested_through = getattr(self.ctx.link, "ingested_through", None)
        if through is not None and ingested_through is not None:
            # A completion reads the job order's counts: its last units must be in.
            ingested_through(through)
        try:
            people.act(t)
        except SutUnavailable:
            people.log.unavailable += 1  # they try again at the next tick


class JobWatcher:
    """Observer that tells the people when a work unit picks up or leaves a job order."""

    def __init__(self, loop: PeopleLoop) -> None:
        self.loop = loop
        self.current: dict[str, str] = {}

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        prev = self.current.get(work_unit, "")
        if prev == job_order:
            return
        self.current[work_unit] = job_order
        if job_order:
            self.loop.job_taken(t, work_unit, job_order)

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        return

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        return

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        return

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
        return
