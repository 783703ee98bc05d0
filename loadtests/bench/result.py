"""A benchmark's result, how it prints, and the ``docs/BENCHMARKS.md`` writer."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from fastpaths import fast_paths_status


@dataclass(frozen=True)
class Figure:
    """A measured figure: ``value`` in ``unit`` (higher is better unless ``lower_better``)."""

    label: str
    value: float
    unit: str
    lower_better: bool = False

    def text(self) -> str:
        if self.value >= 100:
            return f"{self.value:,.0f} {self.unit}"
        return f"{self.value:.3g} {self.unit}"


@dataclass
class BenchResult:
    """One benchmark: the product's figure beside its ceiling measured in the same run."""

    name: str
    command: str
    product: Figure | None
    ceiling: Figure | None
    target: str = ""
    target_met: bool | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    output: str = ""  # what a benchmark of another part printed (bench sim, bench opcua)
    error: str = ""  # why it could not run, if it could not
    markdown: str = ""  # a section another part's benchmark wrote itself, kept verbatim
    stated_ratio: float | None = None
    """The ratio the benchmark stated (its summary line), when it is not product / ceiling
    (``bench sim``: the median of the pairs' ratios)."""

    @property
    def ratio(self) -> float | None:
        if self.stated_ratio is not None:
            return self.stated_ratio
        if self.product is None or self.ceiling is None or not self.ceiling.value:
            return None
        if self.product.lower_better:
            # For latencies the ratio is ceiling / product, so that 1.0 is "as good as bare"
            # and smaller is worse, like for throughputs.
            return self.ceiling.value / self.product.value if self.product.value else None
        return self.product.value / self.ceiling.value

    def print(self, console: Console) -> None:
        console.rule(self.name)
        if self.error:
            console.print(f"[red]not run:[/red] {self.error}")
            return
        if self.output:
            console.print(self.output.rstrip(), markup=False, highlight=False)
        for key, value in self.details:
            console.print(f"{key}: {value}", markup=False, highlight=False)
        if self.product is not None:
            console.print(f"product: {self.product.label}: {self.product.text()}", markup=False)
        if self.ceiling is not None:
            console.print(f"ceiling: {self.ceiling.label}: {self.ceiling.text()}", markup=False)
        if self.target:
            met = {True: "met", False: "MISSED", None: "not judged"}[self.target_met]
            console.print(f"target: {self.target} ({met})", markup=False)
        if self.ratio is not None:
            console.print(f"ratio: {self.ratio:.2f}")


_RATIO = re.compile(r"^\s*ratio:\s*([0-9.]+)", re.MULTILINE)


def ratio_in(output: str) -> float | None:
    """The ``ratio: X`` a benchmark printed (the last one, if several)."""
    found = _RATIO.findall(output)
    return float(found[-1]) if found else None


SUMMARY = "summary: "
"""The line (the last one starting with it) by which a benchmark of another part states its
figures for the summary table: ``summary: `` and a JSON object with ``product`` and
``ceiling`` (each ``{"label", "value", "unit"}``, ``"lower_better": true`` for latencies),
``ratio`` (a number), ``target`` (words) and ``met`` (true, false or null: not judged).
``twin.bench_summary.summary_line`` writes it for the twin's benchmarks."""


def summary_in(output: str) -> dict[str, object] | None:
    """The summary a benchmark printed (its last ``summary:`` line), None without one."""
    for line in reversed(output.splitlines()):
        if line.startswith(SUMMARY):
            try:
                found = json.loads(line[len(SUMMARY) :])
            except ValueError as exc:
                raise ValueError(f"benchmark summary line is not JSON ({exc}): {line!r}") from exc
            if not isinstance(found, dict):
                raise ValueError(f"benchmark summary line is not a JSON object: {line!r}")
            return found
    return None


def _figure(found: object, where: str) -> Figure | None:
    if found is None:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("value"), int | float):
        raise ValueError(f"benchmark summary: {where} needs a numeric value: {found!r}")
    return Figure(
        str(found.get("label", "")),
        float(found["value"]),
        str(found.get("unit", "")),
        bool(found.get("lower_better", False)),
    )


def apply_summary(result: BenchResult, output: str) -> None:
    """Fill ``result``'s product, ceiling, ratio and target from the summary line of
    ``output`` (nothing when it has none); the line itself is left out of what is kept."""
    found = summary_in(output)
    if found is None:
        return
    result.product = _figure(found.get("product"), "product")
    result.ceiling = _figure(found.get("ceiling"), "ceiling")
    ratio = found.get("ratio")
    result.stated_ratio = float(ratio) if isinstance(ratio, int | float) else None
    result.target = str(found.get("target", ""))
    met = found.get("met")
    result.target_met = met if isinstance(met, bool) else None
    result.output = without_summary(result.output)
    result.markdown = without_summary(result.markdown)


