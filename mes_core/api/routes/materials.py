"""``/api/v1/materials`` and ``/api/v1/material-lots``: definitions, lots, holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mes_core.api import views
from mes_core.api.deps import AnyUser, Quality, SessionDep, Supervisor
from mes_core.domain.states import LotStatus
from mes_core.persistence import masterdata
from mes_core.persistence.models import JobOperation, MaterialDefinition, MaterialLot
from mes_core.quality import hold_service as holds
from mes_core.schemas.masterdata import HoldRequest, LotCreate, LotOut, MaterialCreate, MaterialOut

router = APIRouter(prefix="/api/v1", tags=["material"])


@router.post("/materials", response_model=MaterialOut, status_code=201)
def create_material(body: MaterialCreate, session: SessionDep, actor: Supervisor) -> MaterialOut:
    row = masterdata.create_material(session, body, actor=actor)
    session.commit()
    return MaterialOut.model_validate(row)


@router.get("/materials", response_model=list[MaterialOut])
def list_materials(session: SessionDep, _: AnyUser) -> list[MaterialOut]:
    rows = session.execute(select(MaterialDefinition).order_by(MaterialDefinition.id)).scalars()
    return [MaterialOut.model_validate(r) for r in rows]


@router.get("/materials/{code}", response_model=MaterialOut)
def get_material(code: str, session: SessionDep, _: AnyUser) -> MaterialOut:
    return MaterialOut.model_validate(masterdata.get_material(session, code))


@router.post("/material-lots", response_model=LotOut, status_code=201)
def create_lot(body: LotCreate, session: SessionDep, actor: Supervisor) -> LotOut:
    row = masterdata.create_lot(session, body, actor=actor)
    session.commit()
    return views.lot_out(row)


@router.get("/material-lots", response_model=list[LotOut])
def list_lots(
    session: SessionDep,
    _: AnyUser,
    status: LotStatus | None = None,
    material: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[LotOut]:
    q = (
        select(MaterialLot)
        .options(
            selectinload(MaterialLot.material),
            selectinload(MaterialLot.produced_by).selectinload(JobOperation.job_order),
        )
        .order_by(MaterialLot.id)
        .limit(limit)
    )
    if status:
        q = q.where(MaterialLot.status == status.value)
    if material:
        q = q.where(MaterialLot.material_id == masterdata.get_material(session, material).id)
    return [views.lot_out(r) for r in session.execute(q).scalars()]


@router.get("/material-lots/{code}", response_model=LotOut)
def get_lot(code: str, session: SessionDep, _: AnyUser) -> LotOut:
    return views.lot_out(masterdata.get_lot(session, code))


@router.post("/material-lots/{code}/hold", response_model=LotOut)
def hold_lot(code: str, body: HoldRequest, session: SessionDep, actor: Quality) -> LotOut:
    """Put a lot on hold by hand (rule 5): it cannot be consumed until released. The hold
    is the caller's: only a release by hand lifts it, never a nonconformance's disposition."""
    row = holds.hold_lot_by_hand(session, code, body.reason, actor=actor)
    session.commit()
    return views.lot_out(row)


@router.post("/material-lots/{code}/release", response_model=LotOut)
def release_lot(code: str, body: HoldRequest, session: SessionDep, actor: Quality) -> LotOut:
    """Lift the holds placed by hand on a lot (back to the status it had before), unless a
    nonconformance holds it too (409 ``HELD`` if only nonconformances do)."""
    row = holds.release_lot_by_hand(session, code, body.reason, actor=actor)
    session.commit()
    return views.lot_out(row)
