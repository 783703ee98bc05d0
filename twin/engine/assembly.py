"""Assembly lines in the engine: feeder branches that release parts, and assembly (merge)
stations that join a kit of parts from several input buffers into one unit.

The flow is ``plant_models.assembly.line_flow``'s. Three pieces, each standing in for one
the serial line already has, so a work unit's cycle (``stations``) is unchanged:

- ``Branch``: what the first station of a serial line asks for a new unit
  (``try_release`` / ``release_wait``), for the first station of each feeder branch. It
  releases ``quantity x parts_per_unit`` parts of each job order and one more for each
  part scrapped on its branch (the kit must be complete: a feeder makes its parts good);
- ``Kit``: what a station asks its input buffer for (``try_get`` / ``get_wait``), for an
  assembly. It takes the parts of one assembled unit from every input at once, only when
  all are there (the parts wait in their buffers meanwhile), and hands on one unit;
- ``InputBuffer``: a buffer that tells its kit when a part arrives (or a blocked feeder
  offers one), so the serial line's buffers pay nothing for it.

The assembled unit belongs to the job order of its first part and entered the line when
its earliest part did (flow time); the line's WIP drops by the parts joined less one.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from plant_models.assembly import line_flow
from plant_models.schema import Buffer
from twin.engine.buffers import BufferSim
from twin.engine.common import INFINITE, SimGen
from twin.engine.jobs import Job
from twin.hooks import IDLE
from twin.streams import sampler, substream

if TYPE_CHECKING:
    from twin.engine.lines import LineSim
    from twin.engine.stations import WorkUnitSim


class Wakes(Protocol):
    """What an ``InputBuffer`` wakes: a ``Kit``, or a merge (``splits.Merge``)."""

    def arrived(self) -> None: ...


class InputBuffer(BufferSim):
    """An assembly's (or merge's) input buffer: a ``BufferSim`` that wakes its ``Kit`` on
    each arrival."""

    __slots__ = ("kit",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.kit: Wakes | None = None

    def try_put(self, unit: Any) -> bool:
        ok = BufferSim.try_put(self, unit)
        if ok and self.kit is not None:
            self.kit.arrived()
        return ok

    def put_rework(self, unit: Any) -> None:
        BufferSim.put_rework(self, unit)
        if self.kit is not None:
            self.kit.arrived()

    def put_wait(self, unit: Any, wu: Any = None) -> simpy.Event:
        ev = BufferSim.put_wait(self, unit, wu)
        if self.kit is not None:  # a blocked feeder offers its part (capacity 0)
            self.kit.arrived()
        return ev

    def repaired(self, wu: Any) -> None:
        BufferSim.repaired(self, wu)
        if self.kit is not None:  # a repaired feeder offers the part it held
            self.kit.arrived()


class StationInput:
    """The input side of a work unit fed by several buffers (an assembly's kit, a merge):
    the unit waits on ``get_wait``; a part arriving in any of them (``arrived``), or the
    unit repaired, hands it what ``try_get`` finds, else looks again when a part on a
    conveyor becomes ready (``_wake_when_ready``)."""

    __slots__ = ("env", "waiting", "wu")

    def __init__(self, wu: WorkUnitSim) -> None:
        self.env = wu.env
        self.wu = wu
        self.waiting: simpy.Event | None = None

    def try_get(self) -> Any:
        raise NotImplementedError

    def _wake_when_ready(self) -> None:
        raise NotImplementedError

    def get_wait(self, wu: Any = None) -> simpy.Event:
        """An event whose value is the next unit to process (the work unit is starved)."""
        ev = self.env.event()
        self.waiting = ev
        self._wake_when_ready()
        return ev

    def arrived(self) -> None:
        """A part arrived somewhere: hand the waiting work unit what it needs, if there."""
        ev = self.waiting
        if ev is None or self.wu.broken:
            return
        unit = self.try_get()
        if unit is None:
            self._wake_when_ready()
            return
        self.waiting = None
        ev.succeed(unit)

    def repaired(self, wu: Any) -> None:
        self.arrived()


class Kit(StationInput):
    """The input side of an assembly work unit: ``inputs`` as (buffer, parts per unit)."""

    __slots__ = ("_timer_at", "inputs", "line")

    def __init__(self, line: LineSim, wu: WorkUnitSim, inputs: list[tuple[InputBuffer, int]]):
        super().__init__(wu)
        self.line = line
        self.inputs = inputs
        self._timer_at = -1.0
        for buf, _ in inputs:
            buf.kit = self

    @staticmethod
    def _available(buf: BufferSim, n: int, now: float) -> int:
        """Parts ``buf`` can hand over now, counted up to ``n``: ready units, then units
        that blocked feeders hold (each steps in as one is taken, without a conveyor)."""
        count = 0
        for ready, _, _ in buf.items:
            if ready > now or count >= n:
                break
            count += 1
        if count < n and buf._transfer is None:
            count += sum(1 for _, _, w in buf._putters if not (w is not None and w.broken))
        return count

    def try_get(self) -> tuple[Job, float] | None:
        """The assembled unit's parts, taken from every input, if all are there."""
        now = self.env._now
        for buf, n in self.inputs:
            if self._available(buf, n, now) < n:
                return None
        parts: list[tuple[Job, float]] = []
        for buf, n in self.inputs:
            for _ in range(n):
                part = buf.try_get()
                assert part is not None, f"{buf.code}: counted part missing"
                parts.append(part)
        return self.line.joined(parts)

    def _wake_when_ready(self) -> None:
        """Parts on a conveyor become ready later: look again when the next one does."""
        now = self.env._now
        due = INFINITE
        for buf, n in self.inputs:
            ready = [r for r, _, _ in buf.items if r > now]
            if ready and self._available(buf, n, now) < n:
                due = min(due, ready[0])
        if due < INFINITE and due != self._timer_at:
            self._timer_at = due
            timer = self.env.timeout(due - now)
            timer.callbacks.append(lambda _ev: self.arrived())


class Branch:
    """The release of new parts at the first station of a feeder branch."""

    def __init__(self, line: LineSim, parts_per_unit: int) -> None:
        self.line = line
        self.env = line.env
        self.per = parts_per_unit
        self.queue: deque[Job] = deque()
        self.current: Job | None = None
        self.released: dict[Job, int] = {}
        self.extra: dict[Job, int] = {}
        self._wait: simpy.Event | None = None

    def _target(self, job: Job) -> float:
        return job.quantity * self.per + self.extra.get(job, 0)

    def _job_with_work(self) -> Job | None:
        job = self.current
        if job is not None and self.released.get(job, 0) < self._target(job):
            return job
        while self.queue:
            job = self.queue.popleft()
            self.current = job
            if self.released.get(job, 0) < self._target(job):
                return job
        self.current = None
        return None

    def try_release(self) -> tuple[Job, float] | None:
        job = self._job_with_work()
        if job is None:
            return None
        line = self.line
        line._wip_changes(+1)
        line.entered += 1
        self.released[job] = self.released.get(job, 0) + 1
        job.released += 1
        job.outstanding += 1
        if not job.started:
            line._started(job)
        return (job, self.env._now)

    def release_wait(self, wu: WorkUnitSim) -> SimGen:
        while True:
            unit = self.try_release()
            if unit is not None:
                return unit
            wu.enter(IDLE, "idle: no job order")
            if self._wait is None:
                self._wait = self.env.event()
            yield self._wait

    def _wake(self) -> None:
        if self._wait is not None:
            wake, self._wait = self._wait, None
            wake.succeed()

    def dispatch(self, job: Job) -> None:
        self.queue.append(job)
        self._wake()

    def replace(self, job: Job) -> None:
        """A part of ``job`` was scrapped on this branch: release one more."""
        self.extra[job] = self.extra.get(job, 0) + 1
        job.release_total += 1
        if self.current is None:  # the head moved past the job order: back to it
            self.queue.appendleft(job)
        elif self.current is not job:
            self.queue.appendleft(self.current)
            self.queue.appendleft(job)
            self.current = None
        self._wake()


def connect(line: LineSim) -> None:
    """Wire ``line``'s stations by its flow: buffers, kits, feeder branches."""
    spec = line.spec
    engine = line.engine
    flow = line_flow(spec)
    by_code = {wu.code: wu for wu in line.work_units}
    stations = [[by_code[u.code] for u in units] for _, units in flow.stations]
    by_pair: dict[tuple[str, str], Buffer] = {(b.upstream, b.downstream): b for b in spec.buffers}
    made: dict[str, BufferSim] = {}
    for k, nxt in enumerate(flow.successor):
        if nxt is None:
            continue
        up, down = flow.stations[k][0], flow.stations[nxt][0]
        cls = InputBuffer if nxt in flow.assemblies else BufferSim
        b = by_pair.get((up, down))
        if b is None:
            buf: BufferSim = cls(engine.env, f"{up}>{down}", 0, None)
        else:
            transfer = (
                sampler(
                    b.transfer_time, substream(engine.root, f"{b.code}/transfer"), duration=True
                )
                if b.transfer_time is not None
                else None
            )
            buf = cls(engine.env, b.code, b.capacity, transfer)
            line.buffers.append(buf)
            made[b.code] = buf
        for wu in stations[k]:
            wu.downstream = buf
        if nxt not in flow.assemblies:
            for wu in stations[nxt]:
                wu.upstream = buf
    for k in flow.assemblies:
        wu = stations[k][0]
        assembly = wu.spec.assembly
        assert assembly is not None
        inputs = []
        for inp in assembly.inputs:
            buf = made[inp.buffer]
            assert isinstance(buf, InputBuffer)
            inputs.append((buf, inp.quantity))
        wu.upstream = Kit(line, wu, inputs)  # type: ignore[assignment]
    per_unit = 0
    branches: dict[int, Branch] = {}
    for k in flow.heads:
        branch = Branch(line, flow.parts_per_unit(k))
        per_unit += branch.per
        branches[k] = branch
        for wu in stations[k]:
            wu.first = True
            wu.source = branch
    for k in range(len(stations)):
        head = flow.feeder_head(k)
        if head is not None:
            for wu in stations[k]:
                wu.feeder = branches[head]
    line.branches = list(branches.values())
    line.parts_per_unit = per_unit


def feeder_scrapped(wu: WorkUnitSim, unit: tuple[Job, float]) -> None:
    """``wu`` scrapped a part on a feeder branch: its head releases one more."""
    feeder = wu.feeder
    assert feeder is not None
    feeder.replace(unit[0])


__all__ = ["Branch", "InputBuffer", "Kit", "connect", "feeder_scrapped"]
