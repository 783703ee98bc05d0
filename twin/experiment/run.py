"""Running a design: every (cell, replication) a Dask task, or one cell alone in process.

The distributed engine is Dask's (``distributed``): a ``LocalCluster`` of worker processes
by default, or the scheduler of a running cluster (``tcp://host:8786``). Each replication
is one task: the cell's plant model is scattered once per cell, the task builds an engine
with the replication's seed (``Design.seed_sequence``), runs to ``until`` and returns the
window KPIs the design asks for. Nothing here pools workers of its own.

``run_cell`` runs one cell's replications in this process, with the same function and
the same seeds: its figures equal the distributed run's, bit for bit.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plant_models import PlantModel
from twin.engine import Engine
from twin.experiment.design import Cell, Design
from twin.replicate import Estimate, estimate, snapshot, window_kpis


def run_replication(
    model: PlantModel,
    entropy: int,
    spawn_key: tuple[int, ...],
    until: float,
    warmup: float,
    patterns: tuple[str, ...],
) -> dict[str, float]:
    """One replication of ``model``: the KPIs over ``[warmup, until]`` that match ``patterns``.

    A module-level function of plain arguments, so a Dask worker imports it by name.
    """
    import fnmatch

    engine = Engine(
        model, np.random.SeedSequence(entropy, spawn_key=spawn_key), record_intervals=False
    )
    if warmup > 0:
        engine.run_until(warmup)
    start = snapshot(engine)
    engine.run_until(until)
    kpis = window_kpis(start, snapshot(engine))
    return {
        name: value
        for name, value in kpis.items()
        if any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }


@dataclass
class CellResult:
    """One cell: each replication's KPIs (in replication order) and their estimates."""

    cell: Cell
    runs: list[dict[str, float]]
    kpis: dict[str, Estimate] = field(default_factory=dict)

    def estimate(self, confidence: float) -> None:
        names = list(self.runs[0]) if self.runs else []
        self.kpis = {n: estimate([r[n] for r in self.runs], confidence) for n in names}


@dataclass
class ExperimentResult:
    """Every cell's result, and how the experiment ran."""

    design: Design
    cells: list[CellResult]
    scheduler: str
    workers: int
    wall_seconds: float


def _arguments(design: Design, cell: Cell, replication: int) -> tuple[Any, ...]:
    seed = design.seed_sequence(cell.index, replication)
    entropy = seed.entropy
    assert isinstance(entropy, int)
    return (
        entropy,
        tuple(seed.spawn_key),
        design.spec.until,
        design.spec.warmup,
        tuple(design.spec.kpis),
    )


def run_cell(design: Design, index: int) -> CellResult:
    """Cell ``index`` of ``design``, every replication, in this process."""
    if not 0 <= index < len(design.cells):
        raise IndexError(f"the design has cells 0..{len(design.cells) - 1}, not {index}")
    cell = design.cells[index]
    runs = [
        run_replication(cell.model, *_arguments(design, cell, r))
        for r in range(design.spec.replications)
    ]
    result = CellResult(cell, runs)
    result.estimate(design.spec.confidence)
    return result


def local_cluster(workers: int | None = None, *, processes: bool = True) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded workers (default: one
    per core), quiet, no dashboard.

    Worker processes are Dask's default (spawned: fresh interpreters that import the twin
    on their first task; measured here: ~5 s for 2 workers and their first tasks at load
    ~9, ~45 s at load ~19 on 2 cores). Forking them instead started in ~4 s but hung one
    start in four (a fork of this threaded process), so it is not offered.
    ``processes=False`` runs the workers as threads of this process, still reached over
    TCP (every task and result pickled, as to a remote cluster): the tests use it.
    """
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=processes,
        protocol=None if processes else "tcp://",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )


def run_experiment(
    design: Design,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExperimentResult:
    """Every cell x replication of ``design`` on Dask.

    ``client`` (a ``distributed.Client``) is used as given; else one is opened on
    ``scheduler`` (``tcp://host:8786``) or on a new ``LocalCluster`` of ``workers``
    processes (``local_cluster``), and closed at the end. ``progress(done, total)``
    follows the tasks.
    """
    from distributed import Client, as_completed

    wall0 = time.perf_counter()
    cluster = None
    own = client is None
    if client is None:
        if scheduler is None:
            cluster = local_cluster(workers)
            client = Client(cluster)
        else:
            client = Client(scheduler)
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        where = scheduler or ("LocalCluster" if cluster is not None else str(client.scheduler))
        reps = design.spec.replications
        models = client.scatter([c.model for c in design.cells], hash=False)
        run = uuid.uuid4().hex[:8]
        futures = []
        where_of: dict[Any, tuple[int, int]] = {}
        for cell, model in zip(design.cells, models, strict=True):
            for r in range(reps):
                future = client.submit(
                    run_replication,
                    model,
                    *_arguments(design, cell, r),
                    key=f"mestwin-experiment-{run}-cell{cell.index}-rep{r}",
                    pure=False,
                )
                futures.append(future)
                where_of[future.key] = (cell.index, r)
        total = len(futures)
        runs: dict[tuple[int, int], dict[str, float]] = {}
        for done, future in enumerate(as_completed(futures), start=1):
            runs[where_of[future.key]] = future.result()
            if progress is not None:
                progress(done, total)
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    cells = []
    for cell in design.cells:
        result = CellResult(cell, [runs[(cell.index, r)] for r in range(reps)])
        result.estimate(design.spec.confidence)
        cells.append(result)
    return ExperimentResult(design, cells, where, n_workers, time.perf_counter() - wall0)
