"""Reconciliation: what the MES recorded against what the plant really did.

Both sides are brought to the same plain shape, :class:`Records` (per work unit: good,
scrap, seconds in each state; per job order: good, scrap, lots consumed and produced; the
genealogy edges lot in -> lot out), and compared row by row. Each row keeps both values and
their difference; every row that does not match becomes a sentence in ``mismatches`` naming
the entity, the quantity and both values, so a validation engineer can read what went wrong
without opening the MES.

Counts (units, lot quantities, genealogy edges) must match exactly. Seconds in a state may
differ by ``duration_tolerance`` (timestamps cross the wire at millisecond resolution, and
the state in force at the end of the run is cut at the moment each side is read).

Times too (issue 13, "one clock"): per operation of a job order, its start and end as the
MES recorded them against when the bench's people really started and completed it, both
as plant seconds (since the plant's start), within ``time_tolerance`` (the scenario's
tick). A MES that stamped its own wall clock, or a compressed one, is off by hours here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twin.scenario.report import ReconciliationReport, ReconciliationRow


@dataclass
class UnitRecord:
    """What happened at one work unit: units made and scrapped, seconds in each state."""

    good: int = 0
    scrap: int = 0
    state_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class OrderRecord:
    """What happened to one job order: units, and lot quantities consumed and produced."""

    good: int = 0
    scrap: int = 0
    lots_consumed: dict[str, float] = field(default_factory=dict)
    lots_produced: dict[str, float] = field(default_factory=dict)


@dataclass
class OperationTimes:
    """An operation's actual start and end (ISA-95 Part 3 job response), plant seconds."""

    start: float | None = None
    end: float | None = None


@dataclass
class LabourHours:
    """Attendance and labour in hours (ISA-95 Part 3 personnel actuals): attendance and
    labour booked per person, labour booked per job order."""

    attendance: dict[str, float] = field(default_factory=dict)
    by_person: dict[str, float] = field(default_factory=dict)
    by_order: dict[str, float] = field(default_factory=dict)


@dataclass
class Records:
    """One side of a reconciliation (the twin's ledger or the MES's records)."""

    work_units: dict[str, UnitRecord] = field(default_factory=dict)
    job_orders: dict[str, OrderRecord] = field(default_factory=dict)
    genealogy: set[tuple[str, str]] = field(default_factory=set)
    """Edges ``(lot in, lot out)``."""
    genealogy_at: set[tuple[str, str, str]] | None = None
    """Edges ``(lot in, lot out, work unit)``: where the input lot was consumed (ISA-95:
    an edge belongs to the consuming operation); ``None`` when that side cannot tell."""
    operation_times: dict[tuple[str, str], OperationTimes] | None = None
    """Per (job order, operation segment), when it started and ended in plant seconds;
    None (the default) when that side cannot tell: then no time is compared, and the run's
    report says so. An adapter that reads times back sets a dict."""
    operation_seconds: dict[tuple[str, str], float] | None = None
    """Per (job order, operation segment), the seconds the MES recorded it running, for
    an MES that keeps a duration but no start and end time (a Tryton work cycle); checked
    against the other side's ``operation_times`` (end - start). None: not read."""
    record_times: dict[str, list[float]] | None = None
    """Every other timestamp that side keeps of the run, per kind of record (consumptions,
    job order start/end, nonconformances, signatures), in plant seconds; each must lie on
    the plant's timeline of the run (``reconcile``'s ``timeline_end``). None: not read."""
    operation_counts: dict[tuple[str, str], tuple[float, float]] | None = None
    """Per (job order, operation segment), the good and scrap units credited to it, over
    every work unit it ran on (a parallel station's several); None when that side cannot
    tell (then not compared). An operation one side has no counts for and the other none
    either (0 and 0) is not listed."""
    state_window: dict[str, float] = field(default_factory=dict)
    """Per work unit, the simulated second from which ``state_seconds`` are counted when
    that side could not give the whole run (e.g. an API that returns the newest N state
    changes only); the other side is then clipped to the same window."""
    labour: LabourHours | None = None
    """Hours per person and job order; ``None`` when that side cannot tell (an adapter
    without the labour capability): then labour is not reconciled."""
    labour_from_operations: bool = False
    """True when the MES books labour with the operation, not on its own (a Tryton
    timesheet line per completed work cycle): the operator who started an operation is
    booked its running time, on its job order. The twin's side is then derived from the
    operations the bench's people ran (``operation_labour``), not from clock actions."""
    per_work_unit: bool = True
    """False when that side keeps no quantities per work unit (an MES that books counts
    at order level only: a Tryton work cycle holds a duration, no quantity); then work
    units are not reconciled (not checked, and the run's report says so) instead of every
    unit reading "MES has no record"."""


_EPS = 1e-9
LABOUR_TOLERANCE_H = 0.001
"""Hours may differ by 3.6 s: each clock and booking time crosses the wire in milliseconds."""


