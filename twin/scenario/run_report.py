"""The report of a run: read back what the MES recorded, reconcile it against the twin's
ground truth, ask the MES for its KPIs, check the expectations, and gather faults,
deviations, orders, the state timeline and notes into :class:`~twin.scenario.report.Report`."""

from __future__ import annotations

import platform
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from importlib import metadata

import numpy as np

from plant_models.scenario import (
    AuditEntryExists,
    DeviationRefused,
    LotInState,
    SignatureExists,
    SpcRuleFired,
)
from twin.engine import Engine
from twin.scenario.context import RunContext
from twin.scenario.custom_expectations import state_histories
from twin.scenario.deviations import DeviationInjector
from twin.scenario.expectations import Observed, check_all
from twin.scenario.faults import FaultInjector
from twin.scenario.kpi_checks import flag_master_data_errors
from twin.scenario.reconcile import (
    OrderRecord,
    Records,
    UnitRecord,
    operation_labour,
    reconcile,
)
from twin.scenario.report import (
    EventCounts,
    ExpectationResult,
    KpiRecord,
    LatencySummary,
    OrderProgress,
    Report,
    ScenarioInfo,
    run_verdict,
)
from twin.scenario.sut import (
    CAPABILITIES,
    ApiLatency,
    AuditQuery,
    EventIngest,
    KpiSource,
    LotStatus,
    Signatures,
    SpcSource,
    SutUnavailable,
    SystemUnderTest,
    missing,
    supports,
)
from twin.scenario.traceability import trace_matrix
from twin.scenario.truth import state_timeline

MAX_LISTED = 25  # refusals of the simulated people listed in the report notes


