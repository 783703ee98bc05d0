"""B2MML V0701 as the vendor-neutral channel between the bench and any MES.

ISA-95 Part 2 / IEC 62264-2 (clause 7, operations schedule and performance), in MESA's
XML: the bench plays ERP and sends job orders as a ``ProcessOperationsSchedule``; the MES
gives its actuals back as a ``ProcessOperationsPerformance``. Any adapter whose MES speaks
B2MML can use this module: :func:`build_schedule` turns the runner's
:class:`~twin.scenario.sut.OrderRequest` list into the schedule document, and
:func:`parse_performance` reads the performance document into the reconciliation's
per-order shape (:class:`~twin.scenario.reconcile.OrderRecord`), the orders' states and
the lot genealogy. Both documents are validated against the XSDs, both ways.

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International." The schemas ship once in this repository, unchanged, in
``mes_core/erp/xsd`` (see the README and LICENSE there); the channel reads those files and
imports nothing of the MES. An adapter may point ``xsd_dir`` at its own copy.

Mapping of the schedule (one OperationsRequest per job order):

=================================  ======================================================
OrderRequest / plant model         B2MML
=================================  ======================================================
``id``                             OperationsRequest/ID
``release_at``, ``due``            StartTime, EndTime (plant time: plant start + seconds)
``priority``                       Priority
``product`` (the routing)          OperationsDefinitionID
each operation segment             SegmentRequirement (ProcessSegmentID, OperationsSegmentID
                                   = its position, 1-based), its bill of materials as
                                   MaterialRequirement Consumed (quantity x per unit)
the product's material             MaterialRequirement Produced on the last segment
released (the ERP's release)       RequestState Released (else Waiting)
=================================  ======================================================

What the performance document must carry for the reconciliation: per OperationsResponse
(``OperationsRequestID`` = the job order) its SegmentResponses in operation order, each with
``SegmentData`` ``GoodQuantity`` / ``ScrapQuantity`` and MaterialActuals with
``MaterialLotID`` (Consumed, Produced). A job order's good count is its last operation's
good quantity; its scrap, the sum over operations. Genealogy as an auditor traces it
(ISA-95 material lot relationships): a lot an operation produced comes from the lots
consumed since the order's previous produced lot, and from that previous (intermediate)
lot. Each operation's ``ActualStartTime`` / ``ActualEndTime`` give its times in plant
seconds, for the reconciliation of times.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException
from lxml import etree

from plant_models.schema import PlantModel
from twin.scenario.reconcile import OperationTimes, OrderRecord
from twin.scenario.sut import OrderRequest

B2MML_NS = "http://www.mesa.org/xml/B2MML"
RELEASE_ID = "V0701"
SCHEDULE_XSD = "B2MML-OperationsSchedule.xsd"
PERFORMANCE_XSD = "B2MML-OperationsPerformance.xsd"
#: SegmentData IDs of an operation's good and scrap quantities (ISO 22400-2 GQ, SQ).
GOOD_QUANTITY = "GoodQuantity"
SCRAP_QUANTITY = "ScrapQuantity"
WORK_UNIT_PROPERTY = "WorkUnit"
"""MaterialActualProperty naming the work unit that drew a lot (an operation on several)."""
#: ISA-95 ResponseState -> the job order state names of the scenario language.
ORDER_STATES = {
    "Waiting": "planned",
    "Ready": "released",
    "Running": "running",
    "Held": "held",
    "Paused": "held",
    "Suspended": "held",
    "Aborted": "aborted",
    "Completed": "completed",
    "Closed": "closed",
}
#: ISA-95 SegmentState of an operation -> the operation state names of the scenario language.
OPERATION_STATES = {
    "Waiting": "pending",
    "Ready": "pending",
    "Running": "running",
    "Completed": "completed",
    "Aborted": "aborted",
}
PRODUCED_USES = {"Produced", "Yield Produced", "Material Produced"}
CONSUMED_USES = {"Consumed", "Material Consumed"}
_NS = {"b": B2MML_NS}


class B2MMLChannelError(ValueError):
    """A document that does not hold: invalid against the XSD, or without what the
    channel needs; the message names the document and the line or element."""


def default_xsd_dir() -> Path:
    """MESA's V0701 schemas as shipped in this repository (``mes_core/erp/xsd``)."""
    return Path(str(files("mes_core"))) / "erp" / "xsd"


@cache
def _schema(xsd_dir: Path, name: str) -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(xsd_dir / name), parser))


