"""Lines: their work units and buffers, the job order queue, release at the first work
unit (and open lines' arrivals), WIP and flow-time integrals (Little's law)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import simpy

from plant_models.schema import Buffer, Line, Rework, stations_of
from plant_models.splits import has_splits
from twin.engine.assembly import Branch, connect
from twin.engine.buffers import BufferSim
from twin.engine.common import INFINITE, SimGen
from twin.engine.jobs import Job
from twin.engine.splits import connect_splits
from twin.engine.stations import WorkUnitSim
from twin.hooks import IDLE, STARVED
from twin.streams import Sampler, sampler, substream, uniform01

if TYPE_CHECKING:
    from twin.engine.plant import Engine


class LineSim:
    """A line: its work units and buffers, its job order queue, its WIP integrals."""

    def __init__(self, engine: Engine, spec: Line) -> None:
        self.engine = engine
        self.env = engine.env
        self.spec = spec
        self.code = spec.code
        self.queue: deque[Job] = deque()
        self.current: Job | None = None
        self._job_wait: simpy.Event | None = None
        self.wip = 0
        self.wip_area = 0.0
        self._wip_last = 0.0
        self.entered = 0
        self.left = 0
        self.made = 0
        self.scrapped = 0
        self.flow_time = 0.0
        self.jobs_completed = 0
        self.work_units = [WorkUnitSim(engine, self, i, wu) for i, wu in enumerate(spec.work_units)]
        # Stations in flow order: a work unit alone, or a parallel station's work units,
        # which share their input and output buffers.
        by_code = {wu.code: wu for wu in self.work_units}
        self.stations = [
            (code, [by_code[u.code] for u in units]) for code, units in stations_of(spec)
        ]
        for wu in self.stations[0][1]:
            wu.first = True
        root = engine.root
        by_pair = {(b.upstream, b.downstream): b for b in spec.buffers}
        self.buffers: list[BufferSim] = []
        # An assembly line's feeder branches release their own parts (``assembly``).
        self.branches: list[Branch] = []
        self.parts_per_unit = 1
        pairs = zip(self.stations, self.stations[1:], strict=False)
        if any(wu.assembly is not None for wu in spec.work_units):
            connect(self)
            pairs = zip((), (), strict=True)
        elif has_splits(spec):  # routing by product (``splits``)
            connect_splits(self)
            pairs = zip((), (), strict=True)
        for (up, ups), (down, downs) in pairs:
            b: Buffer | None = by_pair.get((up, down))
            if b is None:
                buf = BufferSim(engine.env, f"{up}>{down}", 0, None)
            else:
                transfer = (
                    sampler(b.transfer_time, substream(root, f"{b.code}/transfer"), duration=True)
                    if b.transfer_time is not None
                    else None
                )
                buf = BufferSim(engine.env, b.code, b.capacity, transfer)
                self.buffers.append(buf)
            for wu in ups:
                wu.downstream = buf
            for wu in downs:
                wu.upstream = buf
        for wu in self.work_units:
            if wu.spec.rework is not None:
                self._route_rework(wu, wu.spec.rework)
        self.arrivals: BufferSim | None = None
        if spec.arrivals is not None:
            self.arrivals = BufferSim(
                engine.env, f"{spec.code}-ARRIVALS", spec.arrivals.capacity, None
            )
            self.buffers.insert(0, self.arrivals)
            gap = sampler(
                spec.arrivals.interarrival, substream(root, f"{spec.code}/arrivals"), duration=True
            )
            self.env.process(self._arrive(gap))
        self.lost_arrivals = 0
        if spec.continuous_product is not None:
            job = Job(
                "",
                spec.continuous_product,
                INFINITE,
                engine.segments_for(engine.model.product(spec.continuous_product), spec),
            )
            self.dispatch(job)

    def _route_rework(self, wu: WorkUnitSim, rework: Rework) -> None:
        """Send ``wu``'s failed units to the input buffer of the station ``rework.to``."""
        target = next(units for code, units in self.stations if code == rework.to)
        wu.rework_to = target[0].upstream
        if rework.probability is not None:
            draw = uniform01(substream(self.engine.root, f"{wu.code}/rework"))
            p = rework.probability
            wu.rework_check = lambda: draw() < p
        else:
            rule = rework.rule
            assert rule is not None
            pv = self.engine.values[(wu.code, rule.value)]
            low = -INFINITE if rule.low is None else rule.low
            high = INFINITE if rule.high is None else rule.high

            def fails() -> bool:
                value = pv.last
                return value is not None and not low <= value <= high

            wu.rework_check = fails

    # -- WIP (Little's law on the line) -------------------------------------------------
    def _wip_changes(self, delta: int) -> None:
        now = self.env.now
        self.wip_area += self.wip * (now - self._wip_last)
        self._wip_last = now
        self.wip += delta

    def _arrive(self, gap: Sampler) -> SimGen:
        env = self.env
        arrivals = self.arrivals
        assert arrivals is not None
        while True:
            yield env.timeout(gap())
            if arrivals.try_put(env.now):
                self.entered += 1
                self._wip_changes(+1)
            else:
                self.lost_arrivals += 1  # finite queue: the customer is turned away

    # -- release at the first work unit ------------------------------------------------
    def _job_with_work(self) -> Job | None:
        job = self.current
        if job is not None and job.released < job.quantity:
            return job
        while self.queue:
            job = self.queue.popleft()
            self.current = job
            if job.released < job.quantity:
                return job
        self.current = None
        return None

    def try_release(self) -> tuple[Job, float] | None:
        """A new unit for the first work unit, if a job order has work and a unit arrived."""
        job = self.current
        if job is None or job.released >= job.quantity:
            job = self._job_with_work()
            if job is None:
                return None
        if self.arrivals is not None:
            t_in = self.arrivals.try_get()
            if t_in is None:
                return None
        else:
            t_in = now = self.env._now
            self.entered += 1
            self.wip_area += self.wip * (now - self._wip_last)  # WIP integral, inlined
            self._wip_last = now
            self.wip += 1
        job.released += 1
        job.outstanding += 1
        if not job.started:
            self._started(job)
        return (job, t_in)

    def _started(self, job: Job) -> None:
        job.started = True
        if job.id:
            self.engine.ledger.job_started(self.env.now, job.id)

    def _released(self, job: Job) -> None:
        job.released += 1
        job.outstanding += 1
        if not job.started:
            self._started(job)

    def release_wait(self, wu: WorkUnitSim) -> SimGen:
        """Wait for a job order (idle) or an arrival (starved), then release a unit."""
        while True:
            job = self._job_with_work()
            if job is None:
                wu.enter(IDLE, "idle: no job order")
                if self._job_wait is None:  # one event for the first station's units
                    self._job_wait = self.env.event()
                yield self._job_wait
                continue
            if self.arrivals is None:
                unit = self.try_release()
                assert unit is not None
                return unit
            wu.enter(STARVED, "starved: no arrivals")
            t_in = yield self.arrivals.get_wait(wu)
            # Another work unit of a parallel first station may have released the last
            # unit of that job order meanwhile: the arrival goes to the next one with work.
            job = self._job_with_work() or job
            self._released(job)
            return (job, t_in)

    def dispatch(self, job: Job) -> None:
        if self.branches:  # every feeder branch releases its parts of the job order
            job.release_total = job.quantity * self.parts_per_unit
            for branch in self.branches:
                branch.dispatch(job)
            return
        self.queue.append(job)
        if self._job_wait is not None:
            wake, self._job_wait = self._job_wait, None
            wake.succeed()

    def unit_left(self, unit: tuple[Job, float], *, scrapped: bool) -> None:
        job, t_in = unit
        now = self.env._now
        self.wip_area += self.wip * (now - self._wip_last)  # WIP integral, inlined
        self._wip_last = now
        self.wip -= 1
        self.left += 1
        self.flow_time += now - t_in
        if scrapped:
            self.scrapped += 1
            job.scrapped += 1
        else:
            self.made += 1
            job.made += 1
        job.outstanding -= 1
        if job.outstanding == 0 and job.released >= job.release_total and not job.done:
            job.done = True
            self.jobs_completed += 1
            if job.id:
                for wu in self.work_units:
                    if wu.job is job:
                        wu.flush_job()
                self.engine.ledger.job_ended(now, job.id, job.released, job.made, job.scrapped)

    def joined(self, parts: list[tuple[Job, float]]) -> tuple[Job, float]:
        """An assembly joined ``parts`` into one unit: of the first part's job order, in
        the line since the earliest part entered."""
        job = parts[0][0]
        self._wip_changes(1 - len(parts))
        for part_job, _ in parts:
            part_job.outstanding -= 1
        job.outstanding += 1
        return (job, min(t for _, t in parts))

    def figures(self, now: float) -> dict[str, Any]:
        self._wip_changes(0)
        hours = now / 3600.0
        return {
            "entered": self.entered,
            "made": self.made,
            "scrapped": self.scrapped,
            "wip": self.wip,
            "throughput_per_hour": self.made / hours if hours > 0 else 0.0,
            "mean_wip": self.wip_area / now if now > 0 else 0.0,
            "arrival_rate": self.entered / now if now > 0 else 0.0,
            "mean_flow_time": self.flow_time / self.left if self.left else 0.0,
            "jobs_completed": self.jobs_completed,
            "jobs_queued": max([len(self.queue)] + [len(b.queue) for b in self.branches]),
            "lost_arrivals": self.lost_arrivals,
        }
