"""Splits by product in the engine: a station whose units leave by a buffer chosen by
their product, and a merge station that takes units from several buffers, first come
first served. The flow is ``plant_models.splits.split_flow``'s.

Like ``assembly``, each piece stands in for one the serial line has, so a work unit's
cycle (``stations``) is unchanged: a ``Split`` is a station's downstream buffer (it hands
``try_put`` / ``put_wait`` to the buffer of the unit's product), a ``Merge`` a station's
upstream buffer (``try_get`` / ``get_wait`` over its inputs, which are
``assembly.InputBuffer``s and wake it when a unit arrives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import simpy

from plant_models.splits import split_flow
from twin.engine.assembly import InputBuffer, StationInput
from twin.engine.buffers import BufferSim
from twin.engine.common import INFINITE
from twin.engine.jobs import Job
from twin.streams import sampler, substream

if TYPE_CHECKING:
    from twin.engine.lines import LineSim
    from twin.engine.stations import WorkUnitSim


class Split:
    """A split station's way out: the buffer of each product, else the default one."""

    __slots__ = ("buffers", "default", "routes")

    def __init__(self, routes: dict[str, BufferSim], default: BufferSim | None) -> None:
        self.routes = routes
        self.default = default
        self.buffers = list({id(b): b for b in [*routes.values(), default] if b}.values())

    def _to(self, unit: tuple[Job, float]) -> BufferSim:
        buf = self.routes.get(unit[0].product, self.default)
        assert buf is not None, f"no way out for product {unit[0].product}"
        return buf

    def try_put(self, unit: tuple[Job, float]) -> bool:
        return self._to(unit).try_put(unit)

    def put_wait(self, unit: tuple[Job, float], wu: Any = None) -> simpy.Event:
        return self._to(unit).put_wait(unit, wu)

    def repaired(self, wu: Any) -> None:
        for buf in self.buffers:
            buf.repaired(wu)


class Merge(StationInput):
    """A merge station's input: the unit that has waited longest in any of ``inputs``."""

    __slots__ = ("inputs",)

    def __init__(self, wu: WorkUnitSim, inputs: list[InputBuffer]) -> None:
        super().__init__(wu)
        self.inputs = inputs
        for buf in inputs:
            buf.kit = self

    def try_get(self) -> Any:
        now = self.env._now
        best: InputBuffer | None = None
        first = INFINITE
        for buf in self.inputs:
            if buf.items:
                ready, entered, _ = buf.items[0]
                if ready <= now and entered < first:
                    best, first = buf, entered
            elif (
                now < first
                and buf._transfer is None
                and any(not (w is not None and w.broken) for _, _, w in buf._putters)
            ):  # a blocked machine hands its unit straight on (capacity 0)
                best, first = buf, now
        return None if best is None else best.try_get()

    def _wake_when_ready(self) -> None:
        """A unit on a conveyor becomes ready later: look again when the first one does."""
        now = self.env._now
        heads = [b.items[0][0] for b in self.inputs if b.items and b.items[0][0] > now]
        if heads:
            timer = self.env.timeout(min(heads) - now)
            timer.callbacks.append(lambda _ev: self.arrived())


def connect_splits(line: LineSim) -> None:
    """Wire a split line's stations by its flow: buffers, splits, merges."""
    spec = line.spec
    engine = line.engine
    flow = split_flow(spec)
    by_code = {wu.code: wu for wu in line.work_units}
    stations = [[by_code[u.code] for u in units] for _, units in flow.stations]
    specs = {b.code: b for b in spec.buffers}
    merging: dict[int, list[InputBuffer]] = {}
    for k, routes in enumerate(flow.out):
        if not routes:
            continue  # the last station: its units leave the line
        up = flow.stations[k][0]
        by_product: dict[str, BufferSim] = {}
        default: BufferSim | None = None
        for target, products, code in routes:
            cls = InputBuffer if len(flow.preds[target]) > 1 else BufferSim
            if code is None:
                buf: BufferSim = cls(engine.env, f"{up}>{flow.stations[target][0]}", 0, None)
            else:
                b = specs[code]
                transfer = (
                    sampler(
                        b.transfer_time, substream(engine.root, f"{code}/transfer"), duration=True
                    )
                    if b.transfer_time is not None
                    else None
                )
                buf = cls(engine.env, code, b.capacity, transfer)
                line.buffers.append(buf)
            if products is None:
                default = buf
            else:
                by_product.update(dict.fromkeys(products, buf))
            if isinstance(buf, InputBuffer):
                merging.setdefault(target, []).append(buf)
            else:
                for wu in stations[target]:
                    wu.upstream = buf
        out: BufferSim | Split = (
            default if default is not None and not by_product else Split(by_product, default)
        )
        for wu in stations[k]:
            wu.downstream = out  # type: ignore[assignment]
    for target, inputs in merging.items():
        wu = stations[target][0]
        wu.upstream = Merge(wu, inputs)  # type: ignore[assignment]


__all__ = ["Merge", "Split", "connect_splits"]
