"""Fixtures of the MES core tests: the API on SQLite and, in the same run, PostgreSQL.

Each backend gets one migrated database and one uvicorn server for the session (a
throwaway database on PostgreSQL, dropped at the end); tests keep apart by using unique
codes from :func:`factories.plant`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mes_core_factories import ADMIN_PASSWORD, Plant, plant
from support import postgres_url, require, throwaway_postgres

from mes_core.client import MesClient
from mes_core.demo import ServerThread
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def mes_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of a running MES API on each database backend."""
    if request.param == "sqlite":
        db: Path = tmp_path_factory.mktemp("mes") / "mes.db"
        url = f"sqlite:///{db}"
        upgrade(url)
        with ServerThread(Settings(database_url=url, admin_password=ADMIN_PASSWORD)) as server:
            server.database_url = url  # type: ignore[attr-defined]
            yield server.url
        return
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_mes_core") as url:
        upgrade(url)
        with ServerThread(Settings(database_url=url, admin_password=ADMIN_PASSWORD)) as server:
            yield server.url


@pytest.fixture
def admin(mes_url: str) -> Iterator[MesClient]:
    with MesClient(mes_url).login("admin", ADMIN_PASSWORD) as client:
        yield client


@pytest.fixture
def pl(mes_url: str, admin: MesClient) -> Iterator[Plant]:
    """A freshly loaded two-step plant with unique codes (``factories.plant``)."""
    p = plant(mes_url, admin)
    yield p
    p.close()
