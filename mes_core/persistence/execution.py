"""Execution services: job orders and their operations, with the enforcement rules.

Every function that moves something loads the facts, asks the pure rules in
:mod:`mes_core.domain.rules`, then changes rows and appends to the audit trail. Rule
refusals are recorded by :func:`~mes_core.persistence.refusals.enforced`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from mes_core.domain import clock, rules
from mes_core.domain.errors import Conflict, InvalidInput, NotFound
from mes_core.domain.states import (
    EquipmentState,
    JobOrderState,
    LotStatus,
    OperationState,
    Role,
)
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.genealogy import link_output_lot
from mes_core.persistence.masterdata import (
    create_lot,
    get_lot,
    get_material,
    get_person,
    get_routing,
    get_work_unit,
)
from mes_core.persistence.models import (
    Equipment,
    JobOperation,
    JobOperationOperator,
    JobOperationUnit,
    JobOrder,
    MaterialConsumption,
    MaterialDefinition,
    MaterialLot,
    OperationsDefinition,
    Person,
)
from mes_core.persistence.refusals import enforced
from mes_core.persistence.security import Actor
from mes_core.schemas import execution as ex
from mes_core.schemas.masterdata import LotCreate

# ------------------------------------------------------------------ lookups


def _job_order_loads() -> tuple[Any, ...]:
    """Everything a job order's view and its rules read, in two queries: the job order
    joined to its product, routing, operations, their segments, work units, operators and
    persons (a few rows: one per operator); then all its operations' consumptions joined to
    the lots' codes (the list that grows). Never one query per operation, operator or lot;
    a segment's BOM is read only by :func:`consume_lot`, which asks for it alone."""
    ops = joinedload(JobOrder.operations)
    # Of product, routing, persons and lots the view shows only the code: only it is read
    # (fewer columns, cheaper rows; a service needing more reads the row itself, under its
    # lock where it matters, e.g. get_lot(for_update=True)).
    return (
        joinedload(JobOrder.product, innerjoin=True).load_only(MaterialDefinition.code),
        joinedload(JobOrder.definition, innerjoin=True).load_only(OperationsDefinition.code),
        ops.joinedload(JobOperation.segment, innerjoin=True),
        ops.joinedload(JobOperation.work_unit),
        ops.joinedload(JobOperation.planned_work_unit),
        ops.joinedload(JobOperation.operators)
        .joinedload(JobOperationOperator.person, innerjoin=True)
        .load_only(Person.code),
        ops.joinedload(JobOperation.units).joinedload(JobOperationUnit.work_unit, innerjoin=True),
        ops.selectinload(JobOperation.consumptions)
        .joinedload(MaterialConsumption.lot, innerjoin=True)
        .load_only(MaterialLot.code),
        ops.selectinload(JobOperation.consumptions)
        .joinedload(MaterialConsumption.work_unit)
        .load_only(Equipment.code),
    )


def get_job_order(session: Session, code: str, *, for_update: bool = False) -> JobOrder:
    """A job order with its tree; ``for_update`` locks its row only (not its operations':
    ingest adds counts to those concurrently, see :func:`report_quantities`)."""
    q = select(JobOrder).where(JobOrder.code == code).options(*_job_order_loads())
    if for_update:
        q = q.with_for_update(of=JobOrder)
    # unique(): the joined collections repeat the job order's row once per operator.
    row = session.execute(q).unique().scalar_one_or_none()
    if row is None:
        raise NotFound("job order", code)
    return row


def list_job_orders(
    session: Session, *, state: str | None = None, limit: int = 200, offset: int = 0
) -> Sequence[JobOrder]:
    q = (
        select(JobOrder)
        .options(*_job_order_loads())
        .order_by(JobOrder.id)
        .limit(limit)
        .offset(offset)
    )
    if state:
        q = q.where(JobOrder.state == state)
    return session.execute(q).unique().scalars().all()


def _operation(job: JobOrder, sequence: int) -> JobOperation:
    for op in job.operations:
        if op.sequence == sequence:
            return op
    raise NotFound("operation", f"{job.code}/{sequence}")


