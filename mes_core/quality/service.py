"""Quality services: characteristics, SPC limits, measurement results, nonconformances.

Keyword-only functions over a session; they flush but never commit (the caller's
transaction decides) and append an audit entry for every change. The decisions are the
pure rules of :mod:`mes_core.quality.spc`, :mod:`~mes_core.quality.inspection` and
:mod:`~mes_core.quality.disposition`; the holds and their owners are
:mod:`mes_core.quality.hold_service`, the signed disposition
:mod:`mes_core.quality.disposition_service`.

Enforcement rule 5 (PRODUCT.md): a result out of specification or violating an SPC rule
opens a nonconformance and holds the affected lot(s) and the job order; the execution
core refuses to move anything held; only QA disposes it, with an electronic signature.
While a nonconformance on the same characteristic and job order is open, further deviating
results join it (and hold any new lot) instead of opening one nonconformance per sample.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import InvalidInput, NotFound
from mes_core.domain.states import JobOrderState, LotStatus
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.execution import (
    get_job_order,
    hold_job_order,
    hold_lot,
    running_operation_at,
)
from mes_core.persistence.masterdata import get_lot
from mes_core.persistence.models import (
    Equipment,
    InspectionCharacteristic,
    JobOperation,
    JobOrder,
    MaterialLot,
    OperationsSegment,
)
from mes_core.persistence.security import Actor
from mes_core.quality import disposition as dz
from mes_core.quality.hold_service import place_hold
from mes_core.quality.inspection import Verdict, judge
from mes_core.quality.models import MeasurementResult, Nonconformance, SpcLimits
from mes_core.quality.spc import (
    RUN_LENGTH,
    ControlLimits,
    SpcError,
    SpecLimits,
    limits_from_first_in_control,
)

#: Without a configured baseline, limits come from the first N in-control points.
DEFAULT_BASELINE_N = 20

#: Job order states from which a hold may be placed (the life cycle of the execution core).
_HOLDABLE = frozenset(
    {
        JobOrderState.PLANNED,
        JobOrderState.RELEASED,
        JobOrderState.DISPATCHED,
        JobOrderState.RUNNING,
        JobOrderState.COMPLETED,
    }
)
_HISTORY = max(RUN_LENGTH.values()) - 1


# ------------------------------------------------------------------ characteristics


def get_characteristic(session: Session, characteristic_id: int) -> InspectionCharacteristic:
    row = session.get(InspectionCharacteristic, characteristic_id)
    if row is None:
        raise NotFound("inspection characteristic", str(characteristic_id))
    return row


def resolve_characteristic(
    session: Session,
    name: str,
    *,
    job_order: JobOrder | None,
    sequence: int | None = None,
    work_unit: Equipment | None = None,
) -> tuple[InspectionCharacteristic, JobOrder | None, JobOperation | None]:
    """Find the characteristic ``name`` measured in an operation.

    With a job order and an operation sequence, that operation's segment; with a job order
    and a work unit, the job order's operation on that unit; with only a work unit, the
    operation running there now.
    """
    operation: JobOperation | None = None
    if job_order is not None and sequence is not None:
        operation = next((o for o in job_order.operations if o.sequence == sequence), None)
        if operation is None:
            raise NotFound("operation", f"{job_order.code}/{sequence}")
    elif job_order is not None and work_unit is not None:
        candidates = [
            o
            for o in job_order.operations
            if o.work_unit_id == work_unit.id
            or any(u.work_unit_id == work_unit.id for u in o.units)
        ]
        running = [o for o in candidates if o.state == "running"]
        chosen = running or candidates
        operation = chosen[0] if chosen else None
    elif work_unit is not None:
        operation = running_operation_at(session, work_unit.id)
        if operation is not None:
            job_order = operation.job_order
    if operation is not None:
        segments: Sequence[OperationsSegment] = [operation.segment]
    elif job_order is not None:
        segments = job_order.definition.segments
    else:
        segments = []
    found = [c for s in segments for c in s.characteristics if c.name == name]
    if not found:
        where = f"job order {job_order.code}" if job_order is not None else "no job order running"
        if work_unit is not None:
            where += f" at work unit {work_unit.code}"
        raise NotFound("inspection characteristic", f"{name} ({where})")
    if len(found) > 1 and operation is None:
        raise InvalidInput(
            f"characteristic {name!r} exists in several operations of job order "
            f"{job_order.code if job_order else '-'}; name the operation",
            object_ref=f"characteristic:{name}",
        )
    return found[0], job_order, operation


# ------------------------------------------------------------------ SPC limits


@dataclass(frozen=True)
class LimitsView:
    """Control limits of a characteristic as the API shows them."""

    characteristic_id: int
    method: str
    baseline_n: int
    centre: float | None
    sigma: float | None
    ucl: float | None
    lcl: float | None
    established_at: datetime | None


def _limits_row(session: Session, characteristic_id: int) -> SpcLimits | None:
    return session.execute(
        select(SpcLimits).where(SpcLimits.characteristic_id == characteristic_id)
    ).scalar_one_or_none()


def limits_view(session: Session, characteristic: InspectionCharacteristic) -> LimitsView:
    row = _limits_row(session, characteristic.id)
    if row is None:
        return LimitsView(characteristic.id, "first_n", DEFAULT_BASELINE_N, *(None,) * 5)
    ucl = lcl = None
    if row.centre is not None and row.sigma is not None:
        limits = ControlLimits(row.centre, row.sigma)
        ucl, lcl = limits.ucl, limits.lcl
    return LimitsView(
        characteristic.id,
        row.method,
        row.baseline_n,
        row.centre,
        row.sigma,
        ucl,
        lcl,
        row.established_at,
    )


def set_limits(
    session: Session,
    characteristic: InspectionCharacteristic,
    *,
    method: str,
    centre: float | None = None,
    sigma: float | None = None,
    baseline_n: int = DEFAULT_BASELINE_N,
    actor: Actor,
) -> LimitsView:
    """Set a characteristic's control limits: ``baseline`` (user-set centre and sigma) or
    ``first_n`` (estimated from the next ``baseline_n`` in-control results)."""
    if method == "baseline":
        if centre is None or sigma is None:
            raise InvalidInput("a baseline needs centre and sigma", object_ref="spc_limits")
        try:
            ControlLimits(centre, sigma)
        except SpcError as exc:
            raise InvalidInput(str(exc), object_ref="spc_limits") from exc
    elif method == "first_n":
        if baseline_n < 2:
            raise InvalidInput("baseline_n must be at least 2", object_ref="spc_limits")
        centre = sigma = None
    else:
        raise InvalidInput(f"unknown method {method!r}", object_ref="spc_limits")
    row = _limits_row(session, characteristic.id) or SpcLimits(characteristic_id=characteristic.id)
    row.method, row.baseline_n, row.centre, row.sigma = method, baseline_n, centre, sigma
    row.established_at = utcnow() if method == "baseline" else None
    row.set_by, row.set_at = actor.name, utcnow()
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="quality.spc_limits_set",
        object_ref=f"characteristic:{characteristic.id}",
        detail={"method": method, "centre": centre, "sigma": sigma, "baseline_n": baseline_n},
    )
    return limits_view(session, characteristic)


@dataclass
class SpcTrack:
    """What SPC needs to judge the next result of one characteristic: its limits (once
    known), the latest results, and while no limits exist the results so far (to estimate
    them). Batch ingest keeps one per characteristic for the whole batch instead of reading
    them back per event."""

    limits: ControlLimits | None
    baseline_n: int
    history: list[float]
    baseline_values: list[float]


def load_track(session: Session, characteristic: InspectionCharacteristic) -> SpcTrack:
    row = _limits_row(session, characteristic.id)
    limits = None
    if row is not None and row.centre is not None and row.sigma is not None:
        limits = ControlLimits(row.centre, row.sigma)
    n = row.baseline_n if row is not None else DEFAULT_BASELINE_N
    values = select(MeasurementResult.value).where(
        MeasurementResult.characteristic_id == characteristic.id
    )
    history = list(
        reversed(
            session.execute(values.order_by(MeasurementResult.id.desc()).limit(_HISTORY))
            .scalars()
            .all()
        )
    )
    baseline: list[float] = []
    if limits is None:
        baseline = list(
            session.execute(values.order_by(MeasurementResult.id).limit(5 * n)).scalars().all()
        )
    return SpcTrack(limits, n, history, baseline)


def _advance(
    session: Session,
    characteristic: InspectionCharacteristic,
    track: SpcTrack,
    spec: SpecLimits,
    value: float,
) -> tuple[ControlLimits | None, bool]:
    """The limits to judge ``value`` by, and whether they were established just now (then
    ``value`` belongs to the baseline and is not judged by the run rules)."""
    if track.limits is not None:
        return track.limits, False
    candidates = [*track.baseline_values, value]
    limits = limits_from_first_in_control(candidates, track.baseline_n, spec)
    if limits is None:
        if len(track.baseline_values) < 5 * track.baseline_n:
            track.baseline_values.append(value)
        return None, False
    row = _limits_row(session, characteristic.id)
    if row is None:
        row = SpcLimits(
            characteristic_id=characteristic.id, method="first_n", baseline_n=track.baseline_n
        )
        session.add(row)
    row.centre, row.sigma, row.established_at = limits.centre, limits.sigma, utcnow()
    session.flush()
    audit.append(
        session,
        actor="system",
        action="quality.spc_limits_established",
        object_ref=f"characteristic:{characteristic.id}",
        detail={"centre": limits.centre, "sigma": limits.sigma, "points": track.baseline_n},
    )
    track.limits, track.baseline_values = limits, []
    return limits, True


# ------------------------------------------------------------------ measurements


@dataclass(frozen=True)
class MeasurementOutcome:
    result: MeasurementResult
    verdict: Verdict
    nonconformance: Nonconformance | None


def record_measurement(
    session: Session,
    *,
    characteristic: InspectionCharacteristic,
    value: float,
    measured_at: datetime,
    job_order: JobOrder | None,
    operation: JobOperation | None,
    lot: MaterialLot | None,
    work_unit: Equipment | None,
    unit: str = "",
    source: str,
    actor: Actor,
    tracks: dict[int, SpcTrack] | None = None,
) -> MeasurementOutcome:
    """Record one result, judge it (spec, then SPC) and apply rule 5 if it deviates.

    ``tracks`` (batch ingest) carries each characteristic's SPC state from one result to
    the next; without it the state is read from the database.
    """
    spec = SpecLimits(lsl=characteristic.lsl, usl=characteristic.usl)
    track = tracks.get(characteristic.id) if tracks is not None else None
    if track is None:
        track = load_track(session, characteristic)
        if tracks is not None:
            tracks[characteristic.id] = track
    limits, just_established = _advance(session, characteristic, track, spec, value)
    verdict = judge(value, spec, track.history, None if just_established else limits)
    track.history = [*track.history, value][-_HISTORY:]
    result = MeasurementResult(
        characteristic_id=characteristic.id,
        job_order_id=job_order.id if job_order else None,
        job_operation_id=operation.id if operation else None,
        lot_id=lot.id if lot else None,
        work_unit_id=work_unit.id if work_unit else (operation.work_unit_id if operation else None),
        value=value,
        unit=unit or characteristic.unit,
        measured_at=measured_at,
        recorded_at=utcnow(),
        source=source,
        actor=actor.name,
        in_spec=verdict.out_of_spec is None,
        spc_rules=",".join(str(r.value) for r in verdict.rules),
    )
    session.add(result)
    nc = None
    if verdict.deviation:
        session.flush()
        nc = _open_or_join(
            session,
            characteristic=characteristic,
            verdict=verdict,
            result=result,
            job_order=job_order,
            operation=operation,
            lot=lot,
            actor=actor,
        )
        result.nonconformance_id = nc.id
    session.flush()
    return MeasurementOutcome(result, verdict, nc)


def _affected_lots(
    session: Session, operation: JobOperation | None, lot: MaterialLot | None
) -> list[MaterialLot]:
    """The lot measured, else every lot the operation has produced so far."""
    if lot is not None:
        return [lot]
    if operation is None:
        return []
    return list(
        session.execute(
            select(MaterialLot).where(MaterialLot.produced_by_operation_id == operation.id)
        )
        .scalars()
        .all()
    )


def _open_or_join(
    session: Session,
    *,
    characteristic: InspectionCharacteristic,
    verdict: Verdict,
    result: MeasurementResult,
    job_order: JobOrder | None,
    operation: JobOperation | None,
    lot: MaterialLot | None,
    actor: Actor,
) -> Nonconformance:
    source = (
        dz.NonconformanceSource.OUT_OF_SPEC if verdict.out_of_spec else dz.NonconformanceSource.SPC
    )
    description = verdict.describe(characteristic.name)
    existing = session.execute(
        select(Nonconformance).where(
            Nonconformance.state == dz.NonconformanceState.OPEN.value,
            Nonconformance.characteristic_id == characteristic.id,
            Nonconformance.job_order_id == (job_order.id if job_order else None),
        )
    ).scalar_one_or_none()
    if existing is not None:
        nc = existing
        audit.append(
            session,
            actor=actor.name,
            action="nonconformance.result_added",
            object_ref=f"nonconformance:{nc.number}",
            detail={"measurement": result.id, "value": result.value, "why": description},
        )
    else:
        nc = Nonconformance(
            number=f"tmp-{uuid.uuid4().hex[:20]}",
            state=dz.NonconformanceState.OPEN.value,
            source=source.value,
            description=description,
            characteristic_id=characteristic.id,
            job_order_id=job_order.id if job_order else None,
            # When the deviating value was measured (plant time for a plant event, issue 13).
            opened_at=result.measured_at,
            opened_by=actor.name,
        )
        session.add(nc)
        session.flush()
        nc.number = f"NC-{nc.id:06d}"
        audit.append(
            session,
            actor=actor.name,
            action="nonconformance.opened",
            object_ref=f"nonconformance:{nc.number}",
            detail={
                "source": source.value,
                "why": description,
                "measurement": result.id,
                "value": result.value,
                "job_order": job_order.code if job_order else None,
            },
        )
    reason = f"{nc.number}: {description}"
    for affected in _affected_lots(session, operation, lot):
        place_hold(session, nc, "lot", affected.id, at=result.measured_at)
        if affected.status not in (LotStatus.REJECTED.value, LotStatus.CONSUMED.value):
            hold_lot(session, affected.code, reason, actor=actor)
    if job_order is not None:
        place_hold(session, nc, "job_order", job_order.id, at=result.measured_at)
        if JobOrderState(job_order.state) in _HOLDABLE:
            hold_job_order(session, job_order.code, reason, actor=actor)
    return nc


# ------------------------------------------------------------------ nonconformances


def get_nonconformance(session: Session, number: str) -> Nonconformance:
    row = session.execute(
        select(Nonconformance).where(Nonconformance.number == number)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("nonconformance", number)
    return row


def list_nonconformances(
    session: Session, *, state: str | None = None, job_order: str | None = None, limit: int = 100
) -> Sequence[Nonconformance]:
    q = select(Nonconformance).order_by(Nonconformance.id.desc()).limit(limit)
    if state:
        q = q.where(Nonconformance.state == state)
    if job_order:
        q = q.where(Nonconformance.job_order_id == get_job_order(session, job_order).id)
    return session.execute(q).scalars().all()


def open_manual_nonconformance(
    session: Session,
    *,
    description: str,
    job_order: str | None,
    lots: Sequence[str],
    actor: Actor,
) -> Nonconformance:
    """A nonconformance raised by a person (e.g. a visual defect), holding what it names."""
    if not job_order and not lots:
        raise InvalidInput(
            "a nonconformance must name a job order or at least one lot", object_ref="-"
        )
    job = get_job_order(session, job_order) if job_order else None
    nc = Nonconformance(
        number=f"tmp-{uuid.uuid4().hex[:20]}",
        state=dz.NonconformanceState.OPEN.value,
        source=dz.NonconformanceSource.MANUAL.value,
        description=description,
        job_order_id=job.id if job else None,
        opened_at=utcnow(),
        opened_by=actor.name,
    )
    session.add(nc)
    session.flush()
    nc.number = f"NC-{nc.id:06d}"
    audit.append(
        session,
        actor=actor.name,
        action="nonconformance.opened",
        object_ref=f"nonconformance:{nc.number}",
        detail={"source": "manual", "why": description, "job_order": job_order, "lots": list(lots)},
    )
    reason = f"{nc.number}: {description}"
    for code in lots:
        lot = get_lot(session, code)
        place_hold(session, nc, "lot", lot.id, at=nc.opened_at)
        hold_lot(session, code, reason, actor=actor)
    if job is not None:
        place_hold(session, nc, "job_order", job.id, at=nc.opened_at)
        if JobOrderState(job.state) in _HOLDABLE:
            hold_job_order(session, job.code, reason, actor=actor)
    return nc


def measurements(
    session: Session, characteristic: InspectionCharacteristic, *, limit: int = 200
) -> list[MeasurementResult]:
    rows = (
        session.execute(
            select(MeasurementResult)
            .where(MeasurementResult.characteristic_id == characteristic.id)
            .order_by(MeasurementResult.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return list(reversed(rows))
