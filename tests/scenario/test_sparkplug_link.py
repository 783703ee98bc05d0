"""A scenario run over MQTT Sparkplug B: twin edge nodes -> a broker of the run's own ->
fault proxy -> ``mestwin connect --sparkplug`` (child process) -> MES ingest (issue 16).

Shortened like the OPC UA link's runs (one simulated hour, order quantities scaled down),
with the MES's MQTT session dropped (proxy cut) and the broker restarted: the records
must reconcile exactly, nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path

from support import require
from test_opcua_link import over_opcua, passed, run

from twin.scenario.sparkplug_link import Broker, SparkplugLinkError


def test_bottling_over_sparkplug_reconciles_exactly_through_a_drop_and_a_broker_restart(
    tmp_path: Path,
) -> None:
    try:
        Broker(tmp_path)
    except SparkplugLinkError:
        require(False, "Mosquitto (the mosquitto command) for link: sparkplug")
    faults = [
        {"type": "opcua_drop", "at": "20m", "duration": "5m"},
        {"type": "opcua_server_restart", "at": "40m", "downtime": "30s"},
    ]
    # The shipped scenario, shortened (its faults moved inside the hour).
    path = over_opcua(
        tmp_path, "bottling_over_sparkplug", "1h", drain="2h", link="sparkplug", timeline=faults
    )
    data = passed(run(path, tmp_path))
    assert {f["type"] for f in data["faults"]} == {"opcua_drop", "opcua_server_restart"}
    assert data["reconciliation"]["exact"] and data["reconciliation"]["mismatches"] == []
    assert data["events"]["lost"] == 0 and data["events"]["duplicated"] == 0
    assert data["events"]["ingested"] > 0
    assert any("over MQTT Sparkplug B" in n for n in data["notes"])
    log = (tmp_path / "report" / "connector.log").read_text()
    assert log.count("online at") >= 3  # the host's first session, then after each fault
    assert "rebirth requested" in log
