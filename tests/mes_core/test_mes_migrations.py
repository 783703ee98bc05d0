"""The Alembic revisions create exactly the tables the models describe (all of mes_core)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from support import postgres_url, require, throwaway_postgres

import mes_core
from mes_core.persistence.base import Base
from mes_core.persistence.db import make_engine
from mes_core.persistence.migrate import upgrade


def _drift(url: str) -> list[object]:
    for info in pkgutil.walk_packages(mes_core.__path__, "mes_core."):
        if info.name.endswith(".models"):
            importlib.import_module(info.name)
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_models_on_sqlite(tmp_path: Path) -> None:
    assert _drift(f"sqlite:///{tmp_path / 'm.db'}") == []


@pytest.mark.postgres
def test_migrations_match_models_on_postgresql() -> None:
    require(postgres_url() is not None, "PostgreSQL (MESTWIN_TEST_POSTGRES_URL)")
    with throwaway_postgres("mestwin_migrations") as url:
        assert _drift(url) == []