class ReportBuilder:
    """Builds one run's report (see the module docstring)."""

    def __init__(
        self, ctx: RunContext, deviations: DeviationInjector, faults: FaultInjector
    ) -> None:
        self.ctx = ctx
        self.deviations = deviations
        self.faults = faults

    def _timeline_results(self) -> list[ExpectationResult]:
        """Every fault and deviation of the timeline must have been injected and its
        outcome seen, unless the scenario marks it ``optional``: a scenario does not pass
        without the very thing it tests (an optional one is only noted)."""
        ctx = self.ctx
        out: list[ExpectationResult] = []
        hint = " (mark it optional: true in the scenario when that is expected)"
        for entry, at, why in self.faults.not_injected:
            what = f"{entry.type} at {at:g} s"
            if entry.optional:
                ctx.state.notes.append(f"optional {what} not injected: {why}")
                continue
            out.append(
                ExpectationResult(
                    name=f"{what} injected",
                    type="timeline",
                    passed=False,
                    detail=f"not injected: {why}{hint}",
                )
            )
        named = {x.deviation for x in ctx.scenario.expectations if isinstance(x, DeviationRefused)}
        specs = {d.name: d for d in ctx.scenario.deviations}
        for d in ctx.state.deviations:
            spec = specs.get(d.name)
            if d.outcome not in ("not_injected", "not_checked") or spec is None:
                continue
            if spec.optional:
                ctx.state.notes.append(f"optional deviation {d.name} {d.outcome}: {d.message}")
                continue
            if d.name in named:
                continue  # its deviation_refused expectation says so already
            out.append(
                ExpectationResult(
                    name=f"deviation {d.name} "
                    + ("injected" if d.outcome == "not_injected" else "judged"),
                    type="timeline",
                    passed=False,
                    status="failed" if d.outcome == "not_injected" else "not_checked",
                    detail=f"{d.outcome.replace('_', ' ')}: {d.message}{hint}",
                )
            )
        return out

    def _operation_units(self, product_id: str) -> list[str]:
        """Work units that run an operation segment of ``product_id``, in flow order."""
        product = self.ctx.plant.product(product_id)
        line = next(ln for ln in self.ctx.plant.lines if ln.code == product.line)
        segments = Engine.segments_for(product, line)
        return [wu.code for wu, seg in zip(line.work_units, segments, strict=True) if seg]

    def _segment_units(self, product_id: str) -> dict[str, list[str]]:
        """Segment id -> the work units that run it for ``product_id`` (flow order)."""
        product = self.ctx.plant.product(product_id)
        line = next(ln for ln in self.ctx.plant.lines if ln.code == product.line)
        out: dict[str, list[str]] = {}
        for wu, seg in zip(line.work_units, Engine.segments_for(product, line), strict=True):
            if seg is not None:
                out.setdefault(seg.id, []).append(wu.code)
        return out

    def _last_operation_units(self, product_id: str) -> list[str]:
        """The work units that run the last operation segment of ``product_id`` (several
        on a parallel station)."""
        product = self.ctx.plant.product(product_id)
        line = next(ln for ln in self.ctx.plant.lines if ln.code == product.line)
        segments = Engine.segments_for(product, line)
        last = product.segments[-1].id
        return [
            wu.code
            for wu, seg in zip(line.work_units, segments, strict=True)
            if seg is not None and seg.id == last
        ]

    def _clipped_seconds(self, work_unit: str, since: float) -> dict[str, float]:
        """Seconds per state of ``work_unit`` from ``since`` to the end (ground truth)."""
        out: dict[str, float] = {}
        for iv in self.ctx.truth.intervals:
            if iv.work_unit != work_unit or iv.end <= since:
                continue
            out[iv.state] = out.get(iv.state, 0.0) + iv.end - max(iv.start, since)
        return {k: round(v, 3) for k, v in out.items() if v > 0}

    def _twin_records(self, window: dict[str, float]) -> Records:
        assert self.ctx.sim is not None
        ledger = self.ctx.sim.ledger
        truth = self.ctx.truth.records()
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
            if job.ended_at is not None:  # intermediate lots taken in by the next operation
                for lot, _into, _wu, qty in job.intermediate_intake():
                    consumed[lot] = consumed.get(lot, 0.0) + qty
            produced = {job.output_lot: float(job.made)} if job.ended_at is not None else {}
            if job.ended_at is not None:  # intermediate lots: their machines' good units
                made_into: dict[str, float] = {}
                for wu, lot in job.intermediates.items():
                    made = job.work_units[wu].made if wu in job.work_units else 0
                    made_into[lot] = made_into.get(lot, 0.0) + made
                produced |= {lot: made for lot, made in made_into.items() if made > 0}
            # As the MES counts an order: good = finished units (made at the work units of
            # its last operation: one, or a parallel station's), scrap = scrap at the work
            # units that run an operation.
            units = self._operation_units(job.product)
            last_units = self._last_operation_units(job.product)
            good = sum(job.work_units[wu].made for wu in last_units if wu in job.work_units)
            scrap = sum(a.scrapped for wu, a in job.work_units.items() if wu in units)
            out.job_orders[jid] = OrderRecord(
                good=good, scrap=scrap, lots_consumed=consumed, lots_produced=produced
            )
        # Per operation: the counts of every work unit it ran on (a parallel station's).
        published = self.ctx.truth.order_unit_counts()
        op_counts: dict[tuple[str, str], tuple[float, float]] = {}
        for jid, job in ledger.jobs.items():
            for segment, units in self._segment_units(job.product).items():
                counts = [published.get((jid, wu), (0, 0)) for wu in units]
                op_counts[(jid, segment)] = (
                    float(sum(g for g, _ in counts)),
                    float(sum(s for _, s in counts)),
                )
        out.operation_counts = op_counts
        # Only finished orders have produced their lots (in the plant and in the MES): the
        # people complete operations, naming intermediate lots too, once the plant is done.
        done = {j.id: j for j in ledger.jobs.values() if j.ended_at is not None}
        finished = {j.output_lot for j in done.values()}
        finished |= {lot for j in done.values() for lot in j.intermediates.values()}
        out.genealogy = {
            (g["from_lot"], g["to_lot"]) for g in ledger.genealogy() if g["to_lot"] in finished
        }
        # Where each input lot was drawn: its edge belongs to that work unit's operation.
        out.genealogy_at = {
            (lot, done[job].lot_for(unit), unit)
            for (job, unit, _mat, lot) in ledger.consumed
            if job in done
        }
        out.genealogy_at |= {
            (lot, into, unit)
            for j in done.values()
            for lot, into, unit, _qty in j.intermediate_intake()
        }
        people = self.ctx.people
        if people is not None and people.labour_sut is not None:
            out.labour = people.labour.hours()  # who worked when: what the people did
        return out

    def build(self, started: datetime, wall0: float) -> Report:
        """The report of the run, once the plant stopped and the link is drained."""
        ctx = self.ctx
        sut, sim, link = ctx.sut, ctx.sim, ctx.link
        assert sut is not None and sim is not None and link is not None
        sim_end = sim.now()
        mes = sut.records(ctx.plant, sim_end)
        twin = self._twin_records(mes.state_window)
        for wu, since in sorted(mes.state_window.items()):
            ctx.state.notes.append(
                f"State durations of {wu} reconciled from {since:.0f} s on: the MES API "
                "returns the newest state changes only."
            )
        twin.operation_times = ctx.witness.operation_times if ctx.witness else None
        if mes.labour_from_operations and twin.labour is None and ctx.witness is not None:
            # The MES books labour with each operation: the twin's side is what the
            # bench's people ran, each operation's hours to whoever started it.
            twin.labour = operation_labour(ctx.witness.operation_times, ctx.witness.starters)
            ctx.state.notes.append(
                "Labour reconciled per operation (no attendance): the system under test "
                "books each operation's running time to the operator who started it."
            )
        if mes.operation_seconds is not None and mes.operation_times is None:
            ctx.state.notes.append(
                "Operation times reconciled as seconds running (end - start): the system "
                "under test keeps each operation's duration, not its start and end times."
            )
        elif mes.operation_times is None:
            ctx.state.notes.append(
                "Operation start and end times not reconciled: the adapter cannot read them "
                "back from the MES."
            )
        if not mes.per_work_unit:
            ctx.state.notes.append(
                "Work units not reconciled (not checked): the system under test keeps no "
                "good and scrap counts per work unit, only per job order."
            )
        if twin.labour is None or mes.labour is None:
            ctx.state.notes.append(
                "Labour not reconciled (not checked): the system under test has no labour "
                "capability (twin.scenario.sut.LabourCapability)."
            )
        # The run's timeline: from the plant's start to the end of the people's close-out
        # (they book lots, complete operations and clock out after the plant stopped, at
        # the plant seconds they state; the MES must store those), never before sim_end.
        timeline_end = max(sim_end, ctx.closed_out_at or 0.0)
        if mes.record_times is not None:
            ctx.state.notes.append(
                f"MES timestamps checked against the run's timeline: [0, {timeline_end:.0f} s]"
                f" plant seconds, plus one tick ({ctx.tick:.0f} s); the plant stopped at "
                f"{sim_end:.0f} s, the people closed out until {timeline_end:.0f} s."
            )
        settings = ctx.scenario.reconciliation
        rec = reconcile(
            twin,
            mes,
            duration_tolerance=settings.duration_tolerance,
            compare_state_durations=settings.compare_state_durations,
            time_tolerance=ctx.tick,
            timeline_end=timeline_end,
        )
        adapter = ctx.scenario.system_under_test.adapter
        unavailable = {c: missing(c, adapter) for c in CAPABILITIES if not supports(sut, c)}
        if twin.labour is not None and mes.labour is not None:
            # Labour read back without the capability (booked with the operations): its
            # rows are reconciled, so labour_hours expectations can be checked on them.
            unavailable.pop("labour", None)
        kpis: list[KpiRecord] = []
        scopes: list[tuple[str, str]] = []
        for line in ctx.plant.lines:
            scopes.append(("line", line.code))
            scopes.extend(("work_unit", unit.code) for unit in line.work_units)
        if isinstance(sut, KpiSource):
            source = sut
            # A few at a time (a line's KPIs take the MES a while); in the plant's order.
            with ThreadPoolExecutor(max_workers=4) as pool:
                answers = pool.map(lambda sc: source.kpis(sc[0], sc[1], 0.0, sim_end), scopes)
                for (scope, code), k in zip(scopes, answers, strict=True):
                    if k is not None:
                        kpis.append(KpiRecord(scope=scope, id=code, source="mes", **_kpi_fields(k)))
        kpis = flag_master_data_errors(kpis)
        views = {o.id: o for o in sut.orders()}
        order_states = {oid: v.state for oid, v in views.items()}
        lot_states = (
            {
                x.lot: sut.lot_state(x.lot)
                for x in ctx.scenario.expectations
                if isinstance(x, LotInState)
            }
            if isinstance(sut, LotStatus)
            else {}
        )
        audit = (
            {
                (x.action, x.object): sut.audit_entries(x.action, x.object)
                for x in ctx.scenario.expectations
                if isinstance(x, AuditEntryExists)
            }
            if isinstance(sut, AuditQuery)
            else {}
        )
        spc = (
            {
                x.characteristic: sut.spc_rules_fired(x.characteristic)
                for x in ctx.scenario.expectations
                if isinstance(x, SpcRuleFired)
            }
            if isinstance(sut, SpcSource)
            else {}
        )
        signed = (
            sut.signatures()
            if isinstance(sut, Signatures)
            and any(isinstance(x, SignatureExists) for x in ctx.scenario.expectations)
            else []
        )
        histories = state_histories(sut, ctx.scenario.expectations)
        st = link.stats
        if isinstance(sut, EventIngest):
            ingest = sut.ingest_stats()
            lost = max(st.produced - ingest.accepted, 0) if st.produced else 0
            duplicated = max(ingest.accepted - st.produced, 0)
            events = EventCounts(
                sent=st.sent,
                ingested=ingest.accepted,
                lost=lost,
                duplicated=duplicated,
                replayed=st.replayed,
                detail=f"{st.produced} produced by the plant, {ingest.duplicates} refused as "
                f"duplicates by the MES (idempotent ingest), {st.failures} failed posts "
                "retried",
            )
        else:
            events = EventCounts(
                sent=st.sent,
                ingested=0,
                lost=0,
                duplicated=0,
                replayed=st.replayed,
                detail=f"{st.produced} produced by the plant; not checked: "
                + unavailable["event_ingest"],
            )
        timed = sut.latencies_ms() if isinstance(sut, ApiLatency) else []
        lat = np.array(timed) if timed else np.array([])
        latency = LatencySummary(
            count=int(lat.size),
            p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
            p95_ms=float(np.percentile(lat, 95)) if lat.size else None,
            p99_ms=float(np.percentile(lat, 99)) if lat.size else None,
            max_ms=float(lat.max()) if lat.size else None,
        )
        observed = Observed(
            order_ids=[o.id for o in ctx.orders],
            order_states=order_states,
            lot_states=lot_states,
            deviations=ctx.state.deviations,
            kpis=kpis,
            reconciliation=rec,
            events=events,
            events_unverified=_unverified(st.unplanned_reconnects),
            latency=latency,
            problems=ctx.state.problems,
            unavailable=unavailable,
            audit_entries=audit,
            spc=spc,
            signatures=signed,
            histories=histories,
            mirror=ctx.mirror_report,
        )
        self.deviations.judge_drifts()
        self.deviations.mark_recorded()
        self.deviations.add_not_injected()
        results = check_all(ctx.scenario.expectations, observed) + self._timeline_results()
        if ctx.people is not None:
            log = ctx.people.log
            ctx.state.notes.append(
                f"The simulated people made {log.actions} MES calls; {len(log.refused)} were "
                f"refused; {log.unavailable} times the MES was unreachable and they waited."
            )
            seen: dict[str, int] = {}
            for t, what, answer in log.refused:
                kind = f"{what.split()[1]} {answer.rule}"
                seen[kind] = seen.get(kind, 0) + 1
                if seen[kind] <= 3 and len(seen) <= MAX_LISTED:
                    ctx.state.notes.append(
                        f"refused at {t:.0f} s: {what}: {answer.rule}: {answer.message}"
                    )
        orders = [
            OrderProgress(
                id=o.id,
                product=o.product,
                quantity=o.quantity,
                released_at=ctx.people.sent.get(o.id) if ctx.people else None,
                completed_at=sim.ledger.jobs[o.id].ended_at if o.id in sim.ledger.jobs else None,
                state=order_states.get(o.id),
                good=views[o.id].good if o.id in views else None,
                scrap=views[o.id].scrap if o.id in views else None,
            )
            for o in ctx.orders
        ]
        states, resolution = state_timeline(ctx.truth.intervals, sim_end)
        return Report(
            scenario=ScenarioInfo(
                name=ctx.scenario.name,
                file=str(ctx.options.scenario),
                description=ctx.scenario.description,
                plant=str(ctx.plant_path),
                duration_s=ctx.duration,
                speed=ctx.speed,
            ),
            seed=ctx.scenario.seed,
            versions=_versions(sut),
            system_under_test=sut.describe(),
            database=str(getattr(sut, "database", "(the adapter does not say)")),
            started_at=started.isoformat(),
            wall_time_s=round(time.monotonic() - wall0, 3),
            plant_wall_time_s=round(ctx.plant_wall_s, 3),
            sim_time_s=sim_end,
            passed=run_verdict(results)[0] == "passed",
            expectations=results,
            traceability=trace_matrix(results),
            reconciliation=rec,
            kpis=kpis,
            events=events,
            deviations=ctx.state.deviations,
            faults=ctx.state.faults,
            orders=orders,
            states=states,
            state_resolution_s=round(resolution, 3),
            api_latency=latency,
            notes=ctx.state.notes,
            mirror=ctx.mirror_report,
        )


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
        "basis",
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


def _unverified(reconnects: int) -> str | None:
    """Why 'nothing lost' cannot be vouched for, if it cannot."""
    if not reconnects:
        return None
    return (
        f"the MES's collector lost the plant's server {reconnects} time(s) without a fault "
        "the bench injected and resynchronised from current values: changes made in those "
        "gaps never became events, so no count of events can show them lost (the "
        "reconciliation shows their effect)"
    )
