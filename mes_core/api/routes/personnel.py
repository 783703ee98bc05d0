"""``/api/v1/persons``: people, roles, certifications (ISA-95 personnel model)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mes_core.api import views
from mes_core.api.deps import Admin, AnyUser, SessionDep, Supervisor
from mes_core.persistence import masterdata
from mes_core.persistence.models import Person
from mes_core.schemas.masterdata import CertificationIn, PersonCreate, PersonOut

router = APIRouter(prefix="/api/v1/persons", tags=["personnel"])


@router.post("", response_model=PersonOut, status_code=201)
def create(body: PersonCreate, session: SessionDep, actor: Admin) -> PersonOut:
    """Create a person with roles, an optional password and certifications (admin)."""
    row = masterdata.create_person(session, body, actor=actor)
    session.commit()
    return views.person_out(row)


@router.get("", response_model=list[PersonOut])
def list_all(session: SessionDep, _: AnyUser) -> list[PersonOut]:
    rows = session.execute(
        select(Person).options(selectinload(Person.certifications)).order_by(Person.id)
    ).scalars()
    return [views.person_out(r) for r in rows]


@router.get("/{code}", response_model=PersonOut)
def get(code: str, session: SessionDep, _: AnyUser) -> PersonOut:
    return views.person_out(masterdata.get_person(session, code))


@router.post("/{code}/certifications", response_model=PersonOut, status_code=201)
def certify(code: str, body: CertificationIn, session: SessionDep, actor: Supervisor) -> PersonOut:
    row = masterdata.add_certification(session, code, body, actor=actor)
    session.commit()
    return views.person_out(row)
