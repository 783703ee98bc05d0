"""The twin engine: a SimPy model built from a plant model.

Units flow work unit -> buffer -> work unit along each line. A work unit's cycle:

1. take a unit: the first work unit releases one from the current job order (and from the
   line's arrivals, if the line is open); the others take one from the upstream buffer —
   **starved** while there is none;
2. when the job order changes: **setup** (changeover) if the model has one;
3. wait for an operator with the skill when the work unit needs one (**idle**, "no
   operator on shift");
4. consume material per the operation segment's bill of material from the staged lots
   (**starved** "material ... short" when no usable lot is left);
5. **running** for the sampled cycle time (failures interrupt it: **down**, then the cycle
   resumes where it stopped);
6. scrap with the work unit's probability, else pass the unit on; with the downstream
   buffer full the work unit is **blocked** after service (it holds the unit) until there
   is room.

Failures count their time to failure on the clock (``basis: clock``: they also strike an
idle, starved or blocked machine) or on operating time (``basis: operating``: only running
time counts, the classic operation-dependent failures). Process values are sampled at
their update period with noise and drift. Every visible change goes to the registered
``PlantObserver``s (``twin.hooks``) — with none registered those calls are skipped — and
everything that happened goes to the ground-truth ``Ledger``.

Hot path: a cycle without a failure, setup or full buffer costs one SimPy timeout and a
handful of attribute updates; buffers hand units over without SimPy events when they can.
"""

from __future__ import annotations

import time as _time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from plant_models.schema import (
    Buffer,
    FailureMode,
    Line,
    MaterialRequirement,
    OperationSegment,
    PlantModel,
    ProcessValue,
    Product,
    WorkUnit,
    segments_of,
)
from twin.hooks import (
    ALARM_BLOCKED,
    ALARM_BREAKDOWN,
    ALARM_STARVED,
    BLOCKED,
    DOWN,
    IDLE,
    MAINTENANCE,
    OFFLINE,
    PACKML_FOR_STATE,
    RUNNING,
    SETUP,
    STARVED,
    PlantObserver,
)
from twin.ledger import JobWorkUnitActuals, Ledger
from twin.shifts import Interval, merge, operator_intervals
from twin.streams import Sampler, root_seed, sampler, substream, uniform01

SimGen = Generator[simpy.Event, Any, Any]

INFINITE = float("inf")
_RUNNING = (RUNNING, "")
_STARVED = (STARVED, "starved: upstream empty")
_BLOCKED = (BLOCKED, "blocked: downstream full")
PACE_TICK = 0.005
"""Paced runs: batches of events start at most this often (wall seconds)."""
PACE_MAX_SLEEP = 0.05
"""Paced runs: the longest sleep, so that submitted commands apply promptly."""


class ControlError(ValueError):
    """A command into the plant (``PlantControl``) was refused; the message says why."""


class CannotKeepPace(RuntimeError):
    """A paced run fell behind the wall clock by more than it may (``lag`` seconds)."""

    def __init__(self, lag: float, sim_time: float, speed: float) -> None:
        self.lag = lag
        self.sim_time = sim_time
        self.speed = speed
        super().__init__(
            f"cannot keep pace at speed {speed:g}: {lag:.3f} s behind the wall clock "
            f"at simulated time {sim_time:.1f} s"
        )


# ---------------------------------------------------------------------------------------
# Job orders
# ---------------------------------------------------------------------------------------


class Job:
    """A job order inside the engine (the ledger keeps its public record)."""

    __slots__ = (
        "done",
        "id",
        "made",
        "outstanding",
        "product",
        "quantity",
        "released",
        "scrapped",
        "segments",
        "started",
    )

    def __init__(self, job_id: str, product: str, quantity: float, segments: list[Any]) -> None:
        self.id = job_id
        self.product = product
        self.quantity = quantity
        self.segments = segments  # per work unit index: OperationSegment | None
        self.released = 0
        self.made = 0
        self.scrapped = 0
        self.outstanding = 0
        self.started = False
        self.done = False


# ---------------------------------------------------------------------------------------
# Buffers
# ---------------------------------------------------------------------------------------


