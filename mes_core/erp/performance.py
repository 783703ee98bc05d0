"""MES -> ERP: a B2MML V0701 ``ProcessOperationsPerformance`` for completed job orders.

ISA-95 Part 2 (IEC 62264-2), clause 7 "Operations performance": one
``OperationsResponse`` per job order (its ``OperationsRequestID`` is the ERP's order
number), one ``SegmentResponse`` per executed operation with its actual start and end,
the equipment and people that did it, the material actuals (lots consumed and lots
produced with their quantities) and, as ``SegmentData``, the operation's good and scrap
quantities (ISO 22400-2 GQ and SQ: ``GoodQuantity``, ``ScrapQuantity``). The document is
validated against the XSD before it leaves the MES; an invalid one is a bug and raises
``B2MMLError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from lxml import etree

from mes_core.erp.b2mml import B2MML_NS, PERFORMANCE_XSD, validate

RELEASE_ID = "V0701"
#: SegmentData IDs of an operation's good and scrap quantities (ISO 22400-2 GQ, SQ).
GOOD_QUANTITY = "GoodQuantity"
SCRAP_QUANTITY = "ScrapQuantity"
#: MaterialActualProperty ID naming the work unit that drew a lot, when the operation ran on
#: several (a parallel station); its EquipmentActuals name them all.
WORK_UNIT_PROPERTY = "WorkUnit"


@dataclass(frozen=True)
class MaterialActual:
    """A material lot consumed or produced by an operation (ISA-95 material actual)."""

    material_definition: str
    quantity: float
    unit: str
    use: str  # "Consumed" or "Produced" (B2MML MaterialUse)
    lot: str | None = None
    work_unit: str | None = None
    """The work unit that drew it, when the operator named one (``WORK_UNIT_PROPERTY``)."""


@dataclass(frozen=True)
class SegmentActual:
    """What one operation of the job order actually did."""

    segment_id: str
    start: datetime | None
    end: datetime | None
    state: str = "Completed"
    equipment: Sequence[str] = ()
    personnel: Sequence[str] = ()
    materials: Sequence[MaterialActual] = ()
    process_segment: str = ""
    good: float | None = None
    scrap: float | None = None
    unit: str = ""


@dataclass(frozen=True)
class JobOrderActual:
    """A job order's performance: its operations' actuals."""

    number: str
    operations_definition: str
    start: datetime | None
    end: datetime | None
    state: str = "Completed"
    segments: Sequence[SegmentActual] = field(default_factory=tuple)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _quantity(value: float) -> str:
    """``value`` as an xsd:decimal string that reads back as the same float (the shortest
    such digits, never an exponent): a reconciliation compares lot quantities exactly."""
    if value == int(value):
        return str(int(value))
    return format(Decimal(repr(value)), "f")


class _Builder:
    def __init__(self) -> None:
        self.ns = B2MML_NS

    def el(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, f"{{{self.ns}}}{name}")
        if text is not None:
            child.text = text
        return child


def build_performance(
    orders: Sequence[JobOrderActual],
    *,
    performance_id: str,
    sender: str = "mestwin-mes",
    created_at: datetime | None = None,
    performance_state: str = "Completed",
) -> bytes:
    """The ``ProcessOperationsPerformance`` document for ``orders`` (UTF-8 bytes).

    ``orders`` must not be empty: B2MML requires at least one OperationsResponse and each
    response at least one SegmentResponse; an order with no recorded operation gets one
    segment response covering the whole order.
    """
    if not orders:
        raise ValueError("no completed job orders to export")
    now = created_at or datetime.now(UTC)
    b = _Builder()
    root = etree.Element(
        f"{{{B2MML_NS}}}ProcessOperationsPerformance",
        nsmap={None: B2MML_NS},
        releaseID=RELEASE_ID,
    )
    area = b.el(root, "ApplicationArea")
    b.el(b.el(area, "Sender"), "LogicalID", sender)
    b.el(area, "CreationDateTime", _iso(now))
    b.el(area, "BODID", performance_id)
    data = b.el(root, "DataArea")
    b.el(data, "Process")
    perf = b.el(data, "OperationsPerformance")
    b.el(perf, "ID", performance_id)
    b.el(perf, "PublishedDate", _iso(now))
    b.el(perf, "OperationsType", "Production")
    b.el(perf, "PerformanceState", performance_state)
    for order in orders:
        _response(b, perf, order)
    validate(root, PERFORMANCE_XSD)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _response(b: _Builder, perf: etree._Element, order: JobOrderActual) -> None:
    response = b.el(perf, "OperationsResponse")
    b.el(response, "ID", f"{order.number}-response")
    if order.start is not None:
        b.el(response, "StartTime", _iso(order.start))
    if order.end is not None:
        b.el(response, "EndTime", _iso(order.end))
    b.el(response, "OperationsType", "Production")
    b.el(response, "OperationsRequestID", order.number)
    if order.operations_definition:
        b.el(response, "OperationsDefinitionID", order.operations_definition)
    b.el(response, "ResponseState", order.state)
    segments = list(order.segments) or [
        SegmentActual(segment_id=order.number, start=order.start, end=order.end, state=order.state)
    ]
    for index, segment in enumerate(segments, start=1):
        _segment(b, response, order, segment, index)


def _segment(
    b: _Builder,
    response: etree._Element,
    order: JobOrderActual,
    segment: SegmentActual,
    index: int,
) -> None:
    sr = b.el(response, "SegmentResponse")
    b.el(sr, "ID", f"{order.number}-{index:03d}")
    if segment.start is not None:
        b.el(sr, "ActualStartTime", _iso(segment.start))
    if segment.end is not None:
        b.el(sr, "ActualEndTime", _iso(segment.end))
    b.el(sr, "OperationsType", "Production")
    if segment.process_segment:
        b.el(sr, "ProcessSegmentID", segment.process_segment)
    b.el(sr, "OperationsRequestID", order.number)
    if order.operations_definition:
        b.el(sr, "OperationsDefinitionID", order.operations_definition)
    b.el(sr, "OperationsSegmentID", segment.segment_id)
    b.el(sr, "SegmentState", segment.state)
    for ident, value in ((GOOD_QUANTITY, segment.good), (SCRAP_QUANTITY, segment.scrap)):
        if value is not None:
            data = b.el(sr, "SegmentData")
            b.el(data, "ID", ident)
            v = b.el(data, "Value")
            b.el(v, "ValueString", _quantity(value))
            b.el(v, "DataType", "decimal")
            if segment.unit:
                b.el(v, "UnitOfMeasure", segment.unit)
    for n, person in enumerate(segment.personnel, start=1):
        pa = b.el(sr, "PersonnelActual")
        b.el(pa, "ID", f"P{n}")
        b.el(pa, "PersonID", person)
    for n, unit in enumerate(segment.equipment, start=1):
        ea = b.el(sr, "EquipmentActual")
        b.el(ea, "ID", f"E{n}")
        b.el(ea, "EquipmentID", unit)
    for n, material in enumerate(segment.materials, start=1):
        ma = b.el(sr, "MaterialActual")
        b.el(ma, "ID", f"M{n}")
        b.el(ma, "MaterialDefinitionID", material.material_definition)
        if material.lot:
            b.el(ma, "MaterialLotID", material.lot)
        b.el(ma, "MaterialUse", material.use)
        quantity = b.el(ma, "Quantity")
        b.el(quantity, "QuantityString", _quantity(material.quantity))
        b.el(quantity, "DataType", "decimal")
        if material.unit:
            b.el(quantity, "UnitOfMeasure", material.unit)
        if material.work_unit:
            prop = b.el(ma, "MaterialActualProperty")
            b.el(prop, "ID", WORK_UNIT_PROPERTY)
            v = b.el(prop, "Value")
            b.el(v, "ValueString", material.work_unit)
            b.el(v, "DataType", "string")
