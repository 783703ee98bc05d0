"""The plant model: what a YAML file in ``plant_models/`` may say, as pydantic v2 models.

Names follow ISA-95 (IEC 62264) so that the mapping to the MES master data is obvious:

- equipment hierarchy (IEC 62264-1, 5.3 "Role-based equipment hierarchy"): the plant is the
  site, ``lines`` are production lines, ``work_units`` are work units with an
  ``equipment_class``; buffers and conveyors sit between consecutive work units of a line;
- material model (IEC 62264-1, 5.6): ``materials`` are material definitions and
  ``material_lots`` their lots (some deliberately wrong, expired or short);
- product definition and operations definition (IEC 62264-2, 5.x "operations definition
  model"): each product names its line and its ordered ``segments`` (operation segments)
  with equipment class, standard run time per unit (ISO 22400-2 PRU), skill, bill of
  material and inspection characteristics;
- personnel model (IEC 62264-1, 5.5): ``operators`` with skills, certifications (with
  expiry) and a shift calendar;
- ``order_stream``: the job orders that ERP sends (IEC 62264-1 production schedule).

Unknown keys are errors (``extra="forbid"``). Cross references (a product's line, a
segment's equipment class, an operator's calendar...) are checked by
``plant_models.references.reference_problems``; ``plant_models.loader.load_plant_model``
reports every problem with file, line, column and field path.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from plant_models.batch import Batch
from plant_models.distributions import Distribution
from plant_models.durations import Duration

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
"""An identifier: letters, digits, ``_``, ``.``, ``-``; also the OPC UA browse name."""

Probability = Annotated[float, Field(ge=0.0, lt=1.0)]

Loc = tuple[str | int, ...]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------
# Equipment: lines, work units, buffers
# ---------------------------------------------------------------------------------------


class FailureMode(_Model):
    """A way a work unit breaks down.

    ``basis`` ``clock``: time to failure runs on the calendar, whatever the work unit is
    doing (time-dependent failures). ``operating``: it runs only while the work unit is
    running (operation-dependent failures), as in the classic serial-line results.
    """

    name: Annotated[str, Field(min_length=1, max_length=100)]
    basis: Literal["clock", "operating"] = "operating"
    time_to_failure: Distribution
    time_to_repair: Distribution
    severity: Annotated[int, Field(ge=1, le=1000)] = 800
    reason: str = ""


class Setup(_Model):
    """Setup / changeover when the job order at the work unit changes.

    ``changeover`` applies when the product changes (and before the first job);
    ``per_product`` overrides it for changeovers *into* a product; ``same_product``, when
    given, applies when only the job order changes.
    """

    changeover: Distribution
    per_product: dict[str, Distribution] = Field(default_factory=dict)
    same_product: Distribution | None = None


class ProcessValue(_Model):
    """A process value the work unit exposes (temperature, fill weight...).

    Sampled every ``update_period`` seconds from ``distribution`` plus
    ``drift_per_hour`` x hours since start; while the work unit runs (or last ran) a
    product named in ``per_product``, from that product's distribution instead (a tablet
    press makes 400 mg tablets of one product and 500 mg of another). ``characteristic``
    ties it to an inspection characteristic of the operation segment run on this work
    unit: for every product whose segment inspects it, the value's distribution for that
    product must lie within the characteristic's spec limits (``reference_problems``), so a
    clean run makes in-spec product and only a drift or a fault makes it out of spec. A
    sample is published only when it differs from the last published one by more than
    ``deadband`` (OPC UA absolute deadband; 0: any change), so only what changed is written.
    """

    name: Annotated[str, Field(min_length=1, max_length=100)]
    unit: str = ""
    distribution: Distribution
    per_product: dict[str, Distribution] = Field(default_factory=dict)
    drift_per_hour: float = 0.0
    update_period: Annotated[Duration, Field(gt=0)] = 1.0
    eu_range: tuple[float, float] | None = None
    deadband: Annotated[float, Field(ge=0)] = 0.0
    characteristic: str | None = None

    @model_validator(mode="after")
    def _range(self) -> ProcessValue:
        if self.eu_range is not None and self.eu_range[0] >= self.eu_range[1]:
            raise ValueError("eu_range must be [low, high] with low < high")
        return self


class ValueRule(_Model):
    """An inspection by a process value of the work unit: the unit fails when the value's
    latest sample, when its cycle ends, lies outside [``low``, ``high``]."""

    value: Annotated[str, Field(min_length=1, max_length=100)]
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ValueRule:
        if self.low is None and self.high is None:
            raise ValueError("give low, high or both")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("expected low < high")
        return self


class Rework(_Model):
    """Routing by outcome: a unit that fails this work unit's inspection goes back to the
    station ``to`` (this one or an earlier one, not the line's first) and is worked again
    from there; it fails with ``probability`` or by a process-value ``rule`` (one of the
    two). Scrap is drawn first (``scrap_probability``); a unit not scrapped may then fail.

    Visits are counted where they happen: every pass through a work unit counts in its
    processed count (PackML ``ProdProcessedCount``), so a unit reworked once counts twice
    at each work unit of the loop, and a failed inspection is a processed, not a defective,
    unit at the inspecting work unit (the unit is not lost). The loop returns without
    blocking: a reworked unit enters the target's input buffer even when it is full (a
    rework cart beside it), so a loop cannot deadlock. The last station cannot send units
    to rework: its good count is the job order's output.
    """

    to: Code
    probability: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    rule: ValueRule | None = None

    @model_validator(mode="after")
    def _one(self) -> Rework:
        if (self.probability is None) == (self.rule is None):
            raise ValueError("give exactly one of probability or rule")
        return self


class AssemblyInput(_Model):
    """One input of an assembly station: ``quantity`` parts from ``buffer``, whose upstream
    is the last station of a feeder branch (or a capacity-0 buffer: a direct hand-off)."""

    buffer: Code
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1


class Assembly(_Model):
    """An assembly (merge) station: each cycle takes ``quantity`` parts from every input
    buffer at once, when all are there, and makes one assembled unit (a kit of parts and
    sub-assemblies joined into one; ``plant_models.assembly`` has the flow rules).

    The parts stay in their buffers until the kit is complete (the assembly is starved
    meanwhile), so a feeder is blocked only by its own full buffer. The assembled unit
    belongs to the job order of its first input's part; its material (screws, labels...)
    is consumed per the assembly's operation segment's bill of material, once per
    assembled unit, and every feeder consumes its own segment's per part, so the job
    order's output lot traces back to the lots of every input (ISA-95 genealogy).
    """

    inputs: Annotated[list[AssemblyInput], Field(min_length=2, max_length=20)]


class WorkUnit(_Model):
    """A machine: ISA-95 work unit of an equipment class, with a ``cycle_time`` per unit,
    or a batch unit whose cycle is its ``batch``'s phases (ISA-88, ``plant_models.batch``)."""

    code: Code
    name: str = ""
    equipment_class: Annotated[str, Field(min_length=1, max_length=100)]
    cycle_time: Distribution | None = None
    batch: Batch | None = None
    """A batch work unit: each unit is a batch run through these phases (no ``cycle_time``)."""
    setup: Setup | None = None
    failures: list[FailureMode] = Field(default_factory=list)
    scrap_probability: Probability = 0.0
    process_values: list[ProcessValue] = Field(default_factory=list)
    operator_skill: str | None = None
    """When set, the work unit needs an operator with this skill (``operator_attends``)."""
    operator_attends: Literal["shift", "cycle"] = "shift"
    """``shift``: the work unit runs while someone with the skill is on shift on its line (a
    crew minds it). ``cycle``: each cycle and each setup takes one person with the skill
    from the line's pool (the operators on shift, each attending one work unit at a time,
    shared by every work unit that needs the skill) and frees them at its end; a work unit
    waiting for one is ``idle`` ("waiting for an operator"), which the ledger and the MES
    record as a state."""
    rework: Rework | None = None
    """A failed inspection sends the unit back to a named station (``Rework``)."""
    station: Code | None = None
    """Parallel work units: consecutive work units of a line with the same ``station`` form
    one station of c servers (identical or not: each has its own cycle time, failures,
    values) sharing the station's input and output buffers; the first free one takes the
    next unit (first come, first served). Each keeps its own identity (OPC UA node, MES
    work unit, counts); an operation segment of the station's equipment class runs on all
    of them. Buffers name the station by this code."""
    assembly: Assembly | None = None
    """An assembly (merge) station fed by several feeder branches (``Assembly``)."""

    @model_validator(mode="after")
    def _cycle_or_batch(self) -> WorkUnit:
        if (self.cycle_time is None) == (self.batch is None):
            raise ValueError("give exactly one of cycle_time or batch")
        return self

    def mean_cycle_time(self) -> float:
        """The mean time a unit spends in service here (a batch: its phases added up)."""
        if self.batch is not None:
            return self.batch.mean_duration()
        assert self.cycle_time is not None  # ``_cycle_or_batch``
        return self.cycle_time.mean()


