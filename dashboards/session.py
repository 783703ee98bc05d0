"""One MES connection per browser session, logged in as one user.

The dashboards start read-only, but operator terminal pages (start an operation, scan a
lot, sign) will live in the same app: so every browser session holds its *own* client and
token, never a shared global one, and a later page acts as whoever logged in there. When
the app is started with default credentials (``mestwin dashboard --user``), a new session
logs in with them by itself so a trainer's screen needs no typing; ``/login`` switches user.

Sessions are keyed by a random id in Flask's signed session cookie; the client and token
stay on the server. The registry is bounded (least recently used sessions are closed).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import flask

from dashboards.source import DashboardSource, MesAuthError

#: Seconds a replaced session stays open for refreshes already under way (their MES
#: timeout is 5 s).
RETIRE_AFTER_S = 30.0

#: Flask session key holding the browser session's id.
SESSION_KEY = "mestwin_sid"


@dataclass(frozen=True)
class Credentials:
    """A user of the MES (ISA-95 personnel with a role)."""

    username: str
    password: str = field(repr=False)


class MesSession(Protocol):
    """What a page gets for its browser session: who is logged in, and the data source."""

    @property
    def user(self) -> str | None: ...

    @property
    def roles(self) -> tuple[str, ...]: ...

    @property
    def source(self) -> DashboardSource: ...

    def close(self) -> None: ...


#: Opens a session: ``None`` means anonymous (the MES decides what that may read).
Connector = Callable[[Credentials | None], MesSession]


class SessionRegistry:
    """Browser sessions -> their MES sessions (thread-safe, bounded, least recently used
    evicted first)."""

    def __init__(
        self,
        connect: Connector,
        *,
        default_credentials: Credentials | None = None,
        max_sessions: int = 256,
    ) -> None:
        self._connect = connect
        self._default = default_credentials
        self._max = max_sessions
        self._sessions: OrderedDict[str, MesSession] = OrderedDict()
        self._lock = threading.Lock()
        #: Sessions replaced (login, logout) and when: another callback of the same
        #: browser may still be reading through them, so they close a little later.
        self._retired: list[tuple[float, MesSession]] = []
        #: Browser sessions a person logged in at /login: only they may act (operator
        #: terminal, supervisor/QA); a default session (the start-up user) only watches.
        self._explicit: set[str] = set()
        #: Browser sessions that gave the trainer's password (the trainer console).
        self._trainers: set[str] = set()

    @staticmethod
    def _sid() -> str:
        sid = flask.session.get(SESSION_KEY)
        if not isinstance(sid, str):
            sid = secrets.token_urlsafe(24)
            flask.session[SESSION_KEY] = sid
            flask.session.permanent = True
        return sid

    def current(self) -> MesSession:
        """The calling browser's MES session, opened with the default credentials if new.

        Raises ``MesUnavailable`` when the MES does not answer (nothing is cached then, so
        the next refresh tries again) and ``MesAuthError`` when it refuses the credentials.
        """
        sid = self._sid()
        with self._lock:
            found = self._sessions.get(sid)
            if found is not None:
                self._sessions.move_to_end(sid)
                return found
        opened = self._connect(self._default)
        # A page's first load runs several callbacks at once: the first session stored
        # wins and the others are closed (never one in use by another callback).
        return self._store(sid, opened, replace=False)

    def login(self, credentials: Credentials) -> MesSession:
        """Log the calling browser in as ``credentials`` (raises ``MesAuthError`` if refused)."""
        opened = self._connect(credentials)
        sid = self._sid()
        stored = self._store(sid, opened, replace=True)
        with self._lock:
            self._explicit.add(sid)
        return stored

    def acting(self) -> MesSession | None:
        """The calling browser's session if a person logged in there at /login (they may
        act as themselves), else None (watching only)."""
        sid = self._sid()
        with self._lock:
            if sid not in self._explicit:
                return None
            found = self._sessions.get(sid)
        if found is None:  # evicted or dropped: log in again
            with self._lock:
                self._explicit.discard(sid)
            return None
        return found

    def mark_trainer(self) -> None:
        """The calling browser gave the trainer's password."""
        sid = self._sid()
        with self._lock:
            self._trainers.add(sid)

    def is_trainer(self) -> bool:
        sid = self._sid()
        with self._lock:
            return sid in self._trainers

    def logout(self) -> None:
        """Forget the calling browser's session; the next page opens a default one."""
        sid = self._sid()
        with self._lock:
            old = self._sessions.pop(sid, None)
            self._explicit.discard(sid)
        if old is not None:
            self._retire(old)

    def expire_current(self) -> None:
        """Drop the calling browser's session after the MES refused its token (expired or
        revoked), so the next refresh logs in again with the default credentials."""
        self.logout()

    def _store(self, sid: str, opened: MesSession, *, replace: bool) -> MesSession:
        evicted: list[MesSession] = []
        with self._lock:
            old = self._sessions.get(sid)
            if old is not None and not replace:
                self._sessions.move_to_end(sid)
                evicted.append(opened)
                opened = old
            else:
                if old is not None:
                    del self._sessions[sid]
                    self._retired.append((time.monotonic(), old))
                self._sessions[sid] = opened
            while len(self._sessions) > self._max:
                evicted.append(self._sessions.popitem(last=False)[1])
        for session in evicted:
            session.close()
        self._close_retired()
        return opened

    def _retire(self, session: MesSession) -> None:
        with self._lock:
            self._retired.append((time.monotonic(), session))
        self._close_retired()

    def _close_retired(self) -> None:
        """Close replaced sessions once no refresh can still be using them."""
        cutoff = time.monotonic() - RETIRE_AFTER_S
        with self._lock:
            due = [s for at, s in self._retired if at < cutoff]
            self._retired = [(at, s) for at, s in self._retired if at >= cutoff]
        for session in due:
            session.close()

    def close_all(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values()) + [s for _, s in self._retired]
            self._sessions.clear()
            self._retired.clear()
        for session in sessions:
            session.close()

    def __len__(self) -> int:
        return len(self._sessions)


__all__ = ["Connector", "Credentials", "MesAuthError", "MesSession", "SessionRegistry"]
