"""Labour services: clock in/out, labour booked on job operations, labour hours.

Rule 3 of PRODUCT.md applies when labour starts: the person needs a valid certification
for the skill of the operation's segment (a refusal is recorded like every other).
Clocking out closes the person's open labour bookings at the same instant.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.domain import clock, rules
from mes_core.domain.errors import Conflict, Forbidden, NotFound
from mes_core.domain.states import Role
from mes_core.labour import rules as lr
from mes_core.labour.models import Attendance, LabourBooking
from mes_core.labour.schemas import (
    AttendanceOut,
    BookingOut,
    JobOrderLabour,
    OperationLabour,
    PersonLabour,
)
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.execution import get_job_order
from mes_core.persistence.masterdata import get_person
from mes_core.persistence.models import JobOperation, JobOrder, Person
from mes_core.persistence.refusals import enforced
from mes_core.persistence.security import Actor

_ACT_FOR_OTHERS = frozenset({Role.SUPERVISOR.value, Role.ADMIN.value})


def person_for(session: Session, code: str | None, actor: Actor) -> Person:
    """The person acted for: the caller by default; others only by a supervisor."""
    target = code or actor.person_code
    if target is None:
        raise Forbidden(
            f"{actor.name} is not a person: name one in 'person'", object_ref="person:-"
        )
    if target != actor.person_code and not actor.has_any(_ACT_FOR_OTHERS):
        raise Forbidden(
            f"{actor.name} may book only for themselves, not for {target}",
            object_ref=f"person:{target}",
        )
    return get_person(session, target)


def _open_attendance(session: Session, person: Person) -> Attendance | None:
    return session.execute(
        select(Attendance).where(Attendance.person_id == person.id, Attendance.clock_out.is_(None))
    ).scalar_one_or_none()


def _open_bookings(session: Session, person: Person) -> list[LabourBooking]:
    return list(
        session.execute(
            select(LabourBooking).where(
                LabourBooking.person_id == person.id, LabourBooking.ended_at.is_(None)
            )
        )
        .scalars()
        .all()
    )


def _conflict(exc: lr.LabourError, ref: str) -> Conflict:
    return Conflict(str(exc), object_ref=ref)


def _when(occurred_at: datetime | None, actor: Actor, ref: str) -> tuple[datetime, dict[str, str]]:
    """Business time of a labour action (see :mod:`mes_core.domain.clock`) and what its
    audit entry adds to say so."""
    when = clock.business_time(
        occurred_at, now=utcnow(), actor=actor.name, roles=actor.roles, object_ref=ref
    )
    return when, ({"occurred_at": when.isoformat()} if occurred_at is not None else {})


@enforced
def clock_in(
    session: Session, person: Person, *, actor: Actor, occurred_at: datetime | None = None
) -> Attendance:
    ref = f"person:{person.code}"
    when, stated = _when(occurred_at, actor, ref)
    try:
        lr.check_clock_in(person.code, _open_attendance(session, person) is not None)
    except lr.LabourError as exc:
        raise _conflict(exc, ref) from exc
    row = Attendance(person_id=person.id, clock_in=when)
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="labour.clock_in",
        object_ref=ref,
        detail=stated or None,
    )
    return row


@enforced
def clock_out(
    session: Session, person: Person, *, actor: Actor, occurred_at: datetime | None = None
) -> Attendance:
    ref = f"person:{person.code}"
    now, stated = _when(occurred_at, actor, ref)
    row = _open_attendance(session, person)
    try:
        lr.check_clock_out(person.code, row is not None)
    except lr.LabourError as exc:
        raise _conflict(exc, ref) from exc
    assert row is not None
    clock.check_not_before(now, row.clock_in, what=f"clock-out of {person.code}", ref=ref)
    row.clock_out = now
    closed = _open_bookings(session, person)
    for booking in closed:
        booking.ended_at = now
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="labour.clock_out",
        object_ref=ref,
        detail={"bookings_closed": len(closed), **stated},
    )
    return row


def _operation(job: JobOrder, sequence: int) -> JobOperation:
    op = next((o for o in job.operations if o.sequence == sequence), None)
    if op is None:
        raise NotFound("operation", f"{job.code}/{sequence}")
    return op


@enforced
def start_labour(
    session: Session,
    code: str,
    sequence: int,
    person: Person,
    *,
    actor: Actor,
    occurred_at: datetime | None = None,
) -> LabourBooking:
    """Book ``person`` on an operation: clocked in, not already booked there, and certified
    for the segment's skill (rule 3, judged at the booking's business time)."""
    job = get_job_order(session, code)
    op = _operation(job, sequence)
    ref = f"job_order:{code}/operation:{sequence}"
    when, stated = _when(occurred_at, actor, ref)
    already = any(b.job_operation_id == op.id for b in _open_bookings(session, person))
    try:
        lr.check_labour_start(
            person.code,
            f"{code}/{sequence}",
            clocked_in=_open_attendance(session, person) is not None,
            already_booked=already,
        )
    except lr.LabourError as exc:
        raise _conflict(exc, ref) from exc
    rules.check_certification(
        person.code,
        op.segment.skill,
        [rules.CertificationFacts(c.skill, c.valid_until) for c in person.certifications],
        today=when.date(),
        action=f"book labour on operation {sequence} of job order {code}",
    )
    row = LabourBooking(person_id=person.id, job_operation_id=op.id, started_at=when)
    session.add(row)
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="labour.started",
        object_ref=ref,
        detail={"person": person.code, **stated},
    )
    return row


@enforced
def stop_labour(
    session: Session,
    code: str,
    sequence: int,
    person: Person,
    *,
    actor: Actor,
    occurred_at: datetime | None = None,
) -> LabourBooking:
    job = get_job_order(session, code)
    op = _operation(job, sequence)
    ref = f"job_order:{code}/operation:{sequence}"
    when, stated = _when(occurred_at, actor, ref)
    open_here = [b for b in _open_bookings(session, person) if b.job_operation_id == op.id]
    try:
        lr.check_labour_stop(person.code, f"{code}/{sequence}", booked=bool(open_here))
    except lr.LabourError as exc:
        raise _conflict(exc, ref) from exc
    row = open_here[0]
    clock.check_not_before(when, row.started_at, what=f"end of {person.code}'s labour", ref=ref)
    row.ended_at = when
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="labour.stopped",
        object_ref=ref,
        detail={"person": person.code, **stated},
    )
    return row


def hours_between(start: datetime, end: datetime | None, now: datetime) -> float:
    return lr.hours([lr.Booking(start, end)], now)


def job_order_labour(session: Session, code: str) -> JobOrderLabour:
    """Labour hours per operation and per person of a job order."""
    job = get_job_order(session, code)
    now = utcnow()
    ops = {o.id: o for o in job.operations}
    per_op: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rows = session.execute(
        select(LabourBooking, Person.code)
        .join(Person, Person.id == LabourBooking.person_id)
        .where(LabourBooking.job_operation_id.in_(list(ops)))
    ).all()
    for booking, person in rows:
        per_op[booking.job_operation_id][person] += hours_between(
            booking.started_at, booking.ended_at, now
        )
    operations = [
        OperationLabour(
            sequence=op.sequence,
            name=op.segment.name,
            hours=sum(per_op[op.id].values()),
            hours_by_person=dict(per_op[op.id]),
        )
        for op in sorted(ops.values(), key=lambda o: o.sequence)
    ]
    return JobOrderLabour(
        job_order=code, hours=sum(o.hours for o in operations), operations=operations
    )


def person_labour(session: Session, code: str, *, limit: int = 200) -> PersonLabour:
    """A person's latest attendance and bookings with their hours."""
    person = get_person(session, code)
    now = utcnow()
    attendance = (
        session.execute(
            select(Attendance)
            .where(Attendance.person_id == person.id)
            .order_by(Attendance.clock_in.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
    bookings = session.execute(
        select(LabourBooking, JobOperation.sequence, JobOrder.code)
        .join(JobOperation, JobOperation.id == LabourBooking.job_operation_id)
        .join(JobOrder, JobOrder.id == JobOperation.job_order_id)
        .where(LabourBooking.person_id == person.id)
        .order_by(LabourBooking.started_at.desc())
        .limit(limit)
    ).all()
    att = [
        AttendanceOut(
            person=code,
            clock_in=a.clock_in,
            clock_out=a.clock_out,
            hours=hours_between(a.clock_in, a.clock_out, now),
        )
        for a in attendance
    ]
    bk = [
        BookingOut(
            person=code,
            job_order=job,
            operation=seq,
            started_at=b.started_at,
            ended_at=b.ended_at,
            hours=hours_between(b.started_at, b.ended_at, now),
        )
        for b, seq, job in bookings
    ]
    return PersonLabour(
        person=code,
        clocked_in=any(a.clock_out is None for a in attendance),
        attendance_hours=sum(a.hours for a in att),
        booked_hours=sum(b.hours for b in bk),
        attendance=att,
        bookings=bk,
    )
