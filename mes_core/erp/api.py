"""``/api/v1/erp``: the ERP exchange in B2MML V0701 (ISA-95 Part 2 / IEC 62264-2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from mes_core.api.deps import Planner, SessionDep
from mes_core.erp import service
from mes_core.erp.schemas import ImportOut

router = APIRouter(prefix="/api/v1/erp", tags=["ERP (B2MML)"])
XML = "application/xml"


@router.post("/schedules", response_model=ImportOut, status_code=201)
def import_schedule(
    session: SessionDep,
    actor: Planner,
    document: Annotated[bytes, Body(media_type=XML, description="ProcessOperationsSchedule")],
) -> ImportOut:
    """Import a ProcessOperationsSchedule (OperationsType Production) into planned job
    orders, all or nothing (integration, supervisor). Hostile or invalid XML: 4xx."""
    result = service.import_schedule(session, document, actor=actor)
    session.commit()
    return ImportOut(
        schedule_id=result.schedule_id, job_orders=result.job_orders, sha256=result.sha256
    )


@router.get(
    "/performance",
    response_class=Response,
    responses={200: {"content": {XML: {}}, "description": "ProcessOperationsPerformance"}},
)
def export_performance(
    session: SessionDep,
    actor: Planner,
    job_order: Annotated[list[str] | None, Query(max_length=1000)] = None,
    since: datetime | None = None,
) -> Response:
    """ProcessOperationsPerformance of completed job orders (named ones, or all completed or
    closed since ``since``), validated against the B2MML XSD."""
    document = service.export_performance(
        session, job_orders=job_order or (), since=since, actor=actor
    )
    session.commit()
    return Response(content=document, media_type=XML)
