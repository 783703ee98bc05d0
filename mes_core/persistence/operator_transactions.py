"""Operator transactions: count reports and lot consumptions on a running operation.

They come many a minute per operation all shift: they read and write a few columns of a
few rows, with statements built once (bound parameters) and rows read as tuples, not the
job order's ORM tree (``execution.get_job_order``), and they answer with the operation,
not the job order (whose consumption list grows all shift). Rule 2 (lot consumption) and
rule 5 (nothing held moves) are judged here; a transaction may name the one of the
operation's work units it happened at (an operation on several, ``JobOperationUnit``).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from mes_core.domain import rules
from mes_core.domain.errors import NotFound
from mes_core.domain.states import JobOrderState, LotStatus, OperationState
from mes_core.persistence import audit
from mes_core.persistence.base import Base
from mes_core.persistence.execution import audit_action, stated_time
from mes_core.persistence.models import (
    Equipment,
    JobOperation,
    JobOperationUnit,
    JobOrder,
    MaterialConsumption,
    MaterialDefinition,
    MaterialLot,
    OperationsSegment,
    SegmentMaterial,
)
from mes_core.persistence.pipelined import all_rows
from mes_core.persistence.refusals import enforced
from mes_core.persistence.security import Actor
from mes_core.schemas import execution as ex


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_JO, _OP, _SEG, _WU = (_table(m) for m in (JobOrder, JobOperation, OperationsSegment, Equipment))
_LOT, _MAT, _BOM, _USE, _OPU = (
    _table(m)
    for m in (
        MaterialLot,
        MaterialDefinition,
        SegmentMaterial,
        MaterialConsumption,
        JobOperationUnit,
    )
)

#: The job order's row, locked (its operations' rows are not: ingest adds counts to them
#: concurrently), with one of its operations; NULLs where the operation does not exist.
_RUNNING_OPERATION = (
    select(
        _JO.c.state,
        _OP.c.id,
        _OP.c.state,
        _OP.c.good,
        _OP.c.scrap,
        _OP.c.segment_id,
        _SEG.c.name,
        _WU.c.code,
    )
    .select_from(_JO)
    .outerjoin(_OP, and_(_OP.c.job_order_id == _JO.c.id, _OP.c.sequence == bindparam("seq")))
    .outerjoin(_SEG, _SEG.c.id == _OP.c.segment_id)
    .outerjoin(_WU, _WU.c.id == _OP.c.work_unit_id)
    .where(_JO.c.code == bindparam("code"))
    .with_for_update(of=_JO)
)
#: Counts are added in the database (and the sums read back), not read-modify-written:
#: ingest adds counts to the same operation concurrently without the job order's lock.
_ADD_COUNTS = (
    update(_OP)
    .where(_OP.c.id == bindparam("op_id"))
    .values(good=_OP.c.good + bindparam("add_good"), scrap=_OP.c.scrap + bindparam("add_scrap"))
    .returning(_OP.c.good, _OP.c.scrap)
)
_ADD_UNIT_COUNTS = (
    update(_OPU)
    .where(_OPU.c.id == bindparam("row_id"))
    .values(good=_OPU.c.good + bindparam("add_good"), scrap=_OPU.c.scrap + bindparam("add_scrap"))
)
#: The lot, locked (two job orders drawing on one lot must not overdraw it: rule 2), with
#: its material's code.
_LOT_TO_CONSUME = (
    select(_LOT.c.id, _MAT.c.code, _LOT.c.status, _LOT.c.quantity, _LOT.c.expires_at)
    .join(_MAT, _MAT.c.id == _LOT.c.material_id)
    .where(_LOT.c.code == bindparam("lot"))
    .with_for_update(of=_LOT)
)
#: The material codes of the BOM of a job order's operation's segment (by the job order's
#: code and the operation's sequence: sent with the other reads, before their answers).
_OPERATION_BOM = (
    select(_MAT.c.code)
    .select_from(_JO)
    .join(_OP, and_(_OP.c.job_order_id == _JO.c.id, _OP.c.sequence == bindparam("seq")))
    .join(_BOM, _BOM.c.segment_id == _OP.c.segment_id)
    .join(_MAT, _MAT.c.id == _BOM.c.material_id)
    .where(_JO.c.code == bindparam("code"))
)
#: The work unit an operation runs on (by the job order's code, the operation's sequence
#: and the work unit's code): its id, when the operation ended there (NULL: it runs there)
#: and the id of the operation's row for that unit.
_OPERATION_UNIT = (
    select(_WU.c.id, _OPU.c.ended_at, _OPU.c.id)
    .select_from(_JO)
    .join(_OP, and_(_OP.c.job_order_id == _JO.c.id, _OP.c.sequence == bindparam("seq")))
    .join(_OPU, _OPU.c.job_operation_id == _OP.c.id)
    .join(_WU, _WU.c.id == _OPU.c.work_unit_id)
    .where(_JO.c.code == bindparam("code"), _WU.c.code == bindparam("unit"))
)
_DRAW_LOT = (
    update(_LOT)
    .where(_LOT.c.id == bindparam("lot_id"))
    .values(quantity=bindparam("left"), status=bindparam("new_status"))
)
_BOOK_CONSUMPTION = insert(_USE)


def _running_operation(
    code: str, sequence: int, action: str, rows: list[tuple[Any, ...]]
) -> tuple[str, int, ex.OperationProgressOut, int]:
    """Check the operation of ``rows`` (``_RUNNING_OPERATION``'s answer: the job order
    locked) is running (rule 5 first); returns the job order's state, the operation's id,
    its progress and its segment's id."""
    if not rows:
        raise NotFound("job order", code)
    jo_state, op_id, op_state, good, scrap, segment_id, name, work_unit = rows[0]
    if op_id is None:
        raise NotFound("operation", f"{code}/{sequence}")
    rules.check_job_order_not_held(code, JobOrderState(jo_state))
    facts = rules.OperationFacts(sequence, name, OperationState(op_state), good)
    rules.check_operation_state(code, facts, OperationState.RUNNING, action)
    progress = ex.OperationProgressOut(
        job_order=code,
        job_order_state=jo_state,
        sequence=sequence,
        name=name,
        state=op_state,
        work_unit=work_unit,
        good=good,
        scrap=scrap,
    )
    return jo_state, op_id, progress, segment_id


