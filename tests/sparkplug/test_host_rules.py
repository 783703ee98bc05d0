"""The MES's Sparkplug host application, fed messages directly (no broker, no MES):
births bind the work units, DDATA becomes the OPC UA connector's plant events, a seq
gap or data without a birth asks for a rebirth and is not ingested, a stale NDEATH is
ignored, and the births that answer resynchronise the counts exactly. < 1 s."""

from __future__ import annotations

from typing import Any

import pytest

from mes_core.connectors.sparkplug.host import HostLink, HostOptions
from mes_core.schemas.plant_events import (
    AlarmEvent,
    CountEvent,
    MeasurementEvent,
    StateChangeEvent,
)
from sparkplug_b.payload import DataType, Payload, property_set, set_value
from sparkplug_b.topic import BD_SEQ, REBIRTH, Topic

GROUP = "g1"
T0 = 1_767_600_000_000  # ms


def _payload(seq: int | None, metrics: list[tuple[str, DataType, Any]], ts: int = T0) -> bytes:
    p = Payload(timestamp=ts)
    if seq is not None:
        p.seq = seq
    for name, dt, value in metrics:
        m = p.metrics.add(name=name, timestamp=ts)
        set_value(m, dt, value)
        if name.startswith("ProcessValues/"):
            m.properties.CopyFrom(property_set({"engUnit": "g", "characteristic": "fill_weight"}))
    return p.SerializeToString()


class Feed:
    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.link = HostLink("mqtt://127.0.0.1:1", HostOptions(groups=(GROUP,)), state or {})
        self.sent: list[tuple[str, bytes]] = []
        self.link.client.publish = lambda topic, payload, qos=0, retain=False: self.sent.append(  # type: ignore[method-assign]
            (topic, payload)
        )

    def push(
        self,
        kind: str,
        seq: int | None,
        metrics: list[Any],
        device: str | None = "WU1",
        ts: int = T0,
    ) -> None:
        topic = Topic(GROUP, kind, "L1", device if kind.startswith("D") else None)
        self.link._inbox.append((str(topic), _payload(seq, metrics, ts)))

    def events(self) -> list[Any]:
        return [e for _, outcome in self.link.collect() for e in outcome.events]

    def collect(self) -> tuple[list[Any], dict[str, Any]]:
        """Events and the state the connector spools with them."""
        events: list[Any] = []
        state: dict[str, Any] = {}
        for _, outcome in self.link.collect():
            events.extend(outcome.events)
            state.update(outcome.state)
        return events, state

    def rebirths(self) -> int:
        out = 0
        for topic, raw in self.sent:
            assert topic == f"spBv1.0/{GROUP}/NCMD/L1"
            (metric,) = Payload.FromString(raw).metrics
            assert metric.name == REBIRTH and metric.boolean_value
            out += 1
        return out


def _births(feed: Feed, processed: int, defective: int, bd: int = 0, ts: int = T0) -> None:
    feed.push(
        "NBIRTH",
        0,
        [(BD_SEQ, DataType.UInt64, bd), (REBIRTH, DataType.Boolean, False)],
        device=None,
        ts=ts,
    )
    feed.push(
        "DBIRTH",
        1,
        [
            ("State", DataType.Int32, 6),
            ("StopReason", DataType.String, ""),
            ("UnitMode", DataType.String, "Production"),
            ("ProdProcessedCount", DataType.Int32, processed),
            ("ProdDefectiveCount", DataType.Int32, defective),
            ("JobOrderID", DataType.String, "JO-1"),
            ("ProcessValues/FillWeight", DataType.Double, None),
            ("Alarms/breakdown/Severity", DataType.Int32, 0),
            ("Alarms/breakdown/Message", DataType.String, ""),
            ("Alarms/breakdown/Active", DataType.Boolean, False),
        ],
        ts=ts,
    )


