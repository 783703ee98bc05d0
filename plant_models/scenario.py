"""Scenario definitions: what a validation run does to the plant and the MES, and what it expects.

A scenario (YAML, see ``plant_models/scenarios/``) names a plant model, a simulated
duration, a seed and a speed; the ERP order stream; the simulated people and how they
behave; a timeline of injected faults (equipment, network, process) and deviations (things
the MES must refuse or catch); and the expectations checked at the end.

Times and durations are seconds of *simulated* time, written as a number or as a string of
units: ``"90s"``, ``"15m"``, ``"8h"``, ``"1h30m"``, ``"2d"``.

Load with :func:`load_scenario`; every error names the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from plant_models.durations import parse_duration
from plant_models.expression import validate as validate_expression
from plant_models.scenario_yaml import DocumentError, FieldProblem, load_document

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- ERP order stream -------------------------------------------------------------------


class OrderSpec(_Strict):
    """One job order the simulated ERP sends (B2MML ProcessOperationsSchedule / REST)."""

    id: Name
    product: Name
    quantity: Annotated[int, Field(gt=0)]
    release_at: Seconds = 0.0
    due: Seconds | None = None
    priority: Annotated[int, Field(ge=0, le=1000)] = 500


class OrderGenerator(_Strict):
    """A repeating order: ``count`` orders of ``product`` every ``every``, from ``start``."""

    prefix: Name = "JO"
    product: Name
    quantity: Annotated[int, Field(gt=0)]
    every: PositiveSeconds
    start: Seconds = 0.0
    count: Annotated[int, Field(gt=0, le=100_000)]


class ErpSpec(_Strict):
    """The order stream: the plant model's own job orders (``plant_orders``, the default),
    plus explicit and generated ones."""

    plant_orders: bool = True
    orders: list[OrderSpec] = []
    generate: list[OrderGenerator] = []

    def expand(self) -> list[OrderSpec]:
        """Every order of the stream, sorted by release time (then id)."""
        out = list(self.orders)
        for gen in self.generate:
            for i in range(gen.count):
                out.append(
                    OrderSpec(
                        id=f"{gen.prefix}-{i + 1:04d}",
                        product=gen.product,
                        quantity=gen.quantity,
                        release_at=gen.start + i * gen.every,
                    )
                )
        return sorted(out, key=lambda o: (o.release_at, o.id))


# --- people -----------------------------------------------------------------------------


class PersonBehaviour(_Strict):
    """How a simulated person acts: reaction delays in simulated seconds."""

    reaction: Seconds = 30.0
    """Delay between a job becoming actionable and the person acting on it."""
    qa_disposition: Literal["release", "rework", "scrap"] = "release"
    """What QA decides for a lot on hold (only QA signs, with a reason)."""


class PersonSpec(_Strict):
    """A simulated person: ``id`` is their personnel id in the MES master data."""

    id: Name
    role: Literal["operator", "supervisor", "qa"]
    password: Annotated[str, Field(min_length=1)] = "mestwin"
    behaviour: PersonBehaviour = PersonBehaviour()


# --- timeline: faults ---------------------------------------------------------------------


class _Fault(_Strict):
    optional: bool = False
    """A fault the bench cannot inject fails the scenario unless it is ``optional`` (e.g.
    ``database_unreachable`` on an embedded database): then the report only notes it."""


class Breakdown(_Fault):
    """A work unit breaks down at ``at`` for ``duration`` (ISO 22400 unplanned downtime)."""

    type: Literal["breakdown"]
    at: Seconds
    work_unit: Name
    duration: PositiveSeconds
    reason: str = "injected breakdown"


class RandomBreakdowns(_Fault):
    """Breakdowns drawn from exponential distributions (seeded): mean time between failures
    ``mtbf`` and mean time to repair ``mttr``, between ``start`` and ``end``."""

    type: Literal["random_breakdowns"]
    work_unit: Name
    mtbf: PositiveSeconds
    mttr: PositiveSeconds
    start: Seconds = 0.0
    end: Seconds | None = None


class OpcUaDrop(_Fault):
    """The OPC UA link between connector and server is cut for ``duration``."""

    type: Literal["opcua_drop"]
    at: Seconds
    duration: PositiveSeconds


class OpcUaServerRestart(_Fault):
    """The twin's OPC UA server stops and starts again after ``downtime``."""

    type: Literal["opcua_server_restart"]
    at: Seconds
    downtime: Seconds = 5.0


