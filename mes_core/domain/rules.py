"""The enforcement rules of the MES as plain functions over plain values (no I/O).

Each function either returns ``None`` (the action may go ahead) or raises a typed
:class:`~mes_core.domain.errors.RuleViolation`. The persistence services load the facts,
call these functions at the moment of the action and record every refusal in the audit
trail. Numbering follows PRODUCT.md "Enforcement"; clauses cite ISA-95 (IEC 62264).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from mes_core.domain.errors import Rule, RuleViolation
from mes_core.domain.states import EquipmentState, JobOrderState, LotStatus, OperationState

# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class OperationFacts:
    """One operation of a job order as the sequence rule sees it."""

    sequence: int
    name: str
    state: OperationState
    good: float = 0


@dataclass(frozen=True, slots=True)
class LotFacts:
    """A material lot as the consumption rule sees it."""

    code: str
    material: str
    status: LotStatus
    quantity: float
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CertificationFacts:
    """One certification of a person for a skill, valid until ``valid_until`` (inclusive)."""

    skill: str
    valid_until: date


@dataclass(frozen=True, slots=True)
class WorkUnitFacts:
    """A work unit as the equipment rule sees it."""

    code: str
    equipment_class: str | None
    state: EquipmentState
    qualified: bool
    qualification_due: date | None
    calibration_due: date | None


# --------------------------------------------------------------------------- rule 1


def is_predecessor(earlier: int, sequence: int, depends_on: Iterable[int] | None) -> bool:
    """Is operation ``earlier`` a predecessor of operation ``sequence`` for rule 1? The
    segments it depends on when the routing says (ISA-95 Part 2 segment dependency: an
    assembly follows its feeders, which run side by side), else every earlier one."""
    if depends_on is None:
        return earlier < sequence
    return earlier in depends_on


def check_predecessors(
    operation: OperationFacts,
    predecessors: Iterable[OperationFacts],
    *,
    allow_partial: bool,
    job_order: str,
) -> None:
    """Rule 1: an operation cannot start before its predecessors are complete.

    The routing orders operations segments (ISA-95 Part 2, clause 6.6 "segment
    dependency": *cannot start until previous segment ends*). Where the routing allows
    partial quantities (``allow_partial``: the dependency is *start after previous
    segment starts*), a predecessor that is running and has reported good units suffices.
    """
    for pred in predecessors:
        if pred.state == OperationState.COMPLETED:
            continue
        if allow_partial and pred.state == OperationState.RUNNING and pred.good > 0:
            continue
        need = "completed or running with good units" if allow_partial else "completed"
        raise RuleViolation(
            Rule.SEQUENCE,
            f"operation {operation.sequence} ({operation.name}) of job order {job_order} "
            f"cannot start: predecessor operation {pred.sequence} ({pred.name}) is "
            f"{pred.state.value}, it must be {need}",
            object_ref=f"job_order:{job_order}/operation:{operation.sequence}",
        )


# --------------------------------------------------------------------------- rule 2


def check_lot_consumable(
    lot: LotFacts,
    *,
    bom_materials: Iterable[str],
    quantity: float,
    now: datetime,
    operation_ref: str,
) -> None:
    """Rule 2: a lot can be consumed only if its material is on the BOM of the operation
    (ISA-95 Part 2 material segment specification, use "consumed"), it is available
    (not on hold, quarantined, rejected, used up or expired) and its quantity suffices.

    A lot on hold is refused with its own code, ``HELD`` (rule 5: nothing on hold moves).
    """
    ref = f"material_lot:{lot.code}"
    allowed = set(bom_materials)
    if lot.material not in allowed:
        listed = ", ".join(sorted(allowed)) or "nothing"
        raise RuleViolation(
            Rule.MATERIAL_NOT_ON_BOM,
            f"lot {lot.code} is material {lot.material}, which is not on the bill of "
            f"materials of {operation_ref} (it consumes {listed})",
            object_ref=ref,
        )
    if lot.status == LotStatus.ON_HOLD:
        raise RuleViolation(
            Rule.HELD,
            f"lot {lot.code} is on hold and cannot be consumed until quality disposes it",
            object_ref=ref,
        )
    if lot.status not in (LotStatus.AVAILABLE, LotStatus.RELEASED):
        raise RuleViolation(
            Rule.LOT_NOT_AVAILABLE,
            f"lot {lot.code} is {lot.status.value}, only available or released lots can "
            "be consumed",
            object_ref=ref,
        )
    if lot.expires_at is not None and lot.expires_at <= now:
        raise RuleViolation(
            Rule.LOT_EXPIRED,
            f"lot {lot.code} expired at {lot.expires_at.isoformat()}",
            object_ref=ref,
        )
    if quantity > lot.quantity:
        raise RuleViolation(
            Rule.LOT_QUANTITY,
            f"lot {lot.code} holds {lot.quantity:g}, {quantity:g} was asked for",
            object_ref=ref,
        )


# --------------------------------------------------------------------------- rule 3


def check_certification(
    person: str,
    skill: str | None,
    certifications: Iterable[CertificationFacts],
    *,
    today: date,
    action: str = "start",
) -> None:
    """Rule 3: an operator can start or sign only with a valid, unexpired certification
    for the skill the operations segment needs (ISA-95 Part 2 personnel specification /
    qualification test result). A segment that names no skill needs none."""
    if not skill:
        return
    matching = [c for c in certifications if c.skill == skill]
    if any(c.valid_until >= today for c in matching):
        return
    if matching:
        last = max(c.valid_until for c in matching)
        why = f"the certification for {skill!r} expired on {last.isoformat()}"
    else:
        why = f"has no certification for skill {skill!r}"
    raise RuleViolation(
        Rule.CERTIFICATION,
        f"person {person} cannot {action}: {why}",
        object_ref=f"person:{person}",
    )


def check_operators_named(skill: str | None, operators: Mapping[str, object]) -> None:
    """Rule 3 corollary: a segment that needs a skill needs at least one named operator."""
    if skill and not operators:
        raise RuleViolation(
            Rule.CERTIFICATION,
            f"no operator named: the operation needs a person certified for {skill!r}",
            object_ref="person:-",
        )


# --------------------------------------------------------------------------- rule 4

#: Work unit states in which no work may start (ISO 22400-2: down time, maintenance).
NOT_STARTABLE = frozenset({EquipmentState.DOWN, EquipmentState.MAINTENANCE})


def check_work_unit(unit: WorkUnitFacts, *, required_class: str, today: date) -> None:
    """Rule 4: work can start only on a work unit of the right equipment class (ISA-95
    Part 2 equipment specification) that is qualified, in calibration and not down.

    ``qualification_due`` / ``calibration_due`` of ``None`` mean no due date is kept for
    that unit; a date in the past refuses the start.
    """
    ref = f"work_unit:{unit.code}"
    if unit.equipment_class != required_class:
        raise RuleViolation(
            Rule.EQUIPMENT_CLASS,
            f"work unit {unit.code} is of class {unit.equipment_class}, the operation "
            f"needs class {required_class}",
            object_ref=ref,
        )
    if not unit.qualified or (
        unit.qualification_due is not None and unit.qualification_due < today
    ):
        due = unit.qualification_due.isoformat() if unit.qualification_due else "-"
        raise RuleViolation(
            Rule.EQUIPMENT_NOT_QUALIFIED,
            f"work unit {unit.code} is not qualified (qualified={unit.qualified}, "
            f"qualification due {due})",
            object_ref=ref,
        )
    if unit.calibration_due is not None and unit.calibration_due < today:
        raise RuleViolation(
            Rule.CALIBRATION_DUE,
            f"work unit {unit.code} was due for calibration on {unit.calibration_due.isoformat()}",
            object_ref=ref,
        )
    if unit.state in NOT_STARTABLE:
        raise RuleViolation(
            Rule.EQUIPMENT_DOWN,
            f"work unit {unit.code} is {unit.state.value}",
            object_ref=ref,
        )


def check_another_work_unit(
    job_order: str,
    operation: OperationFacts,
    *,
    work_unit: str,
    running_on: Collection[str],
    ended_on: Collection[str],
    max_work_units: int,
) -> None:
    """Rule 4, equipment quantity: a running operation starts on one more work unit only
    when its segment's equipment specification allows that many at once (ISA-95 Part 2
    equipment specification: equipment class *and quantity*, e.g. the two cappers of a
    parallel station), and never twice on one work unit.

    Starting it again where it runs, or where it was completed, is a refused transition
    (``INVALID_TRANSITION``); one unit more than the segment allows is
    ``EQUIPMENT_QUANTITY``.
    """
    ref = f"job_order:{job_order}/operation:{operation.sequence}"
    what = f"operation {operation.sequence} ({operation.name}) of job order {job_order}"
    if work_unit in running_on or work_unit in ended_on:
        done = "runs on" if work_unit in running_on else "was completed on"
        raise RuleViolation(
            Rule.INVALID_TRANSITION,
            f"{what} {done} {work_unit} already; start needs a work unit it does not run on",
            object_ref=ref,
        )
    if len(running_on) >= max_work_units:
        raise RuleViolation(
            Rule.EQUIPMENT_QUANTITY,
            f"{what} runs on {', '.join(sorted(running_on))}; its segment allows "
            f"{max_work_units} work unit{'s' if max_work_units != 1 else ''} at once, "
            f"so it cannot start on {work_unit} too",
            object_ref=ref,
        )


def check_runs_on(
    job_order: str,
    operation: OperationFacts,
    *,
    work_unit: str,
    running_on: Collection[str] | None,
    action: str,
) -> None:
    """An action at a work unit (a completion there, a lot it drew) needs the operation
    running on that work unit (ISA-95 Part 3: actuals belong to the equipment that did
    the work). ``running_on`` None: the caller knows only that it is not among them."""
    if running_on is None or work_unit not in running_on:
        where = f" (it runs on {', '.join(sorted(running_on)) or 'none'})" if running_on else ""
        raise RuleViolation(
            Rule.INVALID_TRANSITION,
            f"operation {operation.sequence} ({operation.name}) of job order {job_order} is "
            f"not running on {work_unit}{where}; {action} needs it running there",
            object_ref=f"job_order:{job_order}/operation:{operation.sequence}",
        )


# --------------------------------------------------------------------------- rule 5


def check_job_order_not_held(job_order: str, state: JobOrderState) -> None:
    """Rule 5 (enforced at every move): nothing on hold moves until QA disposes it."""
    if state == JobOrderState.HELD:
        raise RuleViolation(
            Rule.HELD,
            f"job order {job_order} is on hold; nothing moves until it is released",
            object_ref=f"job_order:{job_order}",
        )


# --------------------------------------------------------------------------- life cycle

#: Allowed job order transitions (ISA-95 Part 3 job order life cycle, as in PRODUCT.md).
JOB_ORDER_TRANSITIONS: dict[str, tuple[frozenset[JobOrderState], JobOrderState | None]] = {
    "release": (frozenset({JobOrderState.PLANNED}), JobOrderState.RELEASED),
    "dispatch": (frozenset({JobOrderState.RELEASED}), JobOrderState.DISPATCHED),
    "start": (
        frozenset({JobOrderState.DISPATCHED, JobOrderState.RUNNING}),
        JobOrderState.RUNNING,
    ),
    "complete": (frozenset({JobOrderState.RUNNING}), JobOrderState.COMPLETED),
    "close": (frozenset({JobOrderState.COMPLETED}), JobOrderState.CLOSED),
    "hold": (
        frozenset(
            {
                JobOrderState.PLANNED,
                JobOrderState.RELEASED,
                JobOrderState.DISPATCHED,
                JobOrderState.RUNNING,
                JobOrderState.COMPLETED,
            }
        ),
        JobOrderState.HELD,
    ),
    "abort": (
        frozenset(
            {
                JobOrderState.PLANNED,
                JobOrderState.RELEASED,
                JobOrderState.DISPATCHED,
                JobOrderState.RUNNING,
                JobOrderState.HELD,
            }
        ),
        JobOrderState.ABORTED,
    ),
    # "release_hold" returns to the state before the hold; its target is not fixed.
    "release_hold": (frozenset({JobOrderState.HELD}), None),
}


def next_job_order_state(job_order: str, state: JobOrderState, action: str) -> JobOrderState:
    """The state a job order reaches by ``action``, or ``INVALID_TRANSITION``.

    A held job order is refused with ``HELD`` for every move except release and abort.
    """
    allowed, target = JOB_ORDER_TRANSITIONS[action]
    if state not in allowed:
        if state == JobOrderState.HELD:
            check_job_order_not_held(job_order, state)
        raise RuleViolation(
            Rule.INVALID_TRANSITION,
            f"job order {job_order} is {state.value}; {action} needs one of "
            f"{', '.join(sorted(s.value for s in allowed))}",
            object_ref=f"job_order:{job_order}",
        )
    return target if target is not None else state


def check_operation_state(
    job_order: str, operation: OperationFacts, expected: OperationState, action: str
) -> None:
    """An operation moves pending -> running -> completed, one step at a time."""
    if operation.state != expected:
        raise RuleViolation(
            Rule.INVALID_TRANSITION,
            f"operation {operation.sequence} ({operation.name}) of job order {job_order} is "
            f"{operation.state.value}; {action} needs it {expected.value}",
            object_ref=f"job_order:{job_order}/operation:{operation.sequence}",
        )
