"""The audit trail anchored outside its database (issue 21, item 10): each attack that
the hash chain alone let through is caught by ``mestwin audit verify``. The trail is
sealed with ``MESTWIN_AUDIT_KEY`` (every hash an HMAC under it, a key the database does not
hold) and checkpointed (its head signed, in a file elsewhere): recomputing the chain with
the project's own ``entry_hash`` gives plain hashes, which verify refuses anywhere; cutting
the tail is caught by the checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from support import postgres_url, require, throwaway_postgres
from typer.testing import CliRunner

from mes_core.persistence import audit, audit_anchor
from mes_core.persistence.db import make_engine, make_session_factory, run_transaction
from mes_core.persistence.migrate import upgrade
from mes_core.persistence.models import AuditEntry
from mes_core.persistence.security import SYSTEM
from mes_core.settings import get_settings
from mestwin.cli import build_app

KEY = "audit-key-kept-off-the-database"


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, Path]]:
    """A trail of 10 entries, checkpointed (signed) after them, then 2 more appended."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    checkpoints = tmp_path / "elsewhere" / "audit-checkpoints.jsonl"
    monkeypatch.setenv("MESTWIN_DATABASE_URL", url)
    monkeypatch.setenv("MESTWIN_AUDIT_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("MESTWIN_AUDIT_KEY", KEY)
    get_settings.cache_clear()
    engine = make_engine(url)
    _append(engine, 10)
    done = CliRunner().invoke(build_app(), ["audit", "checkpoint"])
    assert done.exit_code == 0 and "checkpoint 10 " in done.output and "signed" in done.output
    _append(engine, 2)
    yield engine, checkpoints
    engine.dispose()
    get_settings.cache_clear()


def _append(engine: Engine, n: int) -> None:
    with make_session_factory(engine, write=True)() as session:
        for i in range(n):
            audit.append(session, actor=SYSTEM.name, action="test", object_ref=f"x:{i}")
        session.commit()


def _verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["audit", "verify", *args])
    return result.exit_code, " ".join(result.output.split())


