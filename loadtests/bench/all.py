"""``mestwin bench all``: every benchmark of the project, then ``docs/BENCHMARKS.md``.

The benchmarks of other parts (``bench sim``, ``bench opcua``, ``bench sparkplug``,
``bench dashboards``) run
as their own ``mestwin`` subprocesses, each with a time limit, and their output is kept
as they print (or write) it; this part's run in process. The whole file is regenerated
from this run's results, so no section is ever a leftover of an older run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from loadtests.bench.result import BenchResult, apply_summary, ratio_in, write_benchmarks_md


@dataclass(frozen=True)
class External:
    """A benchmark another part registered under ``mestwin bench``."""

    name: str
    args: tuple[str, ...]
    timeout_s: float
    writes_markdown: bool = False  # supports ``--write FILE`` (its own section)
    prints_markdown: bool = False  # its stdout is Markdown already


EXTERNAL: tuple[External, ...] = (
    External("bench sim", ("bench", "sim", "--repeats", "3"), 600, writes_markdown=True),
    External("bench opcua", ("bench", "opcua"), 300),
    External("bench sparkplug", ("bench", "sparkplug"), 300),
    External("bench dashboards", ("bench", "dashboards", "--repeats", "3"), 180, False, True),
)


def _mestwin(args: tuple[str, ...], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from mestwin.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _between_sim_marks(text: str) -> str:
    from twin.bench import MARK_BEGIN, MARK_END

    if MARK_BEGIN in text and MARK_END in text:
        return MARK_BEGIN + text.split(MARK_BEGIN, 1)[1].split(MARK_END, 1)[0] + MARK_END
    return text.replace("# Benchmarks\n", "", 1).strip()


def run_external(bench: External) -> BenchResult:
    """Run another part's benchmark and keep what it printed (and wrote)."""
    result = BenchResult(name=bench.name, command=f"mestwin {' '.join(bench.args)}",
                         product=None, ceiling=None)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mestwin-bench-") as tmp:
        section = Path(tmp) / "section.md"
        args = (*bench.args, "--write", str(section)) if bench.writes_markdown else bench.args
        try:
            done = _mestwin(args, bench.timeout_s)
        except subprocess.TimeoutExpired:
            result.error = f"did not finish within {bench.timeout_s:.0f} s"
            return result
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            result.error = f"exit {done.returncode}: {tail}"
            return result
        result.output = done.stdout
        if bench.writes_markdown and section.exists():
            # Its own machine section in a file of its own: only the benchmark's part.
            text = section.read_text(encoding="utf-8")
            result.markdown = _between_sim_marks(text)
        elif bench.prints_markdown:
            result.markdown = f"### {bench.name}\n\nRerun: `{result.command}`\n\n{done.stdout}"
        try:
            apply_summary(result, done.stdout)  # product, ceiling, ratio, target for the table
        except ValueError as exc:
            result.details.append(("summary", str(exc)))
    return result


def _guarded(name: str, command: str, run: Callable[[], BenchResult]) -> BenchResult:
    """Run one of this part's benchmarks; a failure becomes a 'not run' section, so that
    one broken benchmark does not cost the figures of all the others."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported in the file and on the console
        return BenchResult(name=name, command=command, product=None, ceiling=None,
                           error=f"{type(exc).__name__}: {exc}")  # fmt: skip


def bench_all(console: Console, write: Path | None, *, quick: bool = False) -> list[BenchResult]:
    """Run every benchmark (``quick``: smaller sizes, for a smoke run) and write the file."""
    from loadtests.bench.api import bench_api
    from loadtests.bench.e2e import bench_e2e
    from loadtests.bench.ingest import bench_ingest

    started = time.monotonic()
    load_start = os.getloadavg()[0]
    results: list[BenchResult] = []

    def record(result: BenchResult) -> None:
        result.print(console)
        results.append(result)
        console.print(f"[dim]{(time.monotonic() - started) / 60:.1f} min so far[/dim]")

    for bench in EXTERNAL:
        console.print(f"running mestwin {' '.join(bench.args)}")
        record(run_external(bench))
    events = 10_000 if quick else 30_000
    for backend in ("postgresql", "sqlite"):
        record(
            _guarded(
                f"bench ingest ({backend})",
                f"mestwin bench ingest --backend {backend}",
                lambda b=backend: bench_ingest(b, events=events, batch=2000),  # type: ignore[misc]
            )
        )
    record(
        _guarded(
            "bench api",
            "mestwin bench api",
            lambda: bench_api(rate=200, users=20, seconds=10 if quick else 20, repeats=3),
        )
    )
    record(
        _guarded(
            "bench e2e",
            "mestwin bench e2e",
            lambda: bench_e2e(
                speeds=(160,) if quick else (160, 320, 640, 1000, 1500, 2000),
                plant_s=1800 if quick else 2400,
                max_pace=not quick,
            ),
        )
    )
    elapsed = time.monotonic() - started
    if write is not None:
        load = (
            f"1-minute load average at the start {load_start:.1f}, "
            f"at the end {os.getloadavg()[0]:.1f} (2.0 fills 2 cores)."
        )
        write_benchmarks_md(write, results, elapsed_s=elapsed, load=load)
        console.print(f"written to {write}")
    console.print(f"all benchmarks in {elapsed / 60:.1f} min")
    return results


__all__ = ["EXTERNAL", "bench_all", "ratio_in", "run_external"]