class BufferSim:
    """A FIFO buffer with ``capacity`` (0: direct hand-off; None: unbounded), optionally a
    conveyor (units become available ``transfer`` seconds after they entered).

    One producer and one consumer (a serial line). Keeps the integrals Little's law needs:
    time-average level, arrivals, sojourn times.
    """

    __slots__ = (
        "_getter",
        "_last",
        "_putters",
        "_transfer",
        "area",
        "capacity",
        "code",
        "entered",
        "env",
        "exited",
        "items",
        "sojourn",
    )

    def __init__(
        self, env: simpy.Environment, code: str, capacity: int | None, transfer: Sampler | None
    ) -> None:
        self.env = env
        self.code = code
        self.capacity = INFINITE if capacity is None else capacity
        self._transfer = transfer
        self.items: deque[tuple[float, float, Any]] = deque()
        self._getter: simpy.Event | None = None
        self._putters: deque[tuple[simpy.Event, Any]] = deque()
        self.area = 0.0
        self._last = 0.0
        self.entered = 0
        self.exited = 0
        self.sojourn = 0.0

    def _level_changes(self, now: float) -> None:
        self.area += len(self.items) * (now - self._last)
        self._last = now

    def _append(self, unit: Any, now: float) -> None:
        items = self.items
        self.area += len(items) * (now - self._last)  # level integral, inlined
        self._last = now
        if self._transfer is None:
            ready = now
        else:
            ready = now + self._transfer()
            if items and ready < items[-1][0]:
                ready = items[-1][0]  # a conveyor keeps its order
        items.append((ready, now, unit))
        self.entered += 1

    def try_put(self, unit: Any) -> bool:
        """Put ``unit`` if there is room (or a waiting taker); False when full."""
        now = self.env._now
        getter = self._getter
        items = self.items
        if getter is not None and self._transfer is None and not items:
            self._getter = None
            self.entered += 1
            self.exited += 1
            getter.succeed(unit)
            return True
        if len(items) >= self.capacity:
            return False
        if self._transfer is None and getter is None:  # the common case, inlined
            self.area += len(items) * (now - self._last)
            self._last = now
            items.append((now, now, unit))
            self.entered += 1
            return True
        self._append(unit, now)
        if getter is not None and len(items) == 1:
            self._deliver_later(items[0][0] - now)
        return True

    def put_wait(self, unit: Any) -> simpy.Event:
        """An event that fires when ``unit`` has been taken into the buffer (blocked)."""
        ev = self.env.event()
        self._putters.append((ev, unit))
        return ev

    def try_get(self) -> Any:
        """The next unit if one is there and ready, else None."""
        items = self.items
        if items:
            now = self.env._now
            ready, entered, unit = items[0]
            if ready > now:
                return None
            self.area += len(items) * (now - self._last)  # level integral, inlined
            self._last = now
            items.popleft()
            self.exited += 1
            self.sojourn += now - entered
            if self._putters:
                ev, waiting = self._putters.popleft()
                self._append(waiting, now)
                ev.succeed()
            return unit
        if self._putters:  # capacity 0: take it straight from the blocked machine
            ev, waiting = self._putters.popleft()
            self.entered += 1
            self.exited += 1
            ev.succeed()
            return waiting
        return None

    def get_wait(self) -> simpy.Event:
        """An event whose value is the next unit (the taker is starved until then)."""
        ev = self.env.event()
        self._getter = ev
        if self.items:  # a unit in transit on a conveyor
            self._deliver_later(self.items[0][0] - self.env.now)
        return ev

    def _deliver_later(self, delay: float) -> None:
        timer = self.env.timeout(max(delay, 0.0))
        timer.callbacks.append(self._deliver)

    def _deliver(self, _event: simpy.Event) -> None:
        getter = self._getter
        if getter is None:
            return
        unit = self.try_get()
        if unit is None:  # pragma: no cover - a later head: wait for it
            self._deliver_later(self.items[0][0] - self.env.now)
            return
        self._getter = None
        getter.succeed(unit)

    def figures(self, now: float) -> dict[str, Any]:
        self._level_changes(now)
        return {
            "capacity": None if self.capacity == INFINITE else int(self.capacity),
            "level": len(self.items),
            "entered": self.entered,
            "exited": self.exited,
            "mean_level": self.area / now if now > 0 else 0.0,
            "arrival_rate": self.entered / now if now > 0 else 0.0,
            "mean_sojourn": self.sojourn / self.exited if self.exited else 0.0,
        }


# ---------------------------------------------------------------------------------------
# Operators (crews available per line and skill)
# ---------------------------------------------------------------------------------------


class Crew:
    """Whether someone with ``skill`` is on shift on a line (shift calendars, breaks)."""

    def __init__(self, env: simpy.Environment, intervals: Iterator[Interval]) -> None:
        self.env = env
        self.available = False
        self._wake: simpy.Event | None = None
        env.process(self._run(intervals))

    def wait(self) -> simpy.Event:
        if self._wake is None:
            self._wake = self.env.event()
        return self._wake

    def _run(self, intervals: Iterator[Interval]) -> SimGen:
        env = self.env
        for start, end in intervals:
            if end <= env.now:
                continue
            if start > env.now:
                yield env.timeout(start - env.now)
            self.available = True
            if self._wake is not None:
                wake, self._wake = self._wake, None
                wake.succeed()
            yield env.timeout(end - env.now)
            self.available = False


# ---------------------------------------------------------------------------------------
# Material lots
# ---------------------------------------------------------------------------------------


@dataclass
class LotState:
    id: str
    material: str
    remaining: float
    line: str | None
    usable: bool