class Buffer(_Model):
    """A buffer (or conveyor, when ``transfer_time`` is given) between two stations: two
    consecutive work units, or a parallel station (``WorkUnit.station``) by its code.

    ``capacity`` counts the units it holds, those in transit on a conveyor included;
    ``capacity: 0`` is a direct hand-off, the same as leaving the buffer out: the upstream
    unit is blocked after service until a downstream one takes the unit.

    Blocking is *after service* (a machine that cannot pass its unit on holds it, state
    ``blocked``), so two machines with a buffer of C between them hold at most C + 2
    units. A broken machine holds its part until it is repaired: it neither hands a
    finished unit on (a breakdown while blocked keeps the unit on the machine even when
    room opens downstream) nor takes a new one (a machine starved when it breaks leaves
    arriving units in the buffer). This is the usual convention of the blocking and
    serial-line literature (Buzacott and Shanthikumar 1993; Gershwin 1994: a failed
    machine neither produces nor passes parts), which the validation tests assume.
    """

    code: Code
    upstream: Code
    downstream: Code
    capacity: Annotated[int, Field(ge=0, le=1_000_000)]
    transfer_time: Distribution | None = None
    products: list[Code] | None = None
    """Routing by product (a split): units of these products leave the upstream station by
    this buffer, which may lead to any later station; at a split the one buffer without
    ``products`` takes the others. ``plant_models.splits`` has the flow rules."""


