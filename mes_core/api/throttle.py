"""Password guessing is slowed down and its audit bounded (issue 21, items 4 and 12).

Each API worker keeps, in memory, the recent failed logins of each account and of each
client address. Past a free allowance a back-off starts, doubling with every further
failure up to :attr:`LoginThrottle.max_backoff_s`: an attempt during it is answered 429
with ``Retry-After`` without the password being checked (no oracle for the guesser) and
without an audit entry of its own. The first attempt to meet a back-off is audited
(``auth.throttled``), so the trail shows every guessing run without growing with it.

Failed logins are audited (21 CFR 11.300(d)), within a budget per worker and hour
(:attr:`LoginThrottle.audit_per_hour`) that no attacker can push: spread over many names
and addresses, the failures past it are counted, and the count is written with the next
audited failure (``detail.unaudited_before``), not one entry each.

Per worker: with N API workers an attacker gets at most N times the allowance (still a
bound); a restart forgets the counts. A successful login clears its account's failures.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from mes_core.domain.errors import MesError

#: At most this many accounts and addresses are remembered (the oldest forgotten first).
MAX_KEYS = 20_000


class TooManyAttempts(MesError):
    """429: too many failed logins for this account or from this address, just now."""

    code = "TOO_MANY_ATTEMPTS"
    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int, object_ref: str | None) -> None:
        super().__init__(message, object_ref=object_ref)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may be checked now, and if not for how long to wait."""

    allowed: bool
    retry_after_s: int = 0
    #: The first refusal of this back-off: audit it (``auth.throttled``).
    first_refusal: bool = False
    key: str = ""


class _Failures:
    __slots__ = ("at", "refused_since")

    def __init__(self) -> None:
        self.at: deque[float] = deque()
        self.refused_since: float | None = None


class LoginThrottle:
    """Back-off per account and per client address; a budget on audited failures."""

    def __init__(
        self,
        *,
        account_free: int = 5,
        client_free: int = 20,
        window_s: float = 900.0,
        max_backoff_s: float = 300.0,
        audit_per_hour: int = 600,
    ) -> None:
        self.account_free = account_free
        self.client_free = client_free
        self.window_s = window_s
        self.max_backoff_s = max_backoff_s
        self.audit_per_hour = audit_per_hour
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._audited: deque[float] = deque()
        self._unaudited = 0

    def _backoff(self, failures: _Failures, free: int, now: float) -> float:
        """Seconds still to wait before the next attempt (0: none)."""
        while failures.at and now - failures.at[0] > self.window_s:
            failures.at.popleft()
        excess = len(failures.at) - free
        if excess < 0:
            return 0.0
        wait = min(2.0**excess, self.max_backoff_s)
        return max(0.0, failures.at[-1] + wait - now)

    def check(self, account: str, client: str) -> Verdict:
        """May an attempt at ``account`` from ``client`` be checked now?"""
        now = time.monotonic()
        with self._lock:
            limits = (
                (f"account:{account}", self.account_free),
                (f"client:{client}", self.client_free),
            )
            for key, free in limits:
                failures = self._failures.get(key)
                if failures is None:
                    continue
                wait = self._backoff(failures, free, now)
                if wait > 0:
                    first = failures.refused_since is None
                    if first:
                        failures.refused_since = now
                    return Verdict(False, max(1, int(wait + 0.999)), first, key)
                failures.refused_since = None
        return Verdict(True)

    def failed(self, account: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"account:{account}", f"client:{client}"):
                failures = self._failures.pop(key, None) or _Failures()
                failures.at.append(now)
                failures.refused_since = None
                self._failures[key] = failures  # most recent last
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"account:{account}", None)

    def audit_allowance(self) -> int | None:
        """None if this failure may not be audited (the hour's budget is spent; it is
        counted); else how many went unaudited before it (to write with it)."""
        now = time.monotonic()
        with self._lock:
            while self._audited and now - self._audited[0] > 3600:
                self._audited.popleft()
            if len(self._audited) >= self.audit_per_hour:
                self._unaudited += 1
                return None
            self._audited.append(now)
            unaudited, self._unaudited = self._unaudited, 0
            return unaudited
