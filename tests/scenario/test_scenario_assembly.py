"""The shipped lamp assembly line (issue 17, assembly stations) run through the scenario
runner against a real mes_core over OPC UA: the base and arm feeder branches run their
operations side by side (the routing's segment dependencies), the assembly cell is a work
unit like any other (its own node, counts and lots), and each job order's lamp lot traces
back to the lots of every input; the MES's records reconcile exactly with the plant."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import RunOptions, run_scenario

pytestmark = pytest.mark.slow

INPUT_LOTS = ("ABS-B-7101", "TUBE-5520", "LED-88010", "SCR-3001", "CTN-640")


def test_lamp_assembly_reconciles_exactly_with_genealogy_to_every_input(tmp_path: Path) -> None:
    data = yaml.safe_load((SCENARIOS_DIR / "lamp_assembly_day.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / "lamp_assembly.yaml").resolve())
    data["duration"] = "1h30m"
    data["drain"] = "1h"
    path = tmp_path / "lamp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_scenario(
        RunOptions(scenario=path, report_dir=tmp_path / "report", order_scale=0.1, progress=False)
    )
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    rows = result.report.reconciliation.rows
    assert all(r.matches for r in rows)
    by = {(r.entity, r.id, r.quantity): r for r in rows}
    # one base and two arms per lamp: the MES counted each feeder at its own work unit
    lamps = by[("work_unit", "LMP1-ASSY", "good")].mes
    arms = by[("work_unit", "LMP1-BEND", "good")].mes
    assert lamps is not None and lamps >= 24 and arms == 2 * lamps
    # the lamp lot of the first job order comes from the lots of every input
    for lot in INPUT_LOTS:
        edge = by[("genealogy", f"{lot} -> LOT-JO-3001", "edge")]
        assert edge.twin == edge.mes == 1.0
