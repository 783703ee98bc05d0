"""A server that does not follow the model (a plain PLC): the connector follows a YAML tag
mapping instead of browsing. Here the mapping names the twin's own NodeIds, and the
connector must bind, subscribe and turn the values into plant events as it does when it
browses."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import LoopThread, run

from mes_core.connectors.opcua.connector import ConnectorOptions, EndpointLink
from mes_core.connectors.opcua.discovery import bindings_from_mapping, load_mapping
from mes_core.connectors.opcua.events import EventBuilder
from mes_core.schemas.plant_events import MeasurementEvent, StateChangeEvent
from twin.opcua.runtime import ServedPlant

MAPPING = """
work_units:
  - code: PLC-FILLER
    line: LA
    object: "ns=2;s=LA/LA-FILL"
    tags:
      State: "ns=2;s=LA/LA-FILL.State"
      StopReason: "ns=2;s=LA/LA-FILL.StopReason"
      ProdProcessedCount: "ns=2;s=LA/LA-FILL.ProdProcessedCount"
      ProdDefectiveCount: "ns=2;s=LA/LA-FILL.ProdDefectiveCount"
    process_values:
      - {name: Weight, node: "ns=2;s=LA/LA-FILL.ProcessValues.FillWeight", unit: g,
         characteristic: fill_weight}
"""


def test_connector_follows_a_yaml_tag_mapping(
    served: tuple[ServedPlant, LoopThread], tmp_path: Path
) -> None:
    plant, _ = served
    path = tmp_path / "plc.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    bindings = bindings_from_mapping(load_mapping(path))

    async def check() -> list[object]:
        builder = EventBuilder("opcua:plc")
        link = EndpointLink(plant.endpoints[0], ConnectorOptions(), builder, bindings)
        stop = asyncio.Event()
        task = asyncio.create_task(link.run(stop))
        await asyncio.wait_for(link.connected.wait(), 20)
        await asyncio.sleep(1.5)
        stop.set()
        await task
        items, alarms = link.take()
        return list(builder.process(items, alarms).events)

    events = run(check())
    assert any(isinstance(e, StateChangeEvent) and e.work_unit == "PLC-FILLER" for e in events)
    weights = [e for e in events if isinstance(e, MeasurementEvent)]
    assert weights and all(
        (e.work_unit, e.characteristic, e.unit) == ("PLC-FILLER", "fill_weight", "g")
        for e in weights
    )
