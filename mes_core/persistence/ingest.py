"""Batch ingest of plant events (ISA-95 Part 3 production data collection), rule 6.

One transaction per batch: the batch goes into ``plant_event`` (keyed ``(source,
sequence)``) so that the keys stored already are known; only the other events are applied,
aggregated: one state update per work unit (plus a history row per state event), one count
update per operation, one audit entry for the whole batch. Never one ORM object per event:
that caps ingest at a few thousand events a second (PERFORMANCE-NOTES.md).

Issue 8: per event, Python does as little as it can (a tuple per row, no dictionaries) and
PostgreSQL too: a new batch (nearly every batch) is copied straight into ``plant_event``;
only a batch that repeats a stored key is staged and inserted ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from psycopg.errors import UniqueViolation
from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.models import (
    AuditHead,
    Equipment,
    EquipmentStateHistory,
    JobOperation,
    JobOperationUnit,
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

_NONE_9 = (None,) * 9
_NONE_11 = (None,) * 11


def _stage_row(event: PlantEvent, received_at: datetime) -> tuple[Any, ...]:
    """The ``plant_event`` row of ``event``, in the order of :data:`_PG_COLUMN_TYPES`.

    A tuple built in one step per kind: this runs once per event, and a dictionary per row
    (then a tuple of it) cost ~1.5 us an event, a tenth of the MES's whole share (issue 8).
    """
    head = (event.source, event.sequence, event.kind, event.work_unit, event.timestamp)
    if isinstance(event, CountEvent):
        # state, reason, good, scrap, job_order, material_lot, characteristic, value, unit,
        # alarm, severity, message, active
        return (
            *head,
            received_at,
            None,
            None,
            event.good,
            event.scrap,
            event.job_order,
            event.material_lot,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    if isinstance(event, StateChangeEvent):
        return (*head, received_at, event.state.value, event.reason, *_NONE_11)
    if isinstance(event, AlarmEvent):
        return (
            *head,
            received_at,
            *_NONE_9,
            event.alarm,
            event.severity,
            event.message,
            event.active,
        )
    return (
        *head,
        received_at,
        None,
        None,
        None,
        None,
        event.job_order,
        event.material_lot,
        event.characteristic,
        event.value,
        event.unit,
        None,
        None,
        None,
        None,
    )


_EQUIPMENT = Equipment.__table__
assert isinstance(_EQUIPMENT, Table)


def _unnest(values: list[Any], item: type[String] | type[Integer]) -> Select[Any]:
    """``SELECT unnest(:values)``: the members of a list passed as one array parameter."""
    return select(func.unnest(bindparam("values", values, type_=ARRAY(item))))


#: Columns of plant_event with their PostgreSQL types (staging table, COPY, SQLite insert).
_PG_COLUMN_TYPES = {
    "source": "text",
    "sequence": "bigint",
    "kind": "text",
    "work_unit": "text",
    "ts": "timestamptz",
    "received_at": "timestamptz",
    "state": "text",
    "reason": "text",
    "good": "integer",
    "scrap": "integer",
    "job_order": "text",
    "material_lot": "text",
    "characteristic": "text",
    "value": "double precision",
    "unit": "text",
    "alarm": "text",
    "severity": "integer",
    "message": "text",
    "active": "boolean",
}


_Key = tuple[str, int]


def _insert_new(session: Session, rows: list[tuple[Any, ...]]) -> tuple[set[_Key], bool]:
    """Insert, ignoring keys already stored; return the keys that were stored already, and
    whether the state history of the new state events was written too (on PostgreSQL, when
    some keys were stored already: see :func:`_insert_new_postgres`).

    ``rows`` (from :func:`_stage_row`) have unique keys (duplicates within the batch were
    dropped by the caller).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _insert_new_postgres(session, rows)
    if dialect == "sqlite":
        return _insert_new_sqlite(session, rows), False
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


#: Binary COPY types of the staging table's columns (same order as _PG_COLUMN_TYPES).
_PG_COPY_TYPES = [
    {"bigint": "int8", "integer": "int4", "double precision": "float8", "boolean": "bool"}.get(t, t)
    for t in _PG_COLUMN_TYPES.values()
]

