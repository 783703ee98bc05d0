"""Wire schemas of MES quality: characteristics and SPC limits, measurement results,
nonconformances, dispositions and their electronic signatures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field

from mes_core.schemas.common import Code, Count, Strict
from mes_core.schemas.execution import OccurredAt


class CharacteristicOut(BaseModel):
    """An inspection characteristic of an operations segment, with its control limits."""

    id: int
    routing: str
    segment: int
    segment_name: str
    name: str
    lsl: float | None
    target: float | None
    usl: float | None
    unit: str
    sampling_frequency: int
    limits: LimitsOut


class LimitsIn(Strict):
    """``baseline``: the user sets centre and sigma; ``first_n``: the MES estimates them from
    the first ``baseline_n`` in-control results (individuals chart, MR-bar / d2)."""

    method: Literal["baseline", "first_n"]
    centre: Annotated[float | None, Field(allow_inf_nan=False)] = None
    sigma: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None
    baseline_n: Annotated[int, Field(ge=2, le=10_000)] = 20


class LimitsOut(BaseModel):
    method: str
    baseline_n: int
    centre: float | None
    sigma: float | None
    ucl: float | None
    lcl: float | None
    established_at: datetime | None


class MeasurementIn(Strict):
    """A result entered by an operator or QA for the characteristic ``characteristic`` of
    operation ``operation`` of job order ``job_order``."""

    job_order: Code
    operation: Annotated[int, Field(ge=1, le=10_000)]
    characteristic: Annotated[str, Field(min_length=1, max_length=100)]
    value: Annotated[float, Field(allow_inf_nan=False)]
    lot: Code | None = None
    measured_at: AwareDatetime | None = Field(default=None, description="default: now")


class MeasurementOut(BaseModel):
    id: int
    characteristic_id: int
    value: float
    unit: str
    measured_at: datetime
    source: str
    actor: str
    in_spec: bool
    spc_rules: list[int]
    nonconformance: str | None


class MeasurementResultOut(MeasurementOut):
    """A recorded result and what it caused (rule 5)."""

    verdict: str
    job_order_state: str | None


class NonconformanceIn(Strict):
    """A nonconformance raised by a person; it holds the job order and lots it names."""

    description: Annotated[str, Field(min_length=5, max_length=2000)]
    job_order: Code | None = None
    lots: Annotated[list[Code], Field(max_length=100)] = []


class SignatureOut(BaseModel):
    """The signature manifestation (21 CFR 11.50) and its binding (11.70)."""

    signer: str
    printed_name: str
    signed_at: datetime
    meaning: str
    reason: str
    record_ref: str
    record_hash: str
    binding_hash: str
    manifestation: str
    verified: bool = Field(description="record and signature still hash to what was signed")


class NonconformanceOut(BaseModel):
    number: str
    state: str
    source: str
    description: str
    characteristic_id: int | None
    job_order: str | None
    opened_at: datetime
    opened_by: str
    held_lots: list[str]
    held_job_orders: list[str]
    disposition: str | None
    quantity: float | None
    disposed_at: datetime | None
    signature: SignatureOut | None


class DispositionIn(Strict):
    """Dispose a nonconformance under an electronic signature: the signer re-enters the
    password and states the meaning and the reason."""

    disposition: Literal["release", "rework", "scrap"]
    password: Annotated[str, Field(min_length=1, max_length=200)]
    meaning: Literal["approval", "review", "responsibility"]
    reason: Annotated[str, Field(min_length=5, max_length=500)]
    quantity: Count | None = Field(default=None, description="units reworked or scrapped")
    occurred_at: OccurredAt = None


CharacteristicOut.model_rebuild()
