"""KPI services: shift calendars, work unit state history over a window, ISO 22400-2 KPIs.

The formulas are the pure functions of :mod:`mes_core.kpi.iso22400`; this module loads
their inputs from the MES:

- planned time (POT, PDOT, PBT) from the shift calendar the MES holds for the work unit,
  else for its line (or area, site); equipment with no calendar anywhere up its hierarchy
  is planned round the clock, and the report says so (``calendar`` = "24/7 (default)");
- actual times from the work unit's state history (``equipment_state_history``);
- quantities from the plant's count events (``quantity_source`` = "plant", the default:
  the machine's own counters, as OEE is usually measured) or from the operations' reported
  actuals (``"operations"``: each operation overlapping the window counts whole);
- PRU from the routing: the operations segment the counted job order ran on that unit;
- rework quantity from nonconformances disposed "rework" whose results came from the unit.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes_core.domain.errors import InvalidInput, NotFound
from mes_core.domain.states import EquipmentLevel
from mes_core.kpi.calendar import ROUND_THE_CLOCK, CalendarError, Shift, ShiftCalendar
from mes_core.kpi.iso22400 import (
    ZERO_TIME,
    Kpis,
    ProducedQuantity,
    StateChange,
    StateInterval,
    TimeElements,
    compute_kpis,
    master_data_errors,
    state_intervals,
    time_elements,
)
from mes_core.kpi.models import EquipmentCalendar, ShiftCalendarRow
from mes_core.kpi.schemas import (
    CalendarIn,
    CalendarOut,
    KpiReport,
    StateIntervalOut,
    StateReport,
    TimeElementsOut,
)
from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.masterdata import get_equipment
from mes_core.persistence.models import (
    Equipment,
    EquipmentStateHistory,
    JobOperation,
    JobOperationUnit,
    JobOrder,
    OperationsSegment,
    PlantEventRow,
)
from mes_core.persistence.security import Actor
from mes_core.quality.models import MeasurementResult, Nonconformance
from mes_core.schemas.plant_events import EquipmentState

DEFAULT_CALENDAR_NAME = "24/7 (default)"
QUANTITY_SOURCES = ("plant", "operations")


# ------------------------------------------------------------------ calendars


def to_domain(code: str, data: CalendarIn) -> ShiftCalendar:
    """The domain calendar of ``data``; ``InvalidInput`` names what is wrong."""
    try:
        return ShiftCalendar(
            name=code,
            timezone=data.timezone,
            shifts=tuple(
                Shift(
                    name=s.name,
                    start=s.start,
                    end=s.end,
                    weekdays=frozenset(s.weekdays),
                    breaks=tuple((b.start, b.end) for b in s.breaks),
                )
                for s in data.shifts
            ),
            holidays=frozenset(data.holidays),
        )
    except CalendarError as exc:
        raise InvalidInput(str(exc), object_ref=f"calendar:{code}") from exc


def _calendar_row(session: Session, code: str) -> ShiftCalendarRow:
    row = session.execute(
        select(ShiftCalendarRow).where(ShiftCalendarRow.code == code)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("shift calendar", code)
    return row


def put_calendar(session: Session, code: str, data: CalendarIn, *, actor: Actor) -> CalendarOut:
    """Create or replace the shift calendar ``code``."""
    to_domain(code, data)
    row = session.execute(
        select(ShiftCalendarRow).where(ShiftCalendarRow.code == code)
    ).scalar_one_or_none()
    created = row is None
    if row is None:
        row = ShiftCalendarRow(code=code)
        session.add(row)
    row.definition = data.model_dump_json()
    row.updated_at = utcnow()
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="calendar.created" if created else "calendar.changed",
        object_ref=f"calendar:{code}",
        detail=json.loads(row.definition),
    )
    return get_calendar(session, code)


def get_calendar(session: Session, code: str) -> CalendarOut:
    row = _calendar_row(session, code)
    equipment = (
        session.execute(
            select(Equipment.code)
            .join(EquipmentCalendar, EquipmentCalendar.equipment_id == Equipment.id)
            .where(EquipmentCalendar.calendar_id == row.id)
            .order_by(Equipment.code)
        )
        .scalars()
        .all()
    )
    data = CalendarIn.model_validate_json(row.definition)
    return CalendarOut(code=row.code, equipment=list(equipment), **data.model_dump())


def list_calendars(session: Session) -> list[CalendarOut]:
    codes = session.execute(select(ShiftCalendarRow.code).order_by(ShiftCalendarRow.code))
    return [get_calendar(session, c) for c in codes.scalars().all()]


def assign_calendar(
    session: Session, equipment: str, calendar: str, *, actor: Actor
) -> CalendarOut:
    """Make ``equipment`` (a line, work unit...) follow the calendar ``calendar``."""
    unit = get_equipment(session, equipment)
    row = _calendar_row(session, calendar)
    link = session.get(EquipmentCalendar, unit.id)
    if link is None:
        session.add(EquipmentCalendar(equipment_id=unit.id, calendar_id=row.id))
    else:
        link.calendar_id = row.id
    session.flush()
    audit.append(
        session,
        actor=actor.name,
        action="calendar.assigned",
        object_ref=f"equipment:{equipment}",
        detail={"calendar": calendar},
    )
    return get_calendar(session, calendar)


def calendar_for(session: Session, equipment: Equipment) -> tuple[str, ShiftCalendar]:
    """The calendar of ``equipment`` or of its nearest ancestor that has one."""
    node: Equipment | None = equipment
    while node is not None:
        link = session.get(EquipmentCalendar, node.id)
        if link is not None:
            row = session.get_one(ShiftCalendarRow, link.calendar_id)
            return row.code, to_domain(row.code, CalendarIn.model_validate_json(row.definition))
        node = node.parent
    return DEFAULT_CALENDAR_NAME, ROUND_THE_CLOCK


# ------------------------------------------------------------------ state history


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end must carry a time zone offset", object_ref="window")
    if end <= start:
        raise InvalidInput("end must be after start", object_ref="window")
    if (end - start).days > 366:
        raise InvalidInput("a window may span at most 366 days", object_ref="window")


def _changes(session: Session, unit_id: int, start: datetime, end: datetime) -> list[StateChange]:
    """The state in force at ``start`` and every change until ``end``.

    Rows are read as plain columns, not ORM objects: a day of a busy unit is thousands of
    changes, and a line's KPIs read them for every unit."""
    h = EquipmentStateHistory
    before = session.execute(
        select(h.state, h.reason)
        .where(h.equipment_id == unit_id, h.started_at <= start)
        .order_by(h.started_at.desc(), h.id.desc())
        .limit(1)
    ).first()
    during = session.execute(
        select(h.state, h.started_at, h.reason)
        .where(h.equipment_id == unit_id, h.started_at > start, h.started_at < end)
        .order_by(h.started_at, h.id)
    ).all()
    out = []
    if before is not None:
        out.append(StateChange(EquipmentState(before[0]), start, before[1]))
    out.extend(StateChange(EquipmentState(state), at, reason) for state, at, reason in during)
    return out


