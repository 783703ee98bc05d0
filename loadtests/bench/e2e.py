"""``mestwin bench e2e``: the reference plant at rising speed factors until the MES falls
behind; the highest speed held with nothing lost.

Each step is a scenario run (``mestwin run plant_models/scenarios/reference_plant_load.yaml
--speed S``) of the same stretch of plant time on a fresh PostgreSQL database: the twin
paced at ``S`` simulated seconds per wall second, its equipment traffic through the
scenario runner's equipment link into the MES, the simulated ERP feeding orders. A step is
held when the runner counts no plant event lost or doubled and the plant kept pace: the
wall time from the plant's start until all it made was in the MES (the report's
``plant_wall_time_s``: the paced run, the runner's waits for the MES to ingest, the
close-out and the final drain; not the start-up or the report) at most 1.25 x (plant time
/ S) plus a few seconds for the close-out and the final drain. The whole run's wall time
and the runner's exact reconciliation of the MES against the twin's ground truth are
reported beside each step. The first step not held ends the climb.

After the climb, one more run as fast as possible (``--speed max``): the pace it reached
(plant time / the plant's wall time), the figure a paced run cannot show above the speeds
tried. Every step reports the CPU seconds of the whole run (the runner with the twin, the
MES, the connector; not PostgreSQL), which a busy machine does not distort.

Ceiling: the twin engine alone on the same plant (``twin.bench.run_model``, no publishing,
no MES), as fast as it goes, in simulated seconds per wall second: the speed the plant
model itself allows on this machine. Ratio: highest speed held / that ceiling.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastpaths import fast_paths_status
from loadtests.bench.databases import throwaway_postgres
from loadtests.bench.result import BenchResult, Figure

SCENARIO = Path(__file__).resolve().parents[2] / "plant_models/scenarios/reference_plant_load.yaml"
ADMIN_PASSWORD = "bench-admin"
DEFAULT_SPEEDS = (160.0, 320.0, 640.0, 1000.0, 1500.0, 2000.0, 3000.0)
# The reference plant's order stream starts its lines some twenty minutes in: forty minutes
# of plant time carry real traffic (about 23,000 plant events).
DEFAULT_PLANT_S = 2400.0
PACE_SLACK = 1.25
# The close-out after the plant stopped (people complete and book, unpaced) and the final
# drain: a second or two on the project's machines, whatever the speed.
DRAIN_ALLOWANCE_S = 3.0


@dataclass(frozen=True)
class Step:
    speed: float | str
    held: bool
    wall_s: float
    events: int
    lost: int
    detail: str
    reconciled: bool = False
    waits: str = ""
    plant_wall_s: float = 0.0
    sim_s: float = 0.0
    cpu_s: float = 0.0
    """CPU seconds of the run and its children (runner, MES, connector)."""

    @property
    def pace(self) -> float:
        """Plant seconds per wall second from the plant's start until all was in the MES."""
        return self.sim_s / self.plant_wall_s if self.plant_wall_s > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_step(speed: float | str, plant_s: float, folder: Path, timeout_s: float) -> Step:
    """One scenario run of ``plant_s`` seconds of plant time at ``speed`` (or ``max``)."""
    label = speed if isinstance(speed, str) else f"{speed:g}"
    report_dir = folder / f"speed-{label}"
    cpu0 = _children_cpu()
    with throwaway_postgres() as url:
        cmd = [
            sys.executable,
            "-c",
            "from mestwin.cli import main; main()",
            "run",
            str(SCENARIO),
            "--speed",
            label,
            "--duration",
            f"{plant_s:.0f}s",
            "--database-url",
            url,
            "--report-dir",
            str(report_dir),
            "--no-progress",
        ]
        env = {**os.environ, "MESTWIN_ADMIN_PASSWORD": ADMIN_PASSWORD}
        try:
            done = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return Step(speed, False, timeout_s, 0, 0, f"did not finish in {timeout_s:.0f} s")
    report_path = report_dir / "report.json"
    if not report_path.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        return Step(speed, False, 0, 0, 0, f"no report (exit {done.returncode}): {tail}")
    cpu_s = _children_cpu() - cpu0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    events = report.get("events") or {}
    checks = {e.get("type"): bool(e.get("passed")) for e in report.get("expectations", [])}
    sim_s = float(report.get("sim_time_s") or 0)
    wall = float(report.get("wall_time_s") or 0)
    plant_wall = float(report.get("plant_wall_time_s") or wall)
    budget = PACE_SLACK * sim_s / speed + DRAIN_ALLOWANCE_S if not isinstance(speed, str) else 0.0
    intact = int(events.get("lost", 1)) == 0 and int(events.get("duplicated", 1)) == 0
    kept_pace = sim_s >= plant_s and (isinstance(speed, str) or plant_wall <= budget)
    waits = ""
    for note in report.get("notes") or []:
        # The OPC UA link's note: how often and how long the runner waited for the MES.
        m = re.search(
            r"waited (\d+) times.*?([\d.]+) s of wall time in all(?:, of which ([\d.]+) s)?", note
        )
        if m:
            waits = f"waited {m[1]} times for the MES to ingest, {m[2]} s"
            if m[3]:
                waits += f" ({m[3]} s of it the connector's post and the MES's ingest)"
    return Step(
        speed=speed,
        held=intact and kept_pace,
        wall_s=wall,
        events=int(events.get("ingested", 0)),
        lost=int(events.get("lost", 0)),
        detail=(
            f"plant {plant_wall:.1f} s of wall time for {sim_s / 3600:g} h of plant "
            + (f"(budget {budget:.1f} s; " if budget else "(")
            + f"the whole run {wall:.0f} s, {cpu_s:.1f} CPU s); "
            f"lost {events.get('lost')}, doubled {events.get('duplicated')}"
        ),
        reconciled=checks.get("reconciliation_exact", False),
        waits=waits,
        plant_wall_s=plant_wall,
        sim_s=sim_s,
        cpu_s=cpu_s,
    )


