"""Hostile files given to the CLI are refused with ``file:line: field: message`` and exit
2, quickly (issue 21, item 6): binaries, "billion laughs" aliases, aliases that contain
themselves, deep nesting, duplicate keys, non-positive cycle times."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mestwin.cli import build_app

SCENARIOS = Path(__file__).resolve().parents[2] / "plant_models" / "scenarios"

BINARY = bytes(range(256)) * 4

LAUGHS = "\n".join(
    [
        "plant: {code: P}",
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"a{i}: &a{i} [*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},"
            f"*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1}]"
            for i in range(1, 10)
        ),
        "lines: *a9",
        "",
    ]
)

RECURSIVE = "plant: {code: P}\nlines: &l [*l]\n"

DEEP = "plant: {code: P}\nlines: " + "[" * 1500 + "]" * 1500 + "\n"

PLANT = (
    "plant: {{code: P}}\nlines:\n  - code: L1\n    work_units:\n"
    "      - {{code: A, equipment_class: X, cycle_time: {cycle}}}\n"
)


def _simulate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["twin", "simulate", str(path), "--until", "1h"])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


def _run(path: Path, tmp_path: Path) -> tuple[int, str]:
    args = ["run", str(path), "--report-dir", str(tmp_path / "report")]
    result = CliRunner().invoke(build_app(), args)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


def _flat(output: str) -> str:
    return " ".join(output.split())


def test_binary_plant_model_is_refused_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_bytes(b"plant: {code: P}\n" + BINARY)
    code, output = _simulate(path)
    assert code == 2, output
    assert "plant.yaml:2:1: (file): not UTF-8 text" in _flat(output)


def test_binary_scenario_is_refused_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_bytes(BINARY)
    code, output = _run(path, tmp_path)
    assert code == 2, output
    assert "scenario.yaml:1: (file): not UTF-8 text (byte 0x00" in _flat(output)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (LAUGHS, "lines", "aliases expand this to over 1,000,000 values"),
        (RECURSIVE, "lines.0", "an alias contains itself"),
        (DEEP, "", "nest"),
        ("plant: {code: P}\nplant: {code: Q}\nlines: []\n", "plant", "duplicate key"),
    ],
    ids=["billion-laughs", "recursive-alias", "deep", "duplicate-key"],
)
def test_hostile_plant_model_is_refused_quickly(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    code, output = _simulate(path)
    assert code == 2, output
    assert "plant.yaml:" in output
    assert f"{field}" in _flat(output)
    assert message in _flat(output)


@pytest.mark.parametrize(
    "text",
    [
        LAUGHS.replace("plant: {code: P}", "name: x"),
        RECURSIVE.replace("plant: {code: P}", "name: x"),
        DEEP.replace("plant: {code: P}", "name: x"),
    ],
    ids=["billion-laughs", "recursive-alias", "deep"],
)
def test_hostile_scenario_is_refused_quickly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    code, output = _run(path, tmp_path)
    assert code == 2, output
    flat = _flat(output)
    assert "scenario.yaml:" in flat
    assert "billion laughs" in flat or "contains itself" in flat or "nest" in flat, flat


def test_duplicate_key_in_a_scenario_is_refused_not_last_wins(tmp_path: Path) -> None:
    text = (SCENARIOS / "clean_bottling_day.yaml").read_text()
    assert "\nseed: 20260105\n" in text
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("\nseed: 20260105\n", "\nseed: 20260105\nseed: 1\n"))
    code, output = _run(path, tmp_path)
    assert code == 2, output
    line = text.splitlines().index("seed: 20260105") + 2
    assert f"dup.yaml:{line}: seed: duplicate key (first written at line {line - 1})" in _flat(
        output
    )


@pytest.mark.parametrize(
    "cycle",
    ["{kind: deterministic, value: 0}", "{kind: normal, mean: -5, sd: 1}", "0"],
)
def test_non_positive_mean_cycle_time_is_refused(tmp_path: Path, cycle: str) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT.format(cycle=cycle))
    code, output = _simulate(path)
    assert code == 2, output
    assert "plant.yaml:5:" in output
    assert "lines[0].work_units[0].cycle_time: the mean cycle time must be > 0" in _flat(output)
