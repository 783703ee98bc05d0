"""The shipped syrup scenario, whose mixing vessel is a batch unit (ISA-88 phases), run
through the scenario runner against a real mes_core over OPC UA, Sparkplug B and the
direct link: every phase transition reaches the MES as the vessel's ``PhaseNumber``
process value (a plant event it stores, with the job order), the MES counts each batch
once per work unit, and its records reconcile exactly with the plant. About 10 s of CPU
per connector link, 6 s direct."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from support import require

from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import RunOptions, run_scenario
from twin.scenario.sparkplug_link import Broker, SparkplugLinkError

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("link", ["opcua", "sparkplug", "direct"])
def test_syrup_batches_reach_the_mes_phase_by_phase_and_reconcile_exactly(
    tmp_path: Path, link: str
) -> None:
    if link == "sparkplug":
        try:
            Broker(tmp_path)
        except SparkplugLinkError:
            require(False, "Mosquitto (the mosquitto command) for link: sparkplug")
    data = yaml.safe_load((SCENARIOS_DIR / "syrup_batches.yaml").read_text())
    data["link"] = link
    data["plant"] = str((SCENARIOS_DIR.parent / "mixing_plant.yaml").resolve())
    data["duration"] = "7h"  # two batches of each order (order_scale 0.5)
    path = tmp_path / "syrup.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    report = tmp_path / "report"
    result = run_scenario(
        RunOptions(scenario=path, report_dir=report, order_scale=0.5, progress=False)
    )
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    rows = result.report.reconciliation.rows
    assert all(r.matches for r in rows)
    counts = {(r.id, r.quantity): r for r in rows if r.entity == "work_unit"}
    assert counts[("SYR1-MIX", "good")].twin == 4  # batches, one unit each
    # Every phase of every batch is a plant event the MES stored, in recipe order, each
    # booked to the job order of its batch.
    batch = load_plant_model("mixing_plant").work_unit("SYR1-MIX").batch
    assert batch is not None and len(batch.phases) == 4
    with sqlite3.connect(report / "mes.db") as db:
        stored = db.execute(
            "SELECT value, job_order FROM plant_event WHERE kind = 'measurement' AND "
            "work_unit = 'SYR1-MIX' AND characteristic = 'PhaseNumber' AND value > 0 "
            "ORDER BY ts"
        ).fetchall()
    assert [int(v) for v, _ in stored] == [1, 2, 3, 4] * 4
    assert [j for _, j in stored] == ["SO-3001"] * 8 + ["SO-3002"] * 8
