"""Resolved credentials kept per API worker, dropped the moment they may be stale (issue 8).

Every API request presents a token or an API key, and resolving it was a query of its own:
a round trip and ~10 % of a worker's time under ``mestwin bench api``. On PostgreSQL a
worker keeps what it resolved, and drops all of it whenever a credential may have
changed:

- The database announces every change: triggers on ``auth_token`` and ``person`` (any
  UPDATE, DELETE or TRUNCATE, by the API, a master-data load or a DBA's hand) send a
  notification on :data:`CHANNEL`, delivered when the change commits (migration
  ``0003_auth_change_notify``).
- Each worker listens on a connection of its own (:class:`ChangeListener`) and clears
  its cache on each notification. The cache is used only while the listener is known to
  be listening: it starts empty and unused, is used once ``LISTEN`` has succeeded, and is
  cleared and unused again as soon as the listener's connection fails or a periodic
  check of it does, until it listens again.
- A resolution that started before a change is not cached after it (a generation count),
  an entry lives at most :data:`ENTRY_TTL_S`, and a token's own expiry is checked on
  every use. If the listener's connection hangs without failing (a silent network
  loss), the cache falls out of use :data:`TRUST_FOR_S` after its last good check.

A revocation therefore takes effect in the time its notification takes to arrive (a
millisecond on one host), as for a request that read the database just before the
change committed. SQLite (embedded, no round trips) resolves every time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from sqlalchemy.engine import make_url

from mes_core.persistence.security import Actor

log = logging.getLogger(__name__)

#: The channel the triggers notify (migration 0003_auth_change_notify).
CHANNEL = "mestwin_auth_changed"
#: The triggers that announce changes (migration 0003_auth_change_notify).
TRIGGERS = ("auth_token_changed", "person_changed")
#: Pause before looking again for triggers found missing (a database not migrated yet).
TRIGGERS_RETRY_S = 30.0
#: The listener's connection, as ``pg_stat_activity`` names it.
APP_NAME = "mestwin-auth-listener"
#: At most this many credentials are kept; past it the cache starts again empty.
MAX_ENTRIES = 10_000
#: An entry is used at most this long after it was read from the database.
ENTRY_TTL_S = 60.0
#: The listener checks its connection this often (a silent loss is found within it).
CHECK_EVERY_S = 5.0
#: The cache is used only this long after the listener last proved its connection.
TRUST_FOR_S = 2 * CHECK_EVERY_S + 1
#: Pause before the listener connects again after a failure.
RECONNECT_AFTER_S = 1.0


@dataclass(frozen=True)
class Resolved:
    actor: Actor
    expires_at: datetime | None
    read_at: float


class CredentialCache:
    """Credentials resolved by this worker, by the sha256 of the secret."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Resolved] = {}
        self._generation = 0
        self._live = False
        self._confirmed_at = float("-inf")

    @property
    def live(self) -> bool:
        """True while the listener is known to be listening (the cache is in use)."""
        return self._live and time.monotonic() - self._confirmed_at <= TRUST_FOR_S

    def confirm(self) -> None:
        """The listener's connection was just proved to work."""
        self._confirmed_at = time.monotonic()

    @property
    def generation(self) -> int:
        """Read before resolving from the database; give it back to :meth:`put`."""
        return self._generation

    def get(self, digest: str) -> Resolved | None:
        if not self.live:
            return None
        found = self._entries.get(digest)
        if found is None or time.monotonic() - found.read_at > ENTRY_TTL_S:
            return None
        return found

    def put(self, digest: str, actor: Actor, expires_at: datetime | None, generation: int) -> None:
        """Keep ``actor``, unless something changed since ``generation`` was read."""
        with self._lock:
            if not self.live or generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = Resolved(actor, expires_at, time.monotonic())

    def forget(self, digest: str) -> None:
        """Drop one credential now (revoked by this worker: its own next request must not
        wait for the database's notification); resolutions under way are not kept."""
        with self._lock:
            self._entries.pop(digest, None)
            self._generation += 1

    def invalidate(self, *, live: bool) -> None:
        """Drop everything; ``live``: whether the cache may be used from now on."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
            self._live = live


class NotAnnounced(RuntimeError):
    """The database lacks the triggers that announce credential changes."""


def _conninfo(database_url: str) -> str:
    """A libpq URI for the SQLAlchemy URL ``database_url``."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ChangeListener:
    """Keeps ``cache`` in step with the database's notifications, in a thread."""

    def __init__(self, database_url: str, cache: CredentialCache) -> None:
        self.conninfo = _conninfo(database_url)
        self.cache = cache
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mestwin-auth-listener", daemon=True)

    def start(self) -> ChangeListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=CHECK_EVERY_S + 2)
        self.cache.invalidate(live=False)

    def _run(self) -> None:
        while not self._stop.is_set():
            pause = RECONNECT_AFTER_S
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("credential cache off until the listener is back: %s", exc)
            except NotAnnounced as exc:
                log.warning("credential cache off: %s", exc)
                pause = TRIGGERS_RETRY_S
            finally:
                self.cache.invalidate(live=False)
            self._stop.wait(pause)

    def _listen(self) -> None:
        with psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=10, application_name=APP_NAME
        ) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            found = {
                name
                for (name,) in conn.execute(
                    "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s)", (list(TRIGGERS),)
                )
            }
            if found != set(TRIGGERS):
                raise NotAnnounced(
                    "the database does not announce credential changes (triggers "
                    f"{', '.join(sorted(set(TRIGGERS) - found))} missing: run mestwin db upgrade)"
                )
            # From here every change that commits is announced: the cache may be used.
            self.cache.invalidate(live=True)
            self.cache.confirm()
            checked = time.monotonic()
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=0.5, stop_after=1):
                    self.cache.invalidate(live=True)
                if time.monotonic() - checked > CHECK_EVERY_S:
                    conn.execute("SELECT 1")  # raises if the connection was lost
                    checked = time.monotonic()
                    self.cache.confirm()
