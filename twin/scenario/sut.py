"""The system under test: the one seam between the scenario runner and any MES.

Everything the bench does to the MES (load master data, send ERP orders, act as operator,
supervisor and QA) and everything it reads back (job orders, lots, genealogy, state
history, KPIs, refusals) goes through :class:`SystemUnderTest`. The first implementation,
``twin.scenario.sut_mes_core.MesCoreSut``, speaks mes_core's REST API through
``mes_core.client``; pointing the bench at another MES means writing one more file with a
class that has these methods. Equipment traffic does not pass here: it reaches any MES over
OPC UA, the standard way.

Every action returns an :class:`Answer` instead of raising when the MES *refuses*: a
refusal is an expected outcome of a deviation, and the runner records it with the rule the
MES named. Transport failures (MES down) raise :class:`SutUnavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mes_core.schemas.plant_events import IngestResult, PlantEvent
from plant_models.schema import PlantModel
from twin.scenario.reconcile import LabourHours, Records


class MesStartError(RuntimeError):
    """The MES the run needs could not be started or reached: the run cannot start."""


class SutUnavailable(RuntimeError):
    """The MES could not be reached (connection refused, timeout, 5xx)."""


@dataclass(frozen=True)
class Answer:
    """The MES's answer to an action: accepted, or refused naming a rule."""

    accepted: bool
    rule: str | None = None
    message: str = ""
    status: int = 200

    @property
    def refused(self) -> bool:
        return not self.accepted


@dataclass(frozen=True)
class OrderRequest:
    """A job order as ERP sends it (B2MML ProcessOperationsSchedule semantics)."""

    id: str
    product: str
    quantity: int
    release_at: float
    due: float | None = None
    priority: int = 0


@dataclass
class OperationView:
    """One operation of a job order as the MES sees it."""

    segment: str
    state: str
    good: float = 0.0
    scrap: float = 0.0
    work_unit: str | None = None


@dataclass
class OrderView:
    """A job order as the MES sees it."""

    id: str
    product: str
    quantity: int
    state: str
    good: float = 0.0
    scrap: float = 0.0
    operations: list[OperationView] = field(default_factory=list)


@dataclass(frozen=True)
class Refusal:
    """A refusal the MES recorded in its audit trail (rule, object, message)."""

    rule: str
    object_ref: str
    message: str
    at: str = ""


@dataclass(frozen=True)
class Kpis:
    """ISO 22400-2 KPIs of one line or work unit over a period, as the MES computes them."""

    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    throughput_per_hour: float | None
    good: float | None
    scrap: float | None
    scrap_ratio: float | None
    time_elements: dict[str, float] = field(default_factory=dict)
    basis: str = ""
    """How the MES measured the scope, when it says (a line: where its good units are
    counted, whose time and pace it takes)."""


@dataclass(frozen=True)
class IngestStats:
    """What the MES ingested from plant events: distinct events and duplicates refused."""

    accepted: int
    duplicates: int


