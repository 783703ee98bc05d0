"""``/api/v1/audit`` (the trail, its verification) and ``/api/v1/events/stream`` (SSE).

The stream reads the audit trail by increasing id (ids follow commit order, see
:mod:`mes_core.persistence.audit`), so any number of API workers serve it without shared
state, and ``Last-Event-ID`` resumes exactly where a client left off. Ingest batches are
one entry each, so the stream stays cheap under plant traffic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mes_core.api import views
from mes_core.api.deps import AnyUser, Auditor, SessionDep, SettingsDep
from mes_core.domain.errors import InvalidInput
from mes_core.persistence import audit, audit_anchor
from mes_core.persistence.models import AuditEntry
from mes_core.schemas.audit import AuditEntryOut, AuditVerifyOut

router = APIRouter(prefix="/api/v1", tags=["audit trail and event stream"])
HEARTBEAT_SECONDS = 15.0


@router.get("/audit", response_model=list[AuditEntryOut])
def list_entries(
    session: SessionDep,
    _: Auditor,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    action: str | None = None,
    object: Annotated[str | None, Query(description="object reference prefix")] = None,
) -> list[AuditEntryOut]:
    q = select(AuditEntry).where(AuditEntry.id > after_id).order_by(AuditEntry.id).limit(limit)
    if action:
        q = q.where(AuditEntry.action == action)
    if object:
        q = q.where(AuditEntry.object_ref.startswith(object, autoescape=True))
    return [views.audit_out(r) for r in session.execute(q).scalars()]


@router.get("/audit/verify", response_model=AuditVerifyOut)
def verify(session: SessionDep, _: Auditor, settings: SettingsDep) -> AuditVerifyOut:
    """Walk the hash chain end to end (also ``mestwin audit verify``): with the audit key,
    every entry sealed with it (or vouched for by a signed checkpoint)."""
    path = settings.audit_checkpoints
    key = settings.audit_key.get_secret_value() if settings.audit_key else None
    through = audit_anchor.anchored_through(path, key) if path is not None else 0
    r = audit.verify(session, anchored_through=through)
    return AuditVerifyOut(ok=r.ok, checked=r.checked, broken_id=r.broken_id, reason=r.reason)


def _fetch(factory: sessionmaker[Session], after: int, limit: int) -> list[str]:
    with factory() as session:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(limit)
        ).scalars()
        out = []
        for row in rows:
            change = views.change_out(row)
            out.append(
                f"id: {change.id}\nevent: {change.action}\n"
                f"data: {json.dumps(change.model_dump(mode='json'), separators=(',', ':'))}\n\n"
            )
        return out


def _head(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.execute(select(func.coalesce(func.max(AuditEntry.id), 0))).scalar_one())


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    session: SessionDep,
    _: AnyUser,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="start after this id")] = None,
    limit: Annotated[int | None, Query(ge=1, description="close after this many events")] = None,
) -> StreamingResponse:
    """Server-sent events: every change (audit entry) after ``Last-Event-ID`` / ``after``;
    without either, only changes from now on."""
    # Authentication is done: give the connection back, a stream may stay open for hours.
    session.close()
    factory: sessionmaker[Session] = request.app.state.session_factory
    poll = request.app.state.settings.stream_poll_seconds
    if last_event_id is not None:
        if not last_event_id.isdigit() or int(last_event_id) > 2**62:
            raise InvalidInput(
                f"Last-Event-ID must be an event id (a non-negative integer), got "
                f"{last_event_id[:40]!r}",
                object_ref="header:Last-Event-ID",
            )
        start = int(last_event_id)
    elif after is not None:
        start = after
    else:
        start = await run_in_threadpool(_head, factory)

    async def events() -> AsyncIterator[str]:
        last, sent, quiet_since = start, 0, time.monotonic()
        yield "retry: 2000\n\n"
        while limit is None or sent < limit:
            batch = await run_in_threadpool(_fetch, factory, last, 500)
            if limit is not None:
                batch = batch[: limit - sent]
            for chunk in batch:
                yield chunk
                last = int(chunk.split("\n", 1)[0][4:])
                sent += 1
            if batch:
                quiet_since = time.monotonic()
                continue
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(poll)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