def _facts(op: JobOperation) -> rules.OperationFacts:
    return rules.OperationFacts(
        sequence=op.sequence,
        name=op.segment.name,
        state=OperationState(op.state),
        good=op.good,
    )


def _state(job: JobOrder) -> JobOrderState:
    return JobOrderState(job.state)


def audit_action(session: Session, actor: Actor, action: str, ref: str, **detail: object) -> None:
    """Append ``action`` on ``ref`` by ``actor`` to the audit trail."""
    audit.append(session, actor=actor.name, action=action, object_ref=ref, detail=detail)


def stated_time(
    occurred_at: datetime | None, actor: Actor, ref: str
) -> tuple[datetime, dict[str, str]]:
    """The business time of an action (see :mod:`mes_core.domain.clock`) and what its
    audit entry adds to say so: the stated time, when one was stated (the entry's own
    ``at`` stays the MES's clock)."""
    when = clock.business_time(
        occurred_at, now=utcnow(), actor=actor.name, roles=actor.roles, object_ref=ref
    )
    return when, ({"occurred_at": when.isoformat()} if occurred_at is not None else {})


# ------------------------------------------------------------------ job order life cycle


def create_job_order(session: Session, data: ex.JobOrderCreate, *, actor: Actor) -> JobOrder:
    """A planned job order with one pending operation per segment of its routing."""
    if session.execute(select(JobOrder.id).where(JobOrder.code == data.code)).first():
        raise Conflict(f"job order {data.code!r} already exists", object_ref=data.code)
    product = get_material(session, data.product)
    if data.routing:
        routing = get_routing(session, data.routing)
        if routing.product_id != product.id:
            raise InvalidInput(
                f"routing {data.routing} makes {routing.product.code}, not {data.product}",
                object_ref=f"routing:{data.routing}",
            )
    else:
        found = (
            session.execute(
                select(OperationsDefinition).where(OperationsDefinition.product_id == product.id)
            )
            .scalars()
            .all()
        )
        if len(found) != 1:
            raise InvalidInput(
                f"product {data.product} has {len(found)} routings; name one in 'routing'",
                object_ref=f"material:{data.product}",
            )
        routing = get_routing(session, found[0].code)
    job = JobOrder(
        code=data.code,
        product_id=product.id,
        definition_id=routing.id,
        quantity=data.quantity,
        due_at=data.due_at.astimezone(UTC) if data.due_at else None,
        state=JobOrderState.PLANNED.value,
        created_at=utcnow(),
    )
    for seg in routing.segments:
        job.operations.append(
            JobOperation(segment_id=seg.id, sequence=seg.sequence, state="pending")
        )
    session.add(job)
    session.flush()
    audit_action(
        session,
        actor,
        "job_order.created",
        f"job_order:{data.code}",
        product=data.product,
        routing=routing.code,
        quantity=data.quantity,
    )
    return job


def _transition(
    session: Session, code: str, action: str, actor: Actor, **detail: object
) -> JobOrder:
    job = get_job_order(session, code, for_update=True)
    before = _state(job)
    after = rules.next_job_order_state(code, before, action)
    job.state = after.value
    audit_action(
        session,
        actor,
        f"job_order.{action}",
        f"job_order:{code}",
        state=after.value,
        previous=before.value,
        **detail,
    )
    return job


@enforced
def release_job_order(session: Session, code: str, *, actor: Actor) -> JobOrder:
    """planned -> released (ISA-95 Part 3: the order may now be dispatched)."""
    return _transition(session, code, "release", actor)


@enforced
def dispatch_job_order(
    session: Session, code: str, data: ex.DispatchRequest, *, actor: Actor
) -> JobOrder:
    """released -> dispatched, optionally assigning work units to operations."""
    job = get_job_order(session, code, for_update=True)
    rules.check_job_order_not_held(code, _state(job))
    for seq, unit_code in data.work_units.items():
        op = _operation(job, seq)
        unit = get_work_unit(session, unit_code)
        # Only an assignment here: the equipment rules are checked at start, when the
        # work unit's state and calibration are those of the moment of the action.
        op.planned_work_unit_id = unit.id
    return _transition(
        session,
        code,
        "dispatch",
        actor,
        work_units={str(k): v for k, v in data.work_units.items()},
    )