def _intervals(
    session: Session, unit: Equipment, start: datetime, end: datetime
) -> list[StateInterval]:
    return state_intervals(
        _changes(session, unit.id, start, end), until=min(end, max(start, utcnow()))
    )


def state_report(session: Session, code: str, start: datetime, end: datetime) -> StateReport:
    """The work unit's state intervals (with reason codes) clipped to ``[start, end)``.

    Time before the first known state is not reported (the unit's state is unknown); the
    last interval ends at ``end`` or now, whichever is earlier.
    """
    _check_window(start, end)
    unit = _work_unit(session, code)
    intervals = _intervals(session, unit, start, end)
    totals: dict[str, float] = defaultdict(float)
    rows = []
    for iv in intervals:
        seconds = (iv.end - iv.start).total_seconds()
        totals[iv.state.value] += seconds
        rows.append(
            StateIntervalOut(
                state=iv.state.value, reason=iv.reason, start=iv.start, end=iv.end, seconds=seconds
            )
        )
    return StateReport(
        work_unit=code, start=start, end=end, intervals=rows, seconds_by_state=dict(totals)
    )


def _work_unit(session: Session, code: str) -> Equipment:
    unit = get_equipment(session, code)
    if unit.level != EquipmentLevel.WORK_UNIT:
        raise InvalidInput(f"equipment {code} is a {unit.level}, not a work unit", object_ref=code)
    return unit


# ------------------------------------------------------------------ quantities


@dataclass
class _Quantities:
    items: list[ProducedQuantity]
    without_pru: float
    rework: float
    by_job: dict[str | None, list[float]]
    """[good, scrap] per job order (None: counts no operation claims)."""
    pru: dict[str, float]
    """PRU (s) per job order of the segment it ran on this unit."""