def _row(
    entity: str,
    ident: str,
    quantity: str,
    twin: float | None,
    mes: float | None,
    tolerance: float = 0.0,
) -> ReconciliationRow:
    if twin is None or mes is None:
        return ReconciliationRow(
            entity=entity,
            id=ident,
            quantity=quantity,
            twin=twin,
            mes=mes,
            difference=None,
            tolerance=tolerance,
            matches=twin is None and mes is None,
        )
    diff = mes - twin
    return ReconciliationRow(
        entity=entity,
        id=ident,
        quantity=quantity,
        twin=twin,
        mes=mes,
        difference=diff,
        tolerance=tolerance,
        matches=abs(diff) <= tolerance + _EPS,
    )


def _describe(row: ReconciliationRow) -> str:
    def show(v: float | None) -> str:
        return "nothing" if v is None else f"{v:g}"

    where = f"{row.entity} {row.id}: {row.quantity}"
    if row.twin is None:
        return f"{where}: MES recorded {show(row.mes)} but the plant has no such record"
    if row.mes is None:
        return f"{where}: plant {show(row.twin)}, MES has no record"
    tol = f" (tolerance {row.tolerance:g})" if row.tolerance else ""
    return (
        f"{where}: plant {show(row.twin)}, MES {show(row.mes)}, difference {row.difference:+g}{tol}"
    )


def reconcile(
    twin: Records,
    mes: Records,
    *,
    duration_tolerance: float = 1.0,
    compare_state_durations: bool = True,
    time_tolerance: float = 1.0,
    timeline_end: float | None = None,
    labour_tolerance: float = LABOUR_TOLERANCE_H,
) -> ReconciliationReport:
    """Compare ``mes`` against ``twin`` (the ground truth); rows are sorted, deterministic.
    With ``timeline_end`` (the run's last plant second), every timestamp in
    ``mes.record_times`` must lie in ``[0, timeline_end + time_tolerance]``. Labour is
    compared only when both sides have it (hours, ``labour_tolerance``)."""
    rows: list[ReconciliationRow] = []
    if twin.operation_times is not None and mes.operation_times is not None:
        rows.extend(_time_rows(twin.operation_times, mes.operation_times, time_tolerance))
    if twin.operation_times is not None and mes.operation_seconds is not None:
        rows.extend(_duration_rows(twin.operation_times, mes.operation_seconds, time_tolerance))
    if timeline_end is not None and mes.record_times is not None:
        for kind, times in sorted(mes.record_times.items()):
            off = sum(1 for t in times if not -_EPS <= t <= timeline_end + time_tolerance)
            rows.append(
                _row(
                    "timeline",
                    kind,
                    f"records off the plant's timeline (of {len(times)})",
                    0.0,
                    float(off),
                )
            )
    units = set(twin.work_units) | set(mes.work_units)
    if not (twin.per_work_unit and mes.per_work_unit):
        units = set()
    for wu in sorted(units):
        t = twin.work_units.get(wu)
        m = mes.work_units.get(wu)
        rows.append(_row("work_unit", wu, "good", _opt(t, "good"), _opt(m, "good")))
        rows.append(_row("work_unit", wu, "scrap", _opt(t, "scrap"), _opt(m, "scrap")))
        if compare_state_durations:
            t_states = t.state_seconds if t else {}
            m_states = m.state_seconds if m else {}
            for state in sorted(set(t_states) | set(m_states)):
                # A state one side never saw lasted 0 s there; comparing 0 keeps the row
                # numeric instead of "missing", which is what a reader expects here.
                rows.append(
                    _row(
                        "work_unit",
                        wu,
                        f"seconds {state}",
                        t_states.get(state, 0.0) if t else None,
                        m_states.get(state, 0.0) if m else None,
                        duration_tolerance,
                    )
                )
    for jo in sorted(set(twin.job_orders) | set(mes.job_orders)):
        to = twin.job_orders.get(jo)
        mo = mes.job_orders.get(jo)
        rows.append(_row("job_order", jo, "good", _opt(to, "good"), _opt(mo, "good")))
        rows.append(_row("job_order", jo, "scrap", _opt(to, "scrap"), _opt(mo, "scrap")))
        for kind in ("lots_consumed", "lots_produced"):
            t_lots: dict[str, float] = getattr(to, kind) if to else {}
            m_lots: dict[str, float] = getattr(mo, kind) if mo else {}
            label = "consumed" if kind == "lots_consumed" else "produced"
            for lot in sorted(set(t_lots) | set(m_lots)):
                rows.append(
                    _row("job_order", jo, f"lot {lot} {label}", t_lots.get(lot), m_lots.get(lot))
                )
    if twin.operation_counts is not None and mes.operation_counts is not None:
        rows.extend(_operation_count_rows(twin.operation_counts, mes.operation_counts))
    for edge in sorted(twin.genealogy | mes.genealogy):
        rows.append(
            _row(
                "genealogy",
                f"{edge[0]} -> {edge[1]}",
                "edge",
                1.0 if edge in twin.genealogy else None,
                1.0 if edge in mes.genealogy else None,
            )
        )
    if twin.genealogy_at is not None and mes.genealogy_at is not None:
        for lot_in, lot_out, unit in sorted(twin.genealogy_at | mes.genealogy_at):
            booked = (lot_in, lot_out, unit)
            rows.append(
                _row(
                    "genealogy",
                    f"{lot_in} -> {lot_out}",
                    f"consumed at {unit}",
                    1.0 if booked in twin.genealogy_at else None,
                    1.0 if booked in mes.genealogy_at else None,
                )
            )
    if twin.labour is not None and mes.labour is not None:
        rows += _labour_rows(twin.labour, mes.labour, labour_tolerance)
    mismatches = [_describe(r) for r in rows if not r.matches]
    return ReconciliationReport(exact=not mismatches, rows=rows, mismatches=mismatches)