def validate(root: etree._Element, xsd: str, xsd_dir: Path | None = None) -> None:
    """Raise :class:`B2MMLChannelError` naming the first XSD error and its line."""
    compiled = _schema(xsd_dir or default_xsd_dir(), xsd)
    if not compiled.validate(root):
        first = compiled.error_log[0]
        raise B2MMLChannelError(
            f"not valid against {xsd} (line {first.line}): "
            + first.message.replace(f"{{{B2MML_NS}}}", "")
        )


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{B2MML_NS}}}{name}")
    if text is not None:
        child.text = text
    return child


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _number(value: float) -> str:
    """``value`` as an xsd:decimal string that reads back as the same float (the shortest
    such digits, never an exponent): a reconciliation compares lot quantities exactly."""
    if value == int(value):
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _quantity(parent: etree._Element, value: float, unit: str) -> None:
    q = _el(parent, "Quantity")
    _el(q, "QuantityString", _number(value))
    _el(q, "DataType", "decimal")
    if unit:
        _el(q, "UnitOfMeasure", unit)


def build_schedule(
    orders: Sequence[OrderRequest],
    plant: PlantModel,
    *,
    schedule_id: str,
    released: bool = True,
    sender: str = "mestwin-erp",
    created_at: datetime | None = None,
    xsd_dir: Path | None = None,
) -> bytes:
    """The ``ProcessOperationsSchedule`` (OperationsType Production) for ``orders``, one
    OperationsRequest each, validated against the XSD (UTF-8 bytes).

    Times are plant times: ``plant.plant.start`` plus the order's seconds. ``released``
    says RequestState Released (the bench's ERP sends and releases in one step); otherwise
    Waiting. ``KeyError`` names an order whose product the plant model does not have.
    """
    if not orders:
        raise ValueError("a ProcessOperationsSchedule needs at least one order")
    start = plant.plant.start
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    units = {m.id: m.unit for m in plant.materials}
    root = etree.Element(
        f"{{{B2MML_NS}}}ProcessOperationsSchedule", nsmap={None: B2MML_NS}, releaseID=RELEASE_ID
    )
    area = _el(root, "ApplicationArea")
    _el(_el(area, "Sender"), "LogicalID", sender)
    _el(area, "CreationDateTime", _iso(created_at or datetime.now(UTC)))
    _el(area, "BODID", schedule_id)
    data = _el(root, "DataArea")
    _el(data, "Process")
    schedule = _el(data, "OperationsSchedule")
    _el(schedule, "ID", schedule_id)
    _el(schedule, "OperationsType", "Production")
    for order in orders:
        product = plant.product(order.product)
        request = _el(schedule, "OperationsRequest")
        _el(request, "ID", order.id)
        _el(request, "StartTime", _iso(start + timedelta(seconds=order.release_at)))
        if order.due is not None:
            _el(request, "EndTime", _iso(start + timedelta(seconds=order.due)))
        _el(request, "OperationsType", "Production")
        _el(request, "Priority", str(order.priority))
        _el(request, "RequestState", "Released" if released else "Waiting")
        _el(request, "OperationsDefinitionID", product.id)
        last = len(product.segments)
        for position, segment in enumerate(product.segments, start=1):
            requirement = _el(request, "SegmentRequirement")
            _el(requirement, "ID", f"{order.id}-{segment.id}")
            _el(requirement, "ProcessSegmentID", segment.id)
            _el(requirement, "OperationsDefinitionID", product.id)
            _el(requirement, "OperationsSegmentID", str(position))
            for n, bom in enumerate(segment.materials, start=1):
                material = _el(requirement, "MaterialRequirement")
                _el(material, "ID", f"{order.id}-{segment.id}-IN{n}")
                _el(material, "MaterialDefinitionID", bom.material)
                _el(material, "MaterialUse", "Consumed")
                _quantity(
                    material, bom.quantity_per_unit * order.quantity, units.get(bom.material, "")
                )
            if position == last:
                material = _el(requirement, "MaterialRequirement")
                _el(material, "ID", f"{order.id}-OUT")
                _el(material, "MaterialDefinitionID", product.material)
                _el(material, "MaterialUse", "Produced")
                _quantity(material, order.quantity, units.get(product.material, ""))
    validate(root, SCHEDULE_XSD, xsd_dir)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


