"""Fixtures of the quality/KPI/labour/ERP tests: a migrated database per backend, and a
running MES API on it.

SQLite always; PostgreSQL where ``MESTWIN_TEST_POSTGRES_URL`` is set (always in CI). The
PostgreSQL variant runs in a throwaway database created for this test session and dropped
at its end, never in the shared ``test`` database itself. Tests isolate by unique codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from support import postgres_url, require, throwaway_postgres

from mes_core.client import MesClient
from mes_core.demo import ServerThread
from mes_core.persistence.db import make_engine, make_session_factory
from mes_core.persistence.migrate import upgrade
from mes_core.settings import Settings

ADMIN_PASSWORD = "admin-quality-tests"


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database URL (all Alembic heads) for the session."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("quality") / "mes.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_quality") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture(scope="session")
def mes_url(database_url: str) -> Iterator[str]:
    """A running MES API (uvicorn in a thread) on the session's database."""
    settings = Settings(database_url=database_url, admin_password=ADMIN_PASSWORD)
    with ServerThread(settings) as server:
        yield server.url


@pytest.fixture
def admin(mes_url: str) -> Iterator[MesClient]:
    with MesClient(mes_url).login("admin", ADMIN_PASSWORD) as client:
        yield client
