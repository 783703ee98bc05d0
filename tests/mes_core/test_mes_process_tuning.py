"""The API's process and pool tuning (issue 8) keeps its promises.

- A pooled PostgreSQL connection whose server side has gone (a restarted server, a
  terminated backend, a cut network path) is replaced when it is checked out, without a
  ``SELECT 1`` round trip per request: the caller never sees the dead one.
- A served API worker freezes its start-up heap (so full collections do not stall
  requests); an app built in a test's process does not.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from mes_core_factories import ADMIN_PASSWORD
from sqlalchemy import create_engine, text
from support import postgres_url, require, throwaway_postgres

from mes_core.client import MesClient
from mes_core.demo import ServerThread
from mes_core.persistence.db import _has_input, make_engine
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings


def _terminate_backends(url: str) -> int:
    """Terminate every backend of ``url``'s database but the caller's; how many. Waits
    until each has exited (a terminated backend goes at its own pace: until it has, its
    connection still looks idle to the client)."""
    other = create_engine(url, poolclass=None)
    try:
        with other.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        other.dispose()


def test_a_dead_pooled_connection_is_replaced_at_checkout() -> None:
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_pool") as url:
        engine = make_engine(url, pool_size=2)
        try:
            assert engine.pool._pre_ping is False  # no round trip per checkout
            with engine.connect() as conn:
                first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with engine.connect() as conn:  # the idle connection is reused while alive
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
            assert _terminate_backends(url) == 1
            with engine.connect() as conn:  # replaced, not handed out dead
                second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert second != first
        finally:
            engine.dispose()


def test_the_api_answers_after_its_database_connections_were_cut() -> None:
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_pool_api") as url:
        upgrade(url)
        settings = Settings(database_url=url, admin_password=ADMIN_PASSWORD)
        with ServerThread(settings) as server, MesClient(server.url) as client:
            client.login("admin", ADMIN_PASSWORD)
            before = client.list_equipment()
            assert _terminate_backends(url) >= 1
            # Every pooled connection is dead now; each request still gets a live one.
            for _ in range(5):
                assert client.whoami().name == "admin"
                assert client.list_equipment() == before
            assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}


def _run(code: str, cwd: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_served_worker_freezes_its_start_up_heap(tmp_path: Path) -> None:
    # In a process of its own: freezing is for the life of a process.
    db = tmp_path / "mes.db"
    upgrade(f"sqlite:///{db}")
    code = f"""
        import gc, json, os
        os.environ["MESTWIN_DATABASE_URL"] = "sqlite:///{db}"
        from fastapi.testclient import TestClient
        from mes_core.api.app import app_factory, create_app
        from mes_core.settings import Settings
        with TestClient(create_app(Settings(database_url="sqlite:///{db}"))) as client:
            client.get("/health")
            in_tests = gc.get_freeze_count()
        with TestClient(app_factory()) as client:
            ok = client.get("/health").status_code
        print(json.dumps({{"in_tests": in_tests, "served": gc.get_freeze_count(),
                          "threshold": gc.get_threshold(), "ok": ok}}))
    """
    result = _run(code, tmp_path)
    assert result["in_tests"] == 0
    assert isinstance(result["served"], int) and result["served"] > 10_000
    assert result["threshold"] == [10_000, 50, 50]
    assert result["ok"] == 200


def test_the_idle_check_takes_descriptors_past_select_s_limit() -> None:
    # select() refuses descriptors >= 1024 (FD_SETSIZE); a busy worker's sockets get there.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    left, right = socket.socketpair()
    try:
        high = os.dup2(left.fileno(), 1500)
        try:
            assert _has_input(high) is False
            right.sendall(b"x")
            assert _has_input(high) is True
        finally:
            os.close(high)
    finally:
        left.close()
        right.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
