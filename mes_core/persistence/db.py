"""Engine and sessions for the one URL setting ``MESTWIN_DATABASE_URL``.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout so
that several uvicorn workers can share the file; PostgreSQL is the production database.
"""

from __future__ import annotations

import logging
import os
import random
import select
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")

#: PostgreSQL serialization failure and deadlock: the server rolled the transaction back
#: whole, so running it again from the start is safe and is the documented remedy.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
#: Attempts of one transaction before the error goes to the caller (answered 503 RETRY).
TRANSACTION_ATTEMPTS = 4

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option naming how SQLite transactions begin (DEFERRED or IMMEDIATE).
SQLITE_BEGIN = "mestwin_sqlite_begin"


#: Execution option holding the audit key (``mes_core.persistence.audit.KEY_OPTION``; not
#: imported: audit imports the models, and db stays free of import cycles).
AUDIT_KEY_OPTION = "mestwin_audit_key"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


#: PostgreSQL: seconds to wait for a new connection (libpq ``connect_timeout``).
CONNECT_TIMEOUT_S = 5


#: How long a liveness verdict of :class:`AnswerGuard` stands before it probes again.
VERDICT_S = 1.0
#: libpq's shortest connect timeout (a probe's).
PROBE_TIMEOUT_S = 2


class AnswerGuard:
    """Ends a wait on a database that accepts and never answers (issue 21, item 8).

    A hung server, or a path that swallows everything (a proxy, a firewall that drops
    without a reset), leaves a statement waiting forever: the server never sees it, so
    its ``statement_timeout`` cannot fire, and the bytes were acknowledged, so TCP's
    timeouts do not either. So a statement unanswered for ``within_s`` makes the guard
    probe the database with a new connection (at most one probe per :data:`VERDICT_S`
    for all of the engine's connections, ``PROBE_TIMEOUT_S`` at most): if the database
    does not accept it, the statement's connection is closed and the statement fails
    (``OperationalError``: the API answers 503, the pool replaces the connection). A
    database that answers the probe is only slow: the statement waits on (its
    ``statement_timeout`` bounds it) and the guard asks again after ``within_s``."""

    def __init__(self, within_s: float) -> None:
        self.within_s = within_s
        self.connect_params: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._verdict: tuple[float, bool] | None = None

    def alive(self) -> bool:
        """Does the database accept a new connection now (a verdict shared for a moment)?"""
        with self._lock:
            verdict = self._verdict
            if verdict is not None and time.monotonic() - verdict[0] < VERDICT_S:
                return verdict[1]
            ok = self._probe()
            self._verdict = (time.monotonic(), ok)
            return ok

    def refuses(self) -> bool:
        """The last verdict said the database was gone and it still does (probed again
        once the verdict is older than :data:`VERDICT_S`): a new connection need not
        wait its whole connect timeout to learn it."""
        verdict = self._verdict
        return verdict is not None and not verdict[1] and not self.alive()

    def _probe(self) -> bool:
        params = dict(self.connect_params or {})
        params["connect_timeout"] = PROBE_TIMEOUT_S
        params.pop("options", None)
        try:
            psycopg.connect(**params).close()
        except psycopg.Error as exc:
            if exc.sqlstate:
                return True  # the server answered (too many connections...): it is there
            log.warning("the database does not accept connections: %s", exc)
            return False
        return True

    def watch(
        self, gen: Generator[Any, Any, T], conn: psycopg.Connection[Any]
    ) -> Generator[Any, Any, T]:
        """``gen`` (a psycopg wait generator), ended with ``OperationalError`` if the
        database stops answering while it waits."""
        started = time.monotonic()
        try:
            state = next(gen)
            while True:
                ready = yield state
                # psycopg sends "nothing ready" every 0.1 s of waiting.
                if not ready and time.monotonic() - started > self.within_s:
                    if not self.alive():
                        conn.pgconn.finish()
                        raise psycopg.OperationalError(
                            f"the database did not answer within {self.within_s:g} s "
                            "and does not accept connections"
                        )
                    started = time.monotonic()
                state = gen.send(ready)
        except StopIteration as stop:
            result: T = stop.value
            return result


