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
(the operating system still has it); batches of events go in with one ``executemany``.
A batch the MES refuses as malformed (422) is moved to ``dead_letter`` with the reason,
never dropped silently.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
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

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -----------------------------------------------------------------------

    def append(self, bodies: Sequence[str], state: dict[str, Any]) -> list[int]:
        """Store event bodies (JSON) and state changes in one transaction; their ids."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                first = None
                if bodies:
                    row = cur.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'")
                    found = row.fetchone()
                    first = (found[0] if found else 0) + 1
                    cur.executemany(
                        "INSERT INTO outbox (id, body) VALUES (?, ?)",
                        [(first + i, body) for i, body in enumerate(bodies)],
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
        return [] if first is None else list(range(first, first + len(bodies)))

    def ack(self, up_to_id: int) -> None:
        """Events up to ``up_to_id`` reached the MES: forget them."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id <= ?", (up_to_id,))

    def dead_letter(self, ids: Iterable[int], reason: str) -> None:
        """Move refused events out of the outbox, keeping them and why."""
        id_list = list(ids)
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(
                    "INSERT INTO dead_letter (id, body, reason) "
                    "SELECT id, body, ? FROM outbox WHERE id = ?",
                    [(reason, i) for i in id_list],
                )
                cur.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in id_list])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    # --- reading -----------------------------------------------------------------------

    def pending(self) -> list[tuple[int, str]]:
        """Every unsent event, oldest first (for the restart)."""
        with self._lock:
            return list(self._db.execute("SELECT id, body FROM outbox ORDER BY id"))

    def depth(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(row[0])

    def dead_letters(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM dead_letter").fetchone()
        return int(row[0])

    def state(self) -> dict[str, Any]:
        """All persisted state (key -> JSON value)."""
        with self._lock:
            return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM state")}
