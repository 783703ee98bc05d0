"""The audit trail under concurrent appends (21 CFR Part 11 §11.10(e)): on PostgreSQL the
append is one statement that hashes in the database; the chain it builds must verify with
the Python hash (:func:`audit.entry_hash`), whatever the text, and never fork."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from support import postgres_url, require, throwaway_postgres

from mes_core.persistence import audit
from mes_core.persistence.db import make_engine, make_session_factory
from mes_core.persistence.migrate import upgrade
from mes_core.persistence.models import AuditEntry

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