class MaterialStore:
    """The staged lots per material; picks FIFO among usable lots (available, no deviation).

    Deliberately wrong/expired/short lots are not picked by themselves: a scenario loads
    them on a work unit with ``Engine.load_material_lot``.
    """

    def __init__(self, env: simpy.Environment, model: PlantModel) -> None:
        self.env = env
        self.lots: dict[str, LotState] = {}
        self.by_material: dict[str, list[LotState]] = {}
        self.unlimited = {m.id for m in model.materials if m.unlimited_supply}
        self.arrived: simpy.Event = env.event()
        for lot in model.material_lots:
            self.add(
                lot.id,
                lot.material,
                lot.quantity,
                lot.line,
                lot.status == "available" and lot.deviation == "none",
            )

    def add(
        self, lot_id: str, material: str, quantity: float, line: str | None, usable: bool
    ) -> None:
        state = LotState(lot_id, material, quantity, line, usable)
        self.lots[lot_id] = state
        self.by_material.setdefault(material, []).append(state)
        if usable:
            arrived, self.arrived = self.arrived, self.env.event()
            arrived.succeed()

    def pick(self, material: str, line: str) -> LotState | None:
        if material in self.unlimited:
            lot_id = f"{material}-BULK"
            lot = self.lots.get(lot_id)
            if lot is None:
                lot = LotState(lot_id, material, INFINITE, None, True)
                self.lots[lot_id] = lot
            return lot
        for lot in self.by_material.get(material, ()):
            if lot.usable and lot.remaining > 1e-9 and lot.line in (None, line):
                return lot
        return None


# ---------------------------------------------------------------------------------------
# Work units
# ---------------------------------------------------------------------------------------


