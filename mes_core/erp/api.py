"""``/api/v1/erp``: the ERP exchange in B2MML V0701 (ISA-95 Part 2 / IEC 62264-2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from mes_core.api.deps import Planner, SessionDep
from mes_core.erp import service
from mes_core.erp.schemas import ImportOut

router = APIRouter(prefix="/api/v1/erp", tags=["ERP (B2MML)"])
XML = "application/xml"


async def _raw_body(request: Request) -> bytes:
    """The request body as sent, whatever its Content-Type: the B2MML parser judges it
    (a JSON body is "not well-formed XML" naming the line, never a schema error of FastAPI's
    own about bytes)."""
    return await request.body()


_SCHEDULE_BODY = {
    "requestBody": {
        "required": True,
        "description": "ProcessOperationsSchedule",
        "content": {XML: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/schedules", response_model=ImportOut, status_code=201, openapi_extra=_SCHEDULE_BODY)
def import_schedule(
    session: SessionDep,
    actor: Planner,
    document: Annotated[bytes, Depends(_raw_body)],
    response: Response,
) -> ImportOut:
    """Import a ProcessOperationsSchedule (OperationsType Production) into job orders, all
    or nothing (integration, supervisor): planned, or released when the request's
    RequestState is Released. Sending the same document again changes nothing. Hostile or
    invalid XML, or an order that exists otherwise: 4xx naming the request."""
    result = service.import_schedule(session, document, actor=actor)
    session.commit()
    if not result.created:
        response.status_code = 200  # nothing new: the document was imported before
    return ImportOut(
        schedule_id=result.schedule_id,
        job_orders=result.job_orders,
        sha256=result.sha256,
        created=result.created,
        released=result.released,
        unchanged=result.unchanged,
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
    include_open: bool = False,
) -> Response:
    """ProcessOperationsPerformance of completed job orders (named ones, or all completed or
    closed since ``since``), validated against the B2MML XSD. ``include_open``: job orders
    in any state, as they stand (PerformanceState Running while any is open)."""
    document = service.export_performance(
        session,
        job_orders=job_order or (),
        since=since,
        include_open=include_open,
        actor=actor,
    )
    session.commit()
    return Response(content=document, media_type=XML)
