"""Failures: breakdowns on clock or operating time, injected stops and maintenance, and
how they interrupt a work unit's work (preemptive resume).

``basis: clock`` counts the time to failure on the calendar (a failure also strikes an
idle, starved or blocked machine); ``basis: operating`` counts only running time (the
classic operation-dependent failures of the serial-line literature).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
import simpy

from plant_models.schema import FailureMode, WorkUnit
from twin.engine.common import SimGen
from twin.hooks import ALARM_BREAKDOWN, DOWN, RUNNING
from twin.streams import Sampler, sampler, substream

if TYPE_CHECKING:
    from twin.engine.buffers import BufferSim
    from twin.engine.plant import Engine
    from twin.engine.stations import WorkUnitSim
    from twin.hooks import PlantObserver


class Breakdowns:
    """A work unit's failures (mixed into ``WorkUnitSim``)."""

    if not TYPE_CHECKING:  # mypy would take the empty slots for the work unit's
        __slots__ = ()

    if TYPE_CHECKING:  # what this part uses of the work unit (``WorkUnitSim`` sets it)
        env: simpy.Environment
        engine: Engine
        code: str
        obs: list[PlantObserver]
        proc: simpy.Process
        base: tuple[str, str]
        broken: int
        repaired: simpy.Event | None
        in_timeout: bool
        cycle_end: float
        op_clock: float
        op_modes: list[tuple[FailureMode, Sampler, Sampler]]
        op_next: list[float]
        op_next_min: float
        clock_modes: list[tuple[FailureMode, Sampler, Sampler]]
        upstream: BufferSim | None
        downstream: BufferSim | None

        def enter(self, state: str, reason: str = "") -> None: ...
        def _record(self, state: str, reason: str) -> None: ...

    def _init_failures(self, spec: WorkUnit, root: np.random.SeedSequence) -> None:
        """The failure modes' samplers; the first time to failure of each operating mode."""
        name = spec.code
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

    def repair_done(self) -> simpy.Event:
        """The event of the end of the current breakdown (only while broken)."""
        repaired = self.repaired
        assert repaired is not None, "not broken down"
        return repaired

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
            self.engine.notify_alarm(
                cast("WorkUnitSim", self), ALARM_BREAKDOWN, mode.severity, reason, True
            )
        if interrupt and (self.in_timeout or self.cycle_end > env._now):
            self.proc.interrupt(mode.name)
        yield env.timeout(repair)
        self.broken -= 1
        if alarm:
            self.engine.notify_alarm(
                cast("WorkUnitSim", self), ALARM_BREAKDOWN, mode.severity, reason, False
            )
        if not self.broken:
            self._record(*self.base)
            repaired, self.repaired = self.repaired, None
            assert repaired is not None
            repaired.succeed()
            # A broken machine held its part and took none: offer and ask again.
            if self.upstream is not None:
                self.upstream.repaired(self)
            if self.downstream is not None:
                self.downstream.repaired(self)
