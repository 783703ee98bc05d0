"""``/api/v1/kpi``: shift calendars, work unit state history over a window, and the
ISO 22400-2 KPIs of a work unit or a line over any window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from mes_core.api.deps import AnyUser, SessionDep, Supervisor
from mes_core.kpi import service
from mes_core.kpi.schemas import CalendarAssign, CalendarIn, CalendarOut, KpiReport, StateReport
from mes_core.schemas.common import Code

router = APIRouter(prefix="/api/v1/kpi", tags=["KPIs (ISO 22400-2)"])

Start = Annotated[datetime, Query(description="window start, ISO 8601 with offset")]
End = Annotated[datetime, Query(description="window end (exclusive), ISO 8601 with offset")]
Source = Annotated[
    Literal["plant", "operations"],
    Query(description="quantities from plant count events or from operation actuals"),
]


@router.get("/calendars", response_model=list[CalendarOut])
def list_calendars(session: SessionDep, _: AnyUser) -> list[CalendarOut]:
    return service.list_calendars(session)


@router.get("/calendars/{code}", response_model=CalendarOut)
def get_calendar(code: str, session: SessionDep, _: AnyUser) -> CalendarOut:
    return service.get_calendar(session, code)


@router.put("/calendars/{code}", response_model=CalendarOut)
def put_calendar(
    code: Code, body: CalendarIn, session: SessionDep, actor: Supervisor
) -> CalendarOut:
    """Create or replace a shift calendar (planned operation time and breaks: POT, PDOT)."""
    out = service.put_calendar(session, code, body, actor=actor)
    session.commit()
    return out


@router.put("/equipment/{code}/calendar", response_model=CalendarOut)
def assign_calendar(
    code: str, body: CalendarAssign, session: SessionDep, actor: Supervisor
) -> CalendarOut:
    """Make a line or work unit follow a calendar (work units inherit their line's)."""
    out = service.assign_calendar(session, code, body.calendar, actor=actor)
    session.commit()
    return out


@router.get("/work-units/{code}/states", response_model=StateReport)
def work_unit_states(
    code: str, session: SessionDep, _: AnyUser, start: Start, end: End
) -> StateReport:
    """The work unit's state intervals with reasons over ``[start, end)``."""
    return service.state_report(session, code, start, end)


@router.get("/work-units/{code}", response_model=KpiReport)
def work_unit_kpis(
    code: str,
    session: SessionDep,
    _: AnyUser,
    start: Start,
    end: End,
    quantity_source: Source = "plant",
) -> KpiReport:
    """Availability, effectiveness, quality ratio, OEE, throughput, scrap ratio, first pass
    yield and their time elements (ISO 22400-2) of one work unit."""
    return service.work_unit_kpis(session, code, start, end, quantity_source=quantity_source)


@router.get("/lines/{code}", response_model=KpiReport)
def line_kpis(
    code: str,
    session: SessionDep,
    _: AnyUser,
    start: Start,
    end: End,
    quantity_source: Source = "plant",
) -> KpiReport:
    """The same KPIs over all work units of a line (or area, site)."""
    return service.line_kpis(session, code, start, end, quantity_source=quantity_source)
