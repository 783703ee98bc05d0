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


class GenealogyTrace(Out):
    root: str
    direction: Literal["forward", "backward"]
    lots: list[LotNode]
    edges: list[GenealogyEdge]
