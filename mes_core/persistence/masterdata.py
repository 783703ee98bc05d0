"""Master data services: equipment hierarchy, materials, lots, routings, personnel.

Keyword-only service functions over a session; they flush but never commit (the caller's
transaction decides), and append an audit entry for every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mes_core.domain.errors import Conflict, InvalidInput, NotFound
from mes_core.domain.states import EquipmentLevel, LotStatus
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.models import (
    Certification,
    Equipment,
    EquipmentStateHistory,
    InspectionCharacteristic,
    MaterialDefinition,
    MaterialLot,
    OperationsDefinition,
    OperationsSegment,
    Person,
    SegmentMaterial,
)
from mes_core.persistence.security import Actor, hash_password
from mes_core.schemas import masterdata as md

# ------------------------------------------------------------------ lookups


def get_equipment(session: Session, code: str) -> Equipment:
    row = session.execute(select(Equipment).where(Equipment.code == code)).scalar_one_or_none()
    if row is None:
        raise NotFound("equipment", code)
    return row


def get_work_unit(session: Session, code: str) -> Equipment:
    """A work unit by code (``NotFound`` if missing, ``InvalidInput`` if not a work unit)."""
    row = get_equipment(session, code)
    if row.level != EquipmentLevel.WORK_UNIT:
        raise InvalidInput(f"equipment {code} is a {row.level}, not a work unit", object_ref=code)
    return row


def list_equipment(session: Session, *, level: str | None = None) -> Sequence[Equipment]:
    q = select(Equipment).options(selectinload(Equipment.parent)).order_by(Equipment.id)
    if level:
        q = q.where(Equipment.level == level)
    return session.execute(q).scalars().all()


def get_material(session: Session, code: str) -> MaterialDefinition:
    row = session.execute(
        select(MaterialDefinition).where(MaterialDefinition.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("material", code)
    return row


def get_lot(session: Session, code: str, *, for_update: bool = False) -> MaterialLot:
    q = select(MaterialLot).where(MaterialLot.code == code)
    if for_update:
        # populate_existing: the lot may already be in the session, read before the lock
        # was granted (a job order's consumptions name it); its quantity must be the one
        # under the lock, or two job orders drawing on one lot could overdraw it (rule 2).
        q = q.with_for_update().execution_options(populate_existing=True)
    row = session.execute(q).scalar_one_or_none()
    if row is None:
        raise NotFound("material lot", code)
    return row


def get_routing(session: Session, code: str) -> OperationsDefinition:
    row = session.execute(
        select(OperationsDefinition)
        .where(OperationsDefinition.code == code)
        .options(
            selectinload(OperationsDefinition.segments).selectinload(OperationsSegment.materials),
            selectinload(OperationsDefinition.segments).selectinload(
                OperationsSegment.characteristics
            ),
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("routing", code)
    return row


def get_person(session: Session, code: str) -> Person:
    row = session.execute(
        select(Person).where(Person.code == code).options(selectinload(Person.certifications))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("person", code)
    return row


def _require_new(session: Session, model: type, code: str, kind: str) -> None:
    exists = session.execute(
        select(func.count()).select_from(model).where(model.code == code)  # type: ignore[attr-defined]
    ).scalar_one()
    if exists:
        raise Conflict(f"{kind} {code!r} already exists", object_ref=f"{kind}:{code}")


# ------------------------------------------------------------------ create


def create_equipment(session: Session, data: md.EquipmentCreate, *, actor: Actor) -> Equipment:
    _require_new(session, Equipment, data.code, "equipment")
    parent = get_equipment(session, data.parent) if data.parent else None
    if data.level == EquipmentLevel.WORK_UNIT and not data.equipment_class:
        raise InvalidInput(
            f"work unit {data.code} needs an equipment_class", object_ref=f"equipment:{data.code}"
        )
    row = Equipment(
        code=data.code,
        name=data.name,
        level=data.level.value,
        parent_id=parent.id if parent else None,
        equipment_class=data.equipment_class,
        state="idle",
        state_reason="",
        state_since=None,
        qualified=data.qualified,
        qualification_due=data.qualification_due,
        calibration_due=data.calibration_due,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="equipment.created",
        object_ref=f"equipment:{data.code}",
        detail=data.model_dump(mode="json"),
    )
    return row


def update_equipment(
    session: Session, code: str, data: md.EquipmentUpdate, *, actor: Actor
) -> Equipment:
    row = get_equipment(session, code)
    changes = data.model_dump(mode="json", exclude_unset=True)
    for key, value in data.model_dump(exclude_unset=True).items():
        setattr(row, key, value)
    audit.append(
        session,
        actor=actor.name,
        action="equipment.updated",
        object_ref=f"equipment:{code}",
        detail=changes,
    )
    return row


def set_equipment_state(
    session: Session, code: str, data: md.StateChange, *, actor: Actor
) -> Equipment:
    row = get_work_unit(session, code)
    now = utcnow()
    row.state, row.state_reason, row.state_since = data.state.value, data.reason, now
    session.add(
        EquipmentStateHistory(
            equipment_id=row.id,
            state=data.state.value,
            reason=data.reason,
            started_at=now,
            source=f"user:{actor.name}",
        )
    )
    audit.append(
        session,
        actor=actor.name,
        action="equipment.state",
        object_ref=f"work_unit:{code}",
        detail={"state": data.state.value, "reason": data.reason},
    )
    return row


def state_history(session: Session, code: str, *, limit: int) -> Sequence[EquipmentStateHistory]:
    row = get_work_unit(session, code)
    return (
        session.execute(
            select(EquipmentStateHistory)
            .where(EquipmentStateHistory.equipment_id == row.id)
            .order_by(EquipmentStateHistory.started_at.desc(), EquipmentStateHistory.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def create_material(
    session: Session, data: md.MaterialCreate, *, actor: Actor
) -> MaterialDefinition:
    _require_new(session, MaterialDefinition, data.code, "material")
    row = MaterialDefinition(code=data.code, name=data.name, unit=data.unit)
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="material.created",
        object_ref=f"material:{data.code}",
        detail=data.model_dump(mode="json"),
    )
    return row


def create_lot(session: Session, data: md.LotCreate, *, actor: Actor) -> MaterialLot:
    _require_new(session, MaterialLot, data.code, "material lot")
    material = get_material(session, data.material)
    if data.status == LotStatus.CONSUMED:
        raise InvalidInput("a new lot cannot be consumed already", object_ref=data.code)
    row = MaterialLot(
        code=data.code,
        material_id=material.id,
        material=material,
        status=data.status.value,
        quantity=data.quantity,
        initial_quantity=data.quantity,
        expires_at=data.expires_at.astimezone(UTC) if data.expires_at else None,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="lot.created",
        object_ref=f"material_lot:{data.code}",
        detail=data.model_dump(mode="json"),
    )
    return row


def create_routing(
    session: Session, data: md.RoutingCreate, *, actor: Actor
) -> OperationsDefinition:
    _require_new(session, OperationsDefinition, data.code, "routing")
    product = get_material(session, data.product)
    seqs = [s.sequence for s in data.segments]
    if len(set(seqs)) != len(seqs):
        raise InvalidInput(
            f"routing {data.code}: segment sequence numbers repeat ({seqs})",
            object_ref=f"routing:{data.code}",
        )
    for seg in data.segments:
        for dep in seg.depends_on or ():
            if dep >= seg.sequence or dep not in seqs:
                raise InvalidInput(
                    f"routing {data.code}: segment {seg.sequence} depends on {dep}, which is "
                    "not an earlier segment of the routing",
                    object_ref=f"routing:{data.code}",
                )
    row = OperationsDefinition(code=data.code, name=data.name, product_id=product.id)
    for seg in sorted(data.segments, key=lambda s: s.sequence):
        segment = OperationsSegment(
            sequence=seg.sequence,
            name=seg.name,
            equipment_class=seg.equipment_class,
            pru_seconds=seg.pru_seconds,
            skill=seg.skill,
            allow_partial=seg.allow_partial,
            max_work_units=seg.max_work_units,
            depends_on=None
            if seg.depends_on is None
            else ",".join(str(d) for d in sorted(set(seg.depends_on))),
        )
        for m in seg.materials:
            segment.materials.append(
                SegmentMaterial(
                    material_id=get_material(session, m.material).id,
                    quantity_per_unit=m.quantity_per_unit,
                )
            )
        for c in seg.characteristics:
            segment.characteristics.append(InspectionCharacteristic(**c.model_dump()))
        row.segments.append(segment)
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="routing.created",
        object_ref=f"routing:{data.code}",
        detail=data.model_dump(mode="json"),
    )
    return row


def create_person(session: Session, data: md.PersonCreate, *, actor: Actor) -> Person:
    _require_new(session, Person, data.code, "person")
    row = Person(
        code=data.code,
        name=data.name,
        roles=",".join(r.value for r in data.roles),
        password_hash=hash_password(data.password) if data.password else None,
        active=True,
    )
    for c in data.certifications:
        row.certifications.append(Certification(skill=c.skill, valid_until=c.valid_until))
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="person.created",
        object_ref=f"person:{data.code}",
        detail=data.model_dump(mode="json", exclude={"password"}),
    )
    return row


def add_certification(
    session: Session, code: str, data: md.CertificationIn, *, actor: Actor
) -> Person:
    person = get_person(session, code)
    person.certifications.append(Certification(skill=data.skill, valid_until=data.valid_until))
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="person.certified",
        object_ref=f"person:{code}",
        detail=data.model_dump(mode="json"),
    )
    return person


def load_master_data(session: Session, data: md.MasterData, *, actor: Actor) -> md.MasterDataResult:
    """Create a plant's master data in dependency order (one transaction, the caller's)."""
    # Parents before children, whatever order the file lists them in.
    pending = list(data.equipment)
    known = {e.code for e in data.equipment}
    created: set[str] = set()
    while pending:
        ready = [
            e for e in pending if e.parent is None or e.parent in created or e.parent not in known
        ]
        if not ready:
            raise InvalidInput(
                "equipment hierarchy has a cycle among " + ", ".join(e.code for e in pending),
                object_ref="equipment",
            )
        for e in ready:
            create_equipment(session, e, actor=actor)
            created.add(e.code)
        pending = [e for e in pending if e.code not in created]
    for m in data.materials:
        create_material(session, m, actor=actor)
    for r in data.routings:
        create_routing(session, r, actor=actor)
    for p in data.persons:
        create_person(session, p, actor=actor)
    for lot in data.lots:
        create_lot(session, lot, actor=actor)
    return md.MasterDataResult(
        equipment=len(data.equipment),
        materials=len(data.materials),
        routings=len(data.routings),
        persons=len(data.persons),
        lots=len(data.lots),
    )
