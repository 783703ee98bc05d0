"""The system under test: the one seam between the scenario runner and any MES.

Everything the bench does to the MES (load master data, send ERP orders, act as operator,
supervisor and QA) and everything it reads back (job orders, lots, genealogy, state
history, KPIs, refusals) goes through an adapter. Adapters are plug-ins
(:mod:`twin.scenario.sut_registry`): a scenario names one (``system_under_test: {adapter:
NAME, ...settings}``) and a package ships one under the ``mestwin.sut_adapters`` entry
point group. ``twin.scenario.mes_core_launch`` is the bench's own MES's.

What an adapter must do is small, :class:`SystemUnderTest`: **orders in, records out**
(take the plant's master data and the ERP's job orders; give back what it recorded per
work unit and job order). Everything else is an optional capability, one ``Protocol``
each (:data:`CAPABILITIES`): the runner asks the adapter what it supports
(:func:`supports`) and reports what it therefore could not check as ``not_checked`` or
``not_injected`` with the reason, never as passed.

Every action returns an :class:`Answer` instead of raising when the MES *refuses*: a
refusal is an expected outcome of a deviation, and the runner records it with the rule the
MES named. Transport failures (MES down) raise :class:`SutUnavailable`. All times are
plant times in seconds since the plant model's start (``plant.plant.start``); adapters
convert to their own clocks.

Changes to this Protocol are named in the commit message that makes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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
    entry_id: str | None = None
    """The audit entry's id in the MES, when it has one (cited as evidence)."""
    entry_hash: str | None = None
    """The audit entry's hash (a hash-chained trail), when the MES keeps one."""


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


@dataclass(frozen=True)
class PersonAccount:
    """A simulated person as the scenario defines them: id, role and password."""

    id: str
    role: str
    password: str


@dataclass(frozen=True)
class SutEnvironment:
    """What an adapter factory is given besides its own settings."""

    plant: PlantModel
    people: tuple[PersonAccount, ...]
    report_dir: Path
    """The run's report folder: logs and files the adapter makes belong here."""
    mes_url: str | None = None
    """``--mes-url``: an MES that is already running (the adapter starts none)."""
    database_url: str | None = None
    """``--database-url``: the database an MES the adapter starts should use."""
    link: str = "opcua"
    """The scenario's ``link``: ``opcua-external`` means the MES collects for itself."""
    opcua_endpoint: str | None = None
    """With ``link: opcua-external``: the twin's OPC UA endpoint the MES must subscribe to
    (known when the adapter is opened; the twin serves it before the MES starts)."""


class SutSettingsError(ValueError):
    """An adapter refused its settings; ``field`` names the one (exit code 2, with the
    scenario's file and line)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class UnitProgress:
    """What the plant published for one work unit up to a moment: cumulative counts."""

    good: int
    scrap: int


# -- required -------------------------------------------------------------------------------


@runtime_checkable
class SystemUnderTest(Protocol):
    """What every adapter must do: orders in, records out."""

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

    def orders(self) -> list[OrderView]:
        """Every job order the MES knows, with its actuals."""
        ...

    def records(self, plant: PlantModel, until: float) -> Records:
        """What the MES recorded, in the reconciliation's shape: per work unit good, scrap
        and seconds per state up to ``until``; per job order good, scrap, lots consumed and
        produced; genealogy edges. What it does not record stays empty (the
        reconciliation then names the difference)."""
        ...

    def close(self) -> None:
        """Release connections, and stop whatever the adapter started."""
        ...


# -- optional capabilities ------------------------------------------------------------------


@runtime_checkable
class Dispatching(Protocol):
    """The supervisor dispatches released orders in the MES (ISA-95 job dispatching).
    Without it the bench hands an accepted order to the plant itself."""

    def dispatch_order(self, order: str, work_units: dict[str, str]) -> Answer:
        """Dispatch a released order, naming the work unit per operation segment."""
        ...


@runtime_checkable
class OperatorActions(Protocol):
    """Operators start and complete operations and scan lots at the MES's terminal."""

    def start_operation(
        self, order: str, segment: str, person: str, work_unit: str, at: float
    ) -> Answer:
        """An operator starts an operation of a job order on a work unit (rules 1, 3, 4);
        an operation running on several work units (a parallel station) is started on
        each."""
        ...

    def complete_operation(
        self,
        order: str,
        segment: str,
        person: str,
        at: float,
        output_lot: str | None,
        *,
        work_unit: str | None = None,
        lot_quantity: float | None = None,
    ) -> Answer:
        """An operator completes an operation (quantities come from the plant events); the
        last operation names the ``output_lot`` it produced. ``work_unit`` (given only for
        an operation running on several work units, a parallel station): complete it on
        that one; it completes as a whole on its last. ``lot_quantity`` (given only when
        it differs from the operation's good units: units scrapped after the last
        operation, at a work unit in none): the quantity the operator declares for the
        output lot; an adapter whose MES cannot take it books the counted good units,
        and the reconciliation names the difference. Both keywords are optional: an
        adapter whose method lacks one is called without it."""
        ...

    def consume_lot(
        self,
        order: str,
        segment: str,
        lot: str,
        quantity: float,
        person: str,
        at: float,
        *,
        work_unit: str | None = None,
    ) -> Answer:
        """An operator scans a lot for consumption by an operation (rule 2); ``work_unit``
        (given only for an operation running on several work units): the one that drew
        it."""
        ...


