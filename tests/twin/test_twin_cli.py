"""``mestwin twin simulate`` and ``mestwin bench sim`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadtests.bench.result import machine_kind, machine_section, machine_sections, summary_in
from mestwin.cli import build_app
from twin.bench import count_instructions


def test_twin_simulate_prints_kpis_and_writes_the_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    args = [
        "twin",
        "simulate",
        "bottling_line",
        "--until",
        "2h",
        "--seed",
        "1",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "BTL1-FILLER" in result.output
    data = json.loads(out.read_text())
    assert data["until"] == 7200.0
    assert data["run"]["seed"] == 1
    assert set(data["work_units"]) == {
        "BTL1-FILLER",
        "BTL1-CAPPER",
        "BTL1-LABELER",
        "BTL1-CASEPACKER",
    }
    assert data["lines"]["BTL1"]["made"] > 0
    again = tmp_path / "again.json"
    args[-1] = str(again)
    CliRunner().invoke(build_app(), args)
    first, second = json.loads(out.read_text()), json.loads(again.read_text())
    first.pop("run"), second.pop("run")
    assert first == second


def test_twin_simulate_with_replications_prints_confidence_intervals(tmp_path: Path) -> None:
    out = tmp_path / "reps.json"
    args = [
        "twin",
        "simulate",
        "bottling_line",
        "--until",
        "20m",
        "--replications",
        "3",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    kpi = json.loads(out.read_text())["kpis"]["line.BTL1.throughput_per_hour"]
    assert kpi["n"] == 3 and kpi["low"] <= kpi["mean"] <= kpi["high"]


def test_twin_simulate_names_the_line_and_field_of_a_bad_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "plant: {code: P}\nlines:\n  - code: L1\n    work_units:\n"
        "      - {code: A, equipment_class: X, cycle_time: {kind: exponential, mean: 0}}\n"
    )
    result = CliRunner().invoke(build_app(), ["twin", "simulate", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml:5:" in result.output
    assert "lines[0].work_units[0].cycle_time.mean" in result.output


def test_twin_simulate_refuses_a_bad_duration() -> None:
    result = CliRunner().invoke(build_app(), ["twin", "simulate", "bottling_line", "--until", "8x"])
    assert result.exit_code == 2
    assert "expected a duration" in result.output


def test_bench_sim_ends_with_the_ratio_line(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    other = machine_section("Other CPU, 4 cores", "others' section")
    doc.write_text(f"# Benchmarks\n\n{other}\n")
    args = ["bench", "sim", "--until", "5m", "--repeats", "1", "--callgrind-until", "0"]
    args += ["--write", str(doc)]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "instructions per event: not counted" in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("ratio: ") and float(last.split()[1]) > 0
    summary = summary_in(result.output)  # what `bench all` puts in its table
    assert summary is not None and summary["ratio"] == pytest.approx(float(last.split()[1]), 1e-2)
    assert str(summary["target"]).startswith(">= 0.33")
    text = doc.read_text()
    assert "others' section" in text and "### Twin engine" in text
    CliRunner().invoke(build_app(), args)
    sections = machine_sections(doc.read_text())
    assert "others' section" in sections["Other CPU, 4 cores"]
    assert sections[machine_kind()].count("### Twin engine") == 1


def test_callgrind_counts_the_run_only() -> None:
    """Instructions per event of the bare loop under callgrind: the run is counted, the
    interpreter's start-up and imports (over a billion instructions) are not."""
    counted = count_instructions("bare", 1000, 1)
    assert counted is not None, "valgrind missing or counted nothing"
    instructions, events = counted
    assert 1000 <= events <= 1300
    assert 2_000 < instructions / events < 100_000