def without_summary(text: str) -> str:
    """``text`` without its summary lines (they are for the table, not for readers)."""
    if SUMMARY not in text:
        return text
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(SUMMARY))


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_kind() -> str:
    """The kind of machine figures belong to: CPU model and cores usable (issue 20: the
    same code measured 2-3x apart on two kinds of 2-core machine)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model()}, {usable} cores"


# ------------------------------------------------------------------ one section a machine
#
# docs/BENCHMARKS.md keeps one section per kind of machine measured, between these marks;
# a run rewrites its own machine's section only, so a reader sees the figures of every
# machine side by side.

MACHINE_BEGIN = "<!-- machine: {} begin -->"
MACHINE_END = "<!-- machine: {} end -->"
_MACHINE_MARK = re.compile(r"^<!-- machine: (.+) begin -->$", re.MULTILINE)

PREAMBLE = [
    "# Benchmarks",
    "",
    "Written by `make bench` (`mestwin bench all --write docs/BENCHMARKS.md`); rerun it",
    "rather than editing by hand. Each benchmark measures the product's figure and, in the",
    "same run on the same machine, the ceiling it should be compared with (a bare library",
    "doing the same work), and their ratio. One section per kind of machine measured (CPU",
    "model in the heading): a run rewrites its own machine's section and keeps the others,",
    "so the figures of every machine stand side by side. Machines are often shared and",
    "noisy: each section states the load; compare ratios and CPU per unit of work, and",
    "rerun before relying on a figure. Analyses measured by hand (dated, with their load)",
    "are in `docs/BENCHMARK-ANALYSES.md`, which no run rewrites.",
]


def machine_sections(text: str) -> dict[str, str]:
    """The machine sections of a BENCHMARKS.md text, by machine kind, marks included."""
    found: dict[str, str] = {}
    for match in _MACHINE_MARK.finditer(text):
        kind = match.group(1)
        end = MACHINE_END.format(kind)
        stop = text.find(end, match.end())
        if stop >= 0:
            found[kind] = text[match.start() : stop + len(end)]
    return found


def machine_section(kind: str, body: str) -> str:
    """``body`` (Markdown, under a ``## <kind>`` heading) between ``kind``'s marks."""
    return "\n".join(
        [MACHINE_BEGIN.format(kind), f"## {kind}", "", body.strip(), MACHINE_END.format(kind)]
    )


def write_machine_section(path: Path, kind: str, section: str) -> None:
    """Rewrite ``path`` with ``section`` (from :func:`machine_section`) as ``kind``'s,
    keeping every other machine's section (first the one just written)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    others = [s for k, s in machine_sections(text).items() if k != kind]
    parts = ["\n".join(PREAMBLE), section, *others]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def demote_headings(markdown: str) -> str:
    """A benchmark's own section one level down (``##`` to ``###``), under its machine."""
    return re.sub(r"^(#{2,5}) ", r"#\1 ", markdown, flags=re.MULTILINE)


def machine_description() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    cpu = cpu_model()
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except (OSError, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = [
        ("machine", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("cpu", f"{cpu}, {usable} cores usable"),
        ("memory", memory or "unknown"),
        ("python", platform.python_version()),
        # Off on an asyncua they were not checked against: the OPC UA figures drop.
        ("OPC UA", fast_paths_status()),
    ]
    try:
        pg = subprocess.run(
            ["psql", "--version"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
        if pg:
            rows.append(("postgresql client", pg))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return rows


def write_benchmarks_md(
    path: Path, results: Sequence[BenchResult], *, elapsed_s: float, load: str = ""
) -> None:
    """Rewrite this machine's section of ``docs/BENCHMARKS.md`` wholly from ``results``
    (every benchmark's part, those of other parts included, is regenerated from this run's
    output); other machines' sections are kept as they are. ``load``: the machine's load
    during the run, in words."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Run: {now}, {elapsed_s / 60:.1f} min in all." + (f" {load}" if load else ""), ""]
    lines += [f"- {key}: {value}" for key, value in machine_description()]
    lines += [
        "",
        "| benchmark | product | ceiling | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        ratio = result.ratio if result.ratio is not None else ratio_in(result.output)
        product = result.product.text() if result.product else ""
        ceiling = result.ceiling.text() if result.ceiling else ""
        if result.error:
            product, ceiling = "not run", ""
        met = {True: " (met)", False: " (MISSED)", None: ""}[result.target_met]
        lines.append(
            f"| {result.name} | {product} | {ceiling} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} | {result.target}{met} |"
        )
    for result in results:
        if result.markdown and not result.error:
            lines += ["", demote_headings(result.markdown.strip())]
            continue
        lines += ["", f"### {result.name}", "", f"Rerun: `{result.command}`", ""]
        if result.error:
            lines += ["Not run:", "", "```", result.error.strip(), "```"]
            continue
        if result.product is not None:
            lines.append(f"- product: {result.product.label}: **{result.product.text()}**")
        if result.ceiling is not None:
            lines.append(f"- ceiling: {result.ceiling.label}: {result.ceiling.text()}")
        if result.ratio is not None:
            lines.append(f"- ratio: {result.ratio:.2f}")
        if result.target:
            met = {True: "met", False: "**missed**", None: "not judged"}[result.target_met]
            lines.append(f"- target: {result.target} — {met}")
        lines += [f"- {key}: {value}" for key, value in result.details]
        if result.output:
            lines += ["", "```", result.output.rstrip(), "```"]
    kind = machine_kind()
    write_machine_section(path, kind, machine_section(kind, "\n".join(lines)))