def _sql(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _rechain_from(engine: Engine, first: int) -> None:
    """What an attacker with write access does: recompute every hash from ``first`` on
    with the project's own entry_hash, and the head."""
    with Session(engine) as session:
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        prev = audit.GENESIS_HASH
        for entry in entries:
            if entry.id >= first:
                entry.prev_hash = prev
                entry.hash = audit.entry_hash(
                    prev,
                    id=entry.id,
                    at=entry.at,
                    actor=entry.actor,
                    action=entry.action,
                    object_ref=entry.object_ref,
                    detail=entry.detail,
                )
            prev = entry.hash
        session.execute(
            text("UPDATE audit_head SET last_id = :n, last_hash = :h"),
            {"n": entries[-1].id, "h": prev},
        )
        session.commit()


def test_an_untouched_trail_verifies_against_its_checkpoints(
    trail: tuple[Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = _verify()
    assert code == 0, output
    assert "12 entries, hash chain intact, anchored by" in output
    assert "12 sealed with the audit key" in output
    # Without the key a sealed trail cannot be verified: it is not passed as intact.
    monkeypatch.delenv("MESTWIN_AUDIT_KEY")
    get_settings.cache_clear()
    code, output = _verify("--checkpoints", "/nonexistent")
    assert code == 1 and "verify with MESTWIN_AUDIT_KEY" in output, output


def test_cutting_the_tail_with_the_head_row_is_caught(trail: tuple[Engine, Path]) -> None:
    engine, _ = trail
    _sql(engine, "DELETE FROM audit_entry WHERE id > 8", "DELETE FROM audit_head")
    code, output = _verify("--checkpoints", "/nonexistent")  # the chain alone sees it too
    assert code == 1 and "the chain head is missing" in output, output


def test_cutting_the_tail_and_moving_the_head_is_caught(trail: tuple[Engine, Path]) -> None:
    engine, _ = trail
    _sql(engine, "DELETE FROM audit_entry WHERE id > 8")
    _rechain_from(engine, 9)  # the head now says 8 entries, with entry 8's hash
    code, output = _verify()
    assert code == 1
    assert "entry 10, checkpointed at" in output and "is missing: the trail was cut" in output


def test_editing_an_entry_and_recomputing_the_chain_is_caught(trail: tuple[Engine, Path]) -> None:
    engine, checkpoints = trail
    _sql(engine, "UPDATE audit_entry SET actor = 'mallory' WHERE id = 3")
    _rechain_from(engine, 3)
    code, output = _verify()
    assert code == 1
    assert "BROKEN at entry 3: the entry is not sealed with the audit key" in output
    # The whole trail rewritten plain, as if written before the key: the signed
    # checkpoint names what was rewritten.
    _rechain_from(engine, 1)
    with Session(engine) as session:
        result = audit_anchor.verify_anchored(session, checkpoints, KEY)
    assert not result.ok and result.broken_id == 10
    assert "no longer has the hash checkpointed" in result.reason


def test_editing_after_the_last_checkpoint_and_recomputing_is_caught(
    trail: tuple[Engine, Path],
) -> None:
    # Entries 11 and 12 came after the last checkpoint, which cannot see them: the seal
    # catches it.
    engine, _ = trail
    _sql(engine, "UPDATE audit_entry SET actor = 'mallory' WHERE id = 11")
    _rechain_from(engine, 11)
    code, output = _verify()
    assert code == 1
    assert "BROKEN at entry 11: the entry is not sealed with the audit key" in output


def test_a_trail_written_before_the_key_is_adopted_once_on_purpose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    upgrade(url)
    checkpoints = tmp_path / "checkpoints.jsonl"
    monkeypatch.setenv("MESTWIN_DATABASE_URL", url)
    monkeypatch.delenv("MESTWIN_AUDIT_CHECKPOINTS", raising=False)
    monkeypatch.delenv("MESTWIN_AUDIT_KEY", raising=False)
    get_settings.cache_clear()
    plain = make_engine(url)
    _append(plain, 3)
    plain.dispose()
    code, output = _verify()  # no key, no checkpoints: intact, and said to prove little
    assert code == 0 and "NOT sealed" in output, output
    monkeypatch.setenv("MESTWIN_AUDIT_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("MESTWIN_AUDIT_KEY", KEY)
    get_settings.cache_clear()
    refused = CliRunner().invoke(build_app(), ["audit", "checkpoint"])
    assert refused.exit_code == 1 and "not sealed with the audit key" in refused.output
    adopted = CliRunner().invoke(build_app(), ["audit", "checkpoint", "--adopt-unsealed"])
    assert adopted.exit_code == 0, adopted.output
    sealed = make_engine(url)
    _append(sealed, 2)
    sealed.dispose()
    code, output = _verify()
    assert code == 0 and "5 entries" in output and "2 sealed with the audit key" in output
    get_settings.cache_clear()


@pytest.mark.postgres
def test_postgresql_seals_appends_as_entry_hash_does() -> None:
    # PostgreSQL computes the HMAC itself (sha256 of the inner and outer keys), in both
    # appends: the immediate one and the one sent with the commit (run_transaction).
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_sealed") as url:
        upgrade(url)
        engine = make_engine(url, audit_key=KEY)
        _append(engine, 2)
        with make_session_factory(engine, write=True)() as session:
            run_transaction(
                session,
                lambda: audit.append(session, actor=SYSTEM.name, action="t", object_ref="x:ü"),
            )
        with Session(engine) as session:
            assert audit.verify(session) == audit.VerifyResult(True, 3, sealed=3)
        engine.dispose()


def test_a_checkpoint_forged_without_the_key_is_caught(trail: tuple[Engine, Path]) -> None:
    engine, checkpoints = trail
    # A line vouching for entry 12 as plain history (what would let a plain rewrite pass
    # as entries written before the key) does not carry the key's signature.
    with Session(engine) as session:
        head = session.execute(select(AuditEntry.hash).where(AuditEntry.id == 12)).scalar_one()
    line = json.loads(checkpoints.read_text())
    forged = {**line, "last_id": 12, "last_hash": head, "mac": "0" * 64}
    checkpoints.write_text(checkpoints.read_text() + json.dumps(forged) + "\n")
    code, output = _verify()
    assert code == 1 and "does not carry the audit key's signature" in output, output


def test_a_broken_trail_is_not_checkpointed(trail: tuple[Engine, Path]) -> None:
    engine, checkpoints = trail
    before = checkpoints.read_text()
    _sql(engine, "UPDATE audit_entry SET actor = 'mallory' WHERE id = 11")
    result = CliRunner().invoke(build_app(), ["audit", "checkpoint"])
    assert result.exit_code == 1 and "broken at entry 11" in result.output
    assert checkpoints.read_text() == before
