"""The scenario runner: ``mestwin run SCENARIO``.

1. Load the scenario and its plant model (a broken file is a :class:`ScenarioError`: exit 2,
   naming file, line and field).
2. Start the MES (``mestwin serve`` as a child process on a free port, on an SQLite file in
   the report folder or the given ``--database-url``) unless ``--mes-url`` is given, and
   load the plant's master data through the system-under-test adapter.
3. Build the twin and its equipment link (OPC UA server + connector when available, else
   the direct collector stand-in; the report says which), the simulated ERP and people.
4. Advance simulated time tick by tick: inject the timeline's faults and deviations at
   their times, let people act, move plant events; paced to ``speed`` or as fast as
   possible; a rich progress bar shows simulated time and live counts.
5. Drain the link, read back what the MES recorded, reconcile against the twin's ledger,
   check the expectations, write ``report.json``, ``report.html`` and ``junit.xml``.

Exit code: 0 when every expectation holds, 1 otherwise, 2 for a broken scenario file.
Ctrl-C stops the run cleanly: the MES child and every thread are stopped, nothing is left.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mes_core.schemas.plant_events import CountEvent, IngestResult, PlantEvent
from plant_models.loader import PlantModelError, load_plant_model
from plant_models.scenario import (
    Breakdown,
    DatabaseUnreachable,
    Deviation,
    ExpiredLot,
    LotInState,
    MesRestart,
    OeeWithin,
    OpcUaDrop,
    OpcUaServerRestart,
    OutOfCalibration,
    OutOfSequenceStart,
    ProcessDrift,
    RandomBreakdowns,
    Scenario,
    ThroughputWithin,
    UncertifiedOperator,
    WrongLot,
    load_scenario,
    resolve_plant,
)
from plant_models.scenario_yaml import DocumentError, FieldProblem, locate
from plant_models.schema import PlantModel
from twin.engine import Engine
from twin.hooks import PackMLState
from twin.scenario.dashboard_process import DashboardProcess
from twin.scenario.expectations import Observed, check_all
from twin.scenario.html import write_html
from twin.scenario.junit import write_junit
from twin.scenario.link import DirectCollector, EquipmentLink, Poster, Sampling
from twin.scenario.mes_process import MesProcess
from twin.scenario.people import People, certified
from twin.scenario.plant import EnginePlant
from twin.scenario.proxy import TcpProxy
from twin.scenario.reconcile import OrderRecord, Records, UnitRecord, reconcile
from twin.scenario.report import (
    DeviationOutcome,
    EventCounts,
    FaultRecord,
    KpiRecord,
    LatencySummary,
    OrderProgress,
    Report,
    ScenarioInfo,
    write_json,
)
from twin.scenario.sut import Answer, OrderRequest, SutUnavailable, SystemUnderTest
from twin.scenario.truth import TruthRecorder, state_timeline
from twin.streams import root_seed, sampler, substream

if TYPE_CHECKING:  # the OPC UA link imports this module
    from twin.scenario.opcua_link import PlantServing

Speed = float | Literal["max"]
MAX_LISTED = 25  # refusals of the simulated people listed in the report notes


class MesStartError(RuntimeError):
    """The MES the run needs could not be started or reached: the run cannot start."""


class ScenarioError(Exception):
    """The scenario (or its plant model) cannot be run as written: exit code 2."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class RunOptions:
    """How to run a scenario (the command line's options)."""

    scenario: Path
    report_dir: Path
    mes_url: str | None = None
    database_url: str | None = None
    speed: Speed | None = None
    duration: float | None = None
    """Override of the scenario's duration (tests shorten shipped scenarios)."""
    order_scale: float = 1.0
    """Multiply every order quantity (rounded, at least 1): tests and demos shorten a
    scenario's day with ``duration`` and this together."""
    progress: bool = True
    tick: float | None = None
    """Simulated seconds between two runner ticks (default: the scenario's ``tick``)."""
    dashboard_port: int | None = None
    """Start the live dashboards beside the run on this port (0: any free one)."""


@dataclass
class RunResult:
    exit_code: int
    report: Report
    report_dir: Path


# ------------------------------------------------------------------------------------------
# Loading and checking the scenario against its plant
# ------------------------------------------------------------------------------------------


def load(path: Path) -> tuple[Scenario, PlantModel, Path]:
    """Scenario, its plant model and the plant file; ``ScenarioError`` when broken."""
    try:
        scenario = load_scenario(path)
        plant_path = resolve_plant(scenario, path)
    except DocumentError as exc:
        raise ScenarioError([str(p) for p in exc.problems]) from None
    try:
        plant = load_plant_model(plant_path)
    except PlantModelError as exc:
        raise ScenarioError(
            [f"{path}: plant model {scenario.plant}:"] + [str(p) for p in exc.problems]
        ) from None
    problems = reference_problems(scenario, plant, path)
    if problems:
        raise ScenarioError([str(p) for p in problems])
    return scenario, plant, plant_path


