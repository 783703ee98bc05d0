"""The ceiling of ``bench ingest``: the same plant-event rows inserted by the bare driver.

A copy of the MES's ``plant_event`` table (same columns, same primary key and indexes) in
the same database receives the same rows in the same batch size, one transaction a batch,
with the driver's ``executemany`` and the same conflict handling the MES needs for
idempotence (``ON CONFLICT DO NOTHING`` / ``INSERT OR IGNORE``): what the database can take
when nothing but inserting happens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loadtests.bench.cpu import postgres_cpu_seconds

BARE_TABLE = "bench_bare_plant_event"
SOURCE_TABLE = "plant_event"

COLUMNS = (
    "source",
    "sequence",
    "kind",
    "work_unit",
    "ts",
    "received_at",
    "state",
    "reason",
    "good",
    "scrap",
    "job_order",
    "material_lot",
    "characteristic",
    "value",
    "unit",
    "alarm",
    "severity",
    "message",
    "active",
)


def _create_copy(connection: Any, backend: str) -> None:
    if backend == "postgresql":
        connection.execute(text(f"DROP TABLE IF EXISTS {BARE_TABLE}"))
        connection.execute(text(f"CREATE TABLE {BARE_TABLE} (LIKE {SOURCE_TABLE} INCLUDING ALL)"))
        return
    # SQLite has no LIKE: replay the table's and its indexes' own DDL under the new name.
    connection.execute(text(f"DROP TABLE IF EXISTS {BARE_TABLE}"))
    ddl = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE tbl_name = :t AND sql IS NOT NULL"),
        {"t": SOURCE_TABLE},
    ).scalars()
    for statement in list(ddl):
        connection.execute(text(statement.replace(SOURCE_TABLE, BARE_TABLE)))


@dataclass(frozen=True)
class BareInsert:
    """What the bare insert took: rows per second, and CPU microseconds per row of the
    inserting process (the driver) and of the database's backends (PostgreSQL only)."""

    rows_per_s: float
    driver_us_per_row: float
    database_us_per_row: float | None


def bare_insert_rate(url: str, rows: Sequence[dict[str, Any]], batch: int) -> float:
    """Rows per second inserting ``rows`` into a copy of ``plant_event`` at ``url``."""
    return bare_insert(url, rows, batch).rows_per_s


def bare_insert(
    url: str, rows: Sequence[dict[str, Any]], batch: int, *, copy: bool = False
) -> BareInsert:
    """Insert ``rows`` into a copy of ``plant_event`` at ``url``, ``batch`` a transaction.

    ``copy`` (PostgreSQL): ``COPY ... FROM STDIN`` instead of the conflict-handling insert,
    as the MES's first path for a batch of new keys does: the bare form of that path."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if copy and backend != "postgresql":
        raise ValueError("COPY is PostgreSQL's")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _create_copy(connection, backend)
        values = [tuple(row.get(c) for c in COLUMNS) for row in rows]
        columns = ", ".join(COLUMNS)
        if backend == "postgresql":
            marks = ", ".join(["%s"] * len(COLUMNS))
            sql = (
                f"INSERT INTO {BARE_TABLE} ({columns}) VALUES ({marks}) "
                "ON CONFLICT (source, sequence) DO NOTHING"
            )
        else:
            marks = ", ".join(["?"] * len(COLUMNS))
            sql = f"INSERT OR IGNORE INTO {BARE_TABLE} ({columns}) VALUES ({marks})"
        raw = engine.raw_connection()
        try:
            if backend == "sqlite":
                raw.execute("PRAGMA journal_mode=WAL")  # as the MES runs it
                raw.execute("PRAGMA synchronous=NORMAL")
            cursor = raw.cursor()
            database = parsed.database if backend == "postgresql" else None
            db_cpu = postgres_cpu_seconds(database) if database else 0.0
            cpu = time.process_time()
            started = time.perf_counter()
            for at in range(0, len(values), batch):
                if copy:
                    with cursor.copy(f"COPY {BARE_TABLE} ({columns}) FROM STDIN") as stream:
                        for value in values[at : at + batch]:
                            stream.write_row(value)
                else:
                    cursor.executemany(sql, values[at : at + batch])
                raw.commit()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            if database:
                db_cpu = postgres_cpu_seconds(database) - db_cpu
            cursor.close()
        finally:
            raw.close()
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {BARE_TABLE}"))
        n = len(values)
        return BareInsert(
            rows_per_s=n / elapsed,
            driver_us_per_row=1e6 * cpu / n,
            database_us_per_row=1e6 * db_cpu / n if database else None,
        )
    finally:
        engine.dispose()
