"""The connector's spool: a local SQLite outbox of plant events plus the collector's state.

Store and forward. Every event is written here *before* it is sent, in the same
transaction as the state it was derived from (the last counter values turned into counts,
the next sequence number of each source, the last state sent...). So:

- the MES being down loses nothing: events wait here and are replayed in order (by
  ``id``) when it is back;
- the connector being killed loses nothing and doubles nothing: on restart it reloads the
  unsent events and the state; counters are compared with the persisted last values, so
  a unit is counted once; a replayed event keeps its ``(source, sequence)`` key, which the
  MES ingests idempotently (enforcement rule 6).

SQLite in WAL mode with ``synchronous=NORMAL``: a committed batch survives a process crash
(the operating system still has it). The events of one ``append`` are one row
(``outbox_chunk``: their ids are ``first`` .. ``first + count - 1``, the bodies joined by
the ASCII record separator, which JSON never holds unescaped): a row per event cost ~4 us
per event to write and delete, a row per batch ~1 us. What the MES acknowledged
(``ack``) is noted in memory and written with the next ``append`` (or at ``close``), in its
transaction: a crash in between only sends those events again, which the MES counts as
duplicates (idempotent ingest), never twice. A batch the MES refuses as malformed (422)
is moved to ``dead_letter`` with the reason, never dropped silently.

A spool written before chunks (one ``outbox`` row per event) is read as it is: its events
come first, and new ids go on after its last.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SEPARATOR = "\x1e"
"""Between the bodies of a chunk: a control character JSON escapes inside strings and
never has between tokens."""
ACKED_KEY = "spool:acked"
"""State key: the highest event id the MES took (or was dead-lettered): none up to it
waits."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_chunk (
    id INTEGER PRIMARY KEY,
    first INTEGER NOT NULL,
    count INTEGER NOT NULL,
    bodies TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""


class Spool:
    """SQLite outbox + key/value state of one connector (thread-safe, one connection)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (ACKED_KEY,))
            found = row.fetchone()
            self._acked = self._saved_acked = int(json.loads(found[0])) if found else 0
            last = [
                self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone(),
                self._db.execute("SELECT MAX(first + count - 1) FROM outbox_chunk").fetchone(),
                self._db.execute("SELECT MAX(id) FROM dead_letter").fetchone(),
            ]
            self._next_id = max([self._acked, *(r[0] or 0 for r in last if r)]) + 1

    def close(self) -> None:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                self._forget_acked(cur)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._db.close()

    # --- writing -----------------------------------------------------------------------

    def append(self, bodies: Sequence[str], state: dict[str, Any]) -> list[int]:
        """Store event bodies (JSON) and state changes in one transaction; their ids."""
        joined = SEPARATOR.join(bodies)
        if bodies and joined.count(SEPARATOR) != len(bodies) - 1:
            raise ValueError("an event body holds the spool's record separator (\\x1e)")
        with self._lock:
            first = self._next_id
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                self._forget_acked(cur)
                if bodies:
                    cur.execute(
                        "INSERT INTO outbox_chunk (first, count, bodies) VALUES (?, ?, ?)",
                        (first, len(bodies), joined),
                    )
                if state:
                    cur.executemany(
                        "INSERT INTO state (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        [(k, json.dumps(v)) for k, v in state.items()],
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._next_id = first + len(bodies)
        return list(range(first, first + len(bodies)))

    def _forget_acked(self, cur: sqlite3.Cursor) -> None:
        """In the caller's transaction: drop what the MES took since the last write."""
        acked = self._acked
        if acked == self._saved_acked:
            return
        cur.execute("DELETE FROM outbox WHERE id <= ?", (acked,))
        cur.execute("DELETE FROM outbox_chunk WHERE first + count - 1 <= ?", (acked,))
        cur.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (ACKED_KEY, json.dumps(acked)),
        )
        self._saved_acked = acked

    def ack(self, up_to_id: int) -> None:
        """Events up to ``up_to_id`` reached the MES: forget them (written with the next
        ``append``; until then a crash only sends them again)."""
        with self._lock:
            self._acked = max(self._acked, up_to_id)

    def dead_letter(self, ids: Iterable[int], reason: str) -> None:
        """Move refused events, the oldest ones waiting, out of the outbox, keeping them
        and why (everything before them reached the MES)."""
        wanted = sorted(set(ids))
        if not wanted:
            return
        with self._lock:
            bodies = dict(self._events(wanted[0] - 1, upto=wanted[-1]))
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(
                    "INSERT OR IGNORE INTO dead_letter (id, body, reason) VALUES (?, ?, ?)",
                    [(i, bodies[i], reason) for i in wanted if i in bodies],
                )
                self._acked = max(self._acked, wanted[-1])
                self._forget_acked(cur)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    # --- reading -----------------------------------------------------------------------

    def _events(self, after: int, upto: int | None = None) -> list[tuple[int, str]]:
        """(id, body) of the stored events with ``after < id <= upto``, oldest first
        (the caller holds the lock)."""
        high = upto if upto is not None else self._next_id
        out: list[tuple[int, str]] = list(
            self._db.execute(
                "SELECT id, body FROM outbox WHERE id > ? AND id <= ? ORDER BY id", (after, high)
            )
        )
        for first, bodies in self._db.execute(
            "SELECT first, bodies FROM outbox_chunk WHERE first + count - 1 > ? AND first <= ? "
            "ORDER BY first",
            (after, high),
        ):
            for offset, body in enumerate(bodies.split(SEPARATOR)):
                i = first + offset
                if after < i <= high:
                    out.append((i, body))
        return out

    def pending(self) -> list[tuple[int, str]]:
        """Every unsent event, oldest first (for the restart)."""
        with self._lock:
            dead = {
                r[0]
                for r in self._db.execute("SELECT id FROM dead_letter WHERE id > ?", (self._acked,))
            }
            return [(i, b) for i, b in self._events(self._acked) if i not in dead]

    def depth(self) -> int:
        return len(self.pending())

    def dead_letters(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM dead_letter").fetchone()
        return int(row[0])

    def state(self) -> dict[str, Any]:
        """All persisted state (key -> JSON value)."""
        with self._lock:
            return {
                k: json.loads(v)
                for k, v in self._db.execute("SELECT key, value FROM state")
                if k != ACKED_KEY
            }
