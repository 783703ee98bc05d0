"""Measurement events from the plant (production data collection) as quality results.

Called by the execution core's batch ingest for the *new* measurement events of a batch
(duplicates were already dropped, rule 6), inside the batch's transaction. A measurement
event becomes a measurement result when its ``characteristic`` names an inspection
characteristic of the operation it belongs to: the job order it names (at that work unit),
or else the operation running at the work unit. Other process values (temperatures a
dashboard trends, say) are not inspection results: they stay stored as plant events only.
Each result is judged like one entered through the API (spec limits, then SPC), so an
out-of-spec value from the plant holds the lot and job order (rule 5) just the same.

The lot a measurement is of: a work unit's ``MaterialLotID`` names the lot it draws from
(the preforms a filler fills), while a process value measures what the operation makes.
So the event's lot is taken as the lot measured only when it is a lot that operation
produced; an input lot is not held for a deviation of the output (it feeds other job
orders too): the hold goes to the operation's own lots and to the job order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import InvalidInput, NotFound
from mes_core.persistence.models import (
    Equipment,
    InspectionCharacteristic,
    JobOperation,
    JobOrder,
    MaterialLot,
)
from mes_core.persistence.security import Actor
from mes_core.quality.service import SpcTrack, record_measurement, resolve_characteristic
from mes_core.schemas.plant_events import MeasurementEvent


class _UnitRef(Protocol):
    @property
    def id(self) -> int: ...


@dataclass
class MeasurementIngest:
    """What the quality part made of a batch's measurement events."""

    results: int = 0
    nonconformances: list[str] = field(default_factory=list)
    not_inspected: int = 0


_Resolved = tuple[InspectionCharacteristic, JobOrder | None, JobOperation | None] | None


def apply_measurement_events(
    session: Session, events: Sequence[MeasurementEvent], units: Mapping[str, _UnitRef]
) -> MeasurementIngest:
    """Judge each new measurement event that is an inspection result (in time order)."""
    outcome = MeasurementIngest()
    if not events:
        return outcome
    cache: dict[tuple[str, str | None, str], _Resolved] = {}
    tracks: dict[int, SpcTrack] = {}
    lots: dict[str, MaterialLot | None] = {}
    # Held here: the session's identity map is weak, so a row nobody references is
    # loaded again on every get().
    equipment: dict[int, Equipment | None] = {}
    for event in sorted(events, key=lambda e: (e.timestamp, e.source, e.sequence)):
        ref = units.get(event.work_unit)
        if ref is None:
            continue
        key = (event.work_unit, event.job_order, event.characteristic)
        if key not in cache:
            cache[key] = _resolve(session, event, ref.id)
        resolved = cache[key]
        if resolved is None:
            outcome.not_inspected += 1
            continue
        characteristic, job_order, operation = resolved
        if ref.id not in equipment:
            equipment[ref.id] = session.get(Equipment, ref.id)
        lot = None
        if event.material_lot:
            if event.material_lot not in lots:
                lots[event.material_lot] = session.execute(
                    select(MaterialLot).where(MaterialLot.code == event.material_lot)
                ).scalar_one_or_none()
            lot = lots[event.material_lot]
            if lot is not None and (
                operation is None or lot.produced_by_operation_id != operation.id
            ):
                lot = None  # a lot the unit draws from, not one the value measures
        result = record_measurement(
            session,
            characteristic=characteristic,
            value=event.value,
            measured_at=event.timestamp,
            job_order=job_order,
            operation=operation,
            lot=lot,
            work_unit=equipment[ref.id],
            unit=event.unit,
            source=event.source,
            actor=Actor(name=f"plant:{event.source}"[:100], roles=frozenset()),
            tracks=tracks,
        )
        outcome.results += 1
        if result.nonconformance is not None:
            outcome.nonconformances.append(result.nonconformance.number)
    return outcome


def _resolve(session: Session, event: MeasurementEvent, unit_id: int) -> _Resolved:
    unit = session.get(Equipment, unit_id)
    job = None
    if event.job_order:
        job = session.execute(
            select(JobOrder).where(JobOrder.code == event.job_order)
        ).scalar_one_or_none()
        if job is None:
            return None
    try:
        return resolve_characteristic(session, event.characteristic, job_order=job, work_unit=unit)
    except (NotFound, InvalidInput):
        # Not an inspection characteristic of this operation: a plain process value.
        return None
