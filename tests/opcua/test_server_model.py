"""The twin's OPC UA server: browse paths, types, data types, units, methods, events.

Checked with asyncua's client over the network against the served test plant (one
server for the module); the node-opcua test checks the same with another stack.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent
from asyncua.ua.uaerrors import UaStatusCodeError
from conftest import LoopThread, run
from lxml import etree

from plant_models.schema import PlantModel
from twin.opcua.fastpath import double_variant, lean_notifications_active
from twin.opcua.infomodel import NAMESPACE_URI
from twin.opcua.nodeset import export_nodeset
from twin.opcua.runtime import ServedPlant
from twin.opcua.server import OpcUaPublisher, PlantServer
from twin.opcua.units import unece_unit_id

Served = tuple[ServedPlant, LoopThread]


async def _wu(client: Client, line: str, code: str) -> tuple[int, Any]:
    ns = await client.get_namespace_index(NAMESPACE_URI)
    node = await client.nodes.objects.get_child([f"{ns}:Plant", f"{ns}:{line}", f"{ns}:{code}"])
    return ns, node


def _url(served: Served) -> str:
    return served[0].endpoints[0]


def test_work_units_are_found_at_objects_plant_line_work_unit(served: Served) -> None:
    async def check() -> None:
        async with Client(_url(served)) as client:
            ns = await client.get_namespace_index(NAMESPACE_URI)
            plant = await client.nodes.objects.get_child(f"{ns}:Plant")
            lines = {(await n.read_browse_name()).Name: n for n in await plant.get_children()}
            assert set(lines) == {"LA", "LB"}
            units = [(await n.read_browse_name()).Name for n in await lines["LA"].get_children()]
            assert units == ["LA-FILL", "LA-CAP"]

    run(check())


def test_each_work_unit_is_an_instance_of_work_unit_type_with_the_packml_tags(
    served: Served,
) -> None:
    async def check() -> None:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LA", "LA-FILL")
            typedef = client.get_node(await wu.read_type_definition())
            assert (await typedef.read_browse_name()).Name == "WorkUnitType"
            parent_type = await typedef.get_parent()
            assert parent_type is not None
            assert parent_type.nodeid == ua.NodeId(ua.ObjectIds.BaseObjectType)
            names = {(await c.read_browse_name()).Name for c in await wu.get_children()}
            assert {
                "State",
                "StateName",
                "UnitMode",
                "StopReason",
                "ProdProcessedCount",
                "ProdDefectiveCount",
                "ProdConsumedCount",
                "CurMachSpeed",
                "MachSpeed",
                "JobOrderID",
                "MaterialLotID",
                "ProductID",
                "ProcessValues",
                "StoreAndStart",
                "Stop",
                "Reset",
            } <= names
            # The type declares its components as Mandatory (OPC 10000-3, 6.4.4.4.2).
            state_decl = await typedef.get_child(f"{ns}:State")
            rule = await state_decl.get_referenced_nodes(ua.ObjectIds.HasModellingRule)
            assert [r.nodeid for r in rule] == [ua.NodeId(ua.ObjectIds.ModellingRule_Mandatory)]

    run(check())


def test_tags_have_the_data_types_of_the_information_model(served: Served) -> None:
    expected = {
        "State": ua.ObjectIds.Int32,
        "StateName": ua.ObjectIds.String,
        "UnitMode": ua.ObjectIds.String,
        "StopReason": ua.ObjectIds.String,
        "ProdProcessedCount": ua.ObjectIds.Int32,
        "ProdDefectiveCount": ua.ObjectIds.Int32,
        "ProdConsumedCount": ua.ObjectIds.Int32,
        "CurMachSpeed": ua.ObjectIds.Double,
        "MachSpeed": ua.ObjectIds.Double,
        "JobOrderID": ua.ObjectIds.String,
        "MaterialLotID": ua.ObjectIds.String,
        "ProductID": ua.ObjectIds.String,
    }

    async def check() -> None:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LA", "LA-FILL")
            for name, datatype in expected.items():
                node = await wu.get_child(f"{ns}:{name}")
                assert await node.read_data_type() == ua.NodeId(datatype), name
                assert (await node.read_value_rank()) == -1, name
            value = await (await wu.get_child(f"{ns}:MachSpeed")).read_value()
            assert value == pytest.approx(60.0 / 0.5)  # units per minute from the cycle time

    run(check())


def test_process_values_are_analog_items_with_eurange_and_engineering_units(
    served: Served,
) -> None:
    async def check() -> None:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LA", "LA-FILL")
            pv = await wu.get_child([f"{ns}:ProcessValues", f"{ns}:FillWeight"])
            assert await pv.read_type_definition() == ua.NodeId(ua.ObjectIds.AnalogItemType)
            assert await pv.read_data_type() == ua.NodeId(ua.ObjectIds.Double)
            eu_range = await (await pv.get_child("0:EURange")).read_value()
            assert (eu_range.Low, eu_range.High) == (480.0, 520.0)
            units = await (await pv.get_child("0:EngineeringUnits")).read_value()
            assert units.DisplayName.Text == "g"
            assert units.UnitId == unece_unit_id("GRM")
            assert units.NamespaceUri == "http://www.opcfoundation.org/UA/units/un/cefact"
            characteristic = await (await pv.get_child(f"{ns}:Characteristic")).read_value()
            assert characteristic == "fill_weight"

    run(check())


def test_values_change_with_wall_clock_aligned_source_timestamps_in_a_paced_run(
    served: Served,
) -> None:
    async def check() -> None:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LA", "LA-FILL")
            counter = await wu.get_child(f"{ns}:ProdProcessedCount")
            first = await counter.read_data_value()
            await asyncio.sleep(1.0)
            later = await counter.read_data_value()
            assert later.Value.Value > first.Value.Value
            assert later.SourceTimestamp is not None
            lag = time.time() - later.SourceTimestamp.timestamp()
            assert -1.0 < lag < 5.0, f"source timestamp {later.SourceTimestamp} not wall-aligned"

    run(check())


def test_subscribers_get_every_change_through_the_lean_notification_path(
    served: Served,
) -> None:
    """The twin's servers build each data change notification once, with its value
    (``twin.opcua.fastpath``): a subscriber still gets every change, in order, with the
    value and the source timestamp written."""
    assert lean_notifications_active(), "asyncua was upgraded: check twin.opcua.fastpath"

    async def check() -> list[tuple[int, Any]]:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LA", "LA-FILL")
            counter = await wu.get_child(f"{ns}:ProdProcessedCount")
            sub = await client.create_subscription(50, None, queue_maxsize=10_000)
            await sub.subscribe_data_change(counter, queuesize=0)
            seen: list[tuple[int, Any]] = []
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                event = await sub.next_event(timeout=0.2)
                if isinstance(event, DataChangeEvent):
                    dv = event.data.monitored_item.Value
                    seen.append((event.value, dv.SourceTimestamp))
            await sub.delete()
            return seen

    seen = run(check())
    values = [v for v, _ in seen]
    assert len(values) >= 3, f"too few changes in 2 s: {values}"
    assert values == list(range(values[0], values[0] + len(values))), values
    assert all(ts is not None for _, ts in seen)


def test_process_value_variants_are_the_doubles_asyncua_builds() -> None:
    for value in (0.0, -1.5, 21.25, 1e300):
        fast, built = double_variant(value), ua.Variant(value, ua.VariantType.Double)
        assert fast == built
        assert (fast.Value, fast.VariantType, fast.Dimensions, fast.is_array) == (
            built.Value,
            built.VariantType,
            built.Dimensions,
            built.is_array,
        )


def test_unpaced_runs_stamp_values_with_simulated_time_from_the_plant_start(
    mini: PlantModel,
) -> None:
    async def check() -> None:
        server = PlantServer(mini, "opc.tcp://127.0.0.1:4840")
        nodes = await server.build()
        publisher = OpcUaPublisher([server], mini.plant.start)
        publisher.on_counters(90.0, "LA-CAP", 7, 1, 7, None)
        await publisher.flush()
        assert server.server is not None
        node = server.server.get_node(nodes.work_units["LA-CAP"].variables["ProdProcessedCount"])
        dv = await node.read_data_value()
        assert dv.Value.Value == 7
        assert (dv.SourceTimestamp - mini.plant.start).total_seconds() == pytest.approx(90.0)

    run(check())


def test_store_and_start_reaches_the_simulated_work_unit(served: Served) -> None:
    plant, _ = served

    async def check() -> None:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LB", "LB-PRESS")
            method = await wu.get_child(f"{ns}:StoreAndStart")
            await wu.call_method(
                method,
                ua.Variant("JO-OPCUA-1", ua.VariantType.String),
                ua.Variant("PB", ua.VariantType.String),
                ua.Variant(5, ua.VariantType.Int32),
            )
            job = await wu.get_child(f"{ns}:JobOrderID")
            deadline = time.monotonic() + 10
            while await job.read_value() != "JO-OPCUA-1":
                assert time.monotonic() < deadline, "the job order never reached the machine"
                await asyncio.sleep(0.1)

    run(check())
    assert "JO-OPCUA-1" in plant.engine.ledger.summary()["job_orders"]


@pytest.mark.parametrize(
    ("args", "status"),
    [
        ((), "BadArgumentsMissing"),
        (("JO-X", "NO-SUCH-PRODUCT", 5), "BadInvalidArgument"),
        (("JO-Y", "PB", 0), "BadOutOfRange"),
        (("JO-Z", "PB", "five"), "BadTypeMismatch"),
    ],
)
def test_store_and_start_refuses_bad_calls_with_the_status_that_says_why(
    served: Served, args: tuple[Any, ...], status: str
) -> None:
    async def check() -> None:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LB", "LB-PRESS")
            method = await wu.get_child(f"{ns}:StoreAndStart")
            with pytest.raises(UaStatusCodeError) as refused:
                await wu.call_method(method, *args)
            assert type(refused.value).__name__ == status

    run(check())


def test_stop_then_reset_take_the_work_unit_offline_and_back(served: Served) -> None:
    async def wait_for(node: Any, want: Any) -> None:
        deadline = time.monotonic() + 15
        while await node.read_value() != want:
            assert time.monotonic() < deadline, f"never reached {want!r}"
            await asyncio.sleep(0.1)

    async def check() -> None:
        async with Client(_url(served)) as client:
            ns, wu = await _wu(client, "LA", "LA-CAP")
            state = await wu.get_child(f"{ns}:State")
            await wu.call_method(await wu.get_child(f"{ns}:Stop"))
            await wait_for(state, 2)  # PackML Stopped
            reason = await (await wu.get_child(f"{ns}:StopReason")).read_value()
            assert reason.startswith("offline")
            await wu.call_method(await wu.get_child(f"{ns}:Reset"))
            deadline = time.monotonic() + 15
            while await state.read_value() == 2:
                assert time.monotonic() < deadline, "Reset did not leave Stopped"
                await asyncio.sleep(0.1)

    run(check())


class _Alarms:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def event_notification(self, event: Any) -> None:
        self.events.append(event)


def test_breakdowns_raise_alarm_events_with_severity_at_the_server_object(
    served: Served,
) -> None:
    async def check() -> None:
        async with Client(_url(served)) as client:
            ns = await client.get_namespace_index(NAMESPACE_URI)
            etype = client.get_node(ua.NodeId(ua.String("WorkUnitAlarmEventType"), ua.Int16(ns)))
            handler = _Alarms()
            sub = await client.create_subscription(50, handler)
            await sub.subscribe_events(client.nodes.server, etype)
            deadline = time.monotonic() + 20
            while not any(e.AlarmName == "breakdown" and e.Active for e in handler.events):
                assert time.monotonic() < deadline, "no breakdown alarm in 20 s (~400 s sim)"
                await asyncio.sleep(0.1)
            alarm = next(e for e in handler.events if e.AlarmName == "breakdown" and e.Active)
            assert alarm.WorkUnit in ("LA-FILL", "LA-CAP")
            assert alarm.SourceName == alarm.WorkUnit
            assert alarm.Severity == 800  # the failure mode's severity in the plant model
            assert "jam" in alarm.Message.Text

    run(check())


def test_nodeset_export_holds_the_types_instances_and_units(
    mini: PlantModel, tmp_path: Path
) -> None:
    path = tmp_path / "plant.xml"
    count = run(export_nodeset(mini, path))
    assert count > 50
    tree = etree.parse(str(path))
    ns = {"n": "http://opcfoundation.org/UA/2011/03/UANodeSet.xsd"}
    uris = tree.xpath("//n:NamespaceUris/n:Uri/text()", namespaces=ns)
    assert uris == [NAMESPACE_URI]
    types = tree.xpath("//n:UAObjectType/@BrowseName", namespaces=ns)
    assert "1:WorkUnitType" in types
    assert "1:WorkUnitAlarmEventType" in types
    objects = tree.xpath("//n:UAObject/@BrowseName", namespaces=ns)
    assert {"1:LA-FILL", "1:LA-CAP", "1:LB-PRESS", "1:Plant"} <= set(objects)
    eu = tree.xpath("//n:UAVariable[@BrowseName='0:EngineeringUnits']", namespaces=ns)
    assert len(eu) == 3


def test_per_line_serves_each_line_on_consecutive_ports(mini: PlantModel) -> None:
    from twin.opcua.bench_raw import free_port
    from twin.opcua.runtime import ServeOptions

    async def check() -> list[tuple[str, list[str]]]:
        port = free_port()
        options = ServeOptions(endpoint=f"opc.tcp://127.0.0.1:{port}", per_line=True)
        plant = ServedPlant(mini, options, autorun=False)
        await plant.start()
        try:
            found = []
            for url in plant.endpoints:
                async with Client(url) as client:
                    ns = await client.get_namespace_index(NAMESPACE_URI)
                    folder = await client.nodes.objects.get_child(f"{ns}:Plant")
                    lines = [(await n.read_browse_name()).Name for n in await folder.get_children()]
                    found.append((url, lines))
            return found
        finally:
            await plant.stop()

    found = run(check())
    (url_a, lines_a), (url_b, lines_b) = found
    assert lines_a == ["LA"] and lines_b == ["LB"]
    assert int(url_b.rsplit(":", 1)[1]) == int(url_a.rsplit(":", 1)[1]) + 1


def test_initial_values_are_dated_at_the_plant_start_not_when_the_server_was_built(
    mini: PlantModel,
) -> None:
    """A client's first read of a tag the plant has not written yet (the work unit still
    Stopped) is dated at the plant's start: dated at the wall clock it would be later than
    everything the plant then reports, and an MES keeping the latest state would show the
    work unit offline for the whole run (issue 13)."""

    async def check() -> None:
        server = PlantServer(mini, "opc.tcp://127.0.0.1:4840")
        nodes = await server.build()
        assert server.server is not None
        wu = nodes.work_units["LA-CAP"]
        for nodeid in (wu.variables["State"], wu.variables["ProdProcessedCount"]):
            dv = server.server.read_attribute_value(nodeid)
            assert dv.SourceTimestamp == mini.plant.start

    run(check())
