"""Faults of a run's timeline: the plant breaks down, the equipment link drops, the MES
process dies, its database becomes unreachable. Each is recorded as a
:class:`~twin.scenario.report.FaultRecord`; one the bench cannot cause says so
(``not injected`` and why). Also the timeline itself: every fault and deviation as an
action at its plant time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from plant_models.scenario import (
    DEVIATION_TYPES,
    Breakdown,
    DatabaseUnreachable,
    Deviation,
    Fault,
    MesRestart,
    OpcUaDrop,
    OpcUaServerRestart,
    RandomBreakdowns,
)
from twin.scenario.context import RunContext
from twin.scenario.deviations import DeviationInjector
from twin.scenario.report import FaultRecord
from twin.scenario.sut import DatabaseLink, ProcessControl, SutUnavailable, missing


@dataclass
class Action:
    """One entry of the timeline, due at plant time ``at``."""

    at: float
    order: int
    label: str
    do: Callable[[float], None]


class FaultInjector:
    """The timeline's actions of one run, and the faults among them."""

    def __init__(self, ctx: RunContext, deviations: DeviationInjector) -> None:
        self.ctx = ctx
        self.deviations = deviations
        self._pending_restart: float | None = None
        self._db_restore_at: float | None = None
        self.not_injected: list[tuple[Fault, float, str]] = []
        """Faults the bench could not inject: (entry, plant time, why)."""

    # -- the timeline ---------------------------------------------------------------------

    def actions(self) -> list[Action]:
        """Every fault and deviation due before the end of the run, in time order."""
        ctx = self.ctx
        acts = [a for a in self._all_actions() if a.at <= ctx.end]
        for e in ctx.scenario.timeline:
            at = getattr(e, "at", None)
            if at is not None and at > ctx.end:
                why = f"the run was shortened to {ctx.end:g} s"
                ctx.state.notes.append(f"{e.type} at {at:g} s not injected: {why}")
                if not isinstance(e, DEVIATION_TYPES):
                    self.not_injected.append((e, at, why))
        return acts

    def _all_actions(self) -> list[Action]:
        rng = np.random.default_rng(self.ctx.scenario.seed + 7919)
        acts: list[Action] = []
        for n, e in enumerate(self.ctx.scenario.timeline):
            acts += self.entry_actions(e, n, rng)
        return sorted(acts, key=lambda a: (a.at, a.order))

    def entry_actions(self, e: Fault | Deviation, n: int, rng: np.random.Generator) -> list[Action]:
        """The actions of one timeline entry (a random breakdown series gives several);
        also how a trainer's injection during the run (``twin.scenario.control``) becomes
        the same actions as a scenario's."""
        ctx = self.ctx
        if isinstance(e, Breakdown):
            return [Action(e.at, n, e.type, self._breakdown(e.work_unit, e.duration, e.reason, e))]
        if isinstance(e, RandomBreakdowns):
            acts: list[Action] = []
            t = e.start
            end = min(e.end if e.end is not None else ctx.end, ctx.end)
            while True:
                t += float(rng.exponential(e.mtbf))
                if t >= end:
                    break
                d = float(rng.exponential(e.mttr))
                acts.append(
                    Action(t, n, "breakdown", self._breakdown(e.work_unit, d, "random breakdown"))
                )
                t += d
            return acts
        if isinstance(e, OpcUaDrop):
            return [Action(e.at, n, e.type, self._link_drop(e.type, e.duration))]
        if isinstance(e, OpcUaServerRestart):
            return [Action(e.at, n, e.type, self._link_drop(e.type, e.downtime))]
        if isinstance(e, MesRestart):
            return [Action(e.at, n, e.type, self._mes_restart(e))]
        if isinstance(e, DatabaseUnreachable):
            return [Action(e.at, n, e.type, self._db_cut(e))]
        return [Action(e.at, n, e.type, self.deviations.action(e))]

    def call(self, act: Action, t: float) -> None:
        try:
            act.do(t)
        except SutUnavailable as exc:
            self.ctx.state.problems.append(
                f"{act.label} at {t:g} s: the MES was unreachable: {exc}"
            )

    # -- the faults -----------------------------------------------------------------------

    def _breakdown(
        self, wu: str, duration: float, reason: str, entry: Breakdown | None = None
    ) -> Callable[[float], None]:
        """A breakdown of ``wu``; ``entry`` when the timeline names this one (a random
        draw that finds the machine already down is only noted)."""

        def do(t: float) -> None:
            assert self.ctx.sim is not None
            why = self.ctx.sim.breakdown(wu, duration, reason)
            self.ctx.state.faults.append(
                FaultRecord(
                    type="breakdown",
                    at=t,
                    until=t + duration,
                    target=wu,
                    detail=f"not injected: {why}" if why else reason,
                )
            )
            if why and entry is not None:
                self.not_injected.append((entry, t, why))

        return do

    def _link_drop(self, kind: str, duration: float) -> Callable[[float], None]:
        def do(t: float) -> None:
            ctx = self.ctx
            ctx.link_down_until = t + duration
            inject = getattr(ctx.link, "inject", None)
            if inject is not None:  # the OPC UA link cuts its proxy or stops its server
                inject(kind, t + duration)
            ctx.state.faults.append(
                FaultRecord(
                    type=kind,
                    at=t,
                    until=t + duration,
                    target="equipment link",
                    detail="plant events spooled by the collector, replayed after",
                )
            )

        return do

    def _mes_restart(self, e: MesRestart) -> Callable[[float], None]:
        downtime = e.downtime

        def do(t: float) -> None:
            ctx = self.ctx
            sut = ctx.sut
            if isinstance(sut, ProcessControl):
                why = sut.kill_process()
            else:
                why = missing("process_control", ctx.scenario.system_under_test.adapter)
            if why is not None:
                ctx.state.faults.append(
                    FaultRecord(type="mes_restart", at=t, detail=f"not injected: {why}")
                )
                self.not_injected.append((e, t, why))
                return
            ctx.state.mes_down = True
            ctx.state.faults.append(
                FaultRecord(
                    type="mes_restart",
                    at=t,
                    until=t + downtime,
                    target="the MES process",
                    detail="SIGKILL of the MES process group, restarted on the same DB",
                )
            )
            self._pending_restart = t + downtime

        return do

    def maybe_restart_mes(self, t: float) -> None:
        sut = self.ctx.sut
        if self._pending_restart is None or t < self._pending_restart:
            return
        assert isinstance(sut, ProcessControl)
        sut.restart_process()
        try:
            sut.wait_ready(90)
        except SutUnavailable as exc:
            self.ctx.state.problems.append(f"the MES did not come back after its restart: {exc}")
        self.ctx.state.mes_down = False
        self._pending_restart = None

    def _db_cut(self, e: DatabaseUnreachable) -> Callable[[float], None]:
        duration = e.duration

        def do(t: float) -> None:
            ctx = self.ctx
            sut = ctx.sut
            if isinstance(sut, DatabaseLink):
                why = sut.cut_database()
            else:
                why = missing("database_link", ctx.scenario.system_under_test.adapter)
            if why is not None:
                ctx.state.faults.append(
                    FaultRecord(
                        type="database_unreachable",
                        at=t,
                        until=t + duration,
                        detail=f"not injected: {why}",
                    )
                )
                self.not_injected.append((e, t, why))
                return
            self._db_restore_at = t + duration
            ctx.state.faults.append(
                FaultRecord(
                    type="database_unreachable",
                    at=t,
                    until=t + duration,
                    target="the MES's database",
                    detail="the connection between MES and database cut",
                )
            )

        return do

    def maybe_restore_db(self, t: float) -> None:
        sut = self.ctx.sut
        if self._db_restore_at is not None and t >= self._db_restore_at:
            if isinstance(sut, DatabaseLink):
                sut.restore_database()
            self._db_restore_at = None
