"""Password guessing is slowed down and its audit bounded (issue 21, items 4 and 12).

The recent login attempts of each account and of each client address are kept in the
database (``login_throttle``), so every API worker sees the same counts and a restart
forgets nothing: N workers give an attacker no more guesses than one.

An attempt is counted *before* its password is checked (one short transaction that takes
the account's and the address's rows first: a row lock on PostgreSQL, the write lock on
SQLite), and a success takes it back. So a burst of guesses sent at once is counted as
it arrives, not after each one's password check. Past a free allowance a back-off
starts, doubling with every further attempt up to :attr:`LoginThrottle.max_backoff_s`:
an attempt during it is answered 429 with ``Retry-After`` without the password being
checked (no oracle for the guesser) and without an audit entry of its own. The first
attempt to meet a back-off is audited (``auth.throttled``), so the trail shows every
guessing run without growing with it. Counts are forgotten after
:attr:`LoginThrottle.window_s` without an attempt; a successful login clears its
account's.

Failed logins are audited (21 CFR 11.300(d)), within a budget per hour shared by all
workers (:attr:`LoginThrottle.audit_per_hour`) that no attacker can push: spread over
many names and addresses, the failures past it are counted, and the count is written with
the next audited failure (``detail.unaudited_before``), not one entry each.

Cost: only ``POST /api/v1/auth/token`` touches the throttle (three or four statements per
login); no other request does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes_core.domain.errors import MesError
from mes_core.persistence.models import LoginThrottleRow

#: The row of the audit budget of failed logins.
AUDIT_KEY = "audit:failures"
AUDIT_WINDOW_S = 3600.0

_TABLE = LoginThrottleRow.__table__
assert isinstance(_TABLE, Table)
T: Table = _TABLE


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


def _keys(account: str, client: str) -> tuple[str, str]:
    return f"account:{account}", f"client:{client}"


def _upsert(session: Session, values: dict[str, Any]) -> None:
    """Write one row whole (insert, or replace the row of the same key)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(T).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[T.c.key], set_={k: v for k, v in values.items() if k != "key"}
        )
    )


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

    def claim(self, session: Session, account: str, client: str) -> Verdict:
        """May an attempt at ``account`` from ``client`` be checked now? If so it is
        counted (as a failure until :meth:`succeeded` takes it back); committed either
        way (a first refusal is audited by the caller before it commits)."""
        now = time.time()
        keys = _keys(account, client)
        rows: dict[str, Any] = {
            row["key"]: row
            for row in session.execute(select(T).where(T.c.key.in_(keys)).with_for_update())
            .mappings()
            .all()
        }
        for key in keys:
            row = rows.get(key)
            if row is not None and row["blocked_until"] > now:
                first = row["refused_at"] is None
                if first:
                    session.execute(update(T).where(T.c.key == key).values(refused_at=now))
                wait = max(1, math.ceil(row["blocked_until"] - now))
                return Verdict(False, wait, first, key)
        for key, free in zip(keys, (self.account_free, self.client_free), strict=True):
            row = rows.get(key)
            fresh = row is None or now - row["window_start"] > self.window_s
            count = 1 if fresh or row is None else row["count"] + 1
            blocked = now + min(2.0 ** (count - free), self.max_backoff_s) if count >= free else 0
            _upsert(
                session,
                {
                    "key": key,
                    "count": count,
                    "window_start": now if fresh or row is None else row["window_start"],
                    "blocked_until": blocked,
                    "refused_at": None,
                    "unaudited": 0,
                },
            )
        session.commit()
        return Verdict(True)

    def succeeded(self, session: Session, account: str, client: str) -> None:
        """Take back a successful attempt (in the login's transaction): the account's
        count is cleared, the address's made one less."""
        account_key, client_key = _keys(account, client)
        session.execute(delete(T).where(T.c.key == account_key))
        session.execute(
            update(T)
            .where(T.c.key == client_key, T.c.count > 0)
            .values(
                count=T.c.count - 1,
                blocked_until=case(
                    (T.c.count - 1 < self.client_free, 0.0), else_=T.c.blocked_until
                ),
            )
        )

    def audit_allowance(self, session: Session) -> int | None:
        """None if this failure may not be audited (the hour's budget is spent; it is
        counted); else how many went unaudited before it (to write with it). In the
        caller's transaction; also forgets rows of attempts long past."""
        now = time.time()
        session.execute(
            delete(T).where(
                T.c.key != AUDIT_KEY,
                T.c.window_start < now - self.window_s,
                T.c.blocked_until < now,
            )
        )
        row: Any = (
            session.execute(select(T).where(T.c.key == AUDIT_KEY).with_for_update())
            .mappings()
            .first()
        )
        values = {"key": AUDIT_KEY, "blocked_until": 0.0, "refused_at": None}
        if row is None or now - row["window_start"] > AUDIT_WINDOW_S:
            carried = 0 if row is None else row["unaudited"]
            _upsert(session, {**values, "count": 1, "window_start": now, "unaudited": 0})
            return carried
        if row["count"] >= self.audit_per_hour:
            _upsert(
                session,
                {
                    **values,
                    "count": row["count"],
                    "window_start": row["window_start"],
                    "unaudited": row["unaudited"] + 1,
                },
            )
            return None
        _upsert(
            session,
            {
                **values,
                "count": row["count"] + 1,
                "window_start": row["window_start"],
                "unaudited": 0,
            },
        )
        return int(row["unaudited"])
