"""The ground-truth ledger: what really happened in the simulated plant.

The engine writes into it directly (cheaply: counters are kept on the work units and
flushed here when a job order changes or the run ends), so it costs next to nothing per
unit. It answers, at the end (``summary()``, JSON-serialisable) and while running
(``subscribe(callback)`` streams records as they are made):

- units started, made (good), scrapped, per work unit and per job order;
- state intervals with reasons, per work unit (ISO 22400-2 time elements are sums of them);
- job orders: release, start, end, quantities;
- material lots consumed (job order, work unit, lot, quantity), lots produced, and the
  genealogy (lot in -> lot out), as the MES should have recorded them (ISA-95 Part 2,
  material "lot genealogy").

It is what a reconciliation holds against the MES's records.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from plant_models.schema import intermediate_lot
from twin.hooks import MES_STATES

LedgerRecord = dict[str, Any]
"""A streamed record: ``{"kind": "state" | "job" | "lot_consumed" | "lot_produced" |
"failure", "t": ..., ...}``."""


class IntervalLog:
    """One work unit's closed state intervals: start times and labels, flat.

    Intervals of a work unit are contiguous, so each ends where the next starts and the
    last ends at ``closed_until``. A label is the interval's reason, or its state when the
    reason is empty (running): every reason starts with its MES state word
    (``"starved: upstream empty"``). A simulated day of the reference plant has about a
    million intervals; as objects they would keep the garbage collector busy, as an array
    of floats and a list of shared strings they cost a few bytes each.
    """

    __slots__ = ("closed_until", "labels", "starts")

    def __init__(self) -> None:
        self.starts = array("d")
        self.labels: list[str] = []
        self.closed_until = 0.0

    def __len__(self) -> int:
        return len(self.starts)

    def rows(self) -> Iterator[tuple[float, float, str, str]]:
        """(start, end, state, reason) of each interval, in order."""
        starts = self.starts
        n = len(starts)
        for i, label in enumerate(self.labels):
            end = starts[i + 1] if i + 1 < n else self.closed_until
            if ":" in label:
                yield starts[i], end, label.split(":", 1)[0], label
            else:
                yield starts[i], end, label, ""


@dataclass
class JobWorkUnitActuals:
    """What one work unit did for one job order."""

    started: int = 0
    made: int = 0
    scrapped: int = 0
    first_start: float | None = None
    last_end: float | None = None


@dataclass
class JobRecord:
    """A job order's life in the plant."""

    id: str
    product: str
    line: str
    quantity: int
    dispatched_at: float
    source: str
    started_at: float | None = None
    ended_at: float | None = None
    released: int = 0
    made: int = 0
    scrapped: int = 0
    output_lot: str = ""
    work_units: dict[str, JobWorkUnitActuals] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    """The work units of the order's operations, in routing order."""
    stage_segments: tuple[str, ...] = ()
    """The operation segment each of ``stages`` runs (the work units of a parallel station
    run one); empty: one operation per work unit."""
    intermediates: dict[str, str] = field(default_factory=dict)
    """Work unit -> the intermediate lot its operation produces (routing ``output_material``)."""

    def operations(self) -> list[tuple[str, ...]]:
        """The work units of each operation, in routing order (several for a parallel
        station's)."""
        out: list[tuple[str, ...]] = []
        segments = self.stage_segments or self.stages
        for i, wu in enumerate(self.stages):
            if i > 0 and segments[i] == segments[i - 1]:
                out[-1] = (*out[-1], wu)
            else:
                out.append((wu,))
        return out

    def consumer(self, units: tuple[str, ...]) -> str:
        """Where an operation took a lot in as a whole: its work unit, or the units of a
        parallel station that worked on the order, joined by ``+`` (sorted)."""
        if len(units) == 1:
            return units[0]
        worked = sorted(wu for wu in units if wu in self.work_units) or sorted(units)
        return "+".join(worked)

    def lot_for(self, work_unit: str) -> str:
        """The lot that what ``work_unit`` consumed goes into: the first intermediate lot
        produced at or after its operation, else the order's finished lot."""
        if work_unit in self.stages:
            for wu in self.stages[self.stages.index(work_unit) :]:
                if wu in self.intermediates:
                    return self.intermediates[wu]
        return self.output_lot

    def intermediate_intake(self) -> list[tuple[str, str, str, float]]:
        """(intermediate lot, lot it goes into, consuming work unit, quantity): each lot an
        operation made (its good units, on every work unit it ran on) is taken in whole by
        the next operation (at its work unit; a parallel station's: ``consumer``)."""
        out = []
        ops = self.operations()
        for i, units in enumerate(ops[:-1]):
            lot = self.intermediates.get(units[0])
            made = sum(self.work_units[wu].made for wu in units if wu in self.work_units)
            if lot is not None and made > 0:
                nxt = ops[i + 1]
                out.append((lot, self.lot_for(nxt[0]), self.consumer(nxt), float(made)))
        return out

    @property
    def status(self) -> str:
        if self.ended_at is not None:
            return "completed"
        if self.started_at is not None:
            return "running"
        return "dispatched"


