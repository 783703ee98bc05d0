"""The connector's rules without a network: PackML -> MES state, cumulative counters ->
deltas, notification batches -> plant events, the spool, the YAML tag mapping."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from asyncua import ua

from mes_core.connectors.opcua.connector import Connector, ConnectorOptions
from mes_core.connectors.opcua.discovery import (
    MappingError,
    ProcessValueBinding,
    WorkUnitBinding,
    bindings_from_mapping,
    load_mapping,
)
from mes_core.connectors.opcua.events import EventBuilder, EventJson, measurement
from mes_core.connectors.opcua.mapping import (
    DEFECTIVE,
    PROCESSED,
    CounterTracker,
    mes_state,
)
from mes_core.connectors.opcua.spool import Spool
from mes_core.schemas.plant_events import (
    CountEvent,
    EquipmentState,
    IngestResult,
    MeasurementEvent,
    PlantEvent,
    StateChangeEvent,
)

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("packml", "reason", "mode", "expected"),
    [
        (6, "", "Production", EquipmentState.RUNNING),
        (6, "starved: stale reason", "Production", EquipmentState.RUNNING),
        (4, "idle: no job order", "Production", EquipmentState.IDLE),
        (5, "starved: upstream empty", "Production", EquipmentState.STARVED),
        (5, "blocked: downstream full", "Production", EquipmentState.BLOCKED),
        (5, "", "Production", EquipmentState.STARVED),
        (11, "down: valve jam", "Production", EquipmentState.DOWN),
        (11, "setup: changeover to JUICE", "Production", EquipmentState.SETUP),
        (11, "operator pressed hold", "Production", EquipmentState.DOWN),
        (2, "offline: stopped by command", "Production", EquipmentState.OFFLINE),
        (2, "", "Maintenance", EquipmentState.MAINTENANCE),
        (9, "", "Production", EquipmentState.DOWN),
        (17, "", "Production", EquipmentState.IDLE),
    ],
)
def test_packml_state_and_stop_reason_map_to_the_mes_state(
    packml: int, reason: str, mode: str, expected: EquipmentState
) -> None:
    assert mes_state(packml, reason, mode) == expected


def test_counts_are_deltas_of_the_cumulative_counters_and_never_negative() -> None:
    tracker = CounterTracker()
    tracker.observe(PROCESSED, 10)
    tracker.observe(DEFECTIVE, 1)
    assert tracker.take() == (9, 1)
    # Defective seen before processed: good dips, nothing negative is emitted...
    tracker.observe(DEFECTIVE, 2)
    assert tracker.take() == (0, 1)
    # ...and the total catches up exactly when processed arrives.
    tracker.observe(PROCESSED, 12)
    assert tracker.take() == (1, 0)
    assert (tracker.good_sent, tracker.scrap_sent) == (10, 2)


def test_a_restored_tracker_neither_loses_nor_doubles_a_unit() -> None:
    tracker = CounterTracker()
    tracker.observe(PROCESSED, 100)
    tracker.observe(DEFECTIVE, 5)
    tracker.take()
    restored = CounterTracker.from_json(tracker.to_json())
    restored.observe(PROCESSED, 130)  # the resync after a reconnect: current values
    restored.observe(DEFECTIVE, 6)
    assert restored.take() == (29, 1)


def test_a_counter_reset_at_the_source_starts_again_from_zero() -> None:
    tracker = CounterTracker()
    tracker.observe(PROCESSED, 50)
    tracker.observe(DEFECTIVE, 0)
    tracker.take()
    assert tracker.observe(PROCESSED, 3) is True
    assert tracker.take() == (3, 0)


def _binding() -> tuple[WorkUnitBinding, dict[str, ua.NodeId]]:
    ids = {
        name: ua.NodeId(ua.String(f"WU.{name}"), ua.Int16(2))
        for name in (
            "State",
            "StopReason",
            "UnitMode",
            "ProdProcessedCount",
            "ProdDefectiveCount",
            "JobOrderID",
            "MaterialLotID",
            "ProductID",
            "FillWeight",
        )
    }
    binding = WorkUnitBinding(
        code="WU",
        line="L",
        object=None,
        tags={k: v for k, v in ids.items() if k != "FillWeight"},
        process_values={ids["FillWeight"]: ProcessValueBinding("FillWeight", "g", "fill_weight")},
    )
    return binding, ids


def test_state_and_stop_reason_written_together_make_one_state_change() -> None:
    binding, ids = _binding()
    builder = EventBuilder("opcua:test")
    builder.bind([binding])
    t1 = T0 + timedelta(seconds=1)
    # A publish groups by monitored item: State arrives before its StopReason.
    outcome = builder.process(
        [
            (ids["State"], 5, t1),
            (ids["StopReason"], "blocked: downstream full", t1),
        ]
    )
    states = [e for e in outcome.events if isinstance(e, StateChangeEvent)]
    assert [(e.state, e.reason, e.timestamp) for e in states] == [
        (EquipmentState.BLOCKED, "blocked: downstream full", t1)
    ]
    # A change of reason alone (still Suspended) is a change of MES state.
    t2 = T0 + timedelta(seconds=2)
    outcome = builder.process([(ids["StopReason"], "starved: upstream empty", t2)])
    assert [e.state for e in outcome.events] == [EquipmentState.STARVED]


def test_units_are_booked_to_the_job_order_they_were_made_for() -> None:
    binding, ids = _binding()
    builder = EventBuilder("opcua:test")
    builder.bind([binding])
    t1, t2, t3, t4 = (T0 + timedelta(seconds=s) for s in (1, 2, 3, 4))
    outcome = builder.process(
        [
            (ids["JobOrderID"], "JO-1", t1),
            (ids["ProdProcessedCount"], 4, t2),
            (ids["ProdDefectiveCount"], 1, t2),
            # The last unit of JO-1 and the change to JO-2 at the same moment:
            # the unit was made before the change.
            (ids["JobOrderID"], "JO-2", t3),
            (ids["ProdProcessedCount"], 5, t3),
            (ids["ProdProcessedCount"], 7, t4),
        ]
    )
    counts = [(e.job_order, e.good, e.scrap) for e in outcome.events if isinstance(e, CountEvent)]
    assert counts == [("JO-1", 4, 1), ("JO-2", 2, 0)]
    seqs = [e.sequence for e in outcome.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert outcome.state["seq:opcua:test"] == len(seqs) + 1


def test_measurements_are_sent_once_even_when_a_resubscription_repeats_them() -> None:
    binding, ids = _binding()
    builder = EventBuilder("opcua:test")
    builder.bind([binding])
    t1 = T0 + timedelta(seconds=1)
    first = builder.process([(ids["FillWeight"], 501.5, t1)])
    again = builder.process([(ids["FillWeight"], 501.5, t1)])  # initial value after reconnect
    assert len(first.events) == 1
    event = first.events[0]
    assert isinstance(event, MeasurementEvent)
    assert (event.characteristic, event.value, event.unit) == ("fill_weight", 501.5, "g")
    assert again.events == []


def test_initial_counts_skip_takes_the_first_counter_values_as_the_baseline() -> None:
    binding, ids = _binding()
    builder = EventBuilder("opcua:test", initial_counts="skip")
    builder.bind([binding])
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    first = builder.process(
        [(ids["ProdProcessedCount"], 1000, t1), (ids["ProdDefectiveCount"], 9, t1)]
    )
    later = builder.process([(ids["ProdProcessedCount"], 1004, t2)])
    assert first.events == []
    assert [(e.good, e.scrap) for e in later.events if isinstance(e, CountEvent)] == [(4, 0)]


def test_spool_keeps_events_and_state_together_and_replays_them_in_order(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    ids = spool.append(['{"a": 1}', '{"a": 2}', '{"a": 3}'], {"seq:x": 4})
    assert ids == [1, 2, 3]
    spool.ack(1)
    spool.close()
    reopened = Spool(tmp_path / "spool.sqlite")
    assert reopened.pending() == [(2, '{"a": 2}'), (3, '{"a": 3}')]
    assert reopened.state() == {"seq:x": 4}
    assert reopened.append(['{"a": 4}'], {}) == [4]  # ids never reused
    reopened.dead_letter([2], "422: bad")
    assert reopened.dead_letters() == 1
    assert [i for i, _ in reopened.pending()] == [3, 4]
    reopened.close()


def test_tag_mapping_binds_a_plain_plc(tmp_path: Path) -> None:
    path = tmp_path / "plc.yaml"
    path.write_text(
        """
