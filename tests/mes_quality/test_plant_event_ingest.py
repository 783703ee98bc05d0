"""Batch ingest of plant events (rule 6) on each backend, at the service level: what is
stored column for column, the state history it derives (in event time order), and that no
event is stored or applied twice, whether replayed in a later batch, twice in one
transaction, or after a rolled-back attempt."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from mes_quality_factories import Cell, build_cell, running_job
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_core.persistence.ingest import ingest_batch
from mes_core.persistence.models import (
    Equipment,
    EquipmentStateHistory,
    JobOperation,
    PlantEventRow,
)
from mes_core.persistence.security import SYSTEM
from mes_core.schemas.plant_events import (
    AlarmEvent,
    CountEvent,
    EquipmentState,
    MeasurementEvent,
    PlantEvent,
    PlantEventBatch,
    StateChangeEvent,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _source() -> str:
    return f"opcua:test/{uuid.uuid4().hex[:8]}"


def _state(source: str, seq: int, unit: str, state: EquipmentState, at: datetime) -> PlantEvent:
    return StateChangeEvent(
        source=source, sequence=seq, work_unit=unit, timestamp=at, state=state, reason=f"r{seq}"
    )


def _count(source: str, seq: int, unit: str, good: int, scrap: int = 0) -> PlantEvent:
    return CountEvent(
        source=source,
        sequence=seq,
        work_unit=unit,
        timestamp=T0 + timedelta(seconds=seq),
        good=good,
        scrap=scrap,
    )


def _stored(session: Session, source: str) -> list[PlantEventRow]:
    return list(
        session.execute(
            select(PlantEventRow).where(PlantEventRow.source == source).order_by("sequence")
        ).scalars()
    )


def _history(session: Session, unit: str) -> list[tuple[str, str, datetime, str]]:
    rows = session.execute(
        select(
            EquipmentStateHistory.state,
            EquipmentStateHistory.reason,
            EquipmentStateHistory.started_at,
            EquipmentStateHistory.source,
        )
        .join(Equipment, Equipment.id == EquipmentStateHistory.equipment_id)
        .where(Equipment.code == unit)
        .order_by(EquipmentStateHistory.id)
    )
    return [(s, r, at, src) for s, r, at, src in rows]


def _good(session: Session, cell: Cell) -> float:
    return session.execute(
        select(func.sum(JobOperation.good))
        .join(Equipment, Equipment.id == JobOperation.work_unit_id)
        .where(Equipment.code == cell.filler)
    ).scalar_one()


def test_every_kind_of_event_is_stored_column_for_column(session: Session) -> None:
    cell = build_cell(session)
    source = _source()
    events: list[PlantEvent] = [
        _state(source, 1, cell.filler, EquipmentState.BLOCKED, T0),
        CountEvent(
            source=source,
            sequence=2,
            work_unit=cell.filler,
            timestamp=T0 + timedelta(seconds=2),
            good=7,
            scrap=2,
            job_order="PO-NONE",
            material_lot="LOT-1",
        ),
        MeasurementEvent(
            source=source,
            sequence=3,
            work_unit=cell.filler,
            timestamp=T0 + timedelta(seconds=3),
            characteristic="nozzle_temperature",
            value=81.25,
            unit="degC",
            job_order="PO-NONE",
            material_lot="LOT-1",
        ),
        AlarmEvent(
            source=source,
            sequence=4,
            work_unit=cell.filler,
            timestamp=T0 + timedelta(seconds=4),
            alarm="jam",
            severity=600,
            message="infeed jam",
            active=False,
        ),
    ]
    result = ingest_batch(session, PlantEventBatch(events=events), actor=SYSTEM)
    session.commit()
    assert (result.accepted, result.duplicates) == (4, 0)
    columns = [c.key for c in PlantEventRow.__table__.columns]
    stored = {
        row.sequence: {c: getattr(row, c) for c in columns} for row in _stored(session, source)
    }
    common = {"source": source, "work_unit": cell.filler, "received_at": result.received_at}
    empty = dict.fromkeys(columns)
    assert stored[1] == {
        **empty,
        **common,
        "sequence": 1,
        "kind": "state",
        "ts": T0,
        "state": "blocked",
        "reason": "r1",
    }
    assert stored[2] == {
        **empty,
        **common,
        "sequence": 2,
        "kind": "count",
        "ts": T0 + timedelta(seconds=2),
        "good": 7,
        "scrap": 2,
        "job_order": "PO-NONE",
        "material_lot": "LOT-1",
    }
    assert stored[3] == {
        **empty,
        **common,
        "sequence": 3,
        "kind": "measurement",
        "ts": T0 + timedelta(seconds=3),
        "characteristic": "nozzle_temperature",
        "value": 81.25,
        "unit": "degC",
        "job_order": "PO-NONE",
        "material_lot": "LOT-1",
    }
    assert stored[4] == {
        **empty,
        **common,
        "sequence": 4,
        "kind": "alarm",
        "ts": T0 + timedelta(seconds=4),
        "alarm": "jam",
        "severity": 600,
        "message": "infeed jam",
        "active": False,
    }


@pytest.mark.parametrize("replayed", [False, True], ids=["all new", "one replayed"])
def test_state_history_follows_event_time_then_source_then_sequence(
    session: Session, replayed: bool
) -> None:
    cell = build_cell(session)
    a, b = sorted([_source(), _source()])
    unknown = f"NOWHERE-{cell.tag}"
    if replayed:
        # A batch with a key stored already takes the other way in (see ingest.py).
        ingest_batch(session, PlantEventBatch(events=[_count(a, 99, cell.capper, 1)]), actor=SYSTEM)
        session.commit()
    # Posted out of order; two sources report the same instant.
    events = [
        _state(b, 1, cell.filler, EquipmentState.RUNNING, T0 + timedelta(seconds=5)),
        _state(b, 2, cell.filler, EquipmentState.IDLE, T0 + timedelta(seconds=1)),
        _state(a, 7, cell.filler, EquipmentState.STARVED, T0 + timedelta(seconds=1)),
        _state(a, 3, cell.filler, EquipmentState.BLOCKED, T0 + timedelta(seconds=1)),
        _state(a, 4, unknown, EquipmentState.DOWN, T0),
        _state(a, 5, cell.capper, EquipmentState.SETUP, T0 + timedelta(seconds=2)),
    ]
    if replayed:
        events.append(_count(a, 99, cell.capper, 1))
    result = ingest_batch(session, PlantEventBatch(events=events), actor=SYSTEM)
    session.commit()
    assert (result.accepted, result.duplicates) == (6, 1 if replayed else 0)
    assert result.unknown_work_units == [unknown]
    assert _history(session, cell.filler) == [
        ("blocked", "r3", T0 + timedelta(seconds=1), a),
        ("starved", "r7", T0 + timedelta(seconds=1), a),
        ("idle", "r2", T0 + timedelta(seconds=1), b),
        ("running", "r1", T0 + timedelta(seconds=5), b),
    ]
    assert _history(session, cell.capper) == [("setup", "r5", T0 + timedelta(seconds=2), a)]
    assert _history(session, unknown) == []
    filler = session.execute(select(Equipment).where(Equipment.code == cell.filler)).scalar_one()
    assert (filler.state, filler.state_since) == ("running", T0 + timedelta(seconds=5))


def test_replayed_events_in_a_later_batch_are_neither_stored_nor_applied_again(
    session: Session,
) -> None:
    cell = build_cell(session)
    running_job(session, cell)
    source = _source()
    first = [
        _count(source, 1, cell.filler, 10),
        _state(source, 2, cell.filler, EquipmentState.RUNNING, T0 + timedelta(seconds=2)),
        _count(source, 3, cell.filler, 5),
    ]
    ingest_batch(session, PlantEventBatch(events=first), actor=SYSTEM)
    session.commit()
    replay = [
        *first,
        _count(source, 4, cell.filler, 1),
        _state(source, 5, cell.filler, EquipmentState.IDLE, T0 + timedelta(seconds=5)),
    ]
    result = ingest_batch(session, PlantEventBatch(events=replay), actor=SYSTEM)
    session.commit()
    assert (result.accepted, result.duplicates) == (2, 3)
    assert [row.sequence for row in _stored(session, source)] == [1, 2, 3, 4, 5]
    assert _good(session, cell) == 16
    assert [h[0] for h in _history(session, cell.filler)] == ["running", "idle"]


def test_two_batches_in_one_transaction_store_and_apply_each_event_once(
    session: Session,
) -> None:
    cell = build_cell(session)
    running_job(session, cell)
    source = _source()
    first = [
        _count(source, 1, cell.filler, 10),
        _state(source, 2, cell.filler, EquipmentState.RUNNING, T0 + timedelta(seconds=2)),
    ]
    second = [
        first[1],
        _count(source, 3, cell.filler, 4),
        _state(source, 4, cell.filler, EquipmentState.BLOCKED, T0 + timedelta(seconds=4)),
    ]
    one = ingest_batch(session, PlantEventBatch(events=first), actor=SYSTEM)
    two = ingest_batch(session, PlantEventBatch(events=second), actor=SYSTEM)
    session.commit()
    assert (one.accepted, one.duplicates) == (2, 0)
    assert (two.accepted, two.duplicates) == (2, 1)
    assert [row.sequence for row in _stored(session, source)] == [1, 2, 3, 4]
    assert _good(session, cell) == 14
    assert [h[0] for h in _history(session, cell.filler)] == ["running", "blocked"]


def test_a_batch_rolled_back_then_ingested_again_is_stored_and_applied_once(
    session: Session,
) -> None:
    cell = build_cell(session)
    running_job(session, cell)
    source = _source()
    events = [
        _count(source, 1, cell.filler, 3),
        _state(source, 2, cell.filler, EquipmentState.RUNNING, T0 + timedelta(seconds=2)),
    ]
    ingest_batch(session, PlantEventBatch(events=events), actor=SYSTEM)
    session.rollback()
    assert _stored(session, source) == []
    result = ingest_batch(session, PlantEventBatch(events=events), actor=SYSTEM)
    session.commit()
    assert (result.accepted, result.duplicates) == (2, 0)
    assert [row.sequence for row in _stored(session, source)] == [1, 2]
    assert _good(session, cell) == 3
    assert [h[0] for h in _history(session, cell.filler)] == ["running"]
