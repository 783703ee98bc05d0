"""The real data source: the MES's public API through ``mes_core.client``.

Each browser session gets its own ``MesClient`` (its own token); this module turns the
client's pydantic answers into the pages' views and the client's errors into the pages'
(``MesUnavailable`` for a MES that does not answer, ``MesAuthError``, ``NotFound``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx

from dashboards.session import Connector, Credentials, MesSession
from dashboards.source import (
    DashboardSource,
    MesAuthError,
    MesUnavailable,
    NotFound,
    SourceError,
)
from dashboards.views import (
    GenealogyView,
    HoldView,
    JobOrderView,
    LineTiles,
    LineView,
    LotLink,
    LotNode,
    NonconformanceView,
    OeeView,
    OperationView,
    PlantView,
    QualityView,
    SpcChartData,
    SpcPoint,
    StateBar,
    ThroughputPoint,
    WorkUnitTile,
)
from mes_core import client as mes
from mes_core.kpi.schemas import KpiReport, StateIntervalOut
from mes_core.quality.schemas import CharacteristicOut, MeasurementOut, NonconformanceOut
from mes_core.schemas.execution import JobOrderOut
from mes_core.schemas.masterdata import EquipmentOut, LotOut
from mes_core.schemas.plant_events import PlantClockOut

T = TypeVar("T")

log = logging.getLogger("dashboards")

#: Seconds to wait for the MES: a live page would rather say "unreachable" than hang.
TIMEOUT_S = 5.0

#: Most job orders / lots read for a list (the API's own cap is 10 000).
LIST_LIMIT = 2000
#: How long a read of the plant's clock serves the pages (one refresh reads it once).
PLANT_CLOCK_TTL_S = 0.5

#: Newest measurement results drawn per SPC chart.
MAX_SPC_POINTS = 500

#: Throughput is sampled on these buckets (finished buckets are read once and kept).
THROUGHPUT_BUCKET = timedelta(hours=1)

#: Time spent per refresh reading throughput buckets not read yet (the rest come later).
BUCKET_BUDGET_S = 0.3

#: Reads in flight at once for all sessions of an app (the MES is one service too).
READ_THREADS = 6

#: A window KPI read slower than this is re-read only every ``KPI_COST_FACTOR`` x its cost.
KPI_SLOW_S = 0.5
KPI_COST_FACTOR = 5.0

#: Severity given to a work unit that is down (the Andon's stop call), on OPC UA's scale.
DOWN_SEVERITY = 800


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Turn the client's errors into the pages' ``SourceError`` family."""
    try:
        yield
    except httpx.TransportError as exc:
        raise MesUnavailable(f"no answer from {url} ({type(exc).__name__}: {exc})") from exc
    except (mes.MesAuthError, mes.MesForbidden) as exc:
        raise MesAuthError(exc.message) from exc
    except mes.MesNotFound as exc:
        raise NotFound(exc.message) from exc
    except mes.MesClientError as exc:
        if exc.status >= 500:
            raise MesUnavailable(f"{url} answered {exc.status}: {exc.message}") from exc
        raise SourceError(f"{exc.rule}: {exc.message}") from exc


