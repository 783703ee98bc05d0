"""Batch ingest of plant events (ISA-95 Part 3 production data collection), rule 6.

One transaction per batch: a multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` into
``plant_event`` (keyed ``(source, sequence)``) tells which events are new; only those are
applied, aggregated: one state update per work unit (plus a history row per state event),
one count update per operation, one audit entry for the whole batch. Never one ORM object
per event: that caps ingest at a few thousand events a second (PERFORMANCE-NOTES.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.models import (
    Equipment,
    EquipmentStateHistory,
    JobOperation,
    JobOrder,
    PlantEventRow,
)
from mes_core.persistence.security import Actor
from mes_core.schemas.plant_events import (
    AlarmEvent,
    CountEvent,
    IngestResult,
    MeasurementEvent,
    PlantEvent,
    PlantEventBatch,
    StateChangeEvent,
)

_EMPTY: dict[str, Any] = {
    "state": None,
    "reason": None,
    "good": None,
    "scrap": None,
    "job_order": None,
    "material_lot": None,
    "characteristic": None,
    "value": None,
    "unit": None,
    "alarm": None,
    "severity": None,
    "message": None,
    "active": None,
}


def _row(event: PlantEvent, received_at: Any) -> dict[str, Any]:
    row = dict(_EMPTY)
    row.update(
        source=event.source,
        sequence=event.sequence,
        kind=event.kind,
        work_unit=event.work_unit,
        ts=event.timestamp,
        received_at=received_at,
    )
    if isinstance(event, StateChangeEvent):
        row.update(state=event.state.value, reason=event.reason)
    elif isinstance(event, CountEvent):
        row.update(
            good=event.good,
            scrap=event.scrap,
            job_order=event.job_order,
            material_lot=event.material_lot,
        )
    elif isinstance(event, MeasurementEvent):
        row.update(
            characteristic=event.characteristic,
            value=event.value,
            unit=event.unit,
            job_order=event.job_order,
            material_lot=event.material_lot,
        )
    elif isinstance(event, AlarmEvent):
        row.update(
            alarm=event.alarm, severity=event.severity, message=event.message, active=event.active
        )
    return row


_COLUMNS = (
    "source",
    "sequence",
    "kind",
    "work_unit",
    "ts",
    "received_at",
    *_EMPTY.keys(),
)


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """Insert, ignoring keys already stored; return the keys that were new."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _insert_new_postgres(session, rows)
    table = PlantEventRow.__table__
    assert isinstance(table, Table)
    if dialect != "sqlite":  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    stmt = (
        sqlite_insert(table)
        .on_conflict_do_nothing(index_elements=["source", "sequence"])
        .returning(table.c.source, table.c.sequence)
    )
    result = session.execute(stmt, rows)
    return {(r[0], r[1]) for r in result.all()}


def _insert_new_postgres(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, int]]:
    # psycopg's own executemany (pipelined, one small statement parsed once) with
    # RETURNING: SQLAlchemy's multi-VALUES form makes psycopg re-parse a statement with
    # tens of thousands of placeholders per page, which capped ingest near 2k events/s.
    placeholders = ", ".join(["%s"] * len(_COLUMNS))
    sql = (
        f"INSERT INTO plant_event ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
        "ON CONFLICT (source, sequence) DO NOTHING RETURNING source, sequence"
    )
    params = [tuple(row[c] for c in _COLUMNS) for row in rows]
    raw = session.connection().connection.driver_connection
    new: set[tuple[str, int]] = set()
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        cursor.executemany(sql, params, returning=True)
        while True:
            for source, sequence in cursor.fetchall():
                new.add((source, sequence))
            if not cursor.nextset():
                break
    return new


@dataclass
class WorkUnitRef:
    id: int
    code: str
    state_since: Any


def apply_measurement_events(
    session: Session, events: Sequence[MeasurementEvent], units: dict[str, WorkUnitRef]
) -> None:
    """Apply newly ingested measurement events. They are already stored in ``plant_event``;
    the quality part (``mes_core.quality``) extends this to check spec limits and SPC rules
    (rule 5) and to hold lots and job orders."""
    # Imported here: the quality part builds on this module's callers (no import cycle).
    from mes_core.quality.ingest import apply_measurement_events as judge_measurements

    judge_measurements(session, events, units)


