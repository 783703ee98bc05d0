"""The shipped packing line with a split by product (issue 17) run through the scenario
runner against a real mes_core: multipacks pass the shrink wrapper, retail cases the case
packer, both the palletiser; each product's operations run on the machines its units
pass, and the MES's records reconcile exactly with the plant."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import RunOptions, run_scenario

pytestmark = pytest.mark.slow


def test_packing_split_by_product_reconciles_exactly(tmp_path: Path) -> None:
    data = yaml.safe_load((SCENARIOS_DIR / "packing_split_day.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / "packing_split.yaml").resolve())
    data["duration"] = "1h30m"
    data["drain"] = "1h"
    data["link"] = "direct"  # the cheap link: the same wire contract as OPC UA's connector
    path = tmp_path / "split.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_scenario(
        RunOptions(scenario=path, report_dir=tmp_path / "report", order_scale=0.1, progress=False)
    )
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed)
    rows = result.report.reconciliation.rows
    assert all(r.matches for r in rows)
    by = {(r.entity, r.id, r.quantity): r for r in rows}
    shrunk = by[("work_unit", "PCK1-SHRINK", "good")].mes
    cased = by[("work_unit", "PCK1-CASER", "good")].mes
    pallets = by[("work_unit", "PCK1-PALLET", "good")].mes
    assert shrunk is not None and cased is not None and shrunk > 0 and cased > 0
    assert pallets == shrunk + cased  # both ways merged at the palletiser
    # the film went only into multipacks, the cases only into retail cases
    assert ("genealogy", "FILM-77 -> LOT-JO-4002", "edge") not in by
    assert by[("genealogy", "CS12-908 -> LOT-JO-4002", "edge")].mes == 1.0
