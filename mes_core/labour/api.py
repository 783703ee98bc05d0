"""``/api/v1/labour``: clock in/out, labour booked on job operations, labour hours."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from mes_core.api.deps import AnyUser, SessionDep, ShopFloor
from mes_core.labour import service
from mes_core.labour.models import Attendance, LabourBooking
from mes_core.labour.schemas import (
    AttendanceOut,
    BookingOut,
    JobOrderLabour,
    PersonLabour,
    PersonRef,
)
from mes_core.persistence.base import utcnow
from mes_core.persistence.masterdata import get_person

router = APIRouter(prefix="/api/v1/labour", tags=["labour"])
Seq = Annotated[int, Path(ge=1, le=10_000)]


def _att(person: str, row: Attendance) -> AttendanceOut:
    return AttendanceOut(
        person=person,
        clock_in=row.clock_in,
        clock_out=row.clock_out,
        hours=service.hours_between(row.clock_in, row.clock_out, utcnow()),
    )


@router.post("/clock-in", response_model=AttendanceOut, status_code=201)
def clock_in(body: PersonRef, session: SessionDep, actor: ShopFloor) -> AttendanceOut:
    """Clock in (yourself; a supervisor may clock in others)."""
    person = service.person_for(session, body.person, actor)
    row = service.clock_in(session, person, actor=actor, occurred_at=body.occurred_at)
    session.commit()
    return _att(person.code, row)


@router.post("/clock-out", response_model=AttendanceOut)
def clock_out(body: PersonRef, session: SessionDep, actor: ShopFloor) -> AttendanceOut:
    """Clock out; open labour bookings end at the same instant."""
    person = service.person_for(session, body.person, actor)
    row = service.clock_out(session, person, actor=actor, occurred_at=body.occurred_at)
    session.commit()
    return _att(person.code, row)


def _booking(person: str, code: str, seq: int, row: LabourBooking) -> BookingOut:
    return BookingOut(
        person=person,
        job_order=code,
        operation=seq,
        started_at=row.started_at,
        ended_at=row.ended_at,
        hours=service.hours_between(row.started_at, row.ended_at, utcnow()),
    )


@router.post(
    "/job-orders/{code}/operations/{sequence}/start", response_model=BookingOut, status_code=201
)
def start(
    code: str, sequence: Seq, body: PersonRef, session: SessionDep, actor: ShopFloor
) -> BookingOut:
    """Start booking labour on an operation (clocked in, certified for its skill: rule 3)."""
    person = service.person_for(session, body.person, actor)
    row = service.start_labour(
        session, code, sequence, person, actor=actor, occurred_at=body.occurred_at
    )
    session.commit()
    return _booking(person.code, code, sequence, row)


@router.post("/job-orders/{code}/operations/{sequence}/stop", response_model=BookingOut)
def stop(
    code: str, sequence: Seq, body: PersonRef, session: SessionDep, actor: ShopFloor
) -> BookingOut:
    person = service.person_for(session, body.person, actor)
    row = service.stop_labour(
        session, code, sequence, person, actor=actor, occurred_at=body.occurred_at
    )
    session.commit()
    return _booking(person.code, code, sequence, row)


@router.get("/job-orders/{code}", response_model=JobOrderLabour)
def job_order_labour(code: str, session: SessionDep, _: AnyUser) -> JobOrderLabour:
    """Labour hours per operation and per person of a job order."""
    return service.job_order_labour(session, code)


@router.get("/persons/{code}", response_model=PersonLabour)
def person_labour(code: str, session: SessionDep, _: AnyUser) -> PersonLabour:
    get_person(session, code)
    return service.person_labour(session, code)