@dataclass
class SegmentPerformance:
    """One operation's actuals as a SegmentResponse reports them."""

    process_segment: str
    state: str
    good: float = 0.0
    scrap: float = 0.0
    equipment: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    consumed: list[str] = field(default_factory=list)
    """Lots consumed, in document order."""
    consumed_at: dict[str, set[str]] = field(default_factory=dict)
    """Lot -> the work units that drew it, where a MaterialActualProperty ``WorkUnit``
    names them (an operation on several work units)."""
    produced: list[str] = field(default_factory=list)
    """Lots produced, in document order."""

    @property
    def where(self) -> str:
        """Where the operation took a lot in as a whole: its work unit, several (a parallel
        station's) joined by ``+`` as the twin names them, ``?`` when it names none."""
        if len(self.equipment) > 1:
            return "+".join(sorted(self.equipment))
        return self.equipment[0] if self.equipment else "?"

    @property
    def operation_state(self) -> str:
        """The operation state in the scenario's words (``pending``, ``running``...)."""
        return OPERATION_STATES.get(self.state, self.state.lower())


@dataclass
class OrderPerformance:
    """One job order's actuals (an OperationsResponse): its ISA-95 ResponseState, the
    scenario's name for that state, its operations and its reconciliation record."""

    id: str
    response_state: str
    segments: list[SegmentPerformance] = field(default_factory=list)
    record: OrderRecord = field(default_factory=OrderRecord)
    start: datetime | None = None
    """The response's StartTime (the job order's actual start)."""
    end: datetime | None = None
    """The response's EndTime (the job order's actual end)."""

    @property
    def state(self) -> str:
        """The job order state in the scenario's words (``completed``, ``running``...)."""
        return ORDER_STATES.get(self.response_state, self.response_state.lower())


@dataclass
class Performance:
    """A parsed ``ProcessOperationsPerformance``."""

    performance_id: str
    orders: dict[str, OrderPerformance] = field(default_factory=dict)

    def records(self) -> dict[str, OrderRecord]:
        """Per job order, the reconciliation's record."""
        return {number: o.record for number, o in self.orders.items()}

    def genealogy(self) -> set[tuple[str, str]]:
        """Edges (lot in, lot out): into each lot an operation produced, the lots consumed
        since the order's previous produced lot, and that previous lot."""
        return {(lot_in, lot_out) for lot_in, lot_out, _ in self.genealogy_at()}

    def genealogy_at(self) -> set[tuple[str, str, str]]:
        """The edges with the work unit where the input went in (ISA-95: an edge belongs
        to the consuming operation; a previous produced lot goes into the operation after
        the one that made it): ``(lot in, lot out, work unit)``, ``?`` when the operation
        names no equipment."""
        edges: set[tuple[str, str, str]] = set()
        for order in self.orders.values():
            taken: list[tuple[str, str]] = []  # (lot, work unit) since the previous output
            carried: list[str] = []  # the previous output lots
            first_unit: str | None = None  # the operation after the previous output
            for segment in order.segments:
                unit = segment.where
                first_unit = first_unit or unit
                taken += [
                    (lot, at)
                    for lot in segment.consumed
                    for at in sorted(segment.consumed_at.get(lot) or {unit})
                ]
                if segment.produced:
                    explicit = {lot for lot, _ in taken}
                    inputs = taken + [(lot, first_unit) for lot in carried if lot not in explicit]
                    edges.update(
                        (lot_in, lot_out, at)
                        for lot_out in segment.produced
                        for lot_in, at in inputs
                        if lot_in != lot_out
                    )
                    taken, carried, first_unit = [], list(segment.produced), None
        return edges

    def operation_times(self, plant_start: datetime) -> dict[tuple[str, str], OperationTimes]:
        """Per (job order, process segment), its actual start and end in plant seconds
        (since ``plant_start``), for operations with either."""
        out: dict[tuple[str, str], OperationTimes] = {}
        for number, order in self.orders.items():
            for s in order.segments:
                if s.process_segment and (s.start is not None or s.end is not None):
                    out[(number, s.process_segment)] = OperationTimes(
                        _seconds(s.start, plant_start), _seconds(s.end, plant_start)
                    )
        return out

    def job_order_times(self, plant_start: datetime) -> list[float]:
        """Every job order's actual start and end (those it has), in plant seconds."""
        return [
            t
            for o in self.orders.values()
            for t in (_seconds(o.start, plant_start), _seconds(o.end, plant_start))
            if t is not None
        ]


def _seconds(moment: datetime | None, plant_start: datetime) -> float | None:
    return None if moment is None else round((moment - plant_start).total_seconds(), 3)


