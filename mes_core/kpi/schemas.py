"""Wire schemas of the KPI part: shift calendars, state intervals, KPI reports."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from mes_core.schemas.common import Code, Strict


class BreakIn(Strict):
    """A planned break (planned down time, PDOT) inside a shift, local time."""

    start: time
    end: time


class ShiftIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    start: time
    end: time = Field(description="at or before start: the shift ends the next day")
    weekdays: Annotated[list[Annotated[int, Field(ge=0, le=6)]], Field(min_length=1)] = Field(
        default=[0, 1, 2, 3, 4, 5, 6], description="0 = Monday"
    )
    breaks: Annotated[list[BreakIn], Field(max_length=20)] = []


class CalendarIn(Strict):
    """A weekly shift pattern in the plant's time zone, with non-working days."""

    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    shifts: Annotated[list[ShiftIn], Field(max_length=20)] = []
    holidays: Annotated[list[date], Field(max_length=1000)] = []


class CalendarOut(CalendarIn):
    code: str
    equipment: list[str] = []


class CalendarAssign(Strict):
    calendar: Code


class Window(BaseModel):
    """A time window ``[start, end)``."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class StateIntervalOut(BaseModel):
    state: str
    reason: str
    start: datetime
    end: datetime
    seconds: float


class StateReport(BaseModel):
    work_unit: str
    start: datetime
    end: datetime
    intervals: list[StateIntervalOut]
    seconds_by_state: dict[str, float]


class TimeElementsOut(BaseModel):
    """ISO 22400-2 time elements, in seconds."""

    pot: float
    pdot: float
    pbt: float
    apt: float
    aust: float
    adet: float
    adot: float
    aubt: float
    apt_outside_pbt: float = Field(
        default=0.0,
        description="running time outside PBT (during planned down time): not in APT or "
        "availability, but in effectiveness's denominator with the units it made",
    )


class KpiReport(BaseModel):
    """ISO 22400-2 KPIs of a work unit or line over ``[start, end)``; ``None`` = undefined
    (a zero denominator: no planned time or no production)."""

    equipment: str
    level: str
    start: datetime
    end: datetime
    calendar: str
    quantity_source: str
    time: TimeElementsOut
    produced_quantity: float
    good_quantity: float
    scrap_quantity: float
    rework_quantity: float
    planned_run_time: float
    quantity_without_pru: float = Field(
        description="units whose job order/routing gave no PRU (not in effectiveness)"
    )
    availability: float | None
    effectiveness: float | None
    quality_ratio: float | None
    oee: float | None
    throughput_per_hour: float | None
    scrap_ratio: float | None
    first_pass_yield: float | None
    work_units: list[str] = []
    output_work_units: list[str] = Field(
        default=[],
        description="line: the work units where its job orders' last operations ran; its "
        "good quantity is what they made (what leaves the line)",
    )
    master_data_errors: list[str] = Field(
        default=[],
        description="each factor above 100 % (ISO 22400-2 clause 6 ratios are at most 1): "
        "wrong master data, e.g. a routing PRU slower than the machine runs",
    )
    constraint_work_unit: str | None = Field(
        default=None,
        description="line: the work unit whose time elements and PRU the line's KPIs use "
        "(the most planned run time in the window: its constraint)",
    )
