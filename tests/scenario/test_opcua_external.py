"""``link: opcua-external``: the twin serves OPC UA, the MES subscribes with its own
collector (here mes_core's adapter runs its own ``mestwin connect``, as its site would),
the bench starts no connector and learns that the MES caught up through the adapter (its
records). About 40 s: one hour of bottling, order quantities at a tenth."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_opcua_link import over_opcua, passed, run

from twin.scenario.opcua_external import ExternalOpcUaLink
from twin.scenario.sut import UnitProgress


@pytest.mark.slow
def test_an_mes_that_collects_for_itself_reconciles_exactly(tmp_path: Path) -> None:
    path = over_opcua(tmp_path, "clean_bottling_day", "1h", drain="2h", link="opcua-external")
    data = passed(run(path, tmp_path))
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert {o["state"] for o in data["orders"]} == {"completed"}
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
    link._dirty = link._boundary = True

    class Quiet:
        paused = False

        def pending(self) -> int:
            return 0

    assert not link._settle_once(Quiet(), float("inf"))
    assert "did not catch up within 0.3 s" in link.last_error
    assert "BTL1-FILLER good 10 scrap 1" in link.last_error
    assert link.notes == [link.last_error]
