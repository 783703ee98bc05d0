"""The append-only, hash-chained audit trail (21 CFR Part 11 §11.10(e): secure,
computer-generated, time-stamped audit trails).

Each entry's ``hash`` is ``sha256(prev_hash + canonical_json(entry))`` where the canonical
JSON covers id, time, actor, action, object and detail. Appends lock the single
``audit_head`` row first (an UPDATE: a row lock on PostgreSQL, the write lock on SQLite),
so concurrent workers append one after another and the chain never forks; ids are taken
from the head, so they increase in commit order and the event stream can follow them.
On PostgreSQL an append is one statement that also computes the hash (sha256 in the
database, checked against :func:`entry_hash` by :func:`verify` and the tests); on SQLite
three: claim the head, write the entry, store the new hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Table, event, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import Compiled

from mes_core.persistence.base import utcnow
from mes_core.persistence.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    prev_hash: str,
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    object_ref: str,
    detail: str,
) -> str:
    body = canonical_json(
        {
            "id": id,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "object": object_ref,
            "detail": detail,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _insert_head_if_missing(session: Session) -> None:
    # ON CONFLICT DO NOTHING: two workers appending to an empty trail at once (first
    # start-up) both get here; the loser waits for the winner's row instead of failing.
    table = AuditHead.__table__
    assert isinstance(table, Table)
    values = {"id": 1, "last_id": 0, "last_hash": GENESIS_HASH}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(pg_insert(table).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite_insert(table).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover
        raise RuntimeError(f"unsupported database {dialect}")


def _take_head(session: Session) -> tuple[int, str]:
    """Lock the chain head and claim the next id: ``(new_id, prev_hash)``.

    One ``UPDATE ... RETURNING``: a row lock on PostgreSQL (the write lock on SQLite) held
    to the end of the transaction, so concurrent appenders queue here and the chain never
    forks; no read-back of the tail."""
    table = AuditHead.__table__
    assert isinstance(table, Table)
    stmt = (
        update(table)
        .where(table.c.id == 1)
        .values(last_id=table.c.last_id + 1)
        .returning(table.c.last_id, table.c.last_hash)
    )
    row = session.execute(stmt).first()
    if row is None:
        _insert_head_if_missing(session)
        row = session.execute(stmt).one()
    return int(row[0]), str(row[1])


_PG_APPEND = text(
    # The whole append in one statement (one round trip while holding the chain's lock):
    # lock the head (FOR UPDATE waits for a concurrent appender and then reads the head as
    # it committed it), hash in the database exactly as entry_hash() does, insert the
    # entry and move the head. Only the id is unknown to Python: the canonical JSON is sent
    # as the text before and after it (keys are sorted, so "id" sits between them).
    "WITH head AS (SELECT last_id + 1 AS id, last_hash AS prev FROM audit_head "
    "WHERE id = 1 FOR UPDATE), "
    "chained AS (SELECT id, prev, encode(sha256(convert_to("
    "prev || :before_id || id::text || :after_id, 'UTF8')), 'hex') AS hash FROM head), "
    "entry AS (INSERT INTO audit_entry "
    "(id, at, actor, action, object_ref, detail, prev_hash, hash) "
    "SELECT id, :at, :actor, :action, :object_ref, :detail, prev, hash FROM chained) "
    "UPDATE audit_head SET last_id = chained.id, last_hash = chained.hash FROM chained "
    "WHERE audit_head.id = 1 RETURNING chained.id, chained.prev, chained.hash"
)
#: A stand-in id whose JSON text splits the canonical body around the real id.
_ID_MARK = -7_340_231_977
_ID_TEXT = f'"id":{_ID_MARK}'


def _pg_params(
    *, at: datetime, actor: str, action: str, object_ref: str, detail: str
) -> dict[str, Any]:
    body = canonical_json(
        {
            "id": _ID_MARK,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "object": object_ref,
            "detail": detail,
        }
    )
    # Strings in the body are JSON-escaped (their quotes are \"), so the mark's unescaped
    # text occurs exactly once.
    before, _, after = body.partition(_ID_TEXT)
    return {
        "before_id": before + '"id":',
        "after_id": after,
        "at": at,
        "actor": actor,
        "action": action,
        "object_ref": object_ref,
        "detail": detail,
    }


def _append_postgres(session: Session, params: dict[str, Any]) -> AuditEntry:
    row = session.execute(_PG_APPEND, params).first()
    if row is None:
        _insert_head_if_missing(session)
        row = session.execute(_PG_APPEND, params).one()
    new_id, prev_hash, digest = int(row[0]), str(row[1]), str(row[2])
    return AuditEntry(
        id=new_id,
        at=params["at"],
        actor=params["actor"],
        action=params["action"],
        object_ref=params["object_ref"],
        detail=params["detail"],
        prev_hash=prev_hash,
        hash=digest,
    )


# ------------------------------------------------------------------ appends at commit
#
# The chain head is one row every appender locks until it commits, so its lock is the
# MES's one global queue: under load the time between a transaction's append and its
# COMMIT (the API worker getting the GIL back, the commit's round trip) made every other
# writer wait. A transaction run by :func:`mes_core.persistence.db.run_transaction` on
# PostgreSQL therefore defers its appends: they are sent with the COMMIT in one pipeline
# (:func:`commit_with_appends`), so the head is locked only while the server runs them
# and commits. Any other commit of such a session writes them first (``before_commit``);
# a rollback drops them with the rest of the work. An entry's time is the time of its
# append (the action), its id the order of commits: of two transactions committing within
# the same few milliseconds, the later id may carry the earlier time.

#: ``session.info`` keys: appends are deferred while DEFER is set; the pending ones; the
#: writes deferred to the commit (:func:`write_with_commit`).
DEFER = "mestwin_audit_defer"
PENDING = "mestwin_audit_pending"
WRITES = "mestwin_deferred_writes"

_PSYCOPG_HEAD = (
    "INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, %(genesis)s) "
    "ON CONFLICT DO NOTHING"
)
#: _PG_APPEND with the driver's placeholders (the pipeline bypasses SQLAlchemy).
_PSYCOPG_APPEND = str(_PG_APPEND.text).replace(":before_id", "%(before_id)s")
for _name in ("after_id", "at", "actor", "action", "object_ref", "detail"):
    _PSYCOPG_APPEND = _PSYCOPG_APPEND.replace(f":{_name}", f"%({_name})s")


def write_pending(session: Session) -> None:
    """Write the deferred appends now, one statement each (before a plain commit)."""
    for params in session.info.pop(PENDING, []):
        _append_postgres(session, params)


@dataclass(frozen=True)
class _Write:
    """A statement deferred to the commit's round trip (:func:`write_with_commit`)."""

    sql: str
    params: dict[str, Any]
    on_row: Callable[[Any], None] | None


