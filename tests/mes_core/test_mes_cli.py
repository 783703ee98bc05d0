"""``mestwin db upgrade``, ``mestwin audit verify`` (intact and tampered) and ``mestwin demo``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from mes_core.persistence import audit
from mes_core.persistence.db import make_engine, make_session_factory
from mes_core.persistence.security import SYSTEM
from mes_core.settings import get_settings
from mestwin.cli import build_app


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MESTWIN_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url  # type: ignore[misc]
    get_settings.cache_clear()


def test_audit_verify_proves_chain_and_names_first_broken_entry(sqlite_env: str) -> None:
    runner = CliRunner()
    result = runner.invoke(build_app(), ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(sqlite_env)
    with make_session_factory(engine)() as session:
        for i in range(5):
            audit.append(session, actor=SYSTEM.name, action="test", object_ref=f"x:{i}")
        session.commit()
    ok = runner.invoke(build_app(), ["audit", "verify"])
    assert ok.exit_code == 0 and "5 entries" in ok.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET actor = 'mallory' WHERE id = 3"))
    broken = runner.invoke(build_app(), ["audit", "verify"])
    assert broken.exit_code == 1
    assert "entry 3" in broken.output
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE id = 3"))
    gone = runner.invoke(build_app(), ["audit", "verify"])
    assert gone.exit_code == 1 and "entry 3" in gone.output
    engine.dispose()


def test_demo_walks_a_job_order_and_shows_a_refusal(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(), ["demo", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "CERTIFICATION" in result.output
    assert "demo OK" in result.output
    assert "genealogy backward" in result.output