def _pru_by_job(session: Session, unit_id: int) -> dict[str, float]:
    rows = session.execute(
        select(JobOrder.code, OperationsSegment.pru_seconds)
        .join(JobOperation, JobOperation.job_order_id == JobOrder.id)
        .join(OperationsSegment, OperationsSegment.id == JobOperation.segment_id)
        .join(JobOperationUnit, JobOperationUnit.job_operation_id == JobOperation.id)
        .where(JobOperationUnit.work_unit_id == unit_id)
    ).all()
    return {code: pru for code, pru in rows}


def _plant_quantities(
    session: Session, unit: Equipment, start: datetime, end: datetime
) -> dict[str | None, list[float]]:
    in_window = (
        PlantEventRow.work_unit == unit.code,
        PlantEventRow.kind == "count",
        PlantEventRow.ts >= start,
        PlantEventRow.ts < end,
    )
    sums: dict[str | None, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for job, good, scrap in session.execute(
        select(PlantEventRow.job_order, func.sum(PlantEventRow.good), func.sum(PlantEventRow.scrap))
        .where(*in_window, PlantEventRow.job_order.is_not(None))
        .group_by(PlantEventRow.job_order)
    ):
        sums[job][0] += good or 0
        sums[job][1] += scrap or 0
    # Counts that name no job order belong to the operation running on the unit then
    # (from its start to its end on this unit: an operation may run on several).
    ops = session.execute(
        select(JobOrder.code, JobOperationUnit.started_at, JobOperationUnit.ended_at)
        .join(JobOperation, JobOperation.job_order_id == JobOrder.id)
        .join(JobOperationUnit, JobOperationUnit.job_operation_id == JobOperation.id)
        .where(JobOperationUnit.work_unit_id == unit.id, JobOperationUnit.started_at < end)
        .order_by(JobOperationUnit.started_at)
    ).all()
    for ts, good, scrap in session.execute(
        select(PlantEventRow.ts, PlantEventRow.good, PlantEventRow.scrap).where(
            *in_window, PlantEventRow.job_order.is_(None)
        )
    ):
        job = next(
            (
                code
                for code, s, e in reversed(ops)
                if s is not None and s <= ts and (e is None or ts <= e)
            ),
            None,
        )
        sums[job][0] += good or 0
        sums[job][1] += scrap or 0
    return sums


def _operation_quantities(
    session: Session, unit: Equipment, start: datetime, end: datetime
) -> dict[str | None, list[float]]:
    sums: dict[str | None, list[float]] = defaultdict(lambda: [0.0, 0.0])
    # Each operation's share at this unit (it may run on several: a parallel station).
    for job, good, scrap in session.execute(
        select(JobOrder.code, JobOperationUnit.good, JobOperationUnit.scrap)
        .join(JobOperation, JobOperation.job_order_id == JobOrder.id)
        .join(JobOperationUnit, JobOperationUnit.job_operation_id == JobOperation.id)
        .where(
            JobOperationUnit.work_unit_id == unit.id,
            JobOperationUnit.started_at < end,
            (JobOperationUnit.ended_at.is_(None)) | (JobOperationUnit.ended_at >= start),
        )
    ):
        sums[job][0] += good
        sums[job][1] += scrap
    return sums


def _rework(session: Session, unit: Equipment, start: datetime, end: datetime) -> float:
    ncs = (
        select(Nonconformance.id, Nonconformance.quantity)
        .join(MeasurementResult, MeasurementResult.nonconformance_id == Nonconformance.id)
        .where(
            MeasurementResult.work_unit_id == unit.id,
            Nonconformance.disposition == "rework",
            Nonconformance.opened_at >= start,
            Nonconformance.opened_at < end,
        )
        .distinct()
    )
    return float(sum(q or 0 for _, q in session.execute(ncs)))


def _quantities(
    session: Session, unit: Equipment, start: datetime, end: datetime, source: str
) -> _Quantities:
    if source == "plant":
        sums = _plant_quantities(session, unit, start, end)
    elif source == "operations":
        sums = _operation_quantities(session, unit, start, end)
    else:
        raise InvalidInput(
            f"quantity_source {source!r} is not one of {', '.join(QUANTITY_SOURCES)}",
            object_ref="quantity_source",
        )
    pru = _pru_by_job(session, unit.id)
    items: list[ProducedQuantity] = []
    without = 0.0
    for job, (good, scrap) in sums.items():
        if job is not None and job in pru:
            items.append(ProducedQuantity(good=good, scrap=scrap, pru_seconds=pru[job]))
        else:
            # Counted, but no routing says how long a unit should take: quality ratio and
            # throughput include these units, effectiveness cannot.
            items.append(ProducedQuantity(good=good, scrap=scrap, pru_seconds=0.0))
            without += good + scrap
    return _Quantities(items, without, _rework(session, unit, start, end), dict(sums), pru)


# ------------------------------------------------------------------ KPIs


def _unit_parts(
    session: Session, unit: Equipment, start: datetime, end: datetime, source: str
) -> tuple[str, TimeElements, _Quantities]:
    name, calendar = calendar_for(session, unit)
    elements = time_elements(
        planned_operation=calendar.planned_operation(start, end),
        planned_downtime=calendar.planned_downtime(start, end),
        states=_intervals(session, unit, start, end),
    )
    return name, elements, _quantities(session, unit, start, end, source)


def _report(
    equipment: Equipment,
    start: datetime,
    end: datetime,
    calendar: str,
    source: str,
    kpis: Kpis,
    without_pru: float,
    units: Sequence[str] = (),
    output: Sequence[str] = (),
    constraint: str | None = None,
) -> KpiReport:
    t = kpis.time
    return KpiReport(
        equipment=equipment.code,
        level=equipment.level,
        start=start,
        end=end,
        calendar=calendar,
        quantity_source=source,
        time=TimeElementsOut(
            pot=t.pot,
            pdot=t.pdot,
            pbt=t.pbt,
            apt=t.apt,
            aust=t.aust,
            adet=t.adet,
            adot=t.adot,
            aubt=t.aubt,
            apt_outside_pbt=t.apt_outside_pbt,
        ),
        produced_quantity=kpis.produced_quantity,
        good_quantity=kpis.good_quantity,
        scrap_quantity=kpis.scrap_quantity,
        rework_quantity=kpis.rework_quantity,
        planned_run_time=kpis.planned_run_time,
        quantity_without_pru=without_pru,
        availability=kpis.availability,
        effectiveness=kpis.effectiveness,
        quality_ratio=kpis.quality_ratio,
        oee=kpis.oee,
        throughput_per_hour=kpis.throughput_per_hour,
        scrap_ratio=kpis.scrap_ratio,
        first_pass_yield=kpis.first_pass_yield,
        work_units=list(units),
        output_work_units=list(output),
        constraint_work_unit=constraint,
        master_data_errors=master_data_errors(kpis),
    )


def work_unit_kpis(
    session: Session, code: str, start: datetime, end: datetime, *, quantity_source: str = "plant"
) -> KpiReport:
    """ISO 22400-2 KPIs of one work unit over ``[start, end)``."""
    _check_window(start, end)
    unit = _work_unit(session, code)
    name, elements, q = _unit_parts(session, unit, start, end, quantity_source)
    kpis = compute_kpis(elements, q.items, rework=q.rework)
    return _report(unit, start, end, name, quantity_source, kpis, q.without_pru)


def _work_units_below(session: Session, root: Equipment) -> list[Equipment]:
    children: dict[int | None, list[Equipment]] = defaultdict(list)
    for row in session.execute(select(Equipment)).scalars():
        children[row.parent_id].append(row)
    out: list[Equipment] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.level == EquipmentLevel.WORK_UNIT:
            out.append(node)
        stack.extend(children.get(node.id, []))
    return sorted(out, key=lambda e: e.code)


def _output_units(session: Session, unit_ids: Sequence[int]) -> dict[str, set[int]]:
    """Per job order run on ``unit_ids``: the work units of its last operation there (the
    highest sequence; the units it actually ran on, several for a parallel station, else
    the planned one), where its product leaves."""
    rows = session.execute(
        select(
            JobOrder.code,
            JobOperation.sequence,
            JobOperationUnit.work_unit_id,
            JobOperation.planned_work_unit_id,
        )
        .join(JobOrder, JobOrder.id == JobOperation.job_order_id)
        .outerjoin(JobOperationUnit, JobOperationUnit.job_operation_id == JobOperation.id)
        .where(
            (JobOperationUnit.work_unit_id.in_(unit_ids))
            | (JobOperation.planned_work_unit_id.in_(unit_ids))
        )
        .order_by(JobOrder.code, JobOperation.sequence)
    ).all()
    out: dict[str, set[int]] = {}
    last: dict[str, int] = {}
    for code, sequence, actual, planned in rows:  # ascending sequence: the last one wins
        unit = actual if actual in unit_ids else planned
        if unit is None or unit not in unit_ids:
            continue
        if last.get(code) != sequence:
            last[code], out[code] = sequence, set()
        out[code].add(unit)
    return out


def line_kpis(
    session: Session, code: str, start: datetime, end: datetime, *, quantity_source: str = "plant"
) -> KpiReport:
    """KPIs of a line (or any node above work units) over ``[start, end)``.

    ISO 22400-2:2014 defines its KPIs for a work unit; a line is measured as one, by what
    leaves it and at its constraint:

    - good quantity (GQ) is what leaves the line: each job order's good units counted at
      the work unit of its last operation (its output), not the sum over every unit (a
      bottle filled, capped, labelled and packed is one bottle, not four);
    - scrap quantity (SQ) is the scrap of every work unit of the line (each scrapped unit
      is lost to the line's output); PQ = GQ + SQ;
    - the time elements (PBT, APT, ADET...) and PRU are those of the line's constraint: the
      work unit with the most planned run time (sum of PRU x PQ) in the window, i.e. the
      one whose routing rate limits the line (theory of constraints: an hour lost there is
      an hour lost for the line). Without any PRU, the output unit stands in.

    So availability = APT / PBT and effectiveness = PRU x PQ / APT are the constraint's
    (the line's pace: its own units, so work still inside the line at the window's end is
    not lost speed), quality ratio = GQ / PQ of the line, throughput = the line's PQ per
    hour of the constraint's busy time, and OEE their product: the time elements of ISO
    22400-2:2014, 5.1, on the work unit time model of 5.2, and the KPI formulas of clause
    6 as for any work unit. The report names the output and constraint units.
    """
    _check_window(start, end)
    node = get_equipment(session, code)
    units = _work_units_below(session, node)
    calendars: set[str] = set()
    parts: dict[int, tuple[TimeElements, _Quantities]] = {}
    for unit in units:
        name, elements, q = _unit_parts(session, unit, start, end, quantity_source)
        calendars.add(name)
        parts[unit.id] = (elements, q)
    by_id = {u.id: u for u in units}
    output = _output_units(session, list(by_id))
    output_ids = set().union(*output.values())

    def planned(unit_id: int) -> float:
        q = parts[unit_id][1]
        return sum(q.pru.get(j, 0.0) * (g + s) for j, (g, s) in q.by_job.items() if j)

    ranked = sorted(by_id, key=lambda i: (planned(i), i in output_ids, by_id[i].code))
    constraint: int | None = None
    if ranked and planned(ranked[-1]) > 0:
        constraint = ranked[-1]
    elif output_ids:
        constraint = max(output_ids, key=lambda i: by_id[i].code)
    good: dict[str | None, float] = defaultdict(float)
    scrap: dict[str | None, float] = defaultdict(float)
    for unit_id, (_, q) in parts.items():
        for job, (g, s) in q.by_job.items():
            scrap[job] += s
            # Counts no operation claims leave the line only at an output unit.
            if (job is None and unit_id in output_ids) or (job and unit_id in output.get(job, ())):
                good[job] += g
    items: list[ProducedQuantity] = []
    without = 0.0
    for job in sorted(set(good) | set(scrap), key=lambda j: j or ""):
        prus = [parts[u][1].pru[job] for u in parts if job and job in parts[u][1].pru]
        pru = 0.0
        if job and constraint is not None and job in parts[constraint][1].pru:
            pru = parts[constraint][1].pru[job]
        elif prus:
            pru = max(prus)
        if pru <= 0:
            without += good[job] + scrap[job]
        items.append(ProducedQuantity(good=good[job], scrap=scrap[job], pru_seconds=pru))
    rework = sum(q.rework for _, q in parts.values())
    time = parts[constraint][0] if constraint is not None else ZERO_TIME
    kpis = compute_kpis(time, items, rework=rework)
    if constraint is not None:
        # The line's pace is its constraint's: its own units over its own running time.
        # The line's PQ (what left it) would count the units still inside the line at the
        # window's end as lost speed (a batch line's hours of work in process).
        pace = compute_kpis(time, parts[constraint][1].items).effectiveness
        avail, quality = kpis.availability, kpis.quality_ratio
        oee: float | None = None
        if avail is not None and pace is not None and quality is not None:
            oee = avail * pace * quality
        kpis = replace(kpis, effectiveness=pace, oee=oee)
    return _report(
        node,
        start,
        end,
        ", ".join(sorted(calendars)) or "-",
        quantity_source,
        kpis,
        without,
        [u.code for u in units],
        sorted(by_id[i].code for i in output_ids),
        by_id[constraint].code if constraint is not None else None,
    )