class Arrivals(_Model):
    """Units arriving at the line from outside (an open line), e.g. Poisson for M/M/1.

    Without ``arrivals`` the first work unit is never short of raw units (a saturated
    line); units still need a job order (or ``continuous_product``) to start.
    """

    interarrival: Distribution
    capacity: Annotated[int, Field(ge=1)] | None = None


class Line(_Model):
    """A production line: work units in flow order, buffers between them."""

    code: Code
    name: str = ""
    work_units: Annotated[list[WorkUnit], Field(min_length=1)]
    buffers: list[Buffer] = Field(default_factory=list)
    arrivals: Arrivals | None = None
    continuous_product: str | None = None
    """When set, the line runs this product without job orders (for studies and tests)."""


# ---------------------------------------------------------------------------------------
# Material, products and operations definitions
# ---------------------------------------------------------------------------------------


class MaterialDefinition(_Model):
    """ISA-95 material definition."""

    id: Code
    name: str = ""
    unit: str = "ea"
    unlimited_supply: bool = False
    """When true the twin draws it from a bulk lot ``<id>-BULK`` that never runs out."""


LotStatus = Literal["available", "quarantine", "on_hold", "consumed", "released", "rejected"]


class MaterialLot(_Model):
    """ISA-95 material lot. ``deviation`` marks lots placed on purpose for a scenario."""

    id: Code
    material: Code
    quantity: Annotated[float, Field(ge=0)]
    status: LotStatus = "available"
    expiry: date | None = None
    deviation: Literal["none", "wrong_material", "expired", "short"] = "none"
    note: str = ""
    line: Code | None = None
    """The line where the lot is staged (None: any line)."""


class MaterialRequirement(_Model):
    """A bill-of-material item of an operation segment (ISA-95 material specification)."""

    material: Code
    quantity_per_unit: Annotated[float, Field(gt=0)]