class MesRestart(_Fault):
    """The MES process is killed (SIGKILL) and started again on the same database."""

    type: Literal["mes_restart"]
    at: Seconds
    downtime: Seconds = 0.0


class DatabaseUnreachable(_Fault):
    """The MES's database connection is cut for ``duration`` (PostgreSQL: a TCP proxy)."""

    type: Literal["database_unreachable"]
    at: Seconds
    duration: PositiveSeconds


# --- timeline: deviations (the MES must refuse or catch them) ---------------------------


Trigger = Literal["operation_startable", "operation_running", "lot_consumed", "on_hold"]


class _Deviation(_Strict):
    name: Name
    """The deviation's name, referred to by ``deviation_refused`` expectations."""
    optional: bool = False
    """A deviation the bench cannot inject (or whose outcome it cannot see) fails the
    scenario unless it is ``optional``."""
    at: Seconds = 0.0
    """When it is injected; with ``when``, the earliest moment it may be."""
    when: Trigger | None = None
    """Inject it on an event instead of at a time, so it tests the rule it names:
    ``operation_startable`` (the machine took the order's first unit at the operation's
    work unit, the predecessor's good units are in, nobody started it yet),
    ``operation_running`` (started in the MES, not completed), ``lot_consumed`` (the
    machine drew a lot for the operation). Restricted to ``order`` / ``operation`` when
    given, else the first operation the event happens to after ``at``. An
    ``out_of_sequence_start`` on ``operation_startable`` fires when an earlier operation
    of its order can start (the order released, ``operation``'s predecessors not done).
    ``on_hold``: something awaits QA's disposition (on ``order`` when given), for an
    ``uncertified_operator`` who signs it."""
    order: Name | None = None
    """The job order it targets (default: the first running order)."""
    operation: Name | None = None
    """The operation segment it targets (default: the order's first one)."""

    @model_validator(mode="before")
    @classmethod
    def _at_or_when(cls, data: Any) -> Any:
        if isinstance(data, dict) and "at" not in data and "when" not in data:
            raise ValueError("give at (a time), when (an event), or both")
        return data


class WrongLot(_Deviation):
    """An operator offers a lot of a material that is not on the operation's BOM (rule 2)."""

    type: Literal["wrong_lot"]
    lot: Name
    quantity: Annotated[float, Field(gt=0)] = 1.0


class ExpiredLot(_Deviation):
    """An operator offers an expired lot for consumption (rule 2)."""

    type: Literal["expired_lot"]
    lot: Name
    quantity: Annotated[float, Field(gt=0)] = 1.0


class UncertifiedOperator(_Deviation):
    """A person without a valid certification tries to start an operation or sign (rule 3)."""

    type: Literal["uncertified_operator"]
    person: Name
    action: Literal["start", "sign"] = "start"


class OutOfSequenceStart(_Deviation):
    """An operation is started before its predecessors are complete (rule 1)."""

    type: Literal["out_of_sequence_start"]


class ProcessDrift(_Deviation):
    """A process value drifts out of spec: the lot and job order must go on hold (rule 5)."""

    type: Literal["process_drift"]
    work_unit: Name
    value: Name
    """Process value / inspection characteristic that drifts."""
    rate: float
    """Drift in engineering units per simulated hour (signed)."""
    duration: PositiveSeconds = 3600.0


class OutOfCalibration(_Deviation):
    """A work unit's calibration lapses; work must not start on it (rule 4)."""

    type: Literal["out_of_calibration"]
    work_unit: Name


Fault = (
    Breakdown | RandomBreakdowns | OpcUaDrop | OpcUaServerRestart | MesRestart | DatabaseUnreachable
)
Deviation = (
    WrongLot
    | ExpiredLot
    | UncertifiedOperator
    | OutOfSequenceStart
    | ProcessDrift
    | OutOfCalibration
)
TimelineEntry = Annotated[Fault | Deviation, Field(discriminator="type")]
DEVIATION_TYPES = (
    WrongLot,
    ExpiredLot,
    UncertifiedOperator,
    OutOfSequenceStart,
    ProcessDrift,
    OutOfCalibration,
)