@runtime_checkable
class SystemUnderTest(Protocol):
    """What the bench needs from an MES. All times are plant times in seconds since the
    plant model's start (``plant.plant.start``); adapters convert to their own clocks."""

    def describe(self) -> str:
        """Adapter name and where the MES is reached (for the report)."""
        ...

    def version(self) -> str:
        """The MES's version string."""
        ...

    def wait_ready(self, timeout: float) -> None:
        """Block until the MES answers; raise ``SutUnavailable`` after ``timeout`` s."""
        ...

    def load_master_data(self, plant: PlantModel) -> None:
        """Equipment, materials, lots, products and routings, people: the plant's master
        data (idempotent: loading twice changes nothing)."""
        ...

    def send_order(self, order: OrderRequest) -> Answer:
        """ERP sends (and releases) a job order."""
        ...

    def start_operation(
        self, order: str, segment: str, person: str, work_unit: str, at: float
    ) -> Answer:
        """An operator starts an operation of a job order on a work unit (rules 1, 3, 4)."""
        ...

    def dispatch_order(self, order: str, work_units: dict[str, str]) -> Answer:
        """The supervisor dispatches a released order, naming the work unit per operation
        segment (ISA-95 job dispatching)."""
        ...

    def complete_operation(
        self, order: str, segment: str, person: str, at: float, output_lot: str | None
    ) -> Answer:
        """An operator completes an operation (quantities come from the plant events); the
        last operation names the ``output_lot`` it produced."""
        ...

    def consume_lot(
        self, order: str, segment: str, lot: str, quantity: float, person: str, at: float
    ) -> Answer:
        """An operator scans a lot for consumption by an operation (rule 2)."""
        ...

    def dispose(
        self,
        target: str,
        person: str,
        password: str,
        decision: str,
        reason: str,
        at: float | None = None,
    ) -> Answer:
        """QA disposes what ``held`` listed, under an electronic signature (rule 5), at
        plant time ``at`` (None: the adapter's own clock)."""
        ...

    def set_calibration_due(self, work_unit: str, due_at: float) -> Answer:
        """Maintenance records the calibration due date of a work unit (rule 4)."""
        ...

    def orders(self) -> list[OrderView]:
        """Every job order the MES knows, with its actuals."""
        ...

    def lot_state(self, lot: str) -> str | None:
        """The status of a material lot (None when the MES does not know it)."""
        ...

    def held(self) -> list[str]:
        """What awaits QA's disposition now (ids the adapter understands in ``dispose``)."""
        ...

    def holds_of(self, target: str) -> list[str]:
        """What ``target`` (from ``held``) keeps on hold: ``job_order:<id>``, ``lot:<id>``."""
        ...

    def refusals(self) -> list[Refusal]:
        """Every refusal recorded in the audit trail, oldest first."""
        ...

    def records(self, plant: PlantModel, until: float) -> Records:
        """What the MES recorded, in the reconciliation's shape: per work unit good, scrap
        and seconds per state up to ``until``; per job order good, scrap, lots consumed and
        produced; genealogy edges."""
        ...

    def kpis(self, scope: str, ident: str, start: float, end: float) -> Kpis | None:
        """KPIs of a line or work unit (``scope`` ``line`` / ``work_unit``)."""
        ...

    def post_events(self, events: list[PlantEvent]) -> IngestResult:
        """Post plant events to the MES's collector endpoint. Used only by the direct
        collector that stands in for OPC UA + connector; raise ``SutUnavailable`` when the
        MES cannot be reached."""
        ...

    def ingest_stats(self) -> IngestStats:
        """Distinct plant events ingested and duplicates refused so far."""
        ...

    def latencies_ms(self) -> list[float]:
        """Latency of every API call this adapter made, in milliseconds."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class LabourCapability(Protocol):
    """Optional capability of an adapter: the MES records attendance (clock in / out) and
    labour booked on the operations people run. The simulated people use it when the
    adapter has it (``isinstance(sut, LabourCapability)``); without it, labour is reported
    as not checked. Times are plant seconds, as everywhere in :class:`SystemUnderTest`."""

    def clock_in(self, person: str, at: float) -> Answer:
        """``person`` clocks in (attendance starts)."""
        ...

    def clock_out(self, person: str, at: float) -> Answer:
        """``person`` clocks out; the MES closes their open labour bookings then."""
        ...

    def start_labour(self, order: str, segment: str, person: str, at: float) -> Answer:
        """``person`` starts booking labour on an operation (rule 3 applies)."""
        ...

    def stop_labour(self, order: str, segment: str, person: str, at: float) -> Answer:
        """``person`` stops booking labour on an operation."""
        ...

    def labour_records(self, persons: list[str], orders: list[str]) -> LabourHours:
        """Hours recorded for ``persons`` and ``orders``."""
        ...
