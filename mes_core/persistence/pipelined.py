"""Reads sent together: a transaction's first queries in one round trip (PostgreSQL).

psycopg begins a transaction with a ``BEGIN`` of its own round trip before the first
query, and each query is a round trip more. An operator transaction's reads (the job
order locked with its operation; for a consumption, the lot locked and the segment's BOM)
do not depend on each other's answers, so they go in one pipeline, with the ``BEGIN``: one
round trip where there were two to four (issue 20: each round trip is CPU on both sides
and, on a busy machine, one more wait for a core). The server runs them one after another
in the order given, so locks are taken in that order, as before. On SQLite they run one
by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable

from mes_core.persistence.audit import driver_statement


def all_rows(
    session: Session, queries: Sequence[tuple[Executable, dict[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """Every row of each of ``queries`` (Core selects of plain columns), as tuples of the
    driver's values, sent in one round trip on PostgreSQL."""
    if session.get_bind().dialect.name != "postgresql":
        return [[tuple(row) for row in session.execute(q, p)] for q, p in queries]
    raw: Any = session.connection().connection.driver_connection
    statements = [driver_statement(session, q, p) for q, p in queries]
    cursors = []
    try:
        with raw.pipeline():
            for sql, values in statements:
                cursor = raw.cursor()
                cursor.execute(sql, values)
                cursors.append(cursor)
        return [cursor.fetchall() for cursor in cursors]
    except psycopg.Error as exc:
        # As SQLAlchemy would have raised it, so that run_transaction retries a deadlock
        # and the API answers a timeout like any other.
        raise DBAPIError.instance(statements[0][0], None, exc, psycopg.Error) from exc
    finally:
        for cursor in cursors:
            cursor.close()
