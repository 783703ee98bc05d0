"""Fixed-seed golden runs of the shipped models: any change to what the engine does shows
up here as a diff (regression), beside the statistical validation in test_twin_validation.py.

After an intended change of behaviour, regenerate with
``MESTWIN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/twin/test_twin_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from plant_models.loader import load_plant_model
from twin.engine import Engine

GOLDEN = Path(__file__).with_name("golden")
CASES = [
    ("bottling_line", 2 * 3600.0, 1),
    ("tablet_line", 2 * 86_400.0, 1),
    ("mixing_plant", 86_400.0, 1),  # a batch unit (ISA-88 phases)
    ("lamp_assembly", 16 * 3600.0, 1),  # feeder branches and an assembly station
    ("packing_split", 4 * 3600.0, 1),  # a split by product and a merge
    ("bottling_parallel_cappers", 2 * 3600.0, 1),  # a parallel station (two cappers)
]


def _digest(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of a summary that must not move: counts exact, times to 1 µs."""

    def r(x: float) -> float:
        return round(x, 6)

    return {
        "lines": {
            code: {k: f[k] for k in ("entered", "made", "scrapped", "wip", "jobs_completed")}
            for code, f in summary["lines"].items()
        },
        "work_units": {
            code: {
                "processed": f["processed"],
                "scrap": f["scrap"],
                "setups": f["setups"],
                "state_seconds": {k: r(v) for k, v in f["state_seconds"].items() if v},
            }
            for code, f in summary["work_units"].items()
        },
        "job_orders": {
            job: {k: f[k] for k in ("status", "released", "made", "scrapped")}
            for job, f in summary["job_orders"].items()
        },
        "failures": summary["failures"],
        "lots_consumed": sorted(
            [c["job_order"], c["lot"], r(c["quantity"])] for c in summary["lots"]["consumed"]
        ),
        # Lot in -> lot out, through the intermediate lots a routing produces (granulate).
        "genealogy": [
            [g["from_lot"], g["to_lot"], r(g["quantity"])] for g in summary["lots"]["genealogy"]
        ],
    }


@pytest.mark.parametrize(("name", "until", "seed"), CASES)
def test_shipped_model_run_matches_its_golden_ledger(name: str, until: float, seed: int) -> None:
    engine = Engine(load_plant_model(name), seed)
    engine.run_until(until)
    digest = _digest(engine.finish())
    path = GOLDEN / f"{name}_seed{seed}.json"
    if os.environ.get("MESTWIN_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert json.loads(json.dumps(digest)) == expected