_PG_COLUMNS = ", ".join(_PG_COLUMN_TYPES)
_PG_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS plant_event_stage ("
    + ", ".join(f"{c} {t}" for c, t in _PG_COLUMN_TYPES.items())
    + ") ON COMMIT DELETE ROWS"
)
#: A staged row's key, (source, sequence).
_ROW_KEY = itemgetter(0, 1)
_PG_COPY_STAGE = f"COPY plant_event_stage ({_PG_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_DIRECT = f"COPY plant_event ({_PG_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_HISTORY = (
    "COPY equipment_state_history (equipment_id, state, reason, started_at, source) "
    "FROM STDIN (FORMAT BINARY)"
)
# One statement: the insert (rule 6), the state history of the new state events of known
# work units in time order (as _apply_states orders them; COLLATE "C" sorts sources by
# code point, as Python does), and the answer: only the keys that were stored already,
# instead of every new key for Python to parse and hash.
_PG_INSERT = (
    "WITH new AS ("
    f"INSERT INTO plant_event ({_PG_COLUMNS}) SELECT {_PG_COLUMNS} FROM plant_event_stage "
    # Key order (code points, as the direct COPY's rows are sorted): concurrent batches
    # with overlapping keys lock them in one order.
    'ORDER BY source COLLATE "C", sequence '
    "ON CONFLICT (source, sequence) DO NOTHING "
    "RETURNING source, sequence, kind, work_unit, ts, state, reason), "
    "history AS ("
    "INSERT INTO equipment_state_history (equipment_id, state, reason, started_at, source) "
    "SELECT e.id, n.state, n.reason, n.ts, n.source FROM new AS n "
    "JOIN equipment AS e ON e.code = n.work_unit WHERE n.kind = 'state' "
    'ORDER BY n.ts, n.source COLLATE "C", n.sequence) '
    "SELECT s.source, s.sequence FROM plant_event_stage AS s "
    # Evaluated once, first: when every row was new the search is skipped.
    "WHERE (SELECT count(*) FROM new) < %(staged)s AND NOT EXISTS "
    "(SELECT FROM new AS n WHERE n.source = s.source AND n.sequence = s.sequence)"
)


def _insert_new_postgres(session: Session, rows: list[tuple[Any, ...]]) -> tuple[set[_Key], bool]:
    # Nearly every batch is new: COPY it straight into plant_event, in a savepoint (issue 8:
    # ~2 us of PostgreSQL CPU an event less than staging it first). The primary key refuses
    # the batch if any key is stored already (or is being stored by a concurrent batch,
    # once that commits); then the savepoint is rolled back and the batch staged.
    # Rows in key order: concurrent batches with overlapping keys lock them in one order.
    rows.sort(key=_ROW_KEY)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute("SAVEPOINT plant_event_copy")
        try:
            with cursor.copy(_PG_COPY_DIRECT) as copy:
                copy.set_types(_PG_COPY_TYPES)
                write = copy.write_row
                for row in rows:
                    write(row)
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT plant_event_copy")
            cursor.execute("RELEASE SAVEPOINT plant_event_copy")
            return _insert_staged(cursor, rows), True
        cursor.execute("RELEASE SAVEPOINT plant_event_copy")
    return set(), False


def _insert_staged(cursor: Any, rows: list[tuple[Any, ...]]) -> set[_Key]:
    # Binary COPY into a per-connection temporary staging table, then one INSERT ...
    # SELECT ... ON CONFLICT DO NOTHING: COPY is the fast way in (~10x a multi-row INSERT
    # from Python), the INSERT keeps rule 6 and says which keys were stored already.
    # The commit empties the table (ON COMMIT DELETE ROWS). Rows an earlier batch of the
    # same transaction left there are harmless: this transaction stored them already, so
    # the insert skips them and only keys of this batch are looked up in the answer.
    cursor.execute(_PG_STAGE)
    with cursor.copy(_PG_COPY_STAGE) as copy:
        copy.set_types(_PG_COPY_TYPES)
        write = copy.write_row
        for row in rows:
            write(row)
    cursor.execute(_PG_INSERT, {"staged": len(rows)})
    return {(source, sequence) for source, sequence in cursor.fetchall()}


def _sqlite_time(value: datetime) -> str:
    # The storage format SQLAlchemy's SQLite DateTime reads back (UTC, as UtcDateTime):
    # "YYYY-MM-DD HH:MM:SS.ffffff", which isoformat writes faster than strftime.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _insert_new_sqlite(session: Session, rows: list[tuple[Any, ...]]) -> set[_Key]:
    # SQLite has one writer at a time: take the write lock first (a no-op UPDATE of the
    # audit chain head, which this batch appends to anyway), so that the keys found
    # missing below cannot be inserted by anyone else before this transaction commits.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_id=AuditHead.last_id))
    by_source: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_source[row[0]].append(row[1])
    existing: set[_Key] = set()
    for source, seqs in by_source.items():
        found = session.execute(
            select(PlantEventRow.sequence).where(
                PlantEventRow.source == source,
                PlantEventRow.sequence.between(min(seqs), max(seqs)),
            )
        ).scalars()
        existing.update((source, seq) for seq in found)
    # Columns 4 and 5 are ts and received_at (see _PG_COLUMN_TYPES); a batch's rows share
    # their received_at, formatted once.
    received: dict[datetime, str] = {}
    params = [
        (
            *row[:4],
            _sqlite_time(row[4]),
            received.get(row[5]) or received.setdefault(row[5], _sqlite_time(row[5])),
            *row[6:],
        )
        for row in rows
        if (row[0], row[1]) not in existing
    ]
    if params:
        sql = (
            f"INSERT INTO plant_event ({_PG_COLUMNS}) "
            f"VALUES ({', '.join('?' for _ in _PG_COLUMN_TYPES)})"
        )
        raw = session.connection().connection.driver_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, params)
        finally:
            cursor.close()
    return existing


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
    unique: dict[_Key, PlantEvent] = {}
    for ev in batch.events:
        unique.setdefault((ev.source, ev.sequence), ev)
    stored, history_written = _insert_new(
        session, [_stage_row(ev, received_at) for ev in unique.values()]
    )
    new = [ev for key, ev in unique.items() if key not in stored] if stored else [*unique.values()]

    postgres = _is_postgres(session)
    codes = {ev.work_unit for ev in new}
    wanted = (
        # One array parameter: an IN list of as many parameters as codes is a new statement
        # for the driver to parse each batch; and a join, not "= ANY(array)", which a
        # generic plan checks row by row against the whole array (issue 8).
        _EQUIPMENT.c.code.in_(_unnest(list(codes), String))
        if postgres
        else _EQUIPMENT.c.code.in_(codes)
    )
    lookup = select(_EQUIPMENT.c.id, _EQUIPMENT.c.code, _EQUIPMENT.c.state_since).where(wanted)
    units = {r.code: WorkUnitRef(r.id, r.code, r.state_since) for r in session.execute(lookup)}
    unknown = sorted(codes - units.keys())

    states: list[StateChangeEvent] = []
    counts: list[CountEvent] = []
    measurements: list[MeasurementEvent] = []
    for ev in new:
        if ev.work_unit not in units:
            continue
        if isinstance(ev, CountEvent):
            counts.append(ev)
        elif isinstance(ev, StateChangeEvent):
            states.append(ev)
        elif isinstance(ev, MeasurementEvent):
            measurements.append(ev)
    last_states = _apply_states(session, states, units, history=not history_written)
    # Rows are locked in the order the execution services use (job order, then its
    # operations), so ingest and operator actions never deadlock: measurements (which may
    # hold a job order) before counts (which update operations).
    apply_measurement_events(session, measurements, units)
    applied_counts, unassigned = _apply_counts(session, counts, units)

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


# PostgreSQL: set-based state and count updates, one statement each over arrays (unnest),
# instead of one UPDATE per work unit or operation. The rows are first locked in ascending
# id order by one SELECT ... ORDER BY id FOR UPDATE: an UPDATE ... FROM locks in whatever
# order its join plan visits rows, and concurrent batches must lock in one order (no
# deadlock). Column names are fixed here, never taken from input.
_PG_STATES = text(
    "UPDATE equipment AS e SET state = v.state, state_reason = v.reason, state_since = v.ts "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:states AS text[]), CAST(:reasons AS text[]), "
    "CAST(:ts AS timestamptz[])) AS v(id, state, reason, ts) "
    # A replayed old event never moves the current state backwards (see _apply_states).
    "WHERE e.id = v.id AND (e.state_since IS NULL OR e.state_since <= v.ts)"
)
_PG_COUNTS = {
    table: text(
        f"UPDATE {table} AS o SET good = o.good + v.good, scrap = o.scrap + v.scrap "
        "FROM unnest(CAST(:ids AS integer[]), CAST(:good AS double precision[]), "
        "CAST(:scrap AS double precision[])) AS v(id, good, scrap) WHERE o.id = v.id"
    )
    for table in ("job_operation", "job_operation_unit")
}
_PG_LOCK = {
    table: text(
        f"SELECT id FROM {table} WHERE id = ANY(CAST(:ids AS integer[])) ORDER BY id FOR UPDATE"
    )
    for table in ("equipment", "job_operation", "job_operation_unit")
}


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _pg_lock_in_order(session: Session, table: str, ids: list[int]) -> None:
    session.execute(_PG_LOCK[table], {"ids": ids})


