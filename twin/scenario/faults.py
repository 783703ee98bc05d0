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
    Breakdown,
    DatabaseUnreachable,
    MesRestart,
    OpcUaDrop,
    OpcUaServerRestart,
    RandomBreakdowns,
)
from twin.scenario.context import RunContext
from twin.scenario.deviations import DeviationInjector
from twin.scenario.mes_core_launch import MesCoreLauncher
from twin.scenario.report import FaultRecord
from twin.scenario.sut import SutUnavailable


@dataclass
class Action:
    """One entry of the timeline, due at plant time ``at``."""

    at: float
    order: int
    label: str
    do: Callable[[float], None]


class FaultInjector:
    """The timeline's actions of one run, and the faults among them."""

    def __init__(
        self, ctx: RunContext, launcher: MesCoreLauncher, deviations: DeviationInjector
    ) -> None:
        self.ctx = ctx
        self.launcher = launcher
        self.deviations = deviations
        self._pending_restart: float | None = None
        self._db_restore_at: float | None = None

    # -- the timeline ---------------------------------------------------------------------

    def actions(self) -> list[Action]:
        """Every fault and deviation due before the end of the run, in time order."""
        ctx = self.ctx
        acts = [a for a in self._all_actions() if a.at <= ctx.end]
        for e in ctx.scenario.timeline:
            at = getattr(e, "at", None)
            if at is not None and at > ctx.end:
                ctx.state.notes.append(
                    f"{e.type} at {at:g} s not injected: the run was shortened to {ctx.end:g} s"
                )
        return acts

    def _all_actions(self) -> list[Action]:
        ctx = self.ctx
        acts: list[Action] = []
        rng = np.random.default_rng(ctx.scenario.seed + 7919)
        for n, e in enumerate(ctx.scenario.timeline):
            if isinstance(e, Breakdown):
                acts.append(
                    Action(e.at, n, e.type, self._breakdown(e.work_unit, e.duration, e.reason))
                )
            elif isinstance(e, RandomBreakdowns):
                t = e.start
                end = min(e.end if e.end is not None else ctx.end, ctx.end)
                while True:
                    t += float(rng.exponential(e.mtbf))
                    if t >= end:
                        break
                    d = float(rng.exponential(e.mttr))
                    acts.append(
                        Action(
                            t, n, "breakdown", self._breakdown(e.work_unit, d, "random breakdown")
                        )
                    )
                    t += d
            elif isinstance(e, OpcUaDrop):
                acts.append(Action(e.at, n, e.type, self._link_drop(e.type, e.duration)))
            elif isinstance(e, OpcUaServerRestart):
                acts.append(Action(e.at, n, e.type, self._link_drop(e.type, e.downtime)))
            elif isinstance(e, MesRestart):
                acts.append(Action(e.at, n, e.type, self._mes_restart(e.downtime)))
            elif isinstance(e, DatabaseUnreachable):
                acts.append(Action(e.at, n, e.type, self._db_cut(e.duration)))
            else:
                acts.append(Action(e.at, n, e.type, self.deviations.action(e)))
        return sorted(acts, key=lambda a: (a.at, a.order))

    def call(self, act: Action, t: float) -> None:
        try:
            act.do(t)
        except SutUnavailable as exc:
            self.ctx.state.problems.append(
                f"{act.label} at {t:g} s: the MES was unreachable: {exc}"
            )

    # -- the faults -----------------------------------------------------------------------

    def _breakdown(self, wu: str, duration: float, reason: str) -> Callable[[float], None]:
        def do(t: float) -> None:
            assert self.ctx.sim is not None
            why = self.ctx.sim.breakdown(wu, duration, reason)
            self.ctx.state.faults.append(
                FaultRecord(
                    type="breakdown", at=t, until=t + duration, target=wu, detail=why or reason
                )
            )

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

    def _mes_restart(self, downtime: float) -> Callable[[float], None]:
        def do(t: float) -> None:
            state = self.ctx.state
            mes = self.launcher.mes
            if mes is None:
                state.faults.append(
                    FaultRecord(
                        type="mes_restart",
                        at=t,
                        detail="not injected: the MES is "
                        "external (--mes-url); the bench cannot kill it",
                    )
                )
                return
            mes.kill()
            state.mes_down = True
            state.faults.append(
                FaultRecord(
                    type="mes_restart",
                    at=t,
                    until=t + downtime,
                    target="mestwin serve",
                    detail="SIGKILL of the MES process group, restarted on the same DB",
                )
            )
            self._pending_restart = t + downtime

        return do

    def maybe_restart_mes(self, t: float) -> None:
        mes = self.launcher.mes
        if self._pending_restart is None or t < self._pending_restart or mes is None:
            return
        mes.start()
        assert self.ctx.sut is not None
        try:
            self.ctx.sut.wait_ready(90)
        except SutUnavailable as exc:
            self.ctx.state.problems.append(f"the MES did not come back after its restart: {exc}")
        self.ctx.state.mes_down = False
        self._pending_restart = None

    def _db_cut(self, duration: float) -> Callable[[float], None]:
        def do(t: float) -> None:
            proxy = self.launcher.db_proxy
            if proxy is None:
                self.ctx.state.faults.append(
                    FaultRecord(
                        type="database_unreachable",
                        at=t,
                        until=t + duration,
                        detail="not injected: the MES runs on embedded SQLite (a file in its own "
                        "process, no network path to cut); use --database-url postgresql+psycopg"
                        "://... to cut the database connection",
                    )
                )
                return
            proxy.cut()
            self._db_restore_at = t + duration
            self.ctx.state.faults.append(
                FaultRecord(
                    type="database_unreachable",
                    at=t,
                    until=t + duration,
                    target="PostgreSQL",
                    detail="TCP proxy between MES and PostgreSQL cut",
                )
            )

        return do

    def maybe_restore_db(self, t: float) -> None:
        proxy = self.launcher.db_proxy
        if self._db_restore_at is not None and t >= self._db_restore_at and proxy:
            proxy.restore()
            self._db_restore_at = None
