"""``/api/v1/routings``: operations definitions (routings / work masters) with segments."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from mes_core.api import views
from mes_core.api.deps import AnyUser, SessionDep, Supervisor
from mes_core.persistence import masterdata
from mes_core.persistence.models import OperationsDefinition
from mes_core.schemas.masterdata import RoutingCreate, RoutingOut

router = APIRouter(prefix="/api/v1/routings", tags=["routing"])


@router.post("", response_model=RoutingOut, status_code=201)
def create(body: RoutingCreate, session: SessionDep, actor: Supervisor) -> RoutingOut:
    row = masterdata.create_routing(session, body, actor=actor)
    session.commit()
    return views.routing_out(masterdata.get_routing(session, row.code))


@router.get("", response_model=list[RoutingOut])
def list_all(session: SessionDep, _: AnyUser) -> list[RoutingOut]:
    codes = session.execute(select(OperationsDefinition.code).order_by(OperationsDefinition.id))
    return [views.routing_out(masterdata.get_routing(session, c)) for (c,) in codes]


@router.get("/{code}", response_model=RoutingOut)
def get(code: str, session: SessionDep, _: AnyUser) -> RoutingOut:
    return views.routing_out(masterdata.get_routing(session, code))
