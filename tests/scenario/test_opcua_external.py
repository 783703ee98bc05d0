"""``link: opcua-external``: the twin serves OPC UA, the MES subscribes with its own
collector (mes_core's adapter runs its own ``mestwin connect``, as its site would), the
bench starts none and learns that the MES caught up through the adapter, waiting a
bounded time. The run takes about 40 s (80 simulated minutes, one small order); the bound's
message is tested without a server (< 1 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plant_models.scenario import SCENARIOS_DIR
from twin.scenario.opcua_external import ExternalOpcUaLink
from twin.scenario.runner import RunOptions, run_scenario
from twin.scenario.sut import UnitProgress

SCENARIO = """\
name: own-collector
plant: {plant}
duration: 20m
drain: 1h
seed: 1
link: opcua-external
erp:
  plant_orders: false
  orders:
    - {{id: JO-T1, product: WATER-500, quantity: 30}}
people:
  - {{id: OP-ANNA, role: operator, behaviour: {{reaction: 1m}}}}
expectations:
  - {{type: reconciliation_exact}}
  - {{type: all_orders_completed}}
"""


@pytest.mark.slow
def test_an_mes_that_collects_for_itself_reconciles_exactly(tmp_path: Path) -> None:
    path = tmp_path / "own.yaml"
    path.write_text(SCENARIO.format(plant=SCENARIOS_DIR.parent / "bottling_line.yaml"))
    result = run_scenario(RunOptions(scenario=path, report_dir=tmp_path / "report", progress=False))
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    assert result.exit_code == 0, "\n".join(failed + result.report.notes)
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert any("the MES's own collector" in n for n in data["notes"])
    assert not (tmp_path / "report" / "connector.log").exists()  # the bench ran none
    assert "subscribed to" in (tmp_path / "report" / "collector.log").read_text()


def test_an_mes_that_does_not_catch_up_is_named_with_what_was_expected() -> None:
    """The bounded wait ends with a message naming the expected counts (no server)."""
    link = ExternalOpcUaLink.__new__(ExternalOpcUaLink)
    link.catch_up_timeout = 0.3
    link.clock = lambda: 600.0
    link.published = {"BTL1-FILLER": UnitProgress(good=10, scrap=1)}
    link.caught_up = lambda until, expected: False
    link.notes = []
    link.endpoint = "opc.tcp://127.0.0.1:1"
    link._dirty = True

    class Quiet:
        paused = False

        def pending(self) -> int:
            return 0

    assert not link._settle_once(Quiet(), float("inf"))
    assert "did not catch up within 0.3 s" in link.last_error
    assert "BTL1-FILLER good 10 scrap 1" in link.last_error
    assert link.notes == [link.last_error]