class Sampling(_Model):
    """How often a characteristic is measured: every ``every_units`` units or
    ``every_seconds`` seconds (one of the two)."""

    every_units: Annotated[int, Field(ge=1)] | None = None
    every_seconds: Annotated[Duration, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Sampling:
        if (self.every_units is None) == (self.every_seconds is None):
            raise ValueError("give exactly one of every_units or every_seconds")
        return self


class InspectionCharacteristic(_Model):
    """A quality characteristic with spec limits (ISA-95 quality test specification)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    lsl: float | None = None
    target: float
    usl: float | None = None
    unit: str = ""
    sampling: Sampling

    @model_validator(mode="after")
    def _limits(self) -> InspectionCharacteristic:
        if self.lsl is not None and self.lsl > self.target:
            raise ValueError("expected lsl <= target")
        if self.usl is not None and self.usl < self.target:
            raise ValueError("expected target <= usl")
        return self


class OperationSegment(_Model):
    """ISA-95 operation segment of a product's operations definition (its routing)."""

    id: Code
    name: str = ""
    equipment_class: Annotated[str, Field(min_length=1)]
    standard_run_time: Annotated[Duration, Field(gt=0)]
    """Planned run time per unit in seconds (ISO 22400-2 PRU)."""
    skill: str | None = None
    materials: list[MaterialRequirement] = Field(default_factory=list)
    inspections: list[InspectionCharacteristic] = Field(default_factory=list)
    partial_start: bool = False
    """May start while the predecessor is still running (partial quantities)."""
    output_material: Code | None = None
    """An intermediate material this operation produces (granulate, blend): completing the
    operation names an output lot of it (``intermediate_lot``), which the next operation
    consumes (ISA-95 material produced / consumed). None on the last segment, whose output
    is the product's material."""


class Product(_Model):
    """A product (ISA-95 product definition) with its operations definition."""

    id: Code
    name: str = ""
    material: Code
    """The material definition the finished lots are of."""
    line: Code
    segments: Annotated[list[OperationSegment], Field(min_length=1)]


# ---------------------------------------------------------------------------------------
# Personnel
# ---------------------------------------------------------------------------------------

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Break(_Model):
    """A break within a shift, as wall-clock times of day."""

    start: time
    end: time


class Shift(_Model):
    """A shift: ``start`` to ``end`` (crossing midnight when end <= start) on ``days``."""

    name: Annotated[str, Field(min_length=1)]
    start: time
    end: time
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    breaks: list[Break] = Field(default_factory=list)


class ShiftCalendar(_Model):
    """A named set of shifts (e.g. three-shift operation)."""

    id: Code
    shifts: Annotated[list[Shift], Field(min_length=1)]


class Certification(_Model):
    """A certification for a skill, valid until ``expires`` (inclusive)."""

    skill: Annotated[str, Field(min_length=1)]
    expires: date


class Operator(_Model):
    """ISA-95 person with skills (qualifications) and certifications."""

    id: Code
    name: str = ""
    skills: list[str] = Field(default_factory=list)
    certifications: list[Certification] = Field(default_factory=list)
    calendar: Code
    shift: str | None = None
    """Which shift of the calendar the person works (None: all of them)."""
    lines: list[Code] = Field(default_factory=list)
    """Lines the person may staff (empty: every line)."""
    roles: list[str] = Field(default_factory=lambda: ["operator"])


# ---------------------------------------------------------------------------------------
# ERP order stream
# ---------------------------------------------------------------------------------------


class JobOrder(_Model):
    """A job order as ERP releases it (IEC 62264 production request)."""

    id: Code
    product: Code
    quantity: Annotated[int, Field(ge=1, le=100_000_000)]
    release: Annotated[Duration, Field(ge=0)] = 0.0
    """Seconds after the model's start when ERP releases it."""
    due: Annotated[Duration, Field(gt=0)]
    """Seconds after the model's start when it is due."""
    priority: int = 0

    @model_validator(mode="after")
    def _due_after_release(self) -> JobOrder:
        if self.due <= self.release:
            raise ValueError("due must be after release")
        return self


class OrderGenerator(_Model):
    """Generates job orders for a long run: ``count`` orders, interarrival and quantity
    drawn from distributions, products chosen by ``product_mix`` weights."""

    prefix: Code
    count: Annotated[int, Field(ge=1, le=1_000_000)]
    product_mix: Annotated[dict[str, Annotated[float, Field(gt=0)]], Field(min_length=1)]
    interarrival: Distribution
    quantity: Distribution
    due_after: Annotated[Duration, Field(gt=0)]
    first_release: Annotated[Duration, Field(ge=0)] = 0.0


class OrderStream(_Model):
    """What ERP sends: explicit job orders and/or generators."""

    job_orders: list[JobOrder] = Field(default_factory=list)
    generators: list[OrderGenerator] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------
# The plant
# ---------------------------------------------------------------------------------------


class PlantInfo(_Model):
    code: Code
    name: str = ""
    description: str = ""
    start: AwareDatetime = datetime.fromisoformat("2026-01-05T06:00:00+00:00")
    """The wall-clock instant the simulation clock's 0 stands for (shifts, expiry, due)."""


class PlantModel(_Model):
    """A whole plant model (one YAML file)."""

    schema_version: Literal[1] = 1
    plant: PlantInfo
    lines: Annotated[list[Line], Field(min_length=1)]
    materials: list[MaterialDefinition] = Field(default_factory=list)
    material_lots: list[MaterialLot] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    shift_calendars: list[ShiftCalendar] = Field(default_factory=list)
    operators: list[Operator] = Field(default_factory=list)
    order_stream: OrderStream = Field(default_factory=OrderStream)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> PlantModel:
        if info.context and info.context.get("defer_references"):
            return self
        from plant_models.references import reference_problems

        problems = reference_problems(self)
        if problems:
            raise ValueError(
                "; ".join(f"{format_loc(loc)}: {message}" for loc, message in problems)
            )
        return self

    # Convenience lookups (cheap; models are small).
    def work_unit(self, code: str) -> WorkUnit:
        """The work unit ``code``; ``KeyError`` naming it when there is none."""
        for line in self.lines:
            for wu in line.work_units:
                if wu.code == code:
                    return wu
        raise KeyError(f"no work unit {code!r} in plant {self.plant.code}")

    def line_of(self, work_unit: str) -> Line:
        """The line holding ``work_unit``."""
        for line in self.lines:
            if any(wu.code == work_unit for wu in line.work_units):
                return line
        raise KeyError(f"no work unit {work_unit!r} in plant {self.plant.code}")

    def product(self, product_id: str) -> Product:
        for product in self.products:
            if product.id == product_id:
                return product
        raise KeyError(f"no product {product_id!r} in plant {self.plant.code}")

    def all_work_units(self) -> list[WorkUnit]:
        return [wu for line in self.lines for wu in line.work_units]


def stations_of(line: Line) -> list[tuple[str, list[WorkUnit]]]:
    """The line's stations in flow order as (code, work units): a work unit alone (its own
    code), or consecutive work units with the same ``station`` (the station's code)."""
    out: list[tuple[str, list[WorkUnit]]] = []
    for wu in line.work_units:
        if wu.station is not None and out and out[-1][1][-1].station == wu.station:
            out[-1][1].append(wu)
        else:
            out.append((wu.station or wu.code, [wu]))
    return out


def format_loc(loc: Loc) -> str:
    """``("lines", 0, "code")`` -> ``lines[0].code``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def intermediate_lot(output_lot: str, segment: str) -> str:
    """The code of the intermediate lot operation ``segment`` of the job order whose
    finished lot is ``output_lot`` produces (the twin's ledger and its people agree on it)."""
    return f"{output_lot}-{segment}"


def intake_of(product: Product, segment: str) -> list[str]:
    """The intermediate material ``segment`` of ``product`` takes in: the previous
    segment's ``output_material`` (none, or one)."""
    ids = [s.id for s in product.segments]
    i = ids.index(segment)
    previous = product.segments[i - 1].output_material if i > 0 else None
    return [previous] if previous is not None else []


def segments_of(product: Product, line: Line) -> list[OperationSegment | None]:
    """Which operation segment each work unit of ``line`` runs for ``product``: segments
    follow the line's flow, each on the next station of its equipment class (on every work
    unit of a parallel station)."""
    out: list[OperationSegment | None] = [None] * len(line.work_units)
    units = line.work_units
    cursor = 0
    for seg in product.segments:
        for i in range(cursor, len(units)):
            if units[i].equipment_class == seg.equipment_class:
                out[i] = seg
                cursor = i + 1
                station = units[i].station
                while station is not None and cursor < len(units):
                    if units[cursor].station != station:
                        break
                    out[cursor] = seg
                    cursor += 1
                break
    return out
