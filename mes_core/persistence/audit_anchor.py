"""The audit trail anchored outside its database (issue 21, item 10).

The hash chain (:mod:`mes_core.persistence.audit`) proves that entries were not changed
one by one, but anyone who can write the database can also recompute every later hash
and the head, or cut the tail together with the head: the chain alone cannot tell. So
the chain head is also kept where the database's writers cannot reach:

- ``mestwin audit checkpoint`` appends the verified head (``last_id``, ``last_hash``,
  the time) as one JSON line to a file the operator chooses (``--to`` or
  ``MESTWIN_AUDIT_CHECKPOINTS``): another host, write-once storage, a ticket. Run it as
  often as the trail should be anchored (a timer every few minutes).
- Each line is signed with HMAC-SHA256 under ``MESTWIN_AUDIT_KEY``, a key the database
  does not hold: whoever can edit the file but not read the key cannot forge a line.
- ``mestwin audit verify`` checks every checkpoint against the trail: an entry that was
  checkpointed must still be there with the same hash. A cut tail (with its head) fails
  ("missing"), a rewritten chain fails ("rewritten"), a forged line fails ("signature").

The same key also seals the chain itself (:mod:`mes_core.persistence.audit`: each hash an
HMAC under it, computed by PostgreSQL inside the append), so that between checkpoints an
edited entry cannot be given a valid hash either: with the key, ``verify`` requires every
entry sealed, except the ones a signed checkpoint vouches for (written before the key was
set: ``mestwin audit checkpoint --adopt-unsealed`` anchors them once, on purpose). What
no scheme can show is a cut of the entries after the last checkpoint together with the
head: checkpoint often.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes_core.persistence.audit import VerifyResult, verify
from mes_core.persistence.models import AuditEntry, AuditHead


class CheckpointRefused(RuntimeError):
    """The trail is broken now: a checkpoint would anchor the damage."""


@dataclass(frozen=True)
class Checkpoint:
    last_id: int
    last_hash: str
    at: str
    mac: str | None

    def signed_text(self) -> str:
        return f"{self.last_id}:{self.last_hash}:{self.at}"


def _mac(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def anchored_through(path: Path, key: str | None) -> int:
    """The latest entry a checkpoint of ``path`` signed with ``key`` vouches for (0: none;
    with no key, none: an unsigned line vouches for nothing)."""
    if key is None or not path.exists():
        return 0
    latest = 0
    for _, point in read_checkpoints(path):
        if (
            isinstance(point, Checkpoint)
            and point.mac is not None
            and hmac.compare_digest(point.mac, _mac(key, point.signed_text()))
        ):
            latest = max(latest, point.last_id)
    return latest


def checkpoint(
    session: Session, path: Path, key: str | None, *, adopt_unsealed: bool = False
) -> Checkpoint:
    """Verify the trail, then append its head to ``path`` (signed with ``key`` if given).
    ``adopt_unsealed``: entries not sealed with the key (written before it was set) are
    accepted this once, if their chain holds, and anchored by this checkpoint."""
    head = session.get(AuditHead, 1)
    through = anchored_through(path, key)
    if adopt_unsealed and head is not None:
        through = head.last_id
    result = verify(session, anchored_through=through)
    if not result.ok:
        raise CheckpointRefused(
            f"the audit trail is broken at entry {result.broken_id}: {result.reason}"
        )
    last_id, last_hash = (head.last_id, head.last_hash) if head is not None else (0, "0" * 64)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    unsigned = Checkpoint(last_id, last_hash, at, None)
    point = Checkpoint(last_id, last_hash, at, _mac(key, unsigned.signed_text()) if key else None)
    line = json.dumps(
        {"last_id": point.last_id, "last_hash": point.last_hash, "at": point.at, "mac": point.mac}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    return point


def read_checkpoints(path: Path) -> list[tuple[int, Checkpoint | str]]:
    """``(line number, checkpoint or why the line is unreadable)`` for each line."""
    out: list[tuple[int, Checkpoint | str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(
                (
                    number,
                    Checkpoint(
                        int(raw["last_id"]), str(raw["last_hash"]), str(raw["at"]), raw.get("mac")
                    ),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            out.append((number, f"unreadable ({type(exc).__name__})"))
    return out


def verify_anchored(session: Session, path: Path, key: str | None) -> VerifyResult:
    """:func:`verify`, and every checkpoint of ``path`` against the trail; of two
    failures, the one that names the earlier entry."""
    if not path.exists():
        result = verify(session)
        if not result.ok:
            return result
        return VerifyResult(False, result.checked, None, f"checkpoint file {path} is missing")
    result = verify(session, anchored_through=anchored_through(path, key))
    against = _check_points(session, path, key, result)
    if against is None:
        return result
    if not result.ok and (result.broken_id or 0) <= (against.broken_id or 0):
        return result
    return against


def _check_points(
    session: Session, path: Path, key: str | None, result: VerifyResult
) -> VerifyResult | None:
    """The first checkpoint of ``path`` that the trail does not bear out, if any."""
    for number, point in read_checkpoints(path):
        where = f"{path.name}:{number}"
        if isinstance(point, str):
            return VerifyResult(False, result.checked, None, f"checkpoint {where} is {point}")
        if key is not None:
            expected = _mac(key, point.signed_text())
            if point.mac is None or not hmac.compare_digest(point.mac, expected):
                return VerifyResult(
                    False,
                    result.checked,
                    point.last_id,
                    f"checkpoint {where} does not carry the audit key's signature (forged?)",
                )
        if point.last_id == 0:
            continue
        found = session.execute(
            select(AuditEntry.hash).where(AuditEntry.id == point.last_id)
        ).scalar_one_or_none()
        if found is None:
            return VerifyResult(
                False,
                result.checked,
                point.last_id,
                f"entry {point.last_id}, checkpointed at {point.at} ({where}), is missing: "
                "the trail was cut",
            )
        if found != point.last_hash:
            return VerifyResult(
                False,
                result.checked,
                point.last_id,
                f"entry {point.last_id} no longer has the hash checkpointed at {point.at} "
                f"({where}): the trail was rewritten",
            )
    return None