class _GuardedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits an :class:`AnswerGuard` watches."""

    guard: AnswerGuard | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        guard = self.guard
        if guard is not None and timeout is None:
            gen = guard.watch(gen, self)
        return super().wait(gen, interval, timeout)


def make_engine(
    url: str,
    *,
    connect_timeout_s: int = CONNECT_TIMEOUT_S,
    statement_timeout_s: float = 0,
    answer_within_s: float = 0,
    audit_key: str | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url`` with the pragmas the MES relies on.

    On PostgreSQL every wait on the database is bounded (issue 21, item 8), so that a
    database that is down or unreachable is answered 503 (``mes_core.api.errors``), not
    a hang: opening a connection (``connect_timeout_s``), a statement on the server
    (``statement_timeout_s``, 0: unbounded, for migrations and the CLI), data left
    unacknowledged on a dead network path (``tcp_user_timeout``: twice the connect
    timeout) and a silent peer (TCP keepalives); the pool's own wait is ``pool_timeout``;
    a server or path that accepts and never answers (``answer_within_s``, 0: off; see
    :class:`AnswerGuard`).

    ``audit_key`` seals the audit entries written through the engine
    (:mod:`mes_core.persistence.audit`); None: ``MESTWIN_AUDIT_KEY`` from the environment,
    so that every process writing the trail seals it alike; "": none."""
    if audit_key is None:
        audit_key = os.environ.get("MESTWIN_AUDIT_KEY", "")
    if audit_key:
        options = dict(kwargs.pop("execution_options", {}))
        options[AUDIT_KEY_OPTION] = audit_key.encode()
        kwargs["execution_options"] = options
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are begun by us (below), not by the driver's legacy "BEGIN
            # before the first DML", so reads and writes of one session share a snapshot.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if make_url(url).get_driver_name() == "psycopg":
        connect_args: dict[str, Any] = {
            "connect_timeout": connect_timeout_s,
            # A peer gone silent (a cut network path) is found within 5 + 3 x 1 s of
            # idleness, and data it never acknowledges fails the connection after
            # twice the connect timeout, instead of the kernel's ~15 minutes.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": 2 * connect_timeout_s * 1000,
        }
        if statement_timeout_s > 0:
            ms = int(statement_timeout_s * 1000)
            connect_args["options"] = f"-c statement_timeout={ms}"
        connect_args.update(kwargs.pop("connect_args", {}))
        kwargs["connect_args"] = connect_args
    engine = create_engine(url, **kwargs)
    if engine.dialect.driver == "psycopg" and not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkout", _check_idle_connection)
    if engine.dialect.driver == "psycopg" and answer_within_s > 0:
        guard = AnswerGuard(answer_within_s)

        @event.listens_for(engine, "do_connect")
        def _guarded_connect(
            _dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]
        ) -> psycopg.Connection[Any]:
            guard.connect_params = cparams
            if guard.refuses():
                raise psycopg.OperationalError("the database does not accept connections")
            connection = _GuardedConnection.connect(*cargs, **cparams)
            connection.guard = guard
            return connection

    return engine


def _check_idle_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without a round trip (issue 8): a pooled
    connection has nothing to read between transactions unless the server ended it (a
    restart, a terminated backend, a cut network path, which closes the socket), so a
    readable socket, or a connection psycopg already knows broken, is replaced before use
    (``DisconnectionError``: the pool reconnects). SQLAlchemy's ``pool_pre_ping`` sends a
    ``SELECT 1`` on every checkout instead: a round trip per request, ~0.15 ms of CPU."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection was closed")
    pgconn = dbapi_connection.pgconn
    if pgconn.status != 0:  # libpq CONNECTION_OK
        raise DisconnectionError("the connection is bad")
    if _has_input(pgconn.socket):
        raise DisconnectionError("the server closed the connection (or spoke out of turn)")


def _has_input(fd: int) -> bool:
    """Whether socket ``fd`` is readable, hung up or in error, without waiting. ``poll``
    where there is one: ``select`` refuses descriptors past 1,023, which a busy API worker
    with many client connections reaches."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, errors = select.select([fd], [], [fd], 0)
    return bool(readable or errors)


def make_session_factory(engine: Engine, *, write: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``. ``write=True`` (the API's changing requests): on SQLite
    each transaction begins IMMEDIATE, taking the write lock before it reads, so that
    concurrent requests queue on the busy timeout instead of failing with "database is
    locked" when a read snapshot turns into a write, and never lose an update. On
    PostgreSQL rows are locked with SELECT ... FOR UPDATE instead; the option is inert."""
    if write and is_sqlite(str(engine.url)):
        engine = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    return sessionmaker(engine, expire_on_commit=False)


def is_retryable(exc: BaseException) -> bool:
    """True for a deadlock victim or a serialization failure (PostgreSQL SQLSTATE 40P01,
    40001)."""
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


def run_transaction(
    session: Session, work: Callable[[], T], *, attempts: int = TRANSACTION_ATTEMPTS
) -> T:
    """Run ``work`` and commit; on a deadlock or serialization failure roll back and run
    it again from the start, at most ``attempts`` times, with a short random pause so
    that the contenders do not meet again. Other errors pass through at once."""
    # Imported here: audit imports the models, which import nothing of this module, but
    # db is imported first by everything (keep it free of import cycles).
    from mes_core.persistence import audit

    postgres = session.get_bind().dialect.name == "postgresql"
    for attempt in range(1, attempts + 1):
        try:
            if postgres:
                # Audit appends go with the COMMIT in one round trip (see audit.DEFER).
                session.info[audit.DEFER] = True
            try:
                result = work()
                audit.commit_with_appends(session)
            finally:
                session.info.pop(audit.DEFER, None)
            return result
        except DBAPIError as exc:
            session.rollback()
            if attempt == attempts or not is_retryable(exc):
                raise
            log.info("transaction attempt %d of %d retried: %s", attempt, attempts, exc.orig)
            time.sleep(random.uniform(0.002, 0.02) * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