# --- expectations ---------------------------------------------------------------------------


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


RequirementId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$", examples=["URS-014"])
]
RiskClass = Literal["high", "medium", "low"]
"""GAMP 5 risk class of what a requirement guards (severity x probability x detectability,
reduced to the three classes a test plan records)."""


class _Expectation(_Strict):
    name: Name | None = None
    """Shown in the report and as the JUnit test case name (default: derived)."""
    requirement: Annotated[list[RequirementId], BeforeValidator(_one_or_many)] = []
    """Requirement ids (URS, FS...) this expectation verifies: one id or a list. The
    report's traceability matrix goes requirement -> expectations -> evidence -> verdict."""
    risk: RiskClass | None = None
    """Risk class of the requirement(s), for a reviewer's risk-based assurance."""


class AllOrdersCompleted(_Expectation):
    """Every job order of the stream reached completed (or closed)."""

    type: Literal["all_orders_completed"]


class OrderInState(_Expectation):
    """A job order ends in ``state`` (planned, released, dispatched, running, completed,
    closed, held, aborted)."""

    type: Literal["order_state"]
    order: Name
    state: Name


class LotInState(_Expectation):
    """A material lot ends in ``state`` (available, quarantine, on_hold, consumed, released,
    rejected)."""

    type: Literal["lot_state"]
    lot: Name
    state: Name


class DeviationRefused(_Expectation):
    """The named deviation was refused (or caught) by the MES naming ``rule``
    (substring match on the rule the MES names)."""

    type: Literal["deviation_refused"]
    deviation: Name
    rule: Name | None = None
    recorded: bool = True
    """Also require the refusal in the MES's audit trail (every refusal is recorded)."""


class _Bounds(_Expectation):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> _Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class OeeWithin(_Bounds):
    """OEE (ISO 22400-2, 0..1) of ``line`` (or of one ``work_unit``) within bounds."""

    type: Literal["oee"]
    line: Name | None = None
    work_unit: Name | None = None


class ThroughputWithin(_Bounds):
    """Throughput of ``line`` in good units per simulated hour within bounds."""

    type: Literal["throughput"]
    line: Name


class ReconciliationExact(_Expectation):
    """Every reconciliation row matches (counts exactly, durations within tolerance)."""

    type: Literal["reconciliation_exact"]


class MirrorExact(_Expectation):
    """The second consumer of a ``mirror`` (a subscriber of the unified namespace) ends
    the run with every work unit's cumulative counters equal to the twin's ground truth."""

    type: Literal["mirror_exact"]


class EventsLossWithin(_Expectation):
    """At most ``max_lost`` events lost and ``max_duplicated`` counted twice."""

    type: Literal["events"]
    max_lost: Annotated[int, Field(ge=0)] = 0
    max_duplicated: Annotated[int, Field(ge=0)] = 0


class ApiLatencyWithin(_Expectation):
    """The MES API's latency seen by the bench's people and ERP (milliseconds)."""

    type: Literal["api_latency"]
    p50_ms: Annotated[float, Field(gt=0)] | None = None
    p95_ms: Annotated[float, Field(gt=0)] | None = None
    p99_ms: Annotated[float, Field(gt=0)] | None = None


class GenealogyLink(_Expectation):
    """The MES's genealogy leads (``present: true``) or does not lead (``false``) from
    ``from_lot`` to ``to_lot`` at any depth, through intermediate lots (ISA-95 material lot
    genealogy: a recall traces every level)."""

    type: Literal["genealogy_link"]
    from_lot: Name
    to_lot: Name
    present: bool = True


class LabourHoursWithin(_Bounds):
    """Labour hours the MES booked on job order ``order`` within bounds."""

    type: Literal["labour_hours"]
    order: Name


class AuditEntryExists(_Expectation):
    """The MES's audit trail holds at least ``min_count`` entries of ``action`` (e.g.
    ``refused``, ``nonconformance.disposed``), on ``object`` when given
    (e.g. ``job_order:JO-1``)."""

    type: Literal["audit_entry"]
    action: Name
    object: Name | None = None
    min_count: Annotated[int, Field(ge=1)] = 1


