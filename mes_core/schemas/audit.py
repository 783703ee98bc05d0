"""Audit trail entries, the change stream, genealogy traces."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from mes_core.schemas.common import Out


class AuditEntryOut(Out):
    id: int
    at: datetime
    actor: str
    action: str
    object: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerifyOut(Out):
    ok: bool
    checked: int
    broken_id: int | None
    reason: str


class ChangeEvent(Out):
    """One server-sent event of ``GET /api/v1/events/stream`` (= one audit entry)."""

    id: int
    at: datetime
    action: str
    object: str
    actor: str
    detail: dict[str, Any]


class LotNode(Out):
    code: str
    material: str
    status: str
    depth: int


class GenealogyEdge(Out):
    parent: str
    child: str
    job_order: str
    operation: int
    quantity: float


class LotUse(Out):
    """A job order that consumed (forward trace) or produced (backward trace) a lot of the
    trace, whatever its state: running and held orders appear before they make a lot."""

    lot: str
    job_order: str
    job_order_state: str
    operation: int
    use: Literal["consumed", "produced"]
    quantity: float


class GenealogyTrace(Out):
    root: str
    direction: Literal["forward", "backward"]
    lots: list[LotNode]
    edges: list[GenealogyEdge]
    """Each edge on the operation that consumed its parent lot."""
    job_orders: list[LotUse] = []
