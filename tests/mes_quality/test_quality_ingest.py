"""Measurement events from the plant are judged like results entered by people (rule 5)."""

from __future__ import annotations

from datetime import UTC, datetime

from factories import build_cell, characteristic, running_job
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_core.persistence import execution
from mes_core.persistence.ingest import ingest_batch
from mes_core.persistence.security import SYSTEM
from mes_core.quality.models import MeasurementResult
from mes_core.schemas.plant_events import MeasurementEvent, PlantEventBatch


def _event(source: str, seq: int, unit: str, name: str, value: float) -> MeasurementEvent:
    return MeasurementEvent(
        source=source,
        sequence=seq,
        work_unit=unit,
        timestamp=datetime(2026, 3, 2, 8, 0, seq, tzinfo=UTC),
        characteristic=name,
        value=value,
        unit="ml",
    )


def _results(session: Session, char_id: int) -> int:
    return session.execute(
        select(func.count()).where(MeasurementResult.characteristic_id == char_id)
    ).scalar_one()


def test_rule5_out_of_spec_measurement_event_from_the_plant_holds_the_job_order(
    session: Session,
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    source = f"opcua:test/{cell.tag}"
    batch = PlantEventBatch(
        events=[
            _event(source, 1, cell.filler, "fill_volume", 500.2),
            _event(source, 2, cell.filler, "fill_volume", 512.0),
            _event(source, 3, cell.filler, "nozzle_temperature", 81.5),
        ]
    )
    ingest_batch(session, batch, actor=SYSTEM)
    session.commit()
    assert _results(session, characteristic(job).id) == 2
    assert execution.get_job_order(session, job.code).state == "held"


def test_replayed_measurement_events_count_once(session: Session) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    source = f"opcua:test/{cell.tag}"
    batch = PlantEventBatch(events=[_event(source, 1, cell.filler, "fill_volume", 500.2)])
    ingest_batch(session, batch, actor=SYSTEM)
    session.commit()
    ingest_batch(session, batch, actor=SYSTEM)
    session.commit()
    assert _results(session, characteristic(job).id) == 1
    assert execution.get_job_order(session, job.code).state == "running"


def test_process_values_that_are_no_inspection_characteristic_are_stored_only(
    session: Session,
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    source = f"opcua:test/{cell.tag}"
    batch = PlantEventBatch(events=[_event(source, 1, cell.filler, "nozzle_temperature", 999.0)])
    result = ingest_batch(session, batch, actor=SYSTEM)
    session.commit()
    assert result.accepted == 1
    assert execution.get_job_order(session, job.code).state == "running"
