"""The shipped Tryton scenario, for real: ``mestwin run`` starts trytond, the twin serves
OPC UA, the adapter's own gateway subscribes, the people act over JSON-RPC, and the report
says what Tryton enforced and what it accepted (~50-80 s here, the template cached)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from support import require

from twin.scenario.runner import RunOptions, run_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "plant_models/scenarios/bottling_tryton.yaml"


def test_bottling_shift_on_tryton_reconciles_orders_and_reports_each_verdict(
    tmp_path: Path,
) -> None:
    require(importlib.util.find_spec("trytond") is not None, "Tryton (the extra named tryton)")
    result = run_scenario(RunOptions(scenario=SCENARIO, report_dir=tmp_path, progress=False))
    report: dict[str, Any] = json.loads((tmp_path / "report.json").read_text())
    # Tryton accepts deviations an MES must refuse: the run fails, honestly.
    assert result.exit_code == 1
    verdicts = {d["name"]: d["outcome"] for d in report["deviations"]}
    assert verdicts == {
        "water-labels-on-juice": "accepted",
        "expired-concentrate": "accepted",
        "lapsed-filler-certificate": "accepted",
        "pack-before-fill": "accepted",
        "filler-calibration-lapsed": "not_injected",
        "fill-weight-drift": "caught",
    }
    drift = next(d for d in report["deviations"] if d["name"] == "fill-weight-drift")
    assert drift["rule"] == "inspection_failed" and "fill_weight" in drift["message"]
    rows = report["reconciliation"]["rows"]
    orders = [r for r in rows if r["entity"] == "job_order"]
    # Every count and lot the plant produced or drew is in Tryton, exactly ...
    assert all(r["matches"] for r in orders if r["twin"] is not None), [
        r for r in orders if not r["matches"]
    ]
    # ... plus the wrong lots Tryton accepted, which the plant never drew.
    assert {r["quantity"] for r in orders if r["twin"] is None} == {
        "lot JB-3290 consumed",
        "lot LJ-6621 consumed",
    }
    # Tryton holds no counts per work unit (a work cycle has no quantity): not checked,
    # said in the report, never rows blaming Tryton for a record it cannot keep.
    assert not [r for r in rows if r["entity"] == "work_unit"]
    assert any(n.startswith("Work units not reconciled (not checked)") for n in report["notes"])
    statuses = {e["name"]: e["status"] for e in report["expectations"]}
    assert statuses["all orders completed"] == "passed"
    assert statuses["reconciliation exact"] == "failed"
    # Operation times and labour are read back: each work cycle's duration against the
    # bench's start and completion, each timesheet line's hours against the operations
    # the people ran (Tryton books labour with the operation; no attendance).
    durations = [r for r in rows if r["quantity"] == "duration (s)"]
    labour = [r for r in rows if r["quantity"] == "labour hours"]
    assert durations and labour
    assert all(r["matches"] for r in durations + labour), [
        r for r in durations + labour if not r["matches"]
    ]
    assert {r["entity"] for r in labour} == {"person", "job_order"}
    assert not any(n.startswith("Labour not reconciled") for n in report["notes"])
