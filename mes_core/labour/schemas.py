"""Wire schemas of labour: clock in/out, labour bookings, labour hours."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from mes_core.schemas.common import Code, Strict
from mes_core.schemas.execution import OccurredAt


class PersonRef(Strict):
    """The person acted for (default: the calling person), and when (business time, for a
    caller allowed to backdate; default: the MES's clock)."""

    person: Code | None = None
    occurred_at: OccurredAt = None


class AttendanceOut(BaseModel):
    person: str
    clock_in: datetime
    clock_out: datetime | None
    hours: float


class BookingOut(BaseModel):
    person: str
    job_order: str
    operation: int
    started_at: datetime
    ended_at: datetime | None
    hours: float


class OperationLabour(BaseModel):
    sequence: int
    name: str
    hours: float
    hours_by_person: dict[str, float]


class JobOrderLabour(BaseModel):
    """Labour hours booked on a job order, per operation and per person (open bookings
    count up to now)."""

    job_order: str
    hours: float
    operations: list[OperationLabour]


class PersonLabour(BaseModel):
    person: str
    clocked_in: bool
    attendance_hours: float
    booked_hours: float
    attendance: list[AttendanceOut]
    bookings: list[BookingOut]
