"""The append-only, hash-chained audit trail (21 CFR Part 11 §11.10(e): secure,
computer-generated, time-stamped audit trails).

Each entry's ``hash`` is ``sha256(prev_hash + canonical_json(entry))`` where the canonical
JSON covers id, time, actor, action, object and detail. Appends lock the single
``audit_head`` row first (an UPDATE: a row lock on PostgreSQL, the write lock on SQLite),
so concurrent workers append one after another and the chain never forks; ids are taken
from the head, so they increase in commit order and the event stream can follow them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

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


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    object_ref: str,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it lands only if that commits)."""
    # Take the chain head's lock before reading it: the UPDATE blocks a concurrent
    # appender until this transaction ends, so both never build on the same head.
    locked = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(last_id=AuditHead.last_id)
    )
    if locked.rowcount == 0:  # type: ignore[attr-defined]
        session.add(AuditHead(id=1, last_id=0, last_hash=GENESIS_HASH))
        session.flush()
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()
    at = utcnow()
    new_id = head.last_id + 1
    detail_json = canonical_json(detail or {})
    digest = entry_hash(
        head.last_hash,
        id=new_id,
        at=at,
        actor=actor,
        action=action,
        object_ref=object_ref,
        detail=detail_json,
    )
    entry = AuditEntry(
        id=new_id,
        at=at,
        actor=actor,
        action=action,
        object_ref=object_ref,
        detail=detail_json,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    head.last_id = new_id
    head.last_hash = digest
    session.flush()
    return entry


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
    if head is not None and (head.last_id != checked or head.last_hash != prev_hash):
        return VerifyResult(
            False,
            checked,
            checked + 1 if head.last_id > checked else head.last_id,
            f"chain head says {head.last_id} entries, {checked} found",
        )
    return VerifyResult(True, checked)