@enforced
def close_job_order(session: Session, code: str, *, actor: Actor) -> JobOrder:
    return _transition(session, code, "close", actor)


@enforced
def abort_job_order(session: Session, code: str, reason: str, *, actor: Actor) -> JobOrder:
    job = _transition(session, code, "abort", actor, reason=reason)
    now = utcnow()
    for op in job.operations:
        if op.state in (OperationState.PENDING, OperationState.RUNNING):
            op.state = OperationState.ABORTED.value
            op.ended_at = op.ended_at or now
    job.ended_at = now
    return job


@enforced
def hold_job_order(session: Session, code: str, reason: str, *, actor: Actor) -> JobOrder:
    """Put a job order on hold (rule 5): nothing of it moves until released."""
    job = get_job_order(session, code, for_update=True)
    before = _state(job)
    rules.next_job_order_state(code, before, "hold")
    job.state_before_hold = before.value
    job.state = JobOrderState.HELD.value
    audit_action(
        session, actor, "job_order.hold", f"job_order:{code}", reason=reason, previous=before.value
    )
    return job


@enforced
def release_job_order_hold(session: Session, code: str, reason: str, *, actor: Actor) -> JobOrder:
    """Release a hold: the job order returns to the state it had before."""
    job = get_job_order(session, code, for_update=True)
    rules.next_job_order_state(code, _state(job), "release_hold")
    job.state = job.state_before_hold or JobOrderState.PLANNED.value
    job.state_before_hold = None
    audit_action(
        session,
        actor,
        "job_order.hold_released",
        f"job_order:{code}",
        reason=reason,
        state=job.state,
    )
    return job


# ------------------------------------------------------------------ lots: hold / release


def hold_lot(session: Session, code: str, reason: str, *, actor: Actor) -> MaterialLot:
    """Put a material lot on hold (rule 5): it cannot be consumed until released."""
    lot = get_lot(session, code, for_update=True)
    if lot.status != LotStatus.ON_HOLD:
        lot.status_before_hold = lot.status
        lot.status = LotStatus.ON_HOLD.value
    audit_action(session, actor, "lot.hold", f"material_lot:{code}", reason=reason)
    return lot


def release_lot(
    session: Session, code: str, reason: str, *, actor: Actor, status: LotStatus | None = None
) -> MaterialLot:
    """Release a lot from hold to ``status`` (default: the status it had before the hold)."""
    lot = get_lot(session, code, for_update=True)
    if lot.status != LotStatus.ON_HOLD and status is None:
        raise InvalidInput(f"lot {code} is {lot.status}, not on hold", object_ref=code)
    lot.status = (status.value if status else None) or lot.status_before_hold or "available"
    lot.status_before_hold = None
    audit_action(
        session,
        actor,
        "lot.hold_released",
        f"material_lot:{code}",
        reason=reason,
        status=lot.status,
    )
    return lot


# ------------------------------------------------------------------ operations


def _unit_facts(unit: Equipment) -> rules.WorkUnitFacts:
    return rules.WorkUnitFacts(
        code=unit.code,
        equipment_class=unit.equipment_class,
        state=EquipmentState(unit.state),
        qualified=unit.qualified,
        qualification_due=unit.qualification_due,
        calibration_due=unit.calibration_due,
    )


def _cert_facts(person: Person) -> list[rules.CertificationFacts]:
    return [rules.CertificationFacts(c.skill, c.valid_until) for c in person.certifications]


def _moving(job: JobOrder, op: JobOperation, action: str) -> None:
    """Common checks before anything of a running operation moves (rule 5 first)."""
    rules.check_job_order_not_held(job.code, _state(job))
    rules.check_operation_state(job.code, _facts(op), OperationState.RUNNING, action)


def _running_on(op: JobOperation) -> list[str]:
    """The work units ``op`` runs on now (started there, not completed there)."""
    return [u.work_unit.code for u in op.units if u.ended_at is None]


