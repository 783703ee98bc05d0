"""The scenario runner: ``mestwin run SCENARIO``. It owns the run's clock and hands each
job to the module that owns it; none of them knows which MES it drives.

1. Load the scenario and its plant model (``loading``: a broken file is a
   :class:`ScenarioError`: exit 2, naming file, line and field).
2. Open the scenario's system under test through its adapter, a plug-in found by name
   (``sut_registry``; ``system_under_test: {adapter: ...}``, default ``mes_core``, whose
   factory in ``mes_core_launch`` starts ``mestwin serve``), and load the plant's master
   data through it. What the adapter cannot do (``sut.CAPABILITIES``) is reported as not
   checked or not injected, with the reason.
3. Build the twin and its equipment link (``link_setup``: OPC UA server + connector, or the
   direct collector stand-in; the report says which), the simulated ERP and people
   (``people_loop``).
4. Advance simulated time tick by tick: inject the timeline's faults (``faults``) and
   deviations (``deviations``) at their times, let people act, move plant events; paced to
   ``speed`` or as fast as possible; a rich progress bar shows simulated time and live counts.
   With ``--dashboard`` a trainer steers the run through its control channel
   (``control``: pause, resume, speed, end, inject now), applied at the top of each tick.
5. Drain the link, read back what the MES recorded, reconcile against the twin's ledger,
   check the expectations (``run_report``), write ``report.json``, ``report.html`` and
   ``junit.xml``.

Exit code: 0 when every expectation holds, 1 otherwise, 2 for a broken scenario file.
Ctrl-C stops the run cleanly: the MES child and every thread are stopped, nothing is left.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from plant_models.scenario import SystemUnderTestSpec
from plant_models.scenario_yaml import locate
from twin.scenario.context import RunContext, RunOptions, RunResult, RunState, Speed
from twin.scenario.control import RunControl, Steering
from twin.scenario.deviations import DeviationInjector
from twin.scenario.evidence import seal
from twin.scenario.faults import Action, FaultInjector
from twin.scenario.html import write_html
from twin.scenario.junit import write_junit
from twin.scenario.link_setup import LinkBuilder
from twin.scenario.loading import ScenarioError, load, reference_problems, scenario_orders
from twin.scenario.people_loop import PeopleLoop
from twin.scenario.plant import EnginePlant
from twin.scenario.report import EXIT_CODES, write_json
from twin.scenario.run_report import ReportBuilder
from twin.scenario.sut import (
    Dashboards,
    MesStartError,
    PersonAccount,
    QualityHolds,
    RunControlAccess,
    SutEnvironment,
    SutSettingsError,
    SutUnavailable,
    SystemUnderTest,
    capabilities,
)
from twin.scenario.sut_registry import (
    AdapterFactory,
    NotAnAdapter,
    UnknownAdapter,
    adapter_problems,
    resolve,
)
from twin.scenario.witness import ActionWitness

__all__ = [
    "MesStartError",
    "RunOptions",
    "RunResult",
    "RunState",
    "Runner",
    "ScenarioError",
    "Speed",
    "load",
    "reference_problems",
    "run_scenario",
    "scenario_orders",
]


class Runner:
    """One run of one scenario (use :func:`run_scenario`)."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        scenario, plant, plant_path = load(options.scenario)
        if options.adapter and options.adapter != scenario.system_under_test.adapter:
            spec = SystemUnderTestSpec(adapter=options.adapter)
            scenario = scenario.model_copy(update={"system_under_test": spec})
        if options.link:
            scenario = scenario.model_copy(update={"link": options.link})
        duration = options.duration or scenario.duration
        self.ctx = RunContext(
            options=options,
            scenario=scenario,
            plant=plant,
            plant_path=plant_path,
            duration=duration,
            end=duration + scenario.drain,
            speed=options.speed or scenario.speed,
            tick=options.tick or scenario.tick,
            orders=[
                replace(o, quantity=max(1, round(o.quantity * options.order_scale)))
                for o in scenario_orders(scenario, plant)
                if o.release_at < duration  # released at the very end, it cannot run
            ],
        )
        self.adapter = self._resolve_adapter()
        self.links = LinkBuilder(self.ctx)
        self.deviations = DeviationInjector(self.ctx)
        self.faults = FaultInjector(self.ctx, self.deviations)
        self.people_loop = PeopleLoop(
            self.ctx,
            before_starts=self.deviations.fire_startable,
            lot_drawn=self.deviations.lot_drawn,
        )
        self.dashboard_url: str | None = None
        # The trainer's control channel (twin.scenario.control): with --dashboard only.
        self.control: RunControl | None = None
        self.steering: Steering | None = None

    # -- the system under test ------------------------------------------------------------

    def _problem(self, loc: tuple[str | int, ...], message: str) -> ScenarioError:
        path = self.options.scenario
        return ScenarioError([f"{path}:{locate(path, loc)}: {'.'.join(map(str, loc))}: {message}"])

    def _resolve_adapter(self) -> AdapterFactory:
        try:
            return resolve(self.ctx.scenario.system_under_test.adapter)
        except UnknownAdapter as exc:
            raise self._problem(("system_under_test", "adapter"), str(exc)) from None

    def _open_sut(self) -> SystemUnderTest:
        """Start (or reach) the system under test and check it can take the link."""
        ctx = self.ctx
        opts = self.options
        spec = ctx.scenario.system_under_test
        env = SutEnvironment(
            plant=ctx.plant,
            people=tuple(PersonAccount(p.id, p.role, p.password) for p in ctx.scenario.people),
            report_dir=opts.report_dir,
            mes_url=opts.mes_url,
            database_url=opts.database_url,
            link=ctx.scenario.link,
            opcua_endpoint=self.links.endpoint,
        )
        try:
            sut = self.adapter(spec.settings(), env)
        except SutSettingsError as exc:
            raise self._problem(("system_under_test", exc.field), str(exc)) from None
        ctx.sut = sut  # closed by _shutdown whatever follows
        problem = adapter_problems(spec.adapter, sut)
        if problem is not None:
            raise NotAnAdapter(problem)
        why = self.links.unsupported(sut)
        if why is not None:
            raise self._problem(("link",), why)
        has = capabilities(sut)
        ctx.state.notes.append(
            f"System under test: adapter {spec.adapter} ({sut.describe()}); optional "
            f"capabilities: {', '.join(has) or 'none'}."
        )
        return sut

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> RunResult:
        ctx = self.ctx
        opts = self.options
        opts.report_dir.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        wall0 = time.monotonic()
        try:
            # The twin's OPC UA server is built while the MES starts (both take seconds).
            self.links.prepare()
            sut = self._open_sut()
            ctx.witness = ActionWitness(sut)
            ctx.sut = sut = ctx.witness.as_sut()
            sut.load_master_data(ctx.plant)
            self._start_dashboard(sut)
            ctx.sim = EnginePlant(ctx.plant, ctx.scenario.seed)
            ctx.sim.add_observer(ctx.truth)
            ctx.link = self.links.build(sut, ctx.sim)
            ctx.mirror = self.links.build_mirror(ctx.sim)
            self.people_loop.start()
            # Paced from the plant's start (start-up is not the plant's time).
            plant0 = time.monotonic()
            self._loop(plant0)
            self._settle()
            ctx.sim.finish()
            ctx.truth.close(ctx.sim.now())
            if not ctx.link.drain(timeout=120):
                why = getattr(ctx.link, "last_error", "")
                ctx.state.problems.append(
                    f"{ctx.link.pending()} plant events could not be delivered at the end"
                    + (f": {why}" if why else "")
                )
            ctx.plant_wall_s = time.monotonic() - plant0
            if ctx.mirror is not None:
                ctx.mirror_report = ctx.mirror.finish(ctx.truth.counters())
                ctx.state.notes.append(
                    f"The mirror took {ctx.mirror.start_seconds:.1f} s of wall time to start "
                    f"and {ctx.mirror.settle_seconds:.1f} s to settle at the end: "
                    f"{ctx.mirror_report.verdict}."
                )
            report = ReportBuilder(ctx, self.deviations, self.faults).build(started, wall0)
            if self.control is not None:
                report.people = self.control.people_section(self.deviations)
        finally:
            self._shutdown()
        write_json(report, opts.report_dir / "report.json")
        write_html(report, opts.report_dir / "report.html")
        write_junit(report, opts.report_dir / "junit.xml")
        seal(opts.report_dir, opts.signing_key)  # last: the manifest covers every file
        return RunResult(EXIT_CODES[report.verdict or "failed"], report, opts.report_dir)

    def _loop(self, plant0: float) -> None:
        ctx = self.ctx
        assert ctx.sim is not None and ctx.link is not None and ctx.people is not None
        actions = self.faults.actions()
        progress = _Progress(ctx.end, self.options.progress, ctx.scenario.name)
        try:
            t = 0.0
            while t < ctx.end:
                if self.steering is not None:  # the trainer's commands (pause, inject...)
                    actions = self.steering.tick(t, actions)
                    if t >= ctx.end:
                        break
                t = min(t + ctx.tick, ctx.end)
                while actions and actions[0].at <= t:
                    act = actions.pop(0)
                    ctx.sim.run_until(act.at)
                    self.people_loop.tick(act.at)
                    self.faults.call(act, act.at)
                ctx.sim.run_until(t)
                self.faults.maybe_restore_db(t)
                self.deviations.end_drifts(t)
                self.faults.maybe_restart_mes(t)
                self.people_loop.deliver(t)
                self.people_loop.tick(t)
                self.deviations.fire_triggered(t)
                self.deviations.watch_holds_safe(t)
                self._pace(t, plant0)
                if progress.enabled:
                    progress.update(t, self._counts())
        finally:
            progress.close()

    def _settle(self) -> None:
        """Close out after the plant stopped: people keep their reaction times, the plant
        makes nothing more (see ``Scenario.settle``)."""
        ctx = self.ctx
        assert ctx.people is not None and ctx.sut is not None
        t = ctx.end
        self.people_loop.deliver(t)
        limit = ctx.end + ctx.scenario.settle
        while t < limit:
            try:
                held = ctx.sut.held() if isinstance(ctx.sut, QualityHolds) else []
                if not held and not ctx.people.open_work():
                    break
            except SutUnavailable:
                pass
            t = min(t + ctx.tick, limit)
            self.faults.maybe_restart_mes(t)
            self.people_loop.deliver(t)
            self.people_loop.tick(t)
            self.deviations.watch_holds_safe(t)
        if t > ctx.end:
            ctx.state.notes.append(
                f"Close-out after the plant stopped: {t - ctx.end:.0f} simulated seconds "
                "(QA dispositions, lot bookings, completions)."
            )
        if not ctx.state.mes_down:
            with contextlib.suppress(SutUnavailable):
                ctx.people.book_all(t)
        ctx.closed_out_at = t  # book_all acts at t: the run's timeline ends here

    def _pace(self, t: float, plant0: float) -> None:
        if self.ctx.speed == "max":
            return
        t0, wall = (0.0, plant0)
        if self.steering is not None and self.steering.anchor is not None:
            t0, wall = self.steering.anchor  # moved by a pause or a change of speed
        ahead = (t - t0) / float(self.ctx.speed) - (time.monotonic() - wall)
        if ahead > 0:
            time.sleep(ahead)

    def _counts(self) -> str:
        ctx = self.ctx
        assert ctx.link is not None and ctx.people is not None
        st = ctx.link.stats
        done = sum(1 for o in ctx.people.finished_orders())
        return (
            f"orders {done} done {len(ctx.people.sent)} sent of {len(ctx.orders)} "
            f"events {st.accepted}+{ctx.link.pending()} "
            f"dev {len(ctx.state.deviations)} faults {len(ctx.state.faults)}"
        )

    def _start_dashboard(self, sut: SystemUnderTest) -> None:
        port = self.options.dashboard_port
        if port is None:
            return
        if isinstance(sut, Dashboards):
            self.control = RunControl(self.ctx)
            url = self.control.start_server()
            self.steering = Steering(self.control, self._inject_now)
            access = RunControlAccess(url, self.control.token, self.control.trainer_password)
            self.dashboard_url = sut.start_dashboard(port, access, self.options.dashboard_host)
        else:
            self.ctx.state.notes.append(
                f"--dashboard: the {self.ctx.scenario.system_under_test.adapter} adapter "
                "has no dashboards to serve."
            )

    def _inject_now(self, entry: Any, n: int, t: float) -> list[Action]:
        """A trainer's injection: the same actions a scenario's timeline entry makes."""
        rng = np.random.default_rng(self.ctx.scenario.seed + 7919 + n)
        return self.faults.entry_actions(entry, n, rng)

    def _shutdown(self) -> None:
        if self.control is not None:
            self.control.close()
        sut = self.ctx.sut
        if isinstance(sut, Dashboards):
            sut.stop_dashboard()
        self.links.close(self.ctx.link)
        if sut is not None:
            sut.close()


class _Progress:
    """A rich progress bar in simulated time with live counts (or nothing)."""

    def __init__(self, end: float, enabled: bool, name: str) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("sim {task.fields[sim]}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(name, total=end, sim="0:00:00", counts="")

    def update(self, t: float, counts: str) -> None:
        if self.enabled:
            self.progress.update(
                self.task, completed=t, sim=str(timedelta(seconds=int(t))), counts=counts
            )

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


def run_scenario(options: RunOptions) -> RunResult:
    """Run one scenario; raises ``ScenarioError`` (exit 2) for a broken scenario file."""
    return Runner(options).run()
