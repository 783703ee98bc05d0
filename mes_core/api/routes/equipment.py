"""``/api/v1/equipment``: the equipment hierarchy, work unit states and their history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mes_core.api import views
from mes_core.api.deps import AnyUser, Quality, SessionDep, ShopFloor, Supervisor
from mes_core.domain.states import EquipmentLevel
from mes_core.persistence import masterdata
from mes_core.schemas.masterdata import (
    EquipmentCreate,
    EquipmentOut,
    EquipmentUpdate,
    StateChange,
    StateHistoryOut,
)

router = APIRouter(prefix="/api/v1/equipment", tags=["equipment"])


@router.post("", response_model=EquipmentOut, status_code=201)
def create(body: EquipmentCreate, session: SessionDep, actor: Supervisor) -> EquipmentOut:
    row = masterdata.create_equipment(session, body, actor=actor)
    session.commit()
    return views.equipment_out(row)


@router.get("", response_model=list[EquipmentOut])
def list_all(
    session: SessionDep, _: AnyUser, level: EquipmentLevel | None = None
) -> list[EquipmentOut]:
    rows = masterdata.list_equipment(session, level=level.value if level else None)
    return [views.equipment_out(r) for r in rows]


@router.get("/{code}", response_model=EquipmentOut)
def get(code: str, session: SessionDep, _: AnyUser) -> EquipmentOut:
    return views.equipment_out(masterdata.get_equipment(session, code))


@router.patch("/{code}", response_model=EquipmentOut)
def update(code: str, body: EquipmentUpdate, session: SessionDep, actor: Quality) -> EquipmentOut:
    """Change qualification / calibration data (supervisor, quality)."""
    row = masterdata.update_equipment(session, code, body, actor=actor)
    session.commit()
    return views.equipment_out(row)


@router.post("/{code}/state", response_model=EquipmentOut)
def set_state(code: str, body: StateChange, session: SessionDep, actor: ShopFloor) -> EquipmentOut:
    """Record a manual state change of a work unit (e.g. maintenance) with its reason."""
    row = masterdata.set_equipment_state(session, code, body, actor=actor)
    session.commit()
    return views.equipment_out(row)


@router.get("/{code}/state-history", response_model=list[StateHistoryOut])
def state_history(
    code: str,
    session: SessionDep,
    _: AnyUser,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[StateHistoryOut]:
    rows = masterdata.state_history(session, code, limit=limit)
    return [StateHistoryOut.model_validate(r) for r in rows]
