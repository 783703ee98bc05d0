"""Lot genealogy: the edges booked when an operation produces a lot, and traces forward
(where did this lot go) and backward (what went into it) through any depth (ISA-95 Part 2
material lot relationships, used for recall).

Edges are booked on the consuming operation, through intermediate lots where the routing
produces them (:mod:`mes_core.domain.genealogy`). A trace also names every job order that
consumed (forward) or produced (backward) a lot of the trace in whatever state it is:
an order still running, or held, has consumed the lot before it produced anything, and a
recall must find it."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from mes_core.domain import genealogy as rules
from mes_core.persistence.masterdata import get_lot
from mes_core.persistence.models import (
    JobOperation,
    JobOrder,
    LotGenealogy,
    MaterialConsumption,
    MaterialDefinition,
    MaterialLot,
)
from mes_core.schemas.audit import GenealogyEdge, GenealogyTrace, LotNode, LotUse

MAX_DEPTH = 1000


def link_output_lot(session: Session, job: JobOrder, op: JobOperation, lot: MaterialLot) -> None:
    """Book the edges into ``lot``, which operation ``op`` of ``job`` produced."""
    by_id = {o.id: o.sequence for o in job.operations}
    consumed = [
        rules.ConsumedLot(o.sequence, c.lot_id, c.quantity)
        for o in job.operations
        for c in o.consumptions
    ]
    produced = [
        rules.ProducedLot(by_id[op_id], lot_id, quantity)
        for lot_id, op_id, quantity in session.execute(
            select(
                MaterialLot.id, MaterialLot.produced_by_operation_id, MaterialLot.initial_quantity
            ).where(MaterialLot.produced_by_operation_id.in_(by_id), MaterialLot.id != lot.id)
        ).all()
        if op_id is not None
    ]
    op_of = {o.sequence: o.id for o in job.operations}
    for edge in rules.edges_into_output(op.sequence, by_id.values(), consumed, produced):
        session.add(
            LotGenealogy(
                parent_lot_id=edge.parent,
                child_lot_id=lot.id,
                job_operation_id=op_of[edge.sequence],
                quantity=edge.quantity,
            )
        )


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
    return GenealogyTrace(
        root=code,
        direction=direction,
        lots=nodes,
        edges=edges,
        job_orders=_uses(session, list(depth_of), direction),
    )


def _uses(
    session: Session, lot_ids: list[int], direction: Literal["forward", "backward"]
) -> list[LotUse]:
    """The job orders, in any state, that consumed (forward) or produced (backward) the
    lots of a trace, per lot and operation."""
    if direction == "forward":
        rows = session.execute(
            select(
                MaterialLot.code,
                JobOrder.code,
                JobOrder.state,
                JobOperation.sequence,
                func.sum(MaterialConsumption.quantity),
            )
            .join(MaterialLot, MaterialLot.id == MaterialConsumption.lot_id)
            .join(JobOperation, JobOperation.id == MaterialConsumption.job_operation_id)
            .join(JobOrder, JobOrder.id == JobOperation.job_order_id)
            .where(MaterialConsumption.lot_id.in_(lot_ids))
            .group_by(MaterialLot.code, JobOrder.code, JobOrder.state, JobOperation.sequence)
        ).all()
        use: Literal["consumed", "produced"] = "consumed"
    else:
        rows = session.execute(
            select(
                MaterialLot.code,
                JobOrder.code,
                JobOrder.state,
                JobOperation.sequence,
                MaterialLot.initial_quantity,
            )
            .join(JobOperation, JobOperation.id == MaterialLot.produced_by_operation_id)
            .join(JobOrder, JobOrder.id == JobOperation.job_order_id)
            .where(MaterialLot.id.in_(lot_ids))
        ).all()
        use = "produced"
    return sorted(
        (
            LotUse(
                lot=lot,
                job_order=job,
                job_order_state=state,
                operation=seq,
                use=use,
                quantity=float(qty),
            )
            for lot, job, state, seq, qty in rows
        ),
        key=lambda u: (u.lot, u.job_order, u.operation),
    )
