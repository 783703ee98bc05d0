"""Replications with confidence intervals, and KPIs over a time window.

``replicate(model, n, until, seed)`` runs ``n`` independent replications (seeds spawned
from ``seed`` with ``SeedSequence.spawn``, so replication ``i`` is the same whatever ``n``
is) and returns, for each KPI, the mean and the Student-t confidence interval of the
mean (``scipy.stats.t``): the classic method of independent replications.

KPIs are measured over ``[warmup, until]`` from cumulative integrals snapshotted at both
ends, so the initial transient (an empty line) can be cut off without touching the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from plant_models.schema import PlantModel
from twin.engine import Engine
from twin.hooks import MES_STATES

Snapshot = dict[str, Any]


def snapshot(engine: Engine) -> Snapshot:
    """The cumulative figures of ``engine`` now (nothing in the engine is changed)."""
    now = engine.now
    lines = {}
    for line in engine.lines:
        lines[line.code] = {
            "made": line.made,
            "scrapped": line.scrapped,
            "entered": line.entered,
            "left": line.left,
            "flow_time": line.flow_time,
            "wip_area": line.wip_area + line.wip * (now - line._wip_last),
        }
    buffers = {}
    for line in engine.lines:
        for b in line.buffers:
            buffers[b.code] = {
                "area": b.area + len(b.items) * (now - b._last),
                "entered": b.entered,
                "exited": b.exited,
                "sojourn": b.sojourn,
            }
    work_units = {}
    for code, wu in engine.work_units.items():
        secs = dict(wu.state_acc)
        secs[wu.state] += now - wu.since
        work_units[code] = {
            "processed": wu.processed,
            "defective": wu.defective,
            "state_seconds": secs,
        }
    return {"t": now, "lines": lines, "buffers": buffers, "work_units": work_units}


def window_kpis(a: Snapshot, b: Snapshot) -> dict[str, float]:
    """KPIs between two snapshots, as flat ``name: value`` (rates per hour, times in s).

    - ``line.<L>.throughput_per_hour``, ``.mean_wip``, ``.mean_flow_time``,
      ``.arrival_rate`` (per second), ``.scrap_ratio``;
    - ``buffer.<B>.mean_level``, ``.arrival_rate``, ``.mean_sojourn``;
    - ``wu.<W>.<state>_share`` for every MES state, ``wu.<W>.throughput_per_hour``.
    """
    dt = b["t"] - a["t"]
    if dt <= 0:
        raise ValueError("the window is empty: the second snapshot must be later")
    out: dict[str, float] = {}
    for code, lb in b["lines"].items():
        la = a["lines"][code]
        made = lb["made"] - la["made"]
        scrapped = lb["scrapped"] - la["scrapped"]
        left = lb["left"] - la["left"]
        out[f"line.{code}.throughput_per_hour"] = made / dt * 3600.0
        out[f"line.{code}.mean_wip"] = (lb["wip_area"] - la["wip_area"]) / dt
        out[f"line.{code}.arrival_rate"] = (lb["entered"] - la["entered"]) / dt
        out[f"line.{code}.mean_flow_time"] = (
            (lb["flow_time"] - la["flow_time"]) / left if left else math.nan
        )
        out[f"line.{code}.scrap_ratio"] = scrapped / left if left else math.nan
    for code, bb in b["buffers"].items():
        ba = a["buffers"][code]
        exited = bb["exited"] - ba["exited"]
        out[f"buffer.{code}.mean_level"] = (bb["area"] - ba["area"]) / dt
        out[f"buffer.{code}.arrival_rate"] = (bb["entered"] - ba["entered"]) / dt
        out[f"buffer.{code}.mean_sojourn"] = (
            (bb["sojourn"] - ba["sojourn"]) / exited if exited else math.nan
        )
    for code, wb in b["work_units"].items():
        wa = a["work_units"][code]
        for state in MES_STATES:
            spent = wb["state_seconds"][state] - wa["state_seconds"][state]
            out[f"wu.{code}.{state}_share"] = spent / dt
        out[f"wu.{code}.throughput_per_hour"] = (
            ((wb["processed"] - wb["defective"]) - (wa["processed"] - wa["defective"]))
            / dt
            * 3600.0
        )
    return out


@dataclass(frozen=True)
class Estimate:
    """A KPI over replications: mean and the ``confidence`` interval of the mean."""

    mean: float
    half_width: float
    sd: float
    n: int
    confidence: float
    values: tuple[float, ...] = field(repr=False)

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def contains(self, value: float) -> bool:
        """True when ``value`` lies in the confidence interval."""
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "half_width": self.half_width,
            "low": self.low,
            "high": self.high,
            "sd": self.sd,
            "n": self.n,
            "confidence": self.confidence,
        }


def estimate(values: list[float], confidence: float = 0.95) -> Estimate:
    """Mean and Student-t confidence interval of ``values`` (independent replications)."""
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(arr)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, confidence, ())
    mean = float(arr.mean())
    if n < 2:
        return Estimate(mean, math.inf, math.nan, n, confidence, tuple(arr.tolist()))
    sd = float(arr.std(ddof=1))
    t = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1))
    return Estimate(mean, t * sd / math.sqrt(n), sd, n, confidence, tuple(arr.tolist()))


@dataclass
class ReplicationResult:
    """KPI estimates over ``n`` replications; ``runs`` holds each replication's KPIs."""

    kpis: dict[str, Estimate]
    runs: list[dict[str, float]]

    def __getitem__(self, name: str) -> Estimate:
        return self.kpis[name]

    def as_dict(self) -> dict[str, Any]:
        return {name: est.as_dict() for name, est in self.kpis.items()}


def replicate(
    model: PlantModel,
    n: int,
    until: float,
    seed: int,
    *,
    warmup: float = 0.0,
    confidence: float = 0.95,
    engine_options: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplicationResult:
    """Run ``n`` replications of ``model`` to ``until`` and estimate every KPI.

    Replication ``i`` uses child ``i`` of ``SeedSequence(seed)``; the engine records no
    state intervals (the KPIs need only the integrals) unless ``engine_options`` says so.
    """
    if n < 1:
        raise ValueError(f"need at least one replication, got {n}")
    if not 0 <= warmup < until:
        raise ValueError(f"warmup must be in [0, until), got {warmup} with until {until}")
    options = {"record_intervals": False, **(engine_options or {})}
    runs: list[dict[str, float]] = []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        engine = Engine(model, child, **options)
        if warmup > 0:
            engine.run_until(warmup)
        start = snapshot(engine)
        engine.run_until(until)
        runs.append(window_kpis(start, snapshot(engine)))
        if progress is not None:
            progress(i + 1)
    names = list(runs[0])
    return ReplicationResult(
        {name: estimate([r[name] for r in runs], confidence) for name in names}, runs
    )
