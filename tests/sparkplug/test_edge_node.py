"""The twin as Sparkplug B 3.0 edge nodes, seen by a bare MQTT subscriber.

One edge node per line, one device per work unit (the test plant of the OPC UA tests):
births with every metric and the process values' units, DDATA that follows the engine
exactly, ``seq`` and ``bdSeq`` as the specification numbers them, a rebirth on an NCMD and
the NDEATH the broker publishes when the session dies. ~4 s.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from mqtt_support import BROKER_URL, MINI, Recorder, Twin, require_broker, unique_group

from plant_models.loader import load_plant_model
from sparkplug_b.payload import DataType, Payload, metric_value, properties_of, set_value
from sparkplug_b.topic import BD_SEQ, REBIRTH, Topic, state_payload, state_topic
from twin.sparkplug.edge import TAGS, SparkplugPublisher


@pytest.fixture
def plant() -> Iterator[tuple[Twin, Recorder]]:
    require_broker()
    group = unique_group()
    recorder = Recorder(group)
    twin = Twin(group)
    try:
        yield twin, recorder
    finally:
        twin.close()
        recorder.close()


def _metrics(payload: Any) -> dict[str, Any]:
    return {m.name: m for m in payload.metrics}


def _check_seq(recorder: Recorder, node: str) -> None:
    """After each NBIRTH (seq 0) every message of the node has the next seq, mod 256."""
    expected: int | None = None
    for topic, payload in recorder.messages:
        if topic.edge_node != node or topic.message_type in ("NDEATH", "NCMD", "DCMD"):
            continue
        if topic.message_type == "NBIRTH":
            assert payload.seq == 0
        else:
            assert payload.seq == expected, f"{topic}: seq {payload.seq}, expected {expected}"
        expected = (payload.seq + 1) % 256


def test_births_declare_every_metric_with_units_and_data_follows_the_engine(
    plant: tuple[Twin, Recorder],
) -> None:
    twin, rec = plant
    for _ in range(90):  # 90 simulated seconds: > 256 messages of line A (seq wraps)
        twin.advance(1.0)
    rec.wait_for(lambda: len(rec.of("DBIRTH")) == 3 and len(rec.messages) > 400)
    nbirths = {t.edge_node: p for t, p in rec.of("NBIRTH")}
    assert set(nbirths) == {"LA", "LB"}  # one edge node per line
    for payload in nbirths.values():
        m = _metrics(payload)
        assert m[BD_SEQ].datatype == DataType.UInt64 and metric_value(m[BD_SEQ]) == 0
        assert m[REBIRTH].datatype == DataType.Boolean and metric_value(m[REBIRTH]) is False
    dbirths = {(t.edge_node, t.device): _metrics(p) for t, p in rec.of("DBIRTH")}
    assert set(dbirths) == {("LA", "LA-FILL"), ("LA", "LA-CAP"), ("LB", "LB-PRESS")}
    filler = dbirths[("LA", "LA-FILL")]
    for name, datatype, _ in TAGS:
        assert filler[name].datatype == datatype, name
    weight = filler["ProcessValues/FillWeight"]
    assert weight.datatype == DataType.Double
    assert properties_of(weight) == {
        "engUnit": "g",
        "engLow": 480.0,
        "engHigh": 520.0,
        "characteristic": "fill_weight",
    }
    assert properties_of(dbirths[("LB", "LB-PRESS")]["ProcessValues/Force"])["engUnit"] == "kN"
    assert "Alarms/breakdown/Active" in filler

    # DDATA: what the engine counted, counters never going back, seq numbered per node.
    def counted() -> dict[str, int]:
        last: dict[str, int] = {}
        for topic, payload in rec.of("DDATA"):
            for metric in payload.metrics:
                if metric.name == "ProdProcessedCount":
                    assert topic.device is not None
                    value = metric_value(metric)
                    assert value >= last.get(topic.device, 0)
                    last[topic.device] = value
        return last

    engine = {code: wu.processed for code, wu in twin.engine.work_units.items() if wu.processed}
    assert engine  # the plant produced
    rec.wait_for(lambda: counted() == engine)
    assert sum(1 for t, _ in rec.messages if t.edge_node == "LA") > 256  # seq wrapped
    _check_seq(rec, "LA")
    _check_seq(rec, "LB")


def test_ncmd_rebirth_births_again_with_the_values_last_published(
    plant: tuple[Twin, Recorder],
) -> None:
    twin, rec = plant
    twin.advance(10.0)
    rec.wait_for(lambda: len(rec.of("DBIRTH")) == 3)
    command = Payload(timestamp=1)
    set_value(command.metrics.add(name=REBIRTH), DataType.Boolean, True)
    rec.client.publish(str(Topic(rec.group, "NCMD", "LA")), command.SerializeToString(), qos=1)
    twin.pump(1.0)
    rec.wait_for(lambda: len(rec.of("NBIRTH")) == 3)
    again = [p for t, p in rec.of("NBIRTH") if t.edge_node == "LA"]
    assert [metric_value(_metrics(p)[BD_SEQ]) for p in again] == [0, 0]  # same session
    dbirth = [p for t, p in rec.of("DBIRTH") if t.device == "LA-FILL"][-1]
    counted = metric_value(_metrics(dbirth)["ProdProcessedCount"])
    assert counted == twin.engine.work_units["LA-FILL"].processed > 0
    _check_seq(rec, "LA")


def test_ndeath_is_the_will_with_the_sessions_bdseq_and_the_next_session_moves_it_on(
    plant: tuple[Twin, Recorder],
) -> None:
    twin, rec = plant
    twin.advance(2.0)
    rec.wait_for(lambda: len(rec.of("NBIRTH")) == 2)
    node = twin.publisher.nodes["LB"]
    sock = node.client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)  # the session dies without a DISCONNECT
    rec.wait_for(lambda: any(t.edge_node == "LB" for t, _ in rec.of("NDEATH")))
    death = next(p for t, p in rec.of("NDEATH") if t.edge_node == "LB")
    assert metric_value(_metrics(death)[BD_SEQ]) == 0
    twin.pump(2.5)  # paho reconnects (after 1 s); the pump births the new session
    rec.wait_for(lambda: len([t for t, _ in rec.of("NBIRTH") if t.edge_node == "LB"]) == 2)
    reborn = [p for t, p in rec.of("NBIRTH") if t.edge_node == "LB"][-1]
    assert metric_value(_metrics(reborn)[BD_SEQ]) == 1
    assert reborn.seq == 0


def test_births_wait_for_the_primary_hosts_state_online_and_its_offline_ends_the_session() -> None:
    require_broker()
    rec = Recorder(unique_group())
    host = f"host-{rec.group}"
    topic = state_topic(host)
    twin = Twin(rec.group, primary_host=host)
    try:
        twin.advance(5.0)
        twin.pump(0.5)
        assert rec.of("NBIRTH") == []  # no STATE from the host yet: nothing published
        rec.client.publish(topic, state_payload(True, 1000), qos=1, retain=True)
        twin.pump(1.0)
        rec.wait_for(lambda: len(rec.of("NBIRTH")) == 2)
        twin.advance(5.0)
        rec.client.publish(topic, state_payload(False, 2000), qos=1, retain=True)
        twin.pump(1.5)
        rec.wait_for(lambda: len(rec.of("NDEATH")) == 2)
        deaths = {t.edge_node: metric_value(_metrics(p)[BD_SEQ]) for t, p in rec.of("NDEATH")}
        assert deaths == {"LA": 0, "LB": 0}
        twin.advance(5.0)  # changes while the host is away: held
        twin.pump(0.5)
        assert len(rec.of("NBIRTH")) == 2
        rec.client.publish(topic, state_payload(True, 3000), qos=1, retain=True)
        twin.pump(1.5)
        rec.wait_for(lambda: len(rec.of("NBIRTH")) == 4)
        reborn = [metric_value(_metrics(p)[BD_SEQ]) for _, p in rec.of("NBIRTH")[2:]]
        assert reborn == [1, 1]  # a new session each
        last = None
        for topic_, payload in rec.of("DBIRTH") + rec.of("DDATA"):
            if topic_.device == "LA-FILL":
                for m in payload.metrics:
                    if m.name == "ProdProcessedCount":
                        last = metric_value(m)
        assert last == twin.engine.work_units["LA-FILL"].processed  # nothing held was lost
        _check_seq(rec, "LA")
    finally:
        twin.close()
        rec.client.publish(topic, b"", qos=1, retain=True)  # no retained STATE left behind
        rec.close()


def test_broker_address_and_ids_are_checked() -> None:
    from twin.sparkplug.edge import broker_address

    assert broker_address("mqtt://127.0.0.1") == ("127.0.0.1", 1883)
    with pytest.raises(ValueError, match="expected mqtt://HOST"):
        broker_address("http://x:1")
    with pytest.raises(ValueError, match="group id"):
        SparkplugPublisher(load_plant_model(MINI), BROKER_URL, "a/b", start=None)  # type: ignore[arg-type]