@enforced
def start_operation(
    session: Session, code: str, sequence: int, data: ex.StartRequest, *, actor: Actor
) -> JobOrder:
    """Start an operation on a work unit with its operators, enforcing rules 1, 3, 4, 5.

    A running operation starts on one more work unit of its class (``data.work_unit``)
    when its segment allows several at once (``max_work_units``: a parallel station); every
    rule is judged again for that work unit and its operators, and the unit's counts,
    lots and completion are then its own (``JobOperationUnit``)."""
    job = get_job_order(session, code, for_update=True)
    rules.check_job_order_not_held(code, _state(job))
    op = _operation(job, sequence)
    rules.next_job_order_state(code, _state(job), "start")
    joining = op.state == OperationState.RUNNING and data.work_unit is not None
    if not joining:
        rules.check_operation_state(code, _facts(op), OperationState.PENDING, "start")
    # Rule 1: the routing's order.
    deps = op.segment.predecessors
    predecessors = [
        _facts(o) for o in job.operations if rules.is_predecessor(o.sequence, sequence, deps)
    ]
    rules.check_predecessors(
        _facts(op), predecessors, allow_partial=op.segment.allow_partial, job_order=code
    )
    # Rule 4: the right, qualified, calibrated, running work unit.
    if data.work_unit:
        unit = get_work_unit(session, data.work_unit)
    elif op.planned_work_unit_id is not None:
        unit = session.get_one(Equipment, op.planned_work_unit_id)
    else:
        raise InvalidInput(
            f"operation {sequence} of job order {code}: name a work_unit (none was dispatched)",
            object_ref=f"job_order:{code}/operation:{sequence}",
        )
    if joining:
        rules.check_another_work_unit(
            code,
            _facts(op),
            work_unit=unit.code,
            running_on=_running_on(op),
            ended_on=[u.work_unit.code for u in op.units if u.ended_at is not None],
            max_work_units=op.segment.max_work_units,
        )
    ref = f"job_order:{code}/operation:{sequence}"
    now, stated = stated_time(data.occurred_at, actor, ref)
    # Rules 3 and 4 judge dates at the moment the action happened (its business time).
    today = now.date()
    rules.check_work_unit(_unit_facts(unit), required_class=op.segment.equipment_class, today=today)
    # Rule 3: every operator certified for the segment's skill.
    names = data.operators
    if names is None:
        names = (
            [actor.person_code] if actor.person_code and Role.OPERATOR.value in actor.roles else []
        )
    operators = {name: get_person(session, name) for name in names}
    rules.check_operators_named(op.segment.skill, operators)
    for name, person in operators.items():
        rules.check_certification(name, op.segment.skill, _cert_facts(person), today=today)

    if joining:
        assert op.started_at is not None
        op.started_at = min(op.started_at, now)
    else:
        job.state = rules.next_job_order_state(code, _state(job), "start").value
        job.started_at = job.started_at or now
        op.state = OperationState.RUNNING.value
        op.work_unit_id = unit.id
        op.started_at = now
    op.units.append(
        JobOperationUnit(work_unit_id=unit.id, work_unit=unit, started_at=now, good=0, scrap=0)
    )
    on_it = {o.person_id for o in op.operators}
    for person in operators.values():
        if person.id not in on_it:
            op.operators.append(
                JobOperationOperator(person_id=person.id, person=person, started_at=now)
            )
    session.flush()
    audit_action(
        session,
        actor,
        "operation.unit_started" if joining else "operation.started",
        ref,
        work_unit=unit.code,
        operators=sorted(operators),
        **stated,
    )
    return job