#: Statements compiled for the driver, by (statement, parameter names); the statement is
#: kept so that its id is never reused.
_DRIVER_SQL: dict[tuple[int, tuple[str, ...]], tuple[Executable, Compiled]] = {}


def _driver_statement(
    session: Session, statement: Executable, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """``statement`` as the driver's SQL (compiled once) and its parameters."""
    key = (id(statement), tuple(sorted(params)))
    found = _DRIVER_SQL.get(key)
    if found is None:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=session.get_bind().dialect, column_keys=sorted(params)
        )
        found = _DRIVER_SQL[key] = (statement, compiled)
    compiled = found[1]
    return compiled.string, dict(compiled.construct_params(params) or {})


def write_with_commit(
    session: Session,
    statement: Executable,
    params: dict[str, Any],
    on_row: Callable[[Any], None] | None = None,
) -> bool:
    """Send ``statement`` (a SQLAlchemy Core write of plain values) in the commit's round
    trip instead of now, if the session's transaction is run by ``run_transaction`` on
    PostgreSQL; ``on_row`` then gets its first row (``RETURNING``) once committed, before
    ``run_transaction`` returns. False when it cannot be deferred: execute it yourself.

    For a transaction's last writes only: they run after everything else the work
    executes, in the order deferred, before the audit appends; nothing of the work may
    read what they write."""
    if not session.info.get(DEFER):
        return False
    sql, values = _driver_statement(session, statement, params)
    session.info.setdefault(WRITES, []).append(_Write(sql, values, on_row))
    return True


