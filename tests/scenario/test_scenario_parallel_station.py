"""The shipped bottling line with two cappers in parallel (one station, one infeed buffer)
run through the scenario runner against a real mes_core (issue 17): the CAP operation of
each job order runs on both cappers, each started and completed by the operator at it,
each capper's counts and cap lots credited to that operation at that capper, and the MES's
records reconcile exactly with the plant (counts per capper and per job order, lots,
genealogy at the capper that drew the lot)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import RunOptions, run_scenario

pytestmark = pytest.mark.slow

CAPPERS = ("BTL1-CAPPER1", "BTL1-CAPPER2")


def test_parallel_cappers_reconcile_exactly_per_capper_and_per_order(tmp_path: Path) -> None:
    data = yaml.safe_load((SCENARIOS_DIR / "bottling_parallel_cappers.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / "bottling_parallel_cappers.yaml").resolve())
    data["duration"] = "2h"
    data["drain"] = "1h"
    data["link"] = "direct"  # the cheap link: the same wire contract as OPC UA's connector
    path = tmp_path / "parallel.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_scenario(
        RunOptions(scenario=path, report_dir=tmp_path / "report", order_scale=0.1, progress=False)
    )
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    rows = result.report.reconciliation.rows
    assert all(r.matches for r in rows)
    by = {(r.entity, r.id, r.quantity): r for r in rows}
    for capper in CAPPERS:  # both cappers worked, each its own work unit in the MES
        good = by[("work_unit", capper, "good")]
        assert good.twin is not None and good.twin > 100 and good.mes == good.twin
    orders = sorted({r.id for r in rows if r.entity == "job_order"})
    assert len(orders) == 2
    for order in orders:
        # the cap lot each capper drew is booked at that capper, on the one CAP operation
        for capper in CAPPERS:
            edge = by[("genealogy", f"CAP-7781 -> LOT-{order}", f"consumed at {capper}")]
            assert edge.twin == edge.mes == 1.0
        used = by[("job_order", order, "lot CAP-7781 consumed")]
        assert used.twin is not None and used.twin > 0 and used.mes == used.twin
