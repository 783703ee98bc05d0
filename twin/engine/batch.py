"""Batch work units (ISA-88, IEC 61512-1): each unit of flow is a batch run through phases.

A work unit with a ``batch`` (``plant_models.batch``) takes its unit as any work unit does
(``stations``: starved, setup, operator, material), then, instead of one cycle, runs the
batch's phases in recipe order, each for its sampled duration, all of them in the state
``running`` (PackML Execute): a breakdown interrupts the phase, which resumes after the
repair (preemptive resume, as a cycle does). Then it scraps or passes the unit on, so the
counts stay one unit per batch and the MES counts the batch's output like any unit's.

During a phase the work unit's process values follow the phase's ``values`` (a
distribution, or a set point ramp over the phase's planned duration, plus noise), the
others their own distribution; drift and an injected drift still add to them.

Observers that implement ``twin.hooks.BatchObserver`` are told the batch id, its quantity
and the phase (number and name) at each phase change; the ground truth of every phase
(batch, phase, start, end, planned duration) is kept in ``BatchRun.log``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from plant_models.batch import Batch, Ramp
from plant_models.distributions import AnyDistribution, Normal
from twin.engine.common import SimGen
from twin.hooks import RUNNING, BatchObserver
from twin.streams import Sampler, sampler, substream

if TYPE_CHECKING:
    from twin.engine.jobs import Job
    from twin.engine.plant import Engine
    from twin.engine.process_values import ProcessValueSim
    from twin.engine.stations import WorkUnitSim

PhaseValueFn = Callable[[float], float]
"""A process value during a phase: the phase's progress (0..1) -> a sample."""


class PhaseRecord(NamedTuple):
    """One phase of one batch as it really happened (ground truth)."""

    batch_id: str
    number: int
    name: str
    start: float
    end: float
    planned: float
    """The sampled duration; ``end - start`` exceeds it by the breakdowns in the phase."""


def _phase_value(value: AnyDistribution | Ramp, rng_name: str, engine: Engine) -> PhaseValueFn:
    rng = substream(engine.root, rng_name)
    if isinstance(value, Ramp):
        start, rise = value.start, value.end - value.start
        noise: Sampler | None = (
            sampler(Normal(kind="normal", mean_=0.0, sd=value.sd), rng, duration=False)
            if value.sd > 0
            else None
        )
        if noise is None:
            return lambda progress: start + rise * progress
        return lambda progress: start + rise * progress + noise()
    sample = sampler(value, rng, duration=False)
    return lambda progress: sample()


class BatchRun:
    """A work unit's batch: its phases' samplers, the current batch and phase, the log."""

    __slots__ = (
        "_job",
        "_k",
        "active",
        "batch_id",
        "batches",
        "durations",
        "log",
        "name",
        "number",
        "phase_length",
        "phase_start",
        "phase_values",
        "size",
        "spec",
        "wu",
    )

    def __init__(self, engine: Engine, wu: WorkUnitSim, spec: Batch) -> None:
        self.wu = wu
        self.spec = spec
        self.size = spec.size
        code = wu.code
        # Streams keyed by phase name: adding a phase leaves the others' draws unchanged.
        self.durations = [
            sampler(p.duration, substream(engine.root, f"{code}/batch/{p.name}"), duration=True)
            for p in spec.phases
        ]
        self.phase_values: list[dict[str, PhaseValueFn]] = [
            {
                name: _phase_value(value, f"{code}/pv/{name}/phase/{p.name}", engine)
                for name, value in p.values.items()
            }
            for p in spec.phases
        ]
        self.batch_id = ""
        self.number = 0  # the phase shown, 1-based; 0 before the first batch
        self.name = ""
        self.active = False  # in a phase (else the values follow their own distributions)
        self.phase_start = 0.0
        self.phase_length = 0.0
        self.batches = 0
        self.log: list[PhaseRecord] = []
        self._job: Job | None = None
        self._k = 0

    def run(self, job: Job) -> SimGen:
        """Run one batch of ``job`` through the phases (the work unit's step 5)."""
        wu = self.wu
        env = wu.env
        if job is not self._job:
            self._job, self._k = job, 0
        self._k += 1
        self.batches += 1
        # ISA-88 batch id: the job order's (a continuous line's: the line's), numbered; a
        # parallel station's units each number their own, so their code keeps ids unique.
        where = f"-{wu.code}" if wu.spec.station is not None else ""
        self.batch_id = f"{job.id or wu.line.code}{where}-B{self._k:02d}"
        for k, (phase, duration) in enumerate(zip(self.spec.phases, self.durations, strict=True)):
            planned = duration()
            start = env._now
            self.number, self.name = k + 1, phase.name
            self.phase_start, self.phase_length = start, planned
            self.active = True
            self._tell()
            yield from wu._work(planned, RUNNING, "")
            self.log.append(PhaseRecord(self.batch_id, k + 1, phase.name, start, env._now, planned))
        # The last phase stays shown until the next batch starts (the work unit's state says
        # it no longer executes): a "no phase" in between would often share its timestamp
        # with the next batch's first phase, and a collector keeps one value per timestamp.
        self.active = False

    def _tell(self) -> None:
        wu = self.wu
        if not wu.obs:
            return
        now = wu.env._now
        wall = wu.engine.wall(now)
        for o in wu.obs:
            if isinstance(o, BatchObserver):
                o.on_phase(now, wu.code, self.batch_id, self.size, self.number, self.name, wall)

    def tell(self, observer: BatchObserver) -> None:
        """Tell a newly registered ``observer`` the current batch and phase."""
        wu = self.wu
        now = wu.env.now
        observer.on_phase(
            now, wu.code, self.batch_id, self.size, self.number, self.name, wu.engine.wall(now)
        )

    def scan(self, period: float, values: list[ProcessValueSim]) -> SimGen:
        """``ScansValues._scan`` for a batch unit: during a phase a value the phase names
        follows the phase. (A copy rather than a hook in ``_scan``: that loop samples every
        value of every plant, which should not pay for a test it never needs.)"""
        wu = self.wu
        engine = wu.engine
        env = wu.env
        obs = engine.observers
        timeout = env.timeout
        code = wu.code
        phase_values = self.phase_values
        while True:
            now = env._now
            wall = engine.wall(now) if obs else None
            job = wu.job
            in_phase = phase_values[self.number - 1] if self.active else None
            length = self.phase_length
            progress = min((now - self.phase_start) / length, 1.0) if length > 0 else 1.0
            for pv in values:
                fn = in_phase.get(pv.name) if in_phase else None
                if fn is not None:
                    base = fn(progress)
                else:
                    noise = (
                        pv.by_product.get(job.product, pv.noise)
                        if job and pv.by_product
                        else pv.noise
                    )
                    base = noise()
                value = base + pv.drift * now + pv.offset
                pv.last = value
                pv.count += 1
                pv.total += value
                if value < pv.minimum:
                    pv.minimum = value
                if value > pv.maximum:
                    pv.maximum = value
                if obs and (pv.published is None or abs(value - pv.published) > pv.deadband):
                    pv.published = value
                    for o in obs:
                        o.on_value(now, code, pv.name, value, wall)
            yield timeout(period)