def ingest_batch(session: Session, batch: PlantEventBatch, *, actor: Actor) -> IngestResult:
    """Store a batch idempotently and apply its new events (caller commits)."""
    received_at = utcnow()
    if not batch.events:
        return IngestResult(accepted=0, duplicates=0, received_at=received_at)
    # First occurrence wins within a batch, as it does across batches.
    unique: dict[tuple[str, int], PlantEvent] = {}
    for ev in batch.events:
        unique.setdefault((ev.source, ev.sequence), ev)
    new_keys = _insert_new(session, [_row(ev, received_at) for ev in unique.values()])
    new = [ev for key, ev in unique.items() if key in new_keys]

    codes = {ev.work_unit for ev in new}
    units = {
        r.code: WorkUnitRef(r.id, r.code, r.state_since)
        for r in session.execute(
            select(Equipment.id, Equipment.code, Equipment.state_since).where(
                Equipment.code.in_(codes)
            )
        )
    }
    unknown = sorted(codes - units.keys())

    states = [ev for ev in new if isinstance(ev, StateChangeEvent) and ev.work_unit in units]
    counts = [ev for ev in new if isinstance(ev, CountEvent) and ev.work_unit in units]
    measurements = [ev for ev in new if isinstance(ev, MeasurementEvent) and ev.work_unit in units]
    last_states = _apply_states(session, states, units, actor)
    applied_counts, unassigned = _apply_counts(session, counts, units)
    apply_measurement_events(session, measurements, units)

    if new:
        audit.append(
            session,
            actor=actor.name,
            action="plant_events.ingested",
            object_ref="plant_events",
            detail={
                "accepted": len(new),
                "duplicates": len(batch.events) - len(new),
                "states": last_states,
                "counts": applied_counts,
                "unassigned_counts": unassigned,
                "unknown_work_units": unknown,
            },
        )
    return IngestResult(
        accepted=len(new),
        duplicates=len(batch.events) - len(new),
        received_at=received_at,
        unknown_work_units=unknown,
    )


def _apply_states(
    session: Session,
    events: list[StateChangeEvent],
    units: dict[str, WorkUnitRef],
    actor: Actor,
) -> dict[str, str]:
    if not events:
        return {}
    events.sort(key=lambda e: (e.timestamp, e.source, e.sequence))
    session.execute(
        insert(EquipmentStateHistory),
        [
            {
                "equipment_id": units[e.work_unit].id,
                "state": e.state.value,
                "reason": e.reason,
                "started_at": e.timestamp,
                "source": e.source,
            }
            for e in events
        ],
    )
    last: dict[str, StateChangeEvent] = {}
    for e in events:
        last[e.work_unit] = e
    applied: dict[str, str] = {}
    for code, e in last.items():
        # A replayed old event must not move the current state backwards in time.
        result = session.execute(
            update(Equipment)
            .where(Equipment.id == units[code].id, Equipment.state_since <= e.timestamp)
            .values(state=e.state.value, state_reason=e.reason, state_since=e.timestamp)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            applied[code] = e.state.value
    return applied


def _apply_counts(
    session: Session, events: list[CountEvent], units: dict[str, WorkUnitRef]
) -> tuple[dict[str, dict[str, int]], int]:
    """Add good/scrap to the job order's operation at the work unit: the job order the
    event names, or else the one running there. Counts that fit none stay stored only."""
    if not events:
        return {}, 0
    sums: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        s = sums[(e.work_unit, e.job_order)]
        s[0] += e.good
        s[1] += e.scrap
    unit_ids = [units[code].id for code, _ in sums]
    ops = session.execute(
        select(JobOperation.id, JobOperation.work_unit_id, JobOperation.state, JobOrder.code)
        .join(JobOrder, JobOrder.id == JobOperation.job_order_id)
        .where(JobOperation.work_unit_id.in_(unit_ids))
        .order_by(JobOperation.started_at)
    ).all()
    running: dict[int | None, int] = {}
    by_job: dict[tuple[int | None, str], int] = {}
    for op_id, op_unit, state, job_code in ops:
        if state == "running":
            running[op_unit] = op_id
        by_job[(op_unit, job_code)] = op_id
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    applied: dict[str, dict[str, int]] = {}
    unassigned = 0
    for (code, job), (good, scrap) in sums.items():
        unit_id: int | None = units[code].id
        target = by_job.get((unit_id, job)) if job else running.get(unit_id)
        if target is None:
            unassigned += good + scrap
            continue
        deltas[target][0] += good
        deltas[target][1] += scrap
        a = applied.setdefault(code, {"good": 0, "scrap": 0})
        a["good"] += good
        a["scrap"] += scrap
    for op_id, (good, scrap) in deltas.items():
        session.execute(
            update(JobOperation)
            .where(JobOperation.id == op_id)
            .values(good=JobOperation.good + good, scrap=JobOperation.scrap + scrap)
        )
    return applied, unassigned
