"""What the engine tells its observers (``twin.hooks.PlantObserver``): state changes,
counters, process values, job orders, alarms (mixed into ``Engine``). With no observer
registered the engine skips these calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.engine.common import SimGen
from twin.hooks import (
    ALARM_BLOCKED,
    ALARM_STARVED,
    BLOCKED,
    PACKML_FOR_STATE,
    STARVED,
    BatchObserver,
    PlantObserver,
)

if TYPE_CHECKING:
    import simpy

    from twin.engine.stations import WorkUnitSim


class Observing:
    """The observers and the calls that notify them."""

    if TYPE_CHECKING:  # what this part uses of the engine (``Engine`` sets it)
        env: simpy.Environment
        speed: float | None
        blocked_alarm_after: float
        observers: list[PlantObserver]
        work_units: dict[str, WorkUnitSim]
        _sweeper: simpy.Process | None
        _wall0: float | None

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
            if wu.batch is not None and isinstance(observer, BatchObserver):
                wu.batch.tell(observer)

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
