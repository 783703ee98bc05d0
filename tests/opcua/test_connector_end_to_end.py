"""End to end: twin -> OPC UA server -> connector -> MES, on SQLite and PostgreSQL.

The MES runs as a child process (``mestwin serve``) so it can be killed and started again;
the twin (engine thread + OPC UA server) and the connector run in the test's event loop.
The MES's recorded counts (good and scrap per work unit, from the count events of this
run's source) must equal the twin's ground-truth ledger exactly: in a clean run and with
the MES killed and restarted mid-run (both databases), with the OPC UA server restarted
mid-run (PostgreSQL), and across a restart of the connector itself (SQLite).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import Client
from e2e_support import (
    ADMIN_PASSWORD,
    integration_key,
    mes_counts,
    mes_event_count,
    start_mes,
    wait_ready,
)
from prometheus_client.parser import text_string_to_metric_families
from support import postgres_url, require, throwaway_postgres

from mes_core.client import AsyncMesClient, MesClient
from mes_core.connectors.opcua.connector import Connector, ConnectorOptions
from mes_core.connectors.opcua.spool import Spool
from mes_core.schemas.execution import JobOrderCreate
from mes_core.schemas.plant_events import MeasurementEvent
from plant_models.loader import load_plant_model
from plant_models.schema import PlantModel
from twin.opcua.bench_raw import free_port
from twin.opcua.processes import LineProcessOptions, PerLinePlant
from twin.opcua.runtime import ServedPlant, ServeOptions
from twin.scenario.mes_process import MesProcess

MINI = Path(__file__).with_name("mini_plant.yaml")
SPEED = 20.0
SETTLE_S = 30.0


@dataclass
class Mes:
    process: MesProcess
    database_url: str
    api_key: str


@pytest.fixture(scope="module")
def mini() -> PlantModel:
    return load_plant_model(MINI)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mini: PlantModel
) -> Iterator[Mes]:
    """One MES process per database backend for the module."""
    tmp = tmp_path_factory.mktemp(f"mes-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'mes.db'}"
        process = start_mes(url, tmp)
        try:
            yield Mes(process, url, integration_key(process.url, mini))
        finally:
            process.stop()
        return
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_opcua") as url:
        process = start_mes(url, tmp)
        try:
            yield Mes(process, url, integration_key(process.url, mini))
        finally:
            process.stop()


async def _run(
    mes: Mes, model: PlantModel, spool_path: Path, fault: str
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], Connector]:
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    options = ServeOptions(endpoint=url, speed=SPEED, auto_dispatch=False)
    stop = asyncio.Event()
    async with ServedPlant(model, options) as plant:
        spool = Spool(spool_path)
        async with AsyncMesClient(mes.process.url, api_key=mes.api_key) as client:
            connector = Connector(
                [url], client, spool, ConnectorOptions(backoff_max_s=1.0, dispatch_interval_s=0)
            )
            task = asyncio.create_task(connector.run(stop))
            await connector.wait_connected()
            await asyncio.sleep(1.5)
            if fault == "opcua":
                await plant.restart_servers(downtime=1.0)
            elif fault == "mes":
                mes.process.kill()
                await asyncio.sleep(2.0)
                mes.process.start()
                await asyncio.to_thread(wait_ready, mes.process.url)
            await asyncio.sleep(1.5)
            await plant.halt()
            summary = plant.engine.ledger.summary()
            expected = {
                code: (wu["good"], wu["scrap"]) for code, wu in summary["work_units"].items()
            }
            expected = {code: gs for code, gs in expected.items() if gs != (0, 0)}
            source = f"opcua:{url}"
            deadline = time.monotonic() + SETTLE_S
            got: dict[str, tuple[int, int]] = {}
            while time.monotonic() < deadline:
                got = await asyncio.to_thread(mes_counts, mes.database_url, source)
                if got == expected and not connector.outbox:
                    break
                await asyncio.sleep(0.5)
            stop.set()
            await task
        spool.close()
    return got, expected, connector


def test_mes_counts_equal_the_twin_ledger_exactly(
    mes: Mes, mini: PlantModel, tmp_path: Path
) -> None:
    got, expected, connector = asyncio.run(_run(mes, mini, tmp_path / "spool.sqlite", "none"))
    assert expected, "the twin made nothing: the test plant is broken"
    assert got == expected
    assert connector.sent == connector.produced
    source = connector.links[0].builder.source
    # Every event made was stored once (state changes, counts, measurements, alarms).
    assert mes_event_count(mes.database_url, source) == connector.produced


# The OPC UA fault is the connector's business, not the database's: PostgreSQL only.
@pytest.mark.parametrize("mes", ["postgres"], indirect=True)
def test_counts_stay_exact_when_the_opcua_server_restarts_mid_run(
    mes: Mes, mini: PlantModel, tmp_path: Path
) -> None:
    got, expected, connector = asyncio.run(_run(mes, mini, tmp_path / "spool.sqlite", "opcua"))
    assert connector.links[0].faults >= 1, "the connector never noticed the server going away"
    assert connector.links[0].connects >= 2
    assert got == expected


def test_counts_stay_exact_when_the_mes_is_killed_and_restarted_mid_run(
    mes: Mes, mini: PlantModel, tmp_path: Path
) -> None:
    got, expected, connector = asyncio.run(_run(mes, mini, tmp_path / "spool.sqlite", "mes"))
    assert connector.mes_faults >= 1, "the connector never noticed the MES going away"
    assert got == expected


# Dispatch and the connector's own restart do not depend on the MES's database: SQLite.
@pytest.mark.parametrize("mes", ["sqlite"], indirect=True)
def test_released_job_orders_are_dispatched_to_the_machine_with_store_and_start(
    mes: Mes, mini: PlantModel, tmp_path: Path
) -> None:
    code = f"JO-DISPATCH-{time.monotonic_ns()}"
    with MesClient(mes.process.url).login("admin", ADMIN_PASSWORD) as admin:
        admin.create_job_order(JobOrderCreate(code=code, product="FG-B", routing="PB", quantity=4))
        admin.release_job_order(code)

    async def go() -> tuple[str, str, dict[str, object]]:
        url = f"opc.tcp://127.0.0.1:{free_port()}"
        options = ServeOptions(endpoint=url, speed=SPEED, auto_dispatch=False)
        stop = asyncio.Event()
        async with ServedPlant(mini, options) as plant:
            spool = Spool(tmp_path / "spool.sqlite")
            async with AsyncMesClient(mes.process.url, api_key=mes.api_key) as client:
                connector = Connector(
                    [url], client, spool, ConnectorOptions(dispatch_interval_s=0.3)
                )
                task = asyncio.create_task(connector.run(stop))
                await connector.wait_connected()
                deadline = time.monotonic() + 20
                while code not in plant.engine.ledger.summary()["job_orders"]:
                    assert time.monotonic() < deadline, "the job order never reached the twin"
                    await asyncio.sleep(0.2)
                job = await client.get_job_order(code)
                stop.set()
                await task
            spool.close()
            ledger_job = plant.engine.ledger.summary()["job_orders"][code]
        return job.state, str(job.operations[0].planned_work_unit), ledger_job

    state, planned, ledger_job = asyncio.run(go())
    assert state in ("dispatched", "running", "completed")
    assert planned == "LB-PRESS"
    assert ledger_job["source"] == "store_and_start"
    assert ledger_job["line"] == "LB"
    assert ledger_job["quantity"] == 4


@pytest.mark.parametrize("mes", ["sqlite"], indirect=True)
def test_a_restarted_connector_replays_its_spool_and_counts_stay_exact(
    mes: Mes, mini: PlantModel, tmp_path: Path
) -> None:
    """The first connector never reaches the MES and is stopped; a second one on the same
    spool sends what the first collected, continues its sequence and its counters."""
    spool_path = tmp_path / "spool.sqlite"

    async def go() -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], int, int]:
        url = f"opc.tcp://127.0.0.1:{free_port()}"
        options = ServeOptions(endpoint=url, speed=SPEED, auto_dispatch=False)
        dead_mes = f"http://127.0.0.1:{free_port()}"
        fast = ConnectorOptions(backoff_max_s=0.5, dispatch_interval_s=0)
        async with ServedPlant(mini, options) as plant:
            first_stop = asyncio.Event()
            spool = Spool(spool_path)
            async with AsyncMesClient(dead_mes, api_key=mes.api_key) as nowhere:
                first = Connector([url], nowhere, spool, fast)
                task = asyncio.create_task(first.run(first_stop))
                await first.wait_connected()
                await asyncio.sleep(2.0)
                first_stop.set()
                await task
            spool.close()
            assert first.sent == 0 and first.produced > 0
            await asyncio.sleep(1.0)  # the plant goes on without a connector
            spool = Spool(spool_path)
            stop = asyncio.Event()
            async with AsyncMesClient(mes.process.url, api_key=mes.api_key) as client:
                second = Connector([url], client, spool, fast)
                replayed = len(second.outbox)
                task = asyncio.create_task(second.run(stop))
                await second.wait_connected()
                await asyncio.sleep(1.0)
                await plant.halt()
                summary = plant.engine.ledger.summary()
                expected = {
                    code: (wu["good"], wu["scrap"])
                    for code, wu in summary["work_units"].items()
                    if (wu["good"], wu["scrap"]) != (0, 0)
                }
                source = f"opcua:{url}"
                deadline = time.monotonic() + SETTLE_S
                got: dict[str, tuple[int, int]] = {}
                while time.monotonic() < deadline:
                    got = await asyncio.to_thread(mes_counts, mes.database_url, source)
                    if got == expected and not second.outbox:
                        break
                    await asyncio.sleep(0.5)
                stop.set()
                await task
            spool.close()
            stored = await asyncio.to_thread(mes_event_count, mes.database_url, source)
        return got, expected, replayed, stored - first.produced - second.produced

    got, expected, replayed, extra = asyncio.run(go())
    assert replayed > 0, "the second connector found nothing in the spool"
    assert got == expected
    assert extra == 0, "events were lost or doubled across the restart"


def _temperatures(source: str, work_unit: str, n: int) -> list[MeasurementEvent]:
    """``n`` temperature measurements of ``work_unit`` from ``source``, sequences 1..n."""
    stamp = datetime.now(UTC)
    return [
        MeasurementEvent(source=source, sequence=i + 1, work_unit=work_unit, timestamp=stamp,
                         characteristic="Temperature", value=20.5 + i, unit="degC")
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("mes", ["sqlite"], indirect=True)
def test_the_mes_metrics_show_the_connector_spool_depth_as_it_drains(
    mes: Mes, mini: PlantModel, tmp_path: Path
) -> None:
    """Each batch tells the MES how many events still wait behind it in the connector's
    spool: ``mestwin_connector_spool_depth{collector=<name>}`` on the MES's /metrics."""
    spool = Spool(tmp_path / "spool.sqlite")
    source = f"opcua:spool-depth-{time.monotonic_ns()}"
    work_unit = mini.lines[0].work_units[0].code
    waiting = _temperatures(source, work_unit, 25)
    spool.append([e.model_dump_json() for e in waiting], {})
    name = "line-B-connector"

    def depth(text: str) -> float | None:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "mestwin_connector_spool_depth" and sample.labels == {
                    "collector": name
                }:
                    return sample.value
        return None

    async def go() -> tuple[float | None, list[float | None], int]:
        async with (
            AsyncMesClient(mes.process.url, api_key=mes.api_key) as client,
            httpx.AsyncClient(base_url=mes.process.url) as http,
        ):
            # Nothing listens at this OPC UA address: the connector is only sending here.
            connector = Connector(
                [f"opc.tcp://127.0.0.1:{free_port()}"],
                client,
                spool,
                ConnectorOptions(batch_size=10, name=name, dispatch_interval_s=0),
            )
            before = depth((await http.get("/metrics")).text)
            seen = []
            while connector.outbox:
                assert await connector.send_once() > 0, "the MES did not take a batch"
                seen.append(depth((await http.get("/metrics")).text))
            return before, seen, connector.sent

    before, seen, sent = asyncio.run(go())
    spool.close()
    assert before is None
    assert seen == [15, 5, 0]
    assert sent == 25


