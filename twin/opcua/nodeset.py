"""Export the twin's information model as a NodeSet2 XML file (OPC 10000-6, annex F).

Other OPC UA tools (modelling tools, SCADA, a test server of another stack) import the
file to get the same types and the same ``Plant`` tree without running the twin. Values
are exported too (initial values, ``EURange``, ``EngineeringUnits``, method arguments),
so an importer sees the ranges and units.
"""

from __future__ import annotations

from pathlib import Path

from plant_models.schema import PlantModel
from twin.opcua.infomodel import NAMESPACE_URI
from twin.opcua.server import PlantServer


async def export_nodeset(model: PlantModel, path: Path, lines: list[str] | None = None) -> int:
    """Write ``model`` (or some ``lines`` of it) as NodeSet2 XML; returns the node count."""
    from asyncua.common.ua_utils import get_nodes_of_namespace
    from asyncua.common.xmlexporter import XmlExporter

    plant = PlantServer(model, "opc.tcp://127.0.0.1:4840", lines=lines)
    await plant.build()
    server = plant.server
    assert server is not None
    nodes = await get_nodes_of_namespace(server, [NAMESPACE_URI])
    exporter = XmlExporter(server, export_values=True)
    await exporter.build_etree(nodes)
    await exporter.write_xml(str(path))
    return len(nodes)