def _running_unit(
    code: str,
    work_unit: str,
    progress: ex.OperationProgressOut,
    rows: list[tuple[Any, ...]],
    action: str,
) -> tuple[int, int]:
    """The work unit's id and the operation's row for it, from ``_OPERATION_UNIT``'s
    answer; refused (``INVALID_TRANSITION``) unless the operation runs there now."""
    running = [r for r in rows if r[1] is None]
    if not running:
        facts = rules.OperationFacts(
            progress.sequence, progress.name, OperationState(progress.state), progress.good
        )
        rules.check_runs_on(code, facts, work_unit=work_unit, running_on=None, action=action)
    return running[0][0], running[0][2]


@enforced
def consume_lot(
    session: Session, code: str, sequence: int, data: ex.ConsumeRequest, *, actor: Actor
) -> ex.OperationProgressOut:
    """Consume a quantity of a lot in a running operation, enforcing rule 2 (and 5)."""
    # One round trip: the job order locked with its operation, then the lot locked (in
    # that order, as every transaction locks them), and the operation's BOM.
    where = {"code": code, "seq": sequence}
    reads: list[tuple[Any, dict[str, Any]]] = [
        (_RUNNING_OPERATION, where),
        (_LOT_TO_CONSUME, {"lot": data.lot}),
        (_OPERATION_BOM, where),
    ]
    if data.work_unit is not None:
        reads.append((_OPERATION_UNIT, {**where, "unit": data.work_unit}))
    operation, lots, bom_rows, *at_unit = all_rows(session, reads)
    _, op_id, progress, _ = _running_operation(code, sequence, "consume", operation)
    unit_id: int | None = None
    if data.work_unit is not None:
        unit_id, _ = _running_unit(code, data.work_unit, progress, at_unit[0], "consume")
    if not lots:
        raise NotFound("material lot", data.lot)
    lot_id, material, status, quantity, expires_at = lots[0]
    if expires_at is not None:  # the driver's time zone, as UtcDateTime reads it
        expires_at = expires_at.astimezone(UTC)
    bom = {row[0] for row in bom_rows}
    ref = f"job_order:{code}/operation:{sequence}"
    now, stated = stated_time(data.occurred_at, actor, ref)  # expiry judged at that moment
    rules.check_lot_consumable(
        rules.LotFacts(
            code=data.lot,
            material=material,
            status=LotStatus(status),
            quantity=quantity,
            expires_at=expires_at,
        ),
        bom_materials=bom,
        quantity=data.quantity,
        now=now,
        operation_ref=f"operation {sequence} ({progress.name}) of job order {code}",
    )
    left = quantity - data.quantity
    if left <= 1e-9:
        left, status = 0.0, LotStatus.CONSUMED.value
    # The transaction's last writes: sent with its commit where the database allows.
    for statement, params in (
        (_DRAW_LOT, {"lot_id": lot_id, "left": left, "new_status": status}),
        (
            _BOOK_CONSUMPTION,
            {
                "job_operation_id": op_id,
                "lot_id": lot_id,
                "quantity": data.quantity,
                "at": now,
                "actor": actor.name,
                "work_unit_id": unit_id,
            },
        ),
    ):
        if not audit.write_with_commit(session, statement, params):
            session.execute(statement, params)
    audit_action(
        session,
        actor,
        "lot.consumed",
        ref,
        lot=data.lot,
        quantity=data.quantity,
        remaining=left,
        **({"work_unit": data.work_unit} if data.work_unit is not None else {}),
        **stated,
    )
    progress.consumption = ex.ConsumptionOut(
        lot=data.lot, quantity=data.quantity, at=now, lot_remaining=left
    )
    return progress