@pytest.mark.parametrize("mes", ["sqlite"], indirect=True)
def test_spooled_events_are_posted_as_stored_and_a_malformed_batch_goes_to_dead_letter(
    mes: Mes, mini: PlantModel, tmp_path: Path
) -> None:
    """The connector posts the JSON the spool holds as it is (``ingest_json``): the MES
    takes it as it takes ``ingest`` of the same events (a replay of them through
    ``ingest`` is all duplicates). A stored event the MES refuses (422) moves its batch to
    the spool's ``dead_letter``; the batches after it are still sent."""
    spool = Spool(tmp_path / "spool.sqlite")
    source = f"opcua:raw-json-{time.monotonic_ns()}"
    work_unit = mini.lines[0].work_units[0].code
    events = _temperatures(source, work_unit, 25)
    bodies = [e.model_dump_json() for e in events]
    bodies[13] = bodies[13].replace('"sequence":14', '"sequence":0')  # not >= 1: malformed
    spool.append(bodies, {})

    async def go() -> tuple[int, int, int]:
        async with AsyncMesClient(mes.process.url, api_key=mes.api_key) as client:
            connector = Connector(
                [f"opc.tcp://127.0.0.1:{free_port()}"],
                client,
                spool,
                ConnectorOptions(batch_size=10, dispatch_interval_s=0),
            )
            took = [await connector.send_once() for _ in range(3)]
            assert not connector.outbox
            replay = await client.ingest([e for i, e in enumerate(events) if not 10 <= i < 20])
            return sum(took), replay.accepted, replay.duplicates

    sent, accepted, duplicates = asyncio.run(go())
    assert sent == 15
    assert (accepted, duplicates) == (0, 15)
    assert spool.dead_letters() == 10
    assert spool.depth() == 0
    spool.close()