class SpcRuleFired(_Expectation):
    """The MES flagged at least ``min_count`` results of inspection characteristic
    ``characteristic`` (its name) by Nelson rule ``rule`` (1-8; any rule when omitted)."""

    type: Literal["spc_rule"]
    characteristic: Name
    rule: Annotated[int, Field(ge=1, le=8)] | None = None
    min_count: Annotated[int, Field(ge=1)] = 1


class SignatureExists(_Expectation):
    """At least ``min_count`` electronic signatures with ``meaning`` (e.g. approval,
    review, responsibility; 21 CFR 11.50) recorded by the MES, on ``object`` when given."""

    type: Literal["signature"]
    meaning: Name
    object: Name | None = None
    min_count: Annotated[int, Field(ge=1)] = 1


class StateAt(_Expectation):
    """Job order ``order`` or material lot ``lot`` (one of the two) was in ``state`` at plant
    time ``at`` (seconds, or a duration such as ``6h45m``, from the plant's start), as the
    state history the MES recorded tells it: e.g. a job order ``held`` while QA looked at a
    nonconformance, a lot ``consumed`` once the batch took it."""

    type: Literal["state_at"]
    order: Name | None = None
    lot: Name | None = None
    at: Seconds
    state: Name

    @model_validator(mode="after")
    def _one_object(self) -> StateAt:
        if (self.order is None) == (self.lot is None):
            raise ValueError("give order or lot (one of the two)")
        return self


class ExpressionHolds(_Expectation):
    """A condition over the run's figures in a small safe language
    (``plant_models.expression``), e.g. ``events.lost == 0 and kpi('BTL1', 'oee') > 0.5``."""

    type: Literal["expression"]
    expr: Annotated[str, AfterValidator(validate_expression)]


Expectation = Annotated[
    AllOrdersCompleted
    | OrderInState
    | LotInState
    | DeviationRefused
    | OeeWithin
    | ThroughputWithin
    | ReconciliationExact
    | MirrorExact
    | EventsLossWithin
    | ApiLatencyWithin
    | GenealogyLink
    | LabourHoursWithin
    | AuditEntryExists
    | SpcRuleFired
    | SignatureExists
    | StateAt
    | ExpressionHolds,
    Field(discriminator="type"),
]


class ReconciliationSettings(_Strict):
    """Tolerances of the reconciliation. Counts are always compared exactly; state
    durations allow ``duration_tolerance`` seconds per work unit and state, since timestamps
    travel with millisecond resolution and the last state is cut at the end of the run."""

    duration_tolerance: Seconds = 1.0
    compare_state_durations: bool = True


class SystemUnderTestSpec(BaseModel):
    """The MES a scenario runs against: an adapter name (``mes_core``, ``tryton``, or any
    installed under the ``mestwin.sut_adapters`` entry point group) and that adapter's own
    settings, which the adapter checks."""

    model_config = ConfigDict(extra="allow", frozen=True)

    adapter: Name = "mes_core"

    def settings(self) -> dict[str, Any]:
        """Everything but ``adapter``: the adapter's own settings."""
        return dict(self.model_extra or {})


