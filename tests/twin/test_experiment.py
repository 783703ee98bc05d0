"""``mestwin twin experiment``: a design of plant-model parameters x replications on Dask.

One LocalCluster of 2 worker processes (the realistic setting: the plant models are
pickled to other interpreters, the task function is imported there by name); everything
else runs in process.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mestwin.cli import build_app
from twin.experiment.design import DesignError, load_design, set_field
from twin.experiment.run import local_cluster, run_cell
from twin.replicate import estimate

DESIGN = """\
plant: bottling_line
until: 40m
replications: 2
seed: 3
kpis: ["line.*.throughput_per_hour", "buffer.BTL1-BUF1.mean_level"]
parameters:
  - name: buffer 1
    path: lines[BTL1].buffers[BTL1-BUF1].capacity
    values: [5, 60]
  - path: lines[BTL1].work_units[BTL1-FILLER].failures[valve jam].time_to_failure.mean
    values: [30m, 4h]
"""


def _design(tmp_path: Path, text: str = DESIGN) -> Path:
    path = tmp_path / "design.yaml"
    path.write_text(text)
    return path


def test_a_design_on_a_local_cluster_equals_each_cell_run_alone(tmp_path: Path) -> None:
    design = load_design(_design(tmp_path))
    assert len(design.cells) == 4
    # `twin experiment --scheduler` on a cluster of 2 workers reached over TCP, as a
    # remote cluster is: every model, task and result is pickled across. The workers are
    # threads of this process: 2 spawned worker processes took 25-45 s to start and import
    # the twin on this loaded 2-core machine, and forked ones hung one start in four.
    cluster = local_cluster(2, processes=False)
    try:
        cli = CliRunner().invoke(
            build_app(),
            ["twin", "experiment", str(tmp_path / "design.yaml"),
             "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "out")],
        )  # fmt: skip
    finally:
        cluster.close()
    assert cli.exit_code == 0, cli.output
    assert cluster.scheduler_address.startswith("tcp://")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["run"]["workers"] == 2
    assert data["run"]["scheduler"] == cluster.scheduler_address
    cells = data["cells"]
    assert [c["cell"] for c in cells] == [0, 1, 2, 3]
    # Cell 3 (buffer 60, MTBF 4h) rerun alone in this process: the same figures, bit for bit.
    alone = run_cell(design, 3)
    assert alone.runs == cells[3]["runs"]
    assert alone.runs[0] != alone.runs[1]  # replications differ
    assert cells[2]["runs"] != cells[3]["runs"]  # the parameter reaches the engine
    name = "buffer.BTL1-BUF1.mean_level"
    est = estimate([r[name] for r in alone.runs], 0.95)
    assert cells[3]["kpis"][name] == est.as_dict()
    assert est.low < est.mean < est.high
    # A buffer of 5 holds fewer than a buffer of 60 on average.
    level = {c["cell"]: c["kpis"][name]["mean"] for c in cells}
    assert level[0] <= 5 and level[0] < level[2]
    assert cells[3]["values"] == {
        "buffer 1": 60,
        "lines[BTL1].work_units[BTL1-FILLER].failures[valve jam].time_to_failure.mean": "4h",
    }
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert len(rows) == 4 * 2
    assert {r["kpi"] for r in rows} == {"line.BTL1.throughput_per_hour", name}
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count('class="plotly-graph-div"') == 2 * 2  # each KPI against each parameter

    # `--cell 3` from the command line: the same figures again.
    cli = CliRunner().invoke(
        build_app(),
        ["twin", "experiment", str(tmp_path / "design.yaml"), "--cell", "3",
         "--out", str(tmp_path / "one")],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert json.loads((tmp_path / "one" / "cell-3.json").read_text())["runs"] == alone.runs


def test_common_random_numbers_give_every_cell_the_same_seeds(tmp_path: Path) -> None:
    design = load_design(_design(tmp_path, DESIGN + "common_random_numbers: true\n"))
    assert design.seed_sequence(0, 1).spawn_key == design.seed_sequence(3, 1).spawn_key == (1,)
    plain = load_design(_design(tmp_path))
    assert plain.seed_sequence(3, 1).spawn_key == (3, 1)


def test_design_problems_name_the_file_line_and_field(tmp_path: Path) -> None:
    bad = (
        DESIGN.replace("values: [5, 60]", "values: [5, -1]").replace(
            "failures[valve jam]", "failures[no such failure]"
        )
        + "bogus: 1\n"
    )
    path = _design(tmp_path, bad)
    with pytest.raises(DesignError) as caught:
        load_design(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:12: bogus: Extra inputs are not permitted"
    ]
    path = _design(tmp_path, bad.replace("bogus: 1\n", ""))
    with pytest.raises(DesignError) as caught:
        load_design(path)
    lines = [str(p) for p in caught.value.problems]
    assert lines[0].startswith(f"{path}:9: parameters[0].values[1]: ")
    assert "lines[0].buffers[0].capacity: Input should be greater than or equal to" in lines[0]
    assert lines[1] == (
        f"{path}:10: parameters[1].path: lines[BTL1].work_units[BTL1-FILLER].failures "
        "has no item with code, id or name 'no such failure'"
    )
    result = CliRunner().invoke(build_app(), ["twin", "experiment", str(path)])
    assert result.exit_code == 2
    assert "parameters[0].values[1]" in result.output


def test_set_field_reaches_list_items_by_code_or_index() -> None:
    data = {"lines": [{"code": "L1", "buffers": [{"code": "B", "capacity": 3}]}]}
    set_field(data, "lines[L1].buffers[0].capacity", 9)
    set_field(data, "lines[0].buffers[B].transfer_time", "20s")
    assert data["lines"][0]["buffers"][0] == {"code": "B", "capacity": 9, "transfer_time": "20s"}
    with pytest.raises(ValueError, match="has 1 items"):
        set_field(data, "lines[2].code", "X")