work_units:
  - code: PLC-FILLER
    line: L1
    object: "ns=3;s=Filler"
    tags:
      State: "ns=3;s=Filler.PackML.State"
      ProdProcessedCount: "ns=3;i=1001"
    process_values:
      - {name: Weight, node: "ns=3;s=Filler.Weight", unit: g, characteristic: fill_weight}
    methods:
      StoreAndStart: "ns=3;s=Filler.StoreAndStart"
""",
        encoding="utf-8",
    )
    (binding,) = bindings_from_mapping(load_mapping(path))
    assert binding.code == "PLC-FILLER"
    assert binding.tags["ProdProcessedCount"] == ua.NodeId(1001, 3)
    (pv,) = binding.process_values.values()
    assert (pv.name, pv.unit, pv.characteristic) == ("Weight", "g", "fill_weight")


def test_a_tag_mapping_with_an_unknown_tag_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "plc.yaml"
    path.write_text(
        "work_units:\n  - code: X\n    tags: {Temperature: 'ns=3;i=5'}\n", encoding="utf-8"
    )
    with pytest.raises(MappingError, match=r"work_units\[0\]\.tags\.Temperature: unknown tag"):
        load_mapping(path)


def test_a_tag_mapping_with_a_bad_node_id_says_which(tmp_path: Path) -> None:
    path = tmp_path / "plc.yaml"
    path.write_text(
        "work_units:\n  - code: X\n    tags: {State: 'not a node id'}\n", encoding="utf-8"
    )
    with pytest.raises(MappingError, match="'not a node id' is not a NodeId"):
        load_mapping(path)


def test_the_fast_measurement_is_the_event_model_construct_builds() -> None:
    """The connector's hot path builds MeasurementEvents without pydantic's per-field
    defaults: the same instance model_construct makes, dumped and read back the same."""
    fields = {
        "source": "opcua:x",
        "sequence": 7,
        "work_unit": "LA-FILL",
        "timestamp": T0,
        "characteristic": "Temperature",
        "value": 21.5,
        "unit": "degC",
        "job_order": "JO-1",
        "material_lot": None,
    }
    fast = measurement(**fields)  # type: ignore[arg-type]
    slow = MeasurementEvent.model_construct(**fields)  # type: ignore[arg-type]
    assert type(fast) is MeasurementEvent
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_dump(mode="json") == slow.model_dump(mode="json")
    assert MeasurementEvent.model_validate_json(fast.model_dump_json()) == fast


class _FlakyMes:
    """An MES whose first answer to the first batch is a lost connection, answered after
    the batch behind it (which it takes); it records what it took and what was in flight."""

    def __init__(self) -> None:
        self.taken: list[int] = []
        self.depths: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.failed = False

    async def ingest_json(
        self, bodies: list[str], *, spool: tuple[str, int] | None = None
    ) -> IngestResult:
        events = [MeasurementEvent.model_validate_json(b) for b in bodies]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            first = events[0].sequence
            if first == 1 and not self.failed:
                await asyncio.sleep(0.05)  # answered after the batch behind it
                self.failed = True
                raise httpx.ConnectError("connection reset")
            assert spool is not None
            self.depths.append(spool[1])
            self.taken.extend(e.sequence for e in events)
            return IngestResult(accepted=len(events), duplicates=0, received_at=T0)
        finally:
            self.in_flight -= 1


def test_posts_in_flight_are_acknowledged_in_order_and_resent_after_a_failure(
    tmp_path: Path,
) -> None:
    """Two batches in flight; the older fails after the newer was taken: the spool keeps
    both, both are sent again in order, nothing is acknowledged out of order or lost."""
    spool = Spool(tmp_path / "spool.sqlite")
    events = [
        measurement("opcua:x", i + 1, "LA-FILL", T0, "T", float(i), "degC", None, None)
        for i in range(25)
    ]
    spool.append([e.model_dump_json() for e in events], {})
    mes = _FlakyMes()
    options = ConnectorOptions(batch_size=10, backoff_initial_s=0.01, dispatch_interval_s=0)
    connector = Connector(["opc.tcp://127.0.0.1:1"], mes, spool, options)  # type: ignore[arg-type]

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(connector._send_loop(stop))
        for _ in range(200):
            if not connector.outbox:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(go())
    assert mes.failed and mes.most_in_flight == 2
    # 11..20 were taken while 1..10 failed, then everything again from 1, in order.
    assert mes.taken == [*range(11, 21), *range(1, 26)]
    assert connector.sent == 25 and connector.mes_faults == 1
    assert spool.depth() == 0 and not connector.outbox
    assert mes.depths == [5, 15, 5, 0]
    spool.close()


def test_events_are_spooled_as_the_json_pydantic_writes_for_them() -> None:
    """``EventJson`` writes measurements itself: the same text as ``model_dump_json``
    (the same number where Python and pydantic spell a float differently); any other
    event is pydantic's own."""
    odd = 'Füllgewicht "netto"\n\x01\u2028'
    plus_one = timezone(timedelta(hours=1))
    events: list[PlantEvent] = [
        measurement("opcua:x", 1, "LA-FILL", T0, "fill_weight", 501.5, "g", None, None),
        measurement("opcua:x", 2, "LA-FILL", T0.replace(microsecond=120000), "T", -0.25,
                    "degC", "JO-1", "LOT-7"),
        measurement("opcua:y", 3, odd, T0.astimezone(plus_one), odd, 20.0, odd, odd, odd),
        measurement("opcua:x", 4, "LA-FILL", T0, "fill_weight", 1e-05, "g", "JO-1", None),
        measurement("opcua:x", 5, "LA-FILL", T0, "fill_weight", 1e16, "g", None, "LOT-7"),
        measurement("opcua:x", 6, "LA-FILL", T0, "fill_weight", 0.1 + 0.2, "g", None, None),
        StateChangeEvent(source="opcua:x", sequence=7, work_unit="LA-FILL", timestamp=T0,
                         state=EquipmentState.DOWN, reason="jam", packml_state=11),
        CountEvent(source="opcua:x", sequence=8, work_unit="LA-FILL", timestamp=T0, good=3),
        measurement("opcua:x", 9, "LA-FILL", T0, "fill_weight", 501.5, "g", None, None),
    ]  # fmt: skip
    writer = EventJson()
    bodies = writer.bodies(events)
    pydantic = [e.model_dump_json() for e in events]
    assert [json.loads(b) for b in bodies] == [json.loads(p) for p in pydantic]
    same_text = [i for i, (b, p) in enumerate(zip(bodies, pydantic, strict=True)) if b == p]
    assert same_text == [0, 1, 2, 4, 5, 6, 7, 8]  # 3: Python 1e-05, pydantic 0.00001
    assert writer.bodies(events) == bodies  # from its kept fragments: the same again