class Scenario(_Strict):
    """A validation scenario (see the module docstring)."""

    name: Name
    description: str = ""
    plant: Name
    """Plant model: a path relative to this file, or the name of a shipped model."""
    duration: PositiveSeconds
    seed: int = 0
    speed: float | Literal["max"] = "max"
    """Simulated seconds per wall second, or ``max`` (as fast as possible)."""
    system_under_test: SystemUnderTestSpec = SystemUnderTestSpec()
    """The MES under test (default: the bench's own ``mes_core``)."""
    link: Literal["opcua", "opcua-external", "sparkplug", "direct"] = "opcua"
    """How equipment traffic reaches the MES: ``opcua`` (twin OPC UA server -> fault
    proxy -> ``mestwin connect``), ``opcua-external`` (the twin serves OPC UA and the MES
    subscribes with its own collector; the bench starts none), ``sparkplug`` (twin
    Sparkplug B edge nodes -> MQTT broker -> fault proxy -> ``mestwin connect
    --sparkplug``; the link faults cut the proxy or restart the broker) or ``direct`` (the
    in-process stand-in collector)."""
    mirror: Literal["sparkplug"] | None = None
    """Publish the plant a second time, to a second consumer beside the MES's ``link``:
    ``sparkplug`` serves it as Sparkplug B edge nodes on an MQTT broker of the run's own,
    where a subscriber of the unified namespace (a historian's view: a host application
    that is not the primary one) keeps every device metric; the report's ``mirror``
    reconciles its final counters per work unit with the twin's, ``mirror_exact`` expects
    them equal. The link's faults do not touch it."""
    tick: PositiveSeconds = 120.0
    """How often (simulated seconds) the bench's people look at their terminals and the
    collector delivers plant events: their reaction delays are rounded up to it."""
    settle: Seconds = 7200.0
    """After the plant stops (at ``duration + drain``) the people close out for up to this
    long: QA disposes what is still on hold, operators book their lots and complete what
    the plant finished. The plant makes nothing more meanwhile."""
    drain: Seconds = 0.0
    """Extra simulated time after ``duration`` in which no new orders are released, so
    running orders can finish before the expectations are checked."""
    erp: ErpSpec = ErpSpec()
    people: list[PersonSpec] = []
    timeline: list[TimelineEntry] = []
    expectations: list[Expectation] = []
    reconciliation: ReconciliationSettings = ReconciliationSettings()

    @field_validator("mirror")
    @classmethod
    def _mirror_beside_the_link(cls, mirror: str | None, info: ValidationInfo) -> str | None:
        link = info.data.get("link")
        if mirror is not None and link == mirror:
            raise ValueError(
                f"link is {link} already: the mirror is a second consumer beside the MES's "
                "link (use link: opcua, opcua-external or direct)"
            )
        return mirror

    @field_validator("expectations")
    @classmethod
    def _mirror_to_check(cls, expectations: list[Any], info: ValidationInfo) -> list[Any]:
        if "mirror" in info.data and info.data["mirror"] is None:
            for i, exp in enumerate(expectations):
                if isinstance(exp, MirrorExact):
                    raise ValueError(
                        f"expectation {i} (mirror_exact) needs a mirror: add mirror: sparkplug"
                    )
        return expectations

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if isinstance(self.speed, float | int) and self.speed <= 0:
            raise ValueError("speed must be > 0 or 'max'")
        ids = [o.id for o in self.erp.expand()]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"order ids repeat: {', '.join(dup)}")
        names = [e.name for e in self.timeline if isinstance(e, DEVIATION_TYPES)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"deviation names repeat: {', '.join(dup)}")
        for exp in self.expectations:
            if isinstance(exp, DeviationRefused) and exp.deviation not in names:
                raise ValueError(
                    f"expectation refers to deviation {exp.deviation!r}, which the timeline "
                    "does not inject"
                )
        end = self.duration + self.drain
        for entry in self.timeline:
            at = getattr(entry, "at", None)
            if at is not None and at > end:
                raise ValueError(f"timeline entry {entry.type} at {at:g}s is after the end")
        return self

    @property
    def deviations(self) -> list[Deviation]:
        """The deviations of the timeline, in file order."""
        return [e for e in self.timeline if isinstance(e, DEVIATION_TYPES)]

    @property
    def faults(self) -> list[Fault]:
        """The faults of the timeline, in file order."""
        return [e for e in self.timeline if not isinstance(e, DEVIATION_TYPES)]


SCENARIOS_DIR = Path(__file__).parent / "scenarios"


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped with the bench."""
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def load_scenario(path: Path | str) -> Scenario:
    """Load and validate a scenario file; raises ``DocumentError`` naming file/line/field."""
    return load_document(Path(path), Scenario)


def resolve_plant(scenario: Scenario, scenario_path: Path) -> Path:
    """The plant model file a scenario names: relative to the scenario, else shipped."""
    candidates = [
        (scenario_path.parent / scenario.plant),
        (scenario_path.parent / f"{scenario.plant}.yaml"),
        Path(__file__).parent / scenario.plant,
        Path(__file__).parent / f"{scenario.plant}.yaml",
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise DocumentError(
        [
            FieldProblem(
                str(scenario_path),
                _plant_line(scenario_path),
                "plant",
                f"no plant model {scenario.plant!r} next to the scenario or shipped",
            )
        ]
    )


def _plant_line(path: Path) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("plant:"):
            return i
    return 1
