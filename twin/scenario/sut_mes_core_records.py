"""Reading back what mes_core recorded, in the reconciliation's shape: job orders (REST or
B2MML performance), work units, KPIs, labour and the timestamps of the run (part of the
mes_core adapter, :mod:`twin.scenario.sut_mes_core`)."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from mes_core.client import MesClientError
from mes_core.kpi.schemas import KpiReport
from mes_core.schemas.execution import JobOrderOut
from plant_models.schema import PlantModel
from twin.scenario import b2mml_channel
from twin.scenario.reconcile import (
    LabourHours,
    OperationTimes,
    OrderRecord,
    Records,
    UnitRecord,
)
from twin.scenario.sut import (
    Kpis,
    OperationView,
    OrderView,
)
from twin.scenario.sut_mes_core_base import PERFORMANCE_CHUNK, REPORT_CONCURRENCY, MesCoreBase


class RecordReading(MesCoreBase):
    """``orders``, ``records``, ``kpis`` and ``labour_records`` of the mes_core adapter."""

    def _quality_stamps(self, stamps: dict[str, list[float]]) -> None:
        """Nonconformances (opened, disposed) and their signatures, in plant seconds."""
        for nc in self._timed(self._admin_client().nonconformances):
            stamps["nonconformances opened"].extend(self._seconds_of(nc.opened_at))
            stamps["dispositions"].extend(self._seconds_of(nc.disposed_at))
            if nc.signature is not None:
                stamps["signatures"].extend(self._seconds_of(nc.signature.signed_at))

    def _labour_stamps(self, persons: list[str], stamps: dict[str, list[float]]) -> None:
        """Clock-in/out and labour bookings of the plant's people, in plant seconds (a
        person the MES does not know has none)."""
        admin = self._admin_client()
        for person in persons:
            try:
                labour = self._timed(admin.person_labour, person)
            except MesClientError:
                continue
            for a in labour.attendance:
                for at in (a.clock_in, a.clock_out):
                    stamps.setdefault("attendance", []).extend(self._seconds_of(at))
            for b in labour.bookings:
                for at in (b.started_at, b.ended_at):
                    stamps.setdefault("labour bookings", []).extend(self._seconds_of(at))

    def labour_records(self, persons: list[str], orders: list[str]) -> LabourHours:
        """Attendance per person (``GET /labour/persons``), labour per job order and, summed
        over the orders' operations, per person (``GET /labour/job-orders``)."""
        admin = self._admin_client()
        out = LabourHours()
        for person in persons:
            try:
                hours = self._timed(admin.person_labour, person).attendance_hours
            except MesClientError:
                continue  # a person the MES does not know has no attendance there
            if hours > 0:
                out.attendance[person] = hours
        for order in orders:
            try:
                labour = self._timed(admin.job_order_labour, order)
            except MesClientError:
                continue
            if labour.hours > 0:
                out.by_order[order] = labour.hours
            for op in labour.operations:
                for person, hours in op.hours_by_person.items():
                    out.by_person[person] = out.by_person.get(person, 0.0) + hours
        return out

    def performance(self) -> b2mml_channel.Performance:
        """The actuals of every job order the MES accepted from the bench, as they stand,
        read from ProcessOperationsPerformance documents (a few hundred orders each)."""
        admin = self._admin_client()
        merged = b2mml_channel.Performance("")
        names = list(self._sent)
        for i in range(0, len(names), PERFORMANCE_CHUNK):
            document = self._timed(
                admin.export_performance, names[i : i + PERFORMANCE_CHUNK], include_open=True
            )
            merged.orders.update(b2mml_channel.parse_performance(document).orders)
        return merged

    def _views(self, performance: b2mml_channel.Performance) -> list[OrderView]:
        out = []
        for number, actual in performance.orders.items():
            product = self._order_product.get(number, "")
            ops = [
                OperationView(
                    s.process_segment,
                    s.operation_state,
                    s.good,
                    s.scrap,
                    s.equipment[0] if s.equipment else None,
                )
                for s in actual.segments
            ]
            out.append(
                OrderView(
                    id=number,
                    product=self._product_material.get(product, product),
                    quantity=self._sent.get(number, 0),
                    state=actual.state,
                    good=actual.record.good,
                    scrap=actual.record.scrap,
                    operations=ops,
                )
            )
        return out

    def orders(self) -> list[OrderView]:
        if self.order_channel == "b2mml":
            return self._views(self.performance())
        admin = self._admin_client()
        out: list[OrderView] = []
        offset = 0
        while True:
            page: list[JobOrderOut] = self._timed(admin.list_job_orders, limit=200, offset=offset)
            for jo in page:
                ops = [
                    OperationView(o.name, o.state, o.good, o.scrap, o.work_unit)
                    for o in sorted(jo.operations, key=lambda o: o.sequence)
                ]
                last = ops[-1] if ops else None
                out.append(
                    OrderView(
                        id=jo.code,
                        product=jo.product,
                        quantity=int(jo.quantity),
                        state=jo.state,
                        good=last.good if last else 0.0,
                        scrap=sum(o.scrap for o in ops),
                        operations=ops,
                    )
                )
            if len(page) < 200:
                return out
            offset += 200

    def records(self, plant: PlantModel, until: float) -> Records:
        out = Records()
        unit_counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        if self.order_channel == "b2mml":
            performance = self.performance()
            out.job_orders = performance.records()
            out.genealogy = performance.genealogy()
            out.genealogy_at = performance.genealogy_at()
            # SegmentResponse ActualStartTime / ActualEndTime: the times the MES stored.
            out.operation_times = performance.operation_times(self.plant_start)
            # Consumptions carry no time in a performance document: not read here.
            stamps: dict[str, list[float]] = defaultdict(list)
            stamps["job order start/end"] = performance.job_order_times(self.plant_start)
            self._quality_stamps(stamps)
            out.record_times = dict(stamps)
            for actual in performance.orders.values():
                for seg in actual.segments:
                    for code in seg.equipment:
                        unit_counts[code][0] += seg.good
                        unit_counts[code][1] += seg.scrap
        else:
            self._rest_order_records(out, unit_counts)
        if out.record_times is not None:
            self._labour_stamps([o.id for o in plant.operators], out.record_times)
        self._unit_records(plant, until, out, unit_counts)
        out.labour = self.labour_records([o.id for o in plant.operators], sorted(self._sent))
        return out

    def _rest_order_records(self, out: Records, unit_counts: dict[str, list[float]]) -> None:
        admin = self._admin_client()
        times = out.operation_times = {}
        counts = out.operation_counts = {}
        edges_at: set[tuple[str, str, str]] = set()
        out.genealogy_at = edges_at  # each edge at the work unit of the operation it is booked on
        stamps: dict[str, list[float]] = defaultdict(list)
        for view in self.orders():
            consumed: dict[str, float] = defaultdict(float)
            # (operation, lot) -> the work units that drew it, where the operator named them
            drawn_at: dict[tuple[int, str], set[str]] = defaultdict(set)
            jo = self._timed(admin.get_job_order, view.id)
            for at in (jo.started_at, jo.ended_at):
                stamps["job order start/end"].extend(self._seconds_of(at))
            for op in jo.operations:
                counts[(jo.code, op.name)] = (op.good, op.scrap)
                if op.started_at is not None or op.ended_at is not None:
                    times[(jo.code, op.name)] = OperationTimes(
                        self._plant_seconds(op.started_at), self._plant_seconds(op.ended_at)
                    )
                if op.work_units:  # each work unit's share (several: a parallel station)
                    for u in op.work_units:
                        unit_counts[u.work_unit][0] += u.good
                        unit_counts[u.work_unit][1] += u.scrap
                elif op.work_unit:
                    unit_counts[op.work_unit][0] += op.good
                    unit_counts[op.work_unit][1] += op.scrap
                for c in op.consumed:
                    consumed[str(c.get("lot"))] += float(c.get("quantity", 0.0))
                    if c.get("work_unit"):  # the unit of several that drew the lot
                        drawn_at[(op.sequence, str(c.get("lot")))].add(str(c["work_unit"]))
                    at = datetime.fromisoformat(str(c["at"])) if c.get("at") else None
                    stamps["consumptions"].extend(self._seconds_of(at))
            produced: dict[str, float] = {}
            out_lot = self._produced.get(view.id, f"{view.id}-OUT")
            if view.state in ("completed", "closed"):
                try:
                    for code in self._intermediate.get(view.id, []):  # granulate, blend
                        made = self._timed(admin.get_lot, code)
                        produced[made.code] = made.initial_quantity
                    lot = self._timed(admin.get_lot, out_lot)
                    produced[lot.code] = lot.initial_quantity
                    # Every level: through the intermediate lots to the raw materials.
                    trace = self._timed(admin.genealogy, lot.code, "backward", None)
                    # An operation's work unit; several (a parallel station's) joined
                    # by "+", as the twin names where an operation took a lot in whole.
                    units = {
                        op.sequence: "+".join(sorted(u.work_unit for u in op.work_units))
                        if len(op.work_units) > 1
                        else op.work_unit
                        for op in jo.operations
                    }
                    for edge in trace.edges:
                        out.genealogy.add((edge.parent, edge.child))
                        # At each work unit that drew the lot, else at the operation's.
                        at = drawn_at.get((edge.operation or 0, edge.parent)) or {
                            units.get(edge.operation) or "?"
                        }
                        edges_at |= {(edge.parent, edge.child, unit) for unit in at}
                except MesClientError:
                    pass
            out.job_orders[view.id] = OrderRecord(
                good=int(view.good),
                scrap=int(view.scrap),
                lots_consumed=dict(consumed),
                lots_produced=produced,
            )
        self._quality_stamps(stamps)
        out.record_times = dict(stamps)

    def _unit_records(
        self,
        plant: PlantModel,
        until: float,
        out: Records,
        unit_counts: dict[str, list[float]],
    ) -> None:
        admin = self._admin_client()
        start = self.plant_start
        end = self.plant_start + timedelta(seconds=until)

        def unit(code: str) -> tuple[Any, Any]:
            report = self._timed(admin.work_unit_states, code, start, end)
            try:
                k = self._timed(admin.work_unit_kpis, code, start, end, "plant")
            except MesClientError:
                k = None
            return report, k

        codes = [wu.code for wu in plant.all_work_units()]
        # A few at a time: the MES answers each from its database (hundreds of work units
        # on the reference plant), the KPIs are kept for ``kpis`` (same window).
        with ThreadPoolExecutor(max_workers=REPORT_CONCURRENCY) as pool:
            answers = dict(zip(codes, pool.map(unit, codes), strict=True))
        for code, (report, k) in answers.items():
            # What the MES recorded the work unit made: its plant counts (work units that
            # run no operation, e.g. a conveyor, still count), falling back to operations.
            if k is not None:
                self._kpi_reports[("work_unit", code, start, end)] = k
                good, scrap = k.good_quantity, k.scrap_quantity
            else:
                good, scrap = unit_counts.get(code, [0.0, 0.0])
            out.work_units[code] = UnitRecord(
                good=int(good),
                scrap=int(scrap),
                state_seconds={k: round(v, 3) for k, v in report.seconds_by_state.items() if v > 0},
            )

    def kpis(self, scope: str, ident: str, start: float, end: float) -> Kpis | None:
        admin = self._admin_client()
        t0 = self.plant_start + timedelta(seconds=start)
        t1 = self.plant_start + timedelta(seconds=end)
        fn = admin.line_kpis if scope == "line" else admin.work_unit_kpis
        k = self._kpi_reports.get((scope, ident, t0, t1))
        if k is None:
            try:
                k = self._timed(fn, ident, t0, t1)
            except MesClientError:
                return None
        return Kpis(
            availability=k.availability,
            performance=k.effectiveness,
            quality=k.quality_ratio,
            oee=k.oee,
            throughput_per_hour=k.throughput_per_hour,
            good=k.good_quantity,
            scrap=k.scrap_quantity,
            scrap_ratio=k.scrap_ratio,
            time_elements=k.time.model_dump(),
            basis=_line_basis(k),
        )


def _line_basis(k: KpiReport) -> str:
    """What mes_core measures a line at (empty for a work unit)."""
    if k.level != "line":
        return ""
    out = ", ".join(k.output_work_units) or "none yet"
    pace = k.constraint_work_unit or "none"
    return f"good = what left the line at {out}; time, PRU and pace of its constraint {pace}"
