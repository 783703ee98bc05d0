"""Scenario runs over the real OPC UA link: twin engine -> twin OPC UA server -> fault
proxy -> ``mestwin connect`` (child process) -> MES ingest (PRODUCT.md issues 5 and 6).

Shortened like tests/scenario/test_scenario_runs.py (a few simulated hours, order
quantities scaled down); the records must reconcile exactly, with and without a fault.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import ua

from mes_core.schemas.plant_events import IngestResult, MeasurementEvent, PlantEvent
from plant_models.loader import load_plant_model
from plant_models.scenario import SCENARIOS_DIR
from twin.hooks import PackMLState
from twin.scenario.link import DirectCollector, Sampling
from twin.scenario.opcua_link import OpcUaLink, sent_through
from twin.scenario.runner import RunOptions, RunResult, run_scenario

FULL_DAY_ONLY = {"oee", "throughput"}
START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def over_opcua(tmp_path: Path, name: str, duration: str, **changes: Any) -> Path:
    """A shortened copy of a shipped scenario whose equipment link is OPC UA."""
    data = yaml.safe_load((SCENARIOS_DIR / f"{name}.yaml").read_text())
    data["plant"] = str((SCENARIOS_DIR.parent / f"{data['plant']}.yaml").resolve())
    data["duration"] = duration
    data["link"] = "opcua"
    data["expectations"] = [e for e in data["expectations"] if e["type"] not in FULL_DAY_ONLY]
    data.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(path: Path, tmp_path: Path) -> RunResult:
    return run_scenario(
        RunOptions(scenario=path, report_dir=tmp_path / "report", order_scale=0.1, progress=False)
    )


def passed(result: RunResult) -> dict[str, Any]:
    failed = [f"{e.name}: {e.detail}" for e in result.report.expectations if not e.passed]
    log = result.report_dir / "connector.log"
    tail = log.read_text()[-3000:] if log.exists() else "(no connector log)"
    assert result.exit_code == 0, "\n".join(failed) + "\n" + tail
    data: dict[str, Any] = json.loads((result.report_dir / "report.json").read_text())
    return data


def _observe(obs: OpcUaLink | DirectCollector) -> None:
    """A filler that idles, runs (values every 10 s, units counted), stops, runs again."""
    obs.on_state(0.0, "F", "idle", PackMLState.IDLE, "", None)
    obs.on_value(5.0, "F", "FillWeight", 500.0, None)  # idle: not a check of a product
    obs.on_job(6.0, "F", "JO-1", "W", "LOT-1", None)
    obs.on_state(10.0, "F", "running", PackMLState.EXECUTE, "", None)
    for n in range(1, 31):
        obs.on_counters(10.0 + 10 * n, "F", 4 * n, 0, 4 * n, None)
        obs.on_value(10.0 + 10 * n, "F", "FillWeight", 500.0 + n, None)
        obs.on_value(10.0 + 10 * n, "F", "Torque", 2.0 + n / 100, None)
        if n == 15:
            obs.on_state(160.0, "F", "down", PackMLState.HELD, "jam", None)
            obs.on_value(165.0, "F", "FillWeight", 0.0, None)
            obs.on_state(170.0, "F", "running", PackMLState.EXECUTE, "", None)


def test_opcua_link_publishes_the_in_process_checks_the_direct_collector_sends(
    tmp_path: Path,
) -> None:
    plans = {("F", "FillWeight"): Sampling("fill_weight", every_seconds=60.0)}
    plans[("F", "Torque")] = Sampling("torque", every_units=50)
    posted: list[PlantEvent] = []

    def post(batch: list[PlantEvent]) -> IngestResult:
        posted.extend(batch)
        return IngestResult(accepted=len(batch), duplicates=0, received_at=START)

    direct = DirectCollector(post, source="t", start=START, characteristics=plans)
    model = load_plant_model(SCENARIOS_DIR.parent / "bottling_line.yaml")
    link = OpcUaLink(
        model,
        mes_url="http://127.0.0.1:9",
        api_key="-",
        workdir=tmp_path,
        characteristics=plans,
        clock=lambda: 0.0,
    )
    _observe(direct)
    _observe(link)
    assert direct.drain(timeout=1)
    sent = [
        (e.timestamp, e.characteristic, e.value) for e in posted if isinstance(e, MeasurementEvent)
    ]
    published = [
        (START + timedelta(seconds=h.args[0]), plans[("F", h.args[2])].characteristic, h.args[3])
        for h in link._held
        if h.method == "on_value"
    ]
    assert published == sent
    # Fill weight every 60 s while running (20, 80, 140, 200, 260 s; not while idle or
    # down), torque every 50 units (4, 56, 108 units).
    assert [c for _, c, _ in sent].count("fill_weight") == 5
    assert [c for _, c, _ in sent].count("torque") == 3


def test_the_connectors_watermark_vouches_for_every_change_the_server_sent() -> None:
    """The link's barrier: the server says which notification message carries the last
    change written (``sent_through``: asyncua's ``InternalSubscription`` internals, pinned
    here), the connector's subscription says how far it received (``Through``); once it
    reached that message every change written is in its buffer, in order."""
    from asyncua import Client, Server

    from mes_core.client.local import free_port
    from mes_core.connectors.opcua.connector import BufferedSubscription, _Buffer

    async def main() -> None:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{free_port()}")
        var = await server.nodes.objects.add_variable(2, "Count", 0)
        async with server:
            assert await sent_through(server) is None
            async with Client(server.endpoint.geturl()) as client:
                buffer = _Buffer()
                params = ua.CreateSubscriptionParameters(
                    RequestedPublishingInterval=50,
                    RequestedLifetimeCount=ua.UInt32(600),
                    RequestedMaxKeepAliveCount=ua.UInt32(20),
                    MaxNotificationsPerPublish=ua.UInt32(0),
                    PublishingEnabled=True,
                    Priority=ua.Byte(0),
                )
                sub = BufferedSubscription(client.uaclient.session, params, buffer, "test")
                await sub.init()
                await sub.subscribe_data_change(client.get_node(var.nodeid), queuesize=0)
                for n in range(1, 6):
                    await server.write_attribute_value(
                        var.nodeid, ua.DataValue(ua.Variant(n, ua.VariantType.Int64))
                    )
                target = await sent_through(server)
                assert target is not None and target[1] >= 1
                for _ in range(500):
                    through = buffer.through
                    if through is not None and through.sequence >= target[1]:
                        break
                    await asyncio.sleep(0.01)
                assert buffer.through is not None
                assert (buffer.through.subscription, buffer.through.sequence) == target
                assert [v for _, v, _ in buffer.items] == [0, 1, 2, 3, 4, 5]
                assert await sent_through(server) == target  # nothing new: the same message

    asyncio.run(main())


@pytest.mark.slow
def test_clean_bottling_day_over_opcua_reconciles_exactly(tmp_path: Path) -> None:
    path = over_opcua(tmp_path, "clean_bottling_day", "2h", drain="2h")
    data = passed(run(path, tmp_path))
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert {o["state"] for o in data["orders"]} == {"completed"}
    assert data["events"]["lost"] == 0 and data["events"]["duplicated"] == 0
    assert data["events"]["ingested"] > 0
    assert any("over OPC UA" in n for n in data["notes"])
    assert "subscribed to" in (tmp_path / "report" / "connector.log").read_text()


@pytest.mark.slow
def test_opcua_drop_and_server_restart_still_reconcile_exactly(tmp_path: Path) -> None:
    faults = [
        {"type": "opcua_drop", "at": "30m", "duration": "5m"},
        {"type": "opcua_server_restart", "at": "70m", "downtime": "30s"},
    ]
    path = over_opcua(tmp_path, "clean_bottling_day", "2h", drain="2h", timeline=faults)
    data = passed(run(path, tmp_path))
    assert {f["type"] for f in data["faults"]} == {"opcua_drop", "opcua_server_restart"}
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert data["events"]["lost"] == 0 and data["events"]["duplicated"] == 0
    assert data["events"]["replayed"] > 0  # changes held through both faults, sent after
    log = (tmp_path / "report" / "connector.log").read_text()
    assert log.count("reconnected to") >= 2  # both ridden out by the connector over OPC UA


@pytest.mark.slow
def test_direct_link_stays_selectable(tmp_path: Path) -> None:
    path = over_opcua(tmp_path, "clean_bottling_day", "1h", drain="2h", link="direct")
    data = passed(run(path, tmp_path))
    assert data["reconciliation"]["exact"]
    assert any("direct collector" in n for n in data["notes"])
    assert not (tmp_path / "report" / "connector.log").exists()
