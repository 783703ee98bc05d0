"""SQLAlchemy 2 models of the execution core (ISA-95 object names).

Migrations: ``mes_core/persistence/migrations/versions/0001_execution.py`` creates these
tables; change both together.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes_core.persistence.base import Base, utcnow

# ------------------------------------------------------------------ equipment (ISA-95 Part 2 §5)


class Equipment(Base):
    """A node of the equipment hierarchy: site, area, line or work unit."""

    __tablename__ = "equipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
    equipment_class: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="idle")
    state_reason: Mapped[str] = mapped_column(String(200), default="")
    # None until the plant (or a person) first reports a state: the first report is
    # taken whatever its timestamp, so a plant clock behind the MES's (a simulated day,
    # a PLC in another zone) never leaves the current state stuck at its default.
    state_since: Mapped[datetime | None] = mapped_column(default=None)
    qualified: Mapped[bool] = mapped_column(Boolean, default=True)
    qualification_due: Mapped[date | None] = mapped_column(Date)
    calibration_due: Mapped[date | None] = mapped_column(Date)

    parent: Mapped[Equipment | None] = relationship(remote_side=[id])


class EquipmentStateHistory(Base):
    """A work unit's state history with reasons (the ISO 22400-2 time elements' source)."""

    __tablename__ = "equipment_state_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"))
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (Index("ix_equipment_state_history_unit_time", "equipment_id", "started_at"),)


# ------------------------------------------------------------------ material (ISA-95 Part 2 §7)


class MaterialDefinition(Base):
    __tablename__ = "material_definition"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(30), default="ea")


class MaterialLot(Base):
    __tablename__ = "material_lot"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material_definition.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="available")
    status_before_hold: Mapped[str | None] = mapped_column(String(20))
    quantity: Mapped[float] = mapped_column(Float)
    initial_quantity: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    produced_by_operation_id: Mapped[int | None] = mapped_column(
        ForeignKey("job_operation.id"), index=True
    )

    material: Mapped[MaterialDefinition] = relationship()
    produced_by: Mapped[JobOperation | None] = relationship(foreign_keys=[produced_by_operation_id])


class LotGenealogy(Base):
    """Edge of the genealogy graph: ``parent`` lot went into ``child`` lot, in the job
    operation that consumed it (``mes_core.domain.genealogy``; one edge per operation since
    migration ``0005_genealogy_edge_operation``)."""

    __tablename__ = "lot_genealogy"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_lot_id: Mapped[int] = mapped_column(ForeignKey("material_lot.id"), index=True)
    child_lot_id: Mapped[int] = mapped_column(ForeignKey("material_lot.id"), index=True)
    job_operation_id: Mapped[int] = mapped_column(ForeignKey("job_operation.id"))
    quantity: Mapped[float] = mapped_column(Float, default=0)

    __table_args__ = (
        UniqueConstraint(
            "parent_lot_id", "child_lot_id", "job_operation_id", name="uq_lot_edge_operation"
        ),
    )


# ------------------------------------------------------------------ routing (ISA-95 Part 2 §8)


class OperationsDefinition(Base):
    """A routing (work master): per product an ordered list of operations segments."""

    __tablename__ = "operations_definition"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    product_id: Mapped[int] = mapped_column(ForeignKey("material_definition.id"))

    product: Mapped[MaterialDefinition] = relationship()
    segments: Mapped[list[OperationsSegment]] = relationship(
        order_by="OperationsSegment.sequence", cascade="all, delete-orphan"
    )


class OperationsSegment(Base):
    __tablename__ = "operations_segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("operations_definition.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    equipment_class: Mapped[str] = mapped_column(String(100))
    pru_seconds: Mapped[float] = mapped_column(Float, default=0)
    skill: Mapped[str | None] = mapped_column(String(100))
    allow_partial: Mapped[bool] = mapped_column(Boolean, default=False)
    #: How many work units of ``equipment_class`` may run one operation of this segment at
    #: once (ISA-95 Part 2 equipment specification: equipment class and quantity), e.g. the
    #: two cappers of a parallel station. Since migration ``0007_operation_work_units``.
    max_work_units: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: The sequences of the segments this one follows, comma-separated (ISA-95 Part 2
    #: segment dependency: an assembly follows its feeders' segments, which run side by
    #: side); NULL: every earlier segment. Since migration ``0008_segment_dependencies``.
    depends_on: Mapped[str | None] = mapped_column(String(1000), default=None)

    @property
    def predecessors(self) -> list[int] | None:
        """``depends_on`` as sequences (None: every earlier segment)."""
        if self.depends_on is None:
            return None
        return [int(s) for s in self.depends_on.split(",") if s]

    materials: Mapped[list[SegmentMaterial]] = relationship(cascade="all, delete-orphan")
    characteristics: Mapped[list[InspectionCharacteristic]] = relationship(
        cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("definition_id", "sequence", name="uq_segment_seq"),)


class SegmentMaterial(Base):
    """BOM line of an operations segment (material consumed, per unit of product)."""

    __tablename__ = "segment_material"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("operations_segment.id"), index=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material_definition.id"))
    quantity_per_unit: Mapped[float] = mapped_column(Float, default=1)

    material: Mapped[MaterialDefinition] = relationship()


class InspectionCharacteristic(Base):
    """An inspection characteristic of a segment (name, LSL, target, USL, unit, sampling)."""

    __tablename__ = "inspection_characteristic"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("operations_segment.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    lsl: Mapped[float | None] = mapped_column(Float)
    target: Mapped[float | None] = mapped_column(Float)
    usl: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(30), default="")
    sampling_frequency: Mapped[int] = mapped_column(Integer, default=1)


# ------------------------------------------------------------------ personnel (ISA-95 Part 2 §6)


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[str] = mapped_column(String(200), default="operator")
    password_hash: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    certifications: Mapped[list[Certification]] = relationship(cascade="all, delete-orphan")

    @property
    def role_list(self) -> list[str]:
        return [r for r in self.roles.split(",") if r]


class Certification(Base):
    __tablename__ = "certification"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    skill: Mapped[str] = mapped_column(String(100))
    valid_until: Mapped[date] = mapped_column(Date)


class AuthToken(Base):
    """A bearer token (stored hashed) or an API key (``kind`` = "api_key")."""

    __tablename__ = "auth_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="token")
    name: Mapped[str] = mapped_column(String(200), default="")
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    role: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginThrottleRow(Base):
    """Recent login attempts of one account (``account:<name>``) or one client address
    (``client:<address>``), and the audit budget of failed logins (``audit:failures``),
    shared by every API worker and kept across restarts (``mes_core.api.throttle``).
    Times are seconds since the epoch."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: Attempts (not yet cleared by a success) since ``window_start``; for the audit
    #: budget, failures audited since ``window_start``.
    count: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[float] = mapped_column(Float, index=True)
    #: No attempt is checked before this time (the back-off).
    blocked_until: Mapped[float] = mapped_column(Float)
    #: When the current back-off first refused an attempt (audited once), else null.
    refused_at: Mapped[float | None] = mapped_column(Float)
    #: Audit budget: failures not audited since the last audited one.
    unaudited: Mapped[int] = mapped_column(Integer)


