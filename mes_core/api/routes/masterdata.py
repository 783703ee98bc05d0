"""``/api/v1/master-data``: a plant's master data in one call, one transaction."""

from __future__ import annotations

from fastapi import APIRouter

from mes_core.api.deps import Admin, SessionDep
from mes_core.persistence import masterdata
from mes_core.schemas.masterdata import MasterData, MasterDataResult

router = APIRouter(prefix="/api/v1/master-data", tags=["master data"])


@router.post("", response_model=MasterDataResult, status_code=201)
def load(body: MasterData, session: SessionDep, actor: Admin) -> MasterDataResult:
    """Create equipment, materials, routings, persons and lots; all or nothing (admin)."""
    result = masterdata.load_master_data(session, body, actor=actor)
    session.commit()
    return result
