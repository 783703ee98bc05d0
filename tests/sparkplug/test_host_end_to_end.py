"""End to end over Sparkplug B: twin edge nodes -> Mosquitto -> the MES's host
application -> MES (a child process, SQLite), with the host's MQTT session and an edge
node's session each dropped mid-run. The MES's counts per work unit must equal the
twin's ground-truth ledger exactly and every event made must be stored once. Then Eclipse
Tahu's JavaScript client (``sparkplug-client``, ``node/edge.js``) as an edge node, born
before the host: the host asks it for a rebirth and ingests its counts exactly. ~25 s
with the MES's start."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_support import (
    BROKER_URL,
    clear_retained,
    require_broker,
    served_over_sparkplug,
    start_node_script,
    tahu_node,
    unique_group,
)
from opcua.e2e_support import integration_key, mes_counts, mes_event_count, start_mes

from mes_core.client import AsyncMesClient
from mes_core.connectors.opcua.connector import Connector, ConnectorOptions
from mes_core.connectors.opcua.spool import Spool
from mes_core.connectors.sparkplug.host import HostLink, HostOptions
from plant_models.loader import load_plant_model
from plant_models.schema import PlantModel
from sparkplug_b.topic import state_topic
from twin.opcua.runtime import ServedPlant
from twin.scenario.mes_process import MesProcess

MINI = Path(__file__).parents[1] / "opcua" / "mini_plant.yaml"
SETTLE_S = 30.0


@pytest.fixture(scope="module")
def mini() -> PlantModel:
    return load_plant_model(MINI)


@pytest.fixture(scope="module")
def mes(
    tmp_path_factory: pytest.TempPathFactory, mini: PlantModel
) -> Iterator[tuple[MesProcess, str, str]]:
    require_broker()
    tmp = tmp_path_factory.mktemp("mes-sparkplug")
    url = f"sqlite:///{tmp / 'mes.db'}"
    process = start_mes(url, tmp)
    try:
        yield process, url, integration_key(process.url, mini)
    finally:
        process.stop()


def _drop(client: object) -> None:
    """Cut an MQTT session without a DISCONNECT (as a network drop does)."""
    sock = client.socket()  # type: ignore[attr-defined]
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)


async def _run(
    mes: tuple[MesProcess, str, str], model: PlantModel, spool_path: Path
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], Connector, HostLink]:
    process, database_url, api_key = mes
    group = unique_group("e2e")
    options = served_over_sparkplug(group)
    stop = asyncio.Event()
    spool = Spool(spool_path)
    host = HostLink(BROKER_URL, HostOptions(groups=(group,), host_id=f"host-{group}"), {})
    async with AsyncMesClient(process.url, api_key=api_key) as client:
        connector = Connector(
            [], client, spool, ConnectorOptions(dispatch_interval_s=0), links=[host]
        )
        task = asyncio.create_task(connector.run(stop))
        await connector.wait_connected()
        # The host is online before the twin: it sees the births as they are published.
        async with ServedPlant(model, options) as plant:
            await asyncio.sleep(1.5)
            _drop(host.client)  # the host's session: rebirths resynchronise
            await asyncio.sleep(1.5)
            _drop(plant.sparkplug.nodes["LA"].client)  # an edge node's session
            await asyncio.sleep(2.0)
            await plant.halt()
            summary = plant.engine.ledger.summary()
        expected = {code: (wu["good"], wu["scrap"]) for code, wu in summary["work_units"].items()}
        expected = {code: gs for code, gs in expected.items() if gs != (0, 0)}
        got: dict[str, tuple[int, int]] = {}
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            got = {}
            for source in ("sparkplug:" + group + "/LA", "sparkplug:" + group + "/LB"):
                got.update(await asyncio.to_thread(mes_counts, database_url, source))
            if got == expected and not connector.outbox:
                break
            await asyncio.sleep(0.5)
        stop.set()
        await task
    spool.close()
    return got, expected, connector, host


def test_mes_counts_equal_the_twin_ledger_through_dropped_mqtt_sessions(
    mes: tuple[MesProcess, str, str], mini: PlantModel, tmp_path: Path
) -> None:
    got, expected, connector, host = asyncio.run(_run(mes, mini, tmp_path / "spool.sqlite"))
    clear_retained(state_topic(host.options.host_id))
    assert expected, "the twin made nothing: the test plant is broken"
    assert got == expected
    assert host.faults >= 1 and host.connects >= 2  # the host's session was dropped
    la = next(t for (g, n), t in host.nodes.items() if n == "LA")
    assert la.births >= 2  # reborn after its own drop (and after the host's)
    assert host.rebirths_requested >= 1
    assert connector.sent == connector.produced
    stored = sum(mes_event_count(mes[1], track.builder.source) for track in host.nodes.values())
    assert stored == connector.produced  # every event once


async def _ingest_tahu(
    mes: tuple[MesProcess, str, str], spool_path: Path, node: str
) -> tuple[dict[str, int], dict[str, tuple[int, int]], HostLink]:
    process, database_url, api_key = mes
    group = unique_group("tahuedge")
    # Tahu's edge node is born before the host is up: the host sees DDATA without a birth
    # and must ask for one (NCMD Node Control/Rebirth), which Tahu's client answers.
    proc = await asyncio.to_thread(
        start_node_script, node, "edge.js", BROKER_URL, group, "60", ready="born"
    )
    stop = asyncio.Event()
    spool = Spool(spool_path)
    host = HostLink(BROKER_URL, HostOptions(groups=(group,), host_id=f"host-{group}"), {})
    try:
        async with AsyncMesClient(process.url, api_key=api_key) as client:
            connector = Connector(
                [], client, spool, ConnectorOptions(dispatch_interval_s=0), links=[host]
            )
            task = asyncio.create_task(connector.run(stop))
            out, err = await asyncio.to_thread(proc.communicate, None, 60)
            assert proc.returncode == 0, err[-2000:]
            tahu = json.loads(out.strip().splitlines()[-1])
            expected = {"TAHU-WU1": (tahu["processed"] - tahu["defective"], tahu["defective"])}
            got: dict[str, tuple[int, int]] = {}
            deadline = time.monotonic() + SETTLE_S
            while time.monotonic() < deadline:
                got = await asyncio.to_thread(
                    mes_counts, database_url, f"sparkplug:{group}/TAHU-L1"
                )
                if got == expected and not connector.outbox:
                    break
                await asyncio.sleep(0.3)
            stop.set()
            await task
    finally:
        proc.kill()
        spool.close()
    return tahu, got, host


def test_tahu_edge_node_is_ingested_by_the_host_after_a_rebirth_it_asked_for(
    mes: tuple[MesProcess, str, str], tmp_path: Path
) -> None:
    node = tahu_node()
    tahu, got, host = asyncio.run(_ingest_tahu(mes, tmp_path / "spool.sqlite", node))
    clear_retained(state_topic(host.options.host_id))
    assert tahu["processed"] == 60 and tahu["defective"] == 12
    assert tahu["rebirths"] >= 1  # Tahu's client answered the host's NCMD
    assert got == {"TAHU-WU1": (48, 12)}
    assert host.bindings["TAHU-WU1"].line == "TAHU-L1"