def engine_alone_speed(until_s: float = 3600.0) -> float:
    """Simulated seconds per wall second of the twin engine alone on the reference plant."""
    from twin.bench import run_model

    _, seconds = run_model(until_s, 1)
    return until_s / seconds


def bench_e2e(
    *,
    speeds: Sequence[float] = DEFAULT_SPEEDS,
    plant_s: float = DEFAULT_PLANT_S,
    timeout_s: float = 240,
    max_pace: bool = True,
) -> BenchResult:
    """Climb ``speeds`` until a step fails; report the highest speed held."""
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="mestwin-bench-e2e-") as tmp:
        for speed in speeds:
            step = run_step(speed, plant_s, Path(tmp), timeout_s)
            steps.append(step)
            print(
                f"  speed {speed:g}: {'held' if step.held else 'NOT held'}; {step.detail}",
                flush=True,
            )
            if not step.held:
                break
        fastest = run_step("max", plant_s, Path(tmp), timeout_s) if max_pace else None
    ceiling = engine_alone_speed()
    held = [s for s in steps if s.held]
    best = held[-1] if held else None
    best_speed = float(best.speed) if best is not None else 0.0
    details = [
        (
            f"speed {s.speed:g}" if not isinstance(s.speed, str) else "speed max",
            f"{'held' if s.held else 'NOT held'}: {s.events} events ingested "
            f"({s.events_per_s:.0f}/s over the run); {s.detail}; reconciliation "
            f"{'exact' if s.reconciled else 'NOT exact (see the run report)'}"
            + (f"; {s.waits}" if s.waits else ""),
        )
        for s in steps
    ]
    if best is not None and best is steps[-1]:
        details.append(("note", "every speed tried was held; the limit lies higher"))
    if fastest is not None and fastest.pace <= 0:
        details.append(("as fast as possible", f"no pace: {fastest.detail}"))
    elif fastest is not None:
        details.append(
            (
                "as fast as possible",
                f"{fastest.pace:,.0f} x real time ({fastest.pace / ceiling:.2f} of the engine "
                f"alone; a plant day in {86400 / fastest.pace:.0f} s at that pace); "
                f"{fastest.events} events ingested; {fastest.detail}; reconciliation "
                f"{'exact' if fastest.reconciled else 'NOT exact (see the run report)'}"
                + (f"; {fastest.waits}" if fastest.waits else ""),
            )
        )
    details.append(("OPC UA", fast_paths_status()))  # the twin's server and the connector
    return BenchResult(
        name="bench e2e (reference plant, PostgreSQL)",
        command=f"mestwin bench e2e --plant-seconds {plant_s:g}",
        product=Figure("highest speed held with nothing lost", best_speed, "x real time"),
        ceiling=Figure("twin engine alone, as fast as possible", ceiling, "x real time"),
        target="nothing lost at the speeds held",
        target_met=None if best is None else True,
        details=details,
    )