def test_births_and_ddata_become_the_opcua_connectors_plant_events() -> None:
    feed = Feed()
    _births(feed, 0, 0)
    feed.push(
        "DDATA",
        2,
        [
            ("ProdDefectiveCount", DataType.Int32, 1),
            ("ProdProcessedCount", DataType.Int32, 5),
            ("ProcessValues/FillWeight", DataType.Double, 501.5),
        ],
        ts=T0 + 1000,
    )
    feed.push(
        "DDATA",
        3,
        [
            ("Alarms/breakdown/Severity", DataType.Int32, 700),
            ("Alarms/breakdown/Message", DataType.String, "valve jam"),
            ("Alarms/breakdown/Active", DataType.Boolean, True),
            ("StopReason", DataType.String, "down: valve jam"),
            ("State", DataType.Int32, 11),
        ],
        ts=T0 + 2000,
    )
    events = feed.events()
    source = "sparkplug:g1/L1"
    assert all(e.source == source for e in events)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    states = [(e.state.value, e.reason) for e in events if isinstance(e, StateChangeEvent)]
    assert states == [("running", ""), ("down", "down: valve jam")]
    counts = [(e.good, e.scrap, e.job_order) for e in events if isinstance(e, CountEvent)]
    assert counts == [(4, 1, "JO-1")]
    (m,) = [e for e in events if isinstance(e, MeasurementEvent)]
    assert (m.characteristic, m.value, m.unit, m.work_unit) == ("fill_weight", 501.5, "g", "WU1")
    assert m.timestamp.timestamp() * 1000 == T0 + 1000  # the plant's time, not ours
    (alarm,) = [e for e in events if isinstance(e, AlarmEvent)]
    assert (alarm.alarm, alarm.severity, alarm.message, alarm.active) == (
        "breakdown",
        700,
        "valve jam",
        True,
    )
    assert feed.rebirths() == 0
    assert feed.link.bindings["WU1"].line == "L1"


def test_a_seq_gap_asks_for_a_rebirth_and_the_births_resync_counts_exactly() -> None:
    feed = Feed()
    _births(feed, 0, 0)
    feed.push("DDATA", 2, [("ProdProcessedCount", DataType.Int32, 3)], ts=T0 + 1000)
    feed.push("DDATA", 4, [("ProdProcessedCount", DataType.Int32, 9)], ts=T0 + 3000)  # 3 lost
    feed.push("DDATA", 5, [("ProdProcessedCount", DataType.Int32, 10)], ts=T0 + 4000)
    events = feed.events()
    assert sum(e.good for e in events if isinstance(e, CountEvent)) == 3
    assert feed.rebirths() == 1  # once, not per message
    assert feed.link.nodes[(GROUP, "L1")].gaps == 1
    _births(feed, 12, 1, ts=T0 + 5000)  # the answer: births with the current counters
    events = feed.events()
    assert sum(e.good for e in events if isinstance(e, CountEvent)) == 11 - 3
    assert sum(e.scrap for e in events if isinstance(e, CountEvent)) == 1


def test_data_without_a_birth_asks_for_one_and_a_stale_ndeath_is_ignored() -> None:
    feed = Feed()
    feed.push("DDATA", 7, [("ProdProcessedCount", DataType.Int32, 3)])
    assert feed.events() == []
    assert feed.rebirths() == 1
    _births(feed, 3, 0, bd=5)
    feed.push("NDEATH", None, [(BD_SEQ, DataType.UInt64, 4)], device=None)  # an older session
    feed.push("DDATA", 2, [("ProdProcessedCount", DataType.Int32, 4)], ts=T0 + 1000)
    assert sum(e.good for e in feed.events() if isinstance(e, CountEvent)) == 4
    feed.push("NDEATH", None, [(BD_SEQ, DataType.UInt64, 5)], device=None)
    feed.push("DDATA", 3, [("ProdProcessedCount", DataType.Int32, 5)], ts=T0 + 2000)
    assert feed.events() == []  # dead until born again


def test_broker_url_and_group_ids_are_checked() -> None:
    with pytest.raises(ValueError, match="expected mqtt://HOST"):
        HostLink("opc.tcp://x:1", HostOptions(), {})
    with pytest.raises(ValueError, match="group id"):
        HostLink("mqtt://x", HostOptions(groups=("a/b",)), {})


def test_a_restarted_host_continues_sequences_and_counts_from_the_spooled_state() -> None:
    first = Feed()
    _births(first, 0, 0)
    first.push("DDATA", 2, [("ProdProcessedCount", DataType.Int32, 7)], ts=T0 + 1000)
    events, state = first.collect()
    assert sum(e.good for e in events if isinstance(e, CountEvent)) == 7
    last = max(e.sequence for e in events)
    again = Feed(state)  # the host restarted: the edge node's births carry the counters
    _births(again, 10, 1, ts=T0 + 5000)
    events, _ = again.collect()
    counts = [(e.good, e.scrap) for e in events if isinstance(e, CountEvent)]
    assert counts == [(2, 1)]  # 10 processed - 1 defective = 9 good, 7 already counted
    assert min(e.sequence for e in events) == last + 1
    assert not [e for e in events if isinstance(e, StateChangeEvent)]  # running, as sent
