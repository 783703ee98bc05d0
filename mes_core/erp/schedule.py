"""ERP -> MES: a B2MML V0701 ``ProcessOperationsSchedule`` read into job orders to create.

ISA-95 Part 2 (IEC 62264-2), clause 7 "Operations schedule": each ``OperationsRequest``
of an ``OperationsSchedule`` whose ``OperationsType`` is Production becomes one MES job
order. The mapping:

=====================================================  ===================================
B2MML                                                  job order
=====================================================  ===================================
OperationsRequest/ID                                   number (unique; the ERP's order)
OperationsRequest/Description                          description
OperationsRequest/StartTime, EndTime                   planned start, due date
OperationsRequest/Priority                             priority
OperationsRequest/OperationsDefinitionID (else that    routing (operations definition)
of the first SegmentRequirement)
SegmentRequirement/MaterialRequirement with            product (MaterialDefinitionID),
MaterialUse "Produced"                                 quantity and unit (first Quantity)
OperationsRequest/RequestState                         Released: the job order is released;
                                                       Forecast, Waiting or none: planned
=====================================================  ===================================

A request without exactly one produced material, with a quantity that is not a positive
number, or with a RequestState an ERP does not send (Running, Completed...: those are the
MES's to report, in a ProcessOperationsPerformance) is refused naming the request. The
schedule's own ScheduleState is not inherited: ISA-95 gives each request its state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from mes_core.erp.b2mml import B2MML_NS, SCHEDULE_XSD, B2MMLError, parse_untrusted

_NS = {"b": B2MML_NS}
PRODUCED_USES = {"Produced", "Yield Produced", "Material Produced"}
#: RequestState values an ERP may send, and the job order state each lands in.
REQUEST_STATES = {"Forecast": "planned", "Waiting": "planned", "Released": "released"}


@dataclass(frozen=True)
class ScheduledJobOrder:
    """One job order the ERP asks the MES to make."""

    number: str
    product: str
    quantity: float
    unit: str
    operations_definition: str
    description: str = ""
    planned_start: datetime | None = None
    due: datetime | None = None
    priority: int | None = None
    request_state: str | None = None
    """The document's RequestState (None when absent)."""

    @property
    def state(self) -> str:
        """The job order state the request lands in (``planned`` or ``released``)."""
        return REQUEST_STATES.get(self.request_state or "Waiting", "planned")


@dataclass(frozen=True)
class Schedule:
    """A parsed ``ProcessOperationsSchedule``."""

    schedule_id: str
    job_orders: tuple[ScheduledJobOrder, ...]


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path, _NS)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _datetime(element: etree._Element, path: str, where: str) -> datetime | None:
    raw = _text(element, path)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise B2MMLError(
            "bad-value", f"{where}: {path.split(':')[-1]} {raw!r} is not a date-time"
        ) from exc
    if moment.tzinfo is None:
        raise B2MMLError(
            "bad-value", f"{where}: {path.split(':')[-1]} {raw!r} has no time zone offset"
        )
    return moment


def parse_schedule(data: bytes) -> Schedule:
    """Parse, validate and map a ``ProcessOperationsSchedule`` document.

    Raises ``B2MMLError`` for hostile, malformed or schema-invalid XML, a wrong namespace,
    an ``OperationsType`` other than Production, or a request that cannot be a job order.
    """
    root = parse_untrusted(data, expected_root="ProcessOperationsSchedule", xsd=SCHEDULE_XSD)
    schedules = root.findall("b:DataArea/b:OperationsSchedule", _NS)
    orders: list[ScheduledJobOrder] = []
    first_id = ""
    for schedule in schedules:
        schedule_id = _text(schedule, "b:ID") or ""
        first_id = first_id or schedule_id
        schedule_type = _text(schedule, "b:OperationsType")
        for request in schedule.findall("b:OperationsRequest", _NS):
            orders.append(_job_order(request, schedule_id, schedule_type))
    numbers = [o.number for o in orders]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise B2MMLError(
            "duplicate-order", f"OperationsRequest ID(s) repeated in the document: {duplicates}"
        )
    return Schedule(schedule_id=first_id, job_orders=tuple(orders))


def _job_order(
    request: etree._Element, schedule_id: str, schedule_type: str | None
) -> ScheduledJobOrder:
    number = _text(request, "b:ID") or ""
    where = f"OperationsSchedule {schedule_id!r} / OperationsRequest {number!r}"
    operations_type = _text(request, "b:OperationsType") or schedule_type
    if operations_type != "Production":
        raise B2MMLError(
            "not-production",
            f"{where}: OperationsType is {operations_type!r}; only Production is imported",
        )
    segments = request.findall("b:SegmentRequirement", _NS)
    definition = _text(request, "b:OperationsDefinitionID") or _text(
        segments[0], "b:OperationsDefinitionID"
    )
    produced = [
        m
        for segment in segments
        for m in segment.iter(f"{{{B2MML_NS}}}MaterialRequirement")
        if _text(m, "b:MaterialUse") in PRODUCED_USES
    ]
    if len(produced) != 1:
        raise B2MMLError(
            "no-product",
            f"{where}: needs exactly one MaterialRequirement with MaterialUse Produced, "
            f"found {len(produced)}",
        )
    material = produced[0]
    product = _text(material, "b:MaterialDefinitionID")
    if not product:
        raise B2MMLError(
            "no-product", f"{where}: the produced material has no MaterialDefinitionID"
        )
    raw_quantity = _text(material, "b:Quantity/b:QuantityString")
    try:
        quantity = float(raw_quantity) if raw_quantity is not None else math.nan
    except ValueError:
        quantity = math.nan
    if not math.isfinite(quantity) or quantity <= 0:
        raise B2MMLError(
            "bad-value",
            f"{where}: quantity {raw_quantity!r} of {product!r} is not a positive number",
        )
    request_state = _text(request, "b:RequestState")
    if request_state is not None and request_state not in REQUEST_STATES:
        raise B2MMLError(
            "bad-value",
            f"{where}: RequestState {request_state!r} is not imported; a schedule's request "
            f"is {', '.join(REQUEST_STATES)} (the MES reports the others in its performance)",
        )
    raw_priority = _text(request, "b:Priority")
    priority: int | None = None
    if raw_priority is not None:
        try:
            priority = int(float(raw_priority))
        except ValueError as exc:
            raise B2MMLError(
                "bad-value", f"{where}: Priority {raw_priority!r} is not a number"
            ) from exc
    return ScheduledJobOrder(
        number=number,
        product=product,
        quantity=quantity,
        unit=_text(material, "b:Quantity/b:UnitOfMeasure") or "",
        operations_definition=definition or "",
        description=_text(request, "b:Description") or "",
        planned_start=_datetime(request, "b:StartTime", where),
        due=_datetime(request, "b:EndTime", where),
        priority=priority,
        request_state=request_state,
    )