# ------------------------------------------------------------------ job orders (ISA-95 Part 3)


class JobOrder(Base):
    __tablename__ = "job_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("material_definition.id"))
    definition_id: Mapped[int] = mapped_column(ForeignKey("operations_definition.id"))
    quantity: Mapped[float] = mapped_column(Float)
    due_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(20), default="planned", index=True)
    state_before_hold: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    product: Mapped[MaterialDefinition] = relationship()
    definition: Mapped[OperationsDefinition] = relationship()
    operations: Mapped[list[JobOperation]] = relationship(
        order_by="JobOperation.sequence", cascade="all, delete-orphan"
    )


class JobOperation(Base):
    """One operation of a job order with its actuals."""

    __tablename__ = "job_operation"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_order_id: Mapped[int] = mapped_column(ForeignKey("job_order.id"), index=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("operations_segment.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    planned_work_unit_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"))
    work_unit_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
    good: Mapped[float] = mapped_column(Float, default=0)
    scrap: Mapped[float] = mapped_column(Float, default=0)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    job_order: Mapped[JobOrder] = relationship(back_populates="operations")
    segment: Mapped[OperationsSegment] = relationship()
    work_unit: Mapped[Equipment | None] = relationship(foreign_keys=[work_unit_id])
    planned_work_unit: Mapped[Equipment | None] = relationship(foreign_keys=[planned_work_unit_id])
    operators: Mapped[list[JobOperationOperator]] = relationship(cascade="all, delete-orphan")
    consumptions: Mapped[list[MaterialConsumption]] = relationship(cascade="all, delete-orphan")
    units: Mapped[list[JobOperationUnit]] = relationship(
        order_by="JobOperationUnit.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("job_order_id", "sequence", name="uq_job_operation_seq"),
        Index("ix_job_operation_unit_state", "work_unit_id", "state"),
    )


