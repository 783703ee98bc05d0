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

CPU seconds move with the CPU (the same code ran 2.4x slower per event on a 2-core AMD EPYC
than on a Xeon, issue 20), so each side is also counted in instructions per event, which
do not: each run once more, shorter (the plant's first ``callgrind_until`` seconds, the
bare loop the same number of events), under ``valgrind --tool=callgrind``, counting only
the simulation's run (interpreter start-up, imports and the model's build excluded:
collection is toggled on entering ``functools.reduce``, which wraps the run and nothing
else calls), with ``PYTHONHASHSEED=0``. Callgrind runs the code ~50x slower; skipped
without ``valgrind``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import simpy

TARGET_RATIO = 0.33
"""The engine costs at most ~3x a bare SimPy loop per event (model / bare events/CPU s)."""
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
    ratios: tuple[float, ...] = ()
    """Each pair's ratio, in run order."""
    instructions: Instructions | None = None
    """Instructions per event of each side, counted by callgrind (None: not counted)."""

    @property
    def model_rate(self) -> float:
        return self.model_events / self.model_seconds

    @property
    def bare_rate(self) -> float:
        return self.bare_events / self.bare_seconds


@dataclass(frozen=True)
class Instructions:
    """Instructions executed per event (callgrind) by the model's run of its first
    ``until`` simulated seconds and by the bare loop of as many events."""

    until: float
    model_events: int
    model_instructions: int
    bare_events: int
    bare_instructions: int

    @property
    def model_per_event(self) -> float:
        return self.model_instructions / self.model_events

    @property
    def bare_per_event(self) -> float:
        return self.bare_instructions / self.bare_events

    @property
    def ratio(self) -> float:
        """bare / model: like the CPU ratio, 1.0 would be as cheap as bare SimPy."""
        return self.bare_per_event / self.model_per_event


def _engine(seed: int) -> Any:
    """The reference plant's engine (imported here: the bare loop's child process under
    callgrind, ~50x slower, need not import the twin)."""
    from plant_models.loader import load_plant_model
    from twin.engine import Engine

    return Engine(load_plant_model("reference_plant"), seed)


def run_model(until: float, seed: int) -> tuple[int, float]:
    engine = _engine(seed)
    t0 = time.process_time()
    engine.run_until(until)
    seconds = time.process_time() - t0
    return events_scheduled(engine.env), seconds


def _bare_loop(events: int, seed: int, processes: int = 200) -> tuple[simpy.Environment, Any]:
    """The bare loop set up to schedule ~``events`` events; and the function running it."""
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
    return env, env.run


def run_bare(events: int, seed: int, processes: int = 200) -> tuple[int, float]:
    env, run = _bare_loop(events, seed, processes)
    t0 = time.process_time()
    run()
    seconds = time.process_time() - t0
    return events_scheduled(env), seconds


#: The function whose calls callgrind counts (``--toggle-collect``): the run is wrapped in
#: ``functools.reduce`` (C ``functools_reduce`` in libpython), which neither the engine nor
#: SimPy calls.
_TOGGLE = "functools_reduce"
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _counted_run(kind: str, amount: float, seed: int) -> None:
    """In the child process under callgrind: build, then run inside ``functools.reduce``
    (so that only the run is counted); print the events scheduled."""
    if kind == "model":
        engine = _engine(seed)
        functools.reduce(lambda _a, _b: engine.run_until(amount), [0, 1])
        print(events_scheduled(engine.env))
        return
    env, start = _bare_loop(int(amount), seed)
    functools.reduce(lambda _a, _b: start(), [0, 1])
    print(events_scheduled(env))


