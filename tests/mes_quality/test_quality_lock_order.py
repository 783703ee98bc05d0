"""A result that holds a job order takes its locks in the MES's one order: rows first, the
audit chain's head last, at commit. Before, the API appended its audit entries as it went:
it locked the head (the MES's one global queue) and then waited for the job order, which
another writer referenced and whose commit needed the head: a deadlock, answered 503
RETRY (the intermittent ``quality: record result`` failures of the load test)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from mes_quality_factories import build_cell, running_job
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mes_core.client import MesClient
from mes_core.client.errors import MesClientError

ON_POSTGRES = [pytest.param("postgres", marks=pytest.mark.postgres)]


def _waiting_on_a_lock(engine: Engine, within_s: float = 20.0) -> bool:
    """Whether a backend of the database waits on a lock (polled until ``within_s``)."""
    deadline = time.monotonic() + within_s
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return True
            time.sleep(0.02)
    return False


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_a_holding_result_does_not_lock_the_audit_chain_while_it_waits_for_the_job_order(
    session: Session, engine: Engine, mes_url: str
) -> None:
    cell = build_cell(session)
    job = running_job(session, cell)
    outcome: dict[str, Any] = {}

    def record() -> None:
        try:
            with MesClient(mes_url).login(cell.operator, "op-secret-1") as op:
                outcome["result"] = op.record_measurement(job.code, 10, "fill_volume", 506.5)
        except MesClientError as exc:  # reported by the assertions below
            outcome["error"] = exc

    with engine.connect() as other:
        # Another writer (an ingest batch, another result) references the job order: the
        # foreign key check of its insert holds the row's KEY SHARE lock until it commits...
        other.execute(text("SET lock_timeout = '15s'"))
        other.execute(text("SELECT 1 FROM job_order WHERE id = :id FOR KEY SHARE"), {"id": job.id})
        recorder = threading.Thread(target=record)
        recorder.start()
        try:
            # ...so the out-of-spec result waits for it to put the job order on hold...
            assert _waiting_on_a_lock(engine)
            # ...and that writer, committing, appends to the audit chain: it must get the head.
            other.execute(text("SELECT last_id FROM audit_head WHERE id = 1 FOR UPDATE"))
            other.commit()
        finally:
            recorder.join(30)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.nonconformance is not None
    assert result.job_order_state == "held"
