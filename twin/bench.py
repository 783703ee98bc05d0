"""``mestwin bench sim``: the engine's event rate beside a bare SimPy loop's.

The model run is ``reference_plant.yaml`` (10 lines x 20 work units) for one simulated day,
as fast as possible, with publishing off (no observer registered) and the ground-truth
ledger on, state intervals included. The bare loop then schedules the same number of
events: 200 processes, each yielding timeouts drawn from an exponential distribution (in
numpy blocks, as the engine draws). The figure is events per CPU second of each
(``time.process_time``: on a machine shared with other work, wall time mostly measures
the neighbours) and their ratio ``model / bare``; the target is >= 0.33 (the model costs
at most 3x per event).

Events are counted as SimPy numbers them (``Environment._eid``: every event scheduled,
timeouts, process resumptions and hand-overs alike), for both runs.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from plant_models.loader import load_plant_model
from twin.engine import Engine

MARK_BEGIN = "<!-- bench:sim begin -->"
MARK_END = "<!-- bench:sim end -->"


def events_scheduled(env: simpy.Environment) -> int:
    """How many events ``env`` has scheduled so far (SimPy numbers each one)."""
    return int(next(env._eid))  # SimPy has no public counter; _eid is its event sequence


@dataclass(frozen=True)
class SimBench:
    model_events: int
    model_seconds: float
    bare_events: int
    bare_seconds: float
    until: float
    repeats: int
    ratio: float
    """Median of the per-pair ratios (model events/s over bare events/s)."""
    load: float = 0.0
    """The machine's 1-minute load average at the end (other work sharing the cores)."""

    @property
    def model_rate(self) -> float:
        return self.model_events / self.model_seconds

    @property
    def bare_rate(self) -> float:
        return self.bare_events / self.bare_seconds


def run_model(until: float, seed: int) -> tuple[int, float]:
    model = load_plant_model("reference_plant")
    engine = Engine(model, seed)
    t0 = time.process_time()
    engine.run_until(until)
    seconds = time.process_time() - t0
    return events_scheduled(engine.env), seconds


def run_bare(events: int, seed: int, processes: int = 200) -> tuple[int, float]:
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    per_process = max(1, events // processes - 1)

    def proc() -> Any:
        timeout = env.timeout
        left = per_process
        while left > 0:
            block = rng.exponential(10.0, min(512, left)).tolist()
            left -= len(block)
            for delay in block:
                yield timeout(delay)

    for _ in range(processes):
        env.process(proc())
    t0 = time.process_time()
    env.run()
    seconds = time.process_time() - t0
    return events_scheduled(env), seconds


def bench_sim(until: float = 86_400.0, seed: int = 1, repeats: int = 3) -> SimBench:
    """Medians over ``repeats`` pairs (model run, then bare loop of the same event count).

    The two runs of a pair follow each other, so a busy machine slows both alike; the
    ratio reported is the median of the pairs' ratios.
    """
    pairs = []
    for _ in range(repeats):
        events, model_seconds = run_model(until, seed)
        bare_events, bare_seconds = run_bare(events, seed)
        pairs.append((events, model_seconds, bare_events, bare_seconds))
    ratios = [(e / s) / (be / bs) for e, s, be, bs in pairs]
    return SimBench(
        model_events=pairs[0][0],
        model_seconds=statistics.median(p[1] for p in pairs),
        bare_events=pairs[0][2],
        bare_seconds=statistics.median(p[3] for p in pairs),
        until=until,
        repeats=repeats,
        ratio=statistics.median(ratios),
        load=os.getloadavg()[0],
    )


def markdown(result: SimBench) -> str:
    hours = result.until / 3600
    return "\n".join(
        [
            MARK_BEGIN,
            "## Twin engine (`mestwin bench sim`)",
            "",
            f"`reference_plant.yaml` (10 lines x 20 work units) for {hours:g} simulated h, "
            "as fast as possible, publishing off, ground-truth ledger on (state intervals "
            "included); beside a bare "
            "SimPy loop (200 processes of exponential timeouts) scheduling the same number "
            f"of events; medians of {result.repeats} back-to-back pairs. Seconds are CPU "
            "seconds of the process (`time.process_time`); 1-minute load average at the "
            f"end: {result.load:.1f}"
            + (" (other work shared the machine)." if result.load > 2.5 else "."),
            "",
            "| what | events | CPU s | events/CPU s |",
            "|---|---:|---:|---:|",
            f"| twin engine, reference plant | {result.model_events:,} | "
            f"{result.model_seconds:.2f} | {result.model_rate:,.0f} |",
            f"| bare SimPy loop (ceiling) | {result.bare_events:,} | "
            f"{result.bare_seconds:.2f} | {result.bare_rate:,.0f} |",
            "",
            f"ratio (model / bare, median of the pairs): **{result.ratio:.2f}** "
            "(target >= 0.33). "
            "Rerun: `mestwin bench sim --write docs/BENCHMARKS.md`.",
            MARK_END,
        ]
    )


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section in ``path`` (or append it), keeping the others."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
