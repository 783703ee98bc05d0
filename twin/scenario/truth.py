"""Ground truth as the plant published it: a ``PlantObserver`` that keeps the books.

Attached to the engine beside the OPC UA server, it sees every change first-hand (state,
cumulative PackML counters, current job and lot) and keeps, per work unit, good, scrap and
seconds per state, and per job order the units made at each work unit. It is the twin side
of the reconciliation; when the engine's own ledger knows more (lots, genealogy) the runner
merges that in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from twin.hooks import PackMLState
from twin.scenario.reconcile import OrderRecord, Records, UnitRecord
from twin.scenario.report import StateInterval


@dataclass
class _Unit:
    state: str | None = None
    since: float = 0.0
    processed: int = 0
    defective: int = 0
    consumed: int = 0
    job: str = ""
    lot: str = ""
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))


class TruthRecorder:
    """Implements ``twin.hooks.PlantObserver``; read the books with :meth:`records`."""

    def __init__(self, keep_intervals: bool = True) -> None:
        self._units: dict[str, _Unit] = defaultdict(_Unit)
        # (job order, work unit) -> [good, scrap]
        self._by_order: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.intervals: list[StateInterval] = []
        self.keep_intervals = keep_intervals
        self.observed = 0

    # -- PlantObserver --------------------------------------------------------------------

    def on_state(
        self,
        t: float,
        work_unit: str,
        state: str,
        packml_state: PackMLState,
        reason: str,
        wall: float | None,
    ) -> None:
        self.observed += 1
        u = self._units[work_unit]
        if u.state is not None and t > u.since:
            u.seconds[u.state] += t - u.since
            if self.keep_intervals:
                self.intervals.append(
                    StateInterval(work_unit=work_unit, state=u.state, start=u.since, end=t)
                )
        u.state = state
        u.since = t

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        self.observed += 1
        u = self._units[work_unit]
        d_proc, d_def = processed - u.processed, defective - u.defective
        u.processed, u.defective, u.consumed = processed, defective, consumed
        if u.job:
            tally = self._by_order[(u.job, work_unit)]
            tally[0] += d_proc - d_def
            tally[1] += d_def

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        self.observed += 1

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        self.observed += 1
        u = self._units[work_unit]
        u.job, u.lot = job_order, material_lot

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
        self.observed += 1

    # -- the books ------------------------------------------------------------------------

    def close(self, t: float) -> None:
        """Cut every open state at ``t`` (the end of the run) so durations add up."""
        for wu, u in self._units.items():
            if u.state is not None and t > u.since:
                u.seconds[u.state] += t - u.since
                if self.keep_intervals:
                    self.intervals.append(
                        StateInterval(work_unit=wu, state=u.state, start=u.since, end=t)
                    )
                u.since = t

    def records(self, last_work_unit_of_order: dict[str, str] | None = None) -> Records:
        """Per work unit and per job order. An order's good and scrap are those of the
        last work unit that worked on it in flow order (``last_work_unit_of_order``), i.e.
        finished units, as an MES counts an order's actual quantity."""
        out = Records()
        for wu, u in sorted(self._units.items()):
            out.work_units[wu] = UnitRecord(
                good=u.processed - u.defective,
                scrap=u.defective,
                state_seconds={k: round(v, 3) for k, v in u.seconds.items() if v > 0},
            )
        orders: dict[str, OrderRecord] = {}
        last = last_work_unit_of_order or {}
        for (jo, wu), (good, scrap) in sorted(self._by_order.items()):
            if jo in last and last[jo] != wu:
                continue
            rec = orders.setdefault(jo, OrderRecord())
            if jo in last:
                rec.good, rec.scrap = good, scrap
            else:
                rec.good, rec.scrap = rec.good + good, rec.scrap + scrap
        out.job_orders = orders
        return out

    def order_work_units(self) -> dict[str, set[str]]:
        """Which work units worked on each job order."""
        seen: dict[str, set[str]] = defaultdict(set)
        for jo, wu in self._by_order:
            seen[jo].add(wu)
        return dict(seen)


def dominant_timeline(
    intervals: list[StateInterval], end: float, buckets: int = 1500
) -> tuple[list[StateInterval], float]:
    """The state timeline at a readable resolution: time is cut into ``buckets`` equal
    slices per work unit, each shown as the state that filled most of it, and equal
    neighbours are merged. A line that flickers between blocked and starved every second
    stays exact in the reconciliation (seconds per state) but would make a Gantt of
    hundreds of thousands of bars. Returns the intervals and the slice length (s)."""
    if end <= 0 or not intervals:
        return list(intervals), 0.0
    step = max(end / buckets, 1.0)
    per_unit: dict[str, list[dict[str, float]]] = defaultdict(
        lambda: [defaultdict(float) for _ in range(int(end // step) + 1)]
    )
    for iv in intervals:
        slices = per_unit[iv.work_unit]
        t = iv.start
        while t < iv.end:
            k = min(int(t // step), len(slices) - 1)
            stop = min(iv.end, (k + 1) * step)
            if stop <= t:  # the last slice is open-ended
                stop = iv.end
            slices[k][iv.state] += stop - t
            t = stop
    out: list[StateInterval] = []
    for wu in sorted(per_unit):
        current: StateInterval | None = None
        for k, seconds in enumerate(per_unit[wu]):
            if not seconds:
                continue
            state = max(seconds.items(), key=lambda kv: (kv[1], kv[0]))[0]
            start, stop = k * step, min((k + 1) * step, end)
            if current is not None and current.state == state and current.end == start:
                current.end = stop
            else:
                current = StateInterval(work_unit=wu, state=state, start=start, end=stop)
                out.append(current)
    return out, step
