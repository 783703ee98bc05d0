"""Lot genealogy: trace forward (where did this lot go) and backward (what went into it)
through any depth (ISA-95 Part 2 material lot relationships, used for recall)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from mes_core.persistence.masterdata import get_lot
from mes_core.persistence.models import (
    JobOperation,
    JobOrder,
    LotGenealogy,
    MaterialDefinition,
    MaterialLot,
)
from mes_core.schemas.audit import GenealogyEdge, GenealogyTrace, LotNode

MAX_DEPTH = 1000


def trace(
    session: Session,
    code: str,
    *,
    direction: Literal["forward", "backward"],
    max_depth: int = MAX_DEPTH,
) -> GenealogyTrace:
    """Breadth-first walk of the genealogy graph, one query per level, cycles ignored."""
    root = get_lot(session, code)
    parent, child = aliased(MaterialLot), aliased(MaterialLot)
    depth_of: dict[int, int] = {root.id: 0}
    frontier = [root.id]
    edges: list[GenealogyEdge] = []
    depth = 0
    while frontier and depth < max_depth:
        depth += 1
        near = LotGenealogy.parent_lot_id if direction == "forward" else LotGenealogy.child_lot_id
        far = LotGenealogy.child_lot_id if direction == "forward" else LotGenealogy.parent_lot_id
        rows = session.execute(
            select(
                far,
                parent.code,
                child.code,
                JobOrder.code,
                JobOperation.sequence,
                LotGenealogy.quantity,
            )
            .join(parent, parent.id == LotGenealogy.parent_lot_id)
            .join(child, child.id == LotGenealogy.child_lot_id)
            .join(JobOperation, JobOperation.id == LotGenealogy.job_operation_id)
            .join(JobOrder, JobOrder.id == JobOperation.job_order_id)
            .where(near.in_(frontier))
            .order_by(LotGenealogy.id)
        ).all()
        frontier = []
        for far_id, p_code, c_code, job, seq, qty in rows:
            edges.append(
                GenealogyEdge(
                    parent=p_code, child=c_code, job_order=job, operation=seq, quantity=qty
                )
            )
            if far_id not in depth_of:
                depth_of[far_id] = depth
                frontier.append(far_id)
    lots = session.execute(
        select(MaterialLot.id, MaterialLot.code, MaterialDefinition.code, MaterialLot.status)
        .join(MaterialDefinition, MaterialDefinition.id == MaterialLot.material_id)
        .where(MaterialLot.id.in_(depth_of))
    ).all()
    nodes = sorted(
        (LotNode(code=c, material=m, status=s, depth=depth_of[i]) for i, c, m, s in lots),
        key=lambda n: (n.depth, n.code),
    )
    return GenealogyTrace(root=code, direction=direction, lots=nodes, edges=edges)