class WorkUnitSim:
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
        "proc",
        "processed",
        "reason",
        "repaired",
        "reset_event",
        "scrap_draw",
        "scrap_p",
        "segment",
        "setup_spec",
        "setups",
        "since",
        "spec",
        "state",
        "state_acc",
        "stop_requested",
        "upstream",
    )

    def __init__(self, engine: Engine, line: LineSim, index: int, spec: WorkUnit) -> None:
        self.engine = engine
        self.env = engine.env
        self.line = line
        self.index = index
        self.spec = spec
        self.code = spec.code
        name = spec.code
        root = engine.root
        self.cycle = sampler(spec.cycle_time, substream(root, f"{name}/cycle"), duration=True)
        self.scrap_p = spec.scrap_probability
        self.scrap_draw = uniform01(substream(root, f"{name}/scrap")) if self.scrap_p > 0 else None
        self.setup_spec = spec.setup
        self._setup_samplers: dict[str, Sampler] = {}
        self._setup_rng = substream(root, f"{name}/setup")
        self.upstream: BufferSim | None = None
        self.downstream: BufferSim | None = None
        self.crew: Crew | None = None
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
        names = [mode.name for mode in spec.failures]
        for k, mode in enumerate(spec.failures):
            # Streams keyed by the failure mode's name: adding a mode moves no other's draws.
            key = f"{name}/fail/{mode.name}" + (f"#{k}" if names.count(mode.name) > 1 else "")
            ttf = sampler(mode.time_to_failure, substream(root, f"{key}/ttf"), duration=True)
            ttr = sampler(mode.time_to_repair, substream(root, f"{key}/ttr"), duration=True)
            if mode.basis == "operating":
                self.op_modes.append((mode, ttf, ttr))
                self.op_next.append(ttf())
            else:
                self.clock_modes.append((mode, ttf, ttr))
        if self.op_next:
            self.op_next_min = min(self.op_next)
        self.alarm_active: set[str] = set()
        self.proc = self.env.process(self._run())
        for k, (mode, ttf, ttr) in enumerate(self.clock_modes):
            self.env.process(self._clock_failures(k, mode, ttf, ttr))
        # One scan per update period samples all the work unit's values of that period,
        # in model order, as its PLC would: one SimPy event a period, not one a value.
        scans: dict[float, list[ProcessValueSim]] = {}
        for pv in spec.process_values:
            scans.setdefault(pv.update_period, []).append(ProcessValueSim(engine, self, pv))
        for period, values in scans.items():
            self.env.process(self._scan(period, values))

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

    def repair_done(self) -> simpy.Event:
        """The event of the end of the current breakdown (only while broken)."""
        repaired = self.repaired
        assert repaired is not None, "not broken down"
        return repaired

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
        first = self.index == 0
        up = self.upstream
        down = self.downstream
        cycle = self.cycle
        scrap_draw = self.scrap_draw
        scrap_p = self.scrap_p
        obs = self.obs
        engine = self.engine
        only_operating_failures = not self.clock_modes
        while True:
            if self.broken or self.stop_requested:  # rare: one test on the hot path
                if self.stop_requested:
                    yield from self._stopped()
                while self.broken:
                    yield self.repair_done()
            # 1. take a unit
            if first:
                unit = line.try_release()
                if unit is None:
                    unit = yield from line.release_wait(self)
                    if self.stop_requested or self.broken:  # rare: spare the generator
                        yield from self._after_wait()
            else:
                assert up is not None
                unit = up.try_get()
                if unit is None:
                    # ``enter`` inlined: not broken here (checked above, no time passed)
                    self.base = _STARVED
                    self._record(STARVED, "starved: upstream empty")
                    unit = yield up.get_wait()
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
            # 4. material
            if self.bill_of_material:
                yield from self._consume(job, self.bill_of_material)
            # 5. process (``enter(RUNNING)`` inlined: when the visible state is running
            # the work unit is not broken and its base state is running already)
            if self.job_first is None:
                self.job_first = env._now
            self.consumed += 1
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
            # 6. scrap or pass on
            self.processed += 1
            self.job_last = env._now
            if scrap_draw is not None and scrap_draw() < scrap_p:
                self.defective += 1
                if obs:
                    engine.notify_counters(self)
                line.unit_left(unit, scrapped=True)
                continue
            if obs:
                engine.notify_counters(self)
            if down is None:
                line.unit_left(unit, scrapped=False)
            elif not down.try_put(unit):
                self.base = _BLOCKED  # ``enter`` inlined
                if not self.broken:
                    self._record(BLOCKED, "blocked: downstream full")
                yield down.put_wait(unit)

    def _work(self, duration: float, state: str, reason: str) -> SimGen:
        """Spend ``duration`` in ``state``, interrupted by failures (then resumed)."""
        env = self.env
        remaining = duration
        self.enter(state, reason)
        while remaining > 1e-12:
            while self.broken:
                self.enter(state, reason)
                yield self.repair_done()
            step = remaining
            op_failure = -1
            if state == RUNNING and self.op_clock + step >= self.op_next_min:
                step = max(self.op_next_min - self.op_clock, 0.0)
                op_failure = self.op_next.index(self.op_next_min)
            start = env.now
            self.in_timeout = True
            try:
                yield env.timeout(step)
            except simpy.Interrupt:
                done = env.now - start
                self.in_timeout = False
                if state == RUNNING:
                    self.op_clock += done
                remaining -= done
                continue  # broken: the loop waits for the repair
            self.in_timeout = False
            if state == RUNNING:
                self.op_clock += step
            remaining -= step
            if op_failure >= 0:
                yield from self._operating_failure(op_failure)
                self.enter(state, reason)

    def _operating_failure(self, k: int) -> SimGen:
        mode, ttf, ttr = self.op_modes[k]
        repair = ttr()
        self.op_next[k] = self.op_clock + ttf()
        self.op_next_min = min(self.op_next)
        yield from self._breakdown(mode, repair, interrupt=False)

    def _clock_failures(self, k: int, mode: FailureMode, ttf: Sampler, ttr: Sampler) -> SimGen:
        env = self.env
        while True:
            yield env.timeout(ttf())
            repair = ttr()
            yield from self._breakdown(mode, repair, interrupt=True)

    def _breakdown(
        self, mode: FailureMode, repair: float, *, interrupt: bool, state: str = DOWN
    ) -> SimGen:
        """The work unit is out of order (``down``, or ``maintenance``) for ``repair`` s.

        Clock-time stops interrupt a cycle or setup in progress, which resumes afterwards
        (preemptive resume); overlapping stops end when the last one does.
        """
        env = self.env
        basis = mode.basis if state == DOWN else "maintenance"
        self.engine.ledger.failure(env.now, self.code, mode.name, basis, repair)
        self.broken += 1
        if self.broken == 1:
            self.repaired = env.event()
        reason = f"{state}: {mode.reason or mode.name}"
        self._record(state, reason)
        alarm = self.obs and state == DOWN
        if alarm:
            self.engine.notify_alarm(self, ALARM_BREAKDOWN, mode.severity, reason, True)
        if interrupt and (self.in_timeout or self.cycle_end > env._now):
            self.proc.interrupt(mode.name)
        yield env.timeout(repair)
        self.broken -= 1
        if alarm:
            self.engine.notify_alarm(self, ALARM_BREAKDOWN, mode.severity, reason, False)
        if not self.broken:
            self._record(*self.base)
            repaired, self.repaired = self.repaired, None
            assert repaired is not None
            repaired.succeed()

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
        self.setups += 1
        reason = (
            f"setup: changeover to {job.product}"
            if dist is not setup.same_product
            else (f"setup: job order change to {job.id}")
        )
        yield from self._work(sample(), SETUP, reason)

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

    def _consume(self, job: Job, bill: tuple[MaterialRequirement, ...]) -> SimGen:
        store = self.engine.materials
        ledger = self.engine.ledger
        for req in bill:
            need = req.quantity_per_unit
            while need > 1e-12:
                lot = self.current_lots.get(req.material)
                if lot is None or lot.remaining <= 1e-12:
                    forced = self.forced_lots.pop(req.material, None)
                    lot = (
                        store.lots.get(forced)
                        if forced
                        else store.pick(req.material, self.line.code)
                    )
                    if lot is None:
                        self.enter(STARVED, f"starved: material {req.material} short")
                        yield store.arrived
                        continue
                    self.current_lots[req.material] = lot
                    if self.obs:  # MaterialLotID changes
                        self.engine.notify_job(self)
                take = min(need, lot.remaining)
                lot.remaining -= take
                need -= take
                ledger.lot_consumed(self.env.now, job.id, self.code, req.material, lot.id, take)

    def _after_wait(self) -> SimGen:
        """After a wait: a stop command or a breakdown that came meanwhile holds the unit
        on the machine until reset / repair."""
        if self.stop_requested:
            yield from self._stopped()
        while self.broken:
            yield self.repair_done()

    def _stopped(self) -> SimGen:
        self.stop_requested = False
        self.enter(OFFLINE, "offline: stopped by command")
        self.reset_event = self.env.event()
        yield self.reset_event
        self.reset_event = None
        self.enter(IDLE, "idle: reset")

    def _scan(self, period: float, values: list[ProcessValueSim]) -> SimGen:
        """Sample ``values`` every ``period`` s (noise, drift), publishing what moved more
        than its deadband."""
        engine = self.engine
        env = self.env
        obs = engine.observers
        timeout = env.timeout
        code = self.code
        while True:
            now = env._now
            wall = engine.wall(now) if obs else None
            job = self.job
            for pv in values:
                # The product being made (or last made) sets the value's distribution.
                noise = (
                    pv.by_product.get(job.product, pv.noise) if job and pv.by_product else pv.noise
                )
                value = noise() + pv.drift * now + pv.offset
                pv.last = value
                pv.count += 1
                pv.total += value
                if value < pv.minimum:
                    pv.minimum = value
                if value > pv.maximum:
                    pv.maximum = value
                if obs and (pv.published is None or abs(value - pv.published) > pv.deadband):
                    pv.published = value
                    for o in obs:  # ``notify_value`` inlined: this is a call per sample
                        o.on_value(now, code, pv.name, value, wall)
            yield timeout(period)

    # -- figures ------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        return {
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


