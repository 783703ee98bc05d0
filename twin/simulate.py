"""``mestwin twin simulate``: run a plant model alone and print its KPIs.

The run advances in slices so a rich progress bar can follow simulated time; the KPI
summary is read from the ground-truth ledger. ``--json`` writes the ledger summary (plus
the run's settings and, with ``--replications``, the confidence intervals).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from plant_models.durations import format_duration
from plant_models.schema import PlantModel
from twin.engine import Engine
from twin.replicate import ReplicationResult, replicate, snapshot, window_kpis

SLICES = 200


def simulate(
    model: PlantModel,
    until: float,
    seed: int,
    *,
    speed: float | None = None,
    max_lag: float = 1.0,
    include_intervals: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run ``model`` to ``until`` with a progress bar; returns the ledger summary."""
    console = console or Console(stderr=True)
    engine = Engine(model, seed, speed=speed, max_lag=max_lag, record_intervals=include_intervals)
    start = snapshot(engine)
    wall0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{model.plant.code}", total=until, sim="0s")
        step = until / SLICES
        t = 0.0
        while t < until:
            t = min(until, t + step)
            engine.run_until(t)
            progress.update(task, completed=t, sim=format_duration(round(t)))
    wall = time.perf_counter() - wall0
    kpis = window_kpis(start, snapshot(engine)) if until > 0 else {}
    summary = engine.finish()
    if include_intervals:
        summary["state_interval_list"] = engine.ledger.state_intervals()
    summary["run"] = {
        "seed": seed,
        "until": until,
        "speed": speed,
        "wall_seconds": wall,
        "max_lag": engine.max_lag_seen if speed is not None else None,
    }
    summary["kpis"] = kpis
    return summary


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """KPI tables: one row per line, one per work unit."""
    until = summary["until"]
    lines = Table(
        box=box.SIMPLE, title=f"{summary['plant']}: lines over {format_duration(round(until))}"
    )
    for col in ("line", "made", "scrap", "per hour", "jobs done", "mean WIP", "flow time s"):
        lines.add_column(col, justify="right" if col != "line" else "left", no_wrap=True)
    for code, f in summary["lines"].items():
        lines.add_row(
            code,
            str(f["made"]),
            str(f["scrapped"]),
            f"{f['throughput_per_hour']:.1f}",
            str(f["jobs_completed"]),
            f"{f['mean_wip']:.1f}",
            f"{f['mean_flow_time']:.0f}",
        )
    console.print(lines)
    units = Table(box=box.SIMPLE, title="work units (% of time)")
    cols = ("work unit", "good", "scrap", "run", "setup", "down", "block", "starv", "idle")
    for col in cols:
        units.add_column(col, justify="right" if col != "work unit" else "left", no_wrap=True)
    for code, f in summary["work_units"].items():
        share = f["state_share"]
        units.add_row(
            code,
            str(f["good"]),
            str(f["scrap"]),
            _pct(share["running"]),
            _pct(share["setup"]),
            _pct(share["down"]),
            _pct(share["blocked"]),
            _pct(share["starved"]),
            _pct(share["idle"] + share["offline"]),
        )
    console.print(units)
    run = summary.get("run", {})
    if run:
        console.print(
            f"seed {run['seed']}, wall {run['wall_seconds']:.2f} s"
            + (f", max lag {run['max_lag']:.3f} s" if run.get("max_lag") is not None else "")
        )


def replicate_with_progress(
    model: PlantModel, n: int, until: float, seed: int, warmup: float, console: Console
) -> ReplicationResult:
    with Progress(
        TextColumn("[bold]replications"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("reps", total=n)
        return replicate(
            model,
            n,
            until,
            seed,
            warmup=warmup,
            progress=lambda done: progress.update(task, completed=done),
        )


def print_replications(result: ReplicationResult, console: Console) -> None:
    """Line KPIs with their confidence intervals."""
    table = Table(
        box=box.SIMPLE, title=f"KPIs over {len(result.runs)} replications (95 % CI of the mean)"
    )
    for col in ("KPI", "mean", "+-", "low", "high"):
        table.add_column(col, justify="left" if col == "KPI" else "right")
    for name, est in result.kpis.items():
        if not name.startswith("line.") or math.isnan(est.mean):
            continue
        table.add_row(
            name, f"{est.mean:.4g}", f"{est.half_width:.2g}", f"{est.low:.4g}", f"{est.high:.4g}"
        )
    console.print(table)


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities (no data) as ``None``: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as strict JSON (NaN -> null)."""
    path.write_text(json.dumps(json_ready(data), indent=1, allow_nan=False) + "\n")
