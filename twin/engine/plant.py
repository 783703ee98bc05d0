"""The plant and its run: ``Engine`` builds the lines from a plant model, releases the
order stream, and advances simulated time as fast as possible or paced to the wall clock.
"""

from __future__ import annotations

import time as _time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from plant_models.schema import Line, OperationSegment, PlantModel, Product, segments_of
from twin.engine.common import INFINITE, CannotKeepPace, ControlError, SimGen
from twin.engine.control import Controls
from twin.engine.jobs import Job
from twin.engine.lines import LineSim
from twin.engine.materials import MaterialStore
from twin.engine.observing import Observing
from twin.engine.operators import staff_work_units
from twin.engine.process_values import ProcessValueSim
from twin.hooks import PlantObserver
from twin.ledger import Ledger
from twin.streams import root_seed, sampler, substream

PACE_TICK = 0.005
"""Paced runs: batches of events start at most this often (wall seconds)."""
PACE_MAX_SLEEP = 0.05
"""Paced runs: the longest sleep, so that submitted commands apply promptly."""


class Engine(Observing, Controls):
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
        self._sweeper: simpy.Process | None = None
        self.lines = [LineSim(self, line) for line in model.lines]
        self.line_by_code = {line.code: line for line in self.lines}
        self.work_units = {wu.code: wu for line in self.lines for wu in line.work_units}
        staff_work_units(self)
        if auto_dispatch:
            self.env.process(self._order_stream())

    # -- building ------------------------------------------------------------------------
    @staticmethod
    def segments_for(product: Product, line: Line) -> list[OperationSegment | None]:
        """Which operation segment each work unit of ``line`` runs for ``product``."""
        return segments_of(product, line)

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
