"""Process values: sampled at their update period with noise, drift and per-product
distributions, one scan per period per work unit (as its PLC would)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plant_models.schema import ProcessValue
from twin.engine.common import INFINITE, SimGen
from twin.streams import sampler, substream

if TYPE_CHECKING:
    import simpy

    from twin.engine.jobs import Job
    from twin.engine.plant import Engine
    from twin.engine.stations import WorkUnitSim


class ProcessValueSim:
    """A process value sampled every ``update_period`` with noise and drift (by its work
    unit's scan, ``WorkUnitSim._scan``)."""

    __slots__ = (
        "by_product",
        "count",
        "deadband",
        "drift",
        "last",
        "maximum",
        "minimum",
        "name",
        "noise",
        "offset",
        "published",
        "spec",
        "total",
        "wu",
    )

    def __init__(self, engine: Engine, wu: WorkUnitSim, spec: ProcessValue) -> None:
        self.wu = wu
        self.spec = spec
        self.name = spec.name
        self.deadband = spec.deadband
        self.noise = sampler(
            spec.distribution, substream(engine.root, f"{wu.code}/pv/{spec.name}"), duration=False
        )
        # One stream per product, so adding a product leaves the others' values unchanged.
        self.by_product = {
            product: sampler(
                dist,
                substream(engine.root, f"{wu.code}/pv/{spec.name}/{product}"),
                duration=False,
            )
            for product, dist in spec.per_product.items()
        }
        self.drift = spec.drift_per_hour / 3600.0
        self.offset = 0.0
        self.last: float | None = None
        self.published: float | None = None
        self.count = 0
        self.total = 0.0
        self.minimum = INFINITE
        self.maximum = -INFINITE
        engine.values[(wu.code, spec.name)] = self

    def figures(self) -> dict[str, Any]:
        return {
            "unit": self.spec.unit,
            "samples": self.count,
            "mean": self.total / self.count if self.count else None,
            "min": self.minimum if self.count else None,
            "max": self.maximum if self.count else None,
            "last": self.last,
        }


class ScansValues:
    """A work unit's PLC scan of its process values (mixed into ``WorkUnitSim``)."""

    if not TYPE_CHECKING:  # mypy would take the empty slots for the work unit's
        __slots__ = ()

    if TYPE_CHECKING:  # what this part uses of the work unit (``WorkUnitSim`` sets it)
        env: simpy.Environment
        engine: Engine
        code: str
        job: Job | None

    def _scan(self, period: float, values: list[ProcessValueSim]) -> SimGen:
        """Sample ``values`` every ``period`` s (noise, drift), publishing what moved more
        than its deadband."""
        engine = self.engine
        env = self.env
        obs = engine.observers
        timeout = env.timeout
        code = self.code
        while True:
            now = env._now
            wall = engine.wall(now) if obs else None
            job = self.job
            for pv in values:
                # The product being made (or last made) sets the value's distribution.
                noise = (
                    pv.by_product.get(job.product, pv.noise) if job and pv.by_product else pv.noise
                )
                value = noise() + pv.drift * now + pv.offset
                pv.last = value
                pv.count += 1
                pv.total += value
                if value < pv.minimum:
                    pv.minimum = value
                if value > pv.maximum:
                    pv.maximum = value
                if obs and (pv.published is None or abs(value - pv.published) > pv.deadband):
                    pv.published = value
                    for o in obs:  # ``notify_value`` inlined: this is a call per sample
                        o.on_value(now, code, pv.name, value, wall)
            yield timeout(period)
