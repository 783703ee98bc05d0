"""``mestwin bench opcua --processes N``: the product end to end served by 1 process and by
N processes, on one machine.

The plant is ``bench.bench_plant`` (its lines of 20 work units); with ``k`` processes its
lines are dealt round-robin to ``k`` plant processes (``twin.opcua.processes``: each its
engine and OPC UA server, all paced on one plant clock at speed 1), and each process's
server has a connector of its own (``mestwin connect``, a process), all posting to one
MES (``mestwin serve``, one worker, PostgreSQL when configured). A step is clean as in
``bench.py``: every value the servers wrote while the engines ran reached its connector,
every event made was persisted, within ``bench.MAX_LAG_S`` of the engines halting. The
rates climb until a step is not clean, for 1 process and then for N.

Figures: the best clean rate of tag changes per second for 1 and for N processes, and the
CPU each part spent per 1,000 tag changes (plant processes, connectors, MES; PostgreSQL
not counted), which says what a host with more cores would carry: on 2 cores, N plant
processes, N connectors, the MES and PostgreSQL share the same two.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.opcua.bench import (
    CONNECTOR_TAGS,
    DRAIN_LIMIT_S,
    ProductStep,
    _database,
    _Mes,
    _stats,
    bench_connector,
    bench_plant,
    format_step,
)
from twin.opcua.bench_raw import cpu_seconds, free_port
from twin.opcua.processes import LineProcessOptions, PerLinePlant

SUBSCRIBE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ProcessesResult:
    """The climb for one number of processes."""

    processes: int
    steps: list[ProductStep]

    @property
    def best(self) -> ProductStep | None:
        clean = [s for s in self.steps if s.clean]
        return max(clean, key=lambda s: s.tags_per_s) if clean else None


def _groups(codes: list[str], k: int) -> list[list[str]]:
    return [g for g in (codes[i::k] for i in range(k)) if g]


def _step(
    rate: float,
    seconds: float,
    work_units: int,
    values: int,
    k: int,
    mes: _Mes,
    key: str,
    folder: Path,
) -> ProductStep:
    model = bench_plant(work_units, values, rate)
    groups = _groups([x.code for x in model.lines], k)
    endpoints = [f"opc.tcp://127.0.0.1:{free_port()}" for _ in groups]
    nodes = [
        sum(
            len(CONNECTOR_TAGS) + len(wu.process_values)
            for line in model.lines
            if line.code in group
            for wu in line.work_units
        )
        for group in groups
    ]
    plant = PerLinePlant(
        model,
        endpoints[0],
        LineProcessOptions(
            speed=1.0,
            auto_dispatch=False,
            max_lag=1.0,
            counted_tags=CONNECTOR_TAGS,
            any_port=True,
        ),
        groups=groups,
        endpoints=endpoints,
        start_method="fork",
    )
    tag = f"{k}p-{rate:g}"
    stats = [folder / f"stats-{tag}-{i}.json" for i in range(len(groups))]
    connectors: list[subprocess.Popen[bytes]] = []
    try:
        plant.serve()
        for i, url in enumerate(plant.endpoints):
            connectors.append(
                bench_connector(
                    url,
                    mes.url,
                    key,
                    folder / f"spool-{tag}-{i}.sqlite",
                    stats[i],
                    folder / f"connector-{tag}-{i}.log",
                )
            )
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        for path, want, proc in zip(stats, nodes, connectors, strict=True):
            while not (_stats(path).get("connected") and _stats(path).get("received", 0) >= want):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"a connector did not subscribe; see {folder}")
                time.sleep(0.2)
        received0 = [int(_stats(p)["received"]) for p in stats]
        assert mes.proc is not None
        twin_pids = [c.process.pid for c in plant.children]
        conn_pids = [c.pid for c in connectors]

        def cpu() -> tuple[float, float, float]:
            return (
                sum(cpu_seconds(p) for p in twin_pids),
                sum(cpu_seconds(p) for p in conn_pids),
                cpu_seconds(mes.proc.pid if mes.proc else None),
            )

        cpu0 = cpu()
        clock = plant.run()
        time.sleep(max(0.0, clock.origin - time.time()) + seconds)
        results = plant.halt()
        ran = time.time() - clock.origin
        written = [int(results[line].get("written", 0)) for line in plant.lines]
        stopped = time.monotonic()
        lag = 0.0
        last: list[dict[str, Any]] = []
        while True:
            last = [_stats(p) for p in stats]
            done = all(
                s.get("received", 0) - r0 >= w and s.get("sent", 0) == s.get("produced", -1)
                for s, r0, w in zip(last, received0, written, strict=True)
            )
            lag = time.monotonic() - stopped
            if done or lag > DRAIN_LIMIT_S:
                break
            time.sleep(0.05)
        cpu1 = cpu()
        used = tuple(b - a for a, b in zip(cpu0, cpu1, strict=True))
        return ProductStep(
            asked_per_s=rate,
            seconds=ran,
            written=sum(written),
            received=sum(
                int(s.get("received", 0)) - r0 for s, r0 in zip(last, received0, strict=True)
            ),
            expected_received=sum(written),
            produced=sum(int(s.get("produced", 0)) for s in last),
            persisted=sum(int(s.get("sent", 0)) for s in last),
            lag_s=lag,
            cpu_s=(used[0], used[1], used[2]),
        )
    finally:
        for proc in connectors:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
        for proc in connectors:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
        plant.stop()


def run_processes(
    counts: tuple[int, ...],
    rates: tuple[float, ...],
    seconds: float = 6.0,
    work_units: int = 200,
    values: int = 10,
    echo: Callable[[str], Any] = print,
) -> tuple[list[ProcessesResult], str]:
    """For each number of processes in ``counts``: rising rates until a step is not clean."""
    out: list[ProcessesResult] = []
    with tempfile.TemporaryDirectory(prefix="mestwin-bench-processes-") as tmp:
        folder = Path(tmp)
        with _database(folder) as (db_url, kind):
            mes = _Mes(db_url, folder)
            try:
                key = mes.start()
                for k in counts:
                    echo(f"{k} plant process(es), {k} connector(s), one MES:")
                    steps: list[ProductStep] = []
                    for rate in rates:
                        step = _step(rate, seconds, work_units, values, k, mes, key, folder)
                        steps.append(step)
                        echo(format_step(step))
                        if not step.clean:
                            break
                    out.append(ProcessesResult(k, steps))
            finally:
                mes.stop()
    return out, kind
