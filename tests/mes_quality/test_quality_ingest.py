"""Measurement events from the plant are judged like results entered by people (rule 5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mes_quality_factories import build_cell, characteristic, running_job
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_core.persistence import execution
from mes_core.persistence.ingest import ingest_batch
from mes_core.persistence.masterdata import get_lot
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


def test_spc_limits_established_and_applied_within_one_plant_batch(session: Session) -> None:
    from mes_core.quality import service as qs

    cell = build_cell(session)
    job = running_job(session, cell)
    char = characteristic(job)
    qs.set_limits(session, char, method="first_n", baseline_n=5, actor=SYSTEM)
    session.commit()
    source = f"opcua:test/{cell.tag}"
    baseline = [500.0, 500.4, 499.6, 500.2, 499.8]
    rising = [499.0, 499.3, 499.6, 499.9, 500.2, 500.5]
    values = [*baseline, *rising]
    batch = PlantEventBatch(
        events=[_event(source, i + 1, cell.filler, "fill_volume", v) for i, v in enumerate(values)]
    )
    ingest_batch(session, batch, actor=SYSTEM)
    session.commit()
    assert qs.limits_view(session, char).centre == pytest.approx(500.0)
    results = qs.measurements(session, char)
    assert [r.spc_rules for r in results][-1] == "3"
    assert results[-1].nonconformance_id is not None
    assert execution.get_job_order(session, job.code).state == "held"


def test_an_out_of_spec_value_holds_the_job_order_not_the_lot_the_unit_draws_from(
    session: Session,
) -> None:
    """The filler's MaterialLotID names the preform lot it draws; a fill volume out of
    spec is a deviation of the filled bottles: the job order is held, the preform lot
    (which feeds other orders too) stays released."""
    cell = build_cell(session)
    job = running_job(session, cell)
    source = f"opcua:test/{cell.tag}"
    event = _event(source, 1, cell.filler, "fill_volume", 512.0)
    event = event.model_copy(update={"material_lot": cell.preform_lot})
    ingest_batch(session, PlantEventBatch(events=[event]), actor=SYSTEM)
    session.commit()
    assert execution.get_job_order(session, job.code).state == "held"
    assert get_lot(session, cell.preform_lot).status == "available"