@runtime_checkable
class QualityHolds(Protocol):
    """Holds and QA dispositions (nonconformances)."""

    def held(self) -> list[str]:
        """What awaits QA's disposition now (ids the adapter understands in ``dispose``)."""
        ...

    def holds_of(self, target: str) -> list[str]:
        """What ``target`` (from ``held``) keeps on hold: ``job_order:<id>``, ``lot:<id>``."""
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


@runtime_checkable
class HoldReasons(Protocol):
    """Why the MES holds: the evidence a caught deviation (a drift) is reported with."""

    def hold_reason(self, target: str) -> tuple[str, str] | None:
        """For ``target`` (from ``QualityHolds.held``): the MES's own name for why it holds
        (mes_core: the nonconformance's source, ``out_of_spec`` or ``spc``) and its text
        (the value and the limit it broke); None when the MES says nothing."""
        ...


@runtime_checkable
class Calibration(Protocol):
    """Maintenance records calibration due dates (rule 4)."""

    def set_calibration_due(self, work_unit: str, due_at: float) -> Answer:
        """Record the calibration due date of a work unit."""
        ...


@runtime_checkable
class AuditTrail(Protocol):
    """The MES records its refusals (rule, object, message)."""

    def refusals(self) -> list[Refusal]:
        """Every refusal recorded in the audit trail, oldest first."""
        ...


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the MES's audit trail, as cited in the report."""

    entry_id: str
    action: str
    object_ref: str
    at: str = ""
    entry_hash: str | None = None


@runtime_checkable
class AuditQuery(Protocol):
    """The MES's audit trail can be searched by action (and object)."""

    def audit_entries(self, action: str, object_ref: str | None = None) -> list[AuditRecord]:
        """Every entry of ``action`` (on ``object_ref`` when given), oldest first."""
        ...


@dataclass(frozen=True)
class SignatureRecord:
    """An electronic signature the MES recorded (21 CFR 11.50: signer, time, meaning)."""

    entry_id: str
    object_ref: str
    meaning: str
    manifestation: str
    binding_hash: str | None = None


@runtime_checkable
class Signatures(Protocol):
    """The MES records electronic signatures with their meaning."""

    def signatures(self) -> list[SignatureRecord]:
        """Every signature recorded, oldest first."""
        ...


@runtime_checkable
class SpcSource(Protocol):
    """The MES judges inspection results by SPC rules (Nelson rules 1-8)."""

    def spc_rules_fired(self, characteristic: str) -> dict[int, int] | None:
        """Per rule, how many results of the characteristic named ``characteristic``
        violated it; None when the MES has no characteristic of that name."""
        ...


@dataclass(frozen=True)
class StateChange:
    """One change of a job order's or lot's state in the history the MES recorded."""

    at: float
    """Plant seconds: the business time the MES recorded the change at."""
    state: str
    """The state from then on, in the MES's words."""
    evidence: str
    """Where the MES recorded it (an audit entry, a nonconformance), cited in the report."""


@runtime_checkable
class StateHistory(Protocol):
    """The MES keeps a history of job order and lot states (the ``state_at``
    expectation)."""

    def state_history(self, kind: str, ident: str) -> list[StateChange] | None:
        """Every change of the state of job order (``kind`` ``job_order``) or material lot
        (``lot``) ``ident`` the MES recorded on the plant's timeline, oldest first; None
        when the MES does not know it."""
        ...


@runtime_checkable
class LotStatus(Protocol):
    """The MES tells a material lot's status."""

    def lot_state(self, lot: str) -> str | None:
        """The status of a material lot (None when the MES does not know it)."""
        ...


@runtime_checkable
class KpiSource(Protocol):
    """The MES computes ISO 22400-2 KPIs."""

    def kpis(self, scope: str, ident: str, start: float, end: float) -> Kpis | None:
        """KPIs of a line or work unit (``scope`` ``line`` / ``work_unit``)."""
        ...


@runtime_checkable
class EventIngest(Protocol):
    """The MES takes plant events on a collector endpoint the bench can post to (the
    ``direct`` link) and counts what it ingested (the ``events`` expectation)."""

    def post_events(self, events: list[PlantEvent]) -> IngestResult:
        """Post plant events; raise ``SutUnavailable`` when the MES cannot be reached."""
        ...

    def ingest_stats(self) -> IngestStats:
        """Distinct plant events ingested and duplicates refused so far."""
        ...


