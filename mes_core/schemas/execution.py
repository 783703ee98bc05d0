"""Job orders and their operations (ISA-95 Part 3 job orders, job responses)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

from mes_core.schemas.common import Code, Count, Out, Quantity, Strict

#: When the action happened (business time), for callers holding a role allowed to
#: backdate (``backdate``, ``integration``: see ``mes_core.domain.clock``); others leave it
#: out and the MES records its own clock. A caller without that role is refused (403).
OccurredAt = Annotated[
    AwareDatetime | None,
    Field(
        description="when it happened (roles backdate, integration); default: now",
    ),
]


class JobOrderCreate(Strict):
    code: Code
    product: Code
    routing: Code | None = Field(
        default=None, description="operations definition; default: the product's only one"
    )
    quantity: Quantity
    due_at: AwareDatetime | None = None


class DispatchRequest(Strict):
    """Optionally assign work units to operations (by operation sequence)."""

    work_units: dict[int, Code] = {}


class StartRequest(Strict):
    work_unit: Code | None = Field(
        default=None,
        description="default: the work unit assigned at dispatch. An operation already "
        "running starts on another work unit of its class when its segment allows several "
        "(max_work_units)",
    )
    operators: Annotated[list[Code], Field(max_length=50)] | None = Field(
        default=None, description="default: the calling person, if an operator"
    )
    occurred_at: OccurredAt = None


class ConsumeRequest(Strict):
    lot: Code
    quantity: Quantity
    work_unit: Code | None = Field(
        default=None,
        description="the work unit that drew the lot (one the operation runs on); "
        "default: the operation as a whole",
    )
    occurred_at: OccurredAt = None


class ReportRequest(Strict):
    good: Count = 0
    scrap: Count = 0
    work_unit: Code | None = Field(
        default=None,
        description="the work unit that made them (one the operation runs on); default: "
        "the operation as a whole",
    )
    occurred_at: OccurredAt = None


class OutputLot(Strict):
    code: Code
    quantity: Quantity | None = Field(default=None, description="default: good quantity")
    material: Code | None = Field(default=None, description="default: the job's product")


class CompleteRequest(Strict):
    output_lot: OutputLot | None = None
    work_unit: Code | None = Field(
        default=None,
        description="complete the operation on this one of its work units only; the "
        "operation completes with its last one. Default: on all of them",
    )
    occurred_at: OccurredAt = None


class OperationUnitOut(Out):
    """A work unit an operation runs (or ran) on and what it did there (ISA-95 equipment
    actual)."""

    work_unit: str
    good: float
    scrap: float
    started_at: datetime
    ended_at: datetime | None


class JobOperationOut(Out):
    sequence: int
    name: str
    equipment_class: str
    state: str
    work_unit: str | None
    planned_work_unit: str | None
    good: float
    scrap: float
    started_at: datetime | None
    ended_at: datetime | None
    operators: list[str]
    consumed: list[dict[str, object]]
    work_units: list[OperationUnitOut] = Field(
        default_factory=list,
        description="every work unit the operation runs or ran on (the first is work_unit)",
    )


class ConsumptionOut(Out):
    lot: str
    quantity: float
    at: datetime
    lot_remaining: float = Field(description="what is left of the lot after this consumption")


class OperationProgressOut(Out):
    """The answer to an operator transaction on a running operation (a count report, a lot
    consumption): the operation as the transaction left it and, for a consumption, what was
    booked. Not the job order's whole tree, whose consumption list grows all shift
    (``GET /api/v1/job-orders/{code}`` gives it)."""

    job_order: str
    job_order_state: str
    sequence: int
    name: str
    state: str
    work_unit: str | None
    good: float
    scrap: float
    consumption: ConsumptionOut | None = None


class JobOrderOut(Out):
    code: str
    product: str
    routing: str
    quantity: float
    due_at: datetime | None
    state: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    operations: list[JobOperationOut]
