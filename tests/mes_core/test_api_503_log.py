"""Every 503 is logged at warning level with its request and its cause: the driver's
exception class and SQLSTATE (a deadlock, a lock timeout, SQLite busy, a pool timeout)."""

from __future__ import annotations

import logging
import sqlite3

import psycopg.errors
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mes_core.api import errors


def _app(exc: Exception) -> TestClient:
    app = FastAPI()
    errors.install(app)

    @app.post("/busy")
    def busy() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (
            OperationalError(
                "UPDATE job_order ...",
                None,
                psycopg.errors.DeadlockDetected(
                    "deadlock detected\nDETAIL:  Process 1 waits for ShareLock on transaction 7"
                ),
            ),
            "psycopg.errors.DeadlockDetected SQLSTATE 40P01: deadlock detected "
            "(DETAIL:  Process 1 waits for ShareLock on transaction 7)",
        ),
        (
            OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            ),
            "sqlite3.OperationalError SQLSTATE -: database is locked",
        ),
        (PoolTimeout("QueuePool limit of size 10 overflow 20 reached"), "TimeoutError"),
    ],
    ids=["deadlock", "sqlite-busy", "pool-timeout"],
)
def test_a_503_logs_its_request_and_cause(
    exc: Exception, cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=errors.log.name):
        answer = _app(exc).post("/busy")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(errors.RETRY_AFTER_S)
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line.startswith("503 POST /busy: ")
    assert cause in line