async def _pace(url: str) -> dict[str, object]:
    async with Client(url) as client:
        ns = await client.get_namespace_index("urn:mestwin:twin")
        pace = await client.nodes.objects.get_child([f"{ns}:Plant", f"{ns}:Pace"])
        return {
            (await v.read_browse_name()).Name: await v.read_value()
            for v in await pace.get_children()
        }


async def _reconcile(plant: PerLinePlant, mes: Mes, spool: Path) -> tuple[Any, ...]:
    stop = asyncio.Event()
    store = Spool(spool)
    db = mes.database_url
    async with AsyncMesClient(mes.process.url, api_key=mes.api_key) as client:
        connector = Connector(
            plant.endpoints, client, store, ConnectorOptions(dispatch_interval_s=0)
        )
        task = asyncio.create_task(connector.run(stop))
        await connector.wait_connected()
        await asyncio.sleep(2.0)
        pace = await _pace(plant.endpoints[1])
        results = await asyncio.to_thread(plant.halt)
        expected: dict[str, tuple[int, ...]] = {}
        for result in results.values():
            expected.update({c: tuple(gs) for c, gs in result["work_units"].items() if any(gs)})
        got: dict[str, tuple[int, int]] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = {}
            for url in plant.endpoints:
                got.update(await asyncio.to_thread(mes_counts, db, f"opcua:{url}"))
            if got == expected and not connector.outbox:
                break
            await asyncio.sleep(0.3)
        stop.set()
        await task
    store.close()
    return got, expected, results, pace, connector


