"""State vocabularies of the MES (ISA-95 Part 3 and the product brief's names)."""

from __future__ import annotations

from enum import StrEnum

from mes_core.schemas.plant_events import EquipmentState

__all__ = [
    "EquipmentLevel",
    "EquipmentState",
    "JobOrderState",
    "LotStatus",
    "OperationState",
    "Role",
]


class EquipmentLevel(StrEnum):
    """ISA-95 Part 1 role-based equipment hierarchy (clause 5.2), down to the work unit."""

    SITE = "site"
    AREA = "area"
    LINE = "line"
    WORK_UNIT = "work_unit"


class LotStatus(StrEnum):
    """Material lot status (ISA-95 Part 2 material lot ``Status``)."""

    AVAILABLE = "available"
    QUARANTINE = "quarantine"
    ON_HOLD = "on_hold"
    CONSUMED = "consumed"
    RELEASED = "released"
    REJECTED = "rejected"


class JobOrderState(StrEnum):
    """Job order (work order) states: planned -> released -> dispatched -> running ->
    completed -> closed, plus held and aborted (ISA-95 Part 3 job order dispatch status)."""

    PLANNED = "planned"
    RELEASED = "released"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    COMPLETED = "completed"
    CLOSED = "closed"
    HELD = "held"
    ABORTED = "aborted"


class OperationState(StrEnum):
    """State of one operation (operations segment instance) of a job order."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"


class Role(StrEnum):
    """Roles of MES users; every endpoint names the roles it admits."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    QUALITY = "quality"
    INTEGRATION = "integration"
    ADMIN = "admin"
    BACKDATE = "backdate"
    """Not a job but a permission (what MES vendors call "backdating"): the holder may
    state when an action happened (``occurred_at``), and the MES records it at that
    business time instead of its own clock; for systems that replay a plant's timeline,
    e.g. the test bench's simulated people (see :mod:`mes_core.domain.clock`)."""
