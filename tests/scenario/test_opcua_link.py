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
    assert "subscribed to" in (tmp_path / "report" / "connector.log").read_text()


def test_opcua_drop_and_server_restart_still_reconcile_exactly(tmp_path: Path) -> None:
    faults = [
        {"type": "opcua_drop", "at": "30m", "duration": "5m"},
        {"type": "opcua_server_restart", "at": "70m", "downtime": "30s"},
    ]
    path = over_opcua(tmp_path, "clean_bottling_day", "2h", drain="2h", timeline=faults)
    data = passed(run(path, tmp_path))
    assert {f["type"] for f in data["faults"]} == {"opcua_drop", "opcua_server_restart"}
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert data["events"]["lost"] == 0 and data["events"]["duplicated"] == 0
    assert data["events"]["replayed"] > 0  # changes held through both faults, sent after
    log = (tmp_path / "report" / "connector.log").read_text()
    assert log.count("reconnected to") >= 2  # both ridden out by the connector over OPC UA


def test_direct_link_stays_selectable(tmp_path: Path) -> None:
    path = over_opcua(tmp_path, "clean_bottling_day", "1h", drain="2h", link="direct")
    data = passed(run(path, tmp_path))
    assert data["reconciliation"]["exact"]
    assert any("direct collector" in n for n in data["notes"])
    assert not (tmp_path / "report" / "connector.log").exists()
