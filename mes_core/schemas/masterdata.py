"""Master data: equipment hierarchy, materials and lots, routings, personnel (ISA-95 Part 2)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

from mes_core.domain.states import EquipmentLevel, EquipmentState, LotStatus, Role
from mes_core.schemas.common import Code, Count, Name, Out, Quantity, Strict

# ------------------------------------------------------------------ equipment


class EquipmentCreate(Strict):
    code: Code
    name: Name = ""
    level: EquipmentLevel
    parent: Code | None = None
    equipment_class: Annotated[str | None, Field(max_length=100)] = None
    qualified: bool = True
    qualification_due: date | None = None
    calibration_due: date | None = None


class EquipmentUpdate(Strict):
    """Fields a supervisor may change on a work unit (qualification, calibration)."""

    name: Name | None = None
    qualified: bool | None = None
    qualification_due: date | None = None
    calibration_due: date | None = None


class EquipmentOut(Out):
    code: str
    name: str
    level: str
    parent: str | None = None
    equipment_class: str | None
    state: str
    state_reason: str
    state_since: datetime | None  # None until a state is first reported
    qualified: bool
    qualification_due: date | None
    calibration_due: date | None


class StateChange(Strict):
    """A manual state change of a work unit (e.g. maintenance), with its reason."""

    state: EquipmentState
    reason: Name = ""


class StateHistoryOut(Out):
    state: str
    reason: str
    started_at: datetime
    source: str


# ------------------------------------------------------------------ material


class MaterialCreate(Strict):
    code: Code
    name: Name = ""
    unit: Annotated[str, Field(max_length=30)] = "ea"


class MaterialOut(Out):
    code: str
    name: str
    unit: str


class LotCreate(Strict):
    code: Code
    material: Code
    quantity: Quantity
    status: LotStatus = LotStatus.AVAILABLE
    expires_at: AwareDatetime | None = None


class LotOut(Out):
    code: str
    material: str
    status: str
    quantity: float
    initial_quantity: float
    expires_at: datetime | None
    created_at: datetime
    produced_by: str | None = None


class HoldRequest(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


# ------------------------------------------------------------------ routing


class SegmentMaterialIn(Strict):
    material: Code
    quantity_per_unit: Quantity = 1


class CharacteristicIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    lsl: float | None = None
    target: float | None = None
    usl: float | None = None
    unit: Annotated[str, Field(max_length=30)] = ""
    sampling_frequency: Annotated[int, Field(ge=1, le=1_000_000)] = 1


class SegmentIn(Strict):
    sequence: Annotated[int, Field(ge=1, le=10_000)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    equipment_class: Annotated[str, Field(min_length=1, max_length=100)]
    pru_seconds: Count = 0
    skill: Annotated[str | None, Field(max_length=100)] = None
    allow_partial: bool = False
    max_work_units: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=1,
        description="how many work units of the class may run one operation at once "
        "(ISA-95 equipment specification quantity; a parallel station's units)",
    )
    depends_on: (
        Annotated[list[Annotated[int, Field(ge=1, le=10_000)]], Field(max_length=100)] | None
    ) = Field(
        default=None,
        description="the sequences of the segments this one follows (ISA-95 Part 2 "
        "segment dependency), e.g. an assembly's feeder segments, which run side by "
        "side; none: every earlier segment",
    )
    materials: list[SegmentMaterialIn] = []
    characteristics: list[CharacteristicIn] = []


class RoutingCreate(Strict):
    """An operations definition (routing / work master) of a product."""

    code: Code
    name: Name = ""
    product: Code
    segments: Annotated[list[SegmentIn], Field(min_length=1, max_length=1000)]


class SegmentMaterialOut(Out):
    material: str
    quantity_per_unit: float


class CharacteristicOut(Out):
    name: str
    lsl: float | None
    target: float | None
    usl: float | None
    unit: str
    sampling_frequency: int


class SegmentOut(Out):
    sequence: int
    name: str
    equipment_class: str
    pru_seconds: float
    skill: str | None
    allow_partial: bool
    max_work_units: int = 1
    depends_on: list[int] | None = None
    materials: list[SegmentMaterialOut]
    characteristics: list[CharacteristicOut]


class RoutingOut(Out):
    code: str
    name: str
    product: str
    segments: list[SegmentOut]


# ------------------------------------------------------------------ personnel


class CertificationIn(Strict):
    skill: Annotated[str, Field(min_length=1, max_length=100)]
    valid_until: date


class CertificationOut(Out):
    skill: str
    valid_until: date


class PersonCreate(Strict):
    code: Code
    name: Name = ""
    roles: Annotated[list[Role], Field(min_length=1)] = [Role.OPERATOR]
    password: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    certifications: list[CertificationIn] = []


class PersonOut(Out):
    code: str
    name: str
    roles: list[str]
    active: bool
    certifications: list[CertificationOut]


# ------------------------------------------------------------------ bulk


class MasterData(Strict):
    """A plant's master data, created in one transaction, in dependency order."""

    equipment: list[EquipmentCreate] = []
    materials: list[MaterialCreate] = []
    routings: list[RoutingCreate] = []
    persons: list[PersonCreate] = []
    lots: list[LotCreate] = []


class MasterDataResult(Out):
    equipment: int
    materials: int
    routings: int
    persons: int
    lots: int
