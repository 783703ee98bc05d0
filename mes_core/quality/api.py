"""``/api/v1/quality``: characteristics and SPC limits, measurement results,
nonconformances and their signed disposition (enforcement rule 5)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.api.deps import AnyUser, Quality, SessionDep, allow
from mes_core.domain.states import Role
from mes_core.persistence.base import utcnow
from mes_core.persistence.db import run_transaction
from mes_core.persistence.execution import get_job_order
from mes_core.persistence.masterdata import get_lot, get_routing
from mes_core.persistence.models import (
    InspectionCharacteristic,
    JobOrder,
    OperationsDefinition,
    OperationsSegment,
)
from mes_core.persistence.security import Actor
from mes_core.quality import disposition_service, hold_service, service
from mes_core.quality.models import ElectronicSignature, MeasurementResult, Nonconformance
from mes_core.quality.schemas import (
    CharacteristicOut,
    DispositionIn,
    LimitsIn,
    LimitsOut,
    MeasurementIn,
    MeasurementOut,
    MeasurementResultOut,
    NonconformanceIn,
    NonconformanceOut,
    SignatureOut,
)
from mes_core.quality.signature import SignatureManifest, SignatureMeaning, verify_binding

router = APIRouter(prefix="/api/v1/quality", tags=["quality"])

#: Characteristic ids are 32-bit integers in the database: larger ones are 422, not an
#: overflow inside the database.
CharacteristicId = Annotated[int, Path(ge=1, le=2**31 - 1)]

#: Who may enter measurement results: the shop floor, QA, and the integration role.
Inspector = Annotated[
    Actor, Depends(allow(Role.OPERATOR, Role.SUPERVISOR, Role.QUALITY, Role.INTEGRATION))
]
#: Disposition is for the quality role only (the service refuses anyone else, admin too).
QualityOnly = Annotated[Actor, Depends(allow(Role.QUALITY))]


def _limits_out(session: Session, char: InspectionCharacteristic) -> LimitsOut:
    v = service.limits_view(session, char)
    return LimitsOut(
        method=v.method,
        baseline_n=v.baseline_n,
        centre=v.centre,
        sigma=v.sigma,
        ucl=v.ucl,
        lcl=v.lcl,
        established_at=v.established_at,
    )


def _characteristic_out(session: Session, char: InspectionCharacteristic) -> CharacteristicOut:
    segment = session.get_one(OperationsSegment, char.segment_id)
    routing = session.get_one(OperationsDefinition, segment.definition_id)
    return CharacteristicOut(
        id=char.id,
        routing=routing.code,
        segment=segment.sequence,
        segment_name=segment.name,
        name=char.name,
        lsl=char.lsl,
        target=char.target,
        usl=char.usl,
        unit=char.unit,
        sampling_frequency=char.sampling_frequency,
        limits=_limits_out(session, char),
    )


def _measurement_out(session: Session, row: MeasurementResult) -> MeasurementOut:
    nc = session.get(Nonconformance, row.nonconformance_id) if row.nonconformance_id else None
    return MeasurementOut(
        id=row.id,
        characteristic_id=row.characteristic_id,
        value=row.value,
        unit=row.unit,
        measured_at=row.measured_at,
        source=row.source,
        actor=row.actor,
        in_spec=row.in_spec,
        spc_rules=[int(r) for r in row.spc_rules.split(",") if r],
        nonconformance=nc.number if nc else None,
    )


def _signature_out(sig: ElectronicSignature) -> SignatureOut:
    manifest = SignatureManifest(
        signer=sig.signer,
        printed_name=sig.printed_name,
        signed_at=sig.signed_at,
        meaning=SignatureMeaning(sig.meaning),
        reason=sig.reason,
        record_ref=sig.record_ref,
        record_hash=sig.record_hash,
    )
    return SignatureOut(
        signer=sig.signer,
        printed_name=sig.printed_name,
        signed_at=sig.signed_at,
        meaning=sig.meaning,
        reason=sig.reason,
        record_ref=sig.record_ref,
        record_hash=sig.record_hash,
        binding_hash=sig.binding_hash,
        manifestation=manifest.display(),
        verified=verify_binding(manifest, json.loads(sig.record_json), sig.binding_hash),
    )


def _nc_out(session: Session, nc: Nonconformance) -> NonconformanceOut:
    held = hold_service.held_objects(session, nc)
    job = session.get(JobOrder, nc.job_order_id) if nc.job_order_id else None
    sig = disposition_service.signature_of(session, nc)
    return NonconformanceOut(
        number=nc.number,
        state=nc.state,
        source=nc.source,
        description=nc.description,
        characteristic_id=nc.characteristic_id,
        job_order=job.code if job else None,
        opened_at=nc.opened_at,
        opened_by=nc.opened_by,
        held_lots=held["lots"],
        held_job_orders=held["job_orders"],
        disposition=nc.disposition,
        quantity=nc.quantity,
        disposed_at=nc.disposed_at,
        signature=_signature_out(sig) if sig else None,
    )


# ------------------------------------------------------------------ characteristics


@router.get("/characteristics", response_model=list[CharacteristicOut])
def list_characteristics(
    session: SessionDep, _: AnyUser, routing: str | None = None
) -> list[CharacteristicOut]:
    """Inspection characteristics (of one routing, or all), with their control limits."""
    q = select(InspectionCharacteristic).order_by(InspectionCharacteristic.id)
    if routing:
        segment_ids = [s.id for s in get_routing(session, routing).segments]
        q = q.where(InspectionCharacteristic.segment_id.in_(segment_ids))
    rows = session.execute(q.limit(10_000)).scalars().all()
    return [_characteristic_out(session, c) for c in rows]


@router.get("/characteristics/{characteristic_id}", response_model=CharacteristicOut)
def get_characteristic(
    characteristic_id: CharacteristicId, session: SessionDep, _: AnyUser
) -> CharacteristicOut:
    return _characteristic_out(session, service.get_characteristic(session, characteristic_id))


@router.put("/characteristics/{characteristic_id}/limits", response_model=LimitsOut)
def set_limits(
    characteristic_id: CharacteristicId, body: LimitsIn, session: SessionDep, actor: Quality
) -> LimitsOut:
    """Set the control limits: a user baseline, or from the first N in-control points."""

    def change() -> InspectionCharacteristic:
        char = service.get_characteristic(session, characteristic_id)
        service.set_limits(
            session,
            char,
            method=body.method,
            centre=body.centre,
            sigma=body.sigma,
            baseline_n=body.baseline_n,
            actor=actor,
        )
        return char

    return _limits_out(session, run_transaction(session, change))


@router.get(
    "/characteristics/{characteristic_id}/measurements", response_model=list[MeasurementOut]
)
def list_measurements(
    characteristic_id: CharacteristicId,
    session: SessionDep,
    _: AnyUser,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[MeasurementOut]:
    """The latest results of a characteristic, oldest first (an SPC chart's points)."""
    char = service.get_characteristic(session, characteristic_id)
    return [_measurement_out(session, r) for r in service.measurements(session, char, limit=limit)]


# ------------------------------------------------------------------ measurements


@router.post("/measurements", response_model=MeasurementResultOut, status_code=201)
def record_measurement(
    body: MeasurementIn, session: SessionDep, actor: Inspector
) -> MeasurementResultOut:
    """Record a result; out of spec or an SPC rule violation opens a nonconformance and
    holds the lot and the job order (rule 5).

    One transaction, run by ``run_transaction``: its audit entries are appended with its
    commit, so that it never holds the audit chain's head (every writer's last lock)
    while it waits for the rows it holds; a deadlock it meets all the same is retried."""
    measured_at = body.measured_at or utcnow()

    def change() -> tuple[str, service.MeasurementOutcome]:
        job = get_job_order(session, body.job_order)
        char, job_order, operation = service.resolve_characteristic(
            session, body.characteristic, job_order=job, sequence=body.operation
        )
        lot = get_lot(session, body.lot) if body.lot else None
        return char.name, service.record_measurement(
            session,
            characteristic=char,
            value=body.value,
            measured_at=measured_at,
            job_order=job_order,
            operation=operation,
            lot=lot,
            work_unit=operation.work_unit if operation else None,
            source="api",
            actor=actor,
        )

    name, outcome = run_transaction(session, change)
    session.expire_all()
    base = _measurement_out(session, outcome.result)
    state = get_job_order(session, body.job_order).state
    return MeasurementResultOut(
        **base.model_dump(), verdict=outcome.verdict.describe(name), job_order_state=state
    )


# ------------------------------------------------------------------ nonconformances


@router.get("/nonconformances", response_model=list[NonconformanceOut])
def list_nonconformances(
    session: SessionDep,
    _: AnyUser,
    state: str | None = Query(default=None, pattern="^(open|disposed)$"),
    job_order: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[NonconformanceOut]:
    rows = service.list_nonconformances(session, state=state, job_order=job_order, limit=limit)
    return [_nc_out(session, r) for r in rows]


@router.post("/nonconformances", response_model=NonconformanceOut, status_code=201)
def open_nonconformance(
    body: NonconformanceIn, session: SessionDep, actor: Quality
) -> NonconformanceOut:
    """Raise a nonconformance by hand (supervisor, quality): it holds what it names."""
    nc = run_transaction(
        session,
        lambda: service.open_manual_nonconformance(
            session,
            description=body.description,
            job_order=body.job_order,
            lots=body.lots,
            actor=actor,
        ),
    )
    return _nc_out(session, nc)


@router.get("/nonconformances/{number}", response_model=NonconformanceOut)
def get_nonconformance(number: str, session: SessionDep, _: AnyUser) -> NonconformanceOut:
    return _nc_out(session, service.get_nonconformance(session, number))


@router.post("/nonconformances/{number}/disposition", response_model=NonconformanceOut)
def dispose(
    number: str, body: DispositionIn, session: SessionDep, actor: QualityOnly
) -> NonconformanceOut:
    """Dispose (release, rework, scrap) under an electronic signature: quality role only,
    password re-entered, meaning and reason stated, signer's certification checked."""
    run_transaction(
        session,
        lambda: disposition_service.dispose(
            session,
            number,
            disposition=body.disposition,
            password=body.password,
            meaning=body.meaning,
            reason=body.reason,
            quantity=body.quantity,
            occurred_at=body.occurred_at,
            actor=actor,
        ),
    )
    return _nc_out(session, service.get_nonconformance(session, number))