class ProcessValueSim:
    """A process value sampled every ``update_period`` with noise and drift (by its work
    unit's scan, ``WorkUnitSim._scan``)."""

    __slots__ = (
        "by_product",
        "count",
        "deadband",
        "drift",
        "last",
        "maximum",
        "minimum",
        "name",
        "noise",
        "offset",
        "published",
        "spec",
        "total",
        "wu",
    )

    def __init__(self, engine: Engine, wu: WorkUnitSim, spec: ProcessValue) -> None:
        self.wu = wu
        self.spec = spec
        self.name = spec.name
        self.deadband = spec.deadband
        self.noise = sampler(
            spec.distribution, substream(engine.root, f"{wu.code}/pv/{spec.name}"), duration=False
        )
        # One stream per product, so adding a product leaves the others' values unchanged.
        self.by_product = {
            product: sampler(
                dist,
                substream(engine.root, f"{wu.code}/pv/{spec.name}/{product}"),
                duration=False,
            )
            for product, dist in spec.per_product.items()
        }
        self.drift = spec.drift_per_hour / 3600.0
        self.offset = 0.0
        self.last: float | None = None
        self.published: float | None = None
        self.count = 0
        self.total = 0.0
        self.minimum = INFINITE
        self.maximum = -INFINITE
        engine.values[(wu.code, spec.name)] = self

    def figures(self) -> dict[str, Any]:
        return {
            "unit": self.spec.unit,
            "samples": self.count,
            "mean": self.total / self.count if self.count else None,
            "min": self.minimum if self.count else None,
            "max": self.maximum if self.count else None,
            "last": self.last,
        }


# ---------------------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------------------


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
        root = engine.root
        by_pair = {(b.upstream, b.downstream): b for b in spec.buffers}
        self.buffers: list[BufferSim] = []
        for up, down in zip(self.work_units, self.work_units[1:], strict=False):
            b: Buffer | None = by_pair.get((up.code, down.code))
            if b is None:
                buf = BufferSim(engine.env, f"{up.code}>{down.code}", 0, None)
            else:
                transfer = (
                    sampler(b.transfer_time, substream(root, f"{b.code}/transfer"), duration=True)
                    if b.transfer_time is not None
                    else None
                )
                buf = BufferSim(engine.env, b.code, b.capacity, transfer)
                self.buffers.append(buf)
            up.downstream = buf
            down.upstream = buf
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
            self.queue.append(job)

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
                self._job_wait = self.env.event()
                yield self._job_wait
                continue
            if self.arrivals is None:
                unit = self.try_release()
                assert unit is not None
                return unit
            wu.enter(STARVED, "starved: no arrivals")
            t_in = yield self.arrivals.get_wait()
            self._released(job)
            return (job, t_in)

    def dispatch(self, job: Job) -> None:
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
        if job.outstanding == 0 and job.released >= job.quantity and not job.done:
            job.done = True
            self.jobs_completed += 1
            if job.id:
                for wu in self.work_units:
                    if wu.job is job:
                        wu.flush_job()
                self.engine.ledger.job_ended(now, job.id, job.released, job.made, job.scrapped)

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
            "jobs_queued": len(self.queue),
            "lost_arrivals": self.lost_arrivals,
        }


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------


