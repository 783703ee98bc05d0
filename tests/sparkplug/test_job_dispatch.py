"""Job dispatch over Sparkplug B (issue 16): the MES's host application sends the
``JobControl`` DCMDs where the OPC UA connector calls ``StoreAndStart``, and the twin's
edge nodes hand them to the engine as its OPC UA server hands the methods, with the
same argument checks and status names. Real broker (Mosquitto at 127.0.0.1:1883), the
twin served with its engine in a thread (``mestwin twin serve --sparkplug``), the
connector's own ``dispatch_once`` against a stand-in for the MES's job order API."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mqtt_support import (
    BROKER_URL,
    MINI,
    clear_retained,
    require_broker,
    served_over_sparkplug,
    unique_group,
)

from mes_core.connectors.opcua.connector import Connector, ConnectorOptions, DispatchRefused
from mes_core.connectors.opcua.spool import Spool
from mes_core.connectors.sparkplug.host import HostLink, HostOptions
from plant_models.loader import load_plant_model
from sparkplug_b.payload import DataType
from sparkplug_b.topic import state_topic
from twin.opcua.runtime import ServedPlant
from twin.sparkplug.edge import device_metrics


class JobOrderApi:
    """What ``Connector.dispatch_once`` asks of the MES: released job orders, the
    equipment, and the dispatch itself."""

    def __init__(self, jobs: list[Any]) -> None:
        self.jobs = jobs
        self.dispatched: list[str] = []

    async def list_job_orders(self, state: str) -> list[Any]:
        return [j for j in self.jobs if j.state == state]

    async def list_equipment(self) -> list[Any]:
        return [SimpleNamespace(code="LB-PRESS", parent="LB", equipment_class="Press")]

    async def dispatch_job_order(self, code: str, work_units: dict[int, str]) -> None:
        self.dispatched.append(code)


def _job(code: str, product: str, quantity: int) -> Any:
    op = SimpleNamespace(sequence=1, planned_work_unit="LB-PRESS", equipment_class="Press")
    return SimpleNamespace(
        code=code, state="released", product=product, quantity=quantity, operations=[op]
    )


async def _until(what: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise TimeoutError("not within the timeout")
        await asyncio.sleep(0.02)


async def _dispatch(tmp_path: Path) -> dict[str, Any]:
    group = unique_group("jc")
    host = HostLink(BROKER_URL, HostOptions(groups=(group,), host_id=f"host-{group}"), {})
    # JO-1 names the product by its material (as an MES does): the twin maps it, as OPC UA.
    mes = JobOrderApi([_job("JO-1", "FG-B", 100_000), _job("JO-2", "NO-SUCH-PRODUCT", 5)])
    spool = Spool(tmp_path / "spool.sqlite")
    connector = Connector(
        [],
        mes,
        spool,
        ConnectorOptions(dispatch_interval_s=0),
        links=[host],  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    options = served_over_sparkplug(group)
    out: dict[str, Any] = {}
    running = asyncio.create_task(host.run(stop))

    async def collecting() -> None:
        while not stop.is_set():
            connector.collect()
            await asyncio.sleep(0.05)

    collector = asyncio.create_task(collecting())
    try:
        await asyncio.wait_for(host.connected.wait(), 10)
        async with ServedPlant(load_plant_model(MINI), options) as plant:
            await _until(lambda: "LB-PRESS" in host.bindings)
            out["sent"] = await connector.dispatch_once()
            out["dispatched"], out["refused"] = set(connector.dispatched), set(connector.refused)
            out["mes_dispatched"] = list(mes.dispatched)
            ledger = plant.engine.ledger
            engine_press = plant.engine.work_units["LB-PRESS"]
            await _until(lambda: "JO-1" in ledger.jobs and engine_press.state == "running")
            out["job"] = ledger.jobs["JO-1"]
            # A wrong call is answered with the status the OPC UA method would give.
            press = "LB-PRESS"
            args = {
                "JobControl/StoreAndStart/jobOrderId": (DataType.String, "JO-3"),
                "JobControl/StoreAndStart/productId": (DataType.String, "PB"),
                "JobControl/StoreAndStart/quantity": (DataType.Int32, 0),
            }
            out["refusals"] = []
            for call in (
                host.command(press, "StoreAndStart", args, label="StoreAndStart JO-3"),
                host.command(press, "StoreAndStart", {}),
            ):
                try:
                    await call
                except DispatchRefused as exc:
                    out["refusals"].append(str(exc))
            # Stop takes the press offline (after its cycle), Reset lets JO-1 go on.
            await host.stop(press)
            await _until(lambda: engine_press.state == "offline")
            await host.reset(press)
            await _until(lambda: engine_press.state == "running")
            out["edge_commands"] = plant.sparkplug.commands
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await running
        collector.cancel()
        spool.close()
        clear_retained(state_topic(host.options.host_id))
    return out


def test_the_host_dispatches_job_orders_over_dcmd_where_opcua_calls_store_and_start(
    tmp_path: Path,
) -> None:
    require_broker()
    out = asyncio.run(_dispatch(tmp_path))
    assert out["sent"] == 1
    assert out["dispatched"] == {"JO-1"}
    assert out["refused"] == {"JO-2"}  # the engine does not know the product
    assert out["mes_dispatched"] == ["JO-1", "JO-2"]  # the MES was told before the machine
    assert out["job"].product == "PB" and out["job"].line == "LB"
    assert out["refusals"] == [
        "LB-PRESS.StoreAndStart JO-3: BadOutOfRange",
        "LB-PRESS.StoreAndStart: BadArgumentsMissing",
    ]
    assert out["edge_commands"] == 6  # JO-1, JO-2, the two wrong calls, Stop, Reset


def test_every_job_control_metric_is_declared_in_the_dbirth() -> None:
    model = load_plant_model(MINI)
    wu = model.lines[1].work_units[0]
    declared = {m.name: m.datatype for m in device_metrics(wu)}
    assert {k: v for k, v in declared.items() if k.startswith("JobControl/")} == {
        "JobControl/StoreAndStart": DataType.Boolean,
        "JobControl/Stop": DataType.Boolean,
        "JobControl/Reset": DataType.Boolean,
        "JobControl/StoreAndStart/jobOrderId": DataType.String,
        "JobControl/StoreAndStart/productId": DataType.String,
        "JobControl/StoreAndStart/quantity": DataType.Int32,
        "JobControl/Result": DataType.String,
    }
