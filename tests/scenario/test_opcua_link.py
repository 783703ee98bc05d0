"""Scenario runs over the real OPC UA link: twin engine -> twin OPC UA server -> fault
proxy -> ``mestwin connect`` (child process) -> MES ingest (PRODUCT.md issues 5 and 6).

Shortened like tests/scenario/test_scenario_runs.py (a few simulated hours, order
quantities scaled down); the records must reconcile exactly, with and without a fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.runner import RunOptions, RunResult, run_scenario

pytestmark = pytest.mark.slow

FULL_DAY_ONLY = {"oee", "throughput"}


def over_opcua(tmp_path: Path, name: str, duration: str, **changes: Any) -> Path:
    """A shortened copy of a shipped scenario whose equipment link is OPC UA."""
    data = yaml.safe_load((SCENARIOS_DIR / f"{name}.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / f"{data['plant']}.yaml").resolve())
    data["duration"] = duration
    data["link"] = "opcua"
    data["expectations"] = [e for e in data["expectations"] if e["type"] not in FULL_DAY_ONLY]
    data.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(path: Path, tmp_path: Path) -> RunResult:
    return run_scenario(
        RunOptions(scenario=path, report_dir=tmp_path / "report", order_scale=0.1, progress=False)
    )


def passed(result: RunResult) -> dict[str, Any]:
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    log = result.report_dir / "connector.log"
    tail = log.read_text()[-3000:] if log.exists() else "(no connector log)"
    assert result.exit_code == 0, "\n".join(failed) + "\n" + tail
    data: dict[str, Any] = json.loads((result.report_dir / "report.json").read_text())
    return data


def test_clean_bottling_day_over_opcua_reconciles_exactly(tmp_path: Path) -> None:
    path = over_opcua(tmp_path, "clean_bottling_day", "2h", drain="2h")
    data = passed(run(path, tmp_path))
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert {o["state"] for o in data["orders"]} == {"completed"}
    assert data["events"]["lost"] == 0 and data["events"]["duplicated"] == 0
    assert data["events"]["ingested"] > 0
    assert any("over OPC UA" in n for n in data["notes"])
    # The connector's measurements are the inspection plan's samples, not every value.
    assert (tmp_path / "report" / "connector.log").exists()


def test_bottling_with_faults_over_opcua_still_reconciles_exactly(tmp_path: Path) -> None:
    path = over_opcua(tmp_path, "bottling_with_faults", "4h", drain="1h")
    data = passed(run(path, tmp_path))
    kinds = {f["type"] for f in data["faults"]}
    assert {"opcua_drop", "opcua_server_restart", "mes_restart"} <= kinds
    assert data["reconciliation"]["exact"]
    assert data["events"]["lost"] == 0 and data["events"]["duplicated"] == 0
    log = (tmp_path / "report" / "connector.log").read_text()
    assert "reconnected to" in log  # the drop and the restart were ridden out over OPC UA
