"""Work units (stations): a machine's cycle.

1. take a unit: the first work unit releases one from the current job order (and from the
   line's arrivals, if the line is open; on an assembly line the first of each feeder
   branch, ``assembly.Branch``); the others take one from the upstream buffer (an
   assembly: a kit from all its inputs, ``assembly.Kit``; a merge: from any of its inputs,
   ``splits.Merge``) — **starved** while there is none;
2. when the job order changes: **setup** (changeover) if the model has one;
3. wait for an operator with the skill when the work unit needs one (**idle**, "no
   operator on shift"; with ``operator_attends: cycle`` it takes one person from the
   line's pool for the cycle, **idle** "waiting for an operator" until one is free);
4. consume material per the operation segment's bill of material from the staged lots
   (**starved** "material ... short" when no usable lot is left; ``materials``);
5. **running** for the sampled cycle time (failures interrupt it: **down**, then the cycle
   resumes where it stopped; ``failures``), or, on a batch unit, through the batch's
   phases (``batch``);
6. scrap with the work unit's probability, else pass the unit on; with the downstream
   buffer full the work unit is **blocked** after service (it holds the unit) until there
   is room.

Hot path: a cycle without a failure, setup or full buffer costs one SimPy timeout and a
handful of attribute updates; buffers hand units over without SimPy events when they can.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from plant_models.schema import FailureMode, MaterialRequirement, OperationSegment, WorkUnit
from twin.engine.assembly import feeder_scrapped
from twin.engine.batch import BatchRun
from twin.engine.buffers import BufferSim
from twin.engine.common import INFINITE, STOPPED, SimGen
from twin.engine.failures import Breakdowns
from twin.engine.jobs import Job
from twin.engine.materials import ConsumesMaterial, LotState
from twin.engine.operators import Crew, OperatorPool, Person
from twin.engine.process_values import ProcessValueSim, ScansValues
from twin.hooks import BLOCKED, IDLE, OFFLINE, RUNNING, SETUP, STARVED
from twin.ledger import JobWorkUnitActuals
from twin.streams import Sampler, sampler, substream, uniform01

if TYPE_CHECKING:
    from twin.engine.assembly import Branch
    from twin.engine.lines import LineSim
    from twin.engine.plant import Engine

_RUNNING = (RUNNING, "")
_STARVED = (STARVED, "starved: upstream empty")
_BLOCKED = (BLOCKED, "blocked: downstream full")


def _no_cycle() -> float:
    raise AssertionError("a batch unit runs its phases, it has no cycle time")


class WorkUnitSim(Breakdowns, ConsumesMaterial, ScansValues):
    """One machine's process. Attributes are the live figures the observers see."""

    # Slots, not a __dict__: with this many attributes CPython 3.11 gives up its shared-key
    # instance dicts and every ``self.x`` in the hot loop becomes a dict look-up (about
    # twice the cost of a slot).
    __slots__ = (
        "_ledger_listeners",
        "_log",
        "_setup_rng",
        "_setup_samplers",
        "_snap",
        "alarm_active",
        "base",
        "batch",
        "bill_of_material",
        "broken",
        "clock_modes",
        "code",
        "consumed",
        "crew",
        "current_lots",
        "cycle",
        "cycle_end",
        "defective",
        "downstream",
        "engine",
        "env",
        "feeder",
        "first",
        "forced_lots",
        "in_timeout",
        "index",
        "job",
        "job_first",
        "job_last",
        "line",
        "obs",
        "op_clock",
        "op_modes",
        "op_next",
        "op_next_min",
        "pool",
        "proc",
        "processed",
        "reason",
        "repaired",
        "reset_event",
        "rework_check",
        "rework_to",
        "reworked",
        "scrap_draw",
        "scrap_p",
        "segment",
        "setup_spec",
        "setups",
        "since",
        "source",
        "spec",
        "state",
        "state_acc",
        "stop_requested",
        "stopped_waiting",
        "upstream",
    )

    def __init__(self, engine: Engine, line: LineSim, index: int, spec: WorkUnit) -> None:
        self.engine = engine
        self.env = engine.env
        self.line = line
        self.index = index
        self.first = index == 0  # in the line's first station (``LineSim`` sets it)
        # where a first station's new units come from: the line, or a feeder branch's
        # head on an assembly line; ``feeder``: the branch re-making this unit's scrap
        self.source: LineSim | Branch = line
        self.feeder: Branch | None = None
        self.spec = spec
        self.code = spec.code
        name = spec.code
        root = engine.root
        if spec.cycle_time is not None:
            self.cycle = sampler(spec.cycle_time, substream(root, f"{name}/cycle"), duration=True)
        else:
            self.cycle = _no_cycle
        self.scrap_p = spec.scrap_probability
        self.scrap_draw = uniform01(substream(root, f"{name}/scrap")) if self.scrap_p > 0 else None
        # routing by outcome: ``LineSim`` gives the rework target's input buffer
        self.rework_to: BufferSim | None = None
        self.rework_check: Callable[[], bool] | None = None
        self.reworked = 0
        self.setup_spec = spec.setup
        self._setup_samplers: dict[str, Sampler] = {}
        self._setup_rng = substream(root, f"{name}/setup")
        self.upstream: BufferSim | None = None
        self.downstream: BufferSim | None = None
        self.crew: Crew | None = None
        self.pool: OperatorPool | None = None  # ``operator_attends: cycle``
        self.obs = engine.observers
        # state
        self.state = IDLE
        self.reason = "idle: no job order"
        self.since = 0.0
        self.base = (IDLE, self.reason)
        ledger = engine.ledger
        self.state_acc, self._log = ledger.add_work_unit(name)
        self._ledger_listeners = ledger.listeners
        self.broken = 0
        self.repaired: simpy.Event | None = None
        self.in_timeout = False
        self.cycle_end = 0.0
        self.stop_requested = False
        self.reset_event: simpy.Event | None = None
        self.stopped_waiting: tuple[str, str] | None = None
        """(state, reason) of a wait a stop command took offline (``Controls.reset``)."""
        # counters (PackML admin: cumulative)
        self.processed = 0
        self.defective = 0
        self.consumed = 0
        self.setups = 0
        # job bookkeeping
        self.job: Job | None = None
        self.segment: OperationSegment | None = None
        self.bill_of_material: tuple[MaterialRequirement, ...] = ()
        self._snap = (0, 0, 0)  # counters when the current job order began here
        self.job_first: float | None = None
        self.job_last: float | None = None
        self.current_lots: dict[str, LotState] = {}
        self.forced_lots: dict[str, str] = {}
        # failures on operating time: one operating clock, next failure per mode
        self.op_clock = 0.0
        self.op_modes: list[tuple[FailureMode, Sampler, Sampler]] = []
        self.op_next: list[float] = []
        self.op_next_min = INFINITE
        self.clock_modes: list[tuple[FailureMode, Sampler, Sampler]] = []
        self._init_failures(spec, root)
        self.alarm_active: set[str] = set()
        self.proc = self.env.process(self._run())
        for k, (mode, ttf, ttr) in enumerate(self.clock_modes):
            self.env.process(self._clock_failures(k, mode, ttf, ttr))
        # One scan per update period samples all the work unit's values of that period,
        # in model order, as its PLC would: one SimPy event a period, not one a value.
        scans: dict[float, list[ProcessValueSim]] = {}
        for pv in spec.process_values:
            scans.setdefault(pv.update_period, []).append(ProcessValueSim(engine, self, pv))
        self.batch = BatchRun(engine, self, spec.batch) if spec.batch is not None else None
        scan = self._scan if self.batch is None else self.batch.scan
        for period, values in scans.items():
            self.env.process(scan(period, values))

    # -- states -------------------------------------------------------------------------
    def _record(self, state: str, reason: str) -> None:
        """Make (state, reason) the visible state: close the previous interval."""
        if state == self.state and reason == self.reason:
            return
        now = self.env._now  # inlined ``env.now``: this runs once per state change
        since = self.since
        old = self.state
        if now > since:
            self.state_acc[old] += now - since
            log = self._log
            if log is not None:
                log.starts.append(since)
                log.labels.append(self.reason or old)
                log.closed_until = now
            if self._ledger_listeners:
                self.engine.ledger.state_interval(self.code, since, now, old, self.reason)
        self.state, self.reason, self.since = state, reason, now
        if self.obs:
            self.engine.notify_state(self, old)

    def close_interval(self) -> None:
        """Book the open state interval up to now (end of run); the state goes on."""
        now = self.env._now
        since = self.since
        if now > since:
            self.state_acc[self.state] += now - since
            log = self._log
            if log is not None:
                log.starts.append(since)
                log.labels.append(self.reason or self.state)
                log.closed_until = now
            if self._ledger_listeners:
                self.engine.ledger.state_interval(self.code, since, now, self.state, self.reason)
            self.since = now

    def enter(self, state: str, reason: str = "") -> None:
        """The work unit is now doing ``state`` (shown unless it is broken down)."""
        self.base = (state, reason)
        if not self.broken:
            self._record(state, reason)

    # -- the machine's life -------------------------------------------------------------

    def _run(self) -> SimGen:
        # Locals for the hot loop (attribute look-ups are most of its cost).
        env = self.env
        timeout = env.timeout
        line = self.line
        source = self.source
        first = self.first
        up = self.upstream
        down = self.downstream
        cycle = self.cycle
        scrap_draw = self.scrap_draw
        scrap_p = self.scrap_p
        obs = self.obs
        engine = self.engine
        only_operating_failures = not self.clock_modes
        rework_check = self.rework_check  # set by ``LineSim`` before the process starts
        pool = self.pool  # set by ``staff_work_units`` before the process starts
        batch = self.batch
        person: Person | None = None
        while True:
            if self.broken or self.stop_requested:  # rare: one test on the hot path
                if self.stop_requested:
                    yield from self._stopped()
                while self.broken:
                    yield self.repair_done()
            # 1. take a unit
            if first:
                unit = source.try_release()
                if unit is None:
                    unit = yield from source.release_wait(self)
                    if self.stop_requested or self.broken:  # rare: spare the generator
                        yield from self._after_wait()
            else:
                assert up is not None
                unit = up.try_get()
                if unit is None:
                    # ``enter`` inlined: not broken here (checked above, no time passed)
                    self.base = _STARVED
                    self._record(STARVED, "starved: upstream empty")
                    unit = yield up.get_wait(self)
                    if self.stop_requested or self.broken:  # rare: spare the generator
                        yield from self._after_wait()
            job = unit[0]
            # 2. job order change -> setup
            if job is not self.job:
                yield from self._change_job(job)
            # 3. operator on shift
            crew = self.crew
            if crew is not None and not crew.available:
                self.enter(IDLE, "idle: no operator on shift")
                while not crew.available:
                    yield crew.wait()
                if self.stop_requested or self.broken:
                    yield from self._after_wait()
            if pool is not None:  # an operator attends the cycle
                person = pool.try_take()
                if person is None:
                    self.enter(IDLE, f"idle: waiting for an operator ({pool.skill})")
                    person = yield pool.wait(env)
                    if self.stop_requested or self.broken:
                        yield from self._after_wait()
            # 4. material
            if self.bill_of_material:
                yield from self._consume(job, self.bill_of_material)
            # 5. process (``enter(RUNNING)`` inlined: when the visible state is running
            # the work unit is not broken and its base state is running already)
            if self.job_first is None:
                self.job_first = env._now
            self.consumed += 1
            if batch is not None:  # a batch unit: its phases instead of one cycle
                yield from batch.run(job)
            else:
                if self.state != RUNNING:
                    self.base = _RUNNING
                    if not self.broken:
                        self._record(RUNNING, "")
                ct = cycle()
                op_clock = self.op_clock + ct
                if only_operating_failures and op_clock < self.op_next_min:
                    self.op_clock = op_clock
                    self.cycle_end = end = env._now + ct  # lets an injected breakdown interrupt
                    try:
                        yield timeout(ct)
                    except simpy.Interrupt:
                        rest = end - env._now
                        self.op_clock -= rest
                        yield from self._work(rest, RUNNING, "")
                else:
                    yield from self._work(ct, RUNNING, "")
            if pool is not None:
                assert person is not None
                OperatorPool.give_back(person)
            # 6. scrap or pass on
            self.processed += 1
            self.job_last = env._now
            if scrap_draw is not None and scrap_draw() < scrap_p:
                self.defective += 1
                if obs:
                    engine.notify_counters(self)
                if self.feeder is not None:  # a kit's part: its feeder makes another
                    feeder_scrapped(self, unit)
                line.unit_left(unit, scrapped=True)
                continue
            if obs:
                engine.notify_counters(self)
            if rework_check is not None and rework_check():  # the inspection failed
                self.reworked += 1
                rework = self.rework_to
                assert rework is not None
                rework.put_rework(unit)
                continue
            if down is None:
                line.unit_left(unit, scrapped=False)
            elif not down.try_put(unit):
                self.base = _BLOCKED  # ``enter`` inlined
                if not self.broken:
                    self._record(BLOCKED, "blocked: downstream full")
                yield down.put_wait(unit, self)

    def _change_job(self, job: Job) -> SimGen:
        prev = self.job
        self.flush_job()
        self.job = job
        self.segment = job.segments[self.index]
        self.bill_of_material = tuple(self.segment.materials) if self.segment else ()
        self.current_lots = {}
        if self.obs:
            self.engine.notify_job(self)
        setup = self.setup_spec
        if setup is None:
            return
        dist = None
        if prev is None or prev.product != job.product:
            dist = setup.per_product.get(job.product, setup.changeover)
        elif setup.same_product is not None:
            dist = setup.same_product
        if dist is None:
            return
        key = f"{job.product}/{prev is None or prev.product != job.product}"
        sample = self._setup_samplers.get(key)
        if sample is None:
            sample = sampler(dist, self._setup_rng, duration=True)
            self._setup_samplers[key] = sample
        crew = self.crew
        if crew is not None and not crew.available:
            self.enter(IDLE, "idle: no operator on shift")
            while not crew.available:
                yield crew.wait()
        pool = self.pool
        person: Person | None = None
        if pool is not None:  # an operator does the changeover
            person = pool.try_take()
            if person is None:
                self.enter(IDLE, f"idle: waiting for an operator ({pool.skill})")
                person = yield pool.wait(self.env)
        self.setups += 1
        reason = (
            f"setup: changeover to {job.product}"
            if dist is not setup.same_product
            else (f"setup: job order change to {job.id}")
        )
        yield from self._work(sample(), SETUP, reason)
        if person is not None:
            OperatorPool.give_back(person)

    def flush_job(self) -> None:
        """Book this work unit's actuals for the current job order in the ledger."""
        job = self.job
        started = self.consumed - self._snap[0]
        if job is not None and started:
            processed = self.processed - self._snap[1]
            scrapped = self.defective - self._snap[2]
            acts = JobWorkUnitActuals(
                started, processed - scrapped, scrapped, self.job_first, self.job_last
            )
            self.engine.ledger.job_work_unit(job.id, self.code, acts)
        self._snap = (self.consumed, self.processed, self.defective)
        self.job_first = None
        self.job_last = None

    def _after_wait(self) -> SimGen:
        """After a wait: a stop command or a breakdown that came meanwhile holds the unit
        on the machine until reset / repair."""
        if self.stop_requested:
            yield from self._stopped()
        while self.broken:
            yield self.repair_done()

    def _stopped(self) -> SimGen:
        self.stop_requested = False
        self.stopped_waiting = None
        self.enter(OFFLINE, STOPPED)
        self.reset_event = self.env.event()
        yield self.reset_event
        self.reset_event = None
        self.enter(IDLE, "idle: reset")

    # -- figures ------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        rework = {"reworked": self.reworked} if self.rework_check is not None else {}
        batches = {"batches": self.batch.batches} if self.batch is not None else {}
        return {
            **rework,
            **batches,
            "line": self.line.code,
            "equipment_class": self.spec.equipment_class,
            "processed": self.processed,
            "good": self.processed - self.defective,
            "scrap": self.defective,
            "consumed": self.consumed,
            "setups": self.setups,
            "state": self.state,
            "reason": self.reason,
            "operating_time": self.state_acc[RUNNING],
        }