@enforced
def complete_operation(
    session: Session, code: str, sequence: int, data: ex.CompleteRequest, *, actor: Actor
) -> JobOrder:
    """Complete a running operation; the last one completes the job order.

    An output lot (given, or ``<job order>-OUT`` for the last operation when it made good
    units) is created and linked in the genealogy to every lot the job order consumed.
    With ``data.work_unit`` the operation completes on that work unit only, while it runs
    on others (a parallel station's unit that has done its part); on its last one it
    completes as a whole, and only then may it name its output lot.
    """
    job = get_job_order(session, code, for_update=True)
    op = _operation(job, sequence)
    _moving(job, op, "complete")
    ref = f"job_order:{code}/operation:{sequence}"
    open_units = [u for u in op.units if u.ended_at is None]
    if data.work_unit is not None:
        rules.check_runs_on(
            code,
            _facts(op),
            work_unit=data.work_unit,
            running_on=_running_on(op),
            action="complete",
        )
        here = next(u for u in open_units if u.work_unit.code == data.work_unit)
        others = [u.work_unit.code for u in open_units if u is not here]
        if others:
            if data.output_lot is not None:
                raise InvalidInput(
                    f"operation {sequence} of job order {code} still runs on "
                    f"{', '.join(others)}: name the output lot when completing it on its "
                    "last work unit",
                    object_ref=ref,
                )
            now, stated = stated_time(data.occurred_at, actor, ref)
            clock.check_not_before(
                now,
                here.started_at,
                what=f"end of operation {sequence} on {here.work_unit.code}",
                ref=ref,
            )
            here.ended_at = now
            session.flush()
            audit_action(
                session,
                actor,
                "operation.unit_completed",
                ref,
                work_unit=here.work_unit.code,
                still_running_on=others,
                **stated,
            )
            return job
    # Lock the operation and read its counts as of now (ingest may have added some since
    # the tree was loaded): the output lot's quantity is its good count.
    good, scrap = session.execute(
        select(JobOperation.good, JobOperation.scrap)
        .where(JobOperation.id == op.id)
        .with_for_update()
    ).one()
    set_committed_value(op, "good", good)
    set_committed_value(op, "scrap", scrap)
    deps = op.segment.predecessors
    earlier = [
        _facts(o) for o in job.operations if rules.is_predecessor(o.sequence, sequence, deps)
    ]
    rules.check_predecessors(_facts(op), earlier, allow_partial=False, job_order=code)
    now, stated = stated_time(data.occurred_at, actor, ref)
    clock.check_not_before(now, op.started_at, what=f"end of operation {sequence}", ref=ref)
    for u in open_units:
        clock.check_not_before(
            now, u.started_at, what=f"end of operation {sequence} on {u.work_unit.code}", ref=ref
        )
        u.ended_at = now
    op.state = OperationState.COMPLETED.value
    op.ended_at = now
    last = all(o.state == OperationState.COMPLETED for o in job.operations)
    output = data.output_lot
    if output is None and last and op.good > 0:
        output = ex.OutputLot(code=f"{code}-OUT")
    lot_code = None
    if output is not None:
        lot_code = _produce_lot(session, job, op, output, actor=actor, at=now).code
    if last:
        job.state = rules.next_job_order_state(code, _state(job), "complete").value
        job.ended_at = now
    session.flush()
    audit_action(
        session,
        actor,
        "operation.completed",
        ref,
        good=op.good,
        scrap=op.scrap,
        output_lot=lot_code,
        job_order_state=job.state,
        **stated,
    )
    return job


def _produce_lot(
    session: Session,
    job: JobOrder,
    op: JobOperation,
    output: ex.OutputLot,
    *,
    actor: Actor,
    at: datetime,
) -> MaterialLot:
    quantity = output.quantity if output.quantity is not None else op.good
    if quantity <= 0:
        raise InvalidInput(
            f"output lot {output.code}: operation {op.sequence} made no good units; "
            "give a quantity",
            object_ref=f"material_lot:{output.code}",
        )
    lot = create_lot(
        session,
        LotCreate(
            code=output.code,
            material=output.material or job.product.code,
            quantity=quantity,
        ),
        actor=actor,
    )
    lot.produced_by_operation_id = op.id
    lot.created_at = at  # made when the operation ended (its business time)
    link_output_lot(session, job, op, lot)
    return lot


def running_operation_at(session: Session, work_unit_id: int) -> JobOperation | None:
    """The operation running at a work unit now (the most recently started there)."""
    return session.execute(
        select(JobOperation)
        .join(JobOperationUnit, JobOperationUnit.job_operation_id == JobOperation.id)
        .where(
            JobOperationUnit.work_unit_id == work_unit_id,
            JobOperationUnit.ended_at.is_(None),
            JobOperation.state == "running",
        )
        .order_by(JobOperationUnit.started_at.desc())
        .limit(1)
    ).scalar_one_or_none()
