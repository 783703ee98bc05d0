"""The audit trail under concurrent appends (21 CFR Part 11 §11.10(e)): on PostgreSQL the
append is one statement that hashes in the database; the chain it builds must verify with
the Python hash (:func:`audit.entry_hash`), whatever the text, and never fork."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from support import postgres_url, require, throwaway_postgres

from mes_core.persistence import audit
from mes_core.persistence.base import utcnow
from mes_core.persistence.db import make_engine, make_session_factory, run_transaction
from mes_core.persistence.migrate import upgrade
from mes_core.persistence.models import AuditEntry, AuditHead, MaterialConsumption

#: Text that a naive split of the canonical JSON around the id would get wrong.
AWKWARD = ['"id":-7340231977', 'quote " backslash \\ ', "naïve – ünïcode ✓", '{"id": 1}']


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
        upgrade(url)
        eng = make_engine(url)
        yield eng
        eng.dispose()
        return
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_audit") as url:
        upgrade(url)
        eng = make_engine(url)
        yield eng
        eng.dispose()


def test_concurrent_appends_build_one_chain_that_verifies(engine: Engine) -> None:
    factory = make_session_factory(engine, write=True)

    def append(i: int) -> int:
        with factory() as session:
            entry = audit.append(
                session,
                actor=AWKWARD[i % len(AWKWARD)],
                action="test.appended",
                object_ref=f"object:{AWKWARD[(i + 1) % len(AWKWARD)]}",
                detail={"i": i, "text": AWKWARD[(i + 2) % len(AWKWARD)]},
            )
            session.commit()
            return entry.id

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(append, range(60)))
    assert sorted(ids) == list(range(1, 61))
    with factory() as session:
        assert audit.verify(session) == audit.VerifyResult(True, 60)
        first = session.execute(select(AuditEntry).where(AuditEntry.id == 1)).scalar_one()
        assert first.prev_hash == audit.GENESIS_HASH


def _count_audit(factory: Any) -> int:
    with factory() as session:
        return len(session.execute(select(AuditEntry.id)).all())


def test_writes_sent_with_the_commit_land_with_it_or_not_at_all(engine: Engine) -> None:
    """``audit.write_with_commit``: a transaction's last writes go in the commit's round
    trip on PostgreSQL (at once elsewhere); a failing one takes the whole transaction,
    audit entries included, with it."""
    factory = make_session_factory(engine, write=True)
    table = AuditHead.__table__
    rows: list[Any] = []
    bump = (
        update(table)
        .where(table.c.id == 1)
        .values(last_hash=table.c.last_hash)
        .returning(table.c.last_id)
    )
    postgres = engine.dialect.name == "postgresql"
    with factory() as session:  # the chain's head row exists from the first append on
        audit.append(session, actor="t", action="test.genesis", object_ref="x:0")
        session.commit()

    def work(session: Session) -> None:
        audit.append(session, actor="t", action="test.first", object_ref="x:1")
        deferred = audit.write_with_commit(session, bump, {}, rows.append)
        if not deferred:
            rows.append(session.execute(bump).one())
        assert deferred is postgres  # deferred only under run_transaction on PostgreSQL

    with factory() as session:
        run_transaction(session, lambda: work(session))
    assert len(rows) == 1 and rows[0][0] >= 0  # the RETURNING row reached its callback
    before = _count_audit(factory)

    # A failing deferred write (a foreign key to nothing): nothing of the transaction lands.
    consumption = MaterialConsumption.__table__
    broken = insert(consumption)
    values = {"job_operation_id": -1, "lot_id": -1, "quantity": 1.0, "at": utcnow(), "actor": "t"}

    def failing(session: Session) -> None:
        audit.append(session, actor="t", action="test.lost", object_ref="x:2")
        if not audit.write_with_commit(session, broken, values):
            session.execute(broken, values)

    with factory() as session, pytest.raises(IntegrityError):
        run_transaction(session, lambda: failing(session))
    assert _count_audit(factory) == before
    with factory() as session:
        assert audit.verify(session) == audit.VerifyResult(True, before)
        assert session.info.get(audit.WRITES) is None