def _operation_count_rows(
    twin: dict[tuple[str, str], tuple[float, float]],
    mes: dict[tuple[str, str], tuple[float, float]],
) -> list[ReconciliationRow]:
    """Good and scrap per operation: what each work unit it ran on made, credited to it."""
    rows = []
    for key in sorted(set(twin) | set(mes)):
        t, m = twin.get(key), mes.get(key)
        if not any(t or ()) and not any(m or ()):
            continue  # nothing made on either side (e.g. an order not yet on the line)
        for i, quantity in enumerate(("good", "scrap")):
            rows.append(
                _row(
                    "operation",
                    f"{key[0]}/{key[1]}",
                    quantity,
                    None if t is None else float(t[i]),
                    None if m is None else float(m[i]),
                )
            )
    return rows


def _time_rows(
    twin: dict[tuple[str, str], OperationTimes],
    mes: dict[tuple[str, str], OperationTimes],
    tolerance: float,
) -> list[ReconciliationRow]:
    rows = []
    for key in sorted(set(twin) | set(mes)):
        t, m = twin.get(key, OperationTimes()), mes.get(key, OperationTimes())
        for quantity in ("start", "end"):
            rows.append(
                _row(
                    "operation",
                    f"{key[0]}/{key[1]}",
                    f"{quantity} (plant s)",
                    getattr(t, quantity),
                    getattr(m, quantity),
                    tolerance,
                )
            )
    return rows


def _duration_rows(
    twin: dict[tuple[str, str], OperationTimes],
    mes: dict[tuple[str, str], float],
    tolerance: float,
) -> list[ReconciliationRow]:
    """Seconds each operation ran: end - start of the bench's actions against the
    duration the MES recorded (operations not yet ended on the twin's side have none)."""
    rows = []
    for key in sorted(set(twin) | set(mes)):
        t = twin.get(key, OperationTimes())
        ran = None if t.start is None or t.end is None else round(t.end - t.start, 3)
        if ran is None and key not in mes:
            continue  # still running on both sides: nothing to compare
        rows.append(
            _row(
                "operation",
                f"{key[0]}/{key[1]}",
                "duration (s)",
                ran,
                mes.get(key),
                2 * tolerance,
            )
        )
    return rows


def operation_labour(
    times: dict[tuple[str, str], OperationTimes], starters: dict[tuple[str, str], str]
) -> LabourHours:
    """Labour as an MES that books it with the operation sees it: each completed
    operation's running hours to the person who started it and to its job order."""
    out = LabourHours()
    for (order, segment), t in times.items():
        person = starters.get((order, segment))
        if t.start is None or t.end is None or person is None:
            continue
        hours = (t.end - t.start) / 3600.0
        out.by_person[person] = out.by_person.get(person, 0.0) + hours
        out.by_order[order] = out.by_order.get(order, 0.0) + hours
    return out


def _opt(rec: UnitRecord | OrderRecord | None, attr: str) -> float | None:
    return None if rec is None else float(getattr(rec, attr))


def _labour_rows(twin: LabourHours, mes: LabourHours, tolerance: float) -> list[ReconciliationRow]:
    """Attendance and labour hours per person, labour hours per job order. A person or
    order nobody booked on either side has no row."""
    rows: list[ReconciliationRow] = []
    for person in sorted(set(twin.attendance) | set(mes.attendance)):
        rows.append(
            _row(
                "person",
                person,
                "attendance hours",
                twin.attendance.get(person, 0.0),
                mes.attendance.get(person, 0.0),
                tolerance,
            )
        )
    for person in sorted(set(twin.by_person) | set(mes.by_person)):
        rows.append(
            _row(
                "person",
                person,
                "labour hours",
                twin.by_person.get(person, 0.0),
                mes.by_person.get(person, 0.0),
                tolerance,
            )
        )
    for order in sorted(set(twin.by_order) | set(mes.by_order)):
        rows.append(
            _row(
                "job_order",
                order,
                "labour hours",
                twin.by_order.get(order, 0.0),
                mes.by_order.get(order, 0.0),
                tolerance,
            )
        )
    return rows
