"""ORM rows to wire schemas (the only place that knows both shapes)."""

from __future__ import annotations

import json

from mes_core.persistence.models import (
    AuditEntry,
    Equipment,
    JobOrder,
    MaterialLot,
    OperationsDefinition,
    Person,
)
from mes_core.schemas.audit import AuditEntryOut, ChangeEvent
from mes_core.schemas.execution import (
    JobOperationOut,
    JobOrderOut,
    OperationUnitOut,
)
from mes_core.schemas.masterdata import (
    CertificationOut,
    CharacteristicOut,
    EquipmentOut,
    LotOut,
    PersonOut,
    RoutingOut,
    SegmentMaterialOut,
    SegmentOut,
)


def equipment_out(row: Equipment) -> EquipmentOut:
    return EquipmentOut(
        code=row.code,
        name=row.name,
        level=row.level,
        parent=row.parent.code if row.parent else None,
        equipment_class=row.equipment_class,
        state=row.state,
        state_reason=row.state_reason,
        state_since=row.state_since,
        qualified=row.qualified,
        qualification_due=row.qualification_due,
        calibration_due=row.calibration_due,
    )


def lot_out(row: MaterialLot) -> LotOut:
    op = row.produced_by
    return LotOut(
        code=row.code,
        material=row.material.code,
        status=row.status,
        quantity=row.quantity,
        initial_quantity=row.initial_quantity,
        expires_at=row.expires_at,
        created_at=row.created_at,
        produced_by=f"{op.job_order.code}/{op.sequence}" if op is not None else None,
    )


def routing_out(row: OperationsDefinition) -> RoutingOut:
    return RoutingOut(
        code=row.code,
        name=row.name,
        product=row.product.code,
        segments=[
            SegmentOut(
                sequence=s.sequence,
                name=s.name,
                equipment_class=s.equipment_class,
                pru_seconds=s.pru_seconds,
                skill=s.skill,
                allow_partial=s.allow_partial,
                max_work_units=s.max_work_units,
                depends_on=s.predecessors,
                materials=[
                    SegmentMaterialOut(
                        material=m.material.code, quantity_per_unit=m.quantity_per_unit
                    )
                    for m in s.materials
                ],
                characteristics=[CharacteristicOut.model_validate(c) for c in s.characteristics],
            )
            for s in row.segments
        ],
    )


def person_out(row: Person) -> PersonOut:
    return PersonOut(
        code=row.code,
        name=row.name,
        roles=row.role_list,
        active=row.active,
        certifications=[CertificationOut.model_validate(c) for c in row.certifications],
    )


def job_order_out(row: JobOrder) -> JobOrderOut:
    return JobOrderOut(
        code=row.code,
        product=row.product.code,
        routing=row.definition.code,
        quantity=row.quantity,
        due_at=row.due_at,
        state=row.state,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        operations=[
            JobOperationOut(
                sequence=op.sequence,
                name=op.segment.name,
                equipment_class=op.segment.equipment_class,
                state=op.state,
                work_unit=op.work_unit.code if op.work_unit else None,
                planned_work_unit=op.planned_work_unit.code if op.planned_work_unit else None,
                good=op.good,
                scrap=op.scrap,
                started_at=op.started_at,
                ended_at=op.ended_at,
                operators=[o.person.code for o in op.operators],
                consumed=[
                    {"lot": c.lot.code, "quantity": c.quantity, "at": c.at.isoformat()}
                    | ({"work_unit": c.work_unit.code} if c.work_unit is not None else {})
                    for c in op.consumptions
                ],
                work_units=[
                    OperationUnitOut(
                        work_unit=u.work_unit.code,
                        good=u.good,
                        scrap=u.scrap,
                        started_at=u.started_at,
                        ended_at=u.ended_at,
                    )
                    for u in op.units
                ],
            )
            for op in row.operations
        ],
    )


def audit_out(row: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object=row.object_ref,
        detail=json.loads(row.detail),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def change_out(row: AuditEntry) -> ChangeEvent:
    return ChangeEvent(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object=row.object_ref,
        detail=json.loads(row.detail),
    )
