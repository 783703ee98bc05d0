"""The ceiling of ``bench api``: a bare FastAPI endpoint doing one insert per request.

The same stack as the MES (FastAPI, a sync endpoint in the thread pool, SQLAlchemy Core,
the same database, uvicorn workers) minus everything that makes it an MES (auth, rules,
audit trail), so the ratio of the two tells what the MES's own work costs. Run as
``uvicorn loadtests.bench.bare_api:app`` with ``MESTWIN_BARE_DATABASE_URL`` set; the table
is created by the benchmark beforehand (two workers racing to create it would collide).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
)

DATABASE_URL_ENV = "MESTWIN_BARE_DATABASE_URL"

metadata = MetaData()
bare_operation = Table(
    "bench_bare_operation",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("job_order", String(100), nullable=False),
    Column("work_unit", String(100), nullable=False),
    Column("good", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


class OperationReport(BaseModel):
    job_order: str
    work_unit: str
    good: int


app = FastAPI()


@lru_cache
def engine() -> Engine:
    """The worker's engine, made on first use (importing this module connects nothing)."""
    return create_engine(os.environ[DATABASE_URL_ENV], pool_size=10, max_overflow=20)


@app.post("/bare/report")
def report(body: OperationReport) -> dict[str, int]:
    with engine().begin() as connection:
        row = connection.execute(
            insert(bare_operation)
            .values(**body.model_dump(), at=datetime.now(UTC))
            .returning(bare_operation.c.id)
        ).scalar_one()
    return {"id": int(row)}


@app.get("/bare/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