def _aware(moment: datetime | None) -> datetime | None:
    """The API's times are UTC; SQLite may hand them back without a zone."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def job_order_view(order: JobOrderOut, output_lots: tuple[str, ...] = ()) -> JobOrderView:
    """A job order of the API as the Job orders page shows it."""
    return JobOrderView(
        code=order.code,
        product=order.product,
        quantity=order.quantity,
        state=order.state,
        due_at=_aware(order.due_at),
        created_at=_aware(order.created_at),
        started_at=_aware(order.started_at),
        ended_at=_aware(order.ended_at),
        operations=tuple(
            OperationView(
                sequence=op.sequence,
                name=op.name,
                equipment_class=op.equipment_class,
                state=op.state,
                work_unit=op.work_unit or op.planned_work_unit,
                good=op.good,
                scrap=op.scrap,
                started_at=_aware(op.started_at),
                ended_at=_aware(op.ended_at),
                operators=tuple(op.operators),
                consumed=tuple(
                    (str(c.get("lot", "?")), float(str(c.get("quantity", 0)))) for c in op.consumed
                ),
            )
            for op in order.operations
        ),
        output_lots=output_lots,
    )


def plant_view(
    equipment: list[EquipmentOut], running: list[JobOrderOut], now: datetime
) -> PlantView:
    """The Andon board from the equipment list and the running job orders.

    A work unit's job order and counts are those of the running operation on it (the
    latest started, should there be several). A work unit that is down is the Andon's
    stop call and carries its reason as the alarm text.
    """
    on_unit: dict[str, tuple[datetime, str, float, float, str]] = {}
    for order in running:
        for op in order.operations:
            if op.state != "running" or not op.work_unit:
                continue
            started = _aware(op.started_at) or now
            seen = on_unit.get(op.work_unit)
            if seen is None or started > seen[0]:
                on_unit[op.work_unit] = (started, order.code, op.good, op.scrap, order.state)
    lines = [e for e in equipment if e.level == "line"]
    units: dict[str | None, list[EquipmentOut]] = {}
    for e in equipment:
        if e.level == "work_unit":
            units.setdefault(e.parent, []).append(e)
    groups: list[LineTiles] = []
    orphans = [
        u for parent, us in units.items() if parent not in {ln.code for ln in lines} for u in us
    ]
    for line, members in [(ln.code, units.get(ln.code, [])) for ln in lines] + [("", orphans)]:
        if not members:
            continue
        name = next((ln.name for ln in lines if ln.code == line), "") or line or "Other work units"
        tiles = []
        for unit in members:
            job = on_unit.get(unit.code)
            down = unit.state == "down"
            tiles.append(
                WorkUnitTile(
                    code=unit.code,
                    name=unit.name,
                    line=line,
                    state=unit.state,
                    state_since=_aware(unit.state_since),
                    state_reason=unit.state_reason,
                    equipment_class=unit.equipment_class,
                    job_order=job[1] if job else None,
                    job_order_held=bool(job and job[4] == "held"),
                    good=job[2] if job else 0.0,
                    scrap=job[3] if job else 0.0,
                    alarm=(unit.state_reason or "stopped") if down else None,
                    alarm_severity=DOWN_SEVERITY if down else 0,
                )
            )
        groups.append(LineTiles(code=line, name=name, tiles=tuple(tiles)))
    return PlantView(at=now, lines=tuple(groups))


def oee_view(report: KpiReport) -> OeeView:
    """A KPI report of the MES (ISO 22400-2) as the Line page shows it."""
    return OeeView(
        scope=report.equipment,
        start=_aware(report.start) or report.start,
        end=_aware(report.end) or report.end,
        pbt=report.time.pbt,
        apt=report.time.apt,
        aust=report.time.aust,
        adet=report.time.adet,
        adot=report.time.adot,
        availability=report.availability,
        effectiveness=report.effectiveness,
        quality_ratio=report.quality_ratio,
        oee=report.oee,
        good=report.good_quantity,
        scrap=report.scrap_quantity,
        master_data_errors=tuple(report.master_data_errors),
    )


def standard_seconds_per_unit(report: KpiReport) -> float | None:
    """The window's mean PRU (planned run time per unit, from the routing): sum(PRU x PQ)
    over the quantity that had a PRU; ``None`` without production or routing data."""
    with_pru = report.produced_quantity - report.quantity_without_pru
    if with_pru <= 0 or report.planned_run_time <= 0:
        return None
    return report.planned_run_time / with_pru


def throughput_points(
    start: datetime, buckets: list[KpiReport | None], window: KpiReport, now: datetime
) -> list[ThroughputPoint]:
    """Cumulative good quantity at each bucket boundary and now, against the plan.

    The plan is the standard rate (the routing's PRU) over the planned busy time elapsed
    (ISO 22400-2 PBT): what the line makes when it runs at standard speed whenever it is
    planned to, so actual over plan reads like the OEE index.
    """
    pru = standard_seconds_per_unit(window)
    points = [ThroughputPoint(start, 0.0, 0.0 if pru else None)]
    good = pbt = 0.0
    for bucket in buckets:
        if bucket is None:
            continue  # the MES could not report this bucket: a gap, said under the chart
        good += bucket.good_quantity
        pbt += bucket.time.pbt
        points.append(
            ThroughputPoint(_aware(bucket.end) or bucket.end, good, pbt / pru if pru else None)
        )
    points.append(
        ThroughputPoint(now, window.good_quantity, window.time.pbt / pru if pru else None)
    )
    return points


def characteristic_label(c: CharacteristicOut) -> str:
    """Unique name of an inspection characteristic: ``fill_volume (R-JUICE op 1)``."""
    return f"{c.name} ({c.routing} op {c.segment})"


def spc_chart(c: CharacteristicOut, results: list[MeasurementOut]) -> SpcChartData:
    """An I chart of ``c``: results oldest first, with the rules the MES found."""
    return SpcChartData(
        characteristic=characteristic_label(c),
        unit=c.unit,
        lsl=c.lsl,
        target=c.target,
        usl=c.usl,
        centre=c.limits.centre,
        ucl=c.limits.ucl,
        lcl=c.limits.lcl,
        points=tuple(
            SpcPoint(
                at=_aware(r.measured_at) or r.measured_at,
                value=r.value,
                rules=tuple(r.spc_rules),
                out_of_spec=not r.in_spec,
            )
            for r in sorted(results, key=lambda r: (r.measured_at, r.id))
        ),
    )


def holds_view(
    lots: list[LotOut], orders: list[JobOrderOut], ncs: list[NonconformanceOut]
) -> tuple[HoldView, ...]:
    """Lots and job orders on hold, each with the open nonconformance that holds it."""
    why: dict[tuple[str, str], NonconformanceOut] = {}
    for nc in ncs:
        if nc.state != "open":
            continue
        for lot in nc.held_lots:
            why.setdefault(("lot", lot), nc)
        for jo in nc.held_job_orders:
            why.setdefault(("job_order", jo), nc)
    out: list[HoldView] = []
    for kind, code in [("lot", lot.code) for lot in lots] + [("job_order", o.code) for o in orders]:
        holder = why.get((kind, code))
        out.append(
            HoldView(
                kind=kind,
                code=code,
                reason=f"{holder.number}: {holder.description}" if holder else "on hold",
                since=_aware(holder.opened_at) if holder else None,
            )
        )
    return tuple(out)


def nonconformance_view(nc: NonconformanceOut, names: dict[int, str]) -> NonconformanceView:
    return NonconformanceView(
        code=nc.number,
        status=nc.state + (f" ({nc.disposition})" if nc.disposition else ""),
        description=nc.description,
        characteristic=names.get(nc.characteristic_id) if nc.characteristic_id else None,
        lot=", ".join(nc.held_lots) or None,
        job_order=nc.job_order,
        raised_at=_aware(nc.opened_at),
    )


@dataclass
class _UnitStates:
    """A work unit's intervals in a window, read while its state had ``since``."""

    start: datetime
    since: datetime | None
    intervals: list[StateIntervalOut]


class MesSource:
    """``DashboardSource`` over one logged-in ``MesClient``.

    Keeps what cannot change any more, per session: state intervals of a work unit whose
    state has not changed since they were read (only the running one grows, to "now"),
    and KPI buckets that are over.
    """

    def __init__(
        self,
        client: mes.MesClient,
        url: str,
        clock: Callable[[], datetime],
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self._client = client
        self._pool = pool
        self._url = url
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _UnitStates] = {}
        self._buckets: dict[tuple[str, datetime], KpiReport | None] = {}
        #: Window KPI reports: (report, monotonic time read, seconds it took).
        self._kpis: dict[tuple[str, datetime], tuple[KpiReport, float, float]] = {}
        #: Latest state change per work unit seen by ``latest_data`` (plant time).
        self._latest_change: dict[str, datetime] = {}
        #: The plant's clock as last read, and when (monotonic): pages of one refresh share it.
        self._plant_clock: tuple[datetime | None, float] | None = None

    def _call(self, fn: Callable[[], T]) -> T:
        with translated(self._url):
            return fn()

    def _gather(self, *reads: Callable[[], Any]) -> list[Any]:
        """Run independent reads at once (the page waits for the slowest, not the sum);
        the first error is raised, translated like any other."""
        if self._pool is None:
            return [self._call(read) for read in reads]
        futures = [self._pool.submit(self._call, read) for read in reads]
        return [f.result() for f in futures]

    def _remember_clock(self, clock: PlantClockOut) -> datetime | None:
        at = _aware(clock.plant_time)
        with self._lock:
            self._plant_clock = (at, time.monotonic())
        return at

    def now(self) -> datetime | None:
        with self._lock:
            known = self._plant_clock
        if known is not None and time.monotonic() - known[1] < PLANT_CLOCK_TTL_S:
            return known[0]
        return self._remember_clock(self._call(self._client.plant_clock))

    def plant(self) -> PlantView:
        equipment, running, held, clock = self._gather(
            self._client.list_equipment,
            partial(self._client.list_job_orders, state="running", limit=LIST_LIMIT),
            # A held order still occupies its work unit: its tile says so.
            partial(self._client.list_job_orders, state="held", limit=LIST_LIMIT),
            self._client.plant_clock,
        )
        # "Since" and "for" on the tiles are on the plant's clock (issue 13).
        now = self._remember_clock(clock) or self._clock()
        return plant_view(equipment, running + held, now)

    def lines(self) -> list[tuple[str, str]]:
        lines = self._call(lambda: self._client.list_equipment(level="line"))
        return [(ln.code, ln.name) for ln in lines]

    def latest_data(self, line: str) -> datetime | None:
        units = [
            e.code
            for e in self._call(lambda: self._client.list_equipment(level="work_unit"))
            if e.parent == line
        ]
        latest: datetime | None = None
        for unit in units:
            for row in self._call(partial(self._client.state_history, unit, limit=1)):
                at = _aware(row.started_at)
                if at is None:
                    continue
                with self._lock:
                    self._latest_change[unit] = at
                if latest is None or at > latest:
                    latest = at
        return latest

    def line(self, code: str, start: datetime, end: datetime) -> LineView:
        (window, kpi_age), equipment_list = self._gather(
            partial(self._window_kpis, code, start, end), self._client.list_equipment
        )
        equipment = {e.code: e for e in equipment_list}
        line = equipment.get(code)
        # Work units whose state changed since their window was read are read again
        # (at once); the others' finished intervals cannot have changed.
        stale: dict[str, datetime | None] = {}
        for unit in window.work_units:
            since = _aware(equipment[unit].state_since) if unit in equipment else None
            with self._lock:
                cached = self._states.get(unit)
                # On a simulated clock the current state may lag the history (older plant
                # times): the latest change read by ``latest_data`` also says "changed".
                seen = self._latest_change.get(unit)
            if seen is not None and (since is None or seen > since):
                since = seen
            if cached is None or cached.start != start or cached.since != since:
                stale[unit] = since
        reports = self._gather(
            *[partial(self._client.work_unit_states, unit, start, end) for unit in stale]
        )
        with self._lock:
            for (unit, since), report in zip(stale.items(), reports, strict=True):
                self._states[unit] = _UnitStates(start, since, report.intervals)
            windows = {unit: self._states[unit] for unit in window.work_units}
        bars: list[StateBar] = []
        for unit, cached in windows.items():
            for i, iv in enumerate(cached.intervals):
                last = i == len(cached.intervals) - 1
                bars.append(
                    StateBar(
                        work_unit=unit,
                        state=iv.state,
                        start=_aware(iv.start) or iv.start,
                        # The running state lasts until now, not until it was read.
                        end=max(end, _aware(iv.end) or iv.end)
                        if last
                        else _aware(iv.end) or iv.end,
                        reason=iv.reason,
                        open=last,
                    )
                )
        buckets, pending, failed = self._finished_buckets(code, start, end)
        notes = []
        if window.constraint_work_unit:
            out = ", ".join(window.output_work_units) or "none yet"
            notes.append(
                f"Good is what left the line (at {out}); availability and effectiveness "
                f"are its constraint's, {window.constraint_work_unit} (ISO 22400-2)."
            )
        if kpi_age > 0:
            notes.append(
                f"The MES takes long to compute this window's KPIs: they are "
                f"{kpi_age:.0f} s old and refresh less often than the states."
            )
        if pending:
            notes.append(f"Loading the throughput history: {pending} hours to go.")
        if failed:
            notes.append(f"The MES could not report {failed} of the hourly buckets.")
        return LineView(
            code=code,
            name=line.name if line else code,
            oee=oee_view(window),
            states=tuple(bars),
            work_units=tuple(window.work_units),
            throughput=tuple(throughput_points(start, buckets, window, end)),
            notes=tuple(notes),
        )

    def _window_kpis(self, code: str, start: datetime, end: datetime) -> tuple[KpiReport, float]:
        """The window's KPI report and its age in seconds (0: read now).

        The KPI report is the costliest read of the page (the MES recomputes the window
        from its state history). When it is slow, it is re-read only once a period
        ``KPI_COST_FACTOR`` times its cost has passed, so a viewer never keeps the MES
        busy computing KPIs more than a fraction of the time; the states still refresh
        on every tick.
        """
        key = (code, start)
        with self._lock:
            cached = self._kpis.get(key)
        now = time.monotonic()
        if cached is not None:
            report, read_at, cost = cached
            if cost > KPI_SLOW_S and now - read_at < cost * KPI_COST_FACTOR:
                return report, now - read_at
        began = time.monotonic()
        report = self._call(partial(self._client.line_kpis, code, start, end))
        cost = time.monotonic() - began
        with self._lock:
            self._kpis = {k: v for k, v in self._kpis.items() if k[0] != code}
            self._kpis[key] = (report, time.monotonic(), cost)
        return report, 0.0

    def _finished_buckets(
        self, code: str, start: datetime, end: datetime
    ) -> tuple[list[KpiReport | None], int, int]:
        """KPI reports of the finished hours of the window, each read once per session.

        New buckets are read within ``BUCKET_BUDGET_S`` per refresh, so the first view of a
        long window shows at once and its throughput history fills in over the next few
        refreshes. A bucket the MES fails to report (it answered the whole window, so it is
        up) stays a gap rather than failing the page. Returns the buckets (``None`` where
        unknown), how many are still to read and how many failed.
        """
        out: list[KpiReport | None] = []
        pending = failed = 0
        spent_from = time.monotonic()
        at = start
        while at + THROUGHPUT_BUCKET <= end:
            key = (code, at)
            with self._lock:
                known = key in self._buckets
                found = self._buckets.get(key)
            if not known and time.monotonic() - spent_from < BUCKET_BUDGET_S:
                read = partial(self._client.line_kpis, code, at, at + THROUGHPUT_BUCKET)
                try:
                    found = self._call(read)
                except MesUnavailable as exc:
                    log.warning("MES did not report %s over %s+1h: %s", code, at, exc)
                    found = None
                with self._lock:
                    self._buckets[key] = found
                known = True
            if not known:
                pending += 1
            elif found is None:
                failed += 1
            out.append(found)
            at += THROUGHPUT_BUCKET
        with self._lock:
            for key in [k for k in self._buckets if k[0] == code and k[1] < start]:
                del self._buckets[key]
        return out, pending, failed

    def job_orders(self) -> list[JobOrderView]:
        orders = self._call(lambda: self._client.list_job_orders(limit=LIST_LIMIT))
        return [job_order_view(o) for o in reversed(orders)]

    def job_order(self, code: str) -> JobOrderView:
        order = self._call(lambda: self._client.get_job_order(code))
        lots = self._call(lambda: self._client.list_lots())
        produced = tuple(
            lot.code for lot in lots if (lot.produced_by or "").split("/")[0] == order.code
        )
        return job_order_view(order, produced)

    def quality(self, characteristic: str | None) -> QualityView:
        chars = self._call(self._client.characteristics)
        names = {c.id: characteristic_label(c) for c in chars}
        shown = [c for c in chars if characteristic is None or names[c.id] == characteristic]
        ncs, held_lots, held_orders, *results = self._gather(
            self._client.nonconformances,
            partial(self._client.list_lots, status="on_hold"),
            partial(self._client.list_job_orders, state="held", limit=LIST_LIMIT),
            *[partial(self._client.measurements, c.id, limit=MAX_SPC_POINTS) for c in shown],
        )
        charts = [spc_chart(c, r) for c, r in zip(shown, results, strict=True)]
        if characteristic is None:
            # Over all characteristics, only those with results: an empty chart says nothing.
            charts = [chart for chart in charts if chart.points]
        ordered = sorted(ncs, key=lambda nc: (nc.state != "open", -nc.opened_at.timestamp()))
        return QualityView(
            charts=tuple(charts),
            holds=holds_view(held_lots, held_orders, ncs),
            nonconformances=tuple(nonconformance_view(nc, names) for nc in ordered),
        )

    def lots(self) -> list[str]:
        return [lot.code for lot in reversed(self._call(lambda: self._client.list_lots()))]

    def genealogy(self, lot: str) -> GenealogyView:
        backward = self._call(lambda: self._client.genealogy(lot, direction="backward"))
        forward = self._call(lambda: self._client.genealogy(lot, direction="forward"))
        root = self._call(lambda: self._client.get_lot(lot))
        nodes: dict[str, LotNode] = {
            root.code: LotNode(root.code, root.material, root.status, root.quantity)
        }
        links: dict[tuple[str, str], LotLink] = {}
        for trace in (backward, forward):
            for node in trace.lots:
                nodes.setdefault(node.code, LotNode(node.code, node.material, node.status))
            for edge in trace.edges:
                links[(edge.parent, edge.child)] = LotLink(
                    parent=edge.parent,
                    child=edge.child,
                    job_order=edge.job_order,
                    operation=str(edge.operation),
                )
        return GenealogyView(root=lot, nodes=tuple(nodes.values()), links=tuple(links.values()))


class MesClientSession:
    """A browser session's MES connection: its client, who it is, and its source."""

    def __init__(
        self,
        client: mes.MesClient,
        url: str,
        user: str | None,
        roles: tuple[str, ...],
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self._client = client
        self._user = user
        self._roles = roles
        self._source = MesSource(client, url, lambda: datetime.now(UTC), pool)

    @property
    def user(self) -> str | None:
        return self._user

    @property
    def roles(self) -> tuple[str, ...]:
        return self._roles

    @property
    def source(self) -> DashboardSource:
        return self._source

    @property
    def client(self) -> mes.MesClient:
        """The session's client, for pages that act (operator terminal pages)."""
        return self._client

    def close(self) -> None:
        self._client.close()


def mes_connector(url: str, *, timeout: float = TIMEOUT_S) -> Connector:
    """Opens sessions against the MES at ``url``: logs in when given credentials. The
    sessions share one small thread pool for reads a page makes at once."""
    pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="mes-read")

    def connect(credentials: Credentials | None) -> MesSession:
        client = mes.MesClient(url, timeout=timeout)
        try:
            with translated(url):
                if credentials is None:
                    return MesClientSession(client, url, None, (), pool)
                client.login(credentials.username, credentials.password)
                me = client.whoami()
            return MesClientSession(client, url, me.name, tuple(me.roles), pool)
        except BaseException:
            client.close()
            raise

    return connect