def _apply_states(
    session: Session,
    events: list[StateChangeEvent],
    units: dict[str, WorkUnitRef],
    *,
    history: bool,
) -> dict[str, str]:
    """Move each work unit to its latest new state; with ``history``, also write a history
    row per state event (without it, the caller has: see _PG_INSERT)."""
    if not events:
        return {}
    events.sort(key=lambda e: (e.timestamp, e.source, e.sequence))
    postgres = _is_postgres(session)
    if history and postgres:
        raw = session.connection().connection.driver_connection
        with (
            raw.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(_PG_COPY_HISTORY) as copy,
        ):
            copy.set_types(["int4", "text", "text", "timestamptz", "text"])
            for e in events:
                copy.write_row(
                    (units[e.work_unit].id, e.state.value, e.reason, e.timestamp, e.source)
                )
    elif history:
        table = EquipmentStateHistory.__table__
        assert isinstance(table, Table)
        session.execute(
            table.insert(),
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
    # A replayed old event must not move the current state backwards in time: the WHERE
    # guards it in the database, the check here keeps the batch's summary honest.
    newer = {
        code: e
        for code, e in last.items()
        if units[code].state_since is None or units[code].state_since <= e.timestamp
    }
    if newer and postgres:
        ordered = sorted(newer.items(), key=lambda item: units[item[0]].id)
        ids = [units[code].id for code, _ in ordered]
        _pg_lock_in_order(session, "equipment", ids)
        session.execute(
            _PG_STATES,
            {
                "ids": ids,
                "states": [e.state.value for _, e in ordered],
                "reasons": [e.reason for _, e in ordered],
                "ts": [e.timestamp for _, e in ordered],
            },
        )
    elif newer:
        table = Equipment.__table__
        assert isinstance(table, Table)
        session.execute(
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                or_(table.c.state_since.is_(None), table.c.state_since <= bindparam("b_ts")),
            )
            .values(
                state=bindparam("b_state"),
                state_reason=bindparam("b_reason"),
                state_since=bindparam("b_ts"),
            ),
            [
                {
                    "b_id": units[code].id,
                    "b_ts": e.timestamp,
                    "b_state": e.state.value,
                    "b_reason": e.reason,
                }
                for code, e in sorted(newer.items(), key=lambda item: units[item[0]].id)
            ],
        )
    return {code: e.state.value for code, e in newer.items()}