def commit_with_appends(session: Session) -> None:
    """Commit, sending the deferred writes, the deferred appends and the COMMIT in one
    round trip (one pipeline, one sync)."""
    writes: list[_Write] = session.info.pop(WRITES, [])
    pending = session.info.pop(PENDING, [])
    if pending or writes:
        session.flush()
        raw: Any = session.connection().connection.driver_connection
        try:
            with raw.pipeline():
                answers = []
                for write in writes:
                    cursor = raw.cursor()
                    cursor.execute(write.sql, write.params)
                    answers.append((cursor, write.on_row))
                with raw.cursor() as cursor:
                    if pending:
                        cursor.execute(_PSYCOPG_HEAD, {"genesis": GENESIS_HASH})
                    for params in pending:
                        cursor.execute(_PSYCOPG_APPEND, params)
                    # A statement, not raw.commit(): that syncs once more (a round trip).
                    cursor.execute("COMMIT")
            for cursor, on_row in answers:
                if on_row is not None:
                    on_row(cursor.fetchone())
                cursor.close()
        except psycopg.Error as exc:
            # As SQLAlchemy would have raised it (OperationalError for a deadlock...), so
            # that run_transaction retries it and the API answers it like any other.
            raise DBAPIError.instance(_PSYCOPG_APPEND, None, exc, psycopg.Error) from exc
    # Session bookkeeping; the driver's COMMIT is a no-op when the pipeline committed.
    session.commit()


def _write_deferred(session: Session) -> None:
    """Send the deferred writes now, one round trip each (before a plain commit)."""
    raw: Any = session.connection().connection.driver_connection
    for write in session.info.pop(WRITES, []):
        with raw.cursor() as cursor:
            cursor.execute(write.sql, write.params)
            if write.on_row is not None:
                write.on_row(cursor.fetchone())


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    if session.info.get(WRITES):
        _write_deferred(session)
    if session.info.get(PENDING):
        write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(WRITES, None)


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    object_ref: str,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it lands only if that commits).

    The returned entry is not attached to the session. In a transaction run by
    ``run_transaction`` on PostgreSQL it is written at commit, and its id and hash are
    unknown here (see ``commit_with_appends``)."""
    at = utcnow()
    detail_json = canonical_json(detail or {})
    if session.get_bind().dialect.name == "postgresql":
        params = _pg_params(
            at=at, actor=actor, action=action, object_ref=object_ref, detail=detail_json
        )
        if session.info.get(DEFER):
            # Written at commit (see commit_with_appends): id and hash are not known yet.
            session.info.setdefault(PENDING, []).append(params)
            return AuditEntry(
                at=at, actor=actor, action=action, object_ref=object_ref, detail=detail_json
            )
        return _append_postgres(session, params)
    new_id, prev_hash = _take_head(session)
    digest = entry_hash(
        prev_hash,
        id=new_id,
        at=at,
        actor=actor,
        action=action,
        object_ref=object_ref,
        detail=detail_json,
    )
    values = {
        "id": new_id,
        "at": at,
        "actor": actor,
        "action": action,
        "object_ref": object_ref,
        "detail": detail_json,
        "prev_hash": prev_hash,
        "hash": digest,
    }
    entries = AuditEntry.__table__
    heads = AuditHead.__table__
    assert isinstance(entries, Table) and isinstance(heads, Table)
    session.execute(entries.insert().values(values))
    session.execute(update(heads).where(heads.c.id == 1).values(last_hash=digest))
    return AuditEntry(**values)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``ok`` or the first broken entry and why."""

    ok: bool
    checked: int
    broken_id: int | None = None
    reason: str = ""


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = (
            session.execute(
                select(AuditEntry).where(AuditEntry.id > last).order_by(AuditEntry.id).limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


def verify(session: Session) -> VerifyResult:
    """Walk the whole chain; name the first entry whose link or hash does not hold."""
    prev_hash = GENESIS_HASH
    expected_id = 1
    checked = 0
    for entry in _entries(session):
        if entry.id != expected_id:
            return VerifyResult(
                False, checked, entry.id, f"entry {expected_id} is missing (found {entry.id})"
            )
        if entry.prev_hash != prev_hash:
            return VerifyResult(
                False, checked, entry.id, "prev_hash does not match the previous entry's hash"
            )
        digest = entry_hash(
            prev_hash,
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            object_ref=entry.object_ref,
            detail=entry.detail,
        )
        if digest != entry.hash:
            return VerifyResult(False, checked, entry.id, "content does not match its hash")
        prev_hash = entry.hash
        expected_id += 1
        checked += 1
    head = session.get(AuditHead, 1)
    if head is None and checked:
        # Issue 21, item 10: the head is written with the first entry and never removed;
        # a trail without it had its tail cut together with the head.
        return VerifyResult(
            False, checked, checked, f"the chain head is missing ({checked} entries found)"
        )
    if head is not None and (head.last_id != checked or head.last_hash != prev_hash):
        return VerifyResult(
            False,
            checked,
            checked + 1 if head.last_id > checked else head.last_id,
            f"chain head says {head.last_id} entries, {checked} found",
        )
    return VerifyResult(True, checked)
