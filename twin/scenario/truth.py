"""Ground truth as the plant published it: a ``PlantObserver`` that keeps the books.

Attached to the engine beside the OPC UA server, it sees every change first-hand (state,
cumulative PackML counters, current job and lot) and keeps, per work unit, good, scrap and
seconds per state, and per job order the units made at each work unit. It is the twin side
of the reconciliation; when the engine's own ledger knows more (lots, genealogy) the runner
merges that in.
"""

from __future__ import annotations

import math
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

    def counters(self) -> dict[str, tuple[int, int, int]]:
        """Per work unit: the cumulative PackML counters it published last (processed,
        defective, consumed)."""
        return {wu: (u.processed, u.defective, u.consumed) for wu, u in self._units.items()}

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

    def order_unit_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(job order, work unit) -> (good, scrap) the unit published while on that order."""
        return {key: (good, scrap) for key, (good, scrap) in self._by_order.items()}

    def order_work_units(self) -> dict[str, set[str]]:
        """Which work units worked on each job order."""
        seen: dict[str, set[str]] = defaultdict(set)
        for jo, wu in self._by_order:
            seen[jo].add(wu)
        return dict(seen)


MAX_SLICES = 20_000
"""Slices of the drawn timeline over all work units (a few bars each at most)."""


def state_timeline(
    intervals: list[StateInterval], end: float, buckets: int = 1500
) -> tuple[list[StateInterval], float]:
    """The state timeline at a readable resolution, every second of the ledger kept.

    Time is cut into ``buckets`` equal slices per work unit. Within a slice each state the
    unit was in is drawn once, as long as it lasted in that slice, in the order the states
    first occurred there; equal neighbours are merged. So a state that fills a day is one
    bar, and a line that flickers between running and starved every second (hundreds of
    thousands of intervals, exact in the reconciliation) is drawn as at most a few bars a
    slice whose lengths still add up, per state, to the reconciled seconds. Intervals past
    ``end`` are drawn in the last slice. A plant of many work units gets fewer slices
    (``MAX_SLICES`` in all), so the page stays drawable. Returns the intervals and the
    slice length (s).
    """
    if end <= 0 or not intervals:
        return list(intervals), 0.0
    units = len({iv.work_unit for iv in intervals})
    buckets = max(min(buckets, MAX_SLICES // units), 1)
    step = max(end / buckets, 1.0)
    n = max(math.ceil(end / step), 1)

    def slice_of(t: float) -> int:
        # ``t // step`` is a float floor: 0.3 // 0.1 == 2.0, so correct by one either way.
        k = min(max(int(t / step), 0), n - 1)
        if k > 0 and k * step > t:
            k -= 1
        elif k < n - 1 and (k + 1) * step <= t:
            k += 1
        return k

    # unit -> slice -> state -> [seconds, first instant, last instant]
    per_unit: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(dict)
    for iv in intervals:
        if iv.end <= iv.start:
            continue
        slices = per_unit[iv.work_unit]
        first, last = slice_of(iv.start), slice_of(iv.end)
        for k in range(first, last + 1):
            lo = max(iv.start, k * step)
            hi = iv.end if k == n - 1 else min(iv.end, (k + 1) * step)
            if hi <= lo:
                continue
            acc = slices.setdefault(k, {}).setdefault(iv.state, [0.0, lo, hi])
            acc[0] += hi - lo
            acc[1], acc[2] = min(acc[1], lo), max(acc[2], hi)
    out: list[StateInterval] = []
    for wu in sorted(per_unit):
        current: StateInterval | None = None
        for k in sorted(per_unit[wu]):
            pieces = sorted(per_unit[wu][k].items(), key=lambda kv: (kv[1][1], kv[1][2], kv[0]))
            t = pieces[0][1][1]  # the slice is drawn from its first covered instant
            for state, (seconds, _, _) in pieces:
                if (
                    current is not None
                    and current.state == state
                    and abs(current.end - t) <= 1e-9 * max(1.0, t)
                ):
                    current.end = t + seconds
                else:
                    current = StateInterval(work_unit=wu, state=state, start=t, end=t + seconds)
                    out.append(current)
                t += seconds
    return out, step