class Ledger:
    """Ground truth of one run. The engine is its only writer."""

    def __init__(self, plant: str, seed: Any, *, record_intervals: bool = True) -> None:
        self.plant = plant
        self.seed = seed
        self.record_intervals = record_intervals
        self.interval_logs: dict[str, IntervalLog] = {}
        self.state_seconds: dict[str, dict[str, float]] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.consumed: dict[tuple[str, str, str, str], float] = defaultdict(float)
        self.produced: dict[str, dict[str, Any]] = {}
        self.failures: list[dict[str, Any]] = []
        self.listeners: list[Callable[[LedgerRecord], None]] = []
        self.end_time = 0.0
        self._sources: Callable[[], dict[str, Any]] | None = None

    # -- streaming ----------------------------------------------------------------------
    def subscribe(self, callback: Callable[[LedgerRecord], None]) -> None:
        """Call ``callback(record)`` for every record from now on (inline, must not block)."""
        self.listeners.append(callback)

    def _emit(self, record: LedgerRecord) -> None:
        for callback in self.listeners:
            callback(record)

    # -- writers (engine) ---------------------------------------------------------------
    def add_work_unit(self, code: str) -> tuple[dict[str, float], IntervalLog | None]:
        """Register ``code``; returns its state-seconds accumulator and its interval log
        (None when intervals are not recorded), both written by the engine directly."""
        acc = {state: 0.0 for state in MES_STATES}
        self.state_seconds[code] = acc
        log = IntervalLog() if self.record_intervals else None
        if log is not None:
            self.interval_logs[code] = log
        return acc, log

    def interval_count(self) -> int:
        return sum(len(log) for log in self.interval_logs.values())

    def state_interval(  # the engine appends to ``intervals`` itself; this streams
        self, work_unit: str, start: float, end: float, state: str, reason: str
    ) -> None:
        if self.listeners:
            self._emit(
                {
                    "kind": "state",
                    "t": end,
                    "work_unit": work_unit,
                    "start": start,
                    "end": end,
                    "state": state,
                    "reason": reason,
                }
            )

    def job_dispatched(
        self,
        t: float,
        job: str,
        product: str,
        line: str,
        quantity: int,
        source: str,
        stages: Sequence[tuple[str, str, str | None]] = (),
    ) -> None:
        """``stages``: (work unit, segment id, intermediate material or None) of each
        operation in routing order; an intermediate material names the lot
        ``intermediate_lot(LOT-<job>, segment)``."""
        lot = f"LOT-{job}"
        self.jobs[job] = JobRecord(
            job,
            product,
            line,
            quantity,
            t,
            source,
            output_lot=lot,
            stages=tuple(wu for wu, _, _ in stages),
            stage_segments=tuple(seg for _, seg, _ in stages),
            intermediates={
                wu: intermediate_lot(lot, seg) for wu, seg, material in stages if material
            },
        )
        if self.listeners:
            self._emit({"kind": "job", "t": t, "job_order": job, "event": "dispatched"})

    def job_started(self, t: float, job: str) -> None:
        self.jobs[job].started_at = t
        if self.listeners:
            self._emit({"kind": "job", "t": t, "job_order": job, "event": "started"})

    def job_ended(self, t: float, job: str, released: int, made: int, scrapped: int) -> None:
        rec = self.jobs[job]
        rec.ended_at, rec.released, rec.made, rec.scrapped = t, released, made, scrapped
        rec_lot = self.produced.setdefault(
            rec.output_lot,
            {
                "lot": rec.output_lot,
                "job_order": job,
                "product": rec.product,
                "quantity": 0,
                "t": t,
            },
        )
        rec_lot["quantity"] = made
        if self.listeners:
            self._emit(
                {
                    "kind": "job",
                    "t": t,
                    "job_order": job,
                    "event": "completed",
                    "made": made,
                    "scrapped": scrapped,
                }
            )
            self._emit(
                {
                    "kind": "lot_produced",
                    "t": t,
                    "job_order": job,
                    "lot": rec.output_lot,
                    "quantity": made,
                }
            )

    def job_work_unit(self, job: str, work_unit: str, actuals: JobWorkUnitActuals) -> None:
        rec = self.jobs.get(job)
        if rec is None:
            return  # continuous running (no job order): nothing to book it on
        have = rec.work_units.get(work_unit)
        if have is None:
            rec.work_units[work_unit] = actuals
            return
        have.started += actuals.started
        have.made += actuals.made
        have.scrapped += actuals.scrapped
        if have.first_start is None:
            have.first_start = actuals.first_start
        if actuals.last_end is not None:
            have.last_end = actuals.last_end

    def lot_consumed(
        self, t: float, job: str, work_unit: str, material: str, lot: str, qty: float
    ) -> None:
        self.consumed[(job, work_unit, material, lot)] += qty
        if self.listeners:
            self._emit(
                {
                    "kind": "lot_consumed",
                    "t": t,
                    "job_order": job,
                    "work_unit": work_unit,
                    "material": material,
                    "lot": lot,
                    "quantity": qty,
                }
            )

    def failure(self, t: float, work_unit: str, mode: str, basis: str, repair: float) -> None:
        rec = {"t": t, "work_unit": work_unit, "mode": mode, "basis": basis, "repair": repair}
        self.failures.append(rec)
        if self.listeners:
            self._emit({"kind": "failure", **rec})

    def set_sources(self, sources: Callable[[], dict[str, Any]]) -> None:
        """The engine's live figures (counters, buffers, lines) for ``summary``."""
        self._sources = sources

    # -- readers ------------------------------------------------------------------------
    def state_intervals(self, work_unit: str | None = None) -> list[dict[str, Any]]:
        """Closed state intervals (all, or of one work unit), ordered by start time."""
        codes = [work_unit] if work_unit is not None else list(self.interval_logs)
        out: list[dict[str, Any]] = []
        for code in codes:
            log = self.interval_logs.get(code)
            if log is None:
                continue
            for start, end, state, reason in log.rows():
                out.append(
                    {
                        "work_unit": code,
                        "start": start,
                        "end": end,
                        "state": state,
                        "reason": reason,
                    }
                )
        if work_unit is None:
            out.sort(key=lambda i: i["start"])
        return out

    def genealogy(self) -> list[dict[str, Any]]:
        """Edges lot in -> lot out, with the quantity of the input lot used: each lot drawn
        goes into the lot its operation's stage makes (an intermediate lot where the
        routing produces one), and an intermediate lot into the next stage's lot."""
        edges: dict[tuple[str, str], float] = defaultdict(float)
        for (job, wu, _mat, lot), qty in self.consumed.items():
            rec = self.jobs.get(job)
            if rec is not None:
                edges[(lot, rec.lot_for(wu))] += qty
        for rec in self.jobs.values():
            for lot, into, _wu, qty in rec.intermediate_intake():
                edges[(lot, into)] += qty
        return [{"from_lot": a, "to_lot": b, "quantity": q} for (a, b), q in sorted(edges.items())]

    def summary(self, *, include_intervals: bool = False) -> dict[str, Any]:
        """Everything, as plain JSON-serialisable data (see the module docstring)."""
        live = self._sources() if self._sources is not None else {}
        total = self.end_time
        work_units = {}
        for code, figures in live.get("work_units", {}).items():
            secs = self.state_seconds.get(code, {})
            work_units[code] = {
                **figures,
                "state_seconds": dict(secs),
                "state_share": {k: (v / total if total > 0 else 0.0) for k, v in secs.items()},
            }
        jobs = {}
        live_jobs = live.get("jobs", {})
        for job_id, rec in self.jobs.items():
            counts = live_jobs.get(job_id) or {
                "released": rec.released,
                "made": rec.made,
                "scrapped": rec.scrapped,
            }
            jobs[job_id] = {
                "product": rec.product,
                "line": rec.line,
                "quantity": rec.quantity,
                "source": rec.source,
                "status": rec.status,
                "dispatched_at": rec.dispatched_at,
                "started_at": rec.started_at,
                "ended_at": rec.ended_at,
                **counts,
                "output_lot": rec.output_lot,
                "work_units": {
                    wu: {
                        "started": a.started,
                        "made": a.made,
                        "scrapped": a.scrapped,
                        "first_start": a.first_start,
                        "last_end": a.last_end,
                    }
                    for wu, a in rec.work_units.items()
                },
            }
        out: dict[str, Any] = {
            "plant": self.plant,
            "seed": self.seed,
            "until": total,
            "work_units": work_units,
            "lines": live.get("lines", {}),
            "buffers": live.get("buffers", {}),
            "job_orders": jobs,
            "lots": {
                "consumed": [
                    {"job_order": j, "work_unit": w, "material": m, "lot": lot, "quantity": q}
                    for (j, w, m, lot), q in self.consumed.items()
                ],
                "produced": list(self.produced.values()),
                "genealogy": self.genealogy(),
            },
            "failures": len(self.failures),
            "state_intervals": self.interval_count(),
        }
        if include_intervals:
            out["state_interval_list"] = self.state_intervals()
        return out
