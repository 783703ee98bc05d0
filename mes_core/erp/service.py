"""ERP exchange services: import a B2MML schedule into job orders, export performance.

The import is all or nothing: one refused order (unknown product or routing, an order
number that exists already, a value that is no quantity) refuses the document, and the
refusal is recorded in the audit trail with its reason. The B2MML mapping is in
:mod:`mes_core.erp.schedule` and :mod:`mes_core.erp.performance`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import InvalidInput, MesError, NotFound
from mes_core.erp.b2mml import B2MMLError
from mes_core.erp.performance import (
    JobOrderActual,
    MaterialActual,
    SegmentActual,
    build_performance,
)
from mes_core.erp.schedule import parse_schedule
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.execution import create_job_order, get_job_order
from mes_core.persistence.models import JobOrder, MaterialLot, Person
from mes_core.persistence.security import Actor
from mes_core.schemas.execution import JobOrderCreate

#: Job order states whose performance may be exported (ISA-95: the response is final).
EXPORTABLE = ("completed", "closed")
_RESPONSE_STATE = {"completed": "Completed", "closed": "Closed"}
_SEGMENT_STATE = {
    "completed": "Completed",
    "running": "Running",
    "aborted": "Aborted",
    "pending": "Waiting",
}


class B2MMLRefused(MesError):
    """A B2MML document the MES will not accept (hostile, malformed, invalid, wrong type)."""

    status_code = 422

    def __init__(self, exc: B2MMLError) -> None:
        super().__init__(exc.message, object_ref="b2mml")
        self.code = "B2MML_" + exc.code.upper().replace("-", "_")
        if exc.code == "too-large":
            self.status_code = 413


@dataclass(frozen=True)
class ImportResult:
    schedule_id: str
    job_orders: list[str]
    sha256: str


def _refuse(session: Session, actor: Actor, message: str, code: str) -> None:
    """Record the refused import in its own committed transaction."""
    session.rollback()
    audit.append(
        session,
        actor=actor.name,
        action="refused",
        object_ref="erp:schedule",
        detail={"rule": code, "message": message, "attempted": "erp_import"},
    )
    session.commit()


def import_schedule(session: Session, data: bytes, *, actor: Actor) -> ImportResult:
    """Create one planned job order per OperationsRequest of a ProcessOperationsSchedule."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        schedule = parse_schedule(data)
    except B2MMLError as exc:
        refused = B2MMLRefused(exc)
        _refuse(session, actor, refused.message, refused.code)
        raise refused from exc
    created: list[str] = []
    try:
        for order in schedule.job_orders:
            try:
                request = JobOrderCreate(
                    code=order.number,
                    product=order.product,
                    routing=order.operations_definition or None,
                    quantity=order.quantity,
                    due_at=order.due,
                )
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise InvalidInput(
                    f"OperationsRequest {order.number!r}: {where}: {first['msg']}",
                    object_ref=f"job_order:{order.number}",
                ) from exc
            create_job_order(session, request, actor=actor)
            created.append(order.number)
    except MesError as exc:
        _refuse(session, actor, f"schedule {schedule.schedule_id}: {exc.message}", exc.code)
        raise
    audit.append(
        session,
        actor=actor.name,
        action="erp.schedule_imported",
        object_ref=f"erp:schedule:{schedule.schedule_id}",
        detail={"job_orders": created, "sha256": digest},
    )
    return ImportResult(schedule.schedule_id, created, digest)


def _actual(session: Session, job: JobOrder) -> JobOrderActual:
    segments = []
    for op in job.operations:
        materials = [
            MaterialActual(
                material_definition=c.lot.material.code,
                quantity=c.quantity,
                unit=c.lot.material.unit,
                use="Consumed",
                lot=c.lot.code,
            )
            for c in op.consumptions
        ]
        produced = session.execute(
            select(MaterialLot).where(MaterialLot.produced_by_operation_id == op.id)
        ).scalars()
        materials += [
            MaterialActual(
                material_definition=lot.material.code,
                quantity=lot.initial_quantity,
                unit=lot.material.unit,
                use="Produced",
                lot=lot.code,
            )
            for lot in produced
        ]
        people = [session.get_one(Person, o.person_id).code for o in op.operators]
        segments.append(
            SegmentActual(
                segment_id=str(op.sequence),
                process_segment=op.segment.name,
                start=op.started_at,
                end=op.ended_at,
                state=_SEGMENT_STATE.get(op.state, "Other"),
                equipment=[op.work_unit.code] if op.work_unit else [],
                personnel=people,
                materials=materials,
            )
        )
    return JobOrderActual(
        number=job.code,
        operations_definition=job.definition.code,
        start=job.started_at,
        end=job.ended_at,
        state=_RESPONSE_STATE[job.state],
        segments=segments,
    )


def export_performance(
    session: Session,
    *,
    job_orders: Sequence[str] = (),
    since: datetime | None = None,
    limit: int = 1000,
    actor: Actor,
) -> bytes:
    """A validated ProcessOperationsPerformance of the named job orders, or of every
    completed/closed one (ended at or after ``since``)."""
    if job_orders:
        jobs = [get_job_order(session, code) for code in job_orders]
        for job in jobs:
            if job.state not in EXPORTABLE:
                raise InvalidInput(
                    f"job order {job.code} is {job.state}; only completed or closed job orders "
                    "have a final performance",
                    object_ref=f"job_order:{job.code}",
                )
    else:
        q = (
            select(JobOrder)
            .where(JobOrder.state.in_(EXPORTABLE))
            .order_by(JobOrder.id)
            .limit(limit)
        )
        if since is not None:
            q = q.where(JobOrder.ended_at >= since)
        jobs = [get_job_order(session, j.code) for j in session.execute(q).scalars().all()]
    if not jobs:
        raise NotFound(
            "completed job order", "any" if since is None else f"since {since.isoformat()}"
        )
    perf_id = f"PERF-{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    document = build_performance([_actual(session, j) for j in jobs], performance_id=perf_id)
    audit.append(
        session,
        actor=actor.name,
        action="erp.performance_exported",
        object_ref=f"erp:performance:{perf_id}",
        detail={
            "job_orders": [j.code for j in jobs],
            "sha256": hashlib.sha256(document).hexdigest(),
        },
    )
    return document
