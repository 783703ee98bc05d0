"""Tables of the KPI part: shift calendars and which equipment follows which calendar.
Migration: ``0002_quality_oee_labour_erp``; change both together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mes_core.persistence.base import Base, utcnow


class ShiftCalendarRow(Base):
    """A shift calendar; ``definition`` is the JSON of :class:`mes_core.kpi.schemas.CalendarIn`."""

    __tablename__ = "shift_calendar"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    definition: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EquipmentCalendar(Base):
    """The calendar a line or work unit follows (a work unit without one uses its line's)."""

    __tablename__ = "equipment_calendar"

    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("shift_calendar.id"), index=True)
