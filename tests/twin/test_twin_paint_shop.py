"""The shipped paint shop, which uses the new plant elements (a rework loop by a process-
value rule, a capacity-0 hand-off, two booths sharing one painter per cycle), run through
the scenario runner against a real mes_core: every rework visit reaches the MES as an
operation repeated at its work unit, a booth waiting for the painter as idle time, and
its records reconcile exactly with the plant (counts per work unit and job order, lots
consumed per visit, genealogy, state seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import RunOptions, run_scenario

pytestmark = pytest.mark.slow


def test_paint_shop_with_rework_reconciles_exactly(tmp_path: Path) -> None:
    data = yaml.safe_load((SCENARIOS_DIR / "paint_shop_rework.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / "paint_shop.yaml").resolve())
    data["duration"] = "5h"
    data["drain"] = "1h"
    path = tmp_path / "paint.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_scenario(
        RunOptions(scenario=path, report_dir=tmp_path / "report", order_scale=0.2, progress=False)
    )
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    rows = result.report.reconciliation.rows
    counts = {(r.id, r.quantity): r for r in rows if r.entity == "work_unit"}
    topcoat = counts[("PNT1-TOPCOAT", "good")]
    pack = counts[("PNT1-PACK", "good")]
    # panels sprayed again: the booth counted more visits than panels left the line
    assert topcoat.twin is not None and pack.twin is not None and topcoat.twin > pack.twin
    # the booths waited for the one painter: idle seconds, the same in the MES
    waited = counts[("PNT1-PRIME", "seconds idle")]
    assert waited.mes is not None and waited.mes > 60
    assert all(r.matches for r in rows)