def _datetime(raw: str, where: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise B2MMLChannelError(f"{where}: {raw!r} is not a date-time") from exc
    if moment.tzinfo is None:
        raise B2MMLChannelError(f"{where}: {raw!r} has no time zone offset")
    return moment


def _text(element: etree._Element, path: str) -> str:
    found = element.find(path, _NS)
    return (found.text or "").strip() if found is not None else ""


def _float(raw: str, where: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise B2MMLChannelError(f"{where}: {raw!r} is not a number") from exc


def parse_performance(data: bytes, *, xsd_dir: Path | None = None) -> Performance:
    """Read a ``ProcessOperationsPerformance`` (validated against the XSD; DTDs, entities
    and external references refused) into per-order actuals.

    Raises :class:`B2MMLChannelError` naming what does not hold and where.
    """
    try:
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        root = etree.fromstring(data, parser)
    except (DefusedXmlException, DefusedET.ParseError, etree.XMLSyntaxError) as exc:
        raise B2MMLChannelError(f"performance document refused: {exc}") from exc
    if root.tag != f"{{{B2MML_NS}}}ProcessOperationsPerformance":
        raise B2MMLChannelError(f"expected <ProcessOperationsPerformance>, got <{root.tag}>")
    validate(root, PERFORMANCE_XSD, xsd_dir)
    out = Performance(_text(root, "b:DataArea/b:OperationsPerformance/b:ID"))
    for response in root.iterfind("b:DataArea/b:OperationsPerformance/b:OperationsResponse", _NS):
        number = _text(response, "b:OperationsRequestID")
        if not number:
            raise B2MMLChannelError(
                f"OperationsResponse {_text(response, 'b:ID')!r} (line {response.sourceline}) "
                "names no OperationsRequestID: which job order it answers is unknown"
            )
        where = f"OperationsResponse {number!r}"
        order = out.orders.setdefault(
            number,
            OrderPerformance(
                number,
                _text(response, "b:ResponseState") or "Other",
                start=_datetime(_text(response, "b:StartTime"), f"{where} / StartTime"),
                end=_datetime(_text(response, "b:EndTime"), f"{where} / EndTime"),
            ),
        )
        consumed: dict[str, float] = defaultdict(float, order.record.lots_consumed)
        for sr in response.iterfind("b:SegmentResponse", _NS):
            where = f"OperationsResponse {number!r} / SegmentResponse {_text(sr, 'b:ID')!r}"
            segment = SegmentPerformance(
                process_segment=_text(sr, "b:ProcessSegmentID"),
                state=_text(sr, "b:SegmentState"),
                equipment=[
                    e.text or "" for e in sr.iterfind("b:EquipmentActual/b:EquipmentID", _NS)
                ],
                start=_datetime(_text(sr, "b:ActualStartTime"), f"{where} / ActualStartTime"),
                end=_datetime(_text(sr, "b:ActualEndTime"), f"{where} / ActualEndTime"),
            )
            for item in sr.iterfind("b:SegmentData", _NS):
                ident = _text(item, "b:ID")
                if ident in (GOOD_QUANTITY, SCRAP_QUANTITY):
                    value = _float(_text(item, "b:Value/b:ValueString"), f"{where} / {ident}")
                    setattr(segment, "good" if ident == GOOD_QUANTITY else "scrap", value)
            order.segments.append(segment)
            for actual in sr.iterfind("b:MaterialActual", _NS):
                lot = _text(actual, "b:MaterialLotID")
                use = _text(actual, "b:MaterialUse")
                if not lot:
                    continue
                quantity = _float(
                    _text(actual, "b:Quantity/b:QuantityString"), f"{where} / lot {lot}"
                )
                if use in CONSUMED_USES:
                    consumed[lot] += quantity
                    segment.consumed.append(lot)
                    for prop in actual.iterfind("b:MaterialActualProperty", _NS):
                        if _text(prop, "b:ID") == WORK_UNIT_PROPERTY:
                            unit = _text(prop, "b:Value/b:ValueString")
                            segment.consumed_at.setdefault(lot, set()).add(unit)
                elif use in PRODUCED_USES:
                    segment.produced.append(lot)
                    order.record.lots_produced[lot] = (
                        order.record.lots_produced.get(lot, 0.0) + quantity
                    )
        order.record.lots_consumed = dict(consumed)
        if order.segments:
            order.record.good = int(order.segments[-1].good)
            order.record.scrap = int(sum(s.scrap for s in order.segments))
    return out
