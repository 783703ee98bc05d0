"""Typed refusals of the MES: every enforcement rule has its own machine-readable code.

A :class:`RuleViolation` is raised by the pure rule functions in :mod:`mes_core.domain.rules`
at the moment of the action (PRODUCT.md, "Enforcement"); the persistence layer records each
refusal in the audit trail and the API maps it to HTTP 409 (or 422) with the JSON body
``{"rule": ..., "message": ..., "object": ...}``.
"""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    """Machine-readable rule codes (stable: clients and scenario expectations match on them)."""

    # Rule 1: sequence of operations (ISA-95 Part 2, operations segment dependencies).
    SEQUENCE = "SEQUENCE"
    # Rule 2: material lot consumption (ISA-95 Part 2, material segment specification).
    MATERIAL_NOT_ON_BOM = "MATERIAL_NOT_ON_BOM"
    LOT_NOT_AVAILABLE = "LOT_NOT_AVAILABLE"
    LOT_EXPIRED = "LOT_EXPIRED"
    LOT_QUANTITY = "LOT_QUANTITY"
    # Rule 3: personnel qualification (ISA-95 Part 2, personnel qualification test).
    CERTIFICATION = "CERTIFICATION"
    # Rule 4: equipment capability (ISA-95 Part 2, equipment class / qualification).
    EQUIPMENT_CLASS = "EQUIPMENT_CLASS"
    EQUIPMENT_NOT_QUALIFIED = "EQUIPMENT_NOT_QUALIFIED"
    CALIBRATION_DUE = "CALIBRATION_DUE"
    EQUIPMENT_DOWN = "EQUIPMENT_DOWN"
    # Rule 4: how many work units one operation may run on at once (equipment quantity).
    EQUIPMENT_QUANTITY = "EQUIPMENT_QUANTITY"
    # Rule 5: nothing on hold moves (enforced here, holds placed by mes_core.quality).
    HELD = "HELD"
    # Job order / operation life cycle (ISA-95 Part 3 job order states).
    INVALID_TRANSITION = "INVALID_TRANSITION"
    # Rule 6 is idempotent ingest: duplicates are ignored, never refused.


class MesError(Exception):
    """Base of every error the MES domain raises on purpose."""

    status_code = 400
    code = "MES_ERROR"

    def __init__(self, message: str, *, object_ref: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.object_ref = object_ref


class RuleViolation(MesError):
    """An enforcement rule refused an action. ``rule`` says which, ``object_ref`` on what."""

    status_code = 409

    def __init__(self, rule: Rule, message: str, *, object_ref: str) -> None:
        super().__init__(f"{rule.value}: {message}", object_ref=object_ref)
        self.rule = rule
        self.code = rule.value


class NotFound(MesError):
    """An object named by code or id does not exist."""

    status_code = 404
    code = "NOT_FOUND"

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"{kind} {ref!r} not found", object_ref=f"{kind}:{ref}")


class Conflict(MesError):
    """The request clashes with what exists (e.g. a code already taken)."""

    status_code = 409
    code = "CONFLICT"


class InvalidInput(MesError):
    """The request is well-formed JSON but makes no sense for the domain."""

    status_code = 422
    code = "INVALID_INPUT"


class NotAuthenticated(MesError):
    status_code = 401
    code = "NOT_AUTHENTICATED"


class Forbidden(MesError):
    status_code = 403
    code = "FORBIDDEN"