class Engine:
    """A running plant: ``run_until(t)`` advances it; ``PlantControl`` commands steer it.

    ``speed`` None runs as fast as possible; a number paces simulated time to the wall
    clock (1 = real time, 60 = a minute a second) and raises ``CannotKeepPace`` when the
    run falls more than ``max_lag`` wall seconds behind (``strict``; else ``max_lag_seen``
    reports it). ``auto_dispatch`` releases the model's order stream to the lines at the
    release times (off when an MES dispatches with ``store_and_start``).
    """

    def __init__(
        self,
        model: PlantModel,
        seed: int | np.random.SeedSequence = 0,
        *,
        speed: float | None = None,
        strict: bool = True,
        max_lag: float = 1.0,
        auto_dispatch: bool = True,
        record_intervals: bool = True,
        blocked_alarm_after: float = 60.0,
    ) -> None:
        self.model = model
        self.root = root_seed(seed)
        self.seed = seed if isinstance(seed, int) else list(self.root.spawn_key)
        self.speed = speed
        self.strict = strict
        self.max_lag = max_lag
        self.max_lag_seen = 0.0
        self.blocked_alarm_after = blocked_alarm_after
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        # Paced runs too use a plain Environment: ``run_until`` paces it in batches (see
        # ``_run_paced``), not event by event as ``simpy.rt`` does with a sleep each.
        self.env = simpy.Environment()
        self._wall0: float | None = None
        self._real0 = 0.0  # time.monotonic() at simulated time 0 (paced runs)
        self.observers: list[PlantObserver] = []
        self.ledger = Ledger(model.plant.code, self.seed, record_intervals=record_intervals)
        self.ledger.set_sources(self._figures)
        self.values: dict[tuple[str, str], ProcessValueSim] = {}
        self.materials = MaterialStore(self.env, model)
        self._commands: deque[Callable[[], None]] = deque()
        self.jobs: dict[str, Job] = {}
        self._crew_cache: dict[tuple[str, str], Crew] = {}
        self._sweeper: simpy.Process | None = None
        self.lines = [LineSim(self, line) for line in model.lines]
        self.line_by_code = {line.code: line for line in self.lines}
        self.work_units = {wu.code: wu for line in self.lines for wu in line.work_units}
        self._crews(model)
        if auto_dispatch:
            self.env.process(self._order_stream())

    # -- building ------------------------------------------------------------------------
    @staticmethod
    def segments_for(product: Product, line: Line) -> list[OperationSegment | None]:
        """Which operation segment each work unit of ``line`` runs for ``product``."""
        return segments_of(product, line)

    def _crews(self, model: PlantModel) -> None:
        calendars = {c.id: c for c in model.shift_calendars}
        start = model.plant.start
        for line in self.lines:
            for wu in line.work_units:
                skill = wu.spec.operator_skill
                if skill is None:
                    continue
                key = (line.code, skill)
                crew = self._crew_cache.get(key)
                if crew is None:
                    people = [
                        op
                        for op in model.operators
                        if skill in op.skills and (not op.lines or line.code in op.lines)
                    ]
                    streams = [
                        operator_intervals(op, calendars[op.calendar], start) for op in people
                    ]
                    crew = Crew(self.env, merge(streams))
                    self._crew_cache[key] = crew
                wu.crew = crew

    def _order_stream(self) -> SimGen:
        env = self.env
        releases: list[tuple[float, str, str, int]] = []
        for job in self.model.order_stream.job_orders:
            releases.append((job.release, job.id, job.product, job.quantity))
        for gen in self.model.order_stream.generators:
            rng = substream(self.root, f"orders/{gen.prefix}")
            gap = sampler(gen.interarrival, rng, duration=True)
            qty = sampler(gen.quantity, rng, duration=True)
            products = list(gen.product_mix)
            weights = np.asarray([gen.product_mix[p] for p in products], dtype=float)
            choice = rng.choice(len(products), size=gen.count, p=weights / weights.sum())
            t = gen.first_release
            for n in range(gen.count):
                releases.append(
                    (t, f"{gen.prefix}-{n + 1:04d}", products[int(choice[n])], max(1, round(qty())))
                )
                t += gap()
        releases.sort(key=lambda r: r[0])
        for release, job_id, product, quantity in releases:
            if release > env.now:
                yield env.timeout(release - env.now)
            self._dispatch(job_id, product, quantity, line_code=None, source="order_stream")

    def _dispatch(
        self, job_id: str, product_id: str, quantity: int, line_code: str | None, source: str
    ) -> None:
        try:
            product = self.model.product(product_id)
        except KeyError:
            raise ControlError(f"job order {job_id}: unknown product {product_id!r}") from None
        target = line_code or product.line
        if product.line != target:
            raise ControlError(
                f"job order {job_id}: product {product_id} is made on line {product.line}, "
                f"not on {target}"
            )
        if job_id in self.jobs:
            raise ControlError(f"job order {job_id} was already dispatched")
        if quantity < 1:
            raise ControlError(f"job order {job_id}: quantity must be >= 1, got {quantity}")
        line = self.line_by_code[target]
        segments = self.segments_for(product, line.spec)
        job = Job(job_id, product_id, quantity, segments)
        self.jobs[job_id] = job
        stages = [
            (wu.code, seg.id, seg.output_material)
            for wu, seg in zip(line.spec.work_units, segments, strict=True)
            if seg is not None
        ]
        self.ledger.job_dispatched(
            self.env.now, job_id, product_id, target, quantity, source, stages
        )
        line.dispatch(job)

    # -- observers ----------------------------------------------------------------------
    def add_observer(self, observer: PlantObserver) -> None:
        """Register ``observer``; it first receives the current state of every work unit.

        Call it between ``run_until`` calls (or through ``submit`` from another thread).
        """
        self.observers.append(observer)
        if self._sweeper is None:
            self._sweeper = self.env.process(self._alarm_sweep())
        now = self.env.now
        wall = self.wall(now)
        for wu in self.work_units.values():
            observer.on_state(now, wu.code, wu.state, PACKML_FOR_STATE[wu.state], wu.reason, wall)
            observer.on_counters(now, wu.code, wu.processed, wu.defective, wu.consumed, wall)
            job = wu.job
            observer.on_job(
                now, wu.code, job.id if job else "", job.product if job else "", "", wall
            )

    def remove_observer(self, observer: PlantObserver) -> None:
        self.observers.remove(observer)

    def wall(self, t: float) -> float | None:
        """The wall-clock time (epoch s) simulated time ``t`` stands for in a paced run."""
        if self._wall0 is None or self.speed is None:
            return None
        return self._wall0 + t / self.speed

    def notify_state(self, wu: WorkUnitSim, old: str) -> None:
        now = self.env.now
        wall = self.wall(now)
        for o in self.observers:
            o.on_state(now, wu.code, wu.state, PACKML_FOR_STATE[wu.state], wu.reason, wall)
        if wu.alarm_active and old in (BLOCKED, STARVED):
            name = ALARM_BLOCKED if old == BLOCKED else ALARM_STARVED
            if name in wu.alarm_active:
                wu.alarm_active.discard(name)
                self.notify_alarm(wu, name, 300, f"{old}: cleared", False)

    def _alarm_sweep(self) -> SimGen:
        """Raise blocked / starved alarms for conditions lasting ``blocked_alarm_after`` s.

        A line with buffers flickers between starved and running all the time, which is
        not worth an alarm. One sweep over the plant every half of that delay (not a timer
        per state change) keeps the cost flat; it runs only while someone observes.
        """
        env = self.env
        after = self.blocked_alarm_after
        units = list(self.work_units.values())
        while self.observers:
            now = env._now
            for wu in units:
                state = wu.state
                if state in (BLOCKED, STARVED):
                    name = ALARM_BLOCKED if state == BLOCKED else ALARM_STARVED
                    if name not in wu.alarm_active and now - wu.since >= after:
                        wu.alarm_active.add(name)
                        self.notify_alarm(wu, name, 300, wu.reason, True)
            yield env.timeout(after / 2)
        self._sweeper = None

    def notify_counters(self, wu: WorkUnitSim) -> None:
        now = self.env.now
        wall = self.wall(now)
        for o in self.observers:
            o.on_counters(now, wu.code, wu.processed, wu.defective, wu.consumed, wall)

    def notify_value(self, wu: WorkUnitSim, name: str, value: float) -> None:
        now = self.env.now
        wall = self.wall(now)
        for o in self.observers:
            o.on_value(now, wu.code, name, value, wall)

    def notify_job(self, wu: WorkUnitSim) -> None:
        now = self.env.now
        wall = self.wall(now)
        job = wu.job
        lot = next(iter(wu.current_lots.values())).id if wu.current_lots else ""
        for o in self.observers:
            o.on_job(now, wu.code, job.id if job else "", job.product if job else "", lot, wall)

    def notify_alarm(
        self, wu: WorkUnitSim, alarm: str, severity: int, message: str, active: bool
    ) -> None:
        now = self.env.now
        wall = self.wall(now)
        for o in self.observers:
            o.on_alarm(now, wu.code, alarm, severity, message, active, wall)

    # -- running ------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return float(self.env.now)

    def run_until(self, t: float, *, chunk: float | None = None) -> None:
        """Advance simulated time to ``t`` (seconds since start), applying queued commands.

        As with ``simpy.Environment.run(until=t)``, events due exactly at ``t`` are left for
        the next call. An unpaced run applies commands every ``chunk`` simulated seconds
        (default: only before and after).

        A paced run returns when the wall clock reaches ``t``; it applies commands at least
        every ``PACE_MAX_SLEEP`` wall seconds and raises ``CannotKeepPace`` (strict) when
        it is more than ``max_lag`` wall seconds behind.
        """
        env = self.env
        if t < env.now:
            raise ValueError(f"cannot run back in time: now {env.now}, asked {t}")
        if self.speed is not None:
            self._run_paced(t)
        else:
            step = chunk or INFINITE
            while env.now < t:
                self._apply_commands()
                env.run(until=min(t, env.now + step))
        self._apply_commands()
        self.ledger.end_time = env.now

    def _run_paced(self, t: float) -> None:
        """Run to ``t`` in step with the wall clock, in batches.

        Each batch runs every event the wall clock has reached; then the engine sleeps
        until the next event is due, but no sooner than ``PACE_TICK`` after the batch
        began (and at most ``PACE_MAX_SLEEP``). An event is thus handled at most a tick
        (plus the batch's own work) after its wall time, as in a PLC's scan; its time
        stamp (the observers' ``wall``) is exact. ``simpy.rt`` sleeps once per event
        instead: at thousands of events a second, thousands of system calls and GIL
        hand-overs to the OPC UA thread.
        """
        env = self.env
        speed = self.speed
        assert speed is not None
        monotonic = _time.monotonic
        if self._wall0 is None:
            self._real0 = monotonic() - env.now / speed
            self._wall0 = _time.time() - env.now / speed
        real0 = self._real0
        while True:
            started = monotonic()
            self._apply_commands()
            reached = min(t, (started - real0) * speed)
            if reached > env.now:
                env.run(until=reached)
                self._check_pace()
            if env.now >= t:
                return
            wake = max(real0 + min(env.peek(), t) / speed, started + PACE_TICK)
            now = monotonic()
            if wake > now:
                _time.sleep(min(wake - now, PACE_MAX_SLEEP))

    def _check_pace(self) -> None:
        """How far the run is behind the wall clock; raise when too far (strict)."""
        speed = self.speed
        assert speed is not None
        lag = _time.monotonic() - (self._real0 + self.env.now / speed)
        if lag > self.max_lag_seen:
            self.max_lag_seen = lag
        if self.strict and lag > self.max_lag:
            raise CannotKeepPace(lag, self.env.now, speed)

    def _apply_commands(self) -> None:
        commands = self._commands
        while commands:
            commands.popleft()()

    def submit(self, command: Callable[[], None]) -> None:
        """Run ``command`` in the engine between events (thread-safe; for other threads)."""
        self._commands.append(command)

    def finish(self) -> dict[str, Any]:
        """Close open intervals and book open actuals (end of run); returns the summary."""
        now = self.env.now
        for wu in self.work_units.values():
            wu.flush_job()
            wu.close_interval()
        self.ledger.end_time = now
        return self.ledger.summary()

    def _figures(self) -> dict[str, Any]:
        now = self.env.now
        return {
            "work_units": {
                code: {
                    **wu.figures(),
                    "values": {
                        name: pv.figures() for (w, name), pv in self.values.items() if w == code
                    },
                }
                for code, wu in self.work_units.items()
            },
            "lines": {line.code: line.figures(now) for line in self.lines},
            "jobs": {
                j.id: {"released": j.released, "made": j.made, "scrapped": j.scrapped}
                for j in self.jobs.values()
            },
            "buffers": {b.code: b.figures(now) for line in self.lines for b in line.buffers},
        }

    # -- PlantControl (twin.hooks) -------------------------------------------------------
    def _line_of(self, code: str) -> LineSim:
        if code in self.line_by_code:
            return self.line_by_code[code]
        wu = self.work_units.get(code)
        if wu is None:
            raise ControlError(f"no line or work unit {code!r} in plant {self.model.plant.code}")
        return wu.line

    def _work_unit(self, code: str) -> WorkUnitSim:
        wu = self.work_units.get(code)
        if wu is None:
            raise ControlError(f"no work unit {code!r} in plant {self.model.plant.code}")
        return wu

    def store_and_start(self, work_unit: str, job_order: str, product: str, quantity: int) -> None:
        """Queue ``job_order`` at the line of ``work_unit`` (or line code); it starts when
        the line is free (ISA-95 Job Control, OPC UA ``StoreAndStart``)."""
        line = self._line_of(work_unit)
        self._dispatch(job_order, product, quantity, line.code, source="store_and_start")

    def stop(self, work_unit: str) -> None:
        """Stop the work unit after its current cycle (offline until ``reset``); a work
        unit waiting (idle, starved) goes offline at once."""
        wu = self._work_unit(work_unit)
        wu.stop_requested = True
        if not wu.broken and wu.state in (IDLE, STARVED):
            wu.enter(OFFLINE, "offline: stopped by command")

    def reset(self, work_unit: str) -> None:
        """Reset a stopped work unit to idle."""
        wu = self._work_unit(work_unit)
        if wu.reset_event is None:
            wu.stop_requested = False
            return
        wu.reset_event.succeed()

    # -- fault injection (scenario runner) ----------------------------------------------
    def load_material_lot(self, work_unit: str, lot: str) -> None:
        """Make ``work_unit`` take its next material from ``lot`` (wrong/expired/short lots)."""
        wu = self._work_unit(work_unit)
        state = self.materials.lots.get(lot)
        if state is None:
            raise ControlError(f"no material lot {lot!r} in plant {self.model.plant.code}")
        wu.forced_lots[state.material] = lot
        wu.current_lots.pop(state.material, None)

    def add_material_lot(
        self, lot: str, material: str, quantity: float, line: str | None = None
    ) -> None:
        """Stage a new usable lot (a delivery)."""
        if lot in self.materials.lots:
            raise ControlError(f"material lot {lot!r} exists already")
        self.materials.add(lot, material, quantity, line, True)

    def inject_failure(self, work_unit: str, duration: float, reason: str = "injected") -> None:
        """Break ``work_unit`` down now for ``duration`` seconds (a cycle in progress is
        interrupted and resumes after the repair)."""
        self._stop_for(work_unit, duration, reason, DOWN)

    def start_maintenance(self, work_unit: str, duration: float, reason: str = "planned") -> None:
        """Take ``work_unit`` into maintenance now for ``duration`` seconds (PackML
        Stopped, UnitMode Maintenance)."""
        self._stop_for(work_unit, duration, reason, MAINTENANCE)

    def _stop_for(self, work_unit: str, duration: float, reason: str, state: str) -> None:
        wu = self._work_unit(work_unit)
        if not duration > 0:
            raise ControlError(f"{state} duration must be > 0 s, got {duration}")
        mode = FailureMode(name=reason, basis="clock", time_to_failure=1.0, time_to_repair=duration)
        self.env.process(wu._breakdown(mode, duration, interrupt=True, state=state))

    def set_value_drift(
        self, work_unit: str, name: str, drift_per_hour: float, offset: float = 0.0
    ) -> None:
        """Change a process value's drift (and add an offset) from now on."""
        pv = self.values.get((work_unit, name))
        if pv is None:
            raise ControlError(f"no process value {name!r} on work unit {work_unit!r}")
        # Keep the value continuous at the moment the drift changes.
        now = self.env.now
        pv.offset += (pv.drift - drift_per_hour / 3600.0) * now + offset
        pv.drift = drift_per_hour / 3600.0
