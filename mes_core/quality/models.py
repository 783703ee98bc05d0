"""Tables of MES quality: SPC limits, measurement results, nonconformances, holds and
electronic signatures. Migration: ``0002_quality_oee_labour_erp``; change both together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mes_core.persistence.base import Base, utcnow

_BIGINT = BigInteger().with_variant(Integer, "sqlite")


class SpcLimits(Base):
    """How an inspection characteristic's control limits are set: a user baseline
    (``centre`` and ``sigma`` given) or the first ``baseline_n`` in-control points."""

    __tablename__ = "spc_limits"

    id: Mapped[int] = mapped_column(primary_key=True)
    characteristic_id: Mapped[int] = mapped_column(
        ForeignKey("inspection_characteristic.id"), unique=True
    )
    method: Mapped[str] = mapped_column(String(20))  # "baseline" | "first_n"
    baseline_n: Mapped[int] = mapped_column(Integer, default=20)
    centre: Mapped[float | None] = mapped_column(Float)
    sigma: Mapped[float | None] = mapped_column(Float)
    established_at: Mapped[datetime | None]
    set_by: Mapped[str] = mapped_column(String(100), default="")
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeasurementResult(Base):
    """One measured value of an inspection characteristic, with its verdict."""

    __tablename__ = "measurement_result"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    characteristic_id: Mapped[int] = mapped_column(ForeignKey("inspection_characteristic.id"))
    job_order_id: Mapped[int | None] = mapped_column(ForeignKey("job_order.id"), index=True)
    job_operation_id: Mapped[int | None] = mapped_column(ForeignKey("job_operation.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("material_lot.id"))
    work_unit_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(30), default="")
    measured_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(200))  # "api" or the plant event source
    actor: Mapped[str] = mapped_column(String(100), default="")
    in_spec: Mapped[bool] = mapped_column(Boolean)
    spc_rules: Mapped[str] = mapped_column(String(50), default="")  # e.g. "1,3"
    nonconformance_id: Mapped[int | None] = mapped_column(ForeignKey("nonconformance.id"))

    __table_args__ = (Index("ix_measurement_result_char_id", "characteristic_id", "id"),)


class Nonconformance(Base):
    """A deviation found by quality (ISA-95 Part 3 quality operations), open until
    disposed with a signature."""

    __tablename__ = "nonconformance"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    state: Mapped[str] = mapped_column(String(20), default="open", index=True)
    source: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    characteristic_id: Mapped[int | None] = mapped_column(
        ForeignKey("inspection_characteristic.id")
    )
    job_order_id: Mapped[int | None] = mapped_column(ForeignKey("job_order.id"), index=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_by: Mapped[str] = mapped_column(String(100))
    disposition: Mapped[str | None] = mapped_column(String(20))
    quantity: Mapped[float | None] = mapped_column(Float)
    disposed_at: Mapped[datetime | None]
    signature_id: Mapped[int | None] = mapped_column(ForeignKey("electronic_signature.id"))


class QualityHold(Base):
    """A hold on a material lot or a job order (rule 5) and its owner: the nonconformance
    that placed it, or (``nonconformance_id`` empty) the person who placed it by hand.
    Each is lifted only by its owner's decision (:mod:`mes_core.quality.holds`).
    Migration ``0004_hold_owners`` added the owner columns."""

    __tablename__ = "quality_hold"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonconformance_id: Mapped[int | None] = mapped_column(
        ForeignKey("nonconformance.id"), index=True
    )
    object_kind: Mapped[str] = mapped_column(String(20))  # "lot" | "job_order"
    object_id: Mapped[int] = mapped_column(Integer)
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    placed_by: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(100))
    release_reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_quality_hold_object", "object_kind", "object_id"),)


class ElectronicSignature(Base):
    """A signature manifestation bound to its record (21 CFR Part 11 §11.50, §11.70)."""

    __tablename__ = "electronic_signature"

    id: Mapped[int] = mapped_column(primary_key=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    signer: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime]
    meaning: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(String(500))
    record_ref: Mapped[str] = mapped_column(String(300))
    record_hash: Mapped[str] = mapped_column(String(64))
    record_json: Mapped[str] = mapped_column(Text)
    binding_hash: Mapped[str] = mapped_column(String(64))
