"""Fixtures of the quality/KPI/labour/ERP tests: a migrated database per backend.

SQLite always; PostgreSQL where ``MESTWIN_TEST_POSTGRES_URL`` is set (always in CI). The
PostgreSQL variant runs in a throwaway database created for this test session and dropped
at its end, never in the shared ``test`` database itself. Tests isolate by unique codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from support import postgres_url, require

from mes_core.persistence.db import make_engine, make_session_factory
from mes_core.persistence.migrate import upgrade


def _throwaway_postgres(base_url: str) -> tuple[str, str]:
    url = make_url(base_url)
    name = f"mestwin_quality_{uuid.uuid4().hex[:10]}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_postgres(base_url: str, name: str) -> None:
    url = make_url(base_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    base = postgres_url()
    require(base is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    assert base is not None
    url, name = _throwaway_postgres(base)
    try:
        upgrade(url)
        yield url
    finally:
        _drop_postgres(base, name)


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