def reference_problems(scenario: Scenario, plant: PlantModel, path: Path) -> list[FieldProblem]:
    """What the scenario names that its plant model does not have (work units, lots,
    people, products, orders, segments), each with file, line and field."""
    units = {wu.code for wu in plant.all_work_units()}
    lines = {line.code for line in plant.lines}
    lots = {lot.id for lot in plant.material_lots}
    people = {o.id for o in plant.operators}
    products = {p.id: p for p in plant.products}
    orders = {o.id: o.product for o in scenario_orders(scenario, plant)}
    out: list[FieldProblem] = []

    def bad(loc: tuple[str | int, ...], message: str) -> None:
        out.append(FieldProblem(str(path), locate(path, loc), ".".join(map(str, loc)), message))

    for i, o in enumerate(scenario.erp.orders):
        if o.product not in products:
            bad(("erp", "orders", i, "product"), f"no product {o.product!r} in the plant model")
    for i, g in enumerate(scenario.erp.generate):
        if g.product not in products:
            bad(("erp", "generate", i, "product"), f"no product {g.product!r} in the plant model")
    for i, p in enumerate(scenario.people):
        if p.id not in people:
            bad(("people", i, "id"), f"no person {p.id!r} in the plant model's operators")
    for i, e in enumerate(scenario.timeline):
        wu = getattr(e, "work_unit", None)
        if wu is not None and wu not in units:
            bad(("timeline", i, "work_unit"), f"no work unit {wu!r} in the plant model")
        lot = getattr(e, "lot", None)
        if lot is not None and lot not in lots:
            bad(("timeline", i, "lot"), f"no material lot {lot!r} in the plant model")
        person = getattr(e, "person", None)
        if person is not None and person not in people:
            bad(("timeline", i, "person"), f"no person {person!r} in the plant model")
        order = getattr(e, "order", None)
        if order is not None and order not in orders:
            bad(("timeline", i, "order"), f"no job order {order!r} in the order stream")
        seg = getattr(e, "operation", None)
        if seg is not None and order in orders:
            product = products.get(orders[order])
            if product is not None and seg not in {s.id for s in product.segments}:
                bad(("timeline", i, "operation"), f"product {product.id} has no segment {seg!r}")
        if (
            isinstance(e, ProcessDrift)
            and wu in units
            and e.value not in {pv.name for pv in plant.work_unit(wu).process_values}
        ):
            bad(("timeline", i, "value"), f"work unit {wu} has no process value {e.value!r}")
    for i, x in enumerate(scenario.expectations):
        if isinstance(x, OeeWithin | ThroughputWithin) and x.line and x.line not in lines:
            bad(("expectations", i, "line"), f"no line {x.line!r} in the plant model")
        if isinstance(x, OeeWithin) and x.work_unit and x.work_unit not in units:
            bad(("expectations", i, "work_unit"), f"no work unit {x.work_unit!r}")
        if isinstance(x, LotInState) and x.lot not in lots:
            bad(("expectations", i, "lot"), f"no material lot {x.lot!r} in the plant model")
    return out


def scenario_orders(scenario: Scenario, plant: PlantModel) -> list[OrderRequest]:
    """The whole ERP order stream of a run, sorted by release time: the plant model's own
    job orders and generators (drawn exactly as the engine would draw them for this seed),
    then the scenario's."""
    out = []
    if scenario.erp.plant_orders:
        for j in plant.order_stream.job_orders:
            out.append(OrderRequest(j.id, j.product, j.quantity, j.release, j.due, j.priority))
        root = root_seed(scenario.seed)
        for gen in plant.order_stream.generators:
            rng = substream(root, f"orders/{gen.prefix}")
            gap = sampler(gen.interarrival, rng, duration=True)
            qty = sampler(gen.quantity, rng, duration=True)
            products = list(gen.product_mix)
            weights = np.asarray([gen.product_mix[p] for p in products], dtype=float)
            choice = rng.choice(len(products), size=gen.count, p=weights / weights.sum())
            t = gen.first_release
            for n in range(gen.count):
                out.append(
                    OrderRequest(
                        f"{gen.prefix}-{n + 1:04d}",
                        products[int(choice[n])],
                        max(1, round(qty())),
                        t,
                        t + gen.due_after,
                    )
                )
                t += gap()
    for o in scenario.erp.expand():
        out.append(OrderRequest(o.id, o.product, o.quantity, o.release_at, o.due, o.priority))
    return sorted(out, key=lambda o: (o.release_at, o.id))


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


@dataclass
class _Action:
    at: float
    order: int
    label: str
    do: Callable[[float], None]


@dataclass
class _State:
    deviations: list[DeviationOutcome] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    watch_holds: list[tuple[ProcessDrift, DeviationOutcome]] = field(default_factory=list)
    mes_down: bool = False


