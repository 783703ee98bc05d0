"""``/api/v1/genealogy``: trace a lot forward or backward through any depth."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from mes_core.api.deps import AnyUser, SessionDep
from mes_core.persistence import genealogy
from mes_core.schemas.audit import GenealogyTrace

router = APIRouter(prefix="/api/v1/genealogy", tags=["genealogy"])


@router.get("/{lot}", response_model=GenealogyTrace)
def trace(
    lot: str,
    session: SessionDep,
    _: AnyUser,
    direction: Literal["forward", "backward"] = "backward",
    max_depth: Annotated[int, Query(ge=1, le=genealogy.MAX_DEPTH)] = genealogy.MAX_DEPTH,
) -> GenealogyTrace:
    """``backward``: what went into the lot; ``forward``: where it went (recall)."""
    return genealogy.trace(session, lot, direction=direction, max_depth=max_depth)
