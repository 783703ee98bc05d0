"""``/api/v1/job-orders``: job orders and their operations; the enforcement rules apply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from mes_core.api import views
from mes_core.api.deps import (
    AnyUser,
    Planner,
    Quality,
    SessionDep,
    ShopFloor,
    ShopFloorCredentials,
    Supervisor,
)
from mes_core.domain.states import JobOrderState
from mes_core.persistence import execution, operator_transactions
from mes_core.persistence.db import run_transaction
from mes_core.persistence.models import JobOrder
from mes_core.quality import hold_service as holds
from mes_core.schemas.execution import (
    CompleteRequest,
    ConsumeRequest,
    DispatchRequest,
    JobOrderCreate,
    JobOrderOut,
    OperationProgressOut,
    ReportRequest,
    StartRequest,
)
from mes_core.schemas.masterdata import HoldRequest

router = APIRouter(prefix="/api/v1/job-orders", tags=["job orders"])
Seq = Annotated[int, Path(ge=1, le=10_000)]


# The operator transactions first: routes are matched in the order they are declared
# (see mes_core.api.app.ROUTERS), and these are called many times a minute per operation.


@router.post("/{code}/operations/{sequence}/consume", response_model=OperationProgressOut)
def consume(
    code: str, sequence: Seq, body: ConsumeRequest, who: ShopFloorCredentials
) -> OperationProgressOut:
    """Consume a quantity of a material lot (rules 2, 5); answers with the operation and
    the consumption booked."""
    with who.session() as session:
        actor = who.actor(session)
        return run_transaction(
            session,
            lambda: operator_transactions.consume_lot(session, code, sequence, body, actor=actor),
        )


@router.post("/{code}/operations/{sequence}/report", response_model=OperationProgressOut)
def report(
    code: str, sequence: Seq, body: ReportRequest, who: ShopFloorCredentials
) -> OperationProgressOut:
    """Report good and scrap quantities of a running operation; answers with the
    operation's totals."""
    with who.session() as session:
        actor = who.actor(session)
        return run_transaction(
            session,
            lambda: operator_transactions.report_quantities(
                session, code, sequence, body, actor=actor
            ),
        )


@router.post("", response_model=JobOrderOut, status_code=201)
def create(body: JobOrderCreate, session: SessionDep, actor: Planner) -> JobOrderOut:
    """Create a planned job order (supervisor, integration: the ERP)."""
    row = execution.create_job_order(session, body, actor=actor)
    session.commit()
    return views.job_order_out(execution.get_job_order(session, row.code))


@router.get("", response_model=list[JobOrderOut])
def list_all(
    session: SessionDep,
    _: AnyUser,
    state: JobOrderState | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> list[JobOrderOut]:
    rows = execution.list_job_orders(
        session, state=state.value if state else None, limit=limit, offset=offset
    )
    return [views.job_order_out(r) for r in rows]


@router.get("/{code}", response_model=JobOrderOut)
def get(code: str, session: SessionDep, _: AnyUser) -> JobOrderOut:
    return views.job_order_out(execution.get_job_order(session, code))


def _done(session: Session, change: Callable[[], JobOrder]) -> JobOrderOut:
    """Run a change of a job order in one transaction (retried whole on a deadlock or a
    serialization failure) and answer with the job order as the change left it.

    The answer is built from the rows the change loaded and locked, not read again:
    sessions keep their objects at commit (``expire_on_commit=False``)."""
    return views.job_order_out(run_transaction(session, change))


@router.post("/{code}/release", response_model=JobOrderOut)
def release(code: str, session: SessionDep, actor: Planner) -> JobOrderOut:
    return _done(session, lambda: execution.release_job_order(session, code, actor=actor))


@router.post("/{code}/dispatch", response_model=JobOrderOut)
def dispatch(
    code: str, session: SessionDep, actor: Planner, body: DispatchRequest | None = None
) -> JobOrderOut:
    return _done(
        session,
        lambda: execution.dispatch_job_order(session, code, body or DispatchRequest(), actor=actor),
    )


@router.post("/{code}/hold", response_model=JobOrderOut)
def hold(code: str, body: HoldRequest, session: SessionDep, actor: Quality) -> JobOrderOut:
    """Put a job order on hold by hand (rule 5). The hold is the caller's: only a release
    by hand lifts it, never the disposition of a nonconformance."""
    return _done(
        session, lambda: holds.hold_job_order_by_hand(session, code, body.reason, actor=actor)
    )


@router.post("/{code}/release-hold", response_model=JobOrderOut)
def release_hold(code: str, body: HoldRequest, session: SessionDep, actor: Quality) -> JobOrderOut:
    """Lift the holds placed by hand; the job order moves again only if no nonconformance
    holds it (409 ``HELD`` if only nonconformances do: their signed disposition lifts them)."""
    return _done(
        session,
        lambda: holds.release_job_order_hold_by_hand(session, code, body.reason, actor=actor),
    )


@router.post("/{code}/abort", response_model=JobOrderOut)
def abort(code: str, body: HoldRequest, session: SessionDep, actor: Supervisor) -> JobOrderOut:
    return _done(
        session,
        lambda: execution.abort_job_order(session, code, body.reason, actor=actor),
    )


@router.post("/{code}/close", response_model=JobOrderOut)
def close(code: str, session: SessionDep, actor: Supervisor) -> JobOrderOut:
    return _done(session, lambda: execution.close_job_order(session, code, actor=actor))


@router.post("/{code}/operations/{sequence}/start", response_model=JobOrderOut)
def start(
    code: str,
    sequence: Seq,
    session: SessionDep,
    actor: ShopFloor,
    body: StartRequest | None = None,
) -> JobOrderOut:
    """Start an operation (rules 1, 3, 4, 5)."""
    return _done(
        session,
        lambda: execution.start_operation(
            session, code, sequence, body or StartRequest(), actor=actor
        ),
    )


@router.post("/{code}/operations/{sequence}/complete", response_model=JobOrderOut)
def complete(
    code: str,
    sequence: Seq,
    session: SessionDep,
    actor: ShopFloor,
    body: CompleteRequest | None = None,
) -> JobOrderOut:
    """Complete an operation; the last completes the job order and makes its output lot."""
    return _done(
        session,
        lambda: execution.complete_operation(
            session, code, sequence, body or CompleteRequest(), actor=actor
        ),
    )