def count_instructions(kind: str, amount: float, seed: int) -> tuple[int, int] | None:
    """``(instructions, events)`` of one run under callgrind (``kind``: ``model`` for
    ``amount`` simulated seconds, ``bare`` for ``amount`` events); None without valgrind
    or if it counted nothing."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mestwin-callgrind-") as tmp:
        done = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--collect-atstart=no",
                f"--toggle-collect={_TOGGLE}",
                f"--callgrind-out-file={tmp}/callgrind.out",
                sys.executable,
                "-c",
                f"from twin.bench import _counted_run; _counted_run({kind!r}, {amount!r}, {seed})",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None or not int(found.group(1)):
        return None
    return int(found.group(1)), int(done.stdout.split()[-1])


def instructions_per_event(until: float, seed: int = 1) -> Instructions | None:
    """Both sides counted by callgrind (see the module's docstring)."""
    model = count_instructions("model", until, seed)
    if model is None:
        return None
    bare = count_instructions("bare", model[1], seed)
    if bare is None:
        return None
    return Instructions(until, model[1], model[0], bare[1], bare[0])


def bench_sim(
    until: float = 86_400.0, seed: int = 1, repeats: int = 3, callgrind_until: float = 3600.0
) -> SimBench:
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
        ratios=tuple(ratios),
        instructions=instructions_per_event(callgrind_until, seed) if callgrind_until else None,
    )


def instructions_text(result: SimBench) -> str:
    """The callgrind counts in a sentence (for the console and the file)."""
    counted = result.instructions
    if counted is None:
        return "instructions per event: not counted (no valgrind, or --callgrind-until 0)"
    return (
        f"instructions per event (callgrind, the plant's first {counted.until / 3600:g} h: "
        f"{counted.model_events:,} events; bare loop {counted.bare_events:,}): "
        f"model {counted.model_per_event:,.0f}, bare {counted.bare_per_event:,.0f}, "
        f"ratio {counted.ratio:.2f}"
    )


def markdown(result: SimBench) -> str:
    hours = result.until / 3600
    counted = result.instructions
    model_ipe = f"{counted.model_per_event:,.0f}" if counted else "–"
    bare_ipe = f"{counted.bare_per_event:,.0f}" if counted else "–"
    lines = [
        MARK_BEGIN,
        "### Twin engine (`mestwin bench sim`)",
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
        "| what | events | CPU s | events/CPU s | instructions/event |",
        "|---|---:|---:|---:|---:|",
        f"| twin engine, reference plant | {result.model_events:,} | "
        f"{result.model_seconds:.2f} | {result.model_rate:,.0f} | {model_ipe} |",
        f"| bare SimPy loop (ceiling) | {result.bare_events:,} | "
        f"{result.bare_seconds:.2f} | {result.bare_rate:,.0f} | {bare_ipe} |",
        "",
        f"ratio (model / bare, median of the pairs): **{result.ratio:.2f}** "
        f"(each pair: {', '.join(f'{r:.2f}' for r in result.ratios)}; "
        f"target >= {TARGET_RATIO}).",
    ]
    if counted is not None:
        lines += [
            "",
            f"Instructions per event: callgrind (`valgrind --tool=callgrind`), counting the "
            f"simulation's run only, over the plant's first {counted.until / 3600:g} h "
            f"({counted.model_events:,} events; the bare loop {counted.bare_events:,}): "
            "a count that does not move with the CPU or the load, unlike CPU seconds. "
            f"Ratio of the counts (bare / model): {counted.ratio:.2f}.",
        ]
    lines += ["", "Rerun: `mestwin bench sim --write docs/BENCHMARKS.md`.", MARK_END]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's part of this machine's section of ``path`` (or add it),
    keeping the rest (see ``loadtests.bench.result``: one section per kind of machine)."""
    from loadtests.bench.result import (
        MACHINE_END,
        machine_kind,
        machine_section,
        machine_sections,
        write_machine_section,
    )

    kind = machine_kind()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    mine = machine_sections(text).get(kind)
    if mine is None:
        mine = machine_section(kind, section)
    elif MARK_BEGIN in mine and MARK_END in mine:
        head, rest = mine.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END, 1)
        mine = head + section + tail
    else:
        end = MACHINE_END.format(kind)
        mine = mine.replace(end, section + "\n" + end)
    write_machine_section(path, kind, mine)