class Runner:
    """One run of one scenario (use :func:`run_scenario`)."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.scenario, self.plant, self.plant_path = load(options.scenario)
        self.duration = options.duration or self.scenario.duration
        self.end = self.duration + self.scenario.drain
        self.speed: Speed = options.speed or self.scenario.speed
        self.tick = options.tick or self.scenario.tick
        self.state = _State()
        self.mes: MesProcess | None = None
        self.serving: PlantServing | None = None
        self.plant_wall_s = 0.0
        self.db_proxy: TcpProxy | None = None
        self.dashboard: DashboardProcess | None = None
        self.sut: SystemUnderTest | None = None
        self.sim: EnginePlant | None = None
        self.link: EquipmentLink | None = None
        self.link_down_until = -1.0
        self._drift_ends: list[tuple[float, ProcessDrift]] = []
        self.truth = TruthRecorder()
        self.orders = [
            replace(o, quantity=max(1, round(o.quantity * options.order_scale)))
            for o in scenario_orders(self.scenario, self.plant)
            if o.release_at < self.duration  # released at the very end, it cannot run
        ]
        self.people: People | None = None
        self.database = ""
        # The bench's own MES gets a fresh admin password per run; an external MES is
        # reached with MESTWIN_ADMIN_PASSWORD (its demo default when unset).
        self.admin_password = (
            os.environ.get("MESTWIN_ADMIN_PASSWORD", "admin")
            if options.mes_url
            else secrets.token_urlsafe(12)
        )

    # -- setup ----------------------------------------------------------------------------

    def _start_mes(self) -> str:
        opts = self.options
        if opts.mes_url:
            self.database = "(external MES: its own database)"
            return opts.mes_url
        if opts.database_url is None:
            # A fresh embedded database per run: a report never mixes two runs.
            db = (opts.report_dir / "mes.db").resolve()
            for stale in (db, db.with_name("mes.db-wal"), db.with_name("mes.db-shm")):
                stale.unlink(missing_ok=True)
        url = opts.database_url or f"sqlite:///{(opts.report_dir / 'mes.db').resolve()}"
        if url.startswith("postgresql"):
            url = self._proxied_postgres(url)
        self.database = _redact(opts.database_url or url)
        self.mes = MesProcess(url, opts.report_dir / "mes.log", self.admin_password)
        self.mes.start()
        return self.mes.url

    def _proxied_postgres(self, url: str) -> str:
        """Route the MES's PostgreSQL connection through a proxy the runner can cut."""
        from sqlalchemy.engine import make_url

        u = make_url(url)
        self.db_proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432).start()
        return u.set(host="127.0.0.1", port=self.db_proxy.port).render_as_string(
            hide_password=False
        )

    def _connect_sut(self, url: str) -> SystemUnderTest:
        from twin.scenario.sut_mes_core import MesCoreSut

        sut = MesCoreSut(
            url,
            plant_start=self.plant.plant.start,
            admin_password=self.admin_password,
            passwords={p.id: p.password for p in self.scenario.people},
            supervisor=next((p.id for p in self.scenario.people if p.role == "supervisor"), None),
        )
        try:
            sut.wait_ready(90)
        except SutUnavailable as exc:
            tail = self.mes.log_tail() if self.mes else ""
            raise MesStartError(f"the MES did not come up at {url}: {exc}\n{tail}") from exc
        return sut

    def _build_link(self, sut: SystemUnderTest, sim: EnginePlant) -> EquipmentLink:
        # The scenario's ``link``: OPC UA (twin server -> proxy -> ``mestwin connect``,
        # twin.scenario.opcua_link; the default) or the direct collector stand-in.
        plans: dict[str, Sampling] = {}
        for product in self.plant.products:
            for seg in product.segments:
                for c in seg.inspections:
                    plans.setdefault(
                        c.name,
                        Sampling(c.name, c.sampling.every_seconds, c.sampling.every_units),
                    )
        characteristics = {
            (wu.code, pv.name): plans.get(pv.characteristic, Sampling(pv.characteristic))
            for wu in self.plant.all_work_units()
            for pv in wu.process_values
            if pv.characteristic
        }
        if self.scenario.link == "opcua":
            from twin.scenario.opcua_link import opcua_link_for

            return opcua_link_for(self, sim, characteristics)
        link = DirectCollector(
            self._guarded_post(sut.post_events),
            source=f"twin-direct:{self.plant.plant.code}",
            start=self.plant.plant.start,
            characteristics=characteristics,
        )
        sim.add_observer(link)
        self.state.notes.append(
            "Equipment traffic went through the direct collector (stand-in for the twin OPC UA "
            "server + mes_core OPC UA connector): same wire contract, deltas from cumulative "
            "counters, store-and-forward; OPC UA faults cut that link."
        )
        return link

    def _guarded_post(self, post: Poster) -> Poster:
        """Posting fails while the link is cut (an OPC UA drop or server restart)."""

        def guarded(batch: list[PlantEvent]) -> IngestResult:
            if self.sim is not None and self.sim.now() < self.link_down_until:
                raise ConnectionError("equipment link cut by fault injection")
            return post(batch)

        return guarded

    # -- the timeline ---------------------------------------------------------------------

    def _actions(self) -> list[_Action]:
        acts = [a for a in self._all_actions() if a.at <= self.end]
        for e in self.scenario.timeline:
            at = getattr(e, "at", None)
            if at is not None and at > self.end:
                self.state.notes.append(
                    f"{e.type} at {at:g} s not injected: the run was shortened to {self.end:g} s"
                )
        return acts

    def _all_actions(self) -> list[_Action]:
        acts: list[_Action] = []
        rng = np.random.default_rng(self.scenario.seed + 7919)
        for n, e in enumerate(self.scenario.timeline):
            if isinstance(e, Breakdown):
                acts.append(
                    _Action(e.at, n, e.type, self._breakdown(e.work_unit, e.duration, e.reason))
                )
            elif isinstance(e, RandomBreakdowns):
                t = e.start
                end = min(e.end if e.end is not None else self.end, self.end)
                while True:
                    t += float(rng.exponential(e.mtbf))
                    if t >= end:
                        break
                    d = float(rng.exponential(e.mttr))
                    acts.append(
                        _Action(
                            t, n, "breakdown", self._breakdown(e.work_unit, d, "random breakdown")
                        )
                    )
                    t += d
            elif isinstance(e, OpcUaDrop):
                acts.append(_Action(e.at, n, e.type, self._link_drop(e.type, e.duration)))
            elif isinstance(e, OpcUaServerRestart):
                acts.append(_Action(e.at, n, e.type, self._link_drop(e.type, e.downtime)))
            elif isinstance(e, MesRestart):
                acts.append(_Action(e.at, n, e.type, self._mes_restart(e.downtime)))
            elif isinstance(e, DatabaseUnreachable):
                acts.append(_Action(e.at, n, e.type, self._db_cut(e.duration)))
            else:
                acts.append(_Action(e.at, n, e.type, self._deviation(e)))
        return sorted(acts, key=lambda a: (a.at, a.order))

    def _breakdown(self, wu: str, duration: float, reason: str) -> Callable[[float], None]:
        def do(t: float) -> None:
            assert self.sim is not None
            why = self.sim.breakdown(wu, duration, reason)
            self.state.faults.append(
                FaultRecord(
                    type="breakdown", at=t, until=t + duration, target=wu, detail=why or reason
                )
            )

        return do

    def _link_drop(self, kind: str, duration: float) -> Callable[[float], None]:
        def do(t: float) -> None:
            self.link_down_until = t + duration
            inject = getattr(self.link, "inject", None)
            if inject is not None:  # the OPC UA link cuts its proxy or stops its server
                inject(kind, t + duration)
            self.state.faults.append(
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
            if self.mes is None:
                self.state.faults.append(
                    FaultRecord(
                        type="mes_restart",
                        at=t,
                        detail="not injected: the MES is "
                        "external (--mes-url); the bench cannot kill it",
                    )
                )
                return
            self.mes.kill()
            self.state.mes_down = True
            self.state.faults.append(
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

    _pending_restart: float | None = None

    def _maybe_restart_mes(self, t: float) -> None:
        if self._pending_restart is None or t < self._pending_restart or self.mes is None:
            return
        self.mes.start()
        assert self.sut is not None
        try:
            self.sut.wait_ready(90)
        except SutUnavailable as exc:
            self.state.problems.append(f"the MES did not come back after its restart: {exc}")
        self.state.mes_down = False
        self._pending_restart = None

    def _db_cut(self, duration: float) -> Callable[[float], None]:
        def do(t: float) -> None:
            if self.db_proxy is None:
                self.state.faults.append(
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
            self.db_proxy.cut()
            self._db_restore_at = t + duration
            self.state.faults.append(
                FaultRecord(
                    type="database_unreachable",
                    at=t,
                    until=t + duration,
                    target="PostgreSQL",
                    detail="TCP proxy between MES and PostgreSQL cut",
                )
            )

        return do

    _db_restore_at: float | None = None

    def _maybe_end_drifts(self, t: float) -> None:
        assert self.sim is not None
        for end, e in list(self._drift_ends):
            if t >= end:
                self.sim.end_drift(e.work_unit, e.value, e.rate, e.duration)
                self._drift_ends.remove((end, e))

    def _maybe_restore_db(self, t: float) -> None:
        if self._db_restore_at is not None and t >= self._db_restore_at and self.db_proxy:
            self.db_proxy.restore()
            self._db_restore_at = None

    # -- deviations -----------------------------------------------------------------------

    def _target_order(self, e: Deviation) -> str:
        if e.order:
            return e.order
        released = [o.id for o in self.orders if self.people and o.id in self.people.sent]
        return released[-1] if released else (self.orders[0].id if self.orders else "")

    def _segment(self, order: str, e: Deviation) -> str:
        product = next(
            (
                p
                for p in self.plant.products
                if any(o.id == order and o.product == p.id for o in self.orders)
            ),
            None,
        )
        if e.operation:
            return e.operation
        return product.segments[0].id if product else ""

    def _work_unit_for(self, order: str, segment: str) -> str:
        product_id = next((o.product for o in self.orders if o.id == order), None)
        if product_id is None:
            return ""
        product = self.plant.product(product_id)
        seg = next((s for s in product.segments if s.id == segment), None)
        for line in self.plant.lines:
            if line.code != product.line:
                continue
            for wu in line.work_units:
                if seg is not None and wu.equipment_class == seg.equipment_class:
                    return wu.code
        return ""

    def _certified_operator(self, order: str, segment: str, t: float) -> str:
        product_id = next((o.product for o in self.orders if o.id == order), None)
        skill = None
        if product_id:
            seg = next(s for s in self.plant.product(product_id).segments if s.id == segment)
            skill = seg.skill
        today = (self.plant.plant.start + timedelta(seconds=t)).date()
        for op in self.plant.operators:
            if "operator" in op.roles and (skill is None or certified(op, skill, today)):
                return op.id
        return self.plant.operators[0].id if self.plant.operators else ""

    def _deviation(self, e: Deviation) -> Callable[[float], None]:
        def do(t: float) -> None:
            assert self.sut is not None and self.sim is not None
            order = self._target_order(e)
            seg = self._segment(order, e)
            outcome = DeviationOutcome(
                name=e.name, type=e.type, at=t, target=order, outcome="not_injected"
            )
            answer: Answer | None = None
            if isinstance(e, WrongLot | ExpiredLot):
                outcome.target = f"lot {e.lot} for {order}/{seg}"
                person = self._certified_operator(order, seg, t)
                answer = self.sut.consume_lot(order, seg, e.lot, e.quantity, person, t)
            elif isinstance(e, UncertifiedOperator):
                if e.action == "start":
                    outcome.target = f"{e.person} starts {order}/{seg}"
                    wu = self._work_unit_for(order, seg)
                    answer = self.sut.start_operation(order, seg, e.person, wu, t)
                else:
                    held = self.sut.held()
                    mine = [nc for nc in held if f"job_order:{order}" in self._holds_of(nc)]
                    target = (mine or held or [""])[0]
                    if not target:
                        outcome.message = "nothing awaited a disposition at that moment"
                    else:
                        outcome.target = f"{e.person} signs the disposition of {target}"
                        spec = next((p for p in self.scenario.people if p.id == e.person), None)
                        answer = self.sut.dispose(
                            target,
                            e.person,
                            spec.password if spec else "mestwin",
                            "release",
                            "signed by the bench to test rule 3",
                        )
            elif isinstance(e, OutOfSequenceStart):
                outcome.target = f"start {order}/{seg} before its predecessors"
                wu = self._work_unit_for(order, seg)
                answer = self.sut.start_operation(
                    order, seg, self._certified_operator(order, seg, t), wu, t
                )
            elif isinstance(e, OutOfCalibration):
                outcome.target = f"{e.work_unit} out of calibration, start {order}/{seg}"
                due = self.sut.set_calibration_due(e.work_unit, t - 86400.0)
                if not due.accepted:
                    outcome.message = f"could not set the calibration due date: {due.message}"
                else:
                    answer = self.sut.start_operation(
                        order, seg, self._certified_operator(order, seg, t), e.work_unit, t
                    )
                    # Calibrated again, so the rest of the run is not blocked by the test.
                    self.sut.set_calibration_due(e.work_unit, t + 365 * 86400.0)
            elif isinstance(e, ProcessDrift):
                outcome.target = f"{e.work_unit}.{e.value} drifts {e.rate:+g}/h"
                why = self.sim.drift(e.work_unit, e.value, e.rate)
                self._drift_ends.append((t + e.duration, e))
                if why:
                    outcome.message = why
                else:
                    outcome.outcome = "accepted"
                    outcome.message = "drift injected; no hold seen yet"
                    self.state.watch_holds.append((e, outcome))
            if answer is not None:
                outcome.outcome = "refused" if answer.refused else "accepted"
                outcome.rule = answer.rule
                outcome.message = answer.message or f"HTTP {answer.status}"
            self.state.deviations.append(outcome)

        return do

    def _watch_holds(self, t: float) -> None:
        if not self.state.watch_holds or self.sut is None:
            return
        held = self.sut.held()
        for e, outcome in list(self.state.watch_holds):
            order = self._target_order(e)
            holds = {nc: self._holds_of(nc) for nc in held}
            hits = sorted(nc for nc, what in holds.items() if f"job_order:{order}" in what)
            if hits:
                outcome.outcome = "caught"
                outcome.rule = "HELD"
                what = sorted({w for nc in hits for w in holds[nc]})
                outcome.message = (
                    f"nonconformance {', '.join(h.removeprefix('nc:') for h in hits)} holds "
                    f"{', '.join(what)} (seen at {t:g} s)"
                )
                self.state.watch_holds.remove((e, outcome))

    def _mark_recorded(self) -> None:
        """Is each refused deviation in the MES's audit trail (rule 'each refusal is
        itself recorded')? Matched on rule and message."""
        assert self.sut is not None
        refusals = self.sut.refusals()
        for d in self.state.deviations:
            if d.outcome != "refused":
                continue
            d.recorded = any(
                r.rule == d.rule
                and r.message
                and (r.message in d.message or d.message in r.message)
                for r in refusals
            )

    def _holds_of(self, nc: str) -> list[str]:
        assert self.sut is not None
        return self.sut.holds_of(nc)

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> RunResult:
        opts = self.options
        opts.report_dir.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        wall0 = time.monotonic()
        try:
            if self.scenario.link == "opcua":
                # The twin's OPC UA server is built while the MES starts (both take seconds).
                from twin.scenario.opcua_link import PlantServing

                self.serving = PlantServing(self.plant)
            url = self._start_mes()
            self.sut = self._connect_sut(url)
            self.sut.load_master_data(self.plant)
            self._start_dashboard(url)
            self.sim = EnginePlant(self.plant, self.scenario.seed)
            self.sim.add_observer(self.truth)
            self.link = self._build_link(self.sut, self.sim)
            # After the link: a job's first unit flushes the link before the start.
            self.sim.add_observer(_JobWatcher(self))
            self.sim.subscribe(self._ledger_record)
            self.people = People(self.scenario, self.plant, self.sut, self.orders, self._dispatch)
            # Paced from the plant's start (start-up is not the plant's time).
            plant0 = time.monotonic()
            self._loop(plant0)
            self._settle()
            self.sim.finish()
            self.truth.close(self.sim.now())
            if not self.link.drain(timeout=120):
                self.state.problems.append(
                    f"{self.link.pending()} plant events could not be delivered at the end"
                )
            self.plant_wall_s = time.monotonic() - plant0
            report = self._report(started, wall0)
        finally:
            self._shutdown()
        write_json(report, opts.report_dir / "report.json")
        write_html(report, opts.report_dir / "report.html")
        write_junit(report, opts.report_dir / "junit.xml")
        return RunResult(0 if report.passed else 1, report, opts.report_dir)

    def _settle(self) -> None:
        """Close out after the plant stopped: people keep their reaction times, the plant
        makes nothing more (see ``Scenario.settle``)."""
        assert self.people is not None and self.sut is not None
        t = self.end
        self._deliver(t)
        limit = self.end + self.scenario.settle
        while t < limit:
            try:
                if not self.sut.held() and not self.people.open_work():
                    break
            except SutUnavailable:
                pass
            t = min(t + self.tick, limit)
            self._maybe_restart_mes(t)
            self._deliver(t)
            self._tick_people(t)
            self._watch_holds_safe(t)
        if t > self.end:
            self.state.notes.append(
                f"Close-out after the plant stopped: {t - self.end:.0f} simulated seconds "
                "(QA dispositions, lot bookings, completions)."
            )
        if not self.state.mes_down:
            with contextlib.suppress(SutUnavailable):
                self.people.book_all(t)

    def _dispatch(self, order: OrderRequest) -> str:
        """The MES's dispatch reaches the machine (``StoreAndStart`` on the line)."""
        assert self.sim is not None
        product = self.plant.product(order.product)
        return self.sim.dispatch(product.line, order.id, order.product, order.quantity)

    def _ledger_record(self, record: dict[str, Any]) -> None:
        people = self.people
        if people is None:
            return
        kind = record["kind"]
        if kind == "lot_consumed":
            people.lot_drawn(
                record["job_order"], record["work_unit"], record["lot"], record["quantity"]
            )
        elif kind == "job" and record.get("event") == "completed":
            assert self.sim is not None
            job = self.sim.ledger.jobs[record["job_order"]]
            people.job_finished(record["t"], job.id, job.output_lot)

    def _job_taken(self, t: float, work_unit: str, order: str) -> None:
        """A work unit took the first unit of ``order``: its operation must be started in
        the MES before the counts it makes arrive there."""
        if self.people is None:
            return
        self.people.job_taken(work_unit, order)
        self._deliver(t)

    def _blocked(self, event: PlantEvent) -> bool:
        assert self.people is not None
        return (
            isinstance(event, CountEvent)
            and event.job_order is not None
            and self.people.awaits_start(event.job_order, event.work_unit)
        )

    def _deliver(self, t: float) -> None:
        """Move plant events to the MES in order, starting operations on the way: the
        predecessor's good units arrive first (rule 1), then the operator starts, then
        the operation's own counts follow."""
        if self.link is None or self.people is None:
            return
        if self.state.mes_down or t < self.link_down_until:
            # The collector keeps trying; what fails stays spooled and is sent again.
            self.link.deliver_until(self._blocked)
            return
        try:
            for _ in range(100):
                stopped = self.link.deliver_until(self._blocked)
                progressed = self.people.start_waiting(t)
                if not stopped and not progressed:
                    return
        except SutUnavailable:
            self.people.log.unavailable += 1

    def _loop(self, plant0: float) -> None:
        assert self.sim is not None and self.link is not None and self.people is not None
        actions = self._actions()
        progress = _Progress(self.end, self.options.progress, self.scenario.name)
        try:
            t = 0.0
            while t < self.end:
                t = min(t + self.tick, self.end)
                while actions and actions[0].at <= t:
                    act = actions.pop(0)
                    self.sim.run_until(act.at)
                    self._tick_people(act.at)
                    self._call(act, act.at)
                self.sim.run_until(t)
                self._maybe_restore_db(t)
                self._maybe_end_drifts(t)
                self._maybe_restart_mes(t)
                self._deliver(t)
                self._tick_people(t)
                self._watch_holds_safe(t)
                self._pace(t, plant0)
                if progress.enabled:
                    progress.update(t, self._counts())
        finally:
            progress.close()

    def _call(self, act: _Action, t: float) -> None:
        try:
            act.do(t)
        except SutUnavailable as exc:
            self.state.problems.append(f"{act.label} at {t:g} s: the MES was unreachable: {exc}")

    def _tick_people(self, t: float) -> None:
        assert self.people is not None
        if self.state.mes_down:
            return
        try:
            self.people.act(t)
        except SutUnavailable:
            self.people.log.unavailable += 1  # they try again at the next tick

    def _watch_holds_safe(self, t: float) -> None:
        if self.state.mes_down:
            return
        with contextlib.suppress(SutUnavailable):  # the MES is busy restarting: next tick
            self._watch_holds(t)

    def _pace(self, t: float, plant0: float) -> None:
        if self.speed == "max":
            return
        ahead = t / float(self.speed) - (time.monotonic() - plant0)
        if ahead > 0:
            time.sleep(ahead)

    def _counts(self) -> str:
        assert self.link is not None and self.people is not None
        st = self.link.stats
        done = sum(1 for o in self.people.finished_orders())
        return (
            f"orders {done} done {len(self.people.sent)} sent of {len(self.orders)} "
            f"events {st.accepted}+{self.link.pending()} "
            f"dev {len(self.state.deviations)} faults {len(self.state.faults)}"
        )

    def _start_dashboard(self, mes_url: str) -> None:
        opts = self.options
        if opts.dashboard_port is None:
            return
        from rich.console import Console

        self.dashboard = DashboardProcess(
            mes_url,
            "admin",
            self.admin_password,
            opts.report_dir / "dashboard.log",
            report=opts.report_dir / "report.json",
            port=opts.dashboard_port,
        )
        self.dashboard.start()
        Console(stderr=True).print(f"dashboards: {self.dashboard.url} (until the run ends)")

    def _shutdown(self) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()
        close = getattr(self.link, "close", None)
        if close is not None:  # the OPC UA link's connector, proxy and server
            close()
        if self.serving is not None:  # a server no link took over (the run did not start)
            self.serving.close()
        if self.sut is not None:
            self.sut.close()
        if self.mes is not None:
            self.mes.stop()
        if self.db_proxy is not None:
            self.db_proxy.stop()

    # -- the report -----------------------------------------------------------------------

    def _operation_units(self, product_id: str) -> list[str]:
        """Work units that run an operation segment of ``product_id``, in flow order."""
        product = self.plant.product(product_id)
        line = next(ln for ln in self.plant.lines if ln.code == product.line)
        segments = Engine.segments_for(product, line)
        return [wu.code for wu, seg in zip(line.work_units, segments, strict=True) if seg]

    def _clipped_seconds(self, work_unit: str, since: float) -> dict[str, float]:
        """Seconds per state of ``work_unit`` from ``since`` to the end (ground truth)."""
        out: dict[str, float] = {}
        for iv in self.truth.intervals:
            if iv.work_unit != work_unit or iv.end <= since:
                continue
            out[iv.state] = out.get(iv.state, 0.0) + iv.end - max(iv.start, since)
        return {k: round(v, 3) for k, v in out.items() if v > 0}

    def _twin_records(self, window: dict[str, float]) -> Records:
        assert self.sim is not None
        ledger = self.sim.ledger
        truth = self.truth.records()
        out = Records(work_units={})
        for wu, rec in truth.work_units.items():
            secs = ledger.state_seconds.get(wu)
            state_seconds = (
                {k: round(v, 3) for k, v in secs.items() if v > 0}
                if secs is not None
                else rec.state_seconds
            )
            if wu in window:
                state_seconds = self._clipped_seconds(wu, window[wu])
            out.work_units[wu] = UnitRecord(
                good=rec.good, scrap=rec.scrap, state_seconds=state_seconds
            )
        for jid, job in ledger.jobs.items():
            consumed: dict[str, float] = {}
            for (j, _wu, _mat, lot), qty in ledger.consumed.items():
                if j == jid:
                    consumed[lot] = consumed.get(lot, 0.0) + qty
            produced = {job.output_lot: float(job.made)} if job.ended_at is not None else {}
            # As the MES counts an order: good = finished units (made at the work unit of
            # its last operation), scrap = scrap at the work units that run an operation.
            units = self._operation_units(job.product)
            last = units[-1] if units else ""
            good = job.work_units[last].made if last in job.work_units else 0
            scrap = sum(a.scrapped for wu, a in job.work_units.items() if wu in units)
            out.job_orders[jid] = OrderRecord(
                good=good, scrap=scrap, lots_consumed=consumed, lots_produced=produced
            )
        # Only finished orders have produced their lot (in the plant and in the MES).
        finished = {j.output_lot for j in ledger.jobs.values() if j.ended_at is not None}
        out.genealogy = {
            (g["from_lot"], g["to_lot"]) for g in ledger.genealogy() if g["to_lot"] in finished
        }
        return out

    def _report(self, started: datetime, wall0: float) -> Report:
        assert self.sut is not None and self.sim is not None and self.link is not None
        sim_end = self.sim.now()
        mes = self.sut.records(self.plant, sim_end)
        twin = self._twin_records(mes.state_window)
        for wu, since in sorted(mes.state_window.items()):
            self.state.notes.append(
                f"State durations of {wu} reconciled from {since:.0f} s on: the MES API "
                "returns the newest state changes only."
            )
        settings = self.scenario.reconciliation
        rec = reconcile(
            twin,
            mes,
            duration_tolerance=settings.duration_tolerance,
            compare_state_durations=settings.compare_state_durations,
        )
        kpis: list[KpiRecord] = []
        scopes: list[tuple[str, str]] = []
        for line in self.plant.lines:
            scopes.append(("line", line.code))
            scopes.extend(("work_unit", unit.code) for unit in line.work_units)
        sut = self.sut
        # A few at a time (a line's KPIs take the MES a while); in the plant's order.
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = pool.map(lambda sc: sut.kpis(sc[0], sc[1], 0.0, sim_end), scopes)
            for (scope, code), k in zip(scopes, answers, strict=True):
                if k is not None:
                    kpis.append(KpiRecord(scope=scope, id=code, source="mes", **_kpi_fields(k)))
        views = {o.id: o for o in self.sut.orders()}
        order_states = {oid: v.state for oid, v in views.items()}
        lot_states = {
            x.lot: self.sut.lot_state(x.lot)
            for x in self.scenario.expectations
            if isinstance(x, LotInState)
        }
        st = self.link.stats
        ingest = self.sut.ingest_stats()
        lost = max(st.produced - ingest.accepted, 0) if st.produced else 0
        duplicated = max(ingest.accepted - st.produced, 0)
        events = EventCounts(
            sent=st.sent,
            ingested=ingest.accepted,
            lost=lost,
            duplicated=duplicated,
            replayed=st.replayed,
            detail=f"{st.produced} produced by the plant, {ingest.duplicates} refused as "
            f"duplicates by the MES (idempotent ingest), {st.failures} failed posts retried",
        )
        lat = np.array(self.sut.latencies_ms()) if self.sut.latencies_ms() else np.array([])
        latency = LatencySummary(
            count=int(lat.size),
            p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
            p95_ms=float(np.percentile(lat, 95)) if lat.size else None,
            p99_ms=float(np.percentile(lat, 99)) if lat.size else None,
            max_ms=float(lat.max()) if lat.size else None,
        )
        observed = Observed(
            order_ids=[o.id for o in self.orders],
            order_states=order_states,
            lot_states=lot_states,
            deviations=self.state.deviations,
            kpis=kpis,
            reconciliation=rec,
            events=events,
            latency=latency,
            problems=self.state.problems,
        )
        self._mark_recorded()
        results = check_all(self.scenario.expectations, observed)
        if self.people is not None:
            log = self.people.log
            self.state.notes.append(
                f"The simulated people made {log.actions} MES calls; {len(log.refused)} were "
                f"refused; {log.unavailable} times the MES was unreachable and they waited."
            )
            seen: dict[str, int] = {}
            for t, what, answer in log.refused:
                kind = f"{what.split()[1]} {answer.rule}"
                seen[kind] = seen.get(kind, 0) + 1
                if seen[kind] <= 3 and len(seen) <= MAX_LISTED:
                    self.state.notes.append(
                        f"refused at {t:.0f} s: {what}: {answer.rule}: {answer.message}"
                    )
        for name in {d.name for d in self.scenario.deviations} - {
            d.name for d in self.state.deviations
        }:
            self.state.deviations.append(
                DeviationOutcome(
                    name=name,
                    type="?",
                    at=-1,
                    target="",
                    outcome="not_injected",
                    message="its time was after the end of the run",
                )
            )
        orders = [
            OrderProgress(
                id=o.id,
                product=o.product,
                quantity=o.quantity,
                released_at=self.people.sent.get(o.id) if self.people else None,
                completed_at=self.sim.ledger.jobs[o.id].ended_at
                if o.id in self.sim.ledger.jobs
                else None,
                state=order_states.get(o.id),
                good=views[o.id].good if o.id in views else None,
                scrap=views[o.id].scrap if o.id in views else None,
            )
            for o in self.orders
        ]
        states, resolution = state_timeline(self.truth.intervals, sim_end)
        return Report(
            scenario=ScenarioInfo(
                name=self.scenario.name,
                file=str(self.options.scenario),
                description=self.scenario.description,
                plant=str(self.plant_path),
                duration_s=self.duration,
                speed=self.speed,
            ),
            seed=self.scenario.seed,
            versions=_versions(self.sut),
            system_under_test=self.sut.describe(),
            database=self.database,
            started_at=started.isoformat(),
            wall_time_s=round(time.monotonic() - wall0, 3),
            plant_wall_time_s=round(self.plant_wall_s, 3),
            sim_time_s=sim_end,
            passed=all(r.passed for r in results),
            expectations=results,
            reconciliation=rec,
            kpis=kpis,
            events=events,
            deviations=self.state.deviations,
            faults=self.state.faults,
            orders=orders,
            states=states,
            state_resolution_s=round(resolution, 3),
            api_latency=latency,
            notes=self.state.notes,
        )


class _JobWatcher:
    """Observer that tells the people when a work unit picks up or leaves a job order."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.current: dict[str, str] = {}

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        prev = self.current.get(work_unit, "")
        if prev == job_order:
            return
        self.current[work_unit] = job_order
        if job_order:
            self.runner._job_taken(t, work_unit, job_order)

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        return

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        return

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        return

    def on_alarm(
        self,
        t: float,
        work_unit: str,
        alarm: str,
        severity: int,
        message: str,
        active: bool,
        wall: float | None,
    ) -> None:
        return


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


def _kpi_fields(k: object) -> dict[str, object]:
    names = (
        "availability",
        "performance",
        "quality",
        "oee",
        "throughput_per_hour",
        "good",
        "scrap",
        "scrap_ratio",
        "time_elements",
    )
    return {n: getattr(k, n) for n in names}


def _versions(sut: SystemUnderTest) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("mestwin", "simpy", "asyncua"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        out["system_under_test"] = sut.version()
    except SutUnavailable:
        out["system_under_test"] = "unknown (unreachable)"
    return out


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its middle
        return url.split("@")[-1]


def run_scenario(options: RunOptions) -> RunResult:
    """Run one scenario; raises ``ScenarioError`` (exit 2) for a broken scenario file."""
    return Runner(options).run()
