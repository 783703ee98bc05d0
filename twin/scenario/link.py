"""How equipment traffic reaches the MES during a run: the equipment link seam.

The intended link is the standard one: twin engine -> twin OPC UA server -> (fault proxy)
-> ``mes_core.connectors.opcua`` -> MES ingest. Where those parts are not available the
runner uses :class:`DirectCollector`, a stand-in for the connector that turns the engine's
observer calls into the same wire-contract plant events (``mes_core.schemas.plant_events``)
with the connector's semantics: deltas from the cumulative PackML counters, a strictly
growing sequence per source, store-and-forward while the MES is unreachable (nothing is
dropped, everything is replayed), idempotent on (source, sequence). The report says which
link carried the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from mes_core.schemas.plant_events import (
    AlarmEvent,
    CountEvent,
    EquipmentState,
    IngestResult,
    MeasurementEvent,
    PlantEvent,
    StateChangeEvent,
)
from plant_models.batch import PHASE_NUMBER
from twin.hooks import PackMLState

Poster = Callable[[list[PlantEvent]], IngestResult]
INF = float("inf")


@dataclass(frozen=True)
class Sampling:
    """Which inspection characteristic a process value measures, and how often."""

    characteristic: str
    every_seconds: float | None = None
    every_units: int | None = None

    def due(self, t: float, processed: int, last: tuple[float, int] | None) -> bool:
        """Whether a value read at ``t``, with ``processed`` units made, is a sample of this
        plan, given the ``(t, processed)`` of the previous sample (None: no sample yet)."""
        if last is None:
            return self.every_units is None or processed >= 1  # nothing made: nothing to inspect
        if self.every_seconds is not None and t - last[0] < self.every_seconds - 1e-9:
            return False
        return self.every_units is None or processed - last[1] >= self.every_units


class InProcessChecks:
    """The in-process checks a link takes from process values, as a connector is set up
    to: (work unit, process value) -> its ``Sampling``; a value is a sample only while
    the machine runs (a value read while it stands measures no product) and when its
    plan is due. Shared by the direct collector and the connector links."""

    def __init__(self, characteristics: dict[tuple[str, str], Sampling]) -> None:
        self.characteristics = characteristics
        self.samples: list[tuple[float, str, str, float]] = []
        """Every in-process check taken: (time, work unit, process value, value)."""
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def take(
        self, t: float, work_unit: str, name: str, value: float, state: str | None, processed: int
    ) -> Sampling | None:
        """The plan whose sample this value is (recorded as taken), else None."""
        plan = self.characteristics.get((work_unit, name))
        if plan is None or state != "running":
            return None
        key = (work_unit, name)
        if not plan.due(t, processed, self._last.get(key)):
            return None
        self._last[key] = (t, processed)
        self.samples.append((t, work_unit, name, value))
        return plan


@dataclass
class LinkStats:
    """Counts of one link: events produced, posts made, accepted, duplicates, replays."""

    produced: int = 0
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    replayed: int = 0
    failures: int = 0
    unplanned_reconnects: int = 0
    """Times the MES's collector lost the plant's server without a fault the bench
    injected (a loaded machine, say) and resynchronised from current values: changes
    made during such a gap did not reach it (cumulative counts resynchronise; states do
    not), so 'nothing lost' cannot be vouched for."""


class EquipmentLink(Protocol):
    """What the runner needs of whatever carries plant traffic to the MES."""

    name: str
    stats: LinkStats

    def pump(self) -> None:
        """Move what is pending towards the MES (non-blocking best effort)."""

    def drain(self, timeout: float) -> bool:
        """Deliver everything pending; True when nothing is left."""

    def pending(self) -> int:
        """Events produced but not yet acknowledged by the MES."""

    def deliver_until(self, blocked: Callable[[PlantEvent], bool]) -> bool:
        """Deliver pending events in order up to (not including) the first ``blocked``
        one; True when it stopped there, False when all went (or the MES is unreachable)."""


class DirectCollector:
    """Observer -> plant events -> MES, with store-and-forward (see the module docstring).

    ``characteristics`` maps (work unit, process value) to the inspection characteristic a
    value measures and its sampling plan (every N seconds or every N units); only those
    samples are sent (as measurements), as a connector is configured to take in-process
    checks, not every PLC scan. ``start`` is the wall-clock instant of simulated time 0.
    """

    name = "direct collector (stand-in for OPC UA + connector)"

    def __init__(
        self,
        post: Poster,
        *,
        source: str,
        start: datetime,
        characteristics: dict[tuple[str, str], Sampling],
        batch_size: int = 2000,
        count_period: float = 5.0,
    ) -> None:
        self._post = post
        self.source = source
        self.start = start
        self.checks = InProcessChecks(characteristics)
        self.samples = self.checks.samples
        """Every in-process check sent: (time, work unit, process value, value)."""
        self.batch_size = batch_size
        self._seq = 0
        self._spool: deque[PlantEvent] = deque()
        self._counters: dict[str, tuple[int, int]] = {}
        self._job: dict[str, tuple[str, str]] = {}
        self._attempted: set[int] = set()
        self._state: dict[str, str] = {}
        # Count deltas per work unit held back up to ``count_period`` simulated seconds,
        # as an OPC UA subscription samples a cumulative counter at its publishing
        # interval: [good, scrap, time of the last unit].
        self.count_period = count_period
        self._pending: dict[str, list[float]] = {}
        self._last_count: dict[str, float] = {}
        self.stats = LinkStats()
        self.last_error = ""

    def _ts(self, t: float) -> datetime:
        # Millisecond resolution, as OPC UA source timestamps travel (100 ns ticks, but
        # the MES stores ms): the reconciliation's duration tolerance covers this.
        return self.start + timedelta(milliseconds=round(t * 1000))

    def _next(self) -> int:
        self._seq += 1
        self.stats.produced += 1
        return self._seq

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
        self._state[work_unit] = state
        self._spool.append(
            StateChangeEvent(
                source=self.source,
                sequence=self._next(),
                work_unit=work_unit,
                timestamp=self._ts(t),
                state=EquipmentState(state),
                reason=reason[:200],
                packml_state=int(packml_state),
            )
        )

    def on_counters(
        self,
        t: float,
        work_unit: str,
        processed: int,
        defective: int,
        consumed: int,
        wall: float | None,
    ) -> None:
        p0, d0 = self._counters.get(work_unit, (0, 0))
        dp, dd = processed - p0, defective - d0
        self._counters[work_unit] = (processed, defective)
        if dp <= 0 and dd <= 0:
            return
        pending = self._pending.setdefault(work_unit, [0, 0, t])
        pending[0] += max(dp - dd, 0)
        pending[1] += max(dd, 0)
        pending[2] = t
        if t - self._last_count.get(work_unit, -INF) >= self.count_period:
            self._emit_count(work_unit)

    def _emit_count(self, work_unit: str) -> None:
        pending = self._pending.pop(work_unit, None)
        if pending is None:
            return
        good, scrap, t = pending
        self._last_count[work_unit] = t
        job, lot = self._job.get(work_unit, ("", ""))
        self._spool.append(
            CountEvent(
                source=self.source,
                sequence=self._next(),
                work_unit=work_unit,
                timestamp=self._ts(t),
                good=int(good),
                scrap=int(scrap),
                job_order=job or None,
                material_lot=lot or None,
            )
        )

    def flush_counts(self) -> None:
        """Spool every count delta held back for coalescing (before a delivery)."""
        for work_unit in sorted(self._pending):
            self._emit_count(work_unit)

    def on_value(
        self, t: float, work_unit: str, name: str, value: float, wall: float | None
    ) -> None:
        processed = self._counters.get(work_unit, (0, 0))[0]
        plan = self.checks.take(t, work_unit, name, value, self._state.get(work_unit), processed)
        if plan is None:
            return
        characteristic = plan.characteristic
        job, lot = self._job.get(work_unit, ("", ""))
        self._spool.append(
            MeasurementEvent(
                source=self.source,
                sequence=self._next(),
                work_unit=work_unit,
                timestamp=self._ts(t),
                characteristic=characteristic,
                value=value,
                job_order=job or None,
                material_lot=lot or None,
            )
        )

    def on_phase(
        self,
        t: float,
        work_unit: str,
        batch_id: str,
        quantity: float,
        phase_number: int,
        phase_name: str,
        wall: float | None,
    ) -> None:
        """A batch unit's phase (``twin.hooks.BatchObserver``): the ``PhaseNumber`` process
        value's measurement event, as the connector makes it from the OPC UA server's."""
        job, lot = self._job.get(work_unit, ("", ""))
        self._spool.append(
            MeasurementEvent(
                source=self.source,
                sequence=self._next(),
                work_unit=work_unit,
                timestamp=self._ts(t),
                characteristic=PHASE_NUMBER,
                value=float(phase_number),
                job_order=job or None,
                material_lot=lot or None,
            )
        )

    def on_job(
        self,
        t: float,
        work_unit: str,
        job_order: str,
        product: str,
        material_lot: str,
        wall: float | None,
    ) -> None:
        # Units counted so far belong to the job the work unit is leaving.
        self._emit_count(work_unit)
        self._job[work_unit] = (job_order, material_lot)

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
        self._spool.append(
            AlarmEvent(
                source=self.source,
                sequence=self._next(),
                work_unit=work_unit,
                timestamp=self._ts(t),
                alarm=alarm[:100],
                severity=max(1, min(severity, 1000)),
                message=message[:500],
                active=active,
            )
        )

    # -- delivery ---------------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._spool) + len(self._pending)

    def pump(self) -> None:
        """Post full batches; on failure keep them spooled for the next pump."""
        while len(self._spool) >= self.batch_size:
            if not self._send_one():
                return

    def drain(self, timeout: float) -> bool:
        import time

        self.flush_counts()
        deadline = time.monotonic() + timeout
        while self._spool:
            if not self._send_one():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.5)
        return True

    def deliver_until(self, blocked: Callable[[PlantEvent], bool]) -> bool:
        self.flush_counts()
        while self._spool:
            n = 0
            limit = min(self.batch_size, len(self._spool))
            while n < limit and not blocked(self._spool[n]):
                n += 1
            if n == 0:
                return True
            if not self._send_one(n):
                return False
        return False

    def _send_one(self, size: int | None = None) -> bool:
        size = min(size or self.batch_size, self.batch_size, len(self._spool))
        batch = [self._spool[i] for i in range(size)]
        replay = sum(1 for e in batch if e.sequence in self._attempted)
        self._attempted.update(e.sequence for e in batch)
        self.stats.sent += len(batch)
        self.stats.replayed += replay
        try:
            result = self._post(batch)
        except Exception as exc:  # noqa: BLE001 - any transport failure means "spool and retry"
            self.stats.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.stats.accepted += result.accepted
        self.stats.duplicates += result.duplicates
        for _ in batch:
            self._spool.popleft()
        # Acknowledged sequences need no replay bookkeeping any more.
        self._attempted.difference_update(e.sequence for e in batch)
        return True