class JobOperationUnit(Base):
    """A work unit an operation runs (or ran) on, with what it did there: ISA-95 Part 3
    equipment actual of the operation's response. An operation runs on one work unit, or on
    up to its segment's ``max_work_units`` at once (a parallel station); each was started
    on its own (rules 1, 3, 4, 5 judged for it) and ends on its own or with the operation.
    ``good`` / ``scrap`` are the counts at that unit (the plant's, and hand reports naming
    it); the operation's own columns are their sum plus hand reports naming no unit.
    ``job_operation.work_unit_id`` stays the first unit, where single-unit readers look.
    Since ``0007_operation_work_units``."""

    __tablename__ = "job_operation_unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_operation_id: Mapped[int] = mapped_column(ForeignKey("job_operation.id"), index=True)
    work_unit_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    good: Mapped[float] = mapped_column(Float, default=0)
    scrap: Mapped[float] = mapped_column(Float, default=0)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    work_unit: Mapped[Equipment] = relationship()

    __table_args__ = (
        UniqueConstraint("job_operation_id", "work_unit_id", name="uq_job_operation_unit"),
    )


class JobOperationOperator(Base):
    __tablename__ = "job_operation_operator"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_operation_id: Mapped[int] = mapped_column(ForeignKey("job_operation.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship()


class MaterialConsumption(Base):
    __tablename__ = "material_consumption"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_operation_id: Mapped[int] = mapped_column(ForeignKey("job_operation.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("material_lot.id"), index=True)
    quantity: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100), default="")
    #: The work unit that drew the lot, when the operator named it (an operation running
    #: on several work units); None: booked on the operation as a whole.
    work_unit_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"))

    lot: Mapped[MaterialLot] = relationship()
    work_unit: Mapped[Equipment | None] = relationship()


# ------------------------------------------------------------------ plant events, audit trail


class PlantEventRow(Base):
    """Every plant event ever received, keyed (source, sequence) for idempotence (rule 6)."""

    __tablename__ = "plant_event"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    work_unit: Mapped[str] = mapped_column(String(100))
    ts: Mapped[datetime]
    received_at: Mapped[datetime]
    state: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(200))
    good: Mapped[int | None] = mapped_column(Integer)
    scrap: Mapped[int | None] = mapped_column(Integer)
    job_order: Mapped[str | None] = mapped_column(String(100))
    material_lot: Mapped[str | None] = mapped_column(String(100))
    characteristic: Mapped[str | None] = mapped_column(String(100))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(30))
    alarm: Mapped[str | None] = mapped_column(String(100))
    severity: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (Index("ix_plant_event_unit_kind_ts", "work_unit", "kind", "ts"),)


class AuditEntry(Base):
    """Append-only, hash-chained audit trail (21 CFR Part 11 §11.10(e)); also the change
    log the server-sent event stream reads by increasing ``id``."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    object_ref: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain head. Updating it first serialises appends across workers."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
