"""A plant served by one process per line (``twin serve --per-line``): what a line's process
holds, and the pace it reports. The 2-process plant reconciled through one MES is in
test_connector_end_to_end.py (it shares that module's MES)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from asyncua import Client

from plant_models.loader import load_plant_model
from twin.opcua.bench_raw import free_port
from twin.opcua.processes import LineProcessOptions, PerLinePlant, SplitError, line_model

MINI = Path(__file__).with_name("mini_plant.yaml")


def test_a_line_model_keeps_only_what_the_line_needs() -> None:
    mini = load_plant_model(MINI)
    la = line_model(mini, "LA")
    assert [x.code for x in la.lines] == ["LA"]
    assert {p.line for p in la.products} == {"LA"}
    assert all(j.product in {p.id for p in la.products} for j in la.order_stream.job_orders)
    with pytest.raises(SplitError, match="no line"):
        line_model(mini, "NOPE")


async def _read_pace(url: str) -> dict[str, object]:
    async with Client(url) as client:
        ns = await client.get_namespace_index("urn:mestwin:twin")
        pace = await client.nodes.objects.get_child([f"{ns}:Plant", f"{ns}:Pace"])
        return {
            (await v.read_browse_name()).Name: await v.read_value()
            for v in await pace.get_children()
        }


def test_a_line_that_cannot_keep_pace_says_so_on_its_server() -> None:
    mini = load_plant_model(MINI)
    plant = PerLinePlant(
        mini,
        f"opc.tcp://127.0.0.1:{free_port()}",
        LineProcessOptions(speed=2e4, auto_dispatch=False, max_lag=0.05, any_port=True),
        lines=["LA"],
        start_method="fork",
    )
    plant.start()
    try:
        deadline = time.monotonic() + 30
        pace: dict[str, object] = {}
        while time.monotonic() < deadline:
            pace = asyncio.run(_read_pace(plant.endpoints[0]))
            if pace["CannotKeepPace"]:
                # Read again: the flag may have been read just after LagSeconds was.
                pace = asyncio.run(_read_pace(plant.endpoints[0]))
                break
            time.sleep(0.3)
    finally:
        results = plant.stop()
    assert pace["CannotKeepPace"] is True
    assert isinstance(pace["LagSeconds"], float) and pace["LagSeconds"] > 0.05
    assert pace["Speed"] == 2e4
    assert results["LA"]["max_lag"] > 0.05