@runtime_checkable
class ApiLatency(Protocol):
    """The adapter times its calls (the ``api_latency`` expectation)."""

    def latencies_ms(self) -> list[float]:
        """Latency of every API call this adapter made, in milliseconds."""
        ...


@runtime_checkable
class CatchUp(Protocol):
    """With ``link: opcua-external``: has the MES's own collector taken in what the plant
    published? Without it the runner compares ``records`` with the plant's counts."""

    def caught_up(self, until: float, expected: dict[str, UnitProgress]) -> bool:
        """True when the MES has recorded, per work unit, these cumulative counts
        published up to plant time ``until``."""
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


@runtime_checkable
class ConnectorTarget(Protocol):
    """The MES takes the bench's OPC UA connector (``link: opcua``): ``mestwin connect``
    subscribes to the twin behind the bench's fault proxy and posts to the MES's ingest
    endpoint (the wire contract of ``mes_core.schemas.plant_events``)."""

    def connector_target(self) -> tuple[str, str]:
        """The MES's base URL and an API key the connector posts plant events with."""
        ...


@runtime_checkable
class ProcessControl(Protocol):
    """The bench can kill the MES's process and start it again (``mes_restart``)."""

    def kill_process(self) -> str | None:
        """Kill the MES (SIGKILL); None when done, else why it cannot be done."""
        ...

    def restart_process(self) -> None:
        """Start the MES again on the same database (``wait_ready`` follows)."""
        ...


@runtime_checkable
class DatabaseLink(Protocol):
    """The bench can cut the MES's database connection (``database_unreachable``)."""

    def cut_database(self) -> str | None:
        """Cut it; None when done, else why it cannot be done."""
        ...

    def restore_database(self) -> None:
        """Restore it."""
        ...


@dataclass(frozen=True)
class RunControlAccess:
    """How dashboards beside a run reach its control channel (``twin.scenario.control``):
    the API's URL and bearer token (for the dashboards' process only), and the password
    the trainer types at the trainer console."""

    url: str
    token: str = field(repr=False)
    trainer_password: str = field(repr=False)


@runtime_checkable
class Dashboards(Protocol):
    """The MES has live dashboards the bench can serve beside a run (``--dashboard``)."""

    def start_dashboard(
        self, port: int, control: RunControlAccess | None = None, host: str = "127.0.0.1"
    ) -> str:
        """Start them on ``host:port`` (port 0: any free one); their URL. With ``control``
        they get the trainer console and post trainees' actions to the run's session
        record."""
        ...

    def stop_dashboard(self) -> None:
        """Stop them."""
        ...


CAPABILITIES: dict[str, tuple[type, str]] = {
    "dispatching": (Dispatching, "job dispatching by the supervisor"),
    "operator_actions": (OperatorActions, "operation starts, completions and lot scans"),
    "quality_holds": (QualityHolds, "holds and QA dispositions"),
    "hold_reasons": (HoldReasons, "the reason it names for a hold"),
    "calibration": (Calibration, "calibration due dates"),
    "audit_trail": (AuditTrail, "refusals in an audit trail"),
    "audit_query": (AuditQuery, "a searchable audit trail"),
    "spc": (SpcSource, "SPC rule verdicts on inspection results"),
    "signatures": (Signatures, "electronic signatures with their meaning"),
    "lot_status": (LotStatus, "material lot status"),
    "state_history": (StateHistory, "history of job order and lot states"),
    "kpis": (KpiSource, "ISO 22400-2 KPIs"),
    "event_ingest": (EventIngest, "a collector endpoint for plant events"),
    "api_latency": (ApiLatency, "timed API calls"),
    "caught_up": (CatchUp, "telling when its own collector has caught up"),
    "connector_target": (ConnectorTarget, "an ingest endpoint for the bench's connector"),
    "process_control": (ProcessControl, "killing and restarting its process"),
    "database_link": (DatabaseLink, "cutting its database connection"),
    "dashboards": (Dashboards, "live dashboards"),
    "labour": (LabourCapability, "attendance and labour bookings"),
}
"""Optional capabilities: name -> (Protocol, what it is, for the report's reasons)."""


def supports(sut: object, capability: str) -> bool:
    """Does ``sut`` implement the optional ``capability`` (a key of CAPABILITIES)?"""
    return isinstance(sut, CAPABILITIES[capability][0])


def missing(capability: str, adapter: str) -> str:
    """The reason the report gives when adapter ``adapter`` lacks ``capability``."""
    return f"the {adapter} adapter offers no {CAPABILITIES[capability][1]} ({capability})"


def capabilities(sut: object) -> list[str]:
    """The optional capabilities ``sut`` implements, in CAPABILITIES' order."""
    return [name for name in CAPABILITIES if supports(sut, name)]
