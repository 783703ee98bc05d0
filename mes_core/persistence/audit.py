"""The append-only, hash-chained audit trail (21 CFR Part 11 §11.10(e): secure,
computer-generated, time-stamped audit trails).

Each entry's ``hash`` is ``sha256(prev_hash + canonical_json(entry))`` where the canonical
JSON covers id, time, actor, action, object and detail; with an audit key
(``MESTWIN_AUDIT_KEY``, given to the engine by :func:`mes_core.persistence.db.make_engine`)
it is ``HMAC-SHA256(key, prev_hash + canonical_json(entry))`` instead: *sealed*. A chain
anyone with write access to the database can recompute is no tamper evidence; a sealed one
cannot be recomputed without the key, which the database never stores (issue 21, item 10).

Appends lock the single ``audit_head`` row first (an UPDATE: a row lock on PostgreSQL,
the write lock on SQLite), so concurrent workers append one after another and the chain
never forks; ids are taken from the head, so they increase in commit order and the event
stream can follow them. On PostgreSQL an append is one statement that also computes the
hash (sha256 in the database, the HMAC from its inner and outer keys, checked against
:func:`entry_hash` by :func:`verify` and the tests; the key passes through the server as a
parameter of the statement and is never stored); on SQLite three: claim the head, write the
entry, store the new hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
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
#: Engine execution option holding the audit key (bytes), set by ``make_engine``.
KEY_OPTION = "mestwin_audit_key"


def session_key(session: Session) -> bytes | None:
    """The audit key of the engine ``session`` is bound to, if any."""
    key: bytes | None = session.get_bind().get_execution_options().get(KEY_OPTION)
    return key or None


@lru_cache(maxsize=4)
def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer keys (RFC 2104) for SHA-256, so that PostgreSQL computes
    the HMAC with its built-in ``sha256`` (no pgcrypto): H(okey || H(ikey || message))."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


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
    key: bytes | None = None,
) -> str:
    """The entry's chain hash: sealed with ``key`` (HMAC-SHA256) when given."""
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
    message = (prev_hash + body).encode()
    if key:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


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
#: The same, sealed: HMAC-SHA256 under the audit key, from its inner and outer keys.
_PLAIN_HASH = (
    "encode(sha256(convert_to(prev || :before_id || id::text || :after_id, 'UTF8')), 'hex')"
)
_SEALED_HASH = (
    "encode(sha256(:okey || sha256(:ikey || "
    "convert_to(prev || :before_id || id::text || :after_id, 'UTF8'))), 'hex')"
)
assert _PLAIN_HASH in str(_PG_APPEND.text)
_PG_APPEND_SEALED = text(str(_PG_APPEND.text).replace(_PLAIN_HASH, _SEALED_HASH))
#: A stand-in id whose JSON text splits the canonical body around the real id.
_ID_MARK = -7_340_231_977
_ID_TEXT = f'"id":{_ID_MARK}'


def _pg_params(
    *, at: datetime, actor: str, action: str, object_ref: str, detail: str, key: bytes | None
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
    params = {
        "before_id": before + '"id":',
        "after_id": after,
        "at": at,
        "actor": actor,
        "action": action,
        "object_ref": object_ref,
        "detail": detail,
    }
    if key:
        params["ikey"], params["okey"] = _pads(key)
    return params


def _append_postgres(session: Session, params: dict[str, Any]) -> AuditEntry:
    statement = _PG_APPEND_SEALED if "ikey" in params else _PG_APPEND
    row = session.execute(statement, params).first()
    if row is None:
        _insert_head_if_missing(session)
        row = session.execute(statement, params).one()
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


def _driver_placeholders(sql: str) -> str:
    """``sql`` with the driver's placeholders (the pipeline bypasses SQLAlchemy)."""
    for name in ("before_id", "after_id", "at", "actor", "action", "object_ref", "detail"):
        sql = sql.replace(f":{name}", f"%({name})s")
    return sql.replace(":ikey", "%(ikey)s").replace(":okey", "%(okey)s")


_PSYCOPG_APPEND = _driver_placeholders(str(_PG_APPEND.text))
_PSYCOPG_APPEND_SEALED = _driver_placeholders(str(_PG_APPEND_SEALED.text))


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


#: For the other modules that send Core statements to the driver themselves.
driver_statement = _driver_statement


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
                        sealed = "ikey" in params
                        cursor.execute(
                            _PSYCOPG_APPEND_SEALED if sealed else _PSYCOPG_APPEND, params
                        )
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
    key = session_key(session)
    if session.get_bind().dialect.name == "postgresql":
        params = _pg_params(
            at=at, actor=actor, action=action, object_ref=object_ref, detail=detail_json, key=key
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
        key=key,
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
    #: Entries sealed with the audit key (the others are plain: see :func:`verify`).
    sealed: int = 0


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


def verify(session: Session, *, anchored_through: int = 0) -> VerifyResult:
    """Walk the whole chain; name the first entry whose link or hash does not hold.

    With an audit key (the engine's, see :func:`session_key`) every entry must be sealed
    with it, except those written before the key was set: plain entries before the first
    sealed one, up to ``anchored_through`` (an entry a signed checkpoint vouches for, see
    :mod:`mes_core.persistence.audit_anchor`). A plain entry anywhere else was written
    without the key, or rewritten by someone who does not hold it. Without a key, sealed
    entries cannot be checked: the first one is reported."""
    key = session_key(session)
    prev_hash = GENESIS_HASH
    expected_id = 1
    checked = sealed = 0
    for entry in _entries(session):
        if entry.id != expected_id:
            return VerifyResult(
                False,
                checked,
                entry.id,
                f"entry {expected_id} is missing (found {entry.id})",
                sealed,
            )
        if entry.prev_hash != prev_hash:
            return VerifyResult(
                False,
                checked,
                entry.id,
                "prev_hash does not match the previous entry's hash",
                sealed,
            )
        fields: dict[str, Any] = {
            "id": entry.id,
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "object_ref": entry.object_ref,
            "detail": entry.detail,
        }
        if key is not None and hmac.compare_digest(
            entry_hash(prev_hash, **fields, key=key), entry.hash
        ):
            sealed += 1
        elif entry_hash(prev_hash, **fields) != entry.hash:
            why = "content does not match its hash"
            if key is None:
                why += " (or it is sealed with an audit key: verify with MESTWIN_AUDIT_KEY)"
            return VerifyResult(False, checked, entry.id, why, sealed)
        elif key is not None and (sealed or entry.id > anchored_through):
            return VerifyResult(
                False,
                checked,
                entry.id,
                "the entry is not sealed with the audit key (MESTWIN_AUDIT_KEY): written "
                "without it, or rewritten by someone who does not hold it",
                sealed,
            )
        prev_hash = entry.hash
        expected_id += 1
        checked += 1
    head = session.get(AuditHead, 1)
    if head is None and checked:
        # Issue 21, item 10: the head is written with the first entry and never removed;
        # a trail without it had its tail cut together with the head.
        return VerifyResult(
            False,
            checked,
            checked,
            f"the chain head is missing ({checked} entries found)",
            sealed,
        )
    if head is not None and (head.last_id != checked or head.last_hash != prev_hash):
        return VerifyResult(
            False,
            checked,
            checked + 1 if head.last_id > checked else head.last_id,
            f"chain head says {head.last_id} entries, {checked} found",
            sealed,
        )
    return VerifyResult(True, checked, sealed=sealed)
