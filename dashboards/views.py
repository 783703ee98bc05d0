"""What each page shows, as plain typed data: the seam between the MES client and the figures.

``dashboards.source`` turns the MES's API answers into these; ``dashboards.figures`` turns
these into Plotly figures and Dash components. Neither side knows the other, so a figure can
be tested (and benchmarked) without a server, and a change of the API touches one module.
Names are ISA-95's (work unit, job order, material lot) and ISO 22400-2's (APT, PBT...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class WorkUnitTile:
    """One work unit on the Andon board: its state, since when, its job and its counts."""

    code: str
    name: str
    line: str
    state: str
    state_since: datetime | None = None
    state_reason: str = ""
    equipment_class: str | None = None
    job_order: str | None = None
    #: The job order is on hold (rule 5): nothing moves until QA disposes it.
    job_order_held: bool = False
    good: float = 0.0
    scrap: float = 0.0
    #: Text of the most severe active alarm, if any.
    alarm: str | None = None
    alarm_severity: int = 0


@dataclass(frozen=True)
class LineTiles:
    """A line and its work units, in plant order."""

    code: str
    name: str
    tiles: tuple[WorkUnitTile, ...]


@dataclass(frozen=True)
class PlantView:
    """The Andon board: every line with its work units, as known at ``at``."""

    at: datetime
    lines: tuple[LineTiles, ...]

    @property
    def tile_count(self) -> int:
        return sum(len(line.tiles) for line in self.lines)


@dataclass(frozen=True)
class OeeView:
    """ISO 22400-2 KPIs of a line (or work unit) over ``[start, end)``.

    Time elements are seconds (clause 5): PBT planned busy time, APT actual production time,
    AUST actual unit setup time, ADET actual unit delay time, ADOT actual unit down time.
    Ratios (clause 6) are ``None`` where undefined (zero denominator), never a fake 0 or 1.
    """

    scope: str
    start: datetime
    end: datetime
    pbt: float
    apt: float
    aust: float
    adet: float
    adot: float
    availability: float | None
    effectiveness: float | None
    quality_ratio: float | None
    oee: float | None
    good: float = 0.0
    scrap: float = 0.0
    #: The MES's word on each factor above 100 % (impossible: wrong master data).
    master_data_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class StateBar:
    """A work unit was in ``state`` from ``start`` to ``end`` (one bar of the Gantt)."""

    work_unit: str
    state: str
    start: datetime
    end: datetime
    reason: str = ""
    #: The work unit is still in this state (``end`` is "now"): the bar still grows.
    open: bool = False


@dataclass(frozen=True)
class ThroughputPoint:
    """Cumulative good quantity at ``at``: actually made, and what the plan called for."""

    at: datetime
    actual: float
    plan: float | None = None


@dataclass(frozen=True)
class LineView:
    """Everything the Line page shows for one line and window."""

    code: str
    name: str
    oee: OeeView
    states: tuple[StateBar, ...]
    work_units: tuple[str, ...]
    throughput: tuple[ThroughputPoint, ...] = ()
    #: What the page should say about gaps in the data.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperationView:
    """One operation of a job order with its actuals (ISA-95 Part 3 job response)."""

    sequence: int
    name: str
    equipment_class: str
    state: str
    work_unit: str | None = None
    good: float = 0.0
    scrap: float = 0.0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    operators: tuple[str, ...] = ()
    #: (lot code, quantity consumed) pairs.
    consumed: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class JobOrderView:
    """A job order: what was asked, what was made, by when."""

    code: str
    product: str
    quantity: float
    state: str
    due_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    operations: tuple[OperationView, ...] = ()
    #: Lots this order produced.
    output_lots: tuple[str, ...] = ()

    @property
    def good(self) -> float:
        """Good quantity of the order: that of its last operation (what left the routing)."""
        if not self.operations:
            return 0.0
        return max(self.operations, key=lambda op: op.sequence).good

    @property
    def scrap(self) -> float:
        return sum(op.scrap for op in self.operations)

    @property
    def progress(self) -> float:
        """Good quantity over ordered quantity, 0..1 (capped: over-production shows 100 %)."""
        if self.quantity <= 0:
            return 0.0
        return min(1.0, self.good / self.quantity)

    def is_late(self, now: datetime) -> bool:
        """Past its due date and not finished."""
        finished = self.state in {"completed", "closed", "aborted"}
        return self.due_at is not None and not finished and now > self.due_at


@dataclass(frozen=True)
class SpcPoint:
    """One measurement result on an individuals chart, with the Nelson rules it violated."""

    at: datetime
    value: float
    rules: tuple[int, ...] = ()
    out_of_spec: bool = False
    lot: str | None = None
    job_order: str | None = None


@dataclass(frozen=True)
class SpcChartData:
    """An individuals (I) chart of one inspection characteristic."""

    characteristic: str
    unit: str = ""
    lsl: float | None = None
    target: float | None = None
    usl: float | None = None
    centre: float | None = None
    ucl: float | None = None
    lcl: float | None = None
    points: tuple[SpcPoint, ...] = ()


@dataclass(frozen=True)
class HoldView:
    """Something on hold (a material lot or a job order), waiting for QA's disposition."""

    kind: str
    code: str
    reason: str
    since: datetime | None = None


@dataclass(frozen=True)
class NonconformanceView:
    """A nonconformance: what was found, on what, and where it stands."""

    code: str
    status: str
    description: str
    characteristic: str | None = None
    lot: str | None = None
    job_order: str | None = None
    raised_at: datetime | None = None


@dataclass(frozen=True)
class QualityView:
    """The Quality page: SPC charts, open holds and nonconformances."""

    charts: tuple[SpcChartData, ...]
    holds: tuple[HoldView, ...] = ()
    nonconformances: tuple[NonconformanceView, ...] = ()


@dataclass(frozen=True)
class LotNode:
    """A material lot in a genealogy graph."""

    code: str
    material: str = ""
    status: str = ""
    quantity: float | None = None


@dataclass(frozen=True)
class LotLink:
    """``parent`` went into ``child`` (consumed by the operation that produced the child)."""

    parent: str
    child: str
    job_order: str | None = None
    operation: str | None = None


@dataclass(frozen=True)
class GenealogyView:
    """A lot's trace: everything upstream (backward) and downstream (forward) of ``root``."""

    root: str
    nodes: tuple[LotNode, ...]
    links: tuple[LotLink, ...] = field(default=())