def _apply_counts(
    session: Session, events: list[CountEvent], units: dict[str, WorkUnitRef]
) -> tuple[dict[str, dict[str, int]], int]:
    """Add good/scrap to the job order's operation at the work unit (and to that unit's
    share of it, ``job_operation_unit``): the job order the event names, or else the one
    running there. An operation running on several work units (a parallel station) takes
    the counts of each. Counts that fit none stay stored only."""
    if not events:
        return {}, 0
    sums: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        s = sums[(e.work_unit, e.job_order)]
        s[0] += e.good
        s[1] += e.scrap
    unit_ids = list({units[code].id for code, _ in sums})
    postgres = _is_postgres(session)
    at_units = (
        JobOperationUnit.work_unit_id.in_(_unnest(unit_ids, Integer))
        if postgres
        else JobOperationUnit.work_unit_id.in_(unit_ids)
    )
    rows = session.execute(
        select(
            JobOperationUnit.id,
            JobOperationUnit.work_unit_id,
            JobOperationUnit.ended_at,
            JobOperation.id,
            JobOperation.state,
            JobOrder.code,
        )
        .join(JobOperation, JobOperation.id == JobOperationUnit.job_operation_id)
        .join(JobOrder, JobOrder.id == JobOperation.job_order_id)
        .where(at_units)
        .order_by(JobOperationUnit.started_at)
    ).all()
    # work unit -> (operation, its row of that unit)
    running: dict[int, tuple[int, int]] = {}
    by_job: dict[tuple[int, str], tuple[int, int]] = {}
    for row_id, unit_id, ended_at, op_id, state, job_code in rows:
        if state == "running" and ended_at is None:
            running[unit_id] = (op_id, row_id)
        by_job[(unit_id, job_code)] = (op_id, row_id)
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    unit_deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    applied: dict[str, dict[str, int]] = {}
    unassigned = 0
    for (code, job), (good, scrap) in sums.items():
        unit_id = units[code].id
        target = by_job.get((unit_id, job)) if job else running.get(unit_id)
        if target is None:
            unassigned += good + scrap
            continue
        for acc, key in ((deltas, target[0]), (unit_deltas, target[1])):
            acc[key][0] += good
            acc[key][1] += scrap
        a = applied.setdefault(code, {"good": 0, "scrap": 0})
        a["good"] += good
        a["scrap"] += scrap
    # Operations before their units' rows, each in ascending ids: concurrent batches (and
    # the execution services: job order, operation, its units) lock in one order.
    for table, acc in (("job_operation", deltas), ("job_operation_unit", unit_deltas)):
        if not acc:
            continue
        ids = sorted(acc)
        if postgres:
            _pg_lock_in_order(session, table, ids)
            session.execute(
                _PG_COUNTS[table],
                {
                    "ids": ids,
                    "good": [acc[k][0] for k in ids],
                    "scrap": [acc[k][1] for k in ids],
                },
            )
        else:
            model = JobOperation if table == "job_operation" else JobOperationUnit
            tbl = model.__table__
            assert isinstance(tbl, Table)
            session.execute(
                update(tbl)
                .where(tbl.c.id == bindparam("b_id"))
                .values(
                    good=tbl.c.good + bindparam("b_good"),
                    scrap=tbl.c.scrap + bindparam("b_scrap"),
                ),
                [{"b_id": k, "b_good": acc[k][0], "b_scrap": acc[k][1]} for k in ids],
            )
    return applied, unassigned


#: The kinds of plant event (``plant_event.kind``), each read through the
#: ``(work_unit, kind, ts)`` index by :func:`latest_plant_time`.
PLANT_EVENT_KINDS = ("state", "count", "measurement", "alarm")


def latest_plant_time(session: Session) -> datetime | None:
    """The latest timestamp of any plant event the MES holds: the plant's clock as far as
    the MES knows it (issue 13). One index probe per work unit and kind (the newest row of
    ``ix_plant_event_unit_kind_ts``), never a scan of the event table."""
    pe, eq = PlantEventRow.__table__, _EQUIPMENT
    latest: datetime | None = None
    for kind in PLANT_EVENT_KINDS:
        newest = (
            select(func.max(pe.c.ts))
            .where(pe.c.work_unit == eq.c.code, pe.c.kind == kind)
            .correlate(eq)
            .scalar_subquery()
        )
        at = session.execute(
            select(func.max(newest)).select_from(eq).where(eq.c.level == "work_unit")
        ).scalar()
        if at is not None:
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite: naive UTC
            latest = at if latest is None or at > latest else latest
    return latest
