"""A batch work unit on OPC UA (ISA-88): ``BatchID``, ``BatchQuantity`` and ``PhaseName``
as Optional components of ``WorkUnitType`` instantiated on batch units only, and the
phase number as the process value ``PhaseNumber`` (AnalogItemType, EURange 0..phases)."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncua import Client, ua

from plant_models.loader import parse_plant_model
from twin.opcua.bench_raw import free_port
from twin.opcua.infomodel import NAMESPACE_URI
from twin.opcua.runtime import ServedPlant, ServeOptions

PLANT = """\
plant: {code: B, start: 2026-01-05T06:00:00+00:00}
lines:
  - code: L1
    continuous_product: P
    work_units:
      - {code: L1-FEED, equipment_class: Feeder, cycle_time: 5}
      - code: L1-MIX
        equipment_class: MixingVessel
        batch:
          size: 500
          unit: kg
          phases:
            - {name: Charge, duration: 100}
            - {name: Heat, duration: 100}
            - {name: Discharge, duration: 100}
materials: [{id: FG, unit: batch}]
products:
  - {id: P, material: FG, line: L1, segments: [{id: S1, equipment_class: Feeder,
     standard_run_time: 5}]}
"""


def test_a_batch_unit_shows_its_batch_and_phase_and_other_units_do_not() -> None:
    model = parse_plant_model(PLANT, name="plant.yaml")
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    options = ServeOptions(endpoint=url, speed=None, auto_dispatch=False)

    async def check() -> None:
        async with ServedPlant(model, options, autorun=False) as plant:
            await asyncio.to_thread(plant.run_until, 5 + 150.0)  # in the batch's Heat phase
            await plant.drain()
            async with Client(url) as client:
                ns = await client.get_namespace_index(NAMESPACE_URI)
                line = [f"{ns}:Plant", f"{ns}:L1"]
                mixer = await client.nodes.objects.get_child([*line, f"{ns}:L1-MIX"])
                feeder = await client.nodes.objects.get_child([*line, f"{ns}:L1-FEED"])

                async def read(node: Any, *path: str) -> Any:
                    child = await node.get_child([f"{ns}:{p}" for p in path])
                    return await child.read_value()

                assert await read(mixer, "BatchID") == "L1-B01"
                assert await read(mixer, "BatchQuantity") == 500.0
                assert await read(mixer, "PhaseName") == "Heat"
                assert await read(mixer, "ProcessValues", "PhaseNumber") == 2.0
                assert await read(mixer, "StateName") == "Execute"
                number = await mixer.get_child([f"{ns}:ProcessValues", f"{ns}:PhaseNumber"])
                eu_range = await (await number.get_child("0:EURange")).read_value()
                assert (eu_range.Low, eu_range.High) == (0.0, 3.0)
                names = {(await c.read_browse_name()).Name for c in await feeder.get_children()}
                assert not names & {"BatchID", "BatchQuantity", "PhaseName"}
                # The type declares them Optional (OPC 10000-3, 6.4.4.4.3).
                typedef = client.get_node(await mixer.read_type_definition())
                decl = await typedef.get_child(f"{ns}:BatchID")
                rule = await decl.get_referenced_nodes(ua.ObjectIds.HasModellingRule)
                assert [r.nodeid for r in rule] == [ua.NodeId(ua.ObjectIds.ModellingRule_Optional)]

    asyncio.run(check())
