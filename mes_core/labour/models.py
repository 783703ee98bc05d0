"""Tables of labour: attendance (clock in/out) and labour booked on job operations.
Migration: ``0002_quality_oee_labour_erp``; change both together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from mes_core.persistence.base import Base


class Attendance(Base):
    """A person's clock-in to clock-out (``clock_out`` empty while clocked in)."""

    __tablename__ = "attendance"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    clock_in: Mapped[datetime]
    clock_out: Mapped[datetime | None]

    __table_args__ = (Index("ix_attendance_person_in", "person_id", "clock_in"),)


class LabourBooking(Base):
    """Labour of a person on a job operation (``ended_at`` empty while booked)."""

    __tablename__ = "labour_booking"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    job_operation_id: Mapped[int] = mapped_column(ForeignKey("job_operation.id"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
