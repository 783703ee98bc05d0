"""ERP exchange services: import a B2MML schedule into job orders, export performance.

The import is all or nothing: one refused order (unknown product or routing, an order
number that exists already, a value that is no quantity) refuses the document, and the
refusal is recorded in the audit trail with its reason. The B2MML mapping is in
:mod:`mes_core.erp.schedule` and :mod:`mes_core.erp.performance`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain.errors import Conflict, InvalidInput, MesError, NotFound
from mes_core.domain.states import JobOrderState
from mes_core.erp.b2mml import B2MMLError
from mes_core.erp.performance import (
    JobOrderActual,
    MaterialActual,
    SegmentActual,
    build_performance,
)
from mes_core.erp.schedule import ScheduledJobOrder, parse_schedule
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.execution import create_job_order, get_job_order, release_job_order
from mes_core.persistence.models import JobOrder, MaterialLot, Person
from mes_core.persistence.security import Actor
from mes_core.schemas.execution import JobOrderCreate

#: Job order states whose performance may be exported (ISA-95: the response is final).
EXPORTABLE = ("completed", "closed")
#: ISA-95 ResponseState of each job order state (open ones only with ``include_open``).
_RESPONSE_STATE = {
    "planned": "Waiting",
    "released": "Ready",
    "dispatched": "Ready",
    "running": "Running",
    "held": "Held",
    "aborted": "Aborted",
    "completed": "Completed",
    "closed": "Closed",
}
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
    """What an import did: every order of the document, and which were new, released or
    already there as the document says (a re-sent document changes nothing)."""

    schedule_id: str
    job_orders: list[str]
    sha256: str
    created: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


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


def _request(order: ScheduledJobOrder) -> JobOrderCreate:
    try:
        return JobOrderCreate(
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
            f"{where}: {first['msg']}",
            object_ref=f"job_order:{order.number}",
        ) from exc


def _differences(job: JobOrder, order: ScheduledJobOrder) -> list[str]:
    """How an existing job order differs from the document's request (empty: the same)."""
    found: list[str] = []
    if job.product.code != order.product:
        found.append(f"product {job.product.code!r}, the document says {order.product!r}")
    if order.operations_definition and job.definition.code != order.operations_definition:
        found.append(
            f"OperationsDefinitionID {job.definition.code!r}, the document says "
            f"{order.operations_definition!r}"
        )
    if abs(job.quantity - order.quantity) > 1e-9:
        found.append(f"quantity {job.quantity:g}, the document says {order.quantity:g}")
    due = job.due_at.replace(tzinfo=UTC) if job.due_at and job.due_at.tzinfo is None else job.due_at
    if order.due is not None and due != order.due:
        found.append(f"EndTime {due}, the document says {order.due.isoformat()}")
    return found


def _import_order(
    session: Session, order: ScheduledJobOrder, result: ImportResult, *, actor: Actor
) -> None:
    """Create (or find unchanged) one job order and bring it to the document's state."""
    existing = session.execute(
        select(JobOrder.code).where(JobOrder.code == order.number)
    ).scalar_one_or_none()
    if existing is None:
        create_job_order(session, _request(order), actor=actor)
        result.created.append(order.number)
    else:
        job = get_job_order(session, order.number)
        differences = _differences(job, order)
        if differences:
            raise Conflict(
                "the job order exists with " + "; ".join(differences),
                object_ref=f"job_order:{order.number}",
            )
        # Released in the document and still planned here: the ERP releases it now. Any
        # later state is the MES's own progress, which a re-sent schedule never undoes.
        if not (order.state == "released" and job.state == JobOrderState.PLANNED.value):
            result.unchanged.append(order.number)
            return
    if order.state == "released":
        release_job_order(session, order.number, actor=actor)
        result.released.append(order.number)


def import_schedule(session: Session, data: bytes, *, actor: Actor) -> ImportResult:
    """Bring the job orders to what a ProcessOperationsSchedule says, all or nothing.

    Each OperationsRequest becomes a job order, released when its RequestState is
    Released. Importing the same document again is idempotent: an order that exists as the
    document describes it is left alone (a planned one is released when the document now
    says Released); one that exists with another product, routing, quantity or due date
    refuses the document (409) naming the order and the difference. Every refusal names
    the OperationsRequest it concerns.
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        schedule = parse_schedule(data)
    except B2MMLError as exc:
        refused = B2MMLRefused(exc)
        _refuse(session, actor, refused.message, refused.code)
        raise refused from exc
    result = ImportResult(schedule.schedule_id, [o.number for o in schedule.job_orders], digest)
    for order in schedule.job_orders:
        try:
            _import_order(session, order, result, actor=actor)
        except MesError as exc:
            # Name where, as the document's own refusals do (a missing product alone does
            # not say which order asked for it).
            exc.message = (
                f"OperationsSchedule {schedule.schedule_id!r} / OperationsRequest "
                f"{order.number!r}: {exc.message}"
            )
            exc.args = (exc.message,)
            _refuse(session, actor, exc.message, exc.code)
            raise
    audit.append(
        session,
        actor=actor.name,
        action="erp.schedule_imported",
        object_ref=f"erp:schedule:{schedule.schedule_id}",
        detail={
            "job_orders": result.job_orders,
            "created": result.created,
            "released": result.released,
            "unchanged": result.unchanged,
            "sha256": digest,
        },
    )
    return result


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
                work_unit=c.work_unit.code if c.work_unit is not None else None,
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
                # Every work unit it ran on (a parallel station's), the first first.
                equipment=[u.work_unit.code for u in op.units]
                or ([op.work_unit.code] if op.work_unit else []),
                personnel=people,
                materials=materials,
                good=op.good,
                scrap=op.scrap,
                unit=job.product.unit,
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
    include_open: bool = False,
    actor: Actor,
) -> bytes:
    """A validated ProcessOperationsPerformance of the named job orders, or of every
    completed/closed one (ended at or after ``since``).

    With ``include_open`` the job orders are reported as they stand, whatever their state
    (named ones, or every job order), and the document's PerformanceState is Running: what
    a client that reads actuals only through B2MML needs during a run.
    """
    if job_orders:
        jobs = [get_job_order(session, code) for code in job_orders]
        for job in jobs:
            if job.state not in EXPORTABLE and not include_open:
                raise InvalidInput(
                    f"job order {job.code} is {job.state}; only completed or closed job orders "
                    "have a final performance",
                    object_ref=f"job_order:{job.code}",
                )
    else:
        q = select(JobOrder).order_by(JobOrder.id).limit(limit)
        if not include_open:
            q = q.where(JobOrder.state.in_(EXPORTABLE))
        if since is not None:
            q = q.where(JobOrder.ended_at >= since)
        jobs = [get_job_order(session, j.code) for j in session.execute(q).scalars().all()]
    if not jobs:
        raise NotFound(
            "job order" if include_open else "completed job order",
            "any" if since is None else f"since {since.isoformat()}",
        )
    perf_id = f"PERF-{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    final = all(j.state in EXPORTABLE for j in jobs)
    document = build_performance(
        [_actual(session, j) for j in jobs],
        performance_id=perf_id,
        performance_state="Completed" if final else "Running",
    )
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