def test_the_watermark_moves_only_once_the_mes_took_everything_collected_before_it(
    tmp_path: Path,
) -> None:
    """``wait_ingested`` (the scenario link's barrier): a subscription's notification
    messages up to a sequence number count as ingested once every event made before the
    mark is acknowledged by the MES, a failed post in between included."""
    from mes_core.connectors.opcua.connector import Through

    spool = Spool(tmp_path / "spool.sqlite")
    events = [
        measurement("opcua:x", i + 1, "LA-FILL", T0, "T", float(i), "degC", None, None)
        for i in range(25)
    ]
    spool.append([e.model_dump_json() for e in events], {})
    mes = _FlakyMes()
    options = ConnectorOptions(batch_size=10, backoff_initial_s=0.01, dispatch_interval_s=0)
    connector = Connector(["opc.tcp://127.0.0.1:1"], mes, spool, options)  # type: ignore[arg-type]
    link = connector.links[0]
    link.connects = 1  # type: ignore[attr-defined]  # its first session
    mark = Through(connects=1, subscription=7, sequence=3, latest=T0)
    link.buffer.through = mark  # type: ignore[attr-defined]
    connector.collect()  # nothing new made: the 25 spooled events are ahead of the mark
    assert connector.ingested == {}

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(connector._send_loop(stop))
        assert await connector.wait_ingested(link.url, 7, 3, timeout=5)
        assert mes.failed and len(mes.taken) == 35  # 11..20, then 1..25 again, in order
        assert not await connector.wait_ingested(link.url, 7, 4, timeout=0.05)
        assert not await connector.wait_ingested(link.url, 6, 1, timeout=5)  # superseded
        link.connects = 2  # type: ignore[attr-defined]  # a new session: the old mark vouches
        assert not await connector.wait_ingested(link.url, 7, 3, timeout=0.05)  # for nothing
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(go())
    assert connector.ingested == {link.url: mark}
    assert connector.stats()["ingested"][link.url]["sequence"] == 3
    spool.close()
