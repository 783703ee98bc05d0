"""``/api/v1/plant-events``: batch ingest from production data collection (rule 6)."""

from __future__ import annotations

from fastapi import APIRouter

from mes_core.api.deps import Integration, SessionDep
from mes_core.persistence import ingest
from mes_core.persistence.db import run_transaction
from mes_core.schemas.plant_events import IngestResult, PlantEventBatch

router = APIRouter(prefix="/api/v1/plant-events", tags=["plant events"])


@router.post("/batch", response_model=IngestResult)
def ingest_batch(body: PlantEventBatch, session: SessionDep, actor: Integration) -> IngestResult:
    """Store a batch idempotently on (source, sequence) and apply its new events, in one
    transaction (integration role: the connector)."""
    # A deadlock or serialization failure is retried whole (bounded), never a 500.
    return run_transaction(session, lambda: ingest.ingest_batch(session, body, actor=actor))