@enforced
def report_quantities(
    session: Session, code: str, sequence: int, data: ex.ReportRequest, *, actor: Actor
) -> ex.OperationProgressOut:
    """Report good and scrap units of a running operation (adds to its actuals); with
    ``data.work_unit``, of that one of its work units (its share too)."""
    where = {"code": code, "seq": sequence}
    reads: list[tuple[Any, dict[str, Any]]] = [(_RUNNING_OPERATION, where)]
    if data.work_unit is not None:
        reads.append((_OPERATION_UNIT, {**where, "unit": data.work_unit}))
    operation, *at_unit = all_rows(session, reads)
    _, op_id, progress, _ = _running_operation(code, sequence, "report", operation)
    unit_row: int | None = None
    if data.work_unit is not None:
        _, unit_row = _running_unit(code, data.work_unit, progress, at_unit[0], "report")
    ref = f"job_order:{code}/operation:{sequence}"
    _, stated = stated_time(data.occurred_at, actor, ref)

    def totals(row: Any) -> None:  # the operation's sums after this report
        progress.good, progress.scrap = row

    params = {"op_id": op_id, "add_good": data.good, "add_scrap": data.scrap}
    # The transaction's last write: sent with its commit where the database allows.
    if not audit.write_with_commit(session, _ADD_COUNTS, params, totals):
        totals(session.execute(_ADD_COUNTS, params).one())
    if unit_row is not None:  # after the operation's row: the order every writer locks in
        unit_params = {"row_id": unit_row, "add_good": data.good, "add_scrap": data.scrap}
        if not audit.write_with_commit(session, _ADD_UNIT_COUNTS, unit_params):
            session.execute(_ADD_UNIT_COUNTS, unit_params)
    audit_action(
        session,
        actor,
        "operation.reported",
        ref,
        good=data.good,
        scrap=data.scrap,
        **({"work_unit": data.work_unit} if data.work_unit is not None else {}),
        **stated,
    )
    return progress
