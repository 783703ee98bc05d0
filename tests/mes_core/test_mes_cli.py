"""``mestwin db upgrade``, ``audit verify`` (intact and tampered), ``serve``, ``mes-demo``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from support import postgres_url, require, throwaway_postgres
from typer.testing import CliRunner

from mes_core.client import MesClient
from mes_core.demo import free_port
from mes_core.persistence import audit
from mes_core.persistence.db import make_engine, make_session_factory
from mes_core.persistence.security import SYSTEM
from mes_core.schemas.masterdata import MaterialCreate
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
    result = CliRunner().invoke(build_app(), ["mes-demo", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "CERTIFICATION" in result.output
    assert "demo OK" in result.output
    assert "genealogy backward" in result.output


def test_serve_refuses_default_admin_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_serve") as url:
        monkeypatch.setenv("MESTWIN_DATABASE_URL", url)
        monkeypatch.delenv("MESTWIN_ADMIN_PASSWORD", raising=False)
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(build_app(), ["serve", "--port", "1"])
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 2
        assert "MESTWIN_ADMIN_PASSWORD" in result.output


def test_serve_migrates_an_empty_database_and_serves_with_two_workers(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MESTWIN_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}"}
    env.pop("MESTWIN_ADMIN_PASSWORD", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mestwin.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "mestwin serve did not come up"
            time.sleep(0.2)
        with MesClient(url).login("admin", "admin") as admin:
            # Several requests, so that both workers answer some: state is in the database.
            for i in range(6):
                admin.create_material(MaterialCreate(code=f"M{i}"))
            assert len(admin.list_materials()) == 6
            assert admin.verify_audit().ok
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