def _both_lines_producing() -> PlantModel:
    """The test plant with line B making its product without job orders, as line A does."""
    mini = load_plant_model(MINI)
    lines = [
        x.model_copy(update={"continuous_product": "PB"}) if x.code == "LB" else x
        for x in mini.lines
    ]
    return mini.model_copy(update={"lines": lines})


# One process per line (twin serve --per-line), one connector for both servers: SQLite.
@pytest.mark.parametrize("mes", ["sqlite"], indirect=True)
def test_two_line_processes_on_one_clock_reconcile_through_one_mes(
    mes: Mes, tmp_path: Path
) -> None:
    mini = _both_lines_producing()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    plant = PerLinePlant(
        mini,
        endpoint,
        LineProcessOptions(speed=SPEED, auto_dispatch=False, max_lag=5.0, any_port=True),
        endpoints=[endpoint, f"opc.tcp://127.0.0.1:{free_port()}"],
        start_method="fork",
    )
    clock = plant.start()
    try:
        got, expected, results, pace, connector = asyncio.run(
            _reconcile(plant, mes, tmp_path / "spool.sqlite")
        )
    finally:
        plant.stop()

    assert set(results) == {"LA", "LB"}
    assert {c[:2] for c in expected} == {"LA", "LB"}, "both lines must have made something"
    assert got == expected
    assert connector.sent == connector.produced
    # One clock: both engines started within a few ms of the common origin, stood at the
    # same plant time when halted (within the halt's own spread), never ahead of the clock.
    seconds = [r["plant_seconds"] for r in results.values()]
    assert abs(seconds[0] - seconds[1]) < 2.0 * SPEED
    assert max(seconds) <= clock.plant_seconds()
    assert pace["Speed"] == SPEED
    assert 0.0 <= pace["StartSkewSeconds"] < 0.1
    assert pace["CannotKeepPace"] is False
    assert pace["Origin"].timestamp() == pytest.approx(clock.origin, abs=1e-3)
